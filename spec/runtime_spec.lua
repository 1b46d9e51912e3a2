-- vc-runtime, the OCI runtime command line: by hand as an engine calls it
-- (spec/fixtures/subreaper.py plays conmon: a subreaper that waits for the
-- pid file's process), then under podman itself, on both backends.
local cjson = require "cjson"
local support = require "support"

local ROOTFS = support.project .. "/build/rootfs"
local GUEST = support.project .. "/build/guest/vmlinux"
-- vc-runtime is the vc under test (support.bin: the plain or the
-- sanitized build) under that name.
-- (beside it, where it finds its agent: build/vc-runtime-asan for vc-asan)
local BIN_DIR, BIN_SUFFIX = support.bin:match("^(.*)/vc([^/]*)$")
local RUNTIME = BIN_DIR .. "/vc-runtime" .. BIN_SUFFIX
assert(os.execute("ln -f " .. support.quote(support.bin) .. " " .. support.quote(RUNTIME)))
local REAPER = support.project .. "/spec/fixtures/subreaper.py"
local PTY = support.project .. "/spec/fixtures/pty_session.py"
local q = support.quote

local BACKENDS = { "namespace" }
if support.read_file(GUEST) then BACKENDS[#BACKENDS + 1] = "qemu" end

-- A bundle in dir: `crun spec`'s config (what engines start from) with
-- the busybox rootfs, argv and the backend's annotation.
local function bundle(dir, argv, backend, edit)
  assert(os.execute("mkdir -p " .. q(dir) .. " && rm -f " .. q(dir .. "/config.json")))
  local r = support.sh("cd " .. q(dir) .. " && crun spec")
  assert(r.code == 0, r.stderr)
  local spec = cjson.decode((assert(support.read_file(dir .. "/config.json"))))
  spec.root.path = ROOTFS
  spec.process.terminal = false
  spec.process.args = argv
  spec.annotations = { ["vc.hypervisor"] = backend }
  if edit then edit(spec) end
  support.write_file(dir .. "/config.json", cjson.encode(spec))
end

for _, backend in ipairs(BACKENDS) do
  describe("vc-runtime on " .. backend, function()
    local root, tmp

    local function rt(...)
      local parts = { q(RUNTIME), "--root", q(root) }
      for _, a in ipairs { ... } do parts[#parts + 1] = q(a) end
      return table.concat(parts, " ")
    end

    before_each(function()
      root = support.tmpdir()
      tmp = support.tmpdir()
    end)

    after_each(function()
      local r = support.sh("ls " .. q(root .. "/lib/pods"))
      for id in r.stdout:gmatch("%S+") do os.execute(rt("delete", "--force", id)) end
      local traces = support.traces(root)
      support.rmtree(root)
      support.rmtree(tmp)
      assert.equal("", traces)
    end)

    -- create + start + wait as conmon does: { status =, stdout =, stderr = }
    local function run(id, argv, stdin, edit)
      local b = tmp .. "/" .. id
      bundle(b, argv, backend, edit)
      local cmd = ("python3 %s %s %s %s %s"):format(
        q(REAPER), q(tmp .. "/" .. id .. ".status"), q(b .. "/pid"),
        q(cjson.encode { RUNTIME, "--root", root, "start", id }),
        rt("create", "--bundle", b, "--pid-file", b .. "/pid", id))
      local r = support.sh(cmd, stdin)
      r.status = support.read_file(tmp .. "/" .. id .. ".status")
      return r
    end

    local function state(id)
      local r = support.sh(rt("state", id))
      assert.equal(0, r.code, r.stderr)
      return cjson.decode(r.stdout)
    end

    it("runs a bundle: output, stdin to its end, the exit status through the pid file",
       function()
      local r = run("t1", { "/bin/sh", "-c", "echo out; echo err >&2; cat; exit 3" }, "in\n")
      assert.equal(0, r.code, r.stderr)
      assert.equal("exited 3\n", r.status)
      assert.equal("out\nin\n", r.stdout)
      assert.equal("err\n", r.stderr)
      local s = state("t1")
      assert.equal("stopped", s.status)
      assert.equal("t1", s.id)
      assert.equal(tmp .. "/t1", s.bundle)
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d+Z$", s.created)
      assert.equal(backend, s.annotations["vc.hypervisor"])
      assert.equal(0, support.sh(rt("delete", "t1")).code)
      -- a second delete: runc's error; with --force, nothing to do
      r = support.sh(rt("delete", "t1"))
      assert.equal(1, r.code)
      assert.matches("container does not exist", r.stderr)
      assert.equal(0, support.sh(rt("delete", "--force", "t1")).code)
    end)

    it("reports created and running, and kills with a signal (128+N)", function()
      local b = tmp .. "/k"
      bundle(b, { "/bin/sleep", "600" }, backend)
      local r = support.sh(rt("create", "--bundle", b, "--pid-file", b .. "/pid", "k")
                           .. " </dev/null >/dev/null 2>&1")
      assert.equal(0, r.code)
      local s = state("k")
      assert.equal("created", s.status)
      assert.equal(tonumber(support.read_file(b .. "/pid")), s.pid)
      assert.equal(0, support.sh(rt("start", "k")).code)
      assert.equal("running", state("k").status)
      r = support.sh(rt("start", "k"))
      assert.equal(1, r.code)
      r = support.sh(rt("delete", "k"))
      assert.equal(1, r.code)
      assert.matches("cannot delete container k that is not stopped: running", r.stderr)
      assert.equal(0, support.sh(rt("kill", "k", "SIGKILL")).code)
      local st
      for _ = 1, 100 do
        st = state("k").status
        if st == "stopped" then break end
        os.execute("sleep 0.1")
      end
      assert.equal("stopped", st)
      r = support.sh(rt("kill", "k", "TERM"))
      assert.equal(1, r.code)
      assert.matches("container not running", r.stderr)
      assert.equal(0, support.sh(rt("delete", "k")).code)
    end)

    it("updates a running container's limits and signals all its processes", function()
      local b = tmp .. "/u"
      bundle(b, { "/bin/sh", "-c", "sleep 600 & sleep 600 & wait" }, backend, function(spec)
        spec.linux.resources = { memory = { limit = 64 * 1048576 } }
      end)
      assert.equal(0, support.sh(rt("create", "--bundle", b, "u") .. " </dev/null >/dev/null")
                   .code)
      assert.equal(0, support.sh(rt("start", "u")).code)
      local r = support.sh(rt("update", "--resources", "-", "u"), cjson.encode {
        memory = { limit = 96 * 1048576 }, pids = { limit = 40 } })
      assert.equal(0, r.code, r.stderr)
      -- the agent's cgroups have it, and the store for the next start
      r = support.sh(q(support.bin) .. " --root " .. q(root) .. " container stats --json u u")
      assert.equal(0, r.code, r.stderr)
      assert.equal(96 * 1048576, cjson.decode(r.stdout).memory_limit_bytes)
      local cfg = cjson.decode(support.read_file(root .. "/lib/pods/u/u/config.json"))
      assert.same({ memory_mib = 96, pids = 40 }, cfg.resources)
      -- what vc cannot limit, and nothing to set: errors, nothing changed
      r = support.sh(rt("update", "--resources", "-", "u"), '{"blockIO": {"weight": 10}}')
      assert.equal(1, r.code)
      assert.matches("blockIO limits are not supported", r.stderr)
      r = support.sh(rt("update", "--memory", "0", "u"))
      assert.equal(1, r.code)
      assert.matches("no limit vc%-runtime can set was given", r.stderr)
      r = support.sh(rt("update", "--resources", "-", "u"), "{not json")
      assert.equal(1, r.code)
      assert.matches("invalid JSON", r.stderr)
      -- three processes; kill --all reaches the two sleeps too
      r = support.sh(rt("ps", "--format", "json", "u"))
      assert.equal(3, #cjson.decode(r.stdout))
      assert.equal(0, support.sh(rt("kill", "--all", "u", "KILL")).code)
      local st
      for _ = 1, 100 do
        st = state("u").status
        if st == "stopped" then break end
        os.execute("sleep 0.1")
      end
      assert.equal("stopped", st)
      assert.equal(0, support.sh(rt("delete", "u")).code)
    end)

    it("pauses and resumes a container: its processes freeze and thaw", function()
      local b, data = tmp .. "/pz", tmp .. "/pzdata"
      assert(os.execute("mkdir -p " .. q(data)))
      bundle(b, { "/bin/sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /data/n; sync;"
                  .. " sleep 0.1; done" }, backend, function(spec)
        spec.mounts[#spec.mounts + 1] = { destination = "/data", type = "bind", source = data,
                                          options = { "rbind", "rw" } }
      end)
      assert.equal(0, support.sh(rt("create", "--bundle", b, "pz") .. " </dev/null >/dev/null")
                   .code)
      assert.equal(0, support.sh(rt("start", "pz")).code)
      local function count()
        return tonumber(support.read_file(data .. "/n") or "") or 0
      end
      for _ = 1, 100 do
        if count() > 2 then break end
        os.execute("sleep 0.1")
      end
      assert.is_true(count() > 2)
      local r = support.sh(rt("pause", "pz"))
      assert.equal(0, r.code, r.stderr)
      assert.equal("paused", state("pz").status)
      r = support.sh(rt("pause", "pz"))
      assert.equal(1, r.code)
      assert.matches("container not running", r.stderr)
      local frozen = count()
      os.execute("sleep 0.6")
      assert.equal(frozen, count())
      assert.equal(0, support.sh(rt("resume", "pz")).code)
      assert.equal("running", state("pz").status)
      for _ = 1, 100 do
        if count() > frozen then break end
        os.execute("sleep 0.1")
      end
      assert.is_true(count() > frozen)
      -- a paused container is deleted with --force (SIGKILL thaws it)
      r = support.sh(rt("pause", "pz"))
      assert.equal(0, r.code, r.stderr)
      r = support.sh(rt("delete", "--force", "pz"))
      assert.equal(0, r.code, r.stderr)
      r = support.sh(rt("state", "pz"))
      assert.equal(1, r.code)
    end)

    it("refuses bad input with runc's kind of error, and leaves nothing", function()
      local b = tmp .. "/bad"
      assert(os.execute("mkdir -p " .. q(b)))
      local cases = {
        { rt("create", "--bundle", b, "x1"), "config%.json: no such file or directory" },
        { "echo '{' >" .. q(b .. "/config.json") .. "; " .. rt("create", "--bundle", b, "x2"),
          "config%.json: invalid JSON" },
        { rt("state", "nosuch"), "container does not exist" },
        { rt("kill", "nosuch", "TERM"), "container does not exist" },
        { rt("start", "nosuch"), "container does not exist" },
        { rt("create", "--bundle", b, "../up"), "invalid container ID" },
        { rt("frobnicate", "x"), 'command "frobnicate" not supported' },
        { rt("checkpoint", "x"), "checkpoint: not supported" },
      }
      for _, c in ipairs(cases) do
        local r = support.sh(c[1])
        assert.equal(1, r.code, c[1])
        assert.matches(c[2], r.stderr)
      end
      -- a console socket where no terminal is asked for, a terminal
      -- without one, a socket nobody serves
      bundle(b, { "/bin/true" }, backend)
      local r = support.sh(rt("create", "--bundle", b, "--console-socket", tmp .. "/s", "x3"))
      assert.equal(1, r.code)
      assert.matches("cannot use console socket if vc%-runtime will not allocate tty", r.stderr)
      bundle(b, { "/bin/sh" }, backend, function(spec) spec.process.terminal = true end)
      r = support.sh(rt("create", "--bundle", b, "x4"))
      assert.equal(1, r.code)
      assert.matches("cannot allocate tty if vc%-runtime will detach without setting console"
                     .. " socket", r.stderr)
      r = support.sh(rt("create", "--bundle", b, "--console-socket", tmp .. "/nobody", "x5"))
      assert.equal(1, r.code)
      assert.matches("console socket " .. tmp:gsub("%p", "%%%0") .. "/nobody: connect", r.stderr)
      assert.equal("", support.sh("ls " .. q(root .. "/lib/pods")).stdout)
      assert.equal("", support.traces(root))
      -- a second create of one ID
      bundle(b, { "/bin/true" }, backend)
      assert.equal(0, support.sh(rt("create", "--bundle", b, "dup") .. " </dev/null >/dev/null")
                   .code)
      r = support.sh(rt("create", "--bundle", b, "dup"))
      assert.equal(1, r.code)
      assert.matches("container with id exists: dup", r.stderr)
      assert.equal(0, support.sh(rt("delete", "dup")).code)
      -- errors go to --log as runc's JSON lines too
      r = support.sh(table.concat({ q(RUNTIME), "--root", q(root), "--log", q(tmp .. "/log.json"),
                                    "--log-format", "json", "state", "nosuch" }, " "))
      assert.equal(1, r.code)
      local line = cjson.decode(support.read_file(tmp .. "/log.json"))
      assert.equal("error", line.level)
      assert.equal("container does not exist", line.msg)
      assert.equal("", support.sh("ls " .. q(root .. "/lib/pods")).stdout)
    end)
  end)
end

-- The pods under a runtime root (the engines' default one may hold
-- others' pods: a test checks it leaves none of its own).
local function pods(root)
  local out = {}
  for id in support.sh("ls " .. q(root .. "/lib/pods") .. " 2>/dev/null").stdout:gmatch("%S+") do
    out[id] = true
  end
  return out
end
local BEFORE = { ["/run/vc-runtime"] = pods("/run/vc-runtime") }

-- Nothing of vc's left under a runtime root but what was there before: no
-- pod, and (for a root of the test's own) no process, mount or cgroup.
local function clean(root)
  for id in pairs(pods(root)) do
    assert.is_true((BEFORE[root] or {})[id], "pod " .. id .. " left under " .. root)
  end
  if not BEFORE[root] or not next(BEFORE[root]) then assert.equal("", support.traces(root)) end
end

-- podman with vc-runtime: a containers.conf and store of the test's own,
-- the busybox rootfs imported as an image.
local have_podman = os.execute("command -v podman >/dev/null 2>&1 && command -v conmon"
                               .. " >/dev/null 2>&1")
describe("podman with vc-runtime", function()
  if not have_podman then
    it("needs podman and conmon (scripts/dev installs them)", function()
      pending("no podman")
    end)
    return
  end
  local dir, env

  local function podman(args, stdin)
    return support.sh(env .. " podman " .. args, stdin)
  end

  setup(function()
    dir = support.tmpdir()
    support.write_file(dir .. "/containers.conf", ([[
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]
netns = "none"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "vc"
[engine.runtimes]
vc = [%q]
]]):format(RUNTIME))
    support.write_file(dir .. "/storage.conf", ([[
[storage]
driver = "vfs"
graphroot = %q
runroot = %q
]]):format(dir .. "/graph", dir .. "/run"))
    env = ("CONTAINERS_CONF=%s CONTAINERS_STORAGE_CONF=%s"):format(
      q(dir .. "/containers.conf"), q(dir .. "/storage.conf"))
    local r = support.sh("tar -C " .. q(ROOTFS) .. " -c . | " .. env
                         .. " podman import - localhost/vcbb")
    assert.equal(0, r.code, r.stderr)
  end)

  teardown(function()
    podman("rm -a -f")
    podman("rmi -a -f")
    os.execute("rm -rf " .. q(dir .. "/graph") .. " " .. q(dir .. "/run"))
    support.rmtree(dir)
  end)

  for _, backend in ipairs(BACKENDS) do
    local ann = "--annotation vc.hypervisor=" .. backend
    it("runs --rm on " .. backend .. " with output, exit codes and stdin", function()
      local r = podman("run --rm " .. ann .. " localhost/vcbb /bin/sh -c 'echo hi; exit 5'")
      assert.equal(5, r.code, r.stderr)
      assert.equal("hi\n", r.stdout)
      r = podman("run --rm -i " .. ann .. " localhost/vcbb /bin/sh -c 'wc -c'", "12345")
      assert.equal(0, r.code, r.stderr)
      assert.equal("5\n", r.stdout)
      r = podman("run --rm " .. ann .. " localhost/vcbb /bin/cat /proc/1/cmdline")
      assert.equal(0, r.code, r.stderr)
      assert.equal("/bin/cat\0/proc/1/cmdline\0", r.stdout)
      clean("/run/vc-runtime")
    end)

    it("runs --read-only on " .. backend .. " with --tmpfs, the engine's capabilities and user",
       function()
      -- podman adds tmpfs on /tmp, /var/tmp and /run to a read-only rootfs
      local r = podman("run --rm --read-only --tmpfs /data:size=4m " .. ann
                       .. " --cap-drop CHOWN --user 1000:1000 --group-add 5 localhost/vcbb"
                       .. " /bin/sh -c 'echo a > /tmp/a && echo b > /data/b && cat /tmp/a /data/b;"
                       .. " df -k /data | tail -1; id -G; grep CapBnd /proc/self/status;"
                       .. " echo c > /c 2>/dev/null || echo ro'")
      assert.equal(0, r.code, r.stderr)
      local a, b, kib, groups, bnd, ro = r.stdout:match(
        "^(%S+)\n(%S+)\n%S+%s+(%d+)[^\n]*\n([%d ]+)\nCapBnd:%s*(%x+)\n(%S+)\n$")
      assert.equal("a", a, r.stdout)
      assert.equal("b", b)
      assert.equal(4096, tonumber(kib))
      assert.matches("^1000 5$", groups)
      assert.equal(0, tonumber(bnd, 16) & 1)   -- CAP_CHOWN is bit 0
      assert.equal("ro", ro)
      clean("/run/vc-runtime")
    end)

    it("runs -it on " .. backend .. ": a shell on a terminal, its size, its exit code",
       function()
      local steps = dir .. "/steps.json"
      support.write_file(steps, cjson.encode {
        { expect = "# $" }, { send = "tty; echo $((6*7))\r" }, { expect = "/dev/pts/\\d+\n42" },
        -- (podman passes the size on through conmon, in its own time)
        { resize = { 40, 100 } }, { send = "sleep 1; stty size\r" }, { expect = "40 100" },
        { send = "exit 3\r" }, { exit = 3 },
      })
      local r = support.sh(env .. " python3 " .. q(PTY) .. " " .. q(steps)
                           .. " podman run --rm -it " .. ann .. " localhost/vcbb /bin/sh")
      assert.equal(0, r.code, r.stderr .. r.stdout)
    end)

    it("runs detached on " .. backend .. ", stops with a signal, and removes", function()
      local r = podman("run -d --name vcd-" .. backend .. " " .. ann
                       .. " localhost/vcbb /bin/sh -c 'trap \"exit 42\" TERM; echo up;"
                       .. " while :; do sleep 0.1; done'")
      assert.equal(0, r.code, r.stderr)
      for _ = 1, 100 do
        if podman("logs vcd-" .. backend).stdout == "up\n" then break end
        os.execute("sleep 0.1")
      end
      assert.equal("up\n", podman("logs vcd-" .. backend).stdout)
      r = podman("exec vcd-" .. backend .. " /bin/sh -c 'echo in; exit 4'")
      assert.equal(4, r.code, r.stderr)
      assert.equal("in\n", r.stdout)
      r = podman("exec -i vcd-" .. backend .. " /bin/cat", "piped")
      assert.equal(0, r.code, r.stderr)
      assert.equal("piped", r.stdout)
      local steps = dir .. "/exec-steps.json"
      support.write_file(steps, cjson.encode {
        { expect = "# $" }, { send = "tty\r" }, { expect = "/dev/pts/\\d+" },
        { send = "exit 6\r" }, { exit = 6 } })
      r = support.sh(env .. " python3 " .. q(PTY) .. " " .. q(steps) .. " podman exec -it vcd-"
                     .. backend .. " /bin/sh")
      assert.equal(0, r.code, r.stderr .. r.stdout)
      r = podman("pause vcd-" .. backend)
      assert.equal(0, r.code, r.stderr)
      assert.equal("paused\n", podman("inspect -f '{{.State.Status}}' vcd-" .. backend).stdout)
      r = podman("unpause vcd-" .. backend)
      assert.equal(0, r.code, r.stderr)
      r = podman("stop -t 10 vcd-" .. backend)
      assert.equal(0, r.code, r.stderr)
      r = podman("inspect -f '{{.State.ExitCode}}' vcd-" .. backend)
      assert.equal("42\n", r.stdout)
      r = podman("rm vcd-" .. backend)
      assert.equal(0, r.code, r.stderr)
      clean("/run/vc-runtime")
    end)
  end

  it("runs a pod's containers in one VM: they share localhost, the host name and IPC",
     function()
    -- an infra image that ends on TERM (as a pause image does)
    local r = support.sh("tar -C " .. q(ROOTFS) .. " -c . | " .. env .. " podman import"
                         .. [[ --change 'ENTRYPOINT ["/bin/sh", "-c", "trap \"exit 0\" TERM;]]
                         .. [[ while :; do sleep 0.2; done"]' - localhost/vcpause]])
    assert.equal(0, r.code, r.stderr)
    r = podman("pod create --name vcpod --hostname podhost --infra-image localhost/vcpause")
    assert.equal(0, r.code, r.stderr)
    local before = pods("/run/vc-runtime")
    r = podman("run -d --name vcsrv --pod vcpod localhost/vcbb /bin/sh -c 'mkdir -p /www;"
               .. " echo hello-from-srv > /www/index.html; touch /dev/mqueue/vcq;"
               .. " trap \"exit 0\" TERM; httpd -p 127.0.0.1:8080 -h /www;"
               .. " while :; do sleep 0.2; done'")
    assert.equal(0, r.code, r.stderr)
    local out
    for _ = 1, 50 do
      r = podman("run --rm --pod vcpod localhost/vcbb /bin/sh -c 'printf \"GET / HTTP/1.0\r\n"
                 .. "\r\n\" | nc 127.0.0.1 8080 | tail -1; hostname; ls /dev/mqueue'")
      out = r.stdout
      if out:match("hello%-from%-srv") then break end
      os.execute("sleep 0.2")
    end
    assert.equal(0, r.code, r.stderr)
    -- (a POSIX message queue is the IPC namespace's: /dev/mqueue shows it)
    assert.equal("hello-from-srv\npodhost\nvcq\n", out)
    -- one VM: the infra container's pod holds the others
    local mine = {}
    for id in pairs(pods("/run/vc-runtime")) do
      if not before[id] then mine[#mine + 1] = id end
    end
    local infra = podman("pod inspect -f '{{.InfraContainerID}}' vcpod").stdout:match("%x+")
    assert.same({ infra }, mine)
    r = support.sh(q(support.bin) .. " --root /run/vc-runtime pod status --json " .. infra)
    assert.equal(0, r.code, r.stderr)
    local ids = {}
    for _, c in ipairs(cjson.decode(r.stdout).containers) do ids[c.id] = c.state end
    assert.equal("running", ids[podman("inspect -f '{{.ID}}' vcsrv").stdout:match("%x+")])
    -- a member cannot pause alone; stop and rm as usual, then the pod
    r = podman("stop -t 5 vcsrv")
    assert.equal(0, r.code, r.stderr)
    assert.equal("0\n", podman("inspect -f '{{.State.ExitCode}}' vcsrv").stdout)
    r = podman("pod rm -f vcpod")
    assert.equal(0, r.code, r.stderr)
    podman("rmi localhost/vcpause")
    clean("/run/vc-runtime")
  end)
end)

-- containerd with vc-runtime as its runc (ctr --runc-binary): a daemon of
-- the test's own, in a folder of its own, stopped at the end.
local have_ctr = have_podman and os.execute("command -v containerd >/dev/null 2>&1 && "
                                            .. "command -v containerd-shim-runc-v2 >/dev/null")
describe("containerd with vc-runtime", function()
  if not have_ctr then
    it("needs containerd (scripts/dev installs it)", function() pending("no containerd") end)
    return
  end
  local dir, pid, ctr

  setup(function()
    dir = support.tmpdir()
    support.write_file(dir .. "/config.toml", ([[
version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = %q
]]):format(dir .. "/root", dir .. "/state", dir .. "/sock"))
    local p = io.popen("containerd --config " .. q(dir .. "/config.toml") .. " >"
                       .. q(dir .. "/log") .. " 2>&1 & echo $!")
    pid = p:read("l")
    p:close()
    for _ = 1, 100 do
      if support.sh("test -S " .. q(dir .. "/sock")).code == 0 then break end
      os.execute("sleep 0.1")
    end
    ctr = "ctr -a " .. q(dir .. "/sock") .. " -n vctest "
    -- the busybox rootfs as an image: podman import, save, ctr import
    local conf = dir .. "/storage.conf"
    support.write_file(conf, ('[storage]\ndriver = "vfs"\ngraphroot = %q\nrunroot = %q\n')
                             :format(dir .. "/graph", dir .. "/prun"))
    local env = "CONTAINERS_STORAGE_CONF=" .. q(conf)
    local r = support.sh("tar -C " .. q(ROOTFS) .. " -c . | " .. env
                         .. " podman import - localhost/vcbb && " .. env
                         .. " podman save --format oci-archive -o " .. q(dir .. "/bb.tar")
                         .. " localhost/vcbb && " .. ctr .. "image import " .. q(dir .. "/bb.tar"))
    assert.equal(0, r.code, r.stderr)
  end)

  teardown(function()
    if pid then os.execute("kill " .. pid .. "; sleep 0.5") end
    os.execute("umount -R " .. q(dir .. "/state") .. " " .. q(dir .. "/root") .. " 2>/dev/null")
    os.execute("rm -rf " .. q(dir .. "/graph") .. " " .. q(dir .. "/prun") .. " "
               .. q(dir .. "/root") .. " " .. q(dir .. "/state"))
    support.rmtree(dir)
  end)

  it("runs a container in a VM with ctr run --rm, its output and exit status", function()
    local r = support.sh(ctr .. "run --rm --runc-binary " .. q(RUNTIME)
                         .. " localhost/vcbb:latest c1 /bin/sh -c 'echo hi from ctr; exit 3'")
    assert.equal(3, r.code, r.stderr)
    assert.equal("hi from ctr\n", r.stdout)
    assert.equal("", support.sh(ctr .. "containers list -q").stdout)
    clean("/run/containerd/runc/vctest")
  end)

  it("runs a task detached: task exec, task kill, task delete with the exit status", function()
    local r = support.sh(ctr .. "run -d --runc-binary " .. q(RUNTIME) .. " localhost/vcbb:latest"
                         .. " c2 /bin/sh -c 'trap \"exit 7\" TERM; while :; do sleep 0.2; done'")
    assert.equal(0, r.code, r.stderr)
    r = support.sh(ctr .. "task exec --exec-id e1 c2 /bin/sh -c 'echo in; exit 4'")
    assert.equal(4, r.code, r.stderr)
    assert.equal("in\n", r.stdout)
    assert.matches("c2%s+%d+%s+RUNNING", support.sh(ctr .. "task ls").stdout)
    r = support.sh(ctr .. "task kill c2")
    assert.equal(0, r.code, r.stderr)
    for _ = 1, 50 do
      if support.sh(ctr .. "task ls").stdout:match("c2%s+%d+%s+STOPPED") then break end
      os.execute("sleep 0.1")
    end
    assert.matches("c2%s+%d+%s+STOPPED", support.sh(ctr .. "task ls").stdout)
    r = support.sh(ctr .. "task delete c2")
    assert.equal(0, r.code, r.stderr)
    assert.matches("task c2 exit with non%-zero exit code 7", r.stderr)
    assert.equal(0, support.sh(ctr .. "containers rm c2").code)
    assert.equal("", support.sh(ctr .. "containers list -q").stdout)
    clean("/run/containerd/runc/vctest")
  end)
end)
