-- Recovery: `vc gc` and forced deletes find what crashes leave behind
-- (each case built by hand here; spec/crash_spec.lua makes real crashes),
-- and never touch a healthy pod.
local cjson = require "cjson"
local support = require "support"
local vc = require "vc"

local ROOTFS = support.project .. "/build/rootfs"

local function alive(pid)
  local stat = support.read_file("/proc/" .. pid .. "/stat")
  return stat ~= nil and stat:match("^%d+ %b() ([ZX])") == nil
end

local function wait_gone(pid)
  for _ = 1, 100 do
    if not alive(pid) then return true end
    os.execute("sleep 0.05")
  end
  return false
end

describe("vc gc", function()
  local root, rootfs

  local function vcr(...)
    return support.vc(root, { ... })
  end

  local function gc(...)
    local r = vcr("gc", ...)
    assert.equal(0, r.code, r.stderr)
    return r.stdout
  end

  local function info(pod)
    local t = cjson.decode(support.read_file(root .. "/run/pods/" .. pod .. "/hypervisor.json"))
    t.pid = math.tointeger(t.pid)
    return t
  end

  local function run(id, backend)
    return assert(vc.pod.run {
      id = id, hypervisor = backend or "namespace",
      containers = { { id = "c", rootfs = rootfs, argv = { "/bin/sleep", "600" } } },
    })
  end

  before_each(function()
    root = support.tmpdir()
    rootfs = root .. "/rootfs"
    assert(os.execute("cp -a " .. support.quote(ROOTFS) .. " " .. support.quote(rootfs)))
    vc.setup { root = root, lock_timeout = 5 }
  end)

  after_each(function()
    for _, p in ipairs(vc.pod.list { all = true }) do p:delete { force = true } end
    assert.equal("", support.traces(root))
    support.rmtree(root)
  end)

  it("leaves healthy pods alone, byte for byte", function()
    local p = run("healthy")
    assert(vc.pod.create { id = "idle", hypervisor = "namespace" })
    assert(vc.pod.create { id = "off", hypervisor = "namespace" }):stop()
    local pid = info("healthy").pid
    local before = support.snapshot(root .. "/lib") .. support.snapshot(root .. "/run")
    assert.equal("nothing to clean up\n", gc())
    assert.equal(before, support.snapshot(root .. "/lib") .. support.snapshot(root .. "/run"))
    assert.is_true(alive(pid))
    assert.equal("running", p:state())
    assert.equal("running", p:container("c"):status().state)
  end)

  it("deletes a pod whose creation never finished, with its sandbox", function()
    run("half")
    local pid = info("half").pid
    -- as if vc died before the state record, the commit point, was written
    assert(os.remove(root .. "/run/pods/half/state.json"))
    -- not a pod yet: hidden from the listing, shown with --all
    assert.equal("[]\n", vcr("pod", "list", "--json").stdout)
    assert.matches("half +incomplete", vcr("pod", "list", "--all").stdout)
    assert.equal("pod half: deleted: its creation or deletion never finished\n", gc())
    assert.is_true(wait_gone(pid))
    assert.is_nil(support.read_file(root .. "/lib/pods/half/config.json"))
    assert.equal("0", support.sh("ls " .. root .. "/run/pods | wc -l").stdout:match("%d+"))
    assert.equal("nothing to clean up\n", gc())
  end)

  it("lets vc pod delete --force remove an incomplete pod and its sandbox", function()
    run("half2")
    local pid = info("half2").pid
    assert(os.remove(root .. "/run/pods/half2/state.json"))
    local r = vcr("pod", "delete", "--force", "half2")
    assert.equal(0, r.code, r.stderr)
    assert.is_true(wait_gone(pid))
    assert.equal("[]\n", vcr("pod", "list", "--all", "--json").stdout)
  end)

  it("releases the network of a pod killed in its setup, with or without a result", function()
    support.with_test_network(40, function(net)
      for _, cut in ipairs { "after ADD", "during ADD" } do
        assert(vc.pod.run {
          id = "netted", hypervisor = "namespace", network = { cni = net.list },
          containers = { { id = "c", rootfs = rootfs, argv = { "/bin/sleep", "600" } } },
        })
        local file = root .. "/run/pods/netted/network.json"
        local rec = cjson.decode(support.read_file(file))
        if cut == "during ADD" then
          -- the ADD made its interface and lease, vc died before the result
          rec.result, rec.phase = nil, "adding"
          support.write_file(file, cjson.encode(rec))
        end
        assert(os.remove(root .. "/run/pods/netted/state.json"))
        assert.equal("pod netted: deleted: its creation or deletion never finished\n", gc())
        assert.is_nil(io.open(rec.netns), cut)
        assert.equal("", support.traces(root), cut)
        assert.equal("", support.net_traces(net.name, net.bridge, net.prefix), cut)
      end
    end)
  end)

  it("removes a network namespace of this store that no pod accounts for", function()
    local tag = require("vc.network").store_tag(require("vc.runtime").store())
    local name = "vc-ghost-" .. tag
    assert.equal(0, support.sh("ip netns add " .. name).code)
    assert.equal("pod ghost: removed network namespace /run/netns/" .. name
                 .. ": its pod is gone\n", gc())
    assert.is_nil(io.open("/run/netns/" .. name))
    assert.equal("nothing to clean up\n", gc())
  end)

  it("records a pod whose sandbox died as stopped, and cleans its socket", function()
    local p = run("dead")
    local pid = info("dead").pid
    assert(os.execute("kill -KILL " .. pid))
    assert.is_true(wait_gone(pid))
    assert.equal("pod dead: recorded as stopped: its sandbox is gone\n", gc())
    local rec = cjson.decode(support.read_file(root .. "/run/pods/dead/state.json"))
    assert.equal("stopped", rec.state)
    local crec = cjson.decode(support.read_file(root .. "/run/pods/dead/c/state.json"))
    assert.equal("stopped", crec.state)
    local sock = root .. "/run/pods/dead/agent.sock"
    assert.is_nil(os.rename(sock, sock))  -- (a socket cannot be opened)
    assert.equal("nothing to clean up\n", gc())
    -- and it starts again
    assert.is_true(p:start())
    assert.equal("running", p:state())
  end)

  it("kills backend processes that no record names, and those of gone pods", function()
    run("p")
    local pid = info("p").pid
    local agent = support.project .. "/build/vc-agent"
    -- a second agent serving pod p (a VM started by a vc killed before it
    -- recorded it), and one serving a pod whose records are gone
    local stray = root .. "/run/pods/p/stray.sock"
    local ghost_dir = root .. "/run/pods/ghost"
    local h = assert(io.popen(string.format(
      "%s --listen %s --state-dir %s/s1 >/dev/null 2>&1 & echo $!; " ..
      "mkdir -p %s; %s --listen %s/agent.sock --state-dir %s/s2 >/dev/null 2>&1 & echo $!",
      agent, stray, root, ghost_dir, agent, ghost_dir, root)))
    local s1, s2 = h:read("n"), h:read("n")
    h:close()
    os.execute("sleep 0.2")
    assert.is_true(alive(s1) and alive(s2))
    assert(os.execute("rm -rf " .. ghost_dir))
    local dry = gc("--dry-run")
    assert.matches("would have pod p: killed vc%-agent process " .. s1, dry)
    assert.matches("would have pod ghost: killed vc%-agent process " .. s2, dry)
    assert.is_true(alive(s1) and alive(s2))
    local out = gc()
    assert.matches("pod p: killed vc%-agent process " .. s1 .. ", which no record names", out)
    assert.matches("pod ghost: killed vc%-agent process " .. s2 .. ": its pod is gone", out)
    assert.is_false(out:find("process " .. pid, 1, true) ~= nil)
    assert.is_true(wait_gone(s1) and wait_gone(s2))
    assert.is_true(alive(pid))
    assert.equal("running", vc.pod.fetch("p"):state())
  end)

  it("unmounts what a crashed run left mounted, then removes the pod", function()
    local dir = root .. "/run/pods/mnt/.shared/c"
    assert(os.execute("mkdir -p " .. dir .. " && mount --bind " .. rootfs .. " " .. dir))
    assert.equal("pod mnt: deleted: its creation or deletion never finished\n", gc())
    assert.equal("", support.traces(root))
    -- what the mount showed is intact
    assert.is_truthy(support.read_file(rootfs .. "/bin/busybox"))
  end)

  it("removes a container whose creation never finished", function()
    local p = run("pc")
    assert(p:add_container { id = "d", rootfs = rootfs, argv = { "/bin/true" } })
    assert(os.remove(root .. "/run/pods/pc/d/state.json"))
    local ids = {}
    for _, c in ipairs(p:status().containers) do ids[#ids + 1] = c.id end
    assert.same({ "c" }, ids)
    assert.equal("pod pc: removed container d: its creation never finished\n", gc())
    assert.is_nil(p:container("d"))
    assert.equal("running", p:container("c"):status().state)
  end)

  it("skips a pod another process holds", function()
    assert(vc.pod.create { id = "busy", hypervisor = "mock" })
    assert(os.remove(root .. "/run/pods/busy/state.json"))
    local h = assert(io.popen(support.quote(support.bin) .. " run " ..
      support.quote(support.project .. "/spec/fixtures/hold_lock.lua") .. " " ..
      support.quote(root) .. " busy 3"))
    assert.equal("locked", h:read("l"))
    assert.equal("nothing to clean up\n", gc())
    assert.is_truthy(support.read_file(root .. "/lib/pods/busy/config.json"))
    h:close()
    assert.equal("pod busy: deleted: its creation or deletion never finished\n", gc())
  end)

  it("reports a record that does not parse and leaves it to delete --force", function()
    assert(vc.pod.create { id = "bad", hypervisor = "mock" })
    support.write_file(root .. "/run/pods/bad/state.json", "{not json")
    assert.matches("pod bad: left alone: .*state.json: not a valid record", gc())
    assert.is_truthy(support.read_file(root .. "/run/pods/bad/state.json"))
    local r = vcr("pod", "delete", "bad")
    assert.equal(1, r.code)
    assert.matches("not a valid record", r.stderr)
    r = vcr("pod", "delete", "--force", "bad")
    assert.equal(0, r.code, r.stderr)
    assert.equal("nothing to clean up\n", gc())
  end)

  it("prints its report as JSON", function()
    run("j")
    assert(os.remove(root .. "/run/pods/j/state.json"))
    local r = cjson.decode(gc("--json"))
    assert.same({ { pod = "j", action = "deleted: its creation or deletion never finished" } },
                r.actions)
    assert.same({}, r.errors)
  end)
end)
