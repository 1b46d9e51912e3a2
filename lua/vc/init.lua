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
local log = require "vc.log"
local pod = require "vc.pod"
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

--- Configure this process: opts.root (a folder for the pod store instead
-- of /var/lib/vc and /run/vc), opts.lock_timeout (seconds),
-- opts.log_level, opts.log_format.
function M.setup(opts)
  if type(opts) ~= "table" then
    error("bad argument #1 to 'setup' (table expected, got " .. type(opts) .. ")", 2)
  end
  runtime.setup { root = opts.root, lock_timeout = opts.lock_timeout }
  local ok, err = log.setup { level = opts.log_level, format = opts.log_format }
  if not ok then error(err, 2) end
end

--- The names of the hypervisor backends built into this vc.
function M.hypervisors()
  return require("vc.core.hypervisor").backends()
end

return M
