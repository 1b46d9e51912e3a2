-- The qemu backend end to end: real VMs (KVM where usable, TCG here),
-- the guest's agent over virtio-serial, rootfs and volumes over 9p.
local cjson = require "cjson"
local support = require "support"
local vc = require "vc"

local ROOTFS = support.project .. "/build/rootfs"
local GUEST = support.project .. "/build/guest/vmlinux"

local function qemu_pid(root, pod)
  local info = cjson.decode(support.read_file(root .. "/run/pods/" .. pod .. "/hypervisor.json"))
  return math.tointeger(info.pid)
end

local function gone(pid)
  local stat = support.read_file("/proc/" .. pid .. "/stat")
  return stat == nil or stat:match("^%d+ %b() ([ZX])") ~= nil
end


local describe_vm = support.read_file(GUEST) and describe
  or function(name) pending(name .. ": no guest image (make guest)") end

describe_vm("qemu backend", function()
  local root, rootfs

  before_each(function()
    -- short: the sockets' paths must fit in 108 bytes
    root = support.tmpdir()
    rootfs = root .. "/rootfs"
    assert(os.execute("cp -a " .. support.quote(ROOTFS) .. " " .. support.quote(rootfs)))
    vc.setup { root = root, lock_timeout = 30 }
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

  local function run(id, containers, extra)
    local cfg = { id = id, containers = containers, vm = { memory_mib = 128 } }
    for k, v in pairs(extra or {}) do cfg[k] = v end
    return assert(vc.pod.run(cfg))
  end

  it("boots a VM by default and runs a busybox container in it", function()
    local p = run("vm", {
      ctr("hello", { "/bin/sh", "-c", "echo hello from $(hostname); exit 7" }),
    })
    local s = p:status()
    assert.equal("qemu", s.hypervisor)
    assert.is_truthy(s.accel == "tcg" or s.accel == "kvm")
    local c = p:container("hello")
    assert.equal(7, c:wait(60))
    assert.equal("hello from hello\n", (c:logs()))
    -- the guest's kernel, not the host's
    assert.is_truthy(support.read_file(root .. "/run/pods/vm/console.log"))
    assert.is_true(p:stop())
    assert.equal("stopped", p:state())
    assert.is_true(p:delete())
    assert.equal("", support.traces(root))
  end)

  it("runs examples/hello.lua and shows backend and acceleration in status", function()
    local r = support.vc(root, { "run", support.project .. "/examples/hello.lua" })
    assert.equal(0, r.code, r.stderr)
    assert.matches("[running, qemu]", r.stdout, 1, true)
    assert.matches("hello from hello, pid 1, in Linux\n", r.stdout, 1, true)
    assert.matches("container hello exited with code 0", r.stdout, 1, true)
    assert.equal("[]\n", support.vc(root, { "pod", "list", "--json" }).stdout)
    r = support.vc(root, { "pod", "create", "--id", "st" })
    assert.equal(0, r.code, r.stderr)
    assert.equal(0, support.vc(root, { "pod", "start", "st" }).code)
    r = support.vc(root, { "pod", "status", "st" })
    assert.equal(0, r.code, r.stderr)
    assert.matches("ACCEL", r.stdout, 1, true)
    assert.matches("\nst +running +qemu +[kt][vc][mg] ", r.stdout)
  end)

  it("execs, lists, pauses (no progress while paused) and resumes", function()
    local p = run("work", { ctr("tick", { "/bin/sh", "-c",
      -- (renamed into place: a reader never sees the file empty)
      "i=0; while :; do i=$((i+1)); echo $i > /tmp/n.t; mv /tmp/n.t /tmp/n; usleep 50000;"
      .. " done" }) })
    local c = p:container("tick")
    local function count()
      local code, out = c:exec { "/bin/cat", "/tmp/n" }
      assert.equal(0, code)
      return tonumber(out)
    end
    local code, out, err = c:exec { "/bin/sh", "-c", "echo out; echo err >&2; exit 4" }
    assert.same({ 4, "out\n", "err\n" }, { code, out, err })
    local ps = assert(c:processes())
    assert.is_true(#ps >= 1)
    -- progress in one second, running
    local a = count()
    os.execute("sleep 1")
    local running = count() - a
    assert.is_true(running >= 4, "only " .. running .. " ticks in a second")
    -- the same second, paused
    local b = count()
    assert.is_true(p:pause())
    assert.equal("paused", p:state())
    local ok, perr = c:exec { "/bin/true" }
    assert.is_nil(ok)
    assert.matches("cannot exec while pod work is paused", perr, 1, true)
    os.execute("sleep 1")
    assert.is_true(p:resume())
    local paused = count() - b
    assert.is_true(paused < running / 2,
                   ("%d ticks while paused, %d while running"):format(paused, running))
  end)

  it("runs two pods at once", function()
    local p1 = run("one", { ctr("c", { "/bin/sleep", "600" }) })
    local p2 = run("two", { ctr("c", { "/bin/sleep", "600" }) })
    assert.equal(0, (p1:container("c"):exec { "/bin/true" }))
    assert.equal(0, (p2:container("c"):exec { "/bin/true" }))
    assert.is_true(qemu_pid(root, "one") ~= qemu_pid(root, "two"))
  end)

  it("runs QEMU confined: its seccomp sandbox, few capabilities, root-only files", function()
    local p = run("conf", { ctr("c", { "/bin/sleep", "600" }) })
    local status = support.read_file("/proc/" .. qemu_pid(root, "conf") .. "/status")
    assert.equal("2", status:match("\nSeccomp:%s*(%d+)"))
    assert.equal("1", status:match("\nNoNewPrivs:%s*(%d+)"))
    -- CHOWN, DAC_OVERRIDE, DAC_READ_SEARCH, FOWNER, FSETID, MKNOD: its 9p server's
    assert.equal("000000000800001f", status:match("\nCapEff:%s*(%x+)"))
    assert.equal("000000000800001f", status:match("\nCapBnd:%s*(%x+)"))
    -- sockets, console and log: nobody but root reads them
    local run_dir = root .. "/run/pods/conf"
    local r = support.sh("cd " .. run_dir .. " && stat -c '%n %a' agent.0.sock agent.7.sock" ..
                         " ctrl.sock monitor.sock console.log qemu.log")
    assert.equal(0, r.code, r.stderr)
    for name, mode in r.stdout:gmatch("(%S+) (%d+)") do
      assert.is_true(tonumber(mode, 8) & tonumber("077", 8) == 0, name .. " has mode " .. mode)
    end
    assert.equal(0, (p:container("c"):exec { "/bin/true" }))
  end)

  it("serves eight agent clients at once, and a ninth once one leaves", function()
    run("ports", { ctr("c", { "/bin/sleep", "600" }) })
    local agentlib = require "vc.core.agent"
    local record = support.read_file(root .. "/run/pods/ports/agent.json")
    local address = cjson.decode(record).address
    assert.matches("^serial:8:", address)
    local held = {}
    for i = 1, 7 do
      held[i] = assert(agentlib.open(address, { annotations = {} }))
      assert(held[i]:connect(10))
    end
    -- the eighth port: vc's own commands get through beside them
    local r = support.vc(root, { "container", "exec", "ports", "c", "--", "/bin/echo", "hi" })
    assert.equal(0, r.code, r.stderr)
    assert.equal("hi\n", r.stdout)
    held[8] = assert(agentlib.open(address, { annotations = {} }))
    assert(held[8]:connect(10))
    local ninth <close> = assert(agentlib.open(address, { annotations = {} }))
    local ok, err = ninth:connect(0.3)
    assert.is_falsy(ok)
    assert.matches("all 8 ports have a client", err)
    for i = 1, 8 do assert(held[i]:ping()) end
    held[3]:close()
    assert(ninth:connect(10))
    assert(ninth:ping())
    -- a client that leaves at once, again and again: the next one on its
    -- port always finds the agent's side as new
    for i = 1, 8 do if i ~= 3 then held[i]:close() end end
    for _ = 1, 20 do
      local a <close> = assert(agentlib.open(address, { annotations = {} }))
      assert(a:connect(10))
      assert(a:status("c"))
    end
  end)

  it("shares a volume read-only: not writable from the container", function()
    local data = root .. "/data"
    assert(os.execute("mkdir -p " .. data .. " && echo shared > " .. data .. "/f"))
    local mounts = { { volume = "data", path = "/data", read_only = true } }
    local p = run("vol", { ctr("v", { "/bin/sleep", "600" }, { mounts = mounts }) },
                  { volumes = { { tag = "data", host_path = data, read_only = true } } })
    local c = p:container("v")
    local code, out = c:exec { "/bin/cat", "/data/f" }
    assert.equal(0, code)
    assert.equal("shared\n", out)
    local wcode = c:exec { "/bin/sh", "-c", "echo x > /data/g" }
    assert.is_not.equal(0, wcode)
    assert.is_nil(support.read_file(data .. "/g"))
  end)

  it("has a container's writes on the host once it has exited", function()
    -- (9p keeps writes in the guest's page cache: the agent writes them
    -- back before it reports an exit)
    local data = root .. "/data"
    assert(os.execute("mkdir -p " .. data))
    local mounts = { { volume = "data", path = "/data" } }
    local p = run("wb", {
      ctr("w", { "/bin/sh", "-c", "echo root > /out; echo volume >> /data/out" },
          { mounts = mounts }),
      ctr("s", { "/bin/sleep", "600" }, { mounts = mounts }),
    }, { volumes = { { tag = "data", host_path = data } } })
    assert.equal(0, p:container("w"):wait(60))
    assert.equal("root\n", support.read_file(rootfs .. "/out"))
    assert.equal("volume\n", support.read_file(data .. "/out"))
    -- an exec's too, while its container runs on
    assert.equal(0, (p:container("s"):exec { "/bin/sh", "-c", "echo exec >> /data/out" }))
    assert.equal("volume\nexec\n", support.read_file(data .. "/out"))
  end)

  it("runs a container from the folder of a removed one, the folder's name in mountinfo",
     function()
    -- the pod's first container has another folder: the removed one was
    -- the first to reach rootfs, and the guest must not keep its tree
    local p = run("again", { { id = "keep", rootfs = ROOTFS, argv = { "/bin/sleep", "600" } } })
    local data = root .. "/data"
    assert(os.execute("mkdir -p " .. data))
    for i = 1, 3 do
      local c = assert(p:add_container(ctr("c" .. i, { "/bin/sh", "-c",
        "grep ' /data ' /proc/self/mountinfo | cut -d' ' -f4" },
        { mounts = { { host_path = data, path = "/data" } } })))
      assert(c:start())
      assert.equal(0, c:wait(60))
      -- the mount's root is the shared folder's own name
      assert.matches("/data\n$", (c:logs()))
      assert(c:delete())
    end
  end)

  it("sees QEMU killed behind its back as stopped, and deletes the pod", function()
    local p = run("killed", { ctr("c", { "/bin/sleep", "600" }) })
    local pid = qemu_pid(root, "killed")
    assert(os.execute("kill -9 " .. pid))
    for _ = 1, 100 do
      if gone(pid) then break end
      os.execute("sleep 0.05")
    end
    assert.equal("stopped", p:state())
    assert.is_true(p:delete())
    assert.equal("", support.traces(root))
  end)

  it("refuses a bad kernel path with a clear error and leaves nothing", function()
    local p, err = vc.pod.run { id = "bad", vm = { kernel = root .. "/no-such-kernel" } }
    assert.is_nil(p)
    assert.matches("kernel " .. root .. "/no-such-kernel: No such file", err, 1, true)
    assert.same({}, vc.pod.list())
    assert.equal("", support.traces(root))
  end)

  it("gives up on a guest that never answers, quoting its console", function()
    local p, err = vc.pod.run {
      id = "mute",
      vm = { memory_mib = 128, boot_timeout = 6, kernel_params = "vc.port=nowhere" },
    }
    assert.is_nil(p)
    assert.matches("pod mute: agent", err, 1, true)
    assert.matches("the end of its console", err, 1, true)
    assert.same({}, vc.pod.list())
    assert.equal("", support.traces(root))
  end)

  describe("templates", function()
    local tdir

    before_each(function()
      tdir = root .. "/templates"
      vc.setup { templates = tdir }
    end)
    after_each(function() vc.setup { templates = false } end)

    local function files()
      local p = assert(io.popen("ls " .. support.quote(tdir) .. " 2>/dev/null"))
      local out = {}
      for name in p:lines() do out[#out + 1] = name end
      p:close()
      return out
    end

    local function templates()
      local out = {}
      for _, name in ipairs(files()) do
        if name:match("%.vm$") then out[#out + 1] = name end
      end
      return out
    end

    local function cmdline(pid)
      return (support.read_file("/proc/" .. pid .. "/cmdline") or ""):gsub("%z", " ")
    end

    it("makes one for the first pod and starts the next from it, fresh", function()
      -- what a guest from a template must not share: its clock and randomness
      local probe = { "/bin/sh", "-c",
        "date +%s; head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\n'" }
      local p1 = run("t1", { ctr("c", probe) })
      assert.equal(1, #templates())
      -- the template's clock then falls behind the host's
      os.execute("sleep 3")
      local before = os.time()
      local p2 = run("t2", { ctr("c", probe) })
      assert.equal(1, #templates())
      -- loaded from the template, its devices on a descriptor QEMU's sandbox
      -- lets it read, its RAM mapped private from the template's
      local cmd = cmdline(qemu_pid(root, "t2"))
      assert.matches(" -incoming defer ", cmd, 1, true)
      assert.matches("memory-backend-file,id=vc-ram,size=128M,mem-path=/proc/self/fd/4,share=off",
                     cmd, 1, true)
      -- under TCG, a smaller code cache than a boot's
      if cmd:match(" %-accel tcg") then
        assert.matches(" -accel tcg,tb-size=16 ", cmd, 1, true)
        assert.matches(" -accel tcg,tb-size=16 ", cmdline(qemu_pid(root, "t1")), 1, true)
      end
      assert.equal("600\n600\n", support.sh("stat -c %a " .. tdir .. "/*.ram " .. tdir
                                             .. "/*.vm").stdout)
      assert.equal(0, p1:container("c"):wait(60))
      assert.equal(0, p2:container("c"):wait(60))
      local out1 = assert(p1:container("c"):logs())
      local out2 = assert(p2:container("c"):logs())
      local t1, r1 = out1:match("^(%d+)\n(%x+)")
      local t2, r2 = out2:match("^(%d+)\n(%x+)")
      -- the host's time, not the template's (3 s behind by now)
      assert.is_true(tonumber(t2) >= before - 1 and tonumber(t2) <= os.time() + 1,
                     "guest clock " .. t2 .. ", host's " .. before .. "-" .. os.time())
      assert.is_true(math.abs(tonumber(t1) - os.time()) < 60, "guest clock " .. t1)
      assert.are_not.equal(r1, r2)
      -- only the template (devices, RAM) and its lock: nothing of the making
      assert.equal(3, #files())
      assert.equal("", support.sh("pgrep -af -- " .. support.quote(tdir .. "/.*[.]make/")).stdout)
    end)

    it("makes another for another VM shape, and none when the pod says so", function()
      run("a", { ctr("c", { "/bin/true" }) })
      run("b", { ctr("c", { "/bin/true" }) }, { vm = { memory_mib = 160 } })
      assert.equal(2, #templates())
      local p = run("c", { ctr("c", { "/bin/true" }) },
                    { vm = { memory_mib = 192, template = false, tcg_cache_mib = 24 } })
      assert.equal(2, #templates())
      local cmd = cmdline(qemu_pid(root, "c"))
      assert.not_matches("-incoming", cmd, 1, true)
      if cmd:match(" %-accel tcg") then assert.matches(" -accel tcg,tb-size=24 ", cmd, 1, true) end
      assert.equal(0, p:container("c"):wait(60))
    end)

    it("leaves no VM behind when the vc making a template is killed", function()
      local cfg = root .. "/pod.lua"
      support.write_file(cfg, string.format([[
        return { vm = { memory_mib = 128 }, containers = {
          { id = "c", rootfs = %q, argv = { "/bin/true" } } } }
      ]], rootfs))
      local function vc_run(id, limit)
        return support.sh(string.format(
          "VC_TEMPLATES=%s timeout -s KILL %s %s --root %s pod run --config %s --id %s",
          support.quote(tdir), limit, support.quote(support.bin), support.quote(root),
          support.quote(cfg), id))
      end
      -- killed while its template VM boots (a boot takes over a second)
      local r = vc_run("k1", "0.8")
      assert.equal(137, r.code, r.stderr)
      assert.same({}, templates())
      local left = ""
      for _ = 1, 20 do
        left = support.sh("pgrep -af -- " .. support.quote(tdir .. "[/]")).stdout
        if left == "" then break end
        os.execute("sleep 0.1")
      end
      assert.equal("", left)
      -- the next one makes it anew
      r = vc_run("k2", "120")
      assert.equal(0, r.code, r.stderr)
      assert.equal(1, #templates())
      assert.equal(3, #files())
      vc.pod.fetch("k1"):delete { force = true }
    end)

    -- The memfd that holds a QEMU's guest RAM: "INODE NAME" of its link.
    local function ram_of(pod)
      local pid = qemu_pid(root, pod)
      local r = support.sh("for f in /proc/" .. pid .. "/fd/*; do l=$(readlink $f);"
                           .. " case $l in /memfd:vc-ram:*) echo $(stat -L -c %i $f) $l;;"
                           .. " esac; done")
      return r.stdout:match("^[^\n]*\n") -- (QEMU holds it twice: given, then opened)
    end

    local function works(p)
      -- (the guest touches memory it has not used yet)
      local code, out = p:container("c"):exec { "/bin/sh", "-c",
        "head -c 40000000 /dev/zero | wc -c" }
      assert.equal(0, code)
      assert.equal("40000000\n", out)
    end

    it("maps one copy of the template's RAM into every pod of it", function()
      local p1 = run("s1", { ctr("c", { "/bin/sleep", "600" }) })
      local p2 = run("s2", { ctr("c", { "/bin/sleep", "600" }) })
      local r1, r2 = ram_of("s1"), ram_of("s2")
      assert.matches("^%d+ /memfd:vc%-ram:%x+%.ram:%x+%.%x+%.%x+ %(deleted%)\n$", r2)
      assert.equal(r1, r2)
      works(p1)
      works(p2)
    end)

    it("maps one copy into pods that start at the same time", function()
      run("t0", { ctr("c", { "/bin/true" }) }):delete { force = true }
      assert.equal(1, #templates())
      local cfg = root .. "/pod.lua"
      support.write_file(cfg, string.format([[
        return { vm = { memory_mib = 128 }, containers = {
          { id = "c", rootfs = %q, argv = { "/bin/sleep", "600" } } } }
      ]], rootfs))
      local cmd = {}
      for i = 1, 3 do
        cmd[i] = string.format("VC_TEMPLATES=%s %s --root %s pod run --config %s --id t%d"
                               .. " >/dev/null 2>%s/t%d.err &", support.quote(tdir),
                               support.quote(support.bin), support.quote(root),
                               support.quote(cfg), i, support.quote(root), i)
      end
      local r = support.sh(table.concat(cmd, " ") .. " wait")
      assert.equal(0, r.code, r.stderr)
      for i = 1, 3 do
        assert.equal("running", vc.pod.fetch("t" .. i):state(),
                     support.read_file(root .. "/t" .. i .. ".err"))
      end
      local r1 = ram_of("t1")
      assert.matches("^%d+ /memfd:vc%-ram:", r1)
      assert.equal(r1, ram_of("t2"))
      assert.equal(r1, ram_of("t3"))
    end)

    it("never maps a template made anew with the RAM of the one before", function()
      local p1 = run("n1", { ctr("c", { "/bin/sleep", "600" }) })
      local old = ram_of("n1")
      local name = assert(templates()[1])
      support.write_file(tdir .. "/" .. name, "not a VM")
      -- n2 finds the template broken, boots and discards it; n3 makes it anew
      local p2 = run("n2", { ctr("c", { "/bin/sleep", "600" }) })
      assert.same({}, templates())
      local p3 = run("n3", { ctr("c", { "/bin/sleep", "600" }) })
      assert.equal(1, #templates())
      assert.matches(" -incoming defer ", cmdline(qemu_pid(root, "n3")), 1, true)
      assert.matches("^%d+ /memfd:vc%-ram:", ram_of("n3"))
      assert.are_not.equal(old, ram_of("n3"))
      works(p1)
      works(p2)
      works(p3)
    end)

    it("keeps pods running when the template's files are truncated or removed", function()
      local p1 = run("f1", { ctr("c", { "/bin/sleep", "600" }) })
      local ram = assert(support.sh("ls " .. tdir .. "/*.ram").stdout:match("%S+"))
      local vm = ram:gsub("%.ram$", ".vm")
      assert(os.execute("truncate -s 0 " .. support.quote(ram)))
      works(p1)
      -- a pod started now shares the running one's copy
      local p2 = run("f2", { ctr("c", { "/bin/sleep", "600" }) })
      assert.matches(" -incoming defer ", cmdline(qemu_pid(root, "f2")), 1, true)
      assert.equal(ram_of("f1"), ram_of("f2"))
      assert(os.remove(ram))
      assert(os.remove(vm))
      works(p1)
      works(p2)
      assert.is_true(p1:stop())
      assert.is_true(p1:delete())
      assert.is_true(p2:delete { force = true })
      assert.equal("", support.traces(root))
    end)

    it("boots, and makes the template anew, when its RAM file is cut short", function()
      run("g1", { ctr("c", { "/bin/true" }) }):delete { force = true }
      local ram = assert(support.sh("ls " .. tdir .. "/*.ram").stdout:match("%S+"))
      assert(os.execute("truncate -s 1M " .. support.quote(ram)))
      local p = run("g2", { ctr("c", { "/bin/sleep", "600" }) })
      assert.not_matches("-incoming", cmdline(qemu_pid(root, "g2")), 1, true)
      assert.same({}, templates())
      works(p)
      run("g3", { ctr("c", { "/bin/true" }) })
      assert.equal(1, #templates())
      assert.matches(" -incoming defer ", cmdline(qemu_pid(root, "g3")), 1, true)
    end)

    it("serves volumes under their own tags from a template made with others", function()
      local function volume_pod(id, tag)
        local data = root .. "/" .. tag
        assert(os.execute("mkdir -p " .. data .. " && echo " .. tag .. " > " .. data .. "/f"))
        return run(id, { ctr("c", { "/bin/cat", "/v/f" },
                             { mounts = { { volume = tag, path = "/v", read_only = true } } }) },
                   { volumes = { { tag = tag, host_path = data, read_only = true } } })
      end
      local p1 = volume_pod("v1", "one")
      local p2 = volume_pod("v2", "two")
      assert.equal(1, #templates())
      assert.equal(0, p1:container("c"):wait(60))
      assert.equal(0, p2:container("c"):wait(60))
      assert.equal("one\n", (p1:container("c"):logs()))
      assert.equal("two\n", (p2:container("c"):logs()))
    end)

    it("boots when its templates folder cannot be made", function()
      support.write_file(root .. "/file", "")
      vc.setup { templates = root .. "/file/templates" }
      local p = run("nofolder", { ctr("c", { "/bin/echo", "booted" }) })
      assert.equal(0, p:container("c"):wait(60))
      assert.equal("booted\n", (p:container("c"):logs()))
      local cmd = cmdline(qemu_pid(root, "nofolder"))
      assert.not_matches("-incoming", cmd, 1, true)
      if cmd:match(" %-accel tcg") then assert.matches(" -accel tcg,tb-size=64 ", cmd, 1, true) end
    end)

    it("discards a template that does not start a VM, and boots", function()
      run("a", { ctr("c", { "/bin/true" }) })
      local name = assert(templates()[1])
      support.write_file(tdir .. "/" .. name, "not a VM")
      local p = run("b", { ctr("c", { "/bin/echo", "booted" }) })
      assert.equal(0, p:container("c"):wait(60))
      assert.equal("booted\n", (p:container("c"):logs()))
      assert.same({}, templates())
      assert.not_matches("-incoming", cmdline(qemu_pid(root, "b")), 1, true)
    end)
  end)
end)
