--- The glue between a stored pod and its backends: the hypervisor handle
-- for its VM (with the runtime facts saved by whichever vc process started
-- it) and a connected agent.
local agent = require "vc.core.agent"
local build = require "vc.core.build"
local failure = require "vc.failure"
local hypervisor = require "vc.core.hypervisor"
local lazy = require "vc.lazy"
local network = lazy "vc.network"
local security = lazy "vc.security"
local store = require "vc.store"

local M = {}

-- Seconds to wait for the agent while a sandbox boots (vm.boot_timeout).
M.AGENT_TIMEOUT = 30

-- Under TCG a boot is CPU-bound: on a busy host (many VMs booting at once
-- on few cores) it takes longer in wall time, not in CPU time. There the
-- boot timeout counts the CPU time QEMU gets, up to this many times the
-- timeout in wall time (for a guest hung idle).
M.TCG_WALL_FACTOR = 10
local ETIMEDOUT = 110

-- The guest image built by `make guest` (installed alike under share/vc).
local function guest_file(name)
  return build.home .. "/build/guest/" .. name
end

--- What the hypervisor backend needs to know about a pod.
function M.vm_spec(st, cfg)
  return {
    pod_id = cfg.id,
    run_dir = st:paths(cfg.id).run_dir,
    cpus = cfg.vm.cpus,
    memory_mib = cfg.vm.memory_mib,
    kernel = cfg.vm.kernel or guest_file("vmlinux"),
    initrd = cfg.vm.initrd or guest_file("initrd"),
    kernel_params = cfg.vm.kernel_params,
    tcg_cache_mib = cfg.vm.tcg_cache_mib,
    volumes = cfg.volumes,
    -- (a pod without a network does not load vc.network: network.wanted)
    netns = cfg.network and network.netns_path(st, cfg) or nil,
    taps = cfg.network and cfg.hypervisor == "qemu" and network.taps(st, cfg) or nil,
    annotations = cfg.annotations,
  }
end

--- What the agent needs to create a container.
function M.container_spec(ccfg)
  return {
    id = ccfg.id,
    rootfs = ccfg.rootfs,
    argv = ccfg.argv,
    env = ccfg.env,
    cwd = ccfg.cwd,
    user = ccfg.user,
    groups = ccfg.groups,
    oom_score_adj = ccfg.oom_score_adj,
    terminal = ccfg.terminal,
    stdin = ccfg.stdin,
    mounts = ccfg.mounts,
    resources = ccfg.resources,
    security = security.effective(ccfg),
    annotations = ccfg.annotations,
    namespaces_of = ccfg.namespaces_of,
    sysctl = ccfg.sysctl,
  }
end

--- The hypervisor handle of a pod, restored from hypervisor.json when an
-- earlier process saved it. info: that record when the caller has read it
-- already (false: read, and missing), so a listing reads it once. extra:
-- fields added to the VM spec (incoming: a template to start from,
-- ram_file: its guest RAM).
function M.hypervisor(st, cfg, info, extra)
  if info == nil then info = store.read_opt(st, cfg.id, nil, "hypervisor") end
  local spec = M.vm_spec(st, cfg)
  for k, v in pairs(extra or {}) do spec[k] = v end
  return failure.check(hypervisor.open(cfg.hypervisor, spec, info or nil))
end

--- Start what a coming pod of backend name will wait for (on the
-- namespace backend, the kernel's wait before its first container's cgroup
-- move); makes nothing, so it may come before the config is checked.
function M.warm(name)
  hypervisor.warm(name)
end

--- Before a VM is launched: its record says one is coming, until
-- save_info names it. A vc that dies between the two leaves a VM no record
-- names, which delete then looks for (needs_scan).
function M.save_launching(st, cfg)
  store.write(st, cfg.id, nil, "hypervisor", { backend = cfg.hypervisor, launching = true })
end

--- Whether the pod may have backend processes its VM record does not name
-- (a launch cut short, or no record), so that finding them takes a look
-- at every process on the host. info: the pod's hypervisor.json, or nil.
function M.needs_scan(info)
  return info == nil or info.launching == true
end

--- Save what a started VM's later users need.
function M.save_info(st, cfg, hv)
  local info = hv:info()
  store.write(st, cfg.id, nil, "hypervisor", info)
  store.write(st, cfg.id, nil, "agent", { address = info.agent })
end

-- The last lines a VM wrote on its console, to explain a failed boot.
local function console_tail(run_dir)
  local f = io.open(run_dir .. "/console.log", "rb")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  local lines = {}
  for line in text:gmatch("[^\r\n]+") do lines[#lines + 1] = line end
  if #lines == 0 then return nil end
  return table.concat(lines, "\n", math.max(1, #lines - 9))
end

-- Seconds of CPU time process pid has used (all its threads; USER_HZ is
-- 100 on Linux), or nil when it is gone or a zombie.
local function cpu_seconds(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  local text = f and f:read("a")
  if f then f:close() end
  local rest = text and text:match("%) (.*)")
  if not rest then return nil end
  local fields = {}
  for w in rest:gmatch("%S+") do fields[#fields + 1] = w end
  -- after the name: state(1) ... utime(12) stime(13)
  if fields[1] == "Z" or fields[1] == "X" then return nil end
  local utime, stime = tonumber(fields[12]), tonumber(fields[13])
  return utime and stime and (utime + stime) / 100
end

-- a:connect for a VM that may still be booting: under TCG, for timeout
-- seconds of QEMU's CPU time (see TCG_WALL_FACTOR), else of wall time.
local function connect_booting(a, hv, timeout)
  local info = hv:info()
  local pid = math.tointeger(info.pid)
  local cpu0 = info.accel == "tcg" and pid and cpu_seconds(pid)
  if not cpu0 then return a:connect(timeout) end
  local wall_end = os.time() + timeout * M.TCG_WALL_FACTOR
  local used = 0
  while true do
    local ok, err, errno = a:connect(math.max(1, timeout - used))
    -- only a guest still silent is waited for again, not a closed port
    if ok or errno ~= ETIMEDOUT then return ok, err, errno end
    local cpu = cpu_seconds(pid)
    used = cpu and cpu - cpu0 or math.huge
    if used >= timeout or os.time() >= wall_end then
      if cpu then err = string.format("%s (%.1fs of CPU time)", err, used) end
      return ok, err, errno
    end
  end
end

--- A connected agent for the pod whose VM hv runs. st (optional) lets a
-- failure quote the end of the VM's console (run_dir: that of another VM
-- than the pod's, a template's); timeout (optional) replaces the boot
-- timeout.
function M.agent(cfg, hv, st, timeout, run_dir)
  local address = hv:info().agent
  if address == "" then
    failure.raise("pod %s: its sandbox is not running", cfg.id)
  end
  local a = failure.check(agent.open(address, { annotations = cfg.annotations }))
  local ok, err, errno
  if timeout then
    ok, err, errno = a:connect(timeout)
  else
    ok, err, errno = connect_booting(a, hv, cfg.vm.boot_timeout or M.AGENT_TIMEOUT)
  end
  if not ok then
    a:close()
    failure.check_interrupt(string.format("pod %s: %s", cfg.id, err), errno)
    run_dir = run_dir or st and st:paths(cfg.id).run_dir
    local tail = run_dir and console_tail(run_dir)
    failure.raise("pod %s: %s%s", cfg.id, err,
                  tail and ("; the end of its console:\n" .. tail) or "")
  end
  return a
end

--- An agent if one answers within timeout seconds, else nil: for reads
-- that can do without it. (A VM's agent serves one connection at a time.)
function M.try_agent(cfg, hv, timeout)
  local ok, a = pcall(M.agent, cfg, hv, nil, timeout)
  if ok then return a end
  return nil
end

-- The name a container's host folder mount n is shared under ('@' is in
-- no container ID).
local function share_name(cid, n) return cid .. "@" .. n end

--- A container's spec for the agent, its rootfs and host folders shared
-- into the sandbox.
function M.shared_container_spec(hv, ccfg)
  local spec = M.container_spec(ccfg)
  spec.rootfs = failure.check(hv:share_rootfs(ccfg.id, ccfg.rootfs))
  local mounts = {}
  for i, m in ipairs(ccfg.mounts or {}) do
    if m.host_path then
      mounts[i] = { source = failure.check(hv:share_rootfs(share_name(ccfg.id, i), m.host_path)),
                    path = m.path, read_only = m.read_only }
    else
      mounts[i] = m
    end
  end
  spec.mounts = mounts
  return spec
end

--- Undo shared_container_spec's sharing.
function M.unshare_container(hv, ccfg)
  for i, m in ipairs(ccfg.mounts or {}) do
    if m.host_path then failure.check(hv:unshare_rootfs(share_name(ccfg.id, i))) end
  end
  return failure.check(hv:unshare_rootfs(ccfg.id))
end

return M
