-- bench/oneshot.lua - one one-shot pod: create and start a pod whose one
-- container runs /bin/true, wait for it, delete it.
--
--   vc --root DIR run bench/oneshot.lua ROOTFS [POD_ID [HYPERVISOR [MEMORY_MIB [NETWORK]]]]
--
-- HYPERVISOR is namespace by default (bench/ns_oneshot); bench/vm_start
-- runs it with qemu and the guest memory it compares at. NETWORK (a
-- network name, or "-" for none) puts the pod on that network
-- (bench/net_oneshot).
--
-- With VC_BENCH_STEPS=1 in the environment it also prints, on stderr, the
-- wall time of each step in milliseconds (lua-system's monotonic clock).
local rootfs = assert(arg[1], "usage: oneshot.lua ROOTFS [POD_ID]")
local id = arg[2] or "oneshot"
local hypervisor = arg[3] or "namespace"
local memory = math.tointeger(tonumber(arg[4] or ""))
local network = arg[5] and arg[5] ~= "-" and { cni = arg[5] } or nil

local clock
if os.getenv("VC_BENCH_STEPS") == "1" then
  clock = require("system").monotime
end
local last = clock and clock()
-- With VC_BENCH_MARKER=FILE (bench/timeline: the kernel tracer's
-- trace_marker), each step's end is also written there, as "vc: STEP".
local marker = os.getenv("VC_BENCH_MARKER")
marker = marker and assert(io.open(marker, "w"))
local function step(name)
  if marker then
    marker:write("vc: ", name)
    marker:flush()
  end
  if not clock then return end
  local t = clock()
  io.stderr:write(string.format("STEP|%s|%.3f\n", name, (t - last) * 1000))
  last = t
end

local vc = require "vc"
step("require")

-- vc.pod.run is create then start; the two are called apart to time them.
local pod = assert(vc.pod.create {
  id = id,
  hypervisor = hypervisor,
  vm = memory and { memory_mib = memory } or nil,
  network = network,
  containers = { { id = "c", rootfs = rootfs, argv = { "/bin/true" } } },
})
step("create")
assert(pod:start())
step("start")
local code = assert(pod:container("c"):wait(60))
step("wait")
assert(pod:delete { force = true })
step("delete")
if code ~= 0 then error("container exited with " .. tostring(code)) end
