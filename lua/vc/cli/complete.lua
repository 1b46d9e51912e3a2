--- Tab completion for vc repl: the session's names and the globals, Lua's
-- keywords, fields and methods of what a name holds (`vc.pod.`, `p:`), and
-- pod and container IDs inside a string given to `pod`, `vc.pod.fetch` or
-- `:container`. Values are only looked at through rawget and __index
-- tables: completing never runs the user's code, nor waits for a pod.
--
--     complete.candidates('pod "we', env)  --> "we", { "web" }, '"'
--     complete.line('pod "we', env, 80)     --> 'b"'     (what Tab inserts)
local container = require "vc.container"
local podlib = require "vc.pod"

local M = {}

local KEYWORDS = {}
for w in ([[and break do else elseif end false for function goto if in
  local nil not or repeat return then true until while]]):gmatch("%a+") do
  KEYWORDS[#KEYWORDS + 1] = w
end

local MAX_HOPS = 16 -- __index chains followed at most this far

-- t[key] without metamethods but through __index tables.
local function lookup(t, key)
  for _ = 1, MAX_HOPS do
    if type(t) == "string" then t = string end
    if type(t) ~= "table" then return nil end
    local v = rawget(t, key)
    if v ~= nil then return v end
    local mt = getmetatable(t)
    t = type(mt) == "table" and rawget(mt, "__index") or nil
  end
  return nil
end

-- The names reachable from v with "." (or, methods, with ":").
local function names(v, methods, out)
  local seen = {}
  for _ = 1, MAX_HOPS do
    if type(v) == "string" then v = string end
    if type(v) ~= "table" or seen[v] then break end
    seen[v] = true
    for k, x in next, v do
      if type(k) == "string" and k:match("^[%a_][%w_]*$") and k:sub(1, 2) ~= "__"
          and (not methods or type(x) == "function") then
        out[k] = true
      end
    end
    local mt = getmetatable(v)
    v = type(mt) == "table" and rawget(mt, "__index") or nil
  end
  return out
end

local function sorted_matching(set, partial)
  local list = {}
  for name in pairs(set) do
    if name:sub(1, #partial) == partial then list[#list + 1] = name end
  end
  table.sort(list)
  return list
end

-- The value at a dotted path ("vc.pod") in env, or nil.
local function resolve(path, env)
  local v = env
  for name in path:gmatch("[^.]+") do
    v = lookup(v, name)
    if v == nil then return nil end
  end
  return v
end

local function pod_ids()
  local ok, list = pcall(podlib.list, { all = true })
  local ids = {}
  for _, p in ipairs(ok and list or {}) do ids[p.id] = true end
  return ids
end

local function container_ids(pod_id)
  local ids = {}
  local p = pod_id and podlib.fetch(pod_id)
  if not p then return ids end
  local ok, list = pcall(p.containers, p)
  for _, c in ipairs(ok and list or {}) do ids[c.id] = true end
  return ids
end

-- The ID of the pod an expression stands for: `pod "web"`, `pod("web")`,
-- `vc.pod.fetch "web"`, or a name holding a pod.
local function pod_of(expr, env)
  local id = expr:match("[%w_.]*pod[%w_.]*%s*%(?%s*[\"']([^\"']+)[\"']%s*%)?%s*$")
  if id then return id end
  local path = expr:match("([%a_][%w_.]*)%s*$")
  local v = path and resolve(path, env)
  if type(v) == "table" and getmetatable(v) == podlib.Pod then return rawget(v, "id") end
  return nil
end

-- Inside an unfinished string literal: IDs when the string is the argument
-- of a call that takes one.
local function id_candidates(head, partial, env)
  local callee_start, callee = head:match("()([%w_.:]+)%s*%(?%s*$")
  if not callee then return nil end
  local last = callee:match("([%w_]+)$")
  if callee:find(":", 1, true) and last == "container" then
    local receiver = head:sub(1, callee_start - 1) .. callee:gsub(":container$", "")
    return sorted_matching(container_ids(pod_of(receiver, env)), partial)
  end
  if last == "pod" or last == "fetch" then
    return sorted_matching(pod_ids(), partial)
  end
  return nil
end

-- A quoted ID argument, as in `pod "web"` or `pod("web")`.
local QUOTED = "%s*%(?%s*[\"'][^\"']*[\"']%s*%)?%s*$"

-- What an expression that the completer can see stands for: a dotted
-- name, or a pod or a container fetched by a literal ID (its class).
local function value_of(expr, env)
  local path = expr:match("([%a_][%w_.]*)$")
  if path then
    local before = expr:sub(1, #expr - #path)
    if before:match("[%w_.:%)%]}\"']$") then return nil end -- `a:b.c`, `f().x`
    return resolve(path, env)
  end
  if expr:match(":container" .. QUOTED) then return container.Container end
  if expr:match("pod" .. QUOTED) or expr:match("fetch" .. QUOTED) then return podlib.Pod end
  return nil
end

--- What the text before the cursor ends with, the completions of it (full
-- words) and what follows a single one (a closing quote), or nil.
function M.candidates(before, env)
  -- In a string: its opening quote is the last one, and an odd one.
  local head, quote, partial = before:match("^(.-)([\"'])([^\"']*)$")
  if head and select(2, head:gsub(quote, "")) % 2 == 0 then
    local ids = id_candidates(head, partial, env)
    if not ids then return nil end
    return partial, ids, quote
  end
  -- A field or a method: `vc.pod.li`, `p:st`, `pod "web":`.
  local at, sep, last = before:match("()([.:])([%w_]*)$")
  if at then
    local v = value_of(before:sub(1, at - 1), env)
    if v == nil then return nil end
    return last, sorted_matching(names(v, sep == ":", {}), last)
  end
  -- A name of the session, a global or a keyword.
  local start, word = before:match("()([%a_][%w_]*)$")
  if not word or before:sub(start - 1, start - 1):match("[%w_%)%]}\"']") then return nil end
  local set = names(env, false, {})
  for _, k in ipairs(KEYWORDS) do set[k] = true end
  return word, sorted_matching(set, word)
end

local function common_prefix(list)
  local p = list[1]
  for i = 2, #list do
    local s = list[i]
    local n = 0
    while n < #p and n < #s and p:byte(n + 1) == s:byte(n + 1) do n = n + 1 end
    p = p:sub(1, n)
  end
  return p
end

local function columns_text(list, columns)
  local width = 0
  for _, s in ipairs(list) do width = math.max(width, #s) end
  width = width + 2
  local per_line = math.max(1, (columns - 1) // width)
  local lines, line = {}, {}
  for i, s in ipairs(list) do
    line[#line + 1] = i % per_line == 0 and s or string.format("%-" .. width .. "s", s)
    if i % per_line == 0 or i == #list then
      lines[#lines + 1] = (table.concat(line):gsub("%s+$", ""))
      line = {}
    end
  end
  return table.concat(lines, "\n") .. "\n"
end

--- What Tab does on a line: returns the text to insert at the cursor, and
-- a listing of the choices (lines) when there is more than one.
function M.line(before, env, columns)
  if before:match("^%s*$") then return "  " end
  local partial, list, suffix = M.candidates(before, env)
  if not list or #list == 0 then return nil end
  if #list == 1 then return list[1]:sub(#partial + 1) .. (suffix or "") end
  local prefix = common_prefix(list)
  if #prefix > #partial then return prefix:sub(#partial + 1) end
  return nil, columns_text(list, columns or 80)
end

return M
