-- The namespace backend end to end: a real agent, real containers
-- (namespaces, pivot_root, cgroups) on the host, through the API and CLI.
local cjson = require "cjson"
local support = require "support"
local vc = require "vc"

local ROOTFS = support.project .. "/build/rootfs"

local function sh(cmd)
  local r = support.sh(cmd)
  return r.stdout, r.code
end


-- Gone, or a zombie that init has yet to reap.
local function gone(pid)
  local stat = support.read_file("/proc/" .. pid .. "/stat")
  return stat == nil or stat:match("^%d+ %b() ([ZX])") ~= nil
end

local function sandbox_pid(root, pod)
  local info = cjson.decode(support.read_file(root .. "/run/pods/" .. pod .. "/hypervisor.json"))
  return math.tointeger(info.pid)
end

describe("namespace backend", function()
  local root, rootfs

  before_each(function()
    root = support.tmpdir()
    rootfs = root .. "/rootfs"
    assert(os.execute("cp -a " .. support.quote(ROOTFS) .. " " .. support.quote(rootfs)))
    vc.setup { root = root, lock_timeout = 5 }
  end)

  after_each(function()
    for _, p in ipairs(vc.pod.list()) do p:delete { force = true } end
    support.rmtree(root)
  end)

  local function ctr(id, argv, extra)
    local c = { id = id, rootfs = rootfs, argv = argv }
    for k, v in pairs(extra or {}) do c[k] = v end
    return c
  end

  local function run(containers, extra)
    local cfg = { id = "ns", hypervisor = "namespace", containers = containers }
    for k, v in pairs(extra or {}) do cfg[k] = v end
    return assert(vc.pod.run(cfg))
  end

  it("runs a busybox container: its output, its exit code", function()
    local p = run { ctr("hello", { "/bin/sh", "-c", "echo hello from $(hostname); exit 3" }) }
    local c = p:container("hello")
    assert.equal(3, c:wait(10))
    local out, err = c:logs()
    assert.equal("hello from hello\n", out)
    assert.equal("", err)
    local s = c:status()
    assert.equal("stopped", s.state)
    assert.equal(3, s.exit_code)
  end)

  it("applies env, cwd, user and hostname, with a fresh /proc and a minimal /dev", function()
    local p = run { ctr("box", { "/bin/sleep", "100" },
                        { env = { GREETING = "hi" }, cwd = "/tmp" }) }
    local c = p:container("box")
    local code, out = c:exec { "/bin/sh", "-c", "echo $GREETING $(pwd) $(hostname) $(id -u)" }
    assert.equal(0, code)
    assert.equal("hi /tmp box 0\n", out)
    code, out = c:exec({ "/bin/id", "-u" }, { user = "65534" })
    assert.equal(0, code)
    assert.equal("65534\n", out)
    -- PID 1 of its own PID namespace is the container's process
    code, out = c:exec { "/bin/cat", "/proc/1/cmdline" }
    assert.equal(0, code)
    assert.equal("/bin/sleep\x00100\x00", out)
    code, out = c:exec { "/bin/ls", "/dev" }
    assert.equal(0, code)
    for _, dev in ipairs { "full", "null", "pts", "random", "shm", "tty", "urandom", "zero" } do
      assert.matches("%f[%w]" .. dev .. "%f[%W]", out)
    end
  end)

  it("execs with streamed output and the process's exit code (CLI)", function()
    run { ctr("c", { "/bin/sleep", "100" }) }
    local r = support.vc(root, { "container", "exec", "ns", "c", "--",
                                 "/bin/sh", "-c", "echo out; echo err >&2; exit 5" })
    assert.equal(5, r.code, r.stderr)
    assert.equal("out\n", r.stdout)
    assert.equal("err\n", r.stderr)
  end)

  it("kills by signal name, stops with a grace period, lists processes and stats", function()
    local p = run {
      ctr("k", { "/bin/sleep", "100" }),
      ctr("s", { "/bin/sleep", "100" }, { stop_timeout = 0.3 }),
    }
    local ps = assert(p:container("k"):processes())
    assert.equal(1, #ps)
    assert.equal("/bin/sleep 100", ps[1].cmd)
    local st = assert(p:container("k"):stats())
    assert.is_true(st.memory_bytes > 0)
    assert.is_true(st.pids >= 1)
    assert.is_true(p:container("k"):kill("SIGKILL"))
    assert.equal(137, p:container("k"):wait(5))
    -- sleep as PID 1 ignores SIGTERM: stop ends it with SIGKILL after 0.3 s
    assert.is_true(p:container("s"):stop())
    assert.equal(137, p:container("s"):status().exit_code)
  end)

  it("kills a container that exceeds its memory limit and says it was the OOM", function()
    local p = run { ctr("hog", { "/bin/sh", "-c", "x=0123456789; while :; do x=$x$x; done" },
                        { resources = { memory_mib = 16 } }) }
    local c = p:container("hog")
    assert.equal(137, c:wait(30))
    local s = c:status()
    assert.equal(137, s.exit_code)
    assert.is_true(s.oom)
    local r = support.vc(root, { "container", "status", "ns", "hog" })
    assert.matches("137 %(OOM%)", r.stdout)
  end)

  it("shares a volume read-only", function()
    local data = root .. "/data"
    assert(os.execute("mkdir -p " .. data .. " && echo shared > " .. data .. "/f"))
    local p = run({ ctr("v", { "/bin/sleep", "100" },
                        { mounts = { { volume = "data", path = "/data", read_only = true } } }) },
                  { volumes = { { tag = "data", host_path = data, read_only = true } } })
    local c = p:container("v")
    local code, out = c:exec { "/bin/cat", "/data/f" }
    assert.equal(0, code)
    assert.equal("shared\n", out)
    local wcode, _, err = c:exec { "/bin/sh", "-c", "echo x > /data/g" }
    assert.is_not.equal(0, wcode)
    assert.matches("Read%-only file system", err)
    assert.is_nil(support.read_file(data .. "/g"))
  end)

  it("pauses: a paused pod's containers make no progress", function()
    local p = run { ctr("tick", { "/bin/sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /tmp/n; "
                                  .. "sleep 0.01; done" }) }
    local function count() return tonumber(support.read_file(rootfs .. "/tmp/n") or "0") or 0 end
    os.execute("sleep 0.2")
    assert.is_true(p:pause())
    local before = count()
    os.execute("sleep 0.3")
    assert.equal(before, count())
    assert.equal("paused", p:state())
    assert.is_true(p:resume())
    -- progress again, within 3 s (a loaded host, a sanitized build)
    for _ = 1, 30 do
      if count() > before then break end
      os.execute("sleep 0.1")
    end
    assert.is_true(count() > before)
  end)

  it("deletes a pod and leaves no process, mount or folder behind", function()
    local p = run { ctr("a", { "/bin/sleep", "100" }) }
    local pid = sandbox_pid(root, "ns")
    assert.is_true(pid > 0)
    assert.truthy(support.read_file("/proc/" .. pid .. "/stat"))
    assert.is_true(p:delete { force = true })
    assert.is_true(gone(pid))
    assert.equal("", support.traces(root))
    assert.equal("", (sh("ls -A " .. support.quote(root .. "/run/pods"))))
    assert.equal("", (sh("ls -A " .. support.quote(root .. "/lib/pods"))))
  end)

  it("pauses and resumes a pod with no container yet (no cgroup of the agent's)", function()
    local p = run {}
    assert.is_true(p:pause())
    assert.equal("paused", p:state())
    assert.is_true(p:resume())
    assert.equal("running", p:state())
    assert.is_true(p:delete { force = true })
    assert.equal("", support.traces(root))
  end)

  it("makes a container's cgroups in the agent, and removes them with the pod", function()
    local limits = { resources = { memory_mib = 64, pids = 20 } }
    local p = run { ctr("a", { "/bin/sleep", "100" }, limits) }
    local cg = sh("ls /sys/fs/cgroup/freezer | grep '^vc-ns-'"):gsub("\n$", "")
    assert.is_true(#cg > 0)
    local pid = tonumber((sh("cat /sys/fs/cgroup/freezer/" .. cg .. "/a/cgroup.procs")))
    assert.is_truthy(pid)
    local memory = sh("cat /sys/fs/cgroup/memory/" .. cg .. "/a/memory.limit_in_bytes")
    assert.equal(tostring(64 * 1024 * 1024), (memory:gsub("\n$", "")))
    assert.equal("20", (sh("cat /sys/fs/cgroup/pids/" .. cg .. "/a/pids.max"):gsub("\n$", "")))
    assert.is_true(p:delete { force = true })
    assert.equal("", support.traces(root))
  end)

  it("records the VM as launching until it is up; a delete then finds unrecorded ones", function()
    run { ctr("a", { "/bin/sleep", "100" }) }
    local path = root .. "/run/pods/ns/hypervisor.json"
    local info = cjson.decode(support.read_file(path))
    assert.is_nil(info.launching)
    local pid = math.tointeger(info.pid)
    -- as a vc killed between launching the sandbox and recording it
    -- leaves the record: the agent it launched is then named by none
    support.write_file(path, cjson.encode { backend = "namespace", launching = true })
    local p = assert(vc.pod.fetch("ns"))
    assert.is_true(p:delete { force = true })
    assert.is_true(gone(pid))
    assert.equal("", support.traces(root))
  end)

  it("sees an agent killed behind its back: the pod is stopped and deletable", function()
    local p = run { ctr("a", { "/bin/sleep", "100" }) }
    local pid = sandbox_pid(root, "ns")
    assert(os.execute("kill -9 " .. pid))
    os.execute("sleep 0.1")
    local s = p:status()
    assert.equal("stopped", s.state)
    assert.equal("stopped", s.containers[1].state)
    assert.is_true(p:delete())
    assert.equal("", support.traces(root))
  end)

  it("refuses a missing rootfs or program, naming it, and rolls back", function()
    local missing = ctr("c", { "/bin/true" }, { rootfs = root .. "/nope" })
    local p, err = vc.pod.run { id = "bad", hypervisor = "namespace", containers = { missing } }
    assert.is_nil(p)
    assert.matches(root .. "/nope", err, 1, true)
    assert.same({}, vc.pod.list())
    p, err = vc.pod.run { id = "bad", hypervisor = "namespace",
                          containers = { ctr("c", { "/bin/frobnicate" }) } }
    assert.is_nil(p)
    assert.matches("/bin/frobnicate", err, 1, true)
    assert.same({}, vc.pod.list())
    assert.equal("", support.traces(root))
  end)

  it("refuses exec into a stopped container and a bad signal", function()
    local p = run { ctr("c", { "/bin/true" }) }
    local c = p:container("c")
    assert.equal(0, c:wait(10))
    local ok, err = c:exec { "/bin/true" }
    assert.is_nil(ok)
    assert.equal("container c: cannot exec while stopped", err)
    local r = support.vc(root, { "container", "kill", "ns", "c", "NOSUCH" })
    assert.equal(1, r.code)
    assert.matches('invalid signal "NOSUCH"', r.stderr, 1, true)
  end)

  it("runs pods from the CLI with --hypervisor namespace", function()
    local r = support.vc(root, { "pod", "run", "--hypervisor", "namespace", "--id", "cli" })
    assert.equal(0, r.code, r.stderr)
    r = support.vc(root, { "container", "create", "cli", "--id", "c", "--rootfs", rootfs,
                           "--", "/bin/sh", "-c", "echo via cli" })
    assert.equal(0, r.code, r.stderr)
    r = support.vc(root, { "container", "start", "cli", "c" })
    assert.equal(0, r.code, r.stderr)
    r = support.vc(root, { "container", "wait", "cli", "c" })
    assert.equal(0, r.code, r.stderr)
    r = support.vc(root, { "container", "logs", "cli", "c" })
    assert.equal("via cli\n", r.stdout)
    r = support.vc(root, { "pod", "status", "cli" })
    assert.matches("cli%s+running%s+namespace", r.stdout)
    r = support.vc(root, { "pod", "delete", "--force", "cli" })
    assert.equal(0, r.code, r.stderr)
  end)
end)
