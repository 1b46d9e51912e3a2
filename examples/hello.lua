-- hello.lua: the smallest pod: one container that says hello.
--
--   vc run examples/hello.lua [HYPERVISOR]
--
-- The default backend is "mock" until the qemu backend lands: it boots no
-- VM and runs no process, it only walks the pod through its lifecycle.
local vc = require "vc"

local backend = arg[1] or "mock"
local here = arg[0]:match("^(.*)/[^/]*$") or "."

if backend == "mock" then
  print("note: mock backend: no VM is booted and no process runs;"
        .. " the pod only goes through its lifecycle")
end

local pod = assert(vc.pod.run {
  hypervisor = backend,
  containers = {
    {
      id = "hello",
      rootfs = here .. "/../build/rootfs",
      argv = { "/bin/echo", "hello from vc" },
      -- the mock's stand-in for the process exiting by itself
      annotations = backend == "mock" and { ["vc.mock.exit_code"] = "0" } or nil,
    },
  },
})
print(pod)

local hello = assert(pod:container("hello"))
local code = assert(hello:wait(60))
print("container hello exited with code " .. code)

assert(pod:stop())
assert(pod:delete())
print("pod " .. pod.id .. " deleted")
