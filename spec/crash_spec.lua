-- Crash consistency: vc lifecycle commands killed with SIGKILL at random
-- moments, many times over. Afterwards every record parses, the listing
-- works and shows legal states only, `vc gc` cleans up, and every pod
-- stops and deletes with nothing left on the host.
local cjson = require "cjson"
local support = require "support"

local ROOTFS = support.project .. "/build/rootfs"
local GUEST = support.project .. "/build/guest/vmlinux"

-- Random, unless VC_CRASH_SEED replays a run (a failure names its seed).
local SEED = tonumber(os.getenv("VC_CRASH_SEED")) or os.time()

local LEGAL = { ready = true, running = true, paused = true, stopped = true }

-- Every JSON record under dir, each decoded; returns the failures.
local function unparsable(dir)
  local bad = {}
  local p = assert(io.popen("find " .. support.quote(dir) .. " -name '*.json' -type f"))
  for path in p:lines() do
    local data = support.read_file(path)
    local ok, t = pcall(cjson.decode, data or "")
    if not ok or type(t) ~= "table" then bad[#bad + 1] = path .. ": " .. tostring(data) end
  end
  p:close()
  return bad
end

local function entries(dir)
  local p = assert(io.popen("ls -A " .. support.quote(dir) .. " 2>/dev/null"))
  local out = p:read("a")
  p:close()
  return out
end

-- Run the crash loop: commands, each killed after a random delay of up to
-- max_ms milliseconds, until n of them were killed before they finished
-- (others finish first, which is part of the mix; many fail fast on a pod
-- that an earlier kill left incomplete), at most 40n commands.
local function crash_loop(root, cfgfile, ids, n, max_ms)
  math.randomseed(SEED)
  local bin = support.quote(support.bin) .. " --root " .. support.quote(root)
  local killed = 0
  for i = 1, 40 * n do
    if killed == n then break end
    local id = ids[math.random(#ids)]
    local run = "pod run --config " .. support.quote(cfgfile) .. " --id " .. id
    local ops = {
      run, run, run,
      "pod start " .. id,
      "pod start " .. id,
      "pod stop " .. id,
      "pod pause " .. id,
      "pod resume " .. id,
      "pod delete " .. id,
      "pod delete --force " .. id,
      "container exec " .. id .. " c -- /bin/true",
      "container create " .. id .. " --id x" .. i .. " --rootfs " .. support.quote(ROOTFS)
        .. " -- /bin/sleep 600",
      "gc",
    }
    local op = ops[math.random(#ops)]
    local delay = math.random(0, max_ms) / 1000
    -- timeout(1) sends SIGKILL to vc (and its process group) after delay
    local ok, how, code = os.execute(string.format(
      "timeout -s KILL %.3f %s %s >/dev/null 2>&1", delay, bin, op))
    if not ok and (how == "exit" and code == 137 or how == "signal" and code == 9) then
      killed = killed + 1
    end
  end
  return killed
end

local function check_and_clean(root)
  assert.same({}, unparsable(root .. "/lib"))
  assert.same({}, unparsable(root .. "/run"))
  -- the listing works and every pod in it is in a legal state
  local r = support.vc(root, { "pod", "list", "--json" })
  assert.equal(0, r.code, r.stderr)
  for _, s in ipairs(cjson.decode(r.stdout)) do
    assert.is_true(LEGAL[s.state] == true, s.id .. " is " .. tostring(s.state))
  end
  -- gc cleans what the crashes left; a second run finds nothing
  r = support.vc(root, { "gc" })
  assert.equal(0, r.code, r.stderr .. r.stdout)
  r = support.vc(root, { "gc" })
  assert.equal(0, r.code, r.stderr)
  assert.equal("nothing to clean up\n", r.stdout)
  -- every pod stops (when it runs) and deletes, without --force
  for _, s in ipairs(cjson.decode(support.vc(root, { "pod", "list", "--json" }).stdout)) do
    if s.state == "running" or s.state == "paused" then
      r = support.vc(root, { "pod", "stop", s.id })
      assert.equal(0, r.code, r.stderr)
    end
    r = support.vc(root, { "pod", "delete", s.id })
    assert.equal(0, r.code, r.stderr)
  end
  assert.equal("[]\n", support.vc(root, { "pod", "list", "--all", "--json" }).stdout)
  assert.equal("", support.traces(root))
  assert.equal("", entries(root .. "/lib/pods"))
  assert.equal("", entries(root .. "/run/pods"))
end

describe("crash consistency (VC_CRASH_SEED=" .. SEED .. ")", function()
  local root

  before_each(function() root = support.tmpdir() end)
  after_each(function()
    os.execute(support.quote(support.bin) .. " --root " .. support.quote(root)
               .. " gc >/dev/null 2>&1")
    for _, id in ipairs { "a", "b", "c", "v1", "v2" } do
      os.execute(support.quote(support.bin) .. " --root " .. support.quote(root)
                 .. " pod delete --force " .. id .. " >/dev/null 2>&1")
    end
    support.rmtree(root)
  end)

  it("survives 200 SIGKILLs of lifecycle commands on the namespace backend", function()
    local cfg = root .. "/pod.lua"
    support.write_file(cfg, string.format([[
      return { hypervisor = "namespace", containers = {
        { id = "c", rootfs = %q, argv = { "/bin/sleep", "600" }, stop_timeout = 1 } } }
    ]], ROOTFS))
    local killed = crash_loop(root, cfg, { "a", "b", "c" }, 200, 20)
    assert.equal(200, killed)
    check_and_clean(root)
  end)

  it("survives SIGKILLs of lifecycle commands on networked namespace pods", function()
    support.with_test_network(30, function(net)
      local cfg = root .. "/pod.json"
      support.write_file(cfg, cjson.encode {
        hypervisor = "namespace", network = { cni = net.list, ports = { { host = 20030,
                                                                          container = 80 } } },
        containers = { { id = "c", rootfs = ROOTFS, argv = { "/bin/sleep", "600" },
                         stop_timeout = 1 } } })
      -- network setup and teardown take 100-300 ms: kills land in them
      local killed = crash_loop(root, cfg, { "a", "b" }, 40, 400)
      assert.equal(40, killed)
      check_and_clean(root)
      assert.equal("", support.net_traces(net.name, net.bridge, net.prefix))
    end)
  end)

  local it_vm = support.read_file(GUEST) and it
    or function(name) pending(name .. ": no guest image (make guest)") end

  it_vm("survives SIGKILLs of lifecycle commands on networked qemu pods", function()
    support.with_test_network(31, function(net)
      local cfg = root .. "/pod.json"
      support.write_file(cfg, cjson.encode {
        vm = { memory_mib = 128 }, network = { cni = net.list },
        containers = { { id = "c", rootfs = ROOTFS, argv = { "/bin/sleep", "600" },
                         stop_timeout = 1 } } })
      local killed = crash_loop(root, cfg, { "v1", "v2" }, 10, 2500)
      assert.equal(10, killed)
      check_and_clean(root)
      assert.equal("", support.net_traces(net.name, net.bridge, net.prefix))
    end)
  end)
end)
