--- vc-runtime: the OCI runtime command line (runc's), over vc's store and
-- lifecycle, for engines (podman's conmon, containerd's shim):
--
--   vc-runtime [--root DIR] [--log FILE] [--log-format json|text] [--debug]
--              [--systemd-cgroup] [--rootless V] COMMAND [ARGS...]
--   create [--bundle DIR] [--pid-file FILE] [--console-socket S]
--          [--no-pivot] [--no-new-keyring] [--preserve-fds N] ID
--   start ID | state ID | kill ID [SIGNAL] [--all] | delete [--force] ID
--   exec [--process F] [--detach] [--pid-file P] ID [CMD...] | ps [--format json] ID
--   pause ID | resume ID | features | --version
--
-- A bundle is a vc pod of one container, both called ID (vc.oci). The pid
-- file names a helper (`vc-runtime _monitor ID`, started by create with
-- create's own stdin, stdout and stderr): attached to the container before
-- it starts, it relays those to the container's process and exits with
-- the process's status, as the engines expect of the process they wait for.
local build = require "vc.core.build"
local cjson = require "cjson"
local oci = require "vc.oci"
local process = require "vc.core.process"
local runtime = require "vc.runtime"
local storage = require "vc.core.storage"

local M = {}

M.DEFAULT_ROOT = "/run/vc-runtime"
local OCI_VERSION = "1.0.2"

local Error = {}
Error.__index = Error
local function fail(fmt, ...)
  error(setmetatable({ msg = fmt:format(...) }, Error), 0)
end
local function check(v, msg, ...)
  if v == nil then fail("%s", tostring(msg)) end
  return v, msg, ...
end

local function now_rfc3339()
  local t = process.time()
  return os.date("!%Y-%m-%dT%H:%M:%S", math.floor(t)) .. (".%09dZ"):format(
    math.floor((t % 1) * 1e9))
end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- Write path whole, then rename it into place.
local function write(path, text)
  local tmp = path .. ".tmp"
  local f = check(io.open(tmp, "wb"))
  f:write(text)
  f:close()
  check(os.rename(tmp, path))
end

-- Global options, then the command and its words.
local function globals(argv)
  local g, i = { root = M.DEFAULT_ROOT, log_format = "text" }, 1
  local takes = { ["--root"] = "root", ["--log"] = "log", ["--log-format"] = "log_format",
                  ["--rootless"] = "rootless", ["--criu"] = "criu" }
  while i <= #argv do
    local a = argv[i]
    local name, inline = a:match("^(%-%-[%w-]+)=(.*)$")
    name = name or a
    if takes[name] then
      local v = inline
      if not v then i = i + 1; v = argv[i] end
      if v == nil then fail("flag needs an argument: %s", name) end
      g[takes[name]] = v
    elseif a == "--debug" or a == "--systemd-cgroup" then
      g[a:sub(3):gsub("-", "_")] = true
    elseif a == "--version" or a == "-v" then
      g.version = true
    elseif a == "--help" or a == "-h" then
      g.help = true
    elseif a:sub(1, 1) == "-" then
      fail("flag provided but not defined: %s", a)
    else
      break
    end
    i = i + 1
  end
  return g, i
end

-- A command's flags (spec: name -> "value" | "bool", aliases) and its
-- positional words.
local function flags(argv, i, spec)
  local o, pos = {}, {}
  while i <= #argv do
    local a = argv[i]
    local name, inline = a:match("^(%-%-?[%w-]+)=(.*)$")
    name = name or a
    local key = spec[name]
    if key then
      local k, kind = key[1], key[2]
      if kind == "value" then
        local v = inline
        if not v then i = i + 1; v = argv[i] end
        if v == nil then fail("flag needs an argument: %s", name) end
        o[k] = v
      else
        o[k] = true
      end
    elseif a:sub(1, 1) == "-" and a ~= "-" then
      fail("flag provided but not defined: %s", a)
    else
      pos[#pos + 1] = a
    end
    i = i + 1
  end
  return o, pos
end

local function need_id(pos, cmd)
  local id = pos[1]
  if not id then fail('"%s" requires a container ID', cmd) end
  local ok, why = storage.valid_id(id, "pod")
  if not ok then fail("invalid container ID %q: %s", id, why) end
  return id
end

-- The runtime's own record of a container: bundle, created, pid.
local function oci_dir() return select(2, runtime.dirs()) .. "/oci" end
local function record_path(id) return oci_dir() .. "/" .. id .. ".json" end
local function ready_path(id) return oci_dir() .. "/" .. id .. ".ready" end
local function record(id)
  local text = read(record_path(id))
  return text and cjson.decode(text) or nil
end

local function vc() return require "vc" end

-- The pod of container id: its own, or its sandbox's (the record says).
local function pod_id(id)
  local rec = record(id)
  return rec and rec.pod or id
end

local function fetch(id)
  local p = vc().pod.fetch(pod_id(id))
  if not p or not p:container(id) then fail("container does not exist") end
  return p
end

-- runc's status of container id: created, running, paused, stopped.
local function status_of(id)
  local s = check(fetch(id):status())
  local c
  for _, x in ipairs(s.containers) do if x.id == id then c = x end end
  local st = c and c.state or "stopped"
  if s.state == "paused" then return "paused" end
  if st == "ready" then return "created" end
  if st == "running" then return "running" end
  if st == "paused" then return "paused" end
  return "stopped"
end

-- Whether pid is this container's helper (and alive).
local function is_monitor(pid, id)
  local cmd = pid and read("/proc/" .. math.tointeger(pid) .. "/cmdline")
  if not cmd then return false end
  local stat = read("/proc/" .. math.tointeger(pid) .. "/stat") or ""
  if stat:match("^%d+ %b() Z") then return false end
  return cmd:find("\0_monitor\0" .. id .. "\0", 1, true) ~= nil
end

-- The records of the containers in pod pid other than its sandbox's.
local function members(pid)
  local out = {}
  local ls = io.popen("ls -1 '" .. oci_dir():gsub("'", "'\\''") .. "' 2>/dev/null")
  for name in (ls and ls:lines() or function() end) do
    local id = name:match("^(.+)%.json$")
    local rec = id and not id:find(".exec.", 1, true) and record(id)
    if rec and rec.pod == pid and id ~= pid then out[id] = rec end
  end
  if ls then ls:close() end
  return out
end

-- The container whose helper is pid (engines name its namespaces
-- /proc/PID/ns/...), or nil.
local function pid_owner(pid)
  local cmd = read("/proc/" .. math.tointeger(pid) .. "/cmdline") or ""
  local id = cmd:match("%z_monitor%z([^%z]+)")
  return id and record(id) and id or nil
end

local COMMANDS = {}

function COMMANDS.create(argv, i)
  local o, pos = flags(argv, i, {
    ["--bundle"] = { "bundle", "value" }, ["-b"] = { "bundle", "value" },
    ["--pid-file"] = { "pid_file", "value" }, ["--console-socket"] = { "console", "value" },
    ["--no-pivot"] = { "no_pivot" }, ["--no-new-keyring"] = { "no_keyring" },
    ["--preserve-fds"] = { "preserve", "value" },
  })
  local id = need_id(pos, "create")
  if o.preserve and o.preserve ~= "0" then
    fail("--preserve-fds %s: not supported (a VM cannot take the host's descriptors)", o.preserve)
  end
  local bundle = check(storage.abspath(o.bundle or ".")) -- no trailing slash
  local spec = check(oci.load(bundle))
  if spec.process.terminal and not o.console then
    fail("cannot allocate tty if vc-runtime will detach without setting console socket")
  end
  if o.console and not spec.process.terminal then
    fail("cannot use console socket if vc-runtime will not allocate tty")
  end
  if record(id) or vc().pod.fetch(id) then fail("container with id exists: %s", id) end
  os.execute("mkdir -p '" .. oci_dir():gsub("'", "'\\''") .. "'")
  -- a sandbox is a pod of its own; another container joins its sandbox's
  local sandbox = oci.sandbox_of(id, spec, pid_owner)
  local p
  if sandbox then
    if not record(sandbox) then fail("container %s: its sandbox %s does not exist", id, sandbox) end
    p = fetch(sandbox)
    check(p:add_container(oci.container_config(id, bundle, spec, sandbox)))
  else
    p = check(vc().pod.create(oci.pod_config(id, bundle, spec)))
  end
  local ok, err = pcall(function()
    os.remove(ready_path(id))
    local pid = check(process.spawn {
      path = "/proc/self/exe",
      args = { "vc-runtime", "--root", M.root, "_monitor", id, p.id },
      env = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm" },
      console_socket = o.console,
    })
    -- ready once attached: the container's first byte of output is its
    for _ = 1, 3000 do
      if read(ready_path(id)) then break end
      if not is_monitor(pid, id) then fail("container %s: its helper exited at start", id) end
      process.sleep(0.01)
    end
    if not read(ready_path(id)) then fail("container %s: its helper did not attach", id) end
    write(record_path(id), cjson.encode { bundle = bundle, created = now_rfc3339(),
                                          pid = pid, annotations = spec.annotations,
                                          pod = p.id })
    if o.pid_file then write(o.pid_file, tostring(pid)) end
  end)
  if not ok then
    if sandbox then
      local c = p:container(id)
      if c then c:delete() end
    else
      p:delete { force = true }
    end
    os.remove(record_path(id))
    os.remove(ready_path(id))
    error(err, 0)
  end
  return 0
end

function COMMANDS._monitor(argv, i)
  local _, pos = flags(argv, i, {})
  local id = need_id(pos, "_monitor")
  local p = vc().pod.fetch(pos[2] or id)
  local c = p and p:container(id)
  if not c then return 255 end
  local code, err = c:attach { created = true, detach_keys = false, ready = ready_path(id) }
  if not code then
    io.stderr:write("vc-runtime: ", tostring(err), "\n")
    return 255
  end
  return code
end

function COMMANDS.start(argv, i)
  local _, pos = flags(argv, i, {})
  local id = need_id(pos, "start")
  local st = status_of(id)
  if st ~= "created" then fail("cannot start a container that has %s",
                               st == "stopped" and "stopped" or "already started") end
  local p = fetch(id)
  if p.id == id then check(p:start()) else check(p:container(id):start()) end
  return 0
end

function COMMANDS.state(argv, i)
  local _, pos = flags(argv, i, {})
  local id = need_id(pos, "state")
  local st = status_of(id)
  local rec = record(id) or {}
  local pid = rec.pid and is_monitor(rec.pid, id) and math.tointeger(rec.pid) or 0
  if st == "stopped" then pid = 0 end
  local out = { ociVersion = OCI_VERSION, id = id, status = st, pid = pid,
                bundle = rec.bundle or "", created = rec.created or "", owner = "" }
  if type(rec.annotations) == "table" and next(rec.annotations) then
    out.annotations = rec.annotations
  end
  io.stdout:write(cjson.encode(out), "\n")
  return 0
end

function COMMANDS.kill(argv, i)
  local o, pos = flags(argv, i, { ["--all"] = { "all" }, ["-a"] = { "all" } })
  local id = need_id(pos, "kill")
  local sig = pos[2] or "TERM"
  sig = sig:gsub("^SIG", "")
  local st = status_of(id)
  if st == "stopped" then fail("container not running") end
  local p = fetch(id)
  if st == "created" then
    -- its process never ran: it ends with the pod's stop, or its own
    if p.id == id then check(p:stop()) else check(p:container(id):delete()) end
    return 0
  end
  check(p:container(id):kill(tonumber(sig) or sig, { all = o.all }))
  return 0
end

function COMMANDS.delete(argv, i)
  local o, pos = flags(argv, i, { ["--force"] = { "force" }, ["-f"] = { "force" } })
  local id = need_id(pos, "delete")
  local rec = record(id)
  local p = vc().pod.fetch(pod_id(id))
  local c = p and p:container(id)
  if not c then
    os.remove(record_path(id))
    if o.force then return 0 end
    fail("container does not exist")
  end
  local st = status_of(id)
  if (st == "running" or st == "paused") and not o.force then
    fail("cannot delete container %s that is not stopped: %s", id, st)
  end
  local gone = { [id] = rec or {} }
  if p.id == id then
    -- the sandbox: its VM goes, with every container still in it
    for mid, mrec in pairs(members(id)) do gone[mid] = mrec end
    check(p:delete { force = true })
  else
    if st == "running" or st == "paused" then
      c:kill("KILL")
      c:wait(10)
    end
    check(c:delete())
  end
  for gid, grec in pairs(gone) do
    if is_monitor(grec.pid, gid) then
      -- (a container that never started: its helper waits on it still)
      process.sleep(0.05)
      if is_monitor(grec.pid, gid) then os.execute("kill -9 " .. math.tointeger(grec.pid)) end
    end
    os.remove(record_path(gid))
    os.remove(ready_path(gid))
  end
  return 0
end

-- An OCI process (exec's --process file, or its words) as exec options.
local function exec_process(o, pos, id)
  local proc
  if o.process then
    local text = read(o.process)
    if not text then fail("open %s: no such file or directory", o.process) end
    proc = cjson.decode(text)
    if type(proc) ~= "table" or type(proc.args) ~= "table" or #proc.args == 0 then
      fail("%s: args must be a non-empty list", o.process)
    end
  else
    local args = table.move(pos, 2, #pos, 1, {})
    if #args == 0 then fail('"exec" requires a command (or --process FILE)') end
    proc = { args = args, env = o.env, cwd = o.cwd }
  end
  local tty = proc.terminal == true or o.tty == true
  if tty and o.detach and not o.console then
    fail("cannot allocate tty if vc-runtime will detach without setting console socket")
  end
  local user, groups = oci.user(proc.user)
  local st = status_of(id)
  if st ~= "running" then fail("cannot exec in a stopped container") end
  return proc.args, { env = type(proc.env) == "table" and proc.env or nil, cwd = proc.cwd,
                      user = user, groups = groups, stdin = true, output = "inherit",
                      tty = tty or nil }
end

local EXEC_FLAGS = {
  ["--process"] = { "process", "value" }, ["-p"] = { "process", "value" },
  ["--detach"] = { "detach" }, ["-d"] = { "detach" },
  ["--pid-file"] = { "pid_file", "value" }, ["--console-socket"] = { "console", "value" },
  ["--tty"] = { "tty" }, ["-t"] = { "tty" }, ["--cwd"] = { "cwd", "value" },
  ["--env"] = { "env1", "value" }, ["-e"] = { "env1", "value" },
  ["--user"] = { "user", "value" }, ["-u"] = { "user", "value" },
  ["--no-new-privs"] = { "nnp" }, ["--preserve-fds"] = { "preserve", "value" },
}

--- exec: the process in the running container, with this command's
-- stdio; --detach leaves a helper (the pid file's) doing that instead.
function COMMANDS.exec(argv, i)
  local o, pos = flags(argv, i, EXEC_FLAGS)
  local id = need_id(pos, "exec")
  if o.env1 then o.env = { o.env1 } end
  local args, opts = exec_process(o, pos, id)
  if o.detach then
    local file = oci_dir() .. "/" .. id .. ".exec." .. process.time() .. ".json"
    write(file, cjson.encode { args = args, env = opts.env, cwd = opts.cwd, user = opts.user,
                               groups = opts.groups, tty = opts.tty })
    local pid = check(process.spawn {
      path = "/proc/self/exe",
      args = { "vc-runtime", "--root", M.root, "_exec", id, file },
      env = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm" },
      console_socket = opts.tty and o.console or nil,
    })
    if o.pid_file then write(o.pid_file, tostring(pid)) end
    return 0
  end
  return check(fetch(id):container(id):exec(args, opts))
end

function COMMANDS._exec(argv, i)
  local _, pos = flags(argv, i, {})
  local id = need_id(pos, "_exec")
  local text = read(pos[2] or "")
  os.remove(pos[2] or "")
  local proc = text and cjson.decode(text)
  if not proc then return 255 end
  local code, err = fetch(id):container(id):exec(proc.args, {
    env = proc.env, cwd = proc.cwd, user = proc.user, groups = proc.groups, stdin = true,
    output = "inherit", tty = proc.tty })
  if not code then
    io.stderr:write("vc-runtime: ", tostring(err), "\n")
    return 255
  end
  return code
end

for _, op in ipairs { "pause", "resume" } do
  COMMANDS[op] = function(argv, i)
    local _, pos = flags(argv, i, {})
    local id = need_id(pos, op)
    local st = status_of(id)
    if op == "pause" and st ~= "running" then fail("container not running") end
    if op == "resume" and st ~= "paused" then fail("container not paused") end
    -- the container's processes (its freezer cgroup), as runc: a pod's
    -- containers pause and resume one by one, in any order
    local c = fetch(id):container(id)
    check(c[op](c))
    return 0
  end
end

--- update: new limits, from an OCI linux.resources object (--resources
-- FILE, or - for stdin) and runc's flags; what vc does not limit (block
-- I/O, hugetlb, cpusets, shares) is refused rather than dropped.
function COMMANDS.update(argv, i)
  local o, pos = flags(argv, i, {
    ["--resources"] = { "resources", "value" }, ["-r"] = { "resources", "value" },
    ["--memory"] = { "memory", "value" }, ["-m"] = { "memory", "value" },
    ["--pids-limit"] = { "pids", "value" }, ["--cpu-quota"] = { "quota", "value" },
    ["--cpu-period"] = { "period", "value" },
  })
  local id = need_id(pos, "update")
  local res = {}
  if o.resources then
    local text = o.resources == "-" and io.stdin:read("a") or read(o.resources)
    if not text then fail("open %s: no such file or directory", o.resources) end
    local ok, v = pcall(cjson.decode, text)
    if not ok or type(v) ~= "table" then fail("%s: invalid JSON", o.resources) end
    res = v
  end
  local out = {}
  local mem = tonumber(o.memory) or (type(res.memory) == "table" and tonumber(res.memory.limit))
  if mem and mem > 0 then out.memory_mib = math.max(4, math.ceil(mem / 1048576)) end
  local pids = tonumber(o.pids) or (type(res.pids) == "table" and tonumber(res.pids.limit))
  if pids and pids > 0 then out.pids = math.tointeger(pids) end
  local cpu = type(res.cpu) == "table" and res.cpu or {}
  local quota, period = tonumber(o.quota) or tonumber(cpu.quota),
                        tonumber(o.period) or tonumber(cpu.period) or 100000
  if quota and quota > 0 then out.cpu_quota_pct = math.max(1, math.ceil(quota * 100 / period)) end
  for _, key in ipairs { "blockIO", "hugepageLimits", "network", "rdma" } do
    if type(res[key]) == "table" and next(res[key]) then
      fail("update: %s limits are not supported by vc-runtime", key)
    end
  end
  if next(out) == nil then fail("update: no limit vc-runtime can set was given") end
  if status_of(id) == "stopped" then fail("container not running") end
  check(fetch(id):container(id):update(out))
  return 0
end

--- ps: the container's processes (--format json: their pids, as runc).
function COMMANDS.ps(argv, i)
  local o, pos = flags(argv, i, { ["--format"] = { "format", "value" },
                                  ["-f"] = { "format", "value" } })
  local id = need_id(pos, "ps")
  if status_of(id) ~= "running" then fail("container not running") end
  local list = check(fetch(id):container(id):processes())
  if o.format == "json" then
    local pids = {}
    for k, p in ipairs(list) do pids[k] = math.tointeger(p.pid) end
    io.stdout:write(#pids > 0 and cjson.encode(pids) or "[]", "\n")
  else
    io.stdout:write("PID   CMD\n")
    for _, p in ipairs(list) do
      io.stdout:write(("%-5d %s\n"):format(math.tointeger(p.pid) or 0,
                                           tostring(p.cmd or "?")))
    end
  end
  return 0
end

function COMMANDS.features()
  io.stdout:write(cjson.encode {
    ociVersionMin = "1.0.0", ociVersionMax = OCI_VERSION,
    hooks = { "prestart", "createRuntime", "createContainer", "startContainer",
              "poststart", "poststop" },
    mountOptions = { "bind", "rbind", "ro", "rw" },
    annotations = { ["org.opencontainers.runc.version"] = "vc " .. build.version },
  }, "\n")
  return 0
end

local function log_error(g, msg)
  io.stderr:write(msg, "\n")
  if not g.log then return end
  local f = io.open(g.log, "a")
  if not f then return end
  if g.log_format == "json" then
    f:write(cjson.encode { level = "error", msg = msg, time = now_rfc3339() }, "\n")
  else
    f:write(now_rfc3339(), " error: ", msg, "\n")
  end
  f:close()
end

local function dispatch(argv, g, i)
  if g.version then
    io.stdout:write("vc-runtime version ", build.version, "\nspec: ", OCI_VERSION, "\n")
    return 0
  end
  local cmd = argv[i]
  if g.help or not cmd then
    io.stdout:write("usage: vc-runtime [--root DIR] [--log FILE] [--log-format json|text] "
                    .. "COMMAND [ARGS...]\ncommands: create start state kill delete exec ps"
                    .. " pause resume update features\n")
    return cmd and 0 or 1
  end
  M.root = check(storage.abspath(g.root))
  runtime.setup { root = M.root }
  if cmd == "checkpoint" or cmd == "restore" then fail("%s: not supported by vc-runtime", cmd) end
  local fn = COMMANDS[cmd]
  if not fn then fail("command %q not supported by vc-runtime", cmd) end
  return fn(argv, i + 1)
end

function M.main(argv)
  local g = { log_format = "text" }
  local ok, res = pcall(function()
    local i
    g, i = globals(argv)
    return dispatch(argv, g, i)
  end)
  if ok then return res or 0 end
  if getmetatable(res) == Error or (type(res) == "table" and res.msg) then
    log_error(g, res.msg)
    return 1
  end
  log_error(g, "internal error: " .. tostring(res) .. "\n" .. debug.traceback())
  return 1
end

return M
