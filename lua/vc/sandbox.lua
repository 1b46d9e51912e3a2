--- The glue between a stored pod and its backends: the hypervisor handle
-- for its VM (with the runtime facts saved by whichever vc process started
-- it) and a connected agent.
local agent = require "vc.core.agent"
local failure = require "vc.failure"
local hypervisor = require "vc.core.hypervisor"
local store = require "vc.store"

local M = {}

-- Seconds to wait for the agent while a sandbox boots.
M.AGENT_TIMEOUT = 30

--- What the hypervisor backend needs to know about a pod.
function M.vm_spec(st, cfg)
  return {
    pod_id = cfg.id,
    run_dir = st:paths(cfg.id).run_dir,
    cpus = cfg.vm.cpus,
    memory_mib = cfg.vm.memory_mib,
    kernel = cfg.vm.kernel,
    initrd = cfg.vm.initrd,
    kernel_params = cfg.vm.kernel_params,
    volumes = cfg.volumes,
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
    mounts = ccfg.mounts,
    resources = ccfg.resources,
    annotations = ccfg.annotations,
  }
end

--- The hypervisor handle of a pod, restored from hypervisor.json when an
-- earlier process saved it.
function M.hypervisor(st, cfg)
  local info = store.read_opt(st, cfg.id, nil, "hypervisor")
  return failure.check(hypervisor.open(cfg.hypervisor, M.vm_spec(st, cfg), info))
end

--- Save what a started VM's later users need.
function M.save_info(st, cfg, hv)
  local info = hv:info()
  store.write(st, cfg.id, nil, "hypervisor", info)
  store.write(st, cfg.id, nil, "agent", { address = info.agent })
end

--- A connected agent for the pod whose VM hv runs.
function M.agent(cfg, hv)
  local address = hv:info().agent
  if address == "" then
    failure.raise("pod %s: its sandbox is not running", cfg.id)
  end
  local a = failure.check(agent.open(address, { annotations = cfg.annotations }))
  failure.check(a:connect(M.AGENT_TIMEOUT))
  return a
end

return M
