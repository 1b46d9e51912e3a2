-- bench/profile.lua - where a one-shot pod's time goes, by C core call.
--
--   vc --root DIR run bench/profile.lua ROOTFS [ROUNDS]
--
-- Wraps every method of the C core handles (the store, the hypervisor,
-- the agent) with a wall clock (lua-system's monotonic clock), then runs
-- ROUNDS (default 20) one-shot pods as bench/oneshot.lua does, in this one
-- process. Prints, per call, how many calls one pod makes and the median
-- milliseconds one pod spends in them, then each lifecycle step and what
-- is left for Lua itself (JSON, validation, the orchestration).
-- Process start and exit are not in here: bench/ns_oneshot's total minus
-- this script's "pod total" is that.
local system = require "system"
local clock = system.monotime

local spent = {} -- name -> seconds, for the current round
local calls = {} -- name -> count, for the current round

local function wrap_methods(handle, prefix)
  local mt = debug.getmetatable(handle)
  local index = mt and mt.__index
  if type(index) ~= "table" or rawget(index, "__bench_wrapped") then return end
  rawset(index, "__bench_wrapped", true)
  for name, fn in pairs(index) do
    if type(fn) == "function" then
      local key = prefix .. ":" .. name
      index[name] = function(...)
        local t0 = clock()
        local r = table.pack(fn(...))
        spent[key] = (spent[key] or 0) + clock() - t0
        calls[key] = (calls[key] or 0) + 1
        return table.unpack(r, 1, r.n)
      end
    end
  end
end

-- Wrap a module's constructor so the first handle it returns gets its
-- methods (shared by every handle through the metatable) wrapped.
local function wrap_open(modname, fname, prefix)
  local mod = require(modname)
  local open = mod[fname]
  mod[fname] = function(...)
    local t0 = clock()
    local r = table.pack(open(...))
    local key = prefix .. "." .. fname
    spent[key] = (spent[key] or 0) + clock() - t0
    calls[key] = (calls[key] or 0) + 1
    if r[1] then wrap_methods(r[1], prefix) end
    return table.unpack(r, 1, r.n)
  end
end

wrap_open("vc.core.storage", "open", "store")
wrap_open("vc.core.hypervisor", "open", "hv")
wrap_open("vc.core.agent", "open", "agent")

-- The store is opened once per process and cached: wrap its handle now.
wrap_methods(require("vc.runtime").store(), "store")

local vc = require "vc"

local rootfs = assert(arg[1], "usage: profile.lua ROOTFS [ROUNDS]")
local rounds = math.tointeger(tonumber(arg[2] or "20")) or 20

local samples = {} -- name -> list of per-round ms
local function keep(name, ms)
  samples[name] = samples[name] or {}
  table.insert(samples[name], ms)
end

local ncalls = {}
for r = 1, rounds do
  spent, calls = {}, {}
  local steps, t = {}, clock()
  local t0 = t
  local function step(name)
    local now = clock()
    steps[#steps + 1] = { name, (now - t) * 1000 }
    t = now
  end
  local id = "prof" .. r
  local pod = assert(vc.pod.create {
    id = id, hypervisor = "namespace",
    containers = { { id = "c", rootfs = rootfs, argv = { "/bin/true" } } },
  })
  step("step create")
  assert(pod:start())
  step("step start")
  assert(pod:container("c"):wait(10) == 0)
  step("step wait")
  assert(pod:delete { force = true })
  step("step delete")
  local total = (clock() - t0) * 1000
  if r > 1 then -- the first round warms the caches
    keep("pod total", total)
    for _, s in ipairs(steps) do keep(s[1], s[2]) end
    local in_c = 0
    for name, s in pairs(spent) do
      keep(name, s * 1000)
      in_c = in_c + s * 1000
      ncalls[name] = calls[name]
    end
    keep("(all C core calls)", in_c)
    keep("(Lua: total minus C core calls)", total - in_c)
  end
end

local function median(list)
  table.sort(list)
  local n = #list
  if n % 2 == 1 then return list[(n + 1) // 2] end
  return (list[n // 2] + list[n // 2 + 1]) / 2
end

local names = {}
for name in pairs(samples) do names[#names + 1] = name end
table.sort(names, function(a, b) return median(samples[a]) > median(samples[b]) end)
print(string.format("%-36s %6s %9s", "per pod (median of " .. (rounds - 1) .. ")", "calls", "ms"))
for _, name in ipairs(names) do
  print(string.format("%-36s %6s %9.3f", name, ncalls[name] or "", median(samples[name])))
end
