-- bench/ping.lua - the agent's round trip: `ping` over its unix socket.
--
--   vc --root DIR run bench/ping.lua ROOTFS [COUNT]
--
-- Runs a namespace-backend pod (one container, sleep), connects to its
-- agent once, sends WARMUP untimed pings, then COUNT (default 2000) timed
-- one by one with lua-system's monotonic clock (installed with busted),
-- deletes the pod and prints "median_us min_us p90_us count".
local agent = require "vc.core.agent"
local runtime = require "vc.runtime"
local system = require "system"
local vc = require "vc"

local rootfs = assert(arg[1], "usage: ping.lua ROOTFS [COUNT]")
local count = math.tointeger(tonumber(arg[2] or "2000"))
assert(count and count > 0, "COUNT: a positive integer")
local WARMUP = 100
local id = "ping"

local pod = assert(vc.pod.run {
  id = id,
  hypervisor = "namespace",
  containers = { { id = "c", rootfs = rootfs, argv = { "/bin/sleep", "3600" } } },
})

local ok, err = pcall(function()
  local _, rundir = runtime.dirs()
  local a = assert(agent.open("unix:" .. rundir .. "/pods/" .. id .. "/agent.sock"))
  assert(a:connect(5))
  for _ = 1, WARMUP do assert(a:ping()) end
  local us = {}
  local clock = system.monotime
  for i = 1, count do
    local t0 = clock()
    assert(a:ping())
    us[i] = (clock() - t0) * 1e6
  end
  a:close()
  table.sort(us)
  local function at(q) return us[math.max(1, math.ceil(q * count))] end
  local median = count % 2 == 1 and us[(count + 1) // 2]
    or (us[count // 2] + us[count // 2 + 1]) / 2
  print(string.format("%.1f %.1f %.1f %d", median, us[1], at(0.9), count))
end)
assert(pod:delete { force = true })
if not ok then error(err, 0) end
