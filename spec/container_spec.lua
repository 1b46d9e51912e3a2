-- Container lifecycle through the public API, on the mock backend.
local support = require "support"
local vc = require "vc"

describe("vc containers", function()
  local root, pod

  before_each(function()
    root = support.tmpdir()
    vc.setup { root = root, lock_timeout = 2 }
    pod = assert(vc.pod.run { id = "p", hypervisor = "mock" })
  end)

  after_each(function()
    support.rmtree(root)
  end)

  local function add(id, annotations)
    return pod:add_container {
      id = id, rootfs = "/tmp", argv = { "/bin/sleep", "1000" }, annotations = annotations,
    }
  end

  it("adds, starts, signals, restarts, stops and deletes a container", function()
    local c = assert(add("c1"))
    assert.equal("ready", c:state())
    assert.is_true(c:start())
    assert.equal("running", c:state())
    assert.same({ 0, "", "" }, { c:exec { "/bin/true" } })
    assert.is_true(c:kill("KILL"))
    local s = c:status()
    assert.equal("stopped", s.state)
    assert.equal(137, s.exit_code)
    assert.is_true(c:start())
    assert.equal("running", c:state())
    assert.is_true(c:stop())
    assert.equal(143, c:status().exit_code)
    assert.is_true(c:delete())
    assert.same({}, pod:containers())
    assert.is_nil(support.read_file(root .. "/lib/pods/p/c1/config.json"))
  end)

  it("records the exit code of a process that ends by itself", function()
    local c = assert(add("quick", { ["vc.mock.exit_code"] = "3" }))
    assert.is_true(c:start())
    assert.equal(3, c:wait())
    local s = c:status()
    assert.equal("stopped", s.state)
    assert.equal(3, s.exit_code)
  end)

  it("takes signals by name, SIG name or number, and refuses others", function()
    local c = assert(add("s"))
    assert.is_true(c:start())
    assert.is_true(c:kill("SIGCONT"))
    assert.equal("running", c:state())
    local ok, err = c:kill("FOO")
    assert.is_nil(ok)
    assert.equal('invalid signal "FOO"', err)
    ok, err = c:kill("99999")
    assert.is_nil(ok)
    assert.equal('invalid signal "99999"', err)
    assert.is_true(c:kill(9))
    assert.equal(137, c:status().exit_code)
  end)

  it("refuses exec and kill into a stopped container", function()
    local c = assert(add("st"))
    assert.is_true(c:start())
    assert.is_true(c:stop())
    local ok, err = c:exec { "/bin/true" }
    assert.is_nil(ok)
    assert.equal("container st: cannot exec while stopped", err)
    ok, err = c:kill("TERM")
    assert.is_nil(ok)
    assert.equal("container st: cannot signal while stopped", err)
  end)

  it("refuses to delete a running container", function()
    local c = assert(add("r"))
    assert.is_true(c:start())
    local ok, err = c:delete()
    assert.is_nil(ok)
    assert.matches("container r: cannot delete while running", err, 1, true)
  end)

  it("refuses container work while the pod is not running", function()
    local c = assert(add("w"))
    assert.is_true(pod:pause())
    local ok, err = c:start()
    assert.is_nil(ok)
    assert.equal("container w: cannot start while pod p is paused", err)
  end)

  it("refuses a duplicate or a malformed container", function()
    assert(add("d"))
    local c, err = add("d")
    assert.is_nil(c)
    assert.equal("pod p: container d already exists", err)
    c, err = pod:add_container { id = "bad", rootfs = "/tmp", argv = {} }
    assert.is_nil(c)
    assert.matches("argv", err)
    c, err = pod:add_container { id = "../x", rootfs = "/tmp", argv = { "/bin/true" } }
    assert.is_nil(c)
    assert.matches('"../x"', err, 1, true)
    assert.is_nil(support.read_file(root .. "/lib/pods/p/bad/config.json"))
  end)

  it("finds containers by ID", function()
    assert(add("one"))
    assert.equal("one", assert(pod:container("one")).id)
    local c, err = pod:container("two")
    assert.is_nil(c)
    assert.equal("pod p: no container two", err)
  end)

  it("undoes an add when the agent refuses it", function()
    local p2 = assert(vc.pod.run {
      id = "p2", hypervisor = "mock", annotations = { ["vc.mock.fail"] = "agent.create_container" },
    })
    local c, err = p2:add_container { id = "x", rootfs = "/tmp", argv = { "/bin/true" } }
    assert.is_nil(c)
    assert.matches("agent.create_container failed", err, 1, true)
    assert.same({}, p2:containers())
  end)
end)
