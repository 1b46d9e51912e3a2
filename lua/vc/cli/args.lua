--- Command-line parsing for vc's commands, from a declarative spec:
--
--     { usage = "vc pod status ID", summary = "...",
--       options = { { "--json", help = "..." },
--                   { "--env", arg = "K=V", many = true, help = "..." } },
--       positional = { "ID" },            -- required, in order
--       optional = { "SIGNAL" },          -- may follow the required ones
--       rest = "ARGV" }                   -- everything after "--"
--
-- parse returns a table: option values by name without dashes ("--log-level"
-- -> log_level), positional values by their lower-case name, and rest.
-- Bad usage raises a usage error (exit code 2 in the CLI); --help raises a
-- help request carrying the text.
local M = {}

local Usage = {}
Usage.__tostring = function(u) return u.msg end

function M.usage_error(fmt, ...)
  error(setmetatable({ msg = fmt:format(...), usage = true }, Usage), 0)
end

function M.is_usage(e)
  return getmetatable(e) == Usage
end

local function key(name)
  return (name:gsub("^%-%-", ""):gsub("%-", "_"))
end

--- The help text of a command spec.
function M.help(spec)
  local lines = { "usage: " .. spec.usage }
  if spec.summary then lines[#lines + 1] = "\n" .. spec.summary end
  if spec.options and #spec.options > 0 then
    lines[#lines + 1] = "\noptions:"
    for _, o in ipairs(spec.options) do
      local left = (o.short and (o.short .. ", ") or "") .. o[1] .. (o.arg and (" " .. o.arg) or "")
      lines[#lines + 1] = string.format("  %-28s %s%s", left, o.help or "",
                                        o.many and " (repeatable)" or "")
    end
  end
  lines[#lines + 1] = string.format("  %-28s %s", "-h, --help", "show this help")
  return table.concat(lines, "\n") .. "\n"
end

function M.parse(spec, argv, first)
  local out = { _positional = {} }
  local byname, byshort = {}, {}
  for _, o in ipairs(spec.options or {}) do
    byname[o[1]] = o
    if o.short then byshort[o.short:sub(2)] = o end
    if o.many then out[key(o[1])] = {} end
  end
  local i = first or 1
  local pos = out._positional
  while i <= #argv do
    local a = argv[i]
    if a == "--" then
      if not spec.rest then M.usage_error("unexpected '--' (usage: %s)", spec.usage) end
      out.rest = table.move(argv, i + 1, #argv, 1, {})
      break
    elseif a == "-h" or a == "--help" then
      error(setmetatable({ msg = M.help(spec), help = true }, Usage), 0)
    elseif a:sub(1, 2) == "--" then
      local name, inline = a:match("^(%-%-[^=]+)=(.*)$")
      name = name or a
      local o = byname[name]
      if not o then M.usage_error("unknown option %s (usage: %s)", name, spec.usage) end
      local value = true
      if o.arg then
        if inline then
          value = inline
        else
          i = i + 1
          value = argv[i]
          if value == nil then M.usage_error("option %s needs a value (%s)", name, o.arg) end
        end
      elseif inline then
        M.usage_error("option %s takes no value", name)
      end
      if o.many then
        table.insert(out[key(name)], value)
      else
        out[key(name)] = value
      end
    elseif a:sub(1, 1) == "-" and #a > 1 then
      -- short flags, alone or together (-i, -it)
      for ch in a:sub(2):gmatch(".") do
        local o = byshort[ch]
        if not o or o.arg then M.usage_error("unknown option %s (usage: %s)", a, spec.usage) end
        out[key(o[1])] = true
      end
    else
      pos[#pos + 1] = a
    end
    i = i + 1
  end
  local required = spec.positional or {}
  local optional = spec.optional or {}
  if #pos < #required then
    M.usage_error("missing %s (usage: %s)", required[#pos + 1], spec.usage)
  end
  if #pos > #required + #optional then
    M.usage_error("unexpected argument %q (usage: %s)", pos[#required + #optional + 1], spec.usage)
  end
  for n, name in ipairs(required) do out[name:lower()] = pos[n] end
  for n, name in ipairs(optional) do out[name:lower()] = pos[#required + n] end
  if spec.rest and spec.rest_required and (not out.rest or #out.rest == 0) then
    M.usage_error("missing -- %s... (usage: %s)", spec.rest, spec.usage)
  end
  return out
end

return M
