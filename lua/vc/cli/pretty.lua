--- Values as vc repl prints them: strings quoted, tables as constructors
-- (sorted keys, nested tables indented, cycles named), objects with a
-- __tostring (a pod, a container) by it, and a list of pods or of
-- containers as an aligned table.
--
--     pretty.value({ 1, 2, x = "a" })  --> { 1, 2, x = "a" }
--     pretty.results(n, ...)           --> the REPL's line for a call's results
local container = require "vc.container"
local format = require "vc.cli.format"
local podlib = require "vc.pod"

local M = {}

local WIDTH = 72     -- a table fits on one line up to this width
local MAX_DEPTH = 6  -- deeper tables print as {...}

local KEYWORDS = {}
for w in ([[and break do else elseif end false for function goto if in
  local nil not or repeat return then true until while]]):gmatch("%a+") do
  KEYWORDS[w] = true
end

local ESCAPES = { ["\n"] = "\\n", ["\t"] = "\\t", ["\r"] = "\\r", ['"'] = '\\"', ["\\"] = "\\\\" }

local function quote(s)
  return '"' .. s:gsub('[%c"\\\127]', function(c)
    return ESCAPES[c] or string.format("\\%03d", c:byte())
  end) .. '"'
end

-- tostring through a __tostring that may fail (a pod deleted meanwhile).
local function text_of(v)
  local ok, s = pcall(tostring, v)
  if ok and type(s) == "string" then return s end
  return "<" .. type(v) .. ": __tostring failed: " .. tostring(s) .. ">"
end

local function has_tostring(v)
  local mt = getmetatable(v)
  return type(mt) == "table" and rawget(mt, "__tostring") ~= nil
end

local function key_text(k, seen, depth)
  if type(k) == "string" and k:match("^[%a_][%w_]*$") and not KEYWORDS[k] then return k end
  return "[" .. M.value(k, seen, depth) .. "]"
end

-- Keys of t beyond its sequence 1..n, in a stable order.
local function other_keys(t, n)
  local keys = {}
  for k in pairs(t) do
    if not (math.type(k) == "integer" and k >= 1 and k <= n) then keys[#keys + 1] = k end
  end
  table.sort(keys, function(a, b)
    local ta, tb = type(a), type(b)
    if ta ~= tb then return ta < tb end
    if ta == "number" or ta == "string" then return a < b end
    return tostring(a) < tostring(b)
  end)
  return keys
end

local function table_text(t, seen, depth)
  if seen[t] then return "<cycle: " .. tostring(t) .. ">" end
  if depth >= MAX_DEPTH then return "{...}" end
  seen[t] = true
  local items = {}
  local n = rawlen(t)
  for i = 1, n do items[#items + 1] = M.value(rawget(t, i), seen, depth + 1) end
  for _, k in ipairs(other_keys(t, n)) do
    local v = M.value(rawget(t, k), seen, depth + 1)
    items[#items + 1] = key_text(k, seen, depth + 1) .. " = " .. v
  end
  seen[t] = nil
  if #items == 0 then return "{}" end
  local line = "{ " .. table.concat(items, ", ") .. " }"
  if #line <= WIDTH and not line:find("\n", 1, true) then return line end
  local pad = string.rep("  ", depth + 1)
  for i, s in ipairs(items) do items[i] = pad .. s end
  return "{\n" .. table.concat(items, ",\n") .. "\n" .. string.rep("  ", depth) .. "}"
end

--- One value as text.
function M.value(v, seen, depth)
  local t = type(v)
  if t == "string" then return quote(v) end
  if t == "table" and not has_tostring(v) then
    return table_text(v, seen or {}, depth or 0)
  end
  return text_of(v)
end

-- The class of v when it is a pod or a container object.
local function kind(v)
  if type(v) ~= "table" then return nil end
  local mt = getmetatable(v)
  if mt == podlib.Pod then return "pod" end
  if mt == container.Container then return "container" end
  return nil
end

-- Rows are strings written by vc.cli.format into a buffer.
local function render(headers, rows)
  local buf = {}
  local out = { write = function(_, ...) for _, s in ipairs({ ... }) do buf[#buf + 1] = s end end }
  format.table(out, headers, rows)
  return (table.concat(buf):gsub("\n$", ""))
end

local function pod_rows(list)
  local rows = {}
  for _, p in ipairs(list) do
    local s, err = p:status()
    if s then
      local ctrs = {}
      for _, c in ipairs(s.containers) do ctrs[#ctrs + 1] = c.id .. ":" .. c.state end
      rows[#rows + 1] = { s.id, s.state, s.hypervisor,
                          #ctrs > 0 and table.concat(ctrs, " ") or "-" }
    else
      rows[#rows + 1] = { p.id, "?", "?", err }
    end
  end
  return render({ "POD", "STATE", "HYPERVISOR", "CONTAINERS" }, rows)
end

local function container_rows(list)
  local rows = {}
  for _, c in ipairs(list) do
    local s, err = c:status()
    if s then
      rows[#rows + 1] = { c.pod.id, c.id, s.state, s.exit_code and tostring(s.exit_code) or "-" }
    else
      rows[#rows + 1] = { c.pod.id, c.id, "?", err }
    end
  end
  return render({ "POD", "CONTAINER", "STATE", "EXIT" }, rows)
end

--- A value as the REPL shows it: a non-empty list whose items are all pods
-- (or all containers) as a table, anything else as value() does.
function M.show(v)
  if type(v) == "table" and getmetatable(v) == nil and #v > 0 then
    local k, count = kind(v[1]), 0
    for _, item in pairs(v) do
      count = count + 1
      if kind(item) ~= k then k = nil end
    end
    if k and count == #v then return k == "pod" and pod_rows(v) or container_rows(v) end
  end
  return M.value(v)
end

--- The text for the results of one evaluation (n values), or nil when
-- there is nothing to print. `nil, msg` (a call that failed) is its
-- message; trailing nils after a value are left out (`true, nil` is true).
function M.results(n, ...)
  if n == 0 then return nil end
  local first, second = ...
  if n >= 2 and first == nil and type(second) == "string" then return second end
  while n > 1 and select(n, ...) == nil do n = n - 1 end
  local parts, multiline = {}, false
  for i = 1, n do
    parts[i] = M.show((select(i, ...)))
    multiline = multiline or parts[i]:find("\n", 1, true) ~= nil
  end
  return table.concat(parts, multiline and "\n" or "\t")
end

return M
