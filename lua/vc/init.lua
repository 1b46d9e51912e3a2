--- vc: pods of containers in lightweight VMs.
--
--     local vc = require "vc"
--     local pod = assert(vc.pod.run {
--       hypervisor = "qemu",
--       containers = { { id = "hello", rootfs = "rootfs", argv = { "/bin/echo", "hi" } } },
--     })
--     print(pod:container("hello"):wait())
--     pod:stop(); pod:delete()
--
-- Every call that can fail in the world returns nil and a message;
-- misuse (a wrong argument type) raises.
local build = require "vc.core.build"
local hooks = require "vc.hooks"
local log = require "vc.log"
local pod = require "vc.pod"
local policy = require "vc.policy"
local runtime = require "vc.runtime"

local M = {}

M.version = build.version

M.pod = {
  create = pod.create,
  run = pod.run,
  fetch = pod.fetch,
  list = pod.list,
}

M.log = log

--- Lua hooks for this process: vc.hooks.on(point, fn(event)) -> handle,
-- vc.hooks.off(handle), vc.hooks.clear(); points: pre_/post_ create,
-- start, stop, delete, and container_exit (see vc.hooks).
M.hooks = { on = hooks.on, off = hooks.off, clear = hooks.clear, points = policy.POINTS }

--- Policies for this process: vc.policy.use(FILE or NAME), list(),
-- check(config) (see vc.policy).
M.policy = {
  use = policy.use,
  check = function(cfg)
    if type(cfg) ~= "table" then
      error("bad argument #1 to 'check' (table expected, got " .. type(cfg) .. ")", 2)
    end
    return policy.check(cfg, pod.defaults)
  end,
  list = function()
    return require("vc.failure").catch(function()
      local out = {}
      for _, p in ipairs(policy.active()) do
        out[#out + 1] = { name = p.name, path = p.path, origin = p.origin,
                          description = p.description }
      end
      return out
    end)
  end,
}

--- Configure this process: opts.root (a folder for the pod store instead
-- of /var/lib/vc and /run/vc), opts.lock_timeout (seconds), opts.templates
-- (the folder of VM templates), opts.log_level, opts.log_format.
function M.setup(opts)
  if type(opts) ~= "table" then
    error("bad argument #1 to 'setup' (table expected, got " .. type(opts) .. ")", 2)
  end
  runtime.setup { root = opts.root, lock_timeout = opts.lock_timeout,
                  templates = opts.templates }
  local ok, err = log.setup { level = opts.log_level, format = opts.log_format }
  if not ok then error(err, 2) end
end

--- The names of the hypervisor backends built into this vc.
function M.hypervisors()
  return require("vc.core.hypervisor").backends()
end

return M
