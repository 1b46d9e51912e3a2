--- vc.cni: the Container Network Interface, as a runtime speaks it
-- (https://www.cni.dev/docs/spec/): network configuration lists found by
-- name or given inline, and their plugins run one after the other for ADD
-- (each given the previous one's result) and in reverse for DEL.
-- A plugin is a program in CNI_PATH that reads its config on stdin and
-- answers a result, or an error object, on stdout.
local build = require "vc.core.build"
local cjson = require "cjson"
local process = require "vc.core.process"

local M = {}

--- Where plugins are looked for (Debian's containernetworking-plugins).
M.PATH = "/usr/lib/cni"
--- The folders searched for NAME.conflist: the administrator's, then vc's.
M.CONFIG_DIRS = { "/etc/vc/cni/net.d", build.home .. "/cni" }
--- Seconds a plugin may take.
M.TIMEOUT = 30

local NAME = "^[A-Za-z0-9][A-Za-z0-9_.%-]*$"
local TYPE = "^[A-Za-z0-9][A-Za-z0-9_.%-]*$"
local ENV_PATH = "PATH=/usr/sbin:/usr/bin:/sbin:/bin"

-- lua-cjson 2.1.0 decodes [] and {} alike, as an empty table, and encodes
-- it as {}: a Go plugin then refuses `"routes": {}`. An empty array is
-- kept through decode and encode as the string "\1vc:[]" instead.
local EMPTY_JSON = '"\\u0001vc:[]"'

--- Decode JSON text, an empty array as "\1vc:[]".
function M.decode(text)
  local out, i, n, instr = {}, 1, #text, false
  local start = 1
  while i <= n do
    local c = text:sub(i, i)
    if instr then
      if c == "\\" then i = i + 1 elseif c == '"' then instr = false end
    elseif c == '"' then
      instr = true
    elseif c == "[" then
      local j = text:find("[^ \t\r\n]", i + 1)
      if j and text:sub(j, j) == "]" then
        out[#out + 1] = text:sub(start, i - 1)
        out[#out + 1] = EMPTY_JSON
        start, i = j + 1, j
      end
    end
    i = i + 1
  end
  out[#out + 1] = text:sub(start)
  local ok, v = pcall(cjson.decode, table.concat(out))
  if not ok then return nil, (tostring(v):gsub("^.-: ", "")) end
  return v
end

--- Encode a value, "\1vc:[]" as [].
function M.encode(v)
  local ok, text = pcall(cjson.encode, v)
  if not ok then return nil, text end
  return (text:gsub(EMPTY_JSON:gsub("%p", "%%%0"), "[]"))
end

--- What encode writes as [] (an empty table is written {}).
M.EMPTY_ARRAY = "\1vc:[]"

--- A list of a decoded value: an empty array (or nil) is {}.
function M.list(v)
  if type(v) ~= "table" then return {} end
  return v
end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  return text
end

--- Check a conflist table: { cniVersion =, name =, plugins = { { type = },
-- ... } }. Returns it, or nil and what is wrong (where names it).
function M.check(list, where)
  where = where or "conflist"
  if type(list) ~= "table" then return nil, where .. ": expected a table" end
  if type(list.name) ~= "string" or not list.name:match(NAME) or #list.name > 64 then
    return nil, where .. ".name: expected a network name ([A-Za-z0-9][A-Za-z0-9_.-]*)"
  end
  if type(list.cniVersion) ~= "string" or not list.cniVersion:match("^%d+%.%d+%.%d+$") then
    return nil, where .. ".cniVersion: expected a version such as \"1.0.0\""
  end
  if type(list.plugins) ~= "table" or #list.plugins == 0 then
    return nil, where .. ".plugins: expected a non-empty list"
  end
  for i, p in ipairs(list.plugins) do
    if type(p) ~= "table" or type(p.type) ~= "string" or not p.type:match(TYPE) then
      return nil, ("%s.plugins[%d].type: expected a plugin name"):format(where, i)
    end
  end
  return list
end

--- The conflist called name (from the first of CONFIG_DIRS that has
-- NAME.conflist), or nil and why.
function M.find(name, dirs)
  if type(name) ~= "string" or not name:match(NAME) or #name > 64 then
    return nil, ("network %q: invalid name"):format(tostring(name))
  end
  for _, dir in ipairs(dirs or M.CONFIG_DIRS) do
    local path = dir .. "/" .. name .. ".conflist"
    local text = read(path)
    if text then
      local list, err = M.decode(text)
      if not list then return nil, ("network %s: %s: %s"):format(name, path, err) end
      local ok, cerr = M.check(list, path)
      if not ok then return nil, ("network %s: %s"):format(name, cerr) end
      return list, path
    end
  end
  return nil, ("network %s: no %s.conflist in %s"):format(name, name,
                                                          table.concat(dirs or M.CONFIG_DIRS, ", "))
end

-- A plugin's config: the plugin's own keys, with the list's name and
-- version, the previous result, and the runtime's arguments for the
-- capabilities it declares (portMappings, dns...).
local function plugin_config(list, plugin, prev, runtime_config)
  local conf = {}
  for k, v in pairs(plugin) do conf[k] = v end
  conf.name, conf.cniVersion = list.name, list.cniVersion
  conf.prevResult = prev
  local caps = type(plugin.capabilities) == "table" and plugin.capabilities or {}
  local rc = {}
  for k, v in pairs(runtime_config or {}) do
    if caps[k] then rc[k] = v end
  end
  if next(rc) then conf.runtimeConfig = rc end
  return conf
end

-- Run one plugin; returns its decoded stdout (a result, or {} for DEL), or
-- nil and a message naming the plugin and what it said.
local function exec(command, list, plugin, prev, args)
  local path = M.PATH .. "/" .. plugin.type
  local who = ("network %s: plugin %s (%s)"):format(list.name, plugin.type, command)
  local f = io.open(path)
  if not f then
    -- nothing it could have made: its DEL has nothing to undo
    if command == "DEL" then return {} end
    return nil, ("%s: no such plugin in %s"):format(who, M.PATH)
  end
  f:close()
  local conf = assert(M.encode(plugin_config(list, plugin, prev, args.runtime_config)))
  local res, err = process.run {
    path = path, args = { plugin.type },
    env = { "CNI_COMMAND=" .. command, "CNI_CONTAINERID=" .. args.container_id,
            "CNI_NETNS=" .. args.netns, "CNI_IFNAME=" .. args.ifname,
            "CNI_PATH=" .. M.PATH, ENV_PATH },
    stdin = conf, timeout = M.TIMEOUT,
  }
  if not res then return nil, who .. ": " .. err end
  if res.status == "timeout" then
    return nil, ("%s: no answer within %ds"):format(who, M.TIMEOUT)
  end
  local out = res.stdout:match("^%s*(.-)%s*$")
  local decoded = out ~= "" and M.decode(out) or nil
  if res.status ~= "exited" or res.code ~= 0 then
    local msg = type(decoded) == "table" and type(decoded.msg) == "string" and decoded.msg
    if msg and type(decoded.details) == "string" and decoded.details ~= "" then
      msg = msg .. ": " .. decoded.details
    end
    msg = msg or res.stderr:match("^%s*(.-)%s*$")
    if msg == "" then msg = out ~= "" and out or nil end
    return nil, ("%s: %s"):format(who, msg or (res.status == "exited" and
      "exit code " .. res.code or "killed by signal " .. tostring(res.signal)))
  end
  if command ~= "ADD" then return {} end
  if type(decoded) ~= "table" then
    return nil, who .. ": the result is not a JSON object: " .. out:sub(1, 200)
  end
  return decoded
end

--- ADD the container to the network list: each plugin in order, each one
-- given the result so far. args: container_id, netns, ifname,
-- runtime_config (portMappings...). Returns the final result, or nil and
-- the first error; then the caller DELs the whole list (as libcni's
-- callers do), which undoes what the plugins before it made.
function M.add(list, args)
  local prev
  for _, plugin in ipairs(list.plugins) do
    local res, err = exec("ADD", list, plugin, prev, args)
    if not res then return nil, err end
    prev = res
  end
  return prev
end

--- DEL the container from the network list: each plugin in reverse order,
-- with the result of the ADD (prev; nil when it never finished). Every
-- plugin is run, whatever the others say. Returns true when all succeeded,
-- and the list of errors.
function M.del(list, args, prev)
  local errs = {}
  for i = #list.plugins, 1, -1 do
    local ok, err = exec("DEL", list, list.plugins[i], prev, args)
    if not ok then errs[#errs + 1] = err end
  end
  return #errs == 0, errs
end

return M
