-- Pod networking through CNI, with the real plugins (/usr/lib/cni): vc's
-- own `vc` network and test networks of their own (10.214.N.0/24 behind
-- bridge vctN, support.test_network). Traffic goes only to addresses of
-- the pods and bridges made here, and loopback.
local support = require "support"
local vc = require "vc"

local ROOTFS = support.project .. "/build/rootfs"
local GUEST = support.project .. "/build/guest/vmlinux"
local q = support.quote

local BACKENDS = { "namespace" }
if support.read_file(GUEST) then BACKENDS[#BACKENDS + 1] = "qemu" end

-- A host port nobody else in this run uses.
local next_port = 20000 + (os.time() % 1000) * 10
local function port()
  next_port = next_port + 1
  return next_port
end

local function sh(cmd)
  return support.sh(cmd)
end

-- The first IPv4 address of a pod's status, without its prefix length.
local function address_of(p)
  local s = assert(p:status())
  assert(s.network, "no network in the pod's status")
  local a = s.network.addresses[1]
  assert(a, "no address in the pod's status")
  return a:match("^[^/]+"), s
end

-- GET url from the host (python3: the host's static busybox has no
-- working wget).
local function fetch(url)
  return sh("python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen("
            .. "sys.argv[1], timeout=10).read().decode())' " .. q(url))
end

for _, backend in ipairs(BACKENDS) do
  describe("pod networks on " .. backend, function()
    local root, nets

    local function net(n)
      local t = support.test_network(n)
      nets[#nets + 1] = t
      return t
    end

    local function pod(id, network, containers, extra)
      local cfg = { id = id, hypervisor = backend, vm = { memory_mib = 128 }, network = network,
                    containers = containers or {
                      { id = "web", rootfs = ROOTFS,
                        argv = { "/bin/httpd", "-f", "-p", "80", "-h", "/etc" } } } }
      for k, v in pairs(extra or {}) do cfg[k] = v end
      return vc.pod.run(cfg)
    end

    before_each(function()
      root = support.tmpdir()
      nets = {}
      vc.setup { root = root, lock_timeout = 30 }
    end)

    after_each(function()
      for _, p in ipairs(vc.pod.list { all = true }) do p:delete { force = true } end
      local traces = support.traces(root)
      for _, t in ipairs(nets) do
        traces = traces .. support.net_traces(t.name, t.bridge, t.prefix)
        support.drop_test_network(t)
      end
      support.rmtree(root)
      assert.equal("", traces)
    end)

    it("puts a pod on the vc network: an address, a server reached, ports, DNS", function()
      local hp = port()
      local p = assert(pod("web", { cni = "vc", ports = { { host = hp, container = 80 } },
                                    dns = { servers = { "10.213.0.1" }, search = { "vc.test" } },
                                    hostname = "webhost" },
                           { { id = "web", rootfs = ROOTFS,
                               argv = { "/bin/httpd", "-f", "-p", "80", "-h", "/etc" } },
                             { id = "side", rootfs = ROOTFS, argv = { "/bin/sleep", "600" } } }))
      local addr, s = address_of(p)
      assert.matches("^10%.213%.0%.%d+$", addr)
      assert.same({ hp .. "->80/tcp" }, s.network.ports)
      -- the server, from the host: at the pod's address and the mapped port
      local r = fetch("http://" .. addr .. ":80/hostname")
      assert.equal(0, r.code, r.stderr)
      assert.equal("webhost\n", r.stdout)
      r = fetch("http://127.0.0.1:" .. hp .. "/hostname")
      assert.equal(0, r.code, r.stderr)
      assert.equal("webhost\n", r.stdout)
      -- the other container shares the interface: localhost reaches web
      local side = p:container("side")
      local code, out = side:exec { "/bin/wget", "-q", "-O-", "http://127.0.0.1:80/hostname" }
      assert.equal(0, code, out)
      assert.equal("webhost\n", out)
      code, out = side:exec { "/bin/sh", "-c", "ip -o -4 addr show eth0; hostname; "
                                              .. "cat /etc/resolv.conf /etc/hosts" }
      assert.equal(0, code, out)
      assert.matches("inet " .. addr:gsub("%.", "%%.") .. "/24", out)
      assert.matches("\nwebhost\n", out)
      assert.matches("search vc%.test\nnameserver 10%.213%.0%.1\n", out)
      assert.matches(addr:gsub("%.", "%%.") .. "\twebhost", out)
      -- a server on the bridge's host side, reached from the container
      local dir = support.tmpdir()
      support.write_file(dir .. "/hello", "from the host\n")
      local sp = port()
      local server = io.popen("exec python3 -m http.server --bind 10.213.0.1 --directory "
                              .. q(dir) .. " " .. sp .. " >/dev/null 2>&1 & echo $!")
      local pid = server:read("l")
      server:close()
      local got
      for _ = 1, 50 do
        -- (nc: busybox's static wget crashes on Python's answer)
        code, got = side:exec { "/bin/sh", "-c", "printf 'GET /hello HTTP/1.0\\r\\n\\r\\n' | "
                                .. "nc -w 5 10.213.0.1 " .. sp }
        if code == 0 and got:find("200 OK", 1, true) then break end
        os.execute("sleep 0.1")
      end
      os.execute("kill " .. pid)
      support.rmtree(dir)
      assert.equal(0, code, got)
      assert.matches("^HTTP/1%.0 200 OK\r\n.*\r\n\r\nfrom the host\n$", got)
      -- delete: no namespace, veth, lease or rule of this pod is left
      local netns = s.network.netns
      assert(p:delete { force = true })
      assert.is_nil(io.open(netns))
      assert.equal("", support.traces(root))
      r = sh("ls /var/lib/cni/networks/vc; iptables-save")
      assert.is_nil(r.stdout:find(addr .. "\n", 1, true))
      assert.is_nil(r.stdout:find(addr .. "/32", 1, true))
      assert.is_nil(r.stdout:find(":" .. hp, 1, true))
    end)

    it("lets two pods of one network reach each other", function()
      local t = net(11)
      local a = assert(pod("a", { cni = t.list }))
      local b = assert(pod("b", { cni = t.list }))
      local addr_a, addr_b = address_of(a), address_of(b)
      assert.matches("^10%.214%.11%.", addr_a)
      assert.are_not.equal(addr_a, addr_b)
      local code, out = b:container("web"):exec { "/bin/wget", "-q", "-O-",
                                                  "http://" .. addr_a .. "/hostname" }
      assert.equal(0, code, out)
      assert.equal("a\n", out)
      code, out = a:container("web"):exec { "/bin/ping", "-c", "1", "-W", "5", addr_b }
      assert.equal(0, code, out)
      -- each its own MAC (on qemu both VMs come from one template, whose
      -- NIC had one: the agent gives the guest the veth's)
      local mac_a = select(2, a:container("web"):exec { "/bin/cat", "/sys/class/net/eth0/address" })
      local mac_b = select(2, b:container("web"):exec { "/bin/cat", "/sys/class/net/eth0/address" })
      assert.matches("^%x%x:%x%x:%x%x:%x%x:%x%x:%x%x\n$", mac_a)
      assert.are_not.equal(mac_a, mac_b)
      -- and the guest's is the CNI's interface's (vc keeps the result)
      local rec = require("cjson").decode(support.read_file(root .. "/run/pods/a/network.json"))
      local cni_mac
      for _, i in ipairs(rec.result.interfaces) do
        if i.sandbox == rec.netns then cni_mac = i.mac end
      end
      assert.equal(cni_mac .. "\n", mac_a)
    end)

    it("refuses what it cannot make, with the plugin's message, and leaves nothing", function()
      local t = net(12)
      local bad_subnet = support.test_network(12).list
      bad_subnet.plugins[1].ipam.ranges[1][1].subnet = "10.214.12.0/99"
      local one = support.test_network(12).list
      one.plugins[1].ipam.ranges[1][1].rangeStart = "10.214.12.10"
      one.plugins[1].ipam.ranges[1][1].rangeEnd = "10.214.12.10"
      local cases = {
        { { cni = { cniVersion = "1.0.0", name = t.name, plugins = { { type = "nosuch" } } } },
          "network vctest12: plugin nosuch %(ADD%): no such plugin in /usr/lib/cni" },
        { { cni = bad_subnet },
          "network vctest12: plugin bridge %(ADD%): invalid CIDR address: 10%.214%.12%.0/99" },
        { { cni = { cniVersion = "1.0.0", name = t.name, plugins = {} } },
          "^network%.cni%.plugins: expected a non%-empty list$" },
        { { cni = "nosuchnet" }, "^network nosuchnet: no nosuchnet%.conflist in " },
        { { cni = t.list, ports = { { host = 80, container = 80 } } },
          "host port 80/tcp is below 1024" },
      }
      -- the pool of one address: the second pod finds it taken
      local first = assert(pod("first", { cni = one }))
      local p, err = pod("second", { cni = one })
      assert.is_nil(p)
      assert.matches("plugin bridge %(ADD%): failed to allocate for range 0: no IP addresses"
                     .. " available in range set: 10%.214%.12%.10%-10%.214%.12%.10", err)
      assert.equal(1, #vc.pod.list { all = true })
      assert(first:delete { force = true })
      assert.equal("", support.net_traces(t.name, t.bridge, t.prefix))
      -- a privileged port, annotated
      local hp = 1000 + math.random(0, 23)
      local ok = assert(pod("priv", { cni = t.list, ports = { { host = hp, container = 80 } } },
                            nil, { annotations = { ["vc.network.privileged-ports"] = "true" } }))
      local r = fetch("http://127.0.0.1:" .. hp .. "/hostname")
      assert.equal(0, r.code, r.stderr)
      assert.equal("priv\n", r.stdout)
      assert(ok:delete { force = true })
      -- (last: a bridge that a failed ADD made stays without an address and
      -- with no MAC, which the bridge plugin then fails to set)
      for i, c in ipairs(cases) do
        local bad, berr = pod("bad" .. i, c[1])
        assert.is_nil(bad)
        assert.matches(c[2], berr)
        assert.same({}, vc.pod.list { all = true })
        assert.equal("", support.traces(root))
        assert.equal("", support.net_traces(t.name, t.bridge, t.prefix))
      end
    end)

    it("shows the network in vc pod status and takes it from the CLI", function()
      local t = net(13)
      local conf = support.tmpdir()
      support.write_file(conf .. "/pod.json", require("cjson").encode {
        hypervisor = backend, vm = { memory_mib = 128 }, network = { cni = t.list },
        containers = { { id = "web", rootfs = ROOTFS,
                         argv = { "/bin/httpd", "-f", "-p", "80", "-h", "/etc" } } } })
      local hp = port()
      local r = support.vc(root, { "pod", "run", "--id", "cli", "--config", conf .. "/pod.json",
                                   "--publish", hp .. ":80", "--hostname", "clihost" })
      support.rmtree(conf)
      assert.equal(0, r.code, r.stderr)
      r = support.vc(root, { "pod", "status", "cli" })
      assert.equal(0, r.code, r.stderr)
      assert.matches("NETWORK%s+ADDRESSES%s+PORTS%s+NETNS\nvctest13%s+10%.214%.13%.%d+/24%s+"
                     .. hp .. "%->80/tcp%s+/run/netns/vc%-cli%-%x+\n", r.stdout)
      r = fetch("http://127.0.0.1:" .. hp .. "/hostname")
      assert.equal("clihost\n", r.stdout)
      r = support.vc(root, { "pod", "create", "--id", "x", "--publish", "1:2" })
      assert.equal(2, r.code)
      assert.matches("need %-%-network NAME", r.stderr)
    end)

    it("joins a network namespace someone else made, and leaves it", function()
      local name = "vcspec-ext-" .. backend
      os.execute("ip netns delete " .. name .. " 2>/dev/null")
      local r = sh(table.concat({
        "ip netns add " .. name,
        "ip link add vcspec-h0 type veth peer name eth0 netns " .. name,
        "ip addr add 10.214.20.1/24 dev vcspec-h0", "ip link set vcspec-h0 up",
        "ip -n " .. name .. " addr add 10.214.20.2/24 dev eth0",
        "ip -n " .. name .. " link set eth0 up", "ip -n " .. name .. " link set lo up" }, " && "))
      assert.equal(0, r.code, r.stderr)
      local p, err = pod("ext", { netns = "/run/netns/" .. name })
      local ok, got
      if p then
        for _ = 1, 50 do
          got = fetch("http://10.214.20.2/hostname")
          if got.code == 0 then break end
          os.execute("sleep 0.1")
        end
        ok = p:delete { force = true }
      end
      local still = io.open("/run/netns/" .. name)
      if still then still:close() end
      local links = sh("ip -n " .. name .. " -o link show").stdout
      os.execute("ip netns delete " .. name .. "; ip link delete vcspec-h0 2>/dev/null")
      assert(p, err)
      assert.equal(0, got.code, got.stderr)
      assert.equal("ext\n", got.stdout)
      assert.is_true(ok)
      assert.is_not_nil(still, "vc removed a namespace it did not make")
      assert.is_nil(links:find("vctap", 1, true), links)
    end)
  end)
end

describe("the networks policy", function()
  it("pins the networks a pod may join", function()
    local dir = support.tmpdir()
    local function check(network, annotations)
      local file = dir .. "/pod.json"
      support.write_file(file, require("cjson").encode {
        hypervisor = "namespace", network = network, annotations = annotations,
        containers = { { id = "c", rootfs = ROOTFS, argv = { "/bin/true" } } } })
      return support.vc(dir, { "policy", "check", "--policy", "networks", file })
    end
    local r = check { cni = "vc" }
    assert.equal(0, r.code, r.stderr)
    r = check { cni = "other" }
    assert.equal(1, r.code)
    assert.matches("network other: not one of the allowed networks %(vc%)", r.stdout .. r.stderr)
    local inline = support.test_network(60).list
    r = check { cni = inline }
    assert.equal(1, r.code)
    assert.matches("a conflist of its own needs the pod annotation vc%.network%.custom=true",
                   r.stdout .. r.stderr)
    r = check({ cni = inline }, { ["vc.network.custom"] = "true" })
    assert.equal(0, r.code, r.stderr)
    support.rmtree(dir)
  end)
end)
