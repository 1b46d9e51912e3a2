--- vc.network: a pod's network. A pod with `network = { cni = ... }` gets
-- a network namespace of its own (`ip netns add`, so it outlives vc's
-- processes), into which the CNI plugins of its network put an interface;
-- the result is kept in the pod's `network.json` and handed to the same
-- plugins for DEL when the pod goes. The sandbox joins the namespace
-- (namespace backend), or the VM is connected to it (qemu backend); the
-- agent gets the hostname and the files /etc/resolv.conf, /etc/hosts and
-- /etc/hostname of every container. A pod given a namespace someone else
-- made (`network = { netns = PATH }`, as engines pass one) only joins it.
-- (vc.cni is loaded only for a pod that has a network)
local cni = setmetatable({}, { __index = function(t, k)
  local mod = require "vc.cni"
  setmetatable(t, { __index = mod })
  return mod[k]
end })
local failure = require "vc.failure"
local host = require "vc.core.host"
local log = require "vc.log"
local process = require "vc.core.process"
local store = require "vc.store"

local M = {}

M.NETNS_DIR = "/run/netns"
M.IFNAME = "eth0"
local IP_TIMEOUT = 10

-- FNV-1a of s, as 8 hex digits (src/hv/namespace.c names cgroups alike).
local function hash(s)
  local h = 2166136261
  for i = 1, #s do
    h = ((h ~ s:byte(i)) * 16777619) & 0xffffffff
  end
  return ("%08x"):format(h)
end

--- The suffix of every namespace name this store's pods get: one store's
-- namespaces are told from another's (and gc finds its own).
function M.store_tag(st)
  return hash(select(2, st:dirs()))
end

--- The name of pod id's network namespace (also its CNI container ID).
function M.netns_name(st, id)
  return ("vc-%s-%s"):format(id:sub(1, 40), M.store_tag(st))
end

--- Whether the pod has a network at all.
function M.wanted(cfg)
  return type(cfg.network) == "table"
end

--- The path of the namespace the pod's sandbox joins, or nil.
function M.netns_path(st, cfg)
  if not M.wanted(cfg) then return nil end
  return cfg.network.netns or (M.NETNS_DIR .. "/" .. M.netns_name(st, cfg.id))
end

local function program(names)
  for _, p in ipairs(names) do
    if host.kind(p) == "file" then return p end
  end
  return nil
end

local function ip_path()
  return program { "/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip" }
end

-- A list for cni.encode: an empty one written as [].
local function array(t)
  return #t > 0 and t or cni.EMPTY_ARRAY
end

-- Run a network tool (argv[1]: "ip" or "tc"), in the namespace at netns
-- when given (nsenter); returns its stdout, or nil and a message.
local function tool(netns, argv)
  local name = argv[1]
  local path = name == "ip" and ip_path() or
               program { "/usr/sbin/" .. name, "/sbin/" .. name, "/usr/bin/" .. name }
  if not path then return nil, "no " .. name .. " command (apt-get install iproute2)" end
  local args = argv
  if netns then
    local nsenter = program { "/usr/bin/nsenter", "/bin/nsenter" }
    if not nsenter then return nil, "no nsenter command (apt-get install util-linux)" end
    args = { "nsenter", "--net=" .. netns, path, table.unpack(argv, 2) }
    path = nsenter
  end
  local res, err = process.run { path = path, args = args,
                                 env = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin" },
                                 timeout = IP_TIMEOUT, capture = 1 << 20 }
  if not res then return nil, err end
  if res.status ~= "exited" or res.code ~= 0 then
    local msg = res.stderr:match("^%s*(.-)%s*$")
    return nil, table.concat(argv, " ") .. ": " .. (msg ~= "" and msg or res.status)
  end
  return res.stdout
end

-- Run `ip ARGS...` on the host; returns true, or nil and a message.
local function ip(...)
  local out, err = tool(nil, { "ip", ... })
  if not out then return nil, err end
  return true
end

local function exists(path)
  return host.kind(path) ~= nil
end

--- The conflist a network config names (or holds), or raise.
function M.conflist(net)
  if type(net.cni) == "table" then
    return failure.check(cni.check(net.cni, "network.cni"))
  end
  return (failure.check(cni.find(net.cni)))
end

-- The CNI arguments of the pod's attachment.
local function cni_args(rec)
  return { container_id = rec.name, netns = rec.netns, ifname = rec.ifname,
           runtime_config = rec.runtime_config }
end

local function record_path(st, id)
  return st:paths(id).run_dir .. "/network.json"
end

--- Make the pod's network: its namespace, then the CNI ADD of its
-- network. The record comes first (phase "adding"), so that a vc killed at
-- any later point leaves something teardown (delete, gc) finds. Pushes
-- the undo step on undo; returns the record, or nil for a pod without a
-- network.
function M.setup(st, cfg, undo, vm)
  if not M.wanted(cfg) then return nil end
  local net = cfg.network
  if net.netns then
    -- an engine's namespace: joined, never removed by vc (a VM's taps
    -- and filters in it are, at teardown)
    local rec = { netns = net.netns, owned = false, phase = "ready" }
    store.write(st, cfg.id, nil, "network", rec)
    undo.push(function() M.teardown(st, cfg.id, true) end)
    if vm then M.attach_vm(st, cfg.id, rec) end
    return rec
  end
  local list = M.conflist(net)
  local name = M.netns_name(st, cfg.id)
  local mappings = {}
  for i, p in ipairs(net.ports or {}) do
    mappings[i] = { hostPort = p.host, containerPort = p.container, protocol = p.protocol,
                    hostIP = p.host_ip }
  end
  local rec = {
    netns = M.NETNS_DIR .. "/" .. name, name = name, ifname = M.IFNAME, owned = true,
    conflist = list, runtime_config = #mappings > 0 and { portMappings = mappings } or nil,
    phase = "adding",
  }
  if exists(rec.netns) then
    failure.raise("pod %s: network namespace %s exists already (vc gc removes a dead pod's)",
                  cfg.id, rec.netns)
  end
  store.write(st, cfg.id, nil, "network", rec)
  undo.push(function() M.teardown(st, cfg.id, true) end)
  failure.check(ip("netns", "add", name))
  local result, err = cni.add(list, cni_args(rec))
  if not result then failure.raise("pod %s: %s", cfg.id, err) end
  rec.result, rec.phase = result, "ready"
  store.write(st, cfg.id, nil, "network", rec)
  if vm then M.attach_vm(st, cfg.id, rec) end
  log.info("pod network added", { pod = cfg.id, network = list.name })
  return rec
end

-- A VM's side: the interfaces in the namespace, and the routes through
-- them, as the guest will have them (Kata's scan of the netns).
local function scan(netns)
  local links = cni.decode(failure.check(tool(netns, { "ip", "-j", "link", "show" })))
  local addrs = cni.decode(failure.check(tool(netns, { "ip", "-j", "-4", "addr", "show" })))
  local routes = cni.decode(failure.check(tool(netns, { "ip", "-j", "-4", "route", "show" })))
  if type(links) ~= "table" or type(addrs) ~= "table" or type(routes) ~= "table" then
    failure.raise("network namespace %s: ip -j: not a list", netns)
  end
  local v4 = {}
  for _, a in ipairs(addrs) do
    local list = {}
    for _, ai in ipairs(cni.list(a.addr_info)) do
      if ai.family == "inet" and ai.scope ~= "host" then
        list[#list + 1] = ai["local"] .. "/" .. math.tointeger(ai.prefixlen)
      end
    end
    v4[a.ifname] = list
  end
  local nics, guest_name = {}, {}
  for _, l in ipairs(links) do
    if l.link_type == "ether" and not tostring(l.ifname):match("^vctap") then
      local n = #nics
      nics[n + 1] = { veth = l.ifname, tap = "vctap" .. n, guest = "eth" .. n, mac = l.address,
                      mtu = math.tointeger(l.mtu), addresses = v4[l.ifname] or {} }
      guest_name[l.ifname] = "eth" .. n
    end
  end
  local out = {}
  for _, r in ipairs(routes) do
    -- the subnet routes come with the addresses; the others are given
    if r.gateway and guest_name[r.dev] then
      out[#out + 1] = { dst = r.dst == "default" and "0.0.0.0/0" or r.dst, gw = r.gateway,
                        dev = guest_name[r.dev] }
    end
  end
  return nics, out
end

--- Connect a VM to the pod's namespace: for each interface there (the
-- CNI's veth, or an engine's), a tap device beside it and tc ingress
-- redirects both ways between the two (Kata's "tcfilter" model); QEMU,
-- started in the namespace, opens the tap behind a virtio-net device, and
-- the agent gives the guest's interface the veth's MAC and addresses. The
-- record names the taps before they are made (teardown removes them from
-- a namespace vc does not own).
function M.attach_vm(st, id, rec)
  local nics, routes = scan(rec.netns)
  if #nics == 0 then
    failure.raise("pod %s: network namespace %s has no interface to connect the VM to",
                  id, rec.netns)
  end
  rec.vm = { nics = nics, routes = routes }
  store.write(st, id, nil, "network", rec)
  for _, n in ipairs(nics) do
    for _, argv in ipairs {
      { "ip", "tuntap", "add", "dev", n.tap, "mode", "tap", "user", "0" },
      { "ip", "link", "set", "dev", n.tap, "mtu", tostring(n.mtu or 1500), "up" },
      { "tc", "qdisc", "add", "dev", n.veth, "ingress" },
      { "tc", "filter", "add", "dev", n.veth, "parent", "ffff:", "protocol", "all", "u32",
        "match", "u8", "0", "0", "action", "mirred", "egress", "redirect", "dev", n.tap },
      { "tc", "qdisc", "add", "dev", n.tap, "ingress" },
      { "tc", "filter", "add", "dev", n.tap, "parent", "ffff:", "protocol", "all", "u32",
        "match", "u8", "0", "0", "action", "mirred", "egress", "redirect", "dev", n.veth },
    } do
      local ok, err = tool(rec.netns, argv)
      if not ok then failure.raise("pod %s: connecting the VM: %s", id, err) end
    end
  end
end

-- Undo attach_vm in a namespace vc keeps (an engine's): the taps, and the
-- ingress qdiscs (their filters with them) on the interfaces.
local function detach_vm(rec)
  local errs = {}
  if not (rec.vm and exists(rec.netns)) then return errs end
  for _, n in ipairs(rec.vm.nics or {}) do
    tool(rec.netns, { "tc", "qdisc", "del", "dev", n.veth, "ingress" })
    local out = tool(rec.netns, { "ip", "-o", "link", "show", "dev", n.tap })
    if out then
      local ok, err = tool(rec.netns, { "ip", "link", "delete", "dev", n.tap })
      if not ok then errs[#errs + 1] = err end
    end
  end
  return errs
end

--- The taps of the pod's VM, in order (vm spec's `taps`), or nil.
function M.taps(st, cfg)
  if not M.wanted(cfg) then return nil end
  local rec = store.read_opt(st, cfg.id, nil, "network")
  if not (rec and rec.vm) then return nil end
  local taps = {}
  for i, n in ipairs(rec.vm.nics or {}) do taps[i] = n.tap end
  return taps
end

--- Remove what setup made, from the pod's record: the CNI DEL (with the
-- ADD's result, or without when it never came), then the namespace, then
-- the record. Safe to run again after a crash at any point. Raises on an
-- error unless force (then it logs, and goes on: a forced delete must
-- finish). Returns true.
function M.teardown(st, id, force)
  local path = record_path(st, id)
  local rec, err = store.read_opt(st, id, nil, "network")
  if not rec then
    if err and not force then failure.raise("%s", err) end
    os.remove(path)
    return true
  end
  if rec.owned == false then
    local errs = detach_vm(rec)
    if errs[1] and not force then failure.raise("pod %s: %s", id, errs[1]) end
    for _, e in ipairs(errs) do log.warn("network teardown: " .. e, { pod = id }) end
  else
    local errs = {}
    if rec.netns and rec.name and exists(rec.netns) and rec.conflist then
      -- (recorded before the namespace was made: no other pod's)
      rec.phase = "removing"
      store.write(st, id, nil, "network", rec)
      local _, derrs = cni.del(rec.conflist, cni_args(rec), rec.result)
      for _, e in ipairs(derrs) do errs[#errs + 1] = e end
    end
    if #errs == 0 and rec.netns and exists(rec.netns) then
      local ok, ierr = ip("netns", "delete", rec.name)
      if not ok then errs[#errs + 1] = ierr end
    end
    if #errs > 0 then
      if not force then failure.raise("pod %s: %s", id, errs[1]) end
      for _, e in ipairs(errs) do log.warn("network teardown: " .. e, { pod = id }) end
      -- forced: the namespace goes anyway (its links with it)
      if rec.netns and exists(rec.netns) then ip("netns", "delete", rec.name) end
    end
  end
  os.remove(path)
  return true
end

--- Namespaces of this store's pods that no pod folder accounts for (a
-- crash after the pod's folder went): { { name =, path =, pod = } }.
function M.orphans(st)
  local tag = M.store_tag(st)
  local known = {}
  for _, id in ipairs(st:pods()) do known[M.netns_name(st, id)] = true end
  local out = {}
  local p = io.popen("ls -1 " .. M.NETNS_DIR .. " 2>/dev/null")
  local names = p and p:read("a") or ""
  if p then p:close() end
  for name in names:gmatch("[^\n]+") do
    local id = name:match("^vc%-(.+)%-" .. tag .. "$")
    if id and not known[name] then
      out[#out + 1] = { name = name, path = M.NETNS_DIR .. "/" .. name, pod = id }
    end
  end
  return out
end

--- Remove an orphan namespace: the links in it go with it (a veth's peer
-- on the bridge too); an IPAM lease of its ID is released with the
-- network's DEL when the record says which network, else it stays.
function M.remove_orphan(o)
  return ip("netns", "delete", o.name)
end

-- The pod's addresses from a CNI result: { "10.213.0.5/24", ... }.
local function addresses(result)
  local out = {}
  for _, a in ipairs(cni.list(result and result.ips)) do
    if type(a) == "table" and type(a.address) == "string" then out[#out + 1] = a.address end
  end
  return out
end

-- A hostname from a pod ID (RFC 1123: letters, digits, '-', '.').
local function hostname_of(cfg)
  if cfg.hostname then return cfg.hostname end
  if cfg.network.hostname then return cfg.network.hostname end
  local h = cfg.id:gsub("[^A-Za-z0-9.-]", "-"):sub(1, 63):gsub("^[-.]+", ""):gsub("[-.]+$", "")
  return h ~= "" and h or "pod"
end

-- /etc/resolv.conf: the config's dns, else the CNI result's, else the
-- host's with its loopback servers dropped (they mean nothing in the
-- pod), as podman does.
local function resolv_conf(cfg, result)
  local dns = cfg.network.dns or {}
  local rdns = type(result) == "table" and type(result.dns) == "table" and result.dns or {}
  local servers = dns.servers or (#cni.list(rdns.nameservers) > 0 and rdns.nameservers) or nil
  local search = dns.search or (#cni.list(rdns.search) > 0 and rdns.search) or nil
  local options = dns.options or (#cni.list(rdns.options) > 0 and rdns.options) or nil
  local lines = {}
  if not servers then
    local f = io.open("/etc/resolv.conf")
    local text = f and f:read("a") or ""
    if f then f:close() end
    servers = {}
    for l in text:gmatch("[^\n]+") do
      local s = l:match("^%s*nameserver%s+(%S+)")
      if s and not s:match("^127%.") and s ~= "::1" then servers[#servers + 1] = s end
      if not search and l:match("^%s*search%s") then lines[#lines + 1] = l end
    end
  end
  if search then lines[#lines + 1] = "search " .. table.concat(search, " ") end
  for _, s in ipairs(servers) do lines[#lines + 1] = "nameserver " .. s end
  if options then lines[#lines + 1] = "options " .. table.concat(options, " ") end
  return table.concat(lines, "\n") .. "\n"
end

--- What the agent gets in create_pod's "network" (JSON text), or nil.
-- extra: fields for a VM's guest (interfaces, routes).
function M.agent_payload(st, cfg, extra)
  if not M.wanted(cfg) then
    return cfg.hostname and cni.encode { hostname = cfg.hostname } or nil
  end
  local rec = store.read_opt(st, cfg.id, nil, "network") or {}
  local name = hostname_of(cfg)
  local hosts = { "127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback" }
  for _, a in ipairs(addresses(rec.result)) do
    hosts[#hosts + 1] = a:match("^[^/]+") .. "\t" .. name
  end
  local payload = {
    hostname = name,
    hostname_file = name .. "\n",
    hosts = table.concat(hosts, "\n") .. "\n",
    resolv_conf = resolv_conf(cfg, rec.result),
  }
  if rec.vm then
    payload.interfaces, payload.routes = {}, {}
    for i, n in ipairs(rec.vm.nics or {}) do
      payload.interfaces[i] = { name = n.guest, mac = n.mac, mtu = n.mtu,
                                addresses = array(cni.list(n.addresses)) }
    end
    for i, r in ipairs(cni.list(rec.vm.routes)) do
      payload.routes[i] = { dst = r.dst, gw = r.gw }
    end
    payload.interfaces, payload.routes = array(payload.interfaces), array(payload.routes)
  end
  for k, v in pairs(extra or {}) do payload[k] = v end
  return cni.encode(payload)
end

--- The pod's network for `vc pod status`: { network =, addresses =,
-- ports =, netns = }, or nil.
function M.status(st, cfg)
  if not M.wanted(cfg) then return nil end
  local rec = store.read_opt(st, cfg.id, nil, "network") or {}
  local ports = {}
  for i, p in ipairs(cfg.network.ports or {}) do
    ports[i] = ("%s%d->%d/%s"):format(p.host_ip and (p.host_ip .. ":") or "", p.host,
                                      p.container, p.protocol)
  end
  return {
    network = rec.conflist and rec.conflist.name or (cfg.network.netns and "external") or nil,
    netns = rec.netns or M.netns_path(st, cfg),
    addresses = addresses(rec.result),
    ports = ports,
    phase = rec.phase,
  }
end

return M
