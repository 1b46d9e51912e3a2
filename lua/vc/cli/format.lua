--- Output for humans (aligned tables) and for programs (JSON).
local cjson = require "cjson"

local M = {}

--- Print rows (lists of strings) under headers, columns aligned, in one
-- write (a listing may have thousands of rows, so no format per cell).
function M.table(out, headers, rows)
  local widths, cells = {}, { headers }
  for i, h in ipairs(headers) do widths[i] = #h end
  for r, row in ipairs(rows) do
    local c = {}
    for i, cell in ipairs(row) do
      local s = tostring(cell)
      c[i] = s
      if #s > (widths[i] or 0) then widths[i] = #s end
    end
    cells[r + 1] = c
  end
  local spaces, lines, parts = {}, {}, {}
  for r, c in ipairs(cells) do
    local n = #c
    for i = 1, n - 1 do
      local k = widths[i] - #c[i] + 2
      local pad = spaces[k]
      if not pad then
        pad = (" "):rep(k)
        spaces[k] = pad
      end
      parts[2 * i - 1], parts[2 * i] = c[i], pad
    end
    parts[2 * n - 1] = c[n]
    lines[r] = table.concat(parts, "", 1, 2 * n - 1)
  end
  lines[#lines + 1] = ""
  out:write(table.concat(lines, "\n"))
end

--- value as JSON; list_keys names fields that are lists, so that an
-- empty one is written [] (cjson 2.1 writes every empty table as {}).
function M.json(out, value, list_keys)
  local s = cjson.encode(value)
  for _, k in ipairs(list_keys or {}) do
    s = s:gsub('"' .. k .. '":{}', '"' .. k .. '":[]')
  end
  out:write(s, "\n")
end

--- A list as a JSON array, also when empty (cjson would write {}).
function M.json_list(out, list, list_keys)
  if #list == 0 then
    out:write("[]\n")
  else
    M.json(out, list, list_keys)
  end
end

return M
