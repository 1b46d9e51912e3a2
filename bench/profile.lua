-- bench/profile.lua - where a one-shot pod's time goes, by C core call.
--
--   vc --root DIR run bench/profile.lua ROOTFS [ROUNDS [HYPERVISOR]]
--
-- HYPERVISOR is namespace by default; with qemu the pods get 128 MiB.
-- Wraps every method of the C core handles (the store, the hypervisor,
-- the agent) with a wall clock (lua-system's monotonic clock), then runs
-- ROUNDS (default 1) one-shot pods as bench/oneshot.lua does. For each
-- round it prints one line per call name and per lifecycle step:
--   PROF|ROUND|NAME|CALLS|MS
-- plus "pod total", "(all C core calls)" and "(Lua: total minus C core
-- calls)", the time spent in Lua itself (JSON, validation, orchestration).
-- bench/profile runs it in separate processes and takes the medians.
local system = require "system"
local clock = system.monotime

local spent = {} -- name -> seconds, for the current round
local calls = {} -- name -> count, for the current round

local function timed(key, fn)
  return function(...)
    local t0 = clock()
    local r = table.pack(fn(...))
    spent[key] = (spent[key] or 0) + clock() - t0
    calls[key] = (calls[key] or 0) + 1
    return table.unpack(r, 1, r.n)
  end
end

-- Every handle of a kind shares one metatable: wrap its methods once.
local function wrap_methods(handle, prefix)
  local mt = debug.getmetatable(handle)
  local index = mt and mt.__index
  if type(index) ~= "table" or rawget(index, "__bench_wrapped") then return end
  rawset(index, "__bench_wrapped", true)
  for name, fn in pairs(index) do
    if type(fn) == "function" then index[name] = timed(prefix .. ":" .. name, fn) end
  end
end

-- Wrap a module's constructor; the handles it returns get wrapped methods.
local function wrap_open(modname, prefix)
  local mod = require(modname)
  local open = timed(prefix .. ".open", mod.open)
  mod.open = function(...)
    local h, a, b = open(...)
    if h then wrap_methods(h, prefix) end
    return h, a, b
  end
end

wrap_open("vc.core.storage", "store")
wrap_open("vc.core.hypervisor", "hv")
wrap_open("vc.core.agent", "agent")
-- The store is opened once per process and cached: wrap its handle now.
wrap_methods(require("vc.runtime").store(), "store")

local vc = require "vc"

local rootfs = assert(arg[1], "usage: profile.lua ROOTFS [ROUNDS]")
local rounds = math.tointeger(tonumber(arg[2] or "1")) or 1
local hv = arg[3] or "namespace"

for r = 1, rounds do
  spent, calls = {}, {}
  local t0 = clock()
  local t = t0
  local function step(name)
    local now = clock()
    print(string.format("PROF|%d|step %s|1|%.3f", r, name, (now - t) * 1000))
    t = now
  end
  local pod = assert(vc.pod.create {
    id = "prof" .. r, hypervisor = hv,
    vm = hv == "qemu" and { memory_mib = 128 } or nil,
    containers = { { id = "c", rootfs = rootfs, argv = { "/bin/true" } } },
  })
  step("create")
  assert(pod:start())
  step("start")
  assert(pod:container("c"):wait(60) == 0)
  step("wait")
  assert(pod:delete { force = true })
  step("delete")
  local total = (clock() - t0) * 1000
  local in_c = 0
  for name, s in pairs(spent) do
    print(string.format("PROF|%d|%s|%d|%.3f", r, name, calls[name], s * 1000))
    in_c = in_c + s * 1000
  end
  print(string.format("PROF|%d|pod total|1|%.3f", r, total))
  print(string.format("PROF|%d|(all C core calls)||%.3f", r, in_c))
  print(string.format("PROF|%d|(Lua: total minus C core calls)||%.3f", r, total - in_c))
end
