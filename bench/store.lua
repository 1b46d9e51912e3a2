-- bench/store.lua - the vc side of the store benchmarks, on the mock
-- backend (it boots nothing: what is left is the store, the state machine
-- and the Lua above them).
--
--   vc --root DIR run bench/store.lua fill COUNT
--       store COUNT ready pods (s00001...), as `vc pod create --hypervisor
--       mock` would, in one process; prints the count
--   vc --root DIR run bench/store.lua transitions COUNT
--       run a pod, then time COUNT state transitions one by one (pause,
--       resume, pause...: each locks the pod, reads its records, checks
--       the move, pauses or resumes the mock VM and writes state.json),
--       with lua-system's monotonic clock; deletes the pod and prints
--       "median_us p90_us count bytes", bytes: the size of state.json
local system = require "system"
local runtime = require "vc.runtime"
local vc = require "vc"

local cmd, count = arg[1], math.tointeger(tonumber(arg[2] or ""))
assert((cmd == "fill" or cmd == "transitions") and count and count > 0,
       "usage: store.lua fill|transitions COUNT")

local function quantile(sorted, q)
  return sorted[math.max(1, math.ceil(#sorted * q))]
end

local function median(sorted)
  local n = #sorted
  if n % 2 == 1 then return sorted[(n + 1) // 2] end
  return (sorted[n // 2] + sorted[n // 2 + 1]) / 2
end

if cmd == "fill" then
  for i = 1, count do
    assert(vc.pod.create { id = string.format("s%05d", i), hypervisor = "mock" })
  end
  print(#vc.pod.list())
  return
end

local WARMUP = 10
local pod = assert(vc.pod.run { id = "transitions", hypervisor = "mock" })
local ok, err = pcall(function()
  local function step(i)
    if i % 2 == 1 then return assert(pod:pause()) end
    return assert(pod:resume())
  end
  for i = 1, WARMUP do step(i) end
  if WARMUP % 2 == 1 then step(WARMUP + 1) end
  local samples = {}
  for i = 1, count do
    local t0 = system.monotime()
    step(i)
    samples[i] = (system.monotime() - t0) * 1e6
  end
  table.sort(samples)
  local _, run = runtime.dirs()
  local f = assert(io.open(run .. "/pods/transitions/state.json", "rb"))
  local bytes = #f:read("a")
  f:close()
  print(string.format("%.0f %.0f %d %d", median(samples), quantile(samples, 0.9),
                      count, bytes))
end)
assert(pod:delete { force = true })
assert(ok, err)
