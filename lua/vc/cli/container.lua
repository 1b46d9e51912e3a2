--- vc container ...: the container commands.
local args = require "vc.cli.args"
local lineedit = require "vc.core.lineedit"
local cli = require "vc.cli"
local failure = require "vc.failure"
local format = require "vc.cli.format"
local pod = require "vc.pod"
local policies = require "vc.cli.policy"

local M = {}

local SPECS = {
  create = {
    usage = "vc container create POD [--id CID] --rootfs DIR [--env K=V]... [--cwd DIR] [-i] [-t] "
            .. "-- ARGV...",
    positional = { "POD" }, rest = "ARGV", rest_required = true,
    options = {
      { "--id", arg = "CID", help = "the container's ID (default: a new UUID)" },
      { "--rootfs", arg = "DIR", help = "its root file system" },
      { "--env", arg = "K=V", many = true, help = "an environment variable" },
      { "--cwd", arg = "DIR", help = "its working folder (default /)" },
      { "--user", arg = "UID[:GID]", help = "the user it runs as (default root)" },
      { "--interactive", short = "-i", help = "keep its stdin open for vc container attach" },
      { "--tty", short = "-t", help = "give it a terminal (vc container attach connects to it)" },
    },
    summary = "Add a container to a pod (created in its VM if the VM is up).",
  },
  start = { usage = "vc container start POD CID", positional = { "POD", "CID" },
            summary = "Start a container's process." },
  stop = { usage = "vc container stop POD CID", positional = { "POD", "CID" },
           summary = "Stop a container: SIGTERM, then SIGKILL after its stop_timeout." },
  delete = { usage = "vc container delete POD CID", positional = { "POD", "CID" },
             summary = "Delete a ready or stopped container." },
  status = { usage = "vc container status [--json] POD CID", positional = { "POD", "CID" },
             options = { { "--json", help = "print JSON" } }, summary = "Show a container." },
  kill = { usage = "vc container kill [--all] POD CID [SIGNAL]", positional = { "POD", "CID" },
           optional = { "SIGNAL" },
           options = { { "--all", short = "-a",
                         help = "to every process of the container, not only its first" } },
           summary = "Send a signal (name or number, default TERM)." },
  pause = { usage = "vc container pause POD CID", positional = { "POD", "CID" },
            summary = "Freeze a container's processes (its pod runs on)." },
  resume = { usage = "vc container resume POD CID", positional = { "POD", "CID" },
             summary = "Thaw a paused container." },
  update = { usage = "vc container update [--memory MIB] [--pids N] [--cpu PCT] POD CID",
             positional = { "POD", "CID" },
             options = { { "--memory", arg = "MIB", help = "its memory limit" },
                         { "--pids", arg = "N", help = "at most N processes" },
                         { "--cpu", arg = "PCT", help = "its CPU quota, in % of one CPU" } },
             summary = "Change a container's limits (at once if it runs, and for its next"
                       .. " start)." },
  exec = { usage = "vc container exec [-i] [-t] POD CID -- ARGV...", positional = { "POD", "CID" },
           rest = "ARGV", rest_required = true,
           options = { { "--interactive", short = "-i",
                         help = "forward stdin to the process (else it reads /dev/null)" },
                       { "--tty", short = "-t",
                         help = "give it a terminal, vc's own (raw meanwhile): -it for a shell" } },
           summary = "Run a process in a running container; exits with its exit code." },
  attach = { usage = "vc container attach POD CID", positional = { "POD", "CID" },
             summary = "Connect to a container's first process (its terminal with --tty); "
                       .. "Ctrl-P Ctrl-Q detaches." },
  wait = { usage = "vc container wait POD CID", positional = { "POD", "CID" },
           summary = "Wait for a container's process to exit (restarting it as its "
                     .. "restart policy says); exits with its exit code." },
  logs = { usage = "vc container logs [-f] [--tail N] [--timestamps] POD CID",
           positional = { "POD", "CID" },
           options = { { "--follow", short = "-f",
                         help = "then print what it writes, until it exits" },
                       { "--tail", arg = "N", help = "only the last N lines" },
                       { "--timestamps", help = "each line after the time it was written" } },
           summary = "Print what the container wrote (the newest 64 KiB of each stream)." },
  ps = { usage = "vc container ps [--json] POD CID", positional = { "POD", "CID" },
         options = { { "--json", help = "print JSON" } },
         summary = "List the container's processes." },
  stats = { usage = "vc container stats [--json] POD CID", positional = { "POD", "CID" },
            options = { { "--json", help = "print JSON" } },
            summary = "Show the container's CPU time, memory and process count." },
}

local ORDER = {
  "create", "start", "stop", "kill", "pause", "resume", "update", "exec", "attach", "wait",
  "logs", "ps", "stats", "delete", "status",
}
for _, spec in pairs(SPECS) do policies.add_option(spec) end

local function help()
  local lines = { "usage: vc container COMMAND [ARGS...]", "", "commands:" }
  for _, name in ipairs(ORDER) do
    lines[#lines + 1] = string.format("  %-8s %s", name, SPECS[name].summary)
  end
  return table.concat(lines, "\n") .. "\n"
end

local function container(o)
  local p = cli.check(pod.fetch(o.pod))
  return cli.check(p:container(o.cid))
end

local ACTIONS = {}

function ACTIONS.create(o)
  if not o.rootfs then args.usage_error("missing --rootfs DIR (usage: %s)", SPECS.create.usage) end
  local p = cli.check(pod.fetch(o.pod))
  local c = cli.check(p:add_container {
    id = o.id or require("vc.core.uuid").generate(),
    rootfs = o.rootfs, argv = o.rest, env = o.env, cwd = o.cwd, user = o.user,
    terminal = o.tty or nil, stdin = o.interactive or nil,
  })
  io.stdout:write(c.id, "\n")
  return 0
end

for _, name in ipairs { "start", "stop", "delete" } do
  ACTIONS[name] = function(o)
    local c = container(o)
    cli.check(c[name](c))
    return 0
  end
end

function ACTIONS.pause(o) cli.check(container(o):pause()) end
function ACTIONS.resume(o) cli.check(container(o):resume()) end

function ACTIONS.update(o)
  local res = {}
  for key, opt in pairs { memory_mib = "memory", pids = "pids", cpu_quota_pct = "cpu" } do
    if o[opt] then
      res[key] = math.tointeger(tonumber(o[opt]))
      if not res[key] then failure.raise("--%s: expected a whole number, got %q", opt, o[opt]) end
    end
  end
  if next(res) == nil then failure.raise("vc container update: give --memory, --pids or --cpu") end
  cli.check(container(o):update(res))
end

function ACTIONS.kill(o)
  cli.check(container(o):kill(o.signal or "TERM", { all = o.all }))
  return 0
end

-- A terminal for -t: vc's stdin (with -i) or stdout must be one.
local function need_terminal(o)
  local fd = o.interactive and 0 or 1
  if not lineedit.isatty(fd) then
    failure.raise("%s: the %s is not a terminal (-t needs one; drop -t to use pipes)",
                  o.interactive and "-it" or "-t", fd == 0 and "input" or "output")
  end
end

function ACTIONS.exec(o)
  if o.tty then need_terminal(o) end
  return cli.check(container(o):exec(o.rest, { output = "inherit",
                                               stdin = o.interactive or nil,
                                               tty = o.tty or nil }))
end

function ACTIONS.attach(o)
  local c = container(o)
  local code = cli.check(c:attach())
  if code == false then
    io.stderr:write("\r\ndetached from ", o.cid, " (it runs on)\n")
    return 0
  end
  return code
end

function ACTIONS.wait(o)
  local code = cli.check(container(o):wait())
  io.stdout:write(tostring(code), "\n")
  return code
end

local function stamp(t)
  return os.date("!%Y-%m-%dT%H:%M:%S", math.floor(t))
    .. string.format(".%03dZ ", math.floor(t * 1000) % 1000)
end

-- Chunks as lines (a line belongs to the chunk where it starts), to the
-- right stream, with the time it was written when asked.
local function printer(timestamps)
  local open = { stdout = false, stderr = false }  -- a line was begun
  return function(stream, t, data)
    local f = stream == "stderr" and io.stderr or io.stdout
    if timestamps then
      data = data:gsub("([^\n]*\n?)", function(line)
        if line == "" then return "" end
        local out = (open[stream] and "" or stamp(t)) .. line
        open[stream] = line:sub(-1) ~= "\n"
        return out
      end)
    end
    f:write(data)
    f:flush()
  end
end

function ACTIONS.logs(o)
  local tail = o.tail and math.tointeger(tonumber(o.tail))
  if o.tail and (not tail or tail < 0) then
    args.usage_error("--tail: expected a number of lines >= 0, got %q", o.tail)
  end
  local out = printer(o.timestamps)
  -- With --tail, what was written before is held until its end (the
  -- first live chunk, or the end of the reply), then its last N lines go.
  local past, flushed = {}, not tail
  local function flush()
    local lines = {}
    for _, ch in ipairs(past) do
      for line in ch[3]:gmatch("[^\n]*\n?") do
        if line ~= "" then lines[#lines + 1] = { ch[1], ch[2], line } end
      end
    end
    for n = math.max(1, #lines - tail + 1), #lines do out(table.unpack(lines[n])) end
    flushed = true
  end
  cli.check(container(o):logs { follow = o.follow, each = function(stream, t, data, live)
    if not flushed and not live then
      past[#past + 1] = { stream, t, data }
      return
    end
    if not flushed then flush() end
    out(stream, t, data)
  end })
  if not flushed then flush() end
  return 0
end

function ACTIONS.ps(o)
  local list = cli.check(container(o):processes())
  if o.json then
    format.json_list(io.stdout, list)
    return 0
  end
  local rows = {}
  for _, p in ipairs(list) do rows[#rows + 1] = { p.pid, p.cmd } end
  format.table(io.stdout, { "PID", "COMMAND" }, rows)
  return 0
end

local function mib(bytes)
  return string.format("%.1f MiB", bytes / 1048576)
end

function ACTIONS.stats(o)
  local s = cli.check(container(o):stats())
  if o.json then
    format.json(io.stdout, s)
    return 0
  end
  format.table(io.stdout, { "CPU", "MEMORY", "LIMIT", "PIDS" }, { {
    string.format("%.3fs", s.cpu_ns / 1e9), mib(s.memory_bytes),
    s.memory_limit_bytes > 0 and mib(s.memory_limit_bytes) or "-", s.pids,
  } })
  return 0
end

function ACTIONS.status(o)
  local s = cli.check(container(o):status())
  if o.json then
    format.json(io.stdout, s)
  else
    local code = s.exit_code and (tostring(s.exit_code) .. (s.oom and " (OOM)" or "")) or "-"
    format.table(io.stdout, { "CONTAINER ID", "POD ID", "STATE", "EXIT CODE" },
                 { { s.id, s.pod, s.state, code } })
    local sec = s.security
    if sec then
      io.stdout:write("capabilities: ", #sec.capabilities > 0
                        and table.concat(sec.capabilities, " ") or "none", "\n",
                      "seccomp: ", sec.seccomp, "\n",
                      "no_new_privileges: ", tostring(sec.no_new_privileges), "\n")
    end
  end
  return 0
end

function M.main(argv, first)
  local name = argv[first]
  if name == "-h" or name == "--help" then
    io.stdout:write(help())
    return 0
  end
  if name == nil then args.usage_error("missing container command (try 'vc container --help')") end
  local spec = SPECS[name]
  if not spec then
    args.usage_error("unknown container command %q (try 'vc container --help')", name)
  end
  local o = args.parse(spec, argv, first + 1)
  policies.apply(o)
  return ACTIONS[name](o)
end

return M
