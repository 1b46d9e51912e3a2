-- vc.config: validation and normalisation of pod and container configs,
-- and loading of config files (.lua or .json).
--
-- Validators return a NEW table (deep copy, nothing aliased with the
-- input) or nil, "path: why" for the first problem found.  Defaults filled:
-- pod.vm, pod.volumes, pod.containers, pod.annotations ({}), pod.hooks (three
-- empty lists); container env (list), cwd "/", annotations {}, security
-- (vc.security: nothing wider than the defaults); volume
-- read_only false; hook args {}, env {}, timeout 30.  NOT filled, the
-- caller's job: pod id, hypervisor, vm.cpus/memory_mib/kernel/..., and
-- container user (nil means root) and restart (nil means "no").
local cjson = require("cjson")
local storage = require("vc.core.storage")
local security = require("vc.security")

local M = {}

M.ID_PATTERN = "[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
local TAG_PATTERN = "[A-Za-z0-9][A-Za-z0-9_.-]{0,35}"
local MAX_STRING = 4096
local NULL = cjson.null

-- Messages -----------------------------------------------------------------

local function typename(v)
  if v == NULL and type(v) == "userdata" then return "null" end
  return type(v)
end

-- A number as itself, anything else by its type.
local function shown(v)
  return type(v) == "number" and tostring(v) or typename(v)
end

local function quote(s)
  if #s > 64 then s = s:sub(1, 61) .. "..." end
  s = s:gsub('["\\]', "\\%0"):gsub("%c", function(c)
    return ("\\%d"):format(c:byte())
  end)
  return '"' .. s .. '"'
end

-- Path of t[k] given the path of t: a.b, a[1], a["x y"].
local function sub(path, k)
  if type(k) == "string" and #k <= 64 and k:match("^[A-Za-z_][A-Za-z0-9_]*$") then
    return path == "" and k or path .. "." .. k
  elseif type(k) == "string" then
    return path .. "[" .. quote(k) .. "]"
  end
  return path .. "[" .. tostring(k) .. "]"
end

local function fail(path, fmt, ...)
  return nil, path .. ": " .. fmt:format(...)
end

-- Length of t if it is a proper sequence (keys 1..n only), else nil.
local function seqlen(t)
  local n = 0
  for k in next, t do
    if math.type(k) ~= "integer" or k < 1 then return nil end
    n = n + 1
  end
  for i = 1, n do
    if rawget(t, i) == nil then return nil end
  end
  return n
end

local function clone(v)
  if type(v) ~= "table" then return v end
  local c = {}
  for k, x in next, v do c[k] = clone(x) end
  return c
end

-- Checkers: check(value, path) -> normalized | nil, msg -------------------

-- What is wrong with string s (called a NOUN in the message), or nil.
local function bad_string(s, noun)
  if s:find("\0", 1, true) then
    return noun .. " contains a NUL byte"
  elseif #s > MAX_STRING then
    return ("%s too long (%d bytes, at most %d)"):format(noun, #s, MAX_STRING)
  end
end

local function str(v, path)
  if type(v) ~= "string" then return fail(path, "expected a string, got %s", typename(v)) end
  local why = bad_string(v, "string")
  if why then return nil, path .. ": " .. why end
  return v
end

-- A string that pred accepts, else "expected WHAT".
local function str_if(pred, what)
  return function(v, path)
    local s, err = str(v, path)
    if err then return nil, err end
    if not pred(s) then return fail(path, "expected %s, got %s", what, quote(s)) end
    return s
  end
end

local function matches(pat) return function(s) return s:match(pat) ~= nil end end

local nonempty = str_if(function(s) return s ~= "" end, "a non-empty string")
local abspath = str_if(function(s) return s:sub(1, 1) == "/" end, "an absolute path")
local hypervisor = str_if(matches("^[a-z][a-z0-9_-]*$"), "a backend name ([a-z][a-z0-9_-]*)")
local boolean = function(v, path)
  if type(v) ~= "boolean" then return fail(path, "expected a boolean, got %s", typename(v)) end
  return v
end

local function name_checker(pattern, max, what)
  local rule = "must match " .. pattern
  return function(v, path)
    local s, err = str(v, path)
    if err then return nil, err end
    if #s > max or not s:match("^[A-Za-z0-9][A-Za-z0-9_.%-]*$") then
      return fail(path, "invalid %s %s (%s)", what, quote(s), rule)
    end
    return s
  end
end
local id = name_checker(M.ID_PATTERN, 64, "ID")

-- A container ID is also none of the names a pod folder holds (lock,
-- state.json...): the store (C) keeps that list and would refuse it only
-- at create time; refuse it here, with the key's path (fuzz/config checks
-- that a valid config holds IDs the store takes).
local function container_id(v, path)
  local s, err = id(v, path)
  if err then return nil, err end
  local ok, why = storage.valid_id(s, "container")
  if not ok then return nil, path .. ": " .. why end
  return s
end
local tag = name_checker(TAG_PATTERN, 36, "volume tag")

local function integer(lo, hi)
  return function(v, path)
    local i = type(v) == "number" and math.tointeger(v)
    if not i or i < lo or i > hi then
      return fail(path, "expected an integer from %d to %d, got %s", lo, hi,
                  shown(v))
    end
    return i
  end
end

local function timeout(v, path)
  if type(v) ~= "number" or not (v > 0 and v <= 3600) then
    return fail(path, "expected a number of seconds greater than 0 and at most 3600, got %s",
                shown(v))
  end
  return v
end

local function user_part(s)
  return s:match("^%d+$") or s:match("^[a-z_][a-z0-9_-]*$")
end
local user_string = str_if(function(s)
  local u, g = s:match("^([^:]*):(.*)$")
  return user_part(u or s) and (not g or user_part(g))
end, "uid[:gid] or name[:group]")

local function user(v, path)
  if type(v) == "string" then return user_string(v, path) end
  local i = type(v) == "number" and math.tointeger(v)
  if not i or i < 0 then
    return fail(path, "expected a user (uid[:gid], name[:group] or an integer >= 0), got %s",
                shown(v))
  end
  return tostring(i)
end

-- A proper sequence of items ("expected WHAT" otherwise); unique = { field,
-- what } refuses two items with the same value of that field.
local function list_of(item, what, unique)
  return function(v, path)
    local n = type(v) == "table" and seqlen(v)
    if not n then
      return fail(path, "expected %s, got %s", what,
                  type(v) == "table" and "a table that is not a sequence" or typename(v))
    end
    local out, seen = {}, {}
    for i = 1, n do
      local p = sub(path, i)
      local x, err = item(rawget(v, i), p)
      if err then return nil, err end
      if unique then
        local key = x[unique[1]]
        if seen[key] then
          return fail(sub(p, unique[1]), "duplicate %s %s", unique[2], quote(key))
        end
        seen[key] = true
      end
      out[i] = x
    end
    return out
  end
end

-- More supplementary groups: gids (integers) or names, kept as strings.
local groups = list_of(function(v, path)
  if type(v) == "string" and user_part(v) then return v end
  local i = math.type(v) == "integer" and v or (type(v) == "number" and math.tointeger(v))
  if not i or i < 0 or i > 0xfffffffe then
    return fail(path, "expected a gid (an integer >= 0) or a group name, got %s", shown(v))
  end
  return tostring(i)
end, "a list of groups (gids or names)")

local function sorted_keys(t)
  local keys = {}
  for k in next, t do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  return keys
end

-- A table with non-empty string keys that key_ok (if any) accepts; keys are
-- checked in sorted order so the first error is always the same one.
local function map_of(item, key_ok, key_what)
  return function(v, path)
    if type(v) ~= "table" then
      return fail(path, "expected a map of strings, got %s", typename(v))
    end
    local out = {}
    for _, k in ipairs(sorted_keys(v)) do
      if type(k) ~= "string" then
        return fail(path, "expected a map with string keys, got key %s", tostring(k))
      end
      local p = sub(path, k)
      local why = bad_string(k, "key")
      if why then return nil, p .. ": " .. why end
      if k == "" or (key_ok and not key_ok(k)) then
        return fail(p, "invalid key (expected %s)", key_what or "a non-empty string")
      end
      local err
      out[k], err = item(rawget(v, k), p)
      if err then return nil, err end
    end
    return out
  end
end

local function env_key_ok(k) return not k:find("=", 1, true) end
local env_map = map_of(str, env_key_ok, "a non-empty name without '='")
local env_entry = str_if(matches("^[^=]+="), 'a "K=V" string with a non-empty K')
local env_list = list_of(env_entry, 'a list of "K=V" strings')

-- A list of "K=V" strings, or a map K -> V (made a list sorted by K).
local function env(v, path)
  if type(v) ~= "table" or seqlen(v) then return env_list(v, path) end
  for k in next, v do
    if type(k) ~= "string" then
      return fail(path, 'expected a list of "K=V" strings or a map, got a mixed table')
    end
  end
  local m, err = env_map(v, path)
  if err then return nil, err end
  local out = {}
  for i, k in ipairs(sorted_keys(m)) do out[i] = k .. "=" .. m[k] end
  return out
end

-- A record: fields is a list of { name, check, required = bool, default = v }.
-- Unknown keys are reported first (sorted, so the first error is stable).
local function record(fields)
  local known = {}
  for _, f in ipairs(fields) do known[f[1]] = true end
  return function(v, path)
    if type(v) ~= "table" then return fail(path, "expected a table, got %s", typename(v)) end
    for k in next, v do
      if not known[k] then
        -- sorted, so that the first error is always the same one
        for _, u in ipairs(sorted_keys(v)) do
          if not known[u] then return fail(sub(path, u), "unknown key") end
        end
      end
    end
    local out = {}
    for _, f in ipairs(fields) do
      local name, x = f[1], rawget(v, f[1])
      if x == nil then
        if f.required then return fail(sub(path, name), "required key missing") end
        out[name] = clone(f.default)
      else
        local err
        -- (field names are Lua names: sub's checks are not needed)
        out[name], err = f[2](x, path == "" and name or path .. "." .. name)
        if err then return nil, err end
      end
    end
    return out
  end
end

-- Schema ------------------------------------------------------------------

local strings = list_of(str, "a list of strings")
local argv = function(v, path)
  local out, err = strings(v, path)
  if err then return nil, err end
  if #out == 0 then return fail(path, "expected a non-empty list of strings") end
  if out[1] == "" then return fail(sub(path, 1), "expected a non-empty string") end
  return out
end
local annotations = map_of(str)

-- The sysctls a container's namespaces have of their own (runc's list):
-- IPC (its own, or its sandbox's) and network (its pod's).
local NAMESPACED_SYSCTLS = {
  ["kernel.msgmax"] = true, ["kernel.msgmnb"] = true, ["kernel.msgmni"] = true,
  ["kernel.sem"] = true, ["kernel.shmall"] = true, ["kernel.shmmax"] = true,
  ["kernel.shmmni"] = true, ["kernel.shm_rmid_forced"] = true,
}
local function namespaced_sysctl(name)
  if not name:match("^[a-z][a-z0-9_]*%.[%w_.-]+$") or name:find("..", 1, true) then
    return false
  end
  return NAMESPACED_SYSCTLS[name] or name:match("^fs%.mqueue%.") ~= nil or
         name:match("^net%.") ~= nil
end
local sysctls = map_of(str, namespaced_sysctl,
                       "a namespaced sysctl (net.*, fs.mqueue.*, kernel.shm*, kernel.msg*,"
                       .. " kernel.sem)")

local container = record {
  { "id", container_id, required = true },
  { "rootfs", nonempty, required = true },
  { "argv", argv, required = true },
  { "env", env, default = {} },
  { "cwd", abspath, default = "/" },
  { "user", user },
  { "groups", groups },
  { "terminal", boolean, default = false },
  { "stdin", boolean, default = false },
  { "mounts", list_of(record {
      { "volume", tag },
      { "host_path", abspath },
      { "tmpfs", record {
          { "size_mib", integer(1, 1048576) },
          { "mode", str_if(matches("^[0-7][0-7][0-7][0-7]?$"), "an octal mode like \"1777\"") },
        } },
      { "path", abspath, required = true },
      { "read_only", boolean, default = false },
    }, "a list", { "path", "mount path" }), default = {} },
  { "resources", record {
      { "memory_mib", integer(4, 1048576) },
      { "pids", integer(1, 4194304) },
      { "cpu_quota_pct", integer(1, 6400) },
    }, default = {} },
  { "security", security.check_security,
    default = assert(security.check_security({}, "security")) },
  { "rlimits", security.check_rlimits },
  { "namespaces_of", container_id },
  { "sysctl", sysctls },
  { "oom_score_adj", integer(-1000, 1000) },
  { "stop_timeout", timeout },
  { "restart", str_if(function(s) return s == "no" or s == "on-failure" or s == "always" end,
                      '"no", "on-failure" or "always"') },
  { "annotations", annotations, default = {} },
}

local hook = record {
  { "path", abspath, required = true },
  { "args", strings, default = {} },
  { "env", env, default = {} },
  { "timeout", timeout, default = 30 },
}
local hooks = list_of(hook, "a list of hooks")

-- network = "none" (no network: the default) or a table. `cni` names a
-- network (vc.cni finds its conflist) or is a conflist; `netns` is a
-- namespace someone else made (an engine's), joined as it is.
local ip4 = str_if(function(s)
  local a, b, c, d = s:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  return a and tonumber(a) < 256 and tonumber(b) < 256 and tonumber(c) < 256
         and tonumber(d) < 256 or false
end, "an IPv4 address")
local ip_address = str_if(function(s)
  return s:match("^%d+%.%d+%.%d+%.%d+$") ~= nil or s:match("^[%x:]+$") ~= nil and
         s:find(":", 1, true) ~= nil
end, "an IP address")
-- (with '_', as engines' container and pod names have it and the kernel
-- takes it)
local hostname = str_if(function(s)
  return #s <= 63 and s:match("^[A-Za-z0-9][A-Za-z0-9_.-]*$") ~= nil and
         s:match("[A-Za-z0-9]$") ~= nil
end, "a hostname (letters, digits, '-', '_' and '.', at most 63)")
local net_name = name_checker("[A-Za-z0-9][A-Za-z0-9_.-]*", 64, "network name")
local port = integer(1, 65535)
local protocol = str_if(function(s) return s == "tcp" or s == "udp" or s == "sctp" end,
                        '"tcp", "udp" or "sctp"')
local port_list = list_of(record {
  { "host", port, required = true },
  { "container", port, required = true },
  { "protocol", protocol, default = "tcp" },
  { "host_ip", ip4 },
}, "a list of { host =, container = } ports")
local function ports(v, path)
  local out, err = port_list(v, path)
  if not out then return nil, err end
  local seen = {}
  for i, p in ipairs(out) do
    local key = p.host .. "/" .. p.protocol
    if seen[key] then return fail(sub(path, i), "host port %s given twice", key) end
    seen[key] = true
  end
  return out
end
local domain = str_if(function(s) return #s <= 253 and s:match("^[A-Za-z0-9.-]+$") ~= nil end,
                      "a domain name")
local network_table = record {
  { "cni", function(v, path)
      if type(v) == "table" then
        local list, err = require("vc.cni").check(v, path)
        if not list then return nil, err end
        return clone(list)
      end
      return net_name(v, path)
    end },
  { "netns", abspath },
  { "ports", ports },
  { "dns", record {
      { "servers", list_of(ip_address, "a list of IP addresses") },
      { "search", list_of(domain, "a list of domain names") },
      { "options", list_of(str_if(matches("^[%w:._-]+$"), "a resolver option"),
                           "a list of resolver options") },
    } },
  { "hostname", hostname },
}
local function network(v, path)
  if v == "none" then return "none" end
  if type(v) ~= "table" then
    return fail(path, 'expected "none" or a table { cni = NETWORK, ... }, got %s', shown(v))
  end
  local out, err = network_table(v, path)
  if not out then return nil, err end
  if (out.cni == nil) == (out.netns == nil) then
    return fail(path, "expected one of cni (a network) and netns (a namespace to join)")
  end
  if out.netns and out.ports then
    return fail(sub(path, "ports"), "ports need a network vc makes (cni), not a netns")
  end
  return out
end

local pod = record {
  { "id", id },
  { "hypervisor", hypervisor },
  { "hostname", hostname },
  { "vm", record {
      { "cpus", integer(1, 64) },
      { "memory_mib", integer(64, 65536) },
      { "kernel", abspath },
      { "initrd", abspath },
      { "kernel_params", str },
      { "tcg_cache_mib", integer(2, 1024) },
      { "boot_timeout", timeout },
      { "template", boolean },
    }, default = {} },
  { "volumes", list_of(record {
      { "tag", tag, required = true },
      { "host_path", abspath, required = true },
      { "read_only", boolean, default = false },
    }, "a list", { "tag", "volume tag" }), default = {} },
  { "containers", list_of(container, "a list", { "id", "container ID" }), default = {} },
  { "hooks", record {
      { "prestart", hooks, default = {} },
      { "poststart", hooks, default = {} },
      { "poststop", hooks, default = {} },
    }, default = { prestart = {}, poststart = {}, poststop = {} } },
  { "network", network },
  { "annotations", annotations, default = {} },
}

-- API ---------------------------------------------------------------------

local function checktable(fn, v)
  if type(v) ~= "table" then
    error(("bad argument #1 to '%s' (table expected, got %s)"):format(fn, typename(v)), 3)
  end
end

--- Whether every mount of a container is a tmpfs, a host folder or one
-- of the pod's volumes.
function M.check_mounts(ctr, volumes, path)
  local tags = {}
  for _, v in ipairs(volumes) do tags[v.tag] = true end
  for i, m in ipairs(ctr.mounts) do
    if (m.volume and 1 or 0) + (m.tmpfs and 1 or 0) + (m.host_path and 1 or 0) ~= 1 then
      return fail(sub(sub(path, "mounts"), i), "expected one of volume (a pod volume's tag),"
                  .. " host_path (a host folder of the container's own) and tmpfs (a new"
                  .. " empty file system)")
    end
    if m.volume and not tags[m.volume] then
      return fail(sub(sub(sub(path, "mounts"), i), "volume"), "no pod volume %s", quote(m.volume))
    end
  end
  return true
end

function M.pod(t)
  checktable("pod", t)
  local out, err = pod(t, "")
  if not out then return nil, err end
  local ids = {}
  for _, c in ipairs(out.containers) do ids[c.id] = true end
  for i, c in ipairs(out.containers) do
    local ok, merr = M.check_mounts(c, out.volumes, sub("containers", i))
    if not ok then return nil, merr end
    if c.namespaces_of and (c.namespaces_of == c.id or not ids[c.namespaces_of]) then
      return fail(sub(sub("containers", i), "namespaces_of"),
                  "no other container %s in the pod", quote(c.namespaces_of))
    end
  end
  return out
end

function M.container(t, path)
  checktable("container", t)
  if path ~= nil and type(path) ~= "string" then
    error(("bad argument #2 to 'container' (string expected, got %s)"):format(typename(path)), 2)
  end
  return container(t, path or "container")
end

-- true, or nil and why s is not a valid pod or container ID.
function M.valid_id(s)
  local _, err = id(s, "invalid ID")
  if err then return nil, (err:gsub("^invalid ID: invalid", "invalid")) end
  return true
end

local function sandbox_env()
  local box = {
    tostring = tostring, tonumber = tonumber, ipairs = ipairs, pairs = pairs,
    type = type, select = select, error = error, assert = assert,
    os = { getenv = os.getenv },
  }
  for _, lib in ipairs { "string", "math", "table", "utf8" } do
    box[lib] = {}
    for k, f in pairs(_G[lib]) do box[lib][k] = f end
  end
  return box
end

-- Prefix msg with "path: " unless Lua already put the chunk name first.
local function located(path, msg)
  msg = tostring(msg)
  if msg:sub(1, #path + 1) == path .. ":" then return nil, msg end
  return nil, path .. ": " .. msg
end

--- The raw (unvalidated) table a JSON config text describes; name (the
-- file's) starts the messages. What `load_file` does with a .json file.
function M.decode_json(src, name)
  local ok, v = pcall(cjson.decode, src)
  if not ok then return nil, name .. ": invalid JSON: " .. tostring(v) end
  -- "[]" decodes like "{}", so look at the text for the top level's kind.
  if type(v) ~= "table" or not src:match("^%s*{") then
    return nil, name .. ": a JSON config file must contain an object"
  end
  return v
end

-- The raw (unvalidated) table a .lua or .json config file describes.
function M.load_file(path)
  if type(path) ~= "string" then
    error(("bad argument #1 to 'load_file' (string expected, got %s)"):format(typename(path)), 2)
  end
  local ext = path:match("%.(%w+)$")
  if ext ~= "lua" and ext ~= "json" then
    return nil, path .. ": unknown config format (expected .lua or .json)"
  end
  local f, oerr = io.open(path, "rb")
  if not f then return nil, oerr end
  local src, rerr = f:read("a")
  f:close()
  if not src then return located(path, rerr) end
  if ext == "json" then return M.decode_json(src, path) end
  local chunk, lerr = load(src, "@" .. path, "t", sandbox_env())
  if not chunk then return located(path, lerr) end
  local ok, v = pcall(chunk)
  if not ok then return located(path, v) end
  if type(v) ~= "table" then return nil, path .. ": a config file must return a table" end
  return v
end

return M
