-- Pod lifecycle through the public API, on the mock backend.
local support = require "support"
local vc = require "vc"

local function mock_pod(id, extra)
  local cfg = {
    id = id,
    hypervisor = "mock",
    containers = { { id = "c1", rootfs = "/tmp", argv = { "/bin/sleep", "1000" } } },
  }
  for k, v in pairs(extra or {}) do cfg[k] = v end
  return cfg
end

local function entries(dir)
  local p = io.popen("ls -A " .. support.quote(dir) .. " 2>/dev/null")
  local out = p:read("a")
  p:close()
  return out
end

describe("vc.pod", function()
  local root

  before_each(function()
    root = support.tmpdir()
    vc.setup { root = root, lock_timeout = 2 }
  end)

  after_each(function()
    support.rmtree(root)
  end)

  it("creates a ready pod with its records in both trees", function()
    local p = assert(vc.pod.create(mock_pod("web")))
    assert.equal("web", p.id)
    local s = assert(p:status())
    assert.equal("ready", s.state)
    assert.equal("mock", s.hypervisor)
    assert.equal("c1", s.containers[1].id)
    assert.equal("ready", s.containers[1].state)
    for _, f in ipairs {
      "lib/pods/web/config.json", "lib/pods/web/c1/config.json",
      "run/pods/web/state.json", "run/pods/web/hypervisor.json",
      "run/pods/web/agent.json", "run/pods/web/lock", "run/pods/web/c1/state.json",
    } do
      assert.truthy(support.read_file(root .. "/" .. f), f)
    end
  end)

  it("generates a UUID when the config has no ID", function()
    local cfg = mock_pod(nil)
    local p = assert(vc.pod.create(cfg))
    assert.matches("^%x+%-%x+%-%x+%-%x+%-%x+$", p.id)
  end)

  it("goes through the whole lifecycle", function()
    local p = assert(vc.pod.run(mock_pod("life")))
    assert.equal("running", p:state())
    assert.equal("running", p:status().containers[1].state)
    assert.is_true(p:pause())
    assert.equal("paused", p:state())
    assert.equal("paused", p:status().containers[1].state)
    assert.is_true(p:resume())
    assert.equal("running", p:state())
    assert.is_true(p:stop())
    assert.equal("stopped", p:state())
    local c = p:status().containers[1]
    assert.equal("stopped", c.state)
    assert.equal(143, c.exit_code)
    assert.is_true(p:start())
    assert.equal("running", p:state())
    assert.equal("running", p:status().containers[1].state)
    assert.is_true(p:stop())
    assert.is_true(p:delete())
    assert.equal("", entries(root .. "/lib/pods"))
    assert.equal("", entries(root .. "/run/pods"))
    local _, err = vc.pod.fetch("life")
    assert.equal("pod life: no such pod", err)
  end)

  it("refuses illegal transitions, naming the pod and both states", function()
    local p = assert(vc.pod.create(mock_pod("web")))
    local before = support.snapshot(root)
    local ok, err = p:pause()
    assert.is_nil(ok)
    assert.equal("pod web: cannot move from ready to paused", err)
    ok, err = p:resume()
    assert.is_nil(ok)
    assert.equal("pod web: cannot resume: it is ready, not paused", err)
    assert.equal(before, support.snapshot(root))
    assert.is_true(p:stop())
    ok, err = p:stop()
    assert.is_nil(ok)
    assert.equal("pod web: cannot move from stopped to stopped", err)
    ok, err = p:pause()
    assert.is_nil(ok)
    assert.equal("pod web: cannot move from stopped to paused", err)
    assert.is_true(p:start())
    assert.is_true(p:pause())
    ok, err = p:start()
    assert.is_nil(ok)
    assert.equal("pod web: cannot start: it is paused (resume it)", err)
  end)

  it("refuses to delete a running pod, and deletes it with force", function()
    local p = assert(vc.pod.run(mock_pod("busy")))
    local ok, err = p:delete()
    assert.is_nil(ok)
    assert.matches("pod busy: cannot delete while running", err, 1, true)
    assert.equal("running", p:state())
    assert.is_true(p:delete { force = true })
    assert.is_nil(vc.pod.fetch("busy"))
  end)

  it("deletes a ready and a paused pod", function()
    local a = assert(vc.pod.create(mock_pod("a")))
    local b = assert(vc.pod.run(mock_pod("b")))
    assert.is_true(b:pause())
    assert.is_true(a:delete())
    assert.is_true(b:delete())
    assert.same({}, vc.pod.list())
  end)

  for _, op in ipairs {
    "hypervisor.create", "hypervisor.start", "agent.connect", "agent.create_pod",
    "agent.create_container",
  } do
    it("rolls back everything when " .. op .. " fails during create", function()
      local cfg = mock_pod("rb", { annotations = { ["vc.mock.fail"] = op } })
      local p, err = vc.pod.create(cfg)
      assert.is_nil(p)
      assert.matches(op .. " failed", err, 1, true)
      assert.same({}, vc.pod.list())
      assert.equal("", entries(root .. "/lib/pods"))
      assert.equal("", entries(root .. "/run/pods"))
    end)
  end

  it("rolls a failed start back, leaving the pod ready", function()
    local cfg = mock_pod("st", { annotations = { ["vc.mock.fail"] = "agent.start_container" } })
    local p = assert(vc.pod.create(cfg))
    local ok, err = p:start()
    assert.is_nil(ok)
    assert.matches("agent.start_container failed", err, 1, true)
    assert.equal("ready", p:state())
    assert.equal("ready", p:status().containers[1].state)
  end)

  it("sees a VM that died behind its back as stopped, and deletes it", function()
    local p = assert(vc.pod.run(mock_pod("dead")))
    support.write_file(root .. "/run/pods/dead/mock-vm", "stopped")
    local s = p:status()
    assert.equal("stopped", s.state)
    assert.equal("stopped", s.containers[1].state)
    assert.is_true(p:delete())
    assert.is_nil(vc.pod.fetch("dead"))
  end)

  it("starts a pod again after its VM died", function()
    local p = assert(vc.pod.run(mock_pod("again")))
    support.write_file(root .. "/run/pods/again/mock-vm", "stopped")
    assert.is_true(p:start())
    assert.equal("running", p:state())
    assert.equal("running", p:status().containers[1].state)
  end)

  it("refuses an unknown hypervisor before touching the disk", function()
    local before = support.snapshot(root)
    local p, err = vc.pod.create(mock_pod("x", { hypervisor = "vmware" }))
    assert.is_nil(p)
    assert.matches('unknown hypervisor "vmware" (available: ', err, 1, true)
    assert.equal(before, support.snapshot(root))
  end)

  it("defaults to the qemu backend, never to the mock", function()
    local cfg = mock_pod("q")
    cfg.hypervisor = nil
    cfg.vm = { kernel = "/nonexistent/vmlinux" }
    local p, err = vc.pod.create(cfg)
    assert.is_nil(p)
    assert.matches("qemu: kernel /nonexistent/vmlinux: No such file", err, 1, true)
    assert.same({}, vc.pod.list())
  end)

  it("refuses a bad config with the key's path, touching nothing", function()
    local before = support.snapshot(root)
    local cfg = mock_pod("bad")
    cfg.containers[1].argv = { 1, 2 }
    local p, err = vc.pod.create(cfg)
    assert.is_nil(p)
    assert.matches("containers[1].argv", err, 1, true)
    assert.equal(before, support.snapshot(root))
    assert.has_error(function() vc.pod.create("web") end)
  end)

  it("refuses to create a pod twice and leaves the first untouched", function()
    assert(vc.pod.run(mock_pod("dup")))
    local before = support.snapshot(root)
    local p, err = vc.pod.create(mock_pod("dup"))
    assert.is_nil(p)
    assert.equal("pod dup already exists", err)
    assert.equal(before, support.snapshot(root))
  end)

  it("fetches by ID and refuses invalid IDs", function()
    assert(vc.pod.create(mock_pod("here")))
    assert.equal("here", assert(vc.pod.fetch("here")).id)
    local p, err = vc.pod.fetch("../etc")
    assert.is_nil(p)
    assert.matches('"../etc"', err, 1, true)
    assert.has_error(function() vc.pod.fetch(42) end)
  end)

  it("lists pods sorted by ID", function()
    for _, id in ipairs { "b", "a", "c" } do assert(vc.pod.create(mock_pod(id))) end
    local ids = {}
    for _, p in ipairs(vc.pod.list()) do ids[#ids + 1] = p.id end
    assert.same({ "a", "b", "c" }, ids)
  end)

  it("lists each pod's status as Pod:status { live = false } gives it", function()
    assert(vc.pod.run(mock_pod("up")))
    assert(vc.pod.create(mock_pod("two", { containers = {
      { id = "c1", rootfs = "/tmp", argv = { "/bin/true" } },
      { id = "c2", rootfs = "/tmp", argv = { "/bin/true" } },
    } })))
    assert(vc.pod.run(mock_pod("dead")))
    support.write_file(root .. "/run/pods/dead/mock-vm", "stopped")
    assert(vc.pod.create(mock_pod("broken")))
    support.write_file(root .. "/lib/pods/broken/c1/config.json", "")
    support.write_file(root .. "/run/pods/broken/c1/state.json", "{")
    -- a pod whose creation is not complete: listed with all only
    os.execute("mkdir -p " .. support.quote(root .. "/lib/pods/half"))
    -- nor is one whose delete stopped between the trees (state, no config)
    assert(vc.pod.create(mock_pod("gone")))
    assert(os.remove(root .. "/lib/pods/gone/config.json"))
    local listed = require("vc.pod").list_status()
    local ids = {}
    for i, s in ipairs(listed) do
      ids[i] = s.id
      if s.id ~= "broken" then
        assert.same(assert(vc.pod.fetch(s.id):status { live = false }), s)
      end
    end
    assert.same({ "broken", "dead", "two", "up" }, ids)
    assert.equal("stopped", listed[2].state)
    assert.same({ "c1", "c2" }, { listed[3].containers[1].id, listed[3].containers[2].id })
    assert.equal("running", listed[4].containers[1].state)
    assert.same({ id = "broken",
                  error = "container c1 of pod broken: state.json: not a valid record" },
                listed[1])
    assert.same({ id = "broken", error = listed[1].error },
                { id = "broken", error = select(2, vc.pod.fetch("broken"):status()) })
    local all = require("vc.pod").list_status { all = true }
    assert.equal(6, #all)
    assert.same({ "gone", "incomplete", "?" }, { all[3].id, all[3].state, all[3].hypervisor })
    assert.same({ id = "half", state = "incomplete", hypervisor = "?", containers = {} }, all[4])
  end)

  it("prints a pod as its ID, state, backend and containers", function()
    local p = assert(vc.pod.create(mock_pod("show")))
    assert.equal("pod show [ready, mock] containers: c1:ready", tostring(p))
  end)
end)
