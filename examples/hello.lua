-- hello.lua: the smallest pod: one busybox container that says hello.
--
--   vc run examples/hello.lua [HYPERVISOR]
--
-- With no HYPERVISOR the pod gets the default backend, "qemu": a real VM
-- boots and the container runs inside it.  "namespace" runs the container
-- in namespaces and cgroups on this host, without a VM; "mock" walks the
-- pod through its lifecycle without running anything.
local vc = require "vc"

local backend = arg[1]     -- nil: the default backend
local here = arg[0]:match("^(.*)/[^/]*$") or "."

if backend == "mock" then
  print("note: mock backend: no sandbox is started and no process runs")
end

local pod = assert(vc.pod.run {
  hypervisor = backend,
  containers = {
    {
      id = "hello",
      rootfs = here .. "/../build/rootfs",
      argv = { "/bin/sh", "-c", "echo hello from $(hostname), pid $$, in $(uname -s)" },
      -- the mock's stand-in for the process exiting by itself
      annotations = backend == "mock" and { ["vc.mock.exit_code"] = "0" } or nil,
    },
  },
})
print(pod)

local hello = assert(pod:container("hello"))
local code = assert(hello:wait(60))
local out = assert(hello:logs())
io.write(out)
print("container hello exited with code " .. code)

assert(pod:stop())
assert(pod:delete())
print("pod " .. pod.id .. " deleted")
