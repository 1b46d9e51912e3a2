--- vc pod ...: the pod commands.
local args = require "vc.cli.args"
local cli = require "vc.cli"
local config = require "vc.config"
local format = require "vc.cli.format"
local pod = require "vc.pod"
local policies = require "vc.cli.policy"
local storage = require "vc.core.storage"

local M = {}

local CREATE_OPTIONS = {
  { "--id", arg = "ID", help = "the pod's ID (default: a new UUID)" },
  { "--hypervisor", arg = "NAME", help = "the backend (default qemu)" },
  { "--cpus", arg = "N", help = "vCPUs" },
  { "--memory", arg = "MIB", help = "guest memory in MiB" },
  { "--volume", arg = "TAG:HOSTPATH[:ro]", many = true, help = "share a host folder" },
  { "--network", arg = "NAME",
    help = "join a CNI network (vc: vc's bridge) or none (the default)" },
  { "--publish", arg = "[IP:]HOSTPORT:PORT[/PROTO]", many = true,
    help = "map a host port to the pod's port (needs --network)" },
  { "--dns", arg = "IP", many = true, help = "a name server for /etc/resolv.conf" },
  { "--dns-search", arg = "DOMAIN", many = true, help = "a search domain for /etc/resolv.conf" },
  { "--hostname", arg = "NAME", help = "the pod's hostname (default: its ID)" },
  { "--config", arg = "FILE",
    help = "a pod config, .lua or .json; options override it" },
}

local SPECS = {
  create = { usage = "vc pod create [OPTIONS]", options = CREATE_OPTIONS,
             summary = "Create a pod: store it, boot its VM, create its containers." },
  run = { usage = "vc pod run [OPTIONS]", options = CREATE_OPTIONS,
          summary = "Create a pod and start it." },
  start = { usage = "vc pod start ID", positional = { "ID" },
            summary = "Start a pod's containers." },
  stop = { usage = "vc pod stop ID", positional = { "ID" },
           summary = "Stop a pod's containers and its VM." },
  pause = { usage = "vc pod pause ID", positional = { "ID" }, summary = "Freeze a running pod." },
  resume = { usage = "vc pod resume ID", positional = { "ID" }, summary = "Thaw a paused pod." },
  delete = { usage = "vc pod delete [--force] ID", positional = { "ID" },
             options = { { "--force", help = "stop a running pod first; ignore backend errors" } },
             summary = "Delete a pod: its VM and all its records." },
  status = { usage = "vc pod status [--json] ID", positional = { "ID" },
             options = { { "--json", help = "print JSON" } },
             summary = "Show a pod and its containers." },
  list = { usage = "vc pod list [--all] [--json]",
           options = { { "--json", help = "print JSON" },
                       { "--all", help = "also pods whose creation is not complete" } },
           summary = "List every pod (never waits for a busy pod)." },
}

local ORDER = { "create", "run", "start", "stop", "pause", "resume", "delete", "status", "list" }
for _, spec in pairs(SPECS) do policies.add_option(spec) end

local function help()
  local lines = { "usage: vc pod COMMAND [ARGS...]", "", "commands:" }
  for _, name in ipairs(ORDER) do
    lines[#lines + 1] = string.format("  %-8s %s", name, SPECS[name].summary)
  end
  return table.concat(lines, "\n") .. "\n"
end

local function parse_volume(s)
  local tag, path, mode = s:match("^([^:]+):([^:]+):?(.*)$")
  if not tag or (mode ~= "" and mode ~= "ro" and mode ~= "rw") then
    args.usage_error("--volume %q: expected TAG:HOSTPATH[:ro]", s)
  end
  return { tag = tag, host_path = cli.check(storage.abspath(path)), read_only = mode == "ro" }
end

local function number(s)
  return math.tointeger(tonumber(s)) or s
end

local function parse_publish(s)
  local rest, proto = s:match("^(.-)/(%a+)$")
  rest = rest or s
  local ip, host, ctr = rest:match("^(%d+%.%d+%.%d+%.%d+):(%d+):(%d+)$")
  if not ip then host, ctr = rest:match("^(%d+):(%d+)$") end
  if not host then
    args.usage_error("--publish %q: expected [IP:]HOSTPORT:PORT[/tcp|udp]", s)
  end
  return { host = number(host), container = number(ctr), protocol = proto, host_ip = ip }
end

-- The network options over the config's network.
local function network_options(cfg, o)
  if not (o.network or #o.publish > 0 or #o.dns > 0 or #o.dns_search > 0 or o.hostname) then
    return
  end
  if o.network == "none" then
    if #o.publish > 0 or #o.dns > 0 or #o.dns_search > 0 or o.hostname then
      args.usage_error("--network none: --publish, --dns and --hostname need a network")
    end
    cfg.network = "none"
    return
  end
  local net = type(cfg.network) == "table" and cfg.network or {}
  if o.network then net.cni, net.netns = o.network, nil end
  if not net.cni and not net.netns then
    args.usage_error("--publish, --dns and --hostname need --network NAME")
  end
  if #o.publish > 0 then
    net.ports = type(net.ports) == "table" and net.ports or {}
    for _, p in ipairs(o.publish) do table.insert(net.ports, parse_publish(p)) end
  end
  if #o.dns > 0 or #o.dns_search > 0 then
    net.dns = type(net.dns) == "table" and net.dns or {}
    if #o.dns > 0 then net.dns.servers = o.dns end
    if #o.dns_search > 0 then net.dns.search = o.dns_search end
  end
  if o.hostname then net.hostname = o.hostname end
  cfg.network = net
end

-- The config from --config with the options laid over it.
local function build_config(o)
  local cfg = {}
  if o.config then
    cfg = cli.check(config.load_file(o.config))
  end
  if o.id then cfg.id = o.id end
  if o.hypervisor then cfg.hypervisor = o.hypervisor end
  if o.cpus or o.memory then
    cfg.vm = type(cfg.vm) == "table" and cfg.vm or {}
    if o.cpus then cfg.vm.cpus = number(o.cpus) end
    if o.memory then cfg.vm.memory_mib = number(o.memory) end
  end
  if #o.volume > 0 then
    cfg.volumes = type(cfg.volumes) == "table" and cfg.volumes or {}
    for _, v in ipairs(o.volume) do table.insert(cfg.volumes, parse_volume(v)) end
  end
  network_options(cfg, o)
  return cfg
end

local function fetch(id)
  return cli.check(pod.fetch(id))
end

local function print_status(s, o)
  if o.json then
    format.json(io.stdout, s, { "containers" })
    return
  end
  format.table(io.stdout, { "POD ID", "STATE", "HYPERVISOR", "ACCEL", "CONTAINERS", "CREATED" },
               { { s.id, s.state, s.hypervisor, s.accel or "-", #s.containers, s.created or "-" } })
  local net = s.network
  if net then
    io.stdout:write("\n")
    format.table(io.stdout, { "NETWORK", "ADDRESSES", "PORTS", "NETNS" },
                 { { net.network or "-", #net.addresses > 0 and table.concat(net.addresses, ",")
                     or "-", #net.ports > 0 and table.concat(net.ports, ",") or "-",
                     net.netns or "-" } })
  end
  if #s.containers > 0 then
    io.stdout:write("\n")
    local rows = {}
    for _, c in ipairs(s.containers) do
      rows[#rows + 1] = { c.id, c.state, c.exit_code or "-" }
    end
    format.table(io.stdout, { "CONTAINER ID", "STATE", "EXIT CODE" }, rows)
  end
end

local ACTIONS = {}

function ACTIONS.create(o)
  local p = cli.check(pod.create(build_config(o)))
  io.stdout:write(p.id, "\n")
end

function ACTIONS.run(o)
  local p = cli.check(pod.run(build_config(o)))
  io.stdout:write(p.id, "\n")
end

for _, name in ipairs { "start", "stop", "pause", "resume" } do
  ACTIONS[name] = function(o)
    local p = fetch(o.id)
    cli.check(p[name](p))
  end
end

function ACTIONS.delete(o)
  local p = fetch(o.id)
  cli.check(p:delete { force = o.force })
end

function ACTIONS.status(o)
  print_status(cli.check(fetch(o.id):status()), o)
end

function ACTIONS.list(o)
  local rows, all = {}, {}
  for _, s in ipairs(pod.list_status { all = o.all }) do
    if s.error then s = { id = s.id, state = "unknown", hypervisor = "?", containers = {} } end
    all[#all + 1] = s
    rows[#rows + 1] = { s.id, s.state, s.hypervisor, #s.containers, s.created or "-" }
  end
  if o.json then
    format.json_list(io.stdout, all, { "containers" })
  else
    format.table(io.stdout, { "POD ID", "STATE", "HYPERVISOR", "CONTAINERS", "CREATED" }, rows)
  end
end

function M.main(argv, first)
  local name = argv[first]
  if name == "-h" or name == "--help" then
    io.stdout:write(help())
    return 0
  end
  if name == nil then args.usage_error("missing pod command (try 'vc pod --help')") end
  local spec = SPECS[name]
  if not spec then args.usage_error("unknown pod command %q (try 'vc pod --help')", name) end
  local o = args.parse(spec, argv, first + 1)
  policies.apply(o)
  ACTIONS[name](o)
  return 0
end

return M
