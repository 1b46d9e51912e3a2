-- Containers that cannot reach the kernel they share: the host's on the
-- namespace backend, the pod's VM's on qemu. From inside a container,
-- spec/fixtures/escape.c tries the ways out (sysctls, sysrq, kcore, block
-- devices, mount, namespaces, modules, kexec, bpf); busybox still works;
-- privileged containers are refused or admitted by the default policy;
-- malformed security configs are refused before anything is stored. crun,
-- with the same rootfs and the same default capabilities, is the reference.
local support = require "support"
local vc = require "vc"
local security = require "vc.security"

local ROOTFS = support.project .. "/build/rootfs"
local GUEST = support.project .. "/build/guest/vmlinux"
local q = support.quote

-- The escape probe, built once for every test (static: the rootfs is busybox).
local PROBE
local function probe()
  if not PROBE then
    PROBE = os.tmpname()
    local r = support.sh("cc -static -O1 -o " .. q(PROBE) .. " " ..
                         q(support.project .. "/spec/fixtures/escape.c"))
    assert(r.code == 0, "cannot build the escape probe: " .. r.stderr)
  end
  return PROBE
end

local function parse(out)
  local t = {}
  for name, result in out:gmatch("(%S+) ([^\n]+)\n") do t[name] = result end
  return t
end

local function status_field(status, name)
  return status:match("\n" .. name .. ":%s*(%S+)")
end

-- What a capability set has of those that rule the kernel.
local FORBIDDEN = { "CAP_SYS_ADMIN", "CAP_SYS_MODULE", "CAP_SYS_PTRACE", "CAP_SYS_RAWIO",
                    "CAP_SYS_BOOT", "CAP_SYS_TIME", "CAP_NET_ADMIN" }

local DEFAULT_MASK = 0
for _, name in ipairs(security.DEFAULT_CAPABILITIES) do
  DEFAULT_MASK = DEFAULT_MASK | (1 << (assert(security.capability_number(name))))
end

local BACKENDS = { "namespace" }
if support.read_file(GUEST) then BACKENDS[#BACKENDS + 1] = "qemu" end

for _, backend in ipairs(BACKENDS) do
  describe("a container on " .. backend, function()
    local root, rootfs

    before_each(function()
      root = support.tmpdir()
      rootfs = root .. "/rootfs"
      assert(os.execute("cp -a " .. q(ROOTFS) .. " " .. q(rootfs)))
      assert(os.execute("cp " .. q(probe()) .. " " .. q(rootfs .. "/escape")))
      vc.setup { root = root, lock_timeout = 30 }
    end)

    after_each(function()
      for _, p in ipairs(vc.pod.list()) do p:delete { force = true } end
      support.rmtree(root)
    end)

    local function run(id, extra, pod_extra)
      local c = { id = "c", rootfs = rootfs, argv = { "/bin/sleep", "600" } }
      for k, v in pairs(extra or {}) do c[k] = v end
      local cfg = { id = id, hypervisor = backend, containers = { c },
                    vm = { memory_mib = 128 } }
      for k, v in pairs(pod_extra or {}) do cfg[k] = v end
      return vc.pod.run(cfg)
    end

    it("cannot reach the kernel: sysctls, sysrq, kcore, devices, mount, modules", function()
      local p = assert(run("esc"))
      local c = p:container("c")
      local code, out = c:exec { "/escape" }
      assert.equal(0, code, out)
      local r = parse(out)
      -- writing back what a sysctl holds: /proc/sys is read-only, and so is
      -- sysrq-trigger (where the kernel has them: this host's lacks some;
      -- the guest's has all)
      local function read_only(path)
        local there = backend == "qemu" or support.sh("test -e " .. path).code == 0
        return there and "EROFS" or "ENOENT"
      end
      assert.equal(read_only("/proc/sys/kernel/core_pattern"), r.core_pattern)
      assert.equal(read_only("/proc/sys/kernel/modprobe"), r.modprobe)
      assert.equal(read_only("/proc/sys/vm/overcommit_memory"), r.overcommit_memory)
      assert.equal(read_only("/proc/sysrq-trigger"), r.sysrq_trigger)
      -- masked where the kernel has one, absent where not: nothing read
      assert.is_truthy(r.kcore_read == "0 bytes" or r.kcore_read == "ENOENT", r.kcore_read)
      -- CAP_MKNOD makes the node; the devices cgroup keeps it shut
      assert.equal("ok", r.mknod_block)
      assert.equal("EPERM", r.open_block)
      for _, what in ipairs { "mount", "unshare_user_mount", "kexec_load", "init_module", "bpf" } do
        assert.equal("EPERM", r[what], what)
      end
      local _, status = c:exec { "/bin/cat", "/proc/self/status" }
      assert.equal("2", status_field(status, "Seccomp"))
      assert.equal("1", status_field(status, "NoNewPrivs"))
      local eff = tonumber(status_field(status, "CapEff"), 16)
      assert.equal(DEFAULT_MASK, eff)
      assert.equal(DEFAULT_MASK, tonumber(status_field(status, "CapBnd"), 16))
      assert.equal(0, tonumber(status_field(status, "CapAmb"), 16))
      for _, name in ipairs(FORBIDDEN) do
        assert.equal(0, eff & (1 << security.capability_number(name)), name)
      end
      -- only the default device nodes
      local _, dev = c:exec { "/bin/ls", "/dev" }
      local nodes = {}
      for n in dev:gmatch("%S+") do nodes[#nodes + 1] = n end
      table.sort(nodes)
      for _, n in ipairs(nodes) do
        assert.is_truthy(({ console = true, core = true, fd = true, full = true, mqueue = true,
                            null = true, ptmx = true, pts = true, random = true, shm = true,
                            stderr = true, stdin = true, stdout = true, tty = true,
                            urandom = true, zero = true })[n], "/dev/" .. n)
      end
      -- and status says so
      local s = assert(c:status())
      assert.equal("filter", s.security.seccomp)
      assert.is_true(s.security.no_new_privileges)
      local names = {}
      for _, n in ipairs(security.DEFAULT_CAPABILITIES) do names[#names + 1] = n end
      table.sort(names)
      assert.same(names, s.security.capabilities)
      local cli = support.vc(root, { "container", "status", "esc", "c" })
      assert.equal(0, cli.code, cli.stderr)
      assert.matches("capabilities: " .. table.concat(names, " ") .. "\n", cli.stdout, 1, true)
      assert.matches("seccomp: filter\nno_new_privileges: true\n", cli.stdout, 1, true)
    end)

    it("keeps the pod's agent sockets (and their locks) root's only", function()
      assert(run("modes"))
      -- (namespace: agent.sock; qemu: agent.K.sock and agent.K.lock)
      local r = support.sh("cd " .. q(root .. "/run/pods/modes") ..
                           " && stat -c '%n %a' agent.sock agent.*.sock agent.*.lock 2>/dev/null")
      local seen = 0
      for name, mode in r.stdout:gmatch("(%S+) (%d+)") do
        seen = seen + 1
        assert.equal(0, tonumber(mode, 8) & tonumber("077", 8), name .. " has mode " .. mode)
      end
      assert.is_true(seen >= 1, r.stdout .. r.stderr)
    end)

    it("still runs busybox: ls, sh, a web server and wget on loopback, ping as root", function()
      local p = assert(run("bb"))
      local c = p:container("c")
      local code, out = c:exec { "/bin/sh", "-c",
        "ls / >/dev/null && mkdir -p /tmp/www && echo served >/tmp/www/index.html &&" ..
        " httpd -p 127.0.0.1:8080 -h /tmp/www && wget -q -O - http://127.0.0.1:8080/" }
      assert.equal(0, code, out)
      assert.equal("served\n", out)
      code, out = c:exec { "/bin/ping", "-c", "1", "-W", "5", "127.0.0.1" }
      assert.equal(0, code, out)
      assert.matches("1 packets received", out, 1, true)
    end)

    it("keeps what the config asks: dropped capabilities, read-only rootfs, rlimits", function()
      local p = assert(run("narrow", {
        security = { capabilities = { drop = { "NET_RAW", "CAP_CHOWN" } },
                     read_only_rootfs = true },
        rlimits = { nofile = { soft = 256, hard = 512 }, nproc = 100 },
      }))
      local c = p:container("c")
      local _, status = c:exec { "/bin/cat", "/proc/self/status" }
      local eff = tonumber(status_field(status, "CapEff"), 16)
      assert.equal(0, eff & (1 << security.capability_number("CAP_NET_RAW")))
      assert.equal(0, eff & (1 << security.capability_number("CAP_CHOWN")))
      assert.is_not.equal(0, eff & (1 << security.capability_number("CAP_KILL")))
      local code = c:exec { "/bin/sh", "-c", "echo x > /written" }
      assert.is_not.equal(0, code)
      local _, limits = c:exec { "/bin/sh", "-c", "ulimit -Sn; ulimit -Hn; ulimit -u" }
      assert.equal("256\n512\n100\n", limits)
      -- without NET_RAW, ping has no raw socket
      code = c:exec { "/bin/ping", "-c", "1", "-W", "2", "127.0.0.1" }
      assert.is_not.equal(0, code)
    end)

    it("gives the capability sets, groups, masked and read-only paths the config asks",
       function()
      assert(os.execute("mkdir -p " .. q(rootfs .. "/secret") .. " && echo s > "
                        .. q(rootfs .. "/secret/key") .. " && echo f > " .. q(rootfs .. "/frozen")
                        .. " && echo staff:x:50: >> " .. q(rootfs .. "/etc/group")))
      local sets = { "CAP_NET_BIND_SERVICE", "CAP_KILL" }
      local p = assert(run("sets", {
        user = "1000:1000", groups = { 5, "staff" },
        security = { capabilities = { effective = sets, permitted = sets, inheritable = sets,
                                      ambient = { "CAP_NET_BIND_SERVICE" } },
                     masked_paths = { "/secret" }, readonly_paths = { "/frozen" } },
      }, { hostname = "pod-host" }))
      local c = p:container("c")
      local _, status = c:exec { "/bin/cat", "/proc/self/status" }
      local want = (1 << security.capability_number("CAP_NET_BIND_SERVICE"))
                   | (1 << security.capability_number("CAP_KILL"))
      -- a non-root user with what the sets give; after its execve (of cat)
      -- the kernel leaves it the ambient set as effective and permitted
      local amb = 1 << security.capability_number("CAP_NET_BIND_SERVICE")
      assert.equal(amb, tonumber(status_field(status, "CapEff"), 16))
      assert.equal(amb, tonumber(status_field(status, "CapPrm"), 16))
      assert.equal(want, tonumber(status_field(status, "CapInh"), 16))
      assert.equal(amb, tonumber(status_field(status, "CapAmb"), 16))
      assert.equal(DEFAULT_MASK, tonumber(status_field(status, "CapBnd"), 16))
      local _, ids = c:exec { "/bin/id", "-G" }
      local groups = {}
      for g in ids:gmatch("%d+") do groups[#groups + 1] = tonumber(g) end
      table.sort(groups)
      assert.same({ 5, 50, 1000 }, groups)
      local code, out = c:exec { "/bin/ls", "-A", "/secret" }
      assert.equal(0, code)
      assert.equal("", out)     -- an empty tmpfs over it
      code = c:exec { "/bin/cat", "/secret/key" }
      assert.is_not.equal(0, code)
      code = c:exec { "/bin/sh", "-c", "echo x > /frozen" }
      assert.is_not.equal(0, code)
      local _, host = c:exec { "/bin/hostname" }
      assert.equal("pod-host\n", host)
      -- root with no sets given keeps the default set, no inheritable, no ambient
      local r = assert(run("plain"))
      _, status = r:container("c"):exec { "/bin/cat", "/proc/self/status" }
      assert.equal(DEFAULT_MASK, tonumber(status_field(status, "CapEff"), 16))
      assert.equal(0, tonumber(status_field(status, "CapInh"), 16))
      assert.equal(0, tonumber(status_field(status, "CapAmb"), 16))
      _, host = r:container("c"):exec { "/bin/hostname" }   -- (no network: the container ID)
      assert.equal("c\n", host)
    end)

    it("joins another container's UTS and IPC namespaces when namespaces_of says", function()
      local function ctr(id, extra)
        local c = { id = id, rootfs = rootfs, argv = { "/bin/sleep", "600" } }
        for k, v in pairs(extra or {}) do c[k] = v end
        return c
      end
      local p = assert(vc.pod.run { id = "shared", hypervisor = backend,
                                    vm = { memory_mib = 128 }, hostname = "sandbox-host",
                                    containers = { ctr("s"), ctr("m", { namespaces_of = "s" }),
                                                   ctr("own") } })
      assert(p:container("s"):exec { "/bin/touch", "/dev/mqueue/q1" })
      local _, out = p:container("m"):exec { "/bin/sh", "-c", "hostname; ls /dev/mqueue" }
      assert.equal("sandbox-host\nq1\n", out)
      _, out = p:container("own"):exec { "/bin/ls", "/dev/mqueue" }
      assert.equal("", out)
      -- an added container joins too
      assert(p:add_container(ctr("late", { namespaces_of = "s" })))
      assert(p:container("late"):start())
      _, out = p:container("late"):exec { "/bin/ls", "/dev/mqueue" }
      assert.equal("q1\n", out)
      local c, err = p:add_container(ctr("lost", { namespaces_of = "nope" }))
      assert.is_nil(c)
      assert.matches("pod shared has no container nope", err, 1, true)
    end)

    it("gives a container the tmpfs mounts its config asks, never written through", function()
      local p = assert(run("tmpfs", {
        mounts = { { path = "/scratch", tmpfs = { size_mib = 8, mode = "1770" } },
                   { path = "/frozen", tmpfs = {}, read_only = true } },
      }))
      local c = p:container("c")
      local code, out = c:exec { "/bin/sh", "-c", "echo x > /scratch/f && cat /scratch/f &&"
                                 .. " stat -c %a /scratch && df -k /scratch | tail -1" }
      assert.equal(0, code, out)
      local text, mode, kib = out:match("^(x)\n(%d+)\n%S+%s+(%d+)")
      assert.equal("x", text)
      assert.equal("1770", mode)
      assert.equal(8192, tonumber(kib))
      assert.is_nil(support.read_file(rootfs .. "/scratch/f"))
      code = c:exec { "/bin/sh", "-c", "echo x > /frozen/f" }
      assert.is_not.equal(0, code)
      local bad, err = run("badtmpfs", { mounts = { { path = "/x", tmpfs = {},
                                                       volume = "v" } } })
      assert.is_nil(bad)
      assert.matches("containers[1].mounts[1]: expected one of volume", err, 1, true)
    end)

    it("binds a host folder of its own into a container, also into a running pod", function()
      local data = support.tmpdir()
      support.write_file(data .. "/in", "from the host\n")
      local p = assert(run("hostdir", {
        mounts = { { host_path = data, path = "/data" },
                   { host_path = data, path = "/ro", read_only = true } },
      }))
      local c = p:container("c")
      -- (writes reach the host at the guest's writeback, or a sync, as on 9p volumes)
      local code, out = c:exec { "/bin/sh", "-c", "cat /data/in && echo new > /data/out && sync" }
      assert.equal(0, code, out)
      assert.equal("from the host\n", out)
      assert.equal("new\n", support.read_file(data .. "/out"))
      code = c:exec { "/bin/sh", "-c", "echo x > /ro/x" }
      assert.is_not.equal(0, code)
      -- a container added to the running pod gets one too; its delete unshares it
      assert(p:add_container { id = "late", rootfs = rootfs, argv = { "/bin/sleep", "600" },
                               mounts = { { host_path = data, path = "/d2" } } })
      assert(p:container("late"):start())
      _, out = p:container("late"):exec { "/bin/cat", "/d2/out" }
      assert.equal("new\n", out)
      assert(p:container("late"):kill("KILL"))
      p:container("late"):wait(10)
      assert(p:container("late"):delete())
      assert.equal("", support.sh("grep -F " .. q(root) .. " /proc/self/mountinfo | grep -F"
                                  .. " late@").stdout)
      -- the default policy judges them as volumes
      local bad, err = run("etc", { mounts = { { host_path = "/etc", path = "/x" } } })
      assert.is_nil(bad)
      assert.matches("volume of container c (mounts[1]): /etc lies in /etc", err, 1, true)
      p:delete { force = true }
      support.rmtree(data)
    end)

    it("sets the namespaced sysctls its config asks, never the host's or the kernel's",
       function()
      local host = support.read_file("/proc/sys/net/ipv4/ip_unprivileged_port_start")
      local p = assert(run("sysctl", { sysctl = {
        ["net.ipv4.ip_unprivileged_port_start"] = "80", ["kernel.shmmni"] = "2048" } }))
      local c = p:container("c")
      local _, out = c:exec { "/bin/cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start",
                              "/proc/sys/kernel/shmmni" }
      assert.equal("80\n2048\n", out)
      assert.is_not.equal(0, (c:exec { "/bin/sh", "-c", "echo 1 > /proc/sys/kernel/shmmni" }))
      assert.equal(host, support.read_file("/proc/sys/net/ipv4/ip_unprivileged_port_start"))
      for _, name in ipairs { "kernel.hostname", "vm.overcommit_memory", "net..x", "kernel" } do
        local bad, err = run("badsysctl", { sysctl = { [name] = "1" } })
        assert.is_nil(bad)
        assert.matches("invalid key (expected a namespaced sysctl", err, 1, true)
      end
    end)

    it("gives the oom_score_adj its config asks, lower only in a VM", function()
      local p = assert(run("oom", { oom_score_adj = 500 }, { hostname = "pod_host" }))
      local c = p:container("c")
      local _, out = c:exec { "/bin/sh", "-c", "cat /proc/1/oom_score_adj; hostname" }
      assert.equal("500\npod_host\n", out)
      local low, err = run("low", { oom_score_adj = -500 })
      if backend == "qemu" then
        assert(low, err)
        _, out = low:container("c"):exec { "/bin/cat", "/proc/1/oom_score_adj" }
        assert.equal("-500\n", out)
      else
        assert.is_nil(low)
        assert.matches("oom_score_adj -500 below 0 on the namespace backend", err, 1, true)
      end
    end)

    it("refuses malformed security configs before storing anything", function()
      local cases = {
        { { security = { capabilities = { add = { "CAP_FLY" } } } },
          'containers[1].security.capabilities.add[1]: unknown capability "CAP_FLY"' },
        { { security = { privileged = "yes" } },
          "containers[1].security.privileged: expected a boolean, got string" },
        { { security = { seccomp = "strict" } }, "containers[1].security.seccomp: expected" },
        { { security = { seccomp = root .. "/bad.json" } },
          "containers[1].security.seccomp: " .. root .. "/bad.json: invalid JSON" },
        { { security = { seccomp = { defaultAction = "SCMP_ACT_ALLOW",
                                     syscalls = { { names = { "mount" }, action = "NOPE" } } } } },
          "containers[1].security.seccomp.syscalls[1].action: expected an SCMP_ACT_* action" },
        { { security = { selinux = true } }, "containers[1].security.selinux: unknown key" },
        { { rlimits = { nofile = { soft = 10, hard = 5 } } },
          "containers[1].rlimits.nofile: the soft limit is above the hard limit" },
        { { security = { capabilities = { effective = { "CAP_SYS_ADMIN" } } } },
          "containers[1].security.capabilities.effective: CAP_SYS_ADMIN is not in the bounding"
          .. " set (add it)" },
        { { security = { capabilities = { permitted = { "CAP_KILL" },
                                          ambient = { "CAP_KILL" } } } },
          "containers[1].security.capabilities.ambient: CAP_KILL is not both permitted and"
          .. " inheritable" },
        { { security = { masked_paths = { "secret" } } },
          'containers[1].security.masked_paths[1]: expected an absolute path without \'..\','
          .. ' got "secret"' },
        { { security = { readonly_paths = { "/a/../etc" } } },
          "containers[1].security.readonly_paths[1]: expected an absolute path without" },
        { { groups = { -1 } },
          "containers[1].groups[1]: expected a gid (an integer >= 0) or a group name, got -1" },
      }
      support.write_file(root .. "/bad.json", "{ not json")
      for _, case in ipairs(cases) do
        local p, err = run("bad", case[1])
        assert.is_nil(p)
        assert.matches(case[2], err, 1, true)
      end
      assert.same({}, vc.pod.list())
      assert.equal("", support.traces(root))
    end)

    it("applies an OCI seccomp profile from a file", function()
      local file = root .. "/profile.json"
      support.write_file(file, [[{"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                      "errnoRet": 13}]}]])
      local p = assert(run("prof", { security = { seccomp = file } }))
      local code, out = p:container("c"):exec { "/bin/sh", "-c", "mkdir /tmp/x 2>&1" }
      assert.is_not.equal(0, code)
      assert.matches("Permission denied", out, 1, true)
    end)

    if backend == "namespace" then
      it("is never privileged: the default policy refuses it, annotated or not", function()
        for _, sec in ipairs { { privileged = true }, { seccomp = "unconfined" },
                               { capabilities = { add = { "SYS_ADMIN" } } } } do
          local p, err = run("priv", { security = sec },
                             { annotations = { ["vc.security.privileged"] = "true" } })
          assert.is_nil(p)
          assert.matches("policy default: refused: container c: security", err, 1, true)
          assert.matches("on the namespace backend would be the host's root", err, 1, true)
        end
        assert.same({}, vc.pod.list())
        assert.equal("", support.traces(root))
      end)

      it("has crun's capabilities, as crun gives them with the same defaults", function()
        if not support.sh("command -v crun").stdout:match("crun") then
          pending("crun is not installed")
          return
        end
        local p = assert(run("ref"))
        local _, mine = p:container("c"):exec { "/bin/cat", "/proc/self/status" }
        -- crun's own spec with the default capabilities vc gives
        local bundle = root .. "/bundle"
        assert(os.execute("mkdir -p " .. q(bundle) .. " && cd " .. q(bundle) .. " && crun spec"))
        local spec = require("cjson").decode(support.read_file(bundle .. "/config.json"))
        spec.root = { path = rootfs, readonly = false }
        spec.process.terminal = false
        spec.process.args = { "/bin/cat", "/proc/self/status" }
        for _, set in ipairs { "bounding", "effective", "permitted" } do
          spec.process.capabilities[set] = security.DEFAULT_CAPABILITIES
        end
        spec.process.capabilities.inheritable = nil
        spec.process.capabilities.ambient = nil
        spec.process.noNewPrivileges = true
        support.write_file(bundle .. "/config.json", require("cjson").encode(spec))
        -- crun refuses this machine's hybrid cgroup layout unless the
        -- unified hierarchy is out of its sight (shared/PLATFORM.md)
        local r = support.sh("unshare -m sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null;" ..
                             " crun run -b " .. q(bundle) .. " vc-escape-ref-$$'")
        assert.equal(0, r.code, r.stderr)
        for _, field in ipairs { "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs" } do
          assert.equal(status_field(r.stdout, field), status_field(mine, field), field)
        end
      end)
    else
      it("is privileged only in an annotated pod, and then has every capability", function()
        local p, err = run("priv", { security = { privileged = true } })
        assert.is_nil(p)
        assert.matches("container c: security.privileged needs the pod annotation " ..
                       "vc.security.privileged=true", err, 1, true)
        p = assert(run("priv", { security = { privileged = true } },
                       { annotations = { ["vc.security.privileged"] = "true" } }))
        local c = p:container("c")
        local _, status = c:exec { "/bin/cat", "/proc/self/status" }
        local _, last = c:exec { "/bin/cat", "/proc/sys/kernel/cap_last_cap" }
        last = assert(math.tointeger(tonumber(last)))
        assert.equal((1 << (last + 1)) - 1, tonumber(status_field(status, "CapEff"), 16))
        assert.equal("0", status_field(status, "Seccomp"))
        -- the guest's kernel is its to change; the host's is not
        local code = c:exec { "/bin/sh", "-c", "mkdir -p /tmp/m && mount -t tmpfs none /tmp/m" }
        assert.equal(0, code)
      end)
    end
  end)
end
