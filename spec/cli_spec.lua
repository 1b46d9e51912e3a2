-- The vc command line, run as a user would run it.
local cjson = require "cjson"
local support = require "support"

describe("vc CLI", function()
  local root

  before_each(function()
    root = support.tmpdir()
  end)

  after_each(function()
    support.rmtree(root)
  end)

  local function vc(...)
    return support.vc(root, { ... })
  end

  local function ok(...)
    local r = vc(...)
    assert.equal(0, r.code, table.concat({ ... }, " ") .. ": " .. r.stderr)
    return r
  end

  local function fails(code, pattern, ...)
    local r = vc(...)
    assert.equal(code, r.code, table.concat({ ... }, " ") .. ": " .. r.stdout .. r.stderr)
    assert.matches(pattern, r.stderr, 1, true)
    return r
  end

  it("prints its version and help", function()
    assert.matches("^vc %d+%.%d+%.%d+ %(Lua 5%.4", ok("version").stdout)
    assert.matches("commands:", ok("--help").stdout, 1, true)
    assert.matches("usage: vc pod create", ok("pod", "create", "--help").stdout, 1, true)
    assert.matches("usage: vc container exec", ok("container", "exec", "--help").stdout, 1, true)
  end)

  it("exits 2 on usage errors", function()
    fails(2, 'vc: unknown command "fly"', "fly")
    fails(2, "vc: missing command", "--log-level", "info")
    fails(2, "vc: missing ID", "pod", "start")
    fails(2, "vc: unknown option --bogus", "pod", "list", "--bogus")
    fails(2, 'unexpected argument "extra"', "pod", "status", "a", "extra")
    fails(2, "missing -- ARGV", "container", "exec", "p", "c")
    fails(2, 'invalid log level "loud"', "--log-level", "loud", "pod", "list")
    fails(2, "--volume \"nocolon\": expected TAG:HOSTPATH[:ro]",
          "pod", "create", "--hypervisor", "mock", "--volume", "nocolon")
  end)

  it("runs a pod through its life from the command line", function()
    assert.equal("web\n", ok("pod", "create", "--hypervisor", "mock", "--id", "web").stdout)
    local list = ok("pod", "list").stdout
    assert.matches("POD ID%s+STATE%s+HYPERVISOR%s+CONTAINERS%s+CREATED\n", list)
    assert.matches("web%s+ready%s+mock%s+0%s+%d%d%d%d%-", list)
    ok("pod", "start", "web")
    assert.equal("c1\n", ok("container", "create", "web", "--id", "c1", "--rootfs", "/tmp",
                            "--env", "A=1", "--", "/bin/sleep", "100").stdout)
    ok("container", "start", "web", "c1")
    assert.equal("", ok("container", "exec", "web", "c1", "--", "/bin/true").stdout)
    ok("container", "kill", "web", "c1", "KILL")
    local s = cjson.decode(ok("container", "status", "--json", "web", "c1").stdout)
    assert.same({ id = "c1", pod = "web", state = "stopped", exit_code = 137 }, s)
    local ps = cjson.decode(ok("pod", "status", "--json", "web").stdout)
    assert.equal("running", ps.state)
    assert.equal("mock", ps.hypervisor)
    assert.equal(1, #ps.containers)
    ok("pod", "pause", "web")
    ok("pod", "resume", "web")
    ok("pod", "stop", "web")
    ok("container", "delete", "web", "c1")
    ok("pod", "delete", "web")
    assert.equal("[]\n", ok("pod", "list", "--json").stdout)
  end)

  it("exits with the exit code of exec and wait", function()
    ok("pod", "run", "--hypervisor", "mock", "--id", "p")
    ok("container", "create", "p", "--id", "c", "--rootfs", "/tmp", "--", "/bin/sleep", "9")
    ok("container", "start", "p", "c")
    local r = vc("container", "exec", "p", "c", "--", "/bin/false")
    assert.equal(0, r.code) -- the mock's exec exits 0 unless told otherwise
    ok("container", "kill", "p", "c", "9")
    r = vc("container", "wait", "p", "c")
    assert.equal(137, r.code)
    assert.equal("137\n", r.stdout)
  end)

  it("names the problem and changes nothing on bad input", function()
    ok("pod", "create", "--hypervisor", "mock", "--id", "web")
    local before = support.snapshot(root)
    local cases = {
      { 1, "vc: pod nope: no such pod", "pod", "start", "nope" },
      { 1, 'invalid pod ID "../x"', "pod", "status", "../x" },
      { 1, "vc: pod web: cannot move from ready to paused", "pod", "pause", "web" },
      { 1, "vc: pod web: cannot resume: it is ready, not paused", "pod", "resume", "web" },
      { 1, "vc: pod web already exists", "pod", "create", "--hypervisor", "mock", "--id", "web" },
      { 1, 'unknown hypervisor "xen"', "pod", "create", "--hypervisor", "xen", "--id", "x" },
      { 1, "vm.cpus", "pod", "create", "--hypervisor", "mock", "--id", "y", "--cpus", "0" },
      { 1, "vm.memory_mib", "pod", "create", "--hypervisor", "mock", "--memory", "lots" },
      { 1, "volumes[1].tag", "pod", "create", "--hypervisor", "mock", "--volume", "bad tag:/tmp" },
      { 1, "container c: cannot start while pod web is ready",
        "container", "create", "web", "--id", "c", "--rootfs", "/tmp", "--", "/bin/true" },
      { 1, "pod web: no container zz", "container", "start", "web", "zz" },
      { 1, "no such file", "pod", "create", "--config", root .. "/missing.json" },
    }
    for _, case in ipairs(cases) do
      local code, pattern = case[1], case[2]
      local r = vc(table.unpack(case, 3))
      if pattern:match("^container c:") then
        -- creating a container in a ready pod is allowed; starting it is not
        assert.equal(0, r.code, r.stderr)
        r = vc("container", "start", "web", "c")
        assert.equal(code, r.code)
        assert.matches(pattern, r.stderr, 1, true)
        assert.equal(0, vc("container", "delete", "web", "c").code)
      else
        assert.equal(code, r.code, table.concat(case, " ", 3) .. ": " .. r.stderr)
        assert.matches(pattern:lower(), r.stderr:lower(), 1, true)
      end
      assert.equal(before, support.snapshot(root), table.concat(case, " ", 3))
    end
  end)

  it("reads pod configs from Lua and JSON files, options on top", function()
    local dir = support.tmpdir()
    support.write_file(dir .. "/p.lua", [[
      return { id = "fromlua", hypervisor = "mock",
               containers = { { id = "c", rootfs = "/tmp", argv = { "/bin/true" } } } }]])
    support.write_file(dir .. "/p.json",
      '{"id": "fromjson", "hypervisor": "mock", "vm": {"cpus": 2}}')
    support.write_file(dir .. "/bad.json", '{"id": "x", "hypervisor": ')
    support.write_file(dir .. "/evil.lua", 'os.execute("touch ' .. dir .. '/pwned"); return {}')
    ok("pod", "create", "--config", dir .. "/p.lua")
    ok("pod", "create", "--config", dir .. "/p.json", "--id", "override", "--memory", "512")
    local before = support.snapshot(root)
    fails(1, dir .. "/bad.json: invalid JSON", "pod", "create", "--config", dir .. "/bad.json")
    fails(1, dir .. "/evil.lua", "pod", "create", "--config", dir .. "/evil.lua")
    assert.is_nil(support.read_file(dir .. "/pwned"))
    assert.equal(before, support.snapshot(root))
    local s = cjson.decode(ok("pod", "status", "--json", "fromlua").stdout)
    assert.equal("c", s.containers[1].id)
    assert.matches("override%s+ready%s+mock", ok("pod", "list").stdout)
    support.rmtree(dir)
  end)

  it("stores absolute paths for a relative root, rootfs and volume", function()
    local r = support.sh("cd " .. support.quote(root) .. " && mkdir d fs && "
                         .. support.quote(support.bin)
                         .. " --root rel pod create --hypervisor mock --id p --volume data:./d"
                         .. " && " .. support.quote(support.bin)
                         .. " --root ./rel container create p --id c --rootfs fs -- /bin/true")
    assert.equal(0, r.code, r.stderr)
    local pod = cjson.decode(support.read_file(root .. "/rel/lib/pods/p/config.json"))
    assert.equal(root .. "/d", pod.volumes[1].host_path)
    local ctr = cjson.decode(support.read_file(root .. "/rel/lib/pods/p/c/config.json"))
    assert.equal(root .. "/fs", ctr.rootfs)
  end)

  it("uses VC_ROOT when --root is not given", function()
    local r = support.sh("VC_ROOT=" .. support.quote(root) .. " " .. support.quote(support.bin)
                         .. " pod create --hypervisor mock --id envpod")
    assert.equal(0, r.code, r.stderr)
    assert.truthy(support.read_file(root .. "/run/pods/envpod/state.json"))
  end)

  it("logs JSON lines at the level asked", function()
    local r = vc("--log-level", "info", "--log-format", "json",
                 "pod", "create", "--hypervisor", "mock", "--id", "logged")
    assert.equal(0, r.code)
    local line = assert(r.stderr:match("[^\n]+"))
    local rec = cjson.decode(line)
    assert.equal("info", rec.level)
    assert.equal("pod created", rec.msg)
    assert.equal("logged", rec.pod)
  end)

  it("runs a pod script with its arguments", function()
    local dir = support.tmpdir()
    support.write_file(dir .. "/s.lua", [[
      local vc = require "vc"
      local p = assert(vc.pod.run { id = arg[1], hypervisor = "mock" })
      print(p.id, select("#", ...), p:state())
    ]])
    local r = vc("run", dir .. "/s.lua", "scripted", "x")
    assert.equal(0, r.code, r.stderr)
    assert.equal("scripted\t2\trunning\n", r.stdout)
    support.write_file(dir .. "/err.lua", 'error("boom")')
    fails(1, "err.lua:1: boom", "run", dir .. "/err.lua")
    fails(1, "cannot open", "run", dir .. "/none.lua")
    support.rmtree(dir)
  end)

  it("loads its compiled modules only while they are as new as the source", function()
    -- a module of its own in the tree, compiled (by make's script) to a
    -- copy that says so; the source says otherwise
    local src = support.project .. "/lua/vc/spec_probe.lua"
    local bin = support.project .. "/build/luac/vc/spec_probe.luac"
    local dir = support.tmpdir()
    finally(function()
      os.remove(src)
      os.remove(bin)
      support.rmtree(dir)
    end)
    support.write_file(src, 'return "compiled"')
    assert.equal(0, vc("run", support.project .. "/scripts/luacache.lua").code)
    support.write_file(src, 'return "source"')
    support.write_file(dir .. "/s.lua", 'print((require "vc.spec_probe"))')
    local function loaded() return vc("run", dir .. "/s.lua").stdout end
    assert(os.execute("touch -d '2020-01-01' " .. support.quote(src)))
    assert.equal("compiled\n", loaded())
    assert(os.execute("touch " .. support.quote(src)))
    assert.equal("source\n", loaded())
    -- an unreadable compiled copy is passed over as well
    support.write_file(bin, "\27Lua garbage")
    assert(os.execute("touch -d '2020-01-01' " .. support.quote(src)))
    assert.equal("source\n", loaded())
    -- and a compiled module names its source file (messages, tracebacks)
    support.write_file(dir .. "/where.lua",
                       'print(debug.getinfo(require("vc.config").pod, "S").source)')
    assert.equal("@" .. support.project .. "/lua/vc/config.lua\n",
                 vc("run", dir .. "/where.lua").stdout)
  end)

  -- (with no argument, on the default qemu backend: spec/qemu_spec.lua)
  it("runs examples/hello.lua on the namespace backend and on the mock", function()
    local r = vc("run", support.project .. "/examples/hello.lua", "namespace")
    assert.equal(0, r.code, r.stderr)
    assert.matches("[running, namespace]", r.stdout, 1, true)
    assert.matches("hello from hello, pid 1, in Linux\n", r.stdout, 1, true)
    assert.matches("container hello exited with code 0", r.stdout, 1, true)
    r = vc("run", support.project .. "/examples/hello.lua", "mock")
    assert.equal(0, r.code, r.stderr)
    assert.matches("mock backend", r.stdout, 1, true)
    assert.matches("container hello exited with code 0", r.stdout, 1, true)
    assert.equal("[]\n", ok("pod", "list", "--json").stdout)
  end)
end)
