-- Interactive containers on both backends, through the CLI as a user
-- types it: stdin forwarded (-i), terminals (-it) driven through a real
-- pseudo-terminal (spec/fixtures/pty_session.py), attach and detach,
-- logs that follow, with --tail and --timestamps.
local cjson = require "cjson"
local support = require "support"
local vc = require "vc"

local ROOTFS = support.project .. "/build/rootfs"
local GUEST = support.project .. "/build/guest/vmlinux"
local PTY = support.project .. "/spec/fixtures/pty_session.py"
local q = support.quote

local BACKENDS = { "namespace" }
if support.read_file(GUEST) then BACKENDS[#BACKENDS + 1] = "qemu" end

for _, backend in ipairs(BACKENDS) do
  describe("interactive containers on " .. backend, function()
    local root, rootfs, tmp

    before_each(function()
      root = support.tmpdir()
      tmp = support.tmpdir()
      rootfs = root .. "/rootfs"
      assert(os.execute("cp -a " .. q(ROOTFS) .. " " .. q(rootfs)))
      vc.setup { root = root, lock_timeout = 30 }
      assert(vc.pod.run { id = "p", hypervisor = backend, vm = { memory_mib = 128 },
                          containers = { { id = "c", rootfs = rootfs,
                                           argv = { "/bin/sleep", "600" } } } })
    end)

    after_each(function()
      for _, p in ipairs(vc.pod.list()) do p:delete { force = true } end
      support.rmtree(root)
      support.rmtree(tmp)
    end)

    local function vcmd(args)
      local parts = { q(support.bin), "--root", q(root) }
      for _, a in ipairs(args) do parts[#parts + 1] = q(a) end
      return table.concat(parts, " ")
    end

    -- Steps through a terminal of its own (see the fixture).
    local function session(steps, args)
      local file = tmp .. "/steps.json"
      support.write_file(file, cjson.encode(steps))
      return support.sh("python3 " .. q(PTY) .. " " .. q(file) .. " " .. vcmd(args))
    end

    it("forwards stdin with -i: 1 MiB of random bytes through cat, byte-exact", function()
      local r = support.sh("head -c 1048576 /dev/urandom > " .. q(tmp .. "/in") .. " && " ..
                           vcmd { "container", "exec", "-i", "p", "c", "--", "/bin/cat" } ..
                           " < " .. q(tmp .. "/in") .. " | sha256sum && sha256sum < " ..
                           q(tmp .. "/in"))
      assert.equal(0, r.code, r.stderr)
      local a, b = r.stdout:match("^(%x+)  %-\n(%x+)  %-\n$")
      assert.is_not_nil(a, r.stdout)
      assert.equal(b, a)
    end)

    it("gives /dev/null as stdin without -i, and a string or vc's stdin from Lua", function()
      local r = support.sh(vcmd { "container", "exec", "p", "c", "--", "/bin/cat" }, "ignored\n")
      assert.equal(0, r.code, r.stderr)
      assert.equal("", r.stdout)
      local c = assert(vc.pod.fetch("p")):container("c")
      local code, out = c:exec { "/bin/sh", "-c", "wc -c; echo done", stdin = "12345" }
      assert.equal(0, code)
      assert.equal("5\ndone\n", out)
      assert.has_error(function() c:exec { "/bin/cat", stdin = 5 } end)
    end)

    it("runs a shell with -it: a terminal, its size, Ctrl-C, and vc's terminal back", function()
      local r = session({
        { expect = "# $" }, { mode = "raw" },
        { send = "tty; echo $((6*7))\r" }, { expect = "/dev/pts/\\d+\n42" },
        { resize = { 40, 100 } }, { send = "stty size\r" }, { expect = "40 100" },
        -- (a Ctrl-C typed before the shell has handed the terminal to its
        -- job would reach the shell, not the sleep: wait for the job)
        { send = "sh -c 'echo started; exec sleep 100'\r" }, { expect = "\nstarted" },
        { send = "\3" }, { expect = "\\^C\n/ # $" },
        { send = "echo alive $?\r" }, { expect = "alive 130" },
        { send = "ps -o pid,tty,comm | grep sh$\r" }, { expect = "136,\\d+\\s+sh" },
        { send = "exit 7\r" }, { exit = 7 }, { mode = "cooked" },
      }, { "container", "exec", "-it", "p", "c", "--", "/bin/sh" })
      assert.equal(0, r.code, r.stderr .. r.stdout)
    end)

    it("restores the terminal when vc is killed, and hangs up the shell", function()
      local r = session({
        { expect = "# $" }, { mode = "raw" }, { send = "sleep 300\r" }, { expect = "sleep 300" },
        { signal = "TERM" }, { exit = 143 }, { mode = "cooked" },
      }, { "container", "exec", "-it", "p", "c", "--", "/bin/sh" })
      assert.equal(0, r.code, r.stderr .. r.stdout)
      local c = assert(vc.pod.fetch("p")):container("c")
      local left
      for _ = 1, 100 do
        left = assert(c:processes())
        if #left == 1 then break end
        os.execute("sleep 0.05")
      end
      assert.equal(1, #left, cjson.encode(left))
    end)

    it("refuses -t without a terminal, with a clear error", function()
      local r = support.sh(vcmd { "container", "exec", "-it", "p", "c", "--", "/bin/sh" })
      assert.equal(1, r.code)
      assert.matches("%-it: the input is not a terminal", r.stderr)
    end)

    it("attaches to a terminal container, detaches with Ctrl-P Ctrl-Q, attaches again", function()
      local r = support.sh(vcmd { "container", "create", "p", "--id", "t", "-it",
                                  "--rootfs", rootfs, "--", "/bin/sh" } .. " && " ..
                           vcmd { "container", "start", "p", "t" })
      assert.equal(0, r.code, r.stderr)
      r = session({ { send = "echo first $((40+2))\r" }, { expect = "first 42" },
                    { send = "\16\17" }, { exit = 0 }, { mode = "cooked" } },
                  { "container", "attach", "p", "t" })
      assert.equal(0, r.code, r.stderr .. r.stdout)
      assert.matches("detached from t", r.stdout)
      -- it ran on, and what it wrote meanwhile is in its log
      r = support.sh(vcmd { "container", "exec", "p", "t", "--", "/bin/sh", "-c",
                            "echo unseen > /proc/1/fd/1" })
      assert.equal(0, r.code, r.stderr)
      r = session({ { send = "echo second\r" }, { expect = "second\n" },
                    { send = "exit 4\r" }, { exit = 4 } },
                  { "container", "attach", "p", "t" })
      assert.equal(0, r.code, r.stderr .. r.stdout)
      local logs = support.sh(vcmd { "container", "logs", "p", "t" }).stdout
      assert.matches("first 42.*unseen.*second", logs)
    end)

    it("follows logs until the container exits, with --tail and --timestamps", function()
      local p = assert(vc.pod.fetch("p"))
      assert(p:add_container { id = "f", rootfs = rootfs, argv = { "/bin/sh", "-c",
        "echo one; echo two >&2; while [ ! -e /go ]; do sleep 0.1; done; echo three; exit 3" } })
      assert(p:container("f"):start())
      local out = tmp .. "/follow"
      local cmd = vcmd { "container", "logs", "-f", "--timestamps", "p", "f" }
      assert(os.execute(cmd .. " > " .. q(out) .. " 2>&1 & echo $! > " .. q(tmp .. "/pid")))
      local r
      for _ = 1, 200 do
        r = support.read_file(out) or ""
        if r:find("two") then break end
        os.execute("sleep 0.05")
      end
      assert(os.execute("touch " .. q(rootfs .. "/go")))
      assert.equal(3, p:container("f"):wait(60))
      local pid = support.read_file(tmp .. "/pid"):match("%d+")
      for _ = 1, 200 do
        if not support.read_file("/proc/" .. pid .. "/stat") then break end
        os.execute("sleep 0.05")
      end
      r = support.read_file(out)
      local stamp = "%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ "
      assert.matches("^" .. stamp .. "one\n", r)
      assert.matches(stamp .. "two\n", r)
      assert.matches(stamp .. "three\n$", r)
      r = support.sh(vcmd { "container", "logs", "--tail", "2", "p", "f" })
      assert.equal("three\n", r.stdout)
      assert.equal("two\n", r.stderr)
      r = support.sh(vcmd { "container", "logs", "--tail", "x", "p", "f" })
      assert.equal(2, r.code)
      assert.matches("%-%-tail: expected a number", r.stderr)
    end)

    it("keeps two concurrent exec sessions apart", function()
      local cmds = {}
      for n = 1, 2 do
        cmds[n] = vcmd { "container", "exec", "-i", "p", "c", "--", "/bin/sh", "-c",
                         "while read l; do echo " .. n .. ":$l; done" } ..
                  " < " .. q(tmp .. "/in" .. n) .. " > " .. q(tmp .. "/out" .. n)
        local lines = {}
        for i = 1, 200 do lines[i] = "line" .. i end
        support.write_file(tmp .. "/in" .. n, table.concat(lines, "\n") .. "\n")
      end
      local r = support.sh("(" .. cmds[1] .. ") & (" .. cmds[2] .. ") & wait")
      assert.equal(0, r.code, r.stderr)
      for n = 1, 2 do
        local out = support.read_file(tmp .. "/out" .. n)
        local count = 0
        for line in out:gmatch("[^\n]+") do
          assert.matches("^" .. n .. ":line%d+$", line)
          count = count + 1
        end
        assert.equal(200, count)
      end
    end)
  end)
end
