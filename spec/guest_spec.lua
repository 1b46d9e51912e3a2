-- The guest image (make guest: build/guest/vmlinux and initrd) booted raw
-- under QEMU (TCG, microvm), as the VM backends will boot it: its /init
-- mounts the 9p share and becomes vc-agent on the virtio-serial port
-- "agent.0"; a container runs from the share; "shutdown" powers it off.
local support = require "support"
local agentlib = require "vc.core.agent"

local q = support.quote
local GUEST = support.project .. "/build/guest"
local VMLINUX, INITRD = GUEST .. "/vmlinux", GUEST .. "/initrd"
local ROOTFS = support.project .. "/build/rootfs"

local function exists(path)
  return os.execute("test -e " .. q(path)) == true
end

if not (exists(VMLINUX) and exists(INITRD)) then
  describe("the guest image", function()
    pending("build/guest is missing: make guest (it downloads Debian's kernel)")
  end)
  return
end

local function now()
  local p = assert(io.popen("date +%s.%N"))
  local t = tonumber(p:read("l"))
  p:close()
  return t
end

-- fn() until it returns a true value, for at most timeout seconds.
local function eventually(fn, timeout)
  local deadline = now() + timeout
  repeat
    local v = fn()
    if v then return v end
    os.execute("sleep 0.05")
  until now() > deadline
  return fn()
end

-- The host's TSC in kHz: without tsc_early_khz, microvm guests sometimes
-- hang calibrating the TSC against the PIT.
local function tsc_khz()
  for line in io.lines("/proc/cpuinfo") do
    local mhz = line:match("^cpu MHz%s*:%s*([%d.]+)")
    if mhz then return math.floor(tonumber(mhz) * 1000) end
  end
end

local function qemu_command(dir, with_port)
  local append = "console=ttyS0 quiet panic=-1 cryptomgr.notests"
  local khz = tsc_khz()
  if khz then append = append .. " tsc_early_khz=" .. khz end
  local args = {
    "qemu-system-x86_64", "-accel", "tcg", "-m", "128",
    "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
    "-machine", "microvm", "-kernel", VMLINUX, "-initrd", INITRD,
    "-append", append,
    "-serial", "file:" .. dir .. "/console.log",
    "-pidfile", dir .. "/qemu.pid",
    "-device", "virtio-serial-device",
    "-fsdev", "local,id=shared,path=" .. dir .. "/shared,security_model=none",
    "-device", "virtio-9p-device,fsdev=shared,mount_tag=vcshared",
  }
  if with_port then
    for _, a in ipairs({
      "-chardev", "socket,path=" .. dir .. "/agent.sock,server=on,wait=off,id=agent",
      "-device", "virtserialport,chardev=agent,name=agent.0" }) do
      args[#args + 1] = a
    end
  end
  for i, a in ipairs(args) do args[i] = q(a) end
  return table.concat(args, " ")
end

describe("the guest image", function()
  local dir, pid

  local function alive()
    return pid ~= nil and exists("/proc/" .. pid)
  end

  -- Start QEMU in the background; its exit status goes to DIR/qemu.rc.
  local function boot(with_port)
    assert(os.execute(string.format(
      "(%s </dev/null >%s 2>&1; echo $? >%s) &", qemu_command(dir, with_port),
      q(dir .. "/qemu.out"), q(dir .. "/qemu.rc"))))
    pid = eventually(function()
      local s = support.read_file(dir .. "/qemu.pid")
      return s and s:match("%d+")
    end, 10)
    assert(pid, "QEMU did not start: " .. (support.read_file(dir .. "/qemu.out") or ""))
  end

  -- QEMU's exit status once it has exited by itself.
  local function exit_status(timeout)
    local rc = eventually(function()
      return (support.read_file(dir .. "/qemu.rc") or ""):match("%d+")
    end, timeout)
    return tonumber(rc)
  end

  local function console()
    return support.read_file(dir .. "/console.log") or ""
  end

  before_each(function()
    assert(exists(ROOTFS .. "/bin/busybox"), "build/rootfs is missing: make rootfs")
    dir = support.tmpdir()
    pid = nil
    assert(os.execute("mkdir " .. q(dir .. "/shared") .. " && cp -a " .. q(ROOTFS) ..
                      " " .. q(dir .. "/shared/rootfs")))
  end)

  after_each(function()
    if alive() then os.execute("kill -KILL " .. pid) end
    local gone = eventually(function() return not alive() end, 5)
    -- No QEMU of this test is left, whatever its pid file said.
    local left = support.sh("pgrep -f " .. q("[q]emu-system.*" .. dir)).stdout
    support.rmtree(dir)
    assert.is_true(gone, "QEMU is still running")
    assert.equal("", left)
  end)

  it("boots to the agent, runs a container from the 9p share, powers off", function()
    boot(true)
    local a = assert(agentlib.open("unix:" .. dir .. "/agent.sock", { annotations = {} }))
    assert(a:connect(30))
    assert(a:ping())
    -- a create_pod with a malformed clock is refused, and creates nothing
    a:close()
    local r = support.sh(string.format("python3 %s %s badtime",
      q(support.project .. "/spec/fixtures/agent_raw.py"), q(dir .. "/agent.sock")))
    assert.equal(0, r.code, r.stderr)
    local bad = require("cjson").decode(r.stdout)
    assert.is_false(bad.ok)
    assert.matches("time_sec, time_nsec: expected seconds", bad.error, 1, true)
    a = assert(agentlib.open("unix:" .. dir .. "/agent.sock", { annotations = {} }))
    assert(a:connect(30))
    -- (share = "9p": the agent mounts the pod's share, tag vcshared)
    assert(a:create_pod({ pod_id = "p", run_dir = dir, volumes = {}, share = "9p" }))
    assert(a:create_container({ id = "c", rootfs = "/run/vc/shared/rootfs",
                                argv = { "/bin/echo", "hi" }, env = {}, cwd = "/",
                                mounts = {}, resources = {},
                                security = require("vc.security").effective({}) }))
    assert(a:start_container("c"))
    assert.equal(0, a:wait("c", 20))
    assert.equal("hi\n", (a:read_output("c")))
    -- Writes reach the host through 9p (cache=loose: at the latest when
    -- the agent syncs before powering off); the cgroup v1 limits apply.
    assert(a:create_container({ id = "w", rootfs = "/run/vc/shared/rootfs",
                                argv = { "/bin/sh", "-c", "echo from-guest >/from-guest" },
                                env = {}, cwd = "/", mounts = {},
                                resources = { memory_mib = 64, pids = 32, cpu_quota_pct = 50 },
                                security = require("vc.security").effective({}) }))
    assert(a:start_container("w"))
    assert.equal(0, a:wait("w", 20))
    assert.equal(64 * 1024 * 1024, a:stats("w").memory_limit_bytes)
    assert(a:shutdown())
    a:close()
    -- The agent is PID 1: it powers the guest off, and QEMU exits.
    assert.equal(0, exit_status(15), "QEMU did not exit after shutdown")
    assert.equal("from-guest\n", support.read_file(dir .. "/shared/rootfs/from-guest"))
    local log = console()
    assert.matches("vc%-agent: serving on port agent%.0", log)
    assert.matches("reboot: Power down", log)
    assert.not_matches("vc%-guest:", log)
    assert.not_matches("Kernel panic", log)
  end)

  it("says why on the console and powers off when it has no agent port", function()
    boot(false)
    assert.equal(0, exit_status(30), "QEMU did not exit")
    local log = console()
    assert.matches("vc%-guest: no virtio%-serial port agent%.0 after 5 s: powering off", log)
    assert.matches("reboot: Power down", log)
  end)
end)
