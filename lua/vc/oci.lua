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

local function names(list)
  local out = {}
  for _, c in ipairs(type(list) == "table" and list or {}) do
    if type(c) == "string" then out[#out + 1] = c end
  end
  return out
end

-- The bundle's capabilities: its bounding set as vc's changes to its
-- default set (what it adds, what it drops: what the policies judge), and
-- its other sets as they are, each cut to the bounding set, the ambient
-- one to what is permitted and inheritable (what the kernel would keep).
local function capabilities(p)
  local c = type(p.capabilities) == "table" and p.capabilities or nil
  if not c then return nil end
  local bounding = security.set_of(names(c.bounding))
  local default = security.set_of(security.DEFAULT_CAPABILITIES)
  local out = { add = {}, drop = {} }
  for cap in pairs(bounding) do if not default[cap] then out.add[#out.add + 1] = cap end end
  for cap in pairs(default) do if not bounding[cap] then out.drop[#out.drop + 1] = cap end end
  table.sort(out.add)
  table.sort(out.drop)
  local within = {}
  for _, key in ipairs { "effective", "permitted", "inheritable", "ambient" } do
    local l = {}
    for _, cap in ipairs(names(c[key])) do
      if bounding[cap] and (key ~= "ambient" or within.permitted[cap] and within.inheritable[cap])
      then l[#l + 1] = cap end
    end
    out[key], within[key] = l, security.set_of(l)
  end
  return out
end

-- process.rlimits ({ type = "RLIMIT_NOFILE", soft, hard }) as vc's.
local function rlimits(list)
  if type(list) ~= "table" or #list == 0 then return nil end
  local out = {}
  for _, r in ipairs(list) do
    local name = type(r) == "table" and type(r.type) == "string" and
                 r.type:match("^RLIMIT_(%u+)$")
    if name then
      local function value(v)
        -- RLIM_INFINITY (2^64-1) decodes as a float beyond an integer
        if type(v) ~= "number" or v < 0 or v >= security.MAX_VALUE then return "unlimited" end
        return math.tointeger(v) or math.floor(v)
      end
      out[name:lower()] = { soft = value(r.soft), hard = value(r.hard) }
    end
  end
  return out
end

local function strings(t)
  local out = {}
  for k, v in pairs(type(t) == "table" and t or {}) do
    if type(k) == "string" and type(v) == "string" then out[k] = v end
  end
  return out
end

--- process.user as vc's user ("uid:gid") and groups (additionalGids).
function M.user(u)
  if type(u) ~= "table" then return nil end
  local user
  if u.uid or u.gid then
    user = ("%d:%d"):format(math.tointeger(u.uid or 0) or 0, math.tointeger(u.gid or 0) or 0)
  end
  local groups
  if type(u.additionalGids) == "table" and #u.additionalGids > 0 then
    groups = {}
    for i, g in ipairs(u.additionalGids) do groups[i] = g end
  end
  return user, groups
end

-- A tmpfs's size option ("64m", "65536k", bytes) in MiB, or nil.
local function size_mib(v)
  local n, unit = tostring(v):lower():match("^(%d+)([kmg]?)$")
  if not n then return nil end
  local bytes = tonumber(n) * ({ k = 1024, m = 1048576, g = 1073741824 })[unit ~= "" and unit
                                                                           or "x"] or tonumber(n)
  return math.max(1, math.ceil(bytes / 1048576))
end

-- The bundle's folder binds (host folders of the container's own) and
-- tmpfs mounts, in its order; files and what vc makes itself are left to
-- vc (its /etc files, /dev, /dev/shm, /proc...).
local function binds(spec)
  local mounts = {}
  for _, m in ipairs(type(spec.mounts) == "table" and spec.mounts or {}) do
    local dest, src = m.destination, m.source
    local opts = type(m.options) == "table" and m.options or {}
    if m.type == "tmpfs" and type(dest) == "string" and dest:sub(1, 1) == "/" and
       dest ~= "/dev" and dest:sub(1, 5) ~= "/dev/" then
      local t, ro = {}, false
      for _, o in ipairs(opts) do
        local k, v = tostring(o):match("^(%w+)=(.*)$")
        if k == "size" then t.size_mib = size_mib(v) end
        if k == "mode" and v:match("^[0-7]+$") then t.mode = ("%04o"):format(tonumber(v, 8)) end
        if o == "ro" then ro = true end
      end
      mounts[#mounts + 1] = { tmpfs = t, path = dest, read_only = ro }
    end
    local bind = m.type == "bind" or m.type == nil and (function()
      for _, o in ipairs(opts) do if o == "bind" or o == "rbind" then return true end end
      return false
    end)()
    if bind and not OWN_TYPES[m.type or ""] and type(dest) == "string" and
       type(src) == "string" and dest:sub(1, 5) ~= "/dev/" and dest ~= "/dev" and
       host.kind(src) == "directory" then
      local ro = false
      for _, o in ipairs(opts) do if o == "ro" then ro = true end end
      mounts[#mounts + 1] = { host_path = src, path = dest, read_only = ro }
    end
  end
  return mounts
end

--- The vc container config for container id from bundle (absolute) and
-- its spec; sandbox: the ID of the container whose UTS and IPC namespaces
-- it joins (its pod's sandbox), or nil.
function M.container_config(id, bundle, spec, sandbox)
  local p = spec.process
  local root = spec.root.path
  if root:sub(1, 1) ~= "/" then root = bundle .. "/" .. root end
  root = assert(storage.abspath(root))
  local user, groups = M.user(p.user)
  local annotations = strings(spec.annotations)
  local resources = {}
  local linux = type(spec.linux) == "table" and spec.linux or {}
  local res = linux.resources
  if type(res) == "table" then
    local mem = type(res.memory) == "table" and tonumber(res.memory.limit)
    if mem and mem > 0 then resources.memory_mib = math.max(4, math.ceil(mem / 1048576)) end
    local pids = type(res.pids) == "table" and math.tointeger(res.pids.limit)
    if pids and pids > 0 then resources.pids = pids end
  end
  local mounts = binds(spec)
  return {
    id = id, rootfs = root, argv = p.args,
    env = type(p.env) == "table" and p.env or {}, cwd = p.cwd or "/", user = user,
    groups = groups,
    terminal = p.terminal == true, stdin = true,
    mounts = mounts, resources = resources,
    annotations = annotations,
    rlimits = rlimits(p.rlimits),
    oom_score_adj = math.tointeger(p.oomScoreAdj),
    namespaces_of = sandbox,
    sysctl = type(linux.sysctl) == "table" and next(linux.sysctl) and linux.sysctl or nil,
    security = {
      read_only_rootfs = spec.root.readonly == true or nil,
      -- as runc and crun: no_new_privs only when the bundle asks
      no_new_privileges = p.noNewPrivileges == true,
      -- (what is wider than vc's default the policies judge)
      capabilities = capabilities(p),
      masked_paths = linux.maskedPaths,
      readonly_paths = linux.readonlyPaths,
      seccomp = type(linux.seccomp) == "table" and linux.seccomp or nil,
    },
  }
end

--- The vc pod config for container id from bundle (absolute) and its
-- spec: a pod of that one container (the sandbox of any that join it).
function M.pod_config(id, bundle, spec)
  local ccfg = M.container_config(id, bundle, spec)
  local annotations = strings(spec.annotations)
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
    network = network,
    hostname = type(spec.hostname) == "string" and spec.hostname ~= "" and spec.hostname or nil,
    containers = { ccfg },
  }
end

-- The annotations of Kubernetes' CRI (containerd's, CRI-O's; podman
-- writes CRI-O's on the containers of its pods).
local CONTAINER_TYPE = { "io.kubernetes.cri.container-type", "io.kubernetes.cri-o.ContainerType" }
local SANDBOX_ID = { "io.kubernetes.cri.sandbox-id", "io.kubernetes.cri-o.SandboxID" }

--- The ID of the sandbox container whose pod the bundle's container
-- joins, or nil: it is a sandbox (a pod of its own). A bundle marked a
-- sandbox, or with neither annotation, is one, unless its namespaces
-- are paths /proc/PID/ns/... of a container's process: pid_owner(pid)
-- names that container (or nil).
function M.sandbox_of(id, spec, pid_owner)
  local ann = strings(spec.annotations)
  local kind, sid
  for _, k in ipairs(CONTAINER_TYPE) do kind = kind or ann[k] end
  for _, k in ipairs(SANDBOX_ID) do sid = sid or ann[k] end
  if kind == "sandbox" then return nil end
  if sid and sid ~= id then return sid end
  local linux = type(spec.linux) == "table" and spec.linux or {}
  for _, ns in ipairs(type(linux.namespaces) == "table" and linux.namespaces or {}) do
    local pid = type(ns) == "table" and type(ns.path) == "string" and
                ns.path:match("^/proc/(%d+)/ns/%a+$")
    local owner = pid and pid_owner(tonumber(pid))
    if owner and owner ~= id then return owner end
  end
  return nil
end

return M
