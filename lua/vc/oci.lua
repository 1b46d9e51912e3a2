--- vc.oci: an OCI bundle (https://github.com/opencontainers/runtime-spec)
-- as a vc pod config, for vc-runtime (lua/vc/cli/oci.lua). One bundle is
-- one pod with one container, both named after the engine's container ID;
-- what the bundle asks for that vc does itself (the proc, sysfs, devpts,
-- mqueue and tmpfs mounts, the namespaces) is vc's as it always does it,
-- and the pod's policies judge the rest like any config.
local cjson = require "cjson.safe"
local host = require "vc.core.host"
local security = require "vc.security"
local storage = require "vc.core.storage"

local M = {}

--- The annotation that picks the backend (default qemu: a VM per pod).
M.HYPERVISOR_ANNOTATION = "vc.hypervisor"

-- Mount types vc makes in every container itself.
local OWN_TYPES = { proc = true, sysfs = true, devpts = true, mqueue = true, tmpfs = true,
                    cgroup = true, cgroup2 = true }

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  return text
end

--- The decoded config.json of bundle dir, or nil and runc's kind of message.
function M.load(bundle)
  local path = bundle .. "/config.json"
  local text = read(path)
  if not text then
    return nil, ("open %s: no such file or directory"):format(path)
  end
  local spec, err = cjson.decode(text)
  if type(spec) ~= "table" then
    return nil, ("%s: invalid JSON: %s"):format(path, err or "not an object")
  end
  if type(spec.process) ~= "table" or type(spec.process.args) ~= "table" or
     #spec.process.args == 0 then
    return nil, path .. ": process.args must be a non-empty list"
  end
  if type(spec.root) ~= "table" or type(spec.root.path) ~= "string" then
    return nil, path .. ": root.path is required"
  end
  return spec
end

-- The bundle's capabilities (its bounding set, which engines give in
-- full) as vc's changes to its default set: what it adds, what it drops.
local function capabilities(p)
  local caps = type(p.capabilities) == "table" and p.capabilities.bounding
  if type(caps) ~= "table" then return nil end
  local want, default = {}, {}
  for _, c in ipairs(caps) do if type(c) == "string" then want[c] = true end end
  for _, c in ipairs(security.DEFAULT_CAPABILITIES) do default[c] = true end
  local add, drop = {}, {}
  for c in pairs(want) do if not default[c] then add[#add + 1] = c end end
  for c in pairs(default) do if not want[c] then drop[#drop + 1] = c end end
  table.sort(add)
  table.sort(drop)
  return { add = add, drop = drop }
end

local function strings(t)
  local out = {}
  for k, v in pairs(type(t) == "table" and t or {}) do
    if type(k) == "string" and type(v) == "string" then out[k] = v end
  end
  return out
end

--- The vc pod config for container id from bundle (absolute) and its spec.
function M.pod_config(id, bundle, spec)
  local p = spec.process
  local root = spec.root.path
  if root:sub(1, 1) ~= "/" then root = bundle .. "/" .. root end
  root = assert(storage.abspath(root))
  local user
  if type(p.user) == "table" and (p.user.uid or p.user.gid) then
    user = ("%d:%d"):format(math.tointeger(p.user.uid or 0) or 0,
                            math.tointeger(p.user.gid or 0) or 0)
  end
  local annotations = strings(spec.annotations)
  local resources = {}
  local res = type(spec.linux) == "table" and spec.linux.resources or nil
  if type(res) == "table" then
    local mem = type(res.memory) == "table" and tonumber(res.memory.limit)
    if mem and mem > 0 then resources.memory_mib = math.max(4, math.ceil(mem / 1048576)) end
    local pids = type(res.pids) == "table" and math.tointeger(res.pids.limit)
    if pids and pids > 0 then resources.pids = pids end
  end
  -- directories bound from the host become the pod's volumes; files and
  -- what vc makes itself are left to vc (its /etc files, /dev, /proc...)
  local volumes, mounts = {}, {}
  for _, m in ipairs(type(spec.mounts) == "table" and spec.mounts or {}) do
    local dest, src = m.destination, m.source
    local opts = type(m.options) == "table" and m.options or {}
    local bind = m.type == "bind" or m.type == nil and (function()
      for _, o in ipairs(opts) do if o == "bind" or o == "rbind" then return true end end
      return false
    end)()
    if bind and not OWN_TYPES[m.type or ""] and type(dest) == "string" and
       type(src) == "string" and dest:sub(1, 5) ~= "/dev/" and dest ~= "/dev" and
       host.kind(src) == "directory" then
      local ro = false
      for _, o in ipairs(opts) do if o == "ro" then ro = true end end
      local tag = "v" .. (#volumes + 1)
      volumes[#volumes + 1] = { tag = tag, host_path = src, read_only = ro }
      mounts[#mounts + 1] = { volume = tag, path = dest, read_only = ro }
    end
  end
  local network
  for _, ns in ipairs(type(spec.linux) == "table" and type(spec.linux.namespaces) == "table"
                      and spec.linux.namespaces or {}) do
    if ns.type == "network" and type(ns.path) == "string" and ns.path ~= "" then
      network = { netns = ns.path }
    end
  end
  return {
    id = id,
    hypervisor = annotations[M.HYPERVISOR_ANNOTATION] or nil,
    annotations = annotations,
    volumes = volumes,
    network = network,
    containers = { {
      id = id, rootfs = root, argv = p.args,
      env = type(p.env) == "table" and p.env or {}, cwd = p.cwd or "/", user = user,
      terminal = p.terminal == true, stdin = true,
      mounts = mounts, resources = resources,
      annotations = annotations,
      security = {
        read_only_rootfs = spec.root.readonly == true or nil,
        -- (what is wider than vc's default the policies judge)
        no_new_privileges = p.noNewPrivileges == false and false or nil,
        capabilities = capabilities(p),
      },
    } },
  }
end

return M
