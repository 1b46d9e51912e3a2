--- Output for humans (aligned tables) and for programs (JSON).
local cjson = require "cjson"

local M = {}

--- Print rows (lists of strings) under headers, columns aligned.
function M.table(out, headers, rows)
  local widths = {}
  for i, h in ipairs(headers) do widths[i] = #h end
  for _, r in ipairs(rows) do
    for i, cell in ipairs(r) do
      widths[i] = math.max(widths[i] or 0, #tostring(cell))
    end
  end
  local function line(cells)
    local parts = {}
    for i, cell in ipairs(cells) do
      parts[i] = i < #cells and string.format("%-" .. widths[i] .. "s", tostring(cell))
                 or tostring(cell)
    end
    out:write(table.concat(parts, "  "), "\n")
  end
  line(headers)
  for _, r in ipairs(rows) do line(r) end
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
