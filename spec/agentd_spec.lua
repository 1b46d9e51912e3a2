-- vc-agent, the guest agent, on its own: started as PID 1 of a fresh PID
-- namespace (as the namespace backend does) and driven through
-- vc.core.agent ("unix:PATH"), plus raw bytes from a broken client.
-- Real containers: namespaces, pivot_root into a busybox rootfs, cgroups.
local cjson = require "cjson"
local support = require "support"
local agentlib = require "vc.core.agent"
local security = require "vc.security"

-- The agent built like the vc under test: build/vc-agent next to build/vc,
-- build/vc-agent-asan (sanitized) next to build/vc-asan.
local AGENT = support.bin:gsub("/vc([^/]*)$", "/vc-agent%1")
local ROOTFS = support.project .. "/build/rootfs"
local RAW = support.project .. "/spec/fixtures/agent_raw.py"
local q = support.quote

local function now()
  local p = assert(io.popen("date +%s.%N"))
  local t = tonumber(p:read("l"))
  p:close()
  return t
end

local function exists(path)
  return os.execute("test -e " .. q(path)) == true
end

-- fn() until it returns a true value, for at most timeout seconds.
local function eventually(fn, timeout)
  local deadline = now() + (timeout or 5)
  repeat
    local v = fn()
    if v then return v end
    os.execute("sleep 0.02")
  until now() > deadline
  return fn()
end

describe("vc-agent", function()
  local dir, rootfs, sock, parent, unshare_pid, agent_pid, a

  local function start_agent()
    local cmd = string.format(
      "unshare --pid --mount --uts --ipc --fork --mount-proc %s --listen %s" ..
      " --state-dir %s --cgroup-parent %s --log %s </dev/null >/dev/null 2>%s & echo $!",
      q(AGENT), q(sock), q(dir .. "/state"), q(parent), q(dir .. "/agent.log"),
      q(dir .. "/agent.err"))
    local p = assert(io.popen(cmd))
    unshare_pid = p:read("l")
    p:close()
    -- ({ annotations = {} }: works around a binding bug with one argument)
    a = assert(agentlib.open("unix:" .. sock, { annotations = {} }))
    assert(a:connect(5))
  end

  -- The agent: the child of unshare, PID 1 of its namespace.
  local function find_agent()
    if agent_pid == nil and unshare_pid ~= nil then
      local p = assert(io.popen("pgrep -P " .. unshare_pid))
      agent_pid = p:read("l")
      p:close()
    end
  end

  -- What a pod may leave behind: cgroup folders, processes in them.
  local function leftovers()
    local r = support.sh("ls -d /sys/fs/cgroup/*/" .. parent .. " 2>/dev/null;" ..
                         " grep -l -s -F /" .. parent .. "/ /proc/[0-9]*/cgroup")
    return r.stdout
  end

  local function agent_gone()
    return agent_pid == nil or not exists("/proc/" .. agent_pid)
  end

  before_each(function()
    assert(exists(AGENT), AGENT .. " is missing: make " .. AGENT:match("build/.*"))
    assert(exists(ROOTFS .. "/bin/busybox"), "build/rootfs is missing: make rootfs")
    agent_pid, unshare_pid, a = nil, nil, nil
    dir = support.tmpdir()
    rootfs = dir .. "/rootfs"
    sock = dir .. "/agent.sock"
    parent = "vc-test-" .. dir:match("([^.]+)$")
    assert(os.execute("cp -a " .. q(ROOTFS) .. " " .. q(rootfs)))
    start_agent()
  end)

  after_each(function()
    if a then a:close() end
    find_agent()
    -- SIGTERM is an orderly shutdown: containers killed, cgroups removed.
    if not agent_gone() then os.execute("kill -TERM " .. agent_pid) end
    local clean = eventually(agent_gone, 5)
    if not clean then os.execute("kill -KILL " .. agent_pid) end
    local left = leftovers()
    -- what the agent wrote on stderr: only a sanitizer would
    local stderr = support.read_file(dir .. "/agent.err") or ""
    -- Leave the machine clean even when the agent did not.
    os.execute("for d in /sys/fs/cgroup/*/" .. parent .. "; do [ -d \"$d\" ] &&" ..
               " find \"$d\" -depth -type d -exec rmdir {} \\; ; done 2>/dev/null")
    support.rmtree(dir)
    assert.is_true(clean, "the agent did not exit on SIGTERM")
    assert.equal("", left)
    assert.equal("", stderr)
  end)

  -- a:exec with its output captured ("capture" given explicitly).
  local function exec(id, process)
    return a:exec(id, process, "capture")
  end

  local function create(id, argv, extra)
    local c = { id = id, rootfs = rootfs, argv = argv, security = security.effective({}) }
    for k, v in pairs(extra or {}) do c[k] = v end
    return a:create_container(c)
  end

  local function run(id, argv, extra)
    assert(create(id, argv, extra))
    assert(a:start_container(id))
  end

  -- Wait until the container's stdout matches pattern.
  local function output_matches(id, pattern)
    return eventually(function()
      local out = a:read_output(id)
      return out and out:match(pattern) ~= nil
    end)
  end

  it("runs a container: its output, its exit code, its status", function()
    run("c1", { "/bin/sh", "-c", "echo out; echo err >&2; exit 3" })
    assert.equal(3, a:wait("c1", 5))
    local out, err, truncated = a:read_output("c1")
    assert.equal("out\n", out)
    assert.equal("err\n", err)
    assert.is_false(truncated)
    local s = a:status("c1")
    assert.equal("exited", s.state)
    assert.equal(3, s.exit_code)
    assert.is_false(s.oom)
    assert(a:remove_container("c1"))
    local ok, msg, errno = a:status("c1")
    assert.is_nil(ok)
    assert.equal("container c1: no such container", msg)
    assert.equal(2, errno)
  end)

  it("starts a created container only when asked", function()
    assert(create("late", { "/bin/echo", "started" }))
    assert.equal("created", a:status("late").state)
    assert.equal("", (a:read_output("late")))
    assert(a:start_container("late"))
    assert.equal(0, a:wait("late", 5))
    assert.equal("started\n", (a:read_output("late")))
  end)

  it("applies user, cwd, env and hostname", function()
    run("u", { "/bin/sh", "-c", 'echo "$(id -u):$(id -g) $(hostname) $(pwd) $GREETING $HOME"' },
        { user = "nobody", cwd = "/tmp", env = { "GREETING=hi", "PATH=/bin" } })
    assert.equal(0, a:wait("u", 5))
    assert.equal("65534:65534 u /tmp hi /\n", (a:read_output("u")))
    run("g", { "id" }, { user = "65534:root" })
    assert.equal(0, a:wait("g", 5))
    assert.matches("^uid=65534%(nobody%) gid=0%(root%)", (a:read_output("g")))
  end)

  it("gives the container PID 1, a fresh /proc and a minimal /dev", function()
    run("box", { "/bin/sleep", "100" })
    local code, out = exec("box", { argv = { "/bin/cat", "/proc/1/cmdline" } })
    assert.equal(0, code)
    assert.equal("/bin/sleep\x00100\x00", out)
    code, out = exec("box", { argv = { "/bin/ls", "/dev" } })
    assert.equal(0, code)
    assert.same({ "fd", "full", "mqueue", "null", "ptmx", "pts", "random", "shm", "stderr",
                  "stdin", "stdout", "tty", "urandom", "zero" },
                (function()
                  local t = {}
                  for name in out:gmatch("%S+") do t[#t + 1] = name end
                  return t
                end)())
    code, out = exec("box", { argv = { "/bin/sh", "-c",
      "echo x >/dev/null && head -c 5 /dev/zero | wc -c && readlink /dev/fd &&" ..
      " test -c /dev/pts/ptmx && grep -c ' /dev/pts ' /proc/self/mountinfo" } })
    assert.equal(0, code)
    assert.equal("5\n/proc/self/fd\n1\n", out)
  end)

  it("execs into a running container, streaming output and exit code", function()
    run("box", { "/bin/sleep", "100" })
    local code, out, err = exec("box", {
      argv = { "/bin/sh", "-c", "echo $GREETING; pwd; id -u; echo oops >&2; exit 5" },
      env = { "GREETING=hello" }, cwd = "/etc", user = "65534" })
    assert.equal(5, code)
    assert.equal("hello\n/etc\n65534\n", out)
    assert.equal("oops\n", err)
    code, out = exec("box", {
      argv = { "/bin/sh", "-c", "head -c 300000 /dev/zero | tr '\\0' x" } })
    assert.equal(0, code)
    assert.equal(string.rep("x", 300000), out)
    local ok, msg, errno = exec("box", { argv = { "nope" } })
    assert.is_nil(ok)
    assert.equal("container box: nope: no such program in the rootfs", msg)
    assert.equal(2, errno)
    -- the container itself was not disturbed
    assert.equal("running", a:status("box").state)
  end)

  it("keeps the newest 64 KiB of output", function()
    run("big", { "/bin/sh", "-c", "head -c 100000 /dev/zero | tr '\\0' a; echo end" })
    assert.equal(0, a:wait("big", 5))
    local out, err, truncated = a:read_output("big")
    assert.equal(65536, #out)
    assert.equal("aaend\n", out:sub(-6))
    assert.equal("", err)
    assert.is_true(truncated)
  end)

  it("delivers signals, to a handler or as a kill", function()
    run("trap", { "/bin/sh", "-c",
      "trap 'echo got; exit 7' USR1; echo ready; while :; do sleep 0.05; done" })
    assert.is_true(output_matches("trap", "ready"))
    assert(a:signal("trap", 10))
    assert.equal(7, a:wait("trap", 5))
    assert.equal("ready\ngot\n", (a:read_output("trap")))
    run("k", { "/bin/sleep", "100" })
    assert(a:signal("k", 9))
    assert.equal(137, a:wait("k", 5))
    local ok, msg, errno = a:signal("k", 9)
    assert.is_nil(ok)
    assert.equal("container k: is not running", msg)
    assert.equal(3, errno)
  end)

  it("stops with SIGTERM, then SIGKILL after the grace period", function()
    -- A PID-namespace init without a handler ignores SIGTERM.
    run("stubborn", { "/bin/sleep", "100" })
    local t0 = now()
    assert(a:stop_container("stubborn", 0.3))
    local took = now() - t0
    assert.is_true(took >= 0.3 and took < 3, "stop took " .. took .. " s")
    assert.equal(137, a:status("stubborn").exit_code)
    run("polite", { "/bin/sh", "-c",
                    "trap 'exit 0' TERM; echo ready; while :; do sleep 0.05; done" })
    assert.is_true(output_matches("polite", "ready"))
    t0 = now()
    assert(a:stop_container("polite", 10))
    assert.is_true(now() - t0 < 3)
    assert.equal(0, a:status("polite").exit_code)
    assert(a:remove_container("polite"))
  end)

  it("waits with a timeout", function()
    run("w", { "/bin/sleep", "100" })
    local ok, msg, errno = a:wait("w", 0.1)
    assert.is_nil(ok)
    assert.equal("container w: still running", msg)
    assert.equal(110, errno)
  end)

  it("kills a container over its memory limit, and says it was OOM", function()
    run("oom", { "/bin/sh", "-c", "x=aaaaaaaaaaaaaaaa; while :; do x=$x$x; done" },
        { resources = { memory_mib = 16 } })
    assert.equal(137, a:wait("oom", 10))
    local s = a:status("oom")
    assert.equal(137, s.exit_code)
    assert.is_true(s.oom)
  end)

  it("limits the number of processes", function()
    run("forks", { "/bin/sh", "-c", "for i in 1 2 3 4 5 6; do sleep 5 & done; wait" },
        { resources = { pids = 4 } })
    assert.is_not.equal(0, a:wait("forks", 10))
    local _, err = a:read_output("forks")
    assert.matches("can't fork", err)
  end)

  it("lists processes and reports stats", function()
    run("ps", { "/bin/sh", "-c", "sleep 100 & exec sleep 101" },
        { resources = { memory_mib = 64, pids = 20, cpu_quota_pct = 50 } })
    -- until the forked child has exec'd its sleep too (under load the
    -- list can catch it as a copy of the shell)
    local list = eventually(function()
      local l = assert(a:list_processes("ps"))
      return #l == 2 and l[1].cmd:match("^sleep") and l[2].cmd:match("^sleep") and l
    end)
    assert.is_truthy(list)
    local cmds = { list[1].cmd, list[2].cmd }
    table.sort(cmds)
    assert.same({ "sleep 100", "sleep 101" }, cmds)
    assert.equal(a:status("ps").pid, math.min(list[1].pid, list[2].pid))
    local st = assert(a:stats("ps"))
    assert.equal(64 * 1024 * 1024, st.memory_limit_bytes)
    assert.equal(2, st.pids)
    assert.is_true(st.memory_bytes > 0)
    assert.is_true(st.cpu_ns > 0)
    assert.equal("50000", support.read_file("/sys/fs/cgroup/cpu/" .. parent ..
                                            "/ps/cpu.cfs_quota_us"):match("%d+"))
  end)

  it("refuses bad containers with a clear message, leaving nothing behind", function()
    local cases = {
      { { rootfs = "/nonexistent/x" },
        "container bad: rootfs /nonexistent/x: No such file or directory" },
      { { argv = { "/bin/nope" } }, "container bad: /bin/nope: no such program in the rootfs" },
      { { argv = { "nope" } }, "container bad: nope: no such program in the rootfs" },
      { { user = "ghost" }, 'container bad: user "ghost": no such user in /etc/passwd' },
      { { user = "0:ghosts" }, 'container bad: user "0:ghosts": no such group in /etc/group' },
      { { cwd = "/nowhere" }, "container bad: cwd /nowhere: No such file or directory" },
      { { mounts = { { volume = "none", path = "/x" } } },
        'container bad: mount /x: no such volume "none"' },
      { { security = (function()
            local sec = security.effective({})
            sec.capabilities = { "CAP_FLY" }
            return sec
          end)() }, 'container bad: security: unknown capability "CAP_FLY"' },
      { { security = (function()
            local sec = security.effective({})
            sec.seccomp.syscalls[1].action = "SCMP_ACT_NOPE"
            return sec
          end)() },
        'container bad: security: seccomp: syscalls[1]: unknown action "SCMP_ACT_NOPE"' },
      { { security = (function()
            local sec = security.effective({})
            sec.rlimits = { { type = "RLIMIT_FLY", soft = 1, hard = 1 } }
            return sec
          end)() }, 'container bad: security: rlimit 1: unknown type "RLIMIT_FLY"' },
    }
    for _, case in ipairs(cases) do
      local extra, want = case[1], case[2]
      local argv = extra.argv or { "/bin/true" }
      extra.argv = nil
      local ok, msg = create("bad", argv, extra)
      assert.is_nil(ok)
      assert.equal(want, msg)
      assert.equal("container bad: no such container", select(2, a:status("bad")))
      assert.is_false(exists("/sys/fs/cgroup/memory/" .. parent .. "/bad"))
    end
    run("r", { "/bin/sleep", "100" })
    local ok, msg = create("r", { "/bin/true" })
    assert.is_nil(ok)
    assert.equal("container r: already exists", msg)
    ok, msg = a:remove_container("r")
    assert.is_nil(ok)
    assert.equal("container r: is running; stop it first", msg)
    ok, msg = a:start_container("r")
    assert.is_nil(ok)
    assert.equal("container r: is running, not created", msg)
  end)

  it("answers broken clients with errors and keeps serving", function()
    run("keep", { "/bin/sleep", "100" })
    local r = support.sh(string.format("python3 %s %s zero oversize absurd garbage array noid" ..
                                       " noop nohandshake badversion unknown", q(RAW), q(sock)))
    assert.equal(0, r.code, r.stderr)
    local got = {}
    for line in r.stdout:gmatch("[^\n]+") do got[#got + 1] = cjson.decode(line) end
    local function err(i)
      return string.format("%d %s %d", got[i].id, got[i].error, got[i].errno)
    end
    assert.equal("0 empty message (length 0) 74", err(1))
    assert.equal("0 message too large (2000000 bytes, at most 1048576) 90", err(2))
    assert.equal("message too large (2147483647 bytes, at most 1048576)", got[3].first.error)
    assert.is_true(got[3].closed)
    assert.matches("^0 malformed message: at byte %d+: .* 22$", err(4))
    assert.equal("0 malformed message: not a JSON object 22", err(5))
    assert.equal('0 malformed message: no positive integer "id" 22', err(6))
    assert.equal('5 malformed message: no string "op" 22', err(7))
    assert.equal("1 handshake first: send version 71", err(8))
    assert.equal("1 protocol 1 not supported (this agent speaks 4) 93", err(9))
    assert.equal('2 unknown operation "frob" 95', err(10))
    for i, g in ipairs(got) do
      assert.is_false((i == 3 and g.first or g).ok)
    end
    assert(a:ping())
    assert.equal("running", a:status("keep").state)
  end)

  it("survives clients that drop mid-frame, mid-wait and mid-stream", function()
    run("keep", { "/bin/sleep", "100" })
    local r = support.sh(string.format("python3 %s %s midframe midwait:keep midstream:keep",
                                       q(RAW), q(sock)))
    assert.equal(0, r.code, r.stderr)
    local lines = {}
    for line in r.stdout:gmatch("[^\n]+") do lines[#lines + 1] = cjson.decode(line) end
    assert.equal("e1", lines[3].reply.exec_id)
    assert.equal("output", lines[3].event.event)
    assert(a:ping())
    assert.equal("running", a:status("keep").state)
    -- the abandoned exec ran on to its end
    local code, out = exec("keep", { argv = { "/bin/echo", "still here" } })
    assert.equal(0, code)
    assert.equal("still here\n", out)
  end)

  it("refuses broken frames on a stream with its id, and the stream goes on", function()
    run("keep", { "/bin/sleep", "100" })
    local r = support.sh(string.format("python3 %s %s badstdin:keep", q(RAW), q(sock)))
    assert.equal(0, r.code, r.stderr)
    local got = cjson.decode(r.stdout)
    assert.is_true(got.reply.ok)
    local errors, out, last = {}, {}, got.events[#got.events]
    for _, ev in ipairs(got.events) do
      if ev.ok == false then errors[#errors + 1] = math.tointeger(ev.id) .. " " .. ev.error end
      if ev.event == "output" then out[#out + 1] = ev.data end
    end
    assert.same({
      "2 stdin: malformed frame",
      '2 stdin: "data" must be base64',
      "2 stdin: resize: the process has no terminal",
      "2 stdin: a frame for another request while streaming",
      '2 stdin: only "stdin", "close_stdin" and "resize" while streaming',
      "0 message too large (2000000 bytes, at most 1048576)",
    }, errors)
    assert.equal("aGkK", table.concat(out))  -- "hi\n", the good frame
    assert.equal("exit", last.event)
    assert.equal(0, last.exit_code)
    assert(a:ping())
    assert.equal("running", a:status("keep").state)
  end)

  it("mounts pod volumes into containers, read-only when asked", function()
    local data, conf = dir .. "/data", dir .. "/conf"
    assert(os.execute("mkdir " .. q(data) .. " " .. q(conf)))
    support.write_file(conf .. "/f", "setting\n")
    assert(a:create_pod { pod_id = "p", run_dir = dir, share = "bind", volumes = {
      { tag = "data", host_path = data },
      { tag = "conf", host_path = conf, read_only = true },
    } })
    run("v", { "/bin/sh", "-c", "echo x > /data/new && cat /etc/app/f && " ..
                                "(echo y > /etc/app/g 2>/dev/null || echo refused) && " ..
                                "(echo z > /shared/h 2>/dev/null || echo refused again)" },
        { mounts = { { volume = "data", path = "/data" },
                     { volume = "conf", path = "/etc/app" },
                     { volume = "data", path = "/shared", read_only = true } } })
    assert.equal(0, a:wait("v", 5))
    assert.equal("setting\nrefused\nrefused again\n", (a:read_output("v")))
    assert.equal("x\n", support.read_file(data .. "/new"))
    assert.is_nil(support.read_file(conf .. "/g"))
    assert(a:destroy_pod())
    assert.equal("container v: no such container", select(2, a:status("v")))
    assert.is_false(exists(dir .. "/state/volumes/data"))
  end)

  it("destroys the pod: every container killed, cgroups removed", function()
    run("one", { "/bin/sleep", "100" })
    run("two", { "/bin/sleep", "100" })
    assert(create("three", { "/bin/sleep", "100" }))
    assert(a:destroy_pod())
    assert.equal("", leftovers())
    assert(a:ping())
  end)

  it("shuts down on request and cleans up", function()
    run("one", { "/bin/sleep", "100" })
    find_agent()
    assert(a:shutdown())
    assert.is_true(eventually(agent_gone, 5))
    assert.is_false(exists(sock))
  end)
end)

describe("vc.core.agent", function()
  it("gives up at its timeout on a socket that accepts nothing (a hung sandbox)", function()
    local dir = support.tmpdir()
    local sock = dir .. "/agent.sock"
    local fake = assert(io.popen(string.format("python3 %s %s stuck",
      q(support.project .. "/spec/fixtures/fake_agent.py"), q(sock))))
    assert.equal("ready", fake:read("l"))
    local a = assert(agentlib.open("unix:" .. sock, { annotations = {} }))
    local t0 = now()
    local ok, msg = a:connect(0.5)
    local took = now() - t0
    fake:close()
    support.rmtree(dir)
    assert.is_nil(ok)
    assert.matches("nothing accepted the connection within", msg, 1, true)
    assert.is_true(took < 2.5, "took " .. took .. " s")
  end)
end)
