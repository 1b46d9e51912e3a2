--- Containers of a pod: add, start, stop, kill, exec, wait, delete,
-- status. Like pods, a container object is only a name; every operation
-- re-reads the records under the pod's lock.
local agentlib = require "vc.core.agent"
local config = require "vc.config"
local failure = require "vc.failure"
local lazy = require "vc.lazy"
local hooks = lazy "vc.hooks"
local log = require "vc.log"
local podlib = require "vc.pod"
local policy = lazy "vc.policy"
local process = require "vc.core.process"
local runtime = require "vc.runtime"
local sandbox = require "vc.sandbox"
local state = require "vc.core.state"
local storage = require "vc.core.storage"
local store = require "vc.store"

local internal = podlib.internal

local M = {}

local Container = {}
Container.__index = Container

function M.new(pod, cid)
  return setmetatable({ pod = pod, id = cid }, Container)
end

function Container:__tostring()
  local s = self:status()
  if not s then return "container " .. self.id .. " (gone)" end
  return string.format("container %s of pod %s [%s%s]", self.id, self.pod.id, s.state,
                       s.exit_code and (", exit " .. s.exit_code) or "")
end

function M.fetch(pod, cid)
  if type(cid) ~= "string" then
    error("bad argument #1 to 'container' (string expected, got " .. type(cid) .. ")", 3)
  end
  local ok, msg = storage.valid_id(cid, "container")
  if not ok then return nil, msg end
  if not runtime.store():exists(pod.id, cid) then
    return nil, string.format("pod %s: no container %s", pod.id, cid)
  end
  return M.new(pod, cid)
end

-- The pod must be running for its containers to be acted on; returns the
-- agent and the container's record, synced with the agent.
local function running_pod(st, cfg, cid, what)
  local prec = store.read_opt(st, cfg.id, nil, "state")
  local live = internal.live_state(st, cfg, prec)
  if live ~= "running" then
    failure.raise("container %s: cannot %s while pod %s is %s", cid, what, cfg.id, live)
  end
  local agent = sandbox.agent(cfg, sandbox.hypervisor(st, cfg))
  local rec = store.must_read(st, cfg.id, cid, "state")
  return agent, internal.sync_container(st, cfg.id, agent, cid, rec)
end

local function pod_vm_up(st, cfg)
  local live = internal.live_state(st, cfg, store.read_opt(st, cfg.id, nil, "state"))
  return live == "ready" or live == "running"
end

function M.add(pod, ccfg)
  if type(ccfg) ~= "table" then
    error("bad argument #1 to 'add_container' (table expected, got " .. type(ccfg) .. ")", 3)
  end
  return failure.catch(internal.locked, pod.id, "exclusive", function(st, cfg)
    local norm = failure.check(config.container(ccfg))
    if st:exists(pod.id, norm.id) then
      failure.raise("pod %s: container %s already exists", pod.id, norm.id)
    end
    if norm.namespaces_of and not st:exists(pod.id, norm.namespaces_of) then
      failure.raise("container.namespaces_of: pod %s has no container %s", pod.id,
                    norm.namespaces_of)
    end
    local full = hooks.full_config(st, cfg)
    norm = failure.check(policy.mutate_container(full, norm))
    norm.rootfs = failure.check(storage.abspath(norm.rootfs))
    failure.check(internal.check_folder("rootfs", norm.rootfs))
    failure.check(config.check_mounts(norm, cfg.volumes or {}, "container"))
    failure.check(policy.admit_container(full, norm))
    failure.check(st:create_container(pod.id, norm.id))
    local ok, err = pcall(function()
      store.write(st, pod.id, norm.id, "config", norm)
      if pod_vm_up(st, cfg) then
        local hv = sandbox.hypervisor(st, cfg)
        local agent <close> = sandbox.agent(cfg, hv)
        failure.check(agent:create_container(sandbox.shared_container_spec(hv, norm)))
      end
      internal.set_container_state(st, pod.id, norm.id, { state = "ready" })
    end)
    if not ok then
      if pod_vm_up(st, cfg) then
        pcall(sandbox.unshare_container, sandbox.hypervisor(st, cfg), norm)
      end
      st:delete_container(pod.id, norm.id)
      error(err, 0)
    end
    log.info("container created", { pod = pod.id, container = norm.id })
    return M.new(pod, norm.id)
  end)
end

function Container:start()
  return failure.catch(internal.locked, self.pod.id, "exclusive", function(st, cfg)
    local agent <close>, rec = running_pod(st, cfg, self.id, "start")
    failure.check(state.check("container", self.id, rec.state, "running"))
    if rec.state == "stopped" then
      -- A finished process cannot be restarted in place: make it anew.
      failure.check(agent:remove_container(self.id))
      local ccfg = internal.container_config(st, cfg.id, self.id)
      local hv = sandbox.hypervisor(st, cfg)
      failure.check(agent:create_container(sandbox.shared_container_spec(hv, ccfg)))
    end
    failure.check(agent:start_container(self.id))
    rec = { state = "running", started = os.date("!%Y-%m-%dT%H:%M:%SZ") }
    internal.set_container_state(st, cfg.id, self.id, rec)
    internal.sync_container(st, cfg.id, agent, self.id, rec, { restart = true })
    return true
  end)
end

function Container:stop()
  return failure.catch(internal.locked, self.pod.id, "exclusive", function(st, cfg)
    local agent <close>, rec = running_pod(st, cfg, self.id, "stop")
    failure.check(state.check("container", self.id, rec.state, "stopped"))
    local ccfg = internal.container_config(st, cfg.id, self.id)
    failure.check(agent:stop_container(self.id, ccfg.stop_timeout or 10))
    local s = agent:status(self.id)
    rec.state, rec.exit_code = "stopped", s and s.exit_code
    internal.set_container_state(st, cfg.id, self.id, rec)
    return true
  end)
end

-- Pause or resume the container alone (its pod runs on).
local function freeze(self, from, to, op)
  return failure.catch(internal.locked, self.pod.id, "exclusive", function(st, cfg)
    local agent <close>, rec = running_pod(st, cfg, self.id, op)
    failure.check(state.check("container", self.id, rec.state, to))
    if rec.state ~= from then
      failure.raise("container %s: cannot %s while %s", self.id, op, rec.state)
    end
    failure.check(agent[op .. "_container"](agent, self.id))
    rec.state = to
    internal.set_container_state(st, cfg.id, self.id, rec)
    return true
  end)
end

--- Freeze the container's processes (the pod and its other containers run on).
function Container:pause() return freeze(self, "running", "paused", "pause") end
--- Thaw them.
function Container:resume() return freeze(self, "paused", "running", "resume") end

--- Send a signal, by name ("TERM", "SIGKILL") or number (default TERM),
-- to the container's first process (opts.all: to every process in it). A
-- paused container gets it when resumed, but SIGKILL, which resumes it.
function Container:kill(sig, opts)
  local signum, serr = agentlib.signum(tostring(sig or "TERM"))
  if not signum then return nil, serr end
  return failure.catch(internal.locked, self.pod.id, "exclusive", function(st, cfg)
    local agent <close>, rec = running_pod(st, cfg, self.id, "signal")
    if rec.state ~= "running" and rec.state ~= "paused" then
      failure.raise("container %s: cannot signal while %s", self.id, rec.state)
    end
    failure.check(agent:signal(self.id, signum, type(opts) == "table" and opts.all == true))
    if rec.state == "paused" and signum == 9 then
      rec.state = "running" -- (the agent thawed it to let it die)
      internal.set_container_state(st, cfg.id, self.id, rec)
    end
    internal.sync_container(st, cfg.id, agent, self.id, rec, { restart = true, requested = true })
    return true
  end)
end

--- New limits for the container: resources = { memory_mib, pids,
-- cpu_quota_pct }, each optional (what is not given stays). Checked as a
-- config's, judged by the policies with the pod; applied at once when
-- its VM is up, kept for its next start.
function Container:update(resources)
  if type(resources) ~= "table" then
    error("bad argument #1 to 'update' (table expected, got " .. type(resources) .. ")", 2)
  end
  return failure.catch(internal.locked, self.pod.id, "exclusive", function(st, cfg)
    local ccfg = internal.container_config(st, cfg.id, self.id)
    local raw = {}
    for k, v in pairs(ccfg) do raw[k] = v end
    raw.resources = {}
    for k, v in pairs(ccfg.resources or {}) do raw.resources[k] = v end
    for k, v in pairs(resources) do raw.resources[k] = v end
    local new = failure.check(config.container(raw, "container"))
    local full = hooks.full_config(st, cfg)
    for i, c in ipairs(full.containers) do
      if c.id == self.id then full.containers[i] = new end
    end
    failure.check(policy.admit(full, { op = "update", container = self.id }))
    if pod_vm_up(st, cfg) then
      local agent <close> = sandbox.agent(cfg, sandbox.hypervisor(st, cfg))
      failure.check(agent:update_container(self.id, new.resources))
    end
    store.write(st, cfg.id, self.id, "config", new)
    log.info("container updated", { pod = cfg.id, container = self.id })
    return true
  end)
end

-- The agent of a running container, its record and its config, checked
-- under a shared lock that is released before the caller's long wait or exec.
-- (ready: a pod created, not started, whose VM is up, will do too)
local function agent_for(self, what, ready)
  return internal.locked(self.pod.id, "shared", function(st, cfg)
    -- a new process joins the container's cgroups: see sandbox.warm
    if what == "exec" then sandbox.warm(cfg.hypervisor) end
    local prec = store.read_opt(st, cfg.id, nil, "state")
    local live = internal.live_state(st, cfg, prec)
    if live ~= "running" and not (ready and live == "ready") then
      failure.raise("container %s: cannot %s while pod %s is %s", self.id, what, cfg.id, live)
    end
    local rec = store.must_read(st, cfg.id, self.id, "state")
    local ccfg = internal.container_config(st, cfg.id, self.id)
    return sandbox.agent(cfg, sandbox.hypervisor(st, cfg)), rec, ccfg
  end)
end

--- Run argv in the running container. opts.output = "capture" (default:
-- returns code, stdout, stderr) or "inherit" (to this process's stdout and
-- stderr; returns code). opts.stdin: nil (its stdin is /dev/null), a
-- string (its stdin's bytes, then end of file) or true (this process's
-- stdin, until its end of file). opts.tty: a terminal in the container
-- for the process (its stdout and stderr both come through it); with
-- output "inherit", vc's own terminal is in raw mode meanwhile (every key,
-- Ctrl-C too, goes to the process) and the container's follows its size.
-- The process gets the container's env (opts.env added over it), cwd and
-- user unless opts.cwd or opts.user say otherwise. The options may also be
-- named fields of argv: c:exec { "/bin/cat", stdin = "text" }.
function Container:exec(argv, opts)
  if type(argv) ~= "table" then
    error("bad argument #1 to 'exec' (table expected, got " .. type(argv) .. ")", 2)
  end
  local list, merged = {}, {}
  for k, v in pairs(argv) do
    if math.type(k) == "integer" then list[k] = v else merged[k] = v end
  end
  for k, v in pairs(opts or {}) do merged[k] = v end
  argv, opts = list, merged
  if opts.stdin ~= nil and type(opts.stdin) ~= "string" and opts.stdin ~= true then
    error("bad option 'stdin' to 'exec' (string or true expected, got "
          .. type(opts.stdin) .. ")", 2)
  end
  return failure.catch(function()
    local norm = failure.check(config.container({
      id = self.id, rootfs = "/", argv = argv, env = opts.env, cwd = opts.cwd, user = opts.user,
      groups = opts.groups,
    }, "exec"))
    local agent <close>, rec, ccfg = agent_for(self, "exec")
    if rec.state ~= "running" then
      failure.raise("container %s: cannot exec while %s", self.id, rec.state)
    end
    local env = {}
    for _, kv in ipairs(ccfg.env) do env[#env + 1] = kv end
    for _, kv in ipairs(norm.env) do env[#env + 1] = kv end
    local proc = {
      argv = norm.argv, env = env,
      cwd = opts.cwd and norm.cwd or ccfg.cwd,
      user = opts.user and norm.user or ccfg.user,
      groups = opts.groups and norm.groups or (not opts.user and ccfg.groups or nil),
      oom_score_adj = ccfg.oom_score_adj,
    }
    return failure.check(agent:exec(self.id, proc, opts.output or "capture", opts.stdin,
                                    opts.tty and true or false))
  end)
end

--- An interactive shell in the container (argv default /bin/sh): a
-- terminal, vc's stdin and terminal given to it until it exits; returns
-- its exit code. From vc repl, the REPL takes the terminal back after.
function Container:shell(argv)
  return self:exec(argv or { "/bin/sh" }, { output = "inherit", stdin = true, tty = true })
end

--- Connect vc's terminal (or stdin and stdout) to the container's first
-- process, as it was made (terminal = true, stdin = true in its config),
-- until it exits (returns its exit code) or the user detaches with Ctrl-P
-- Ctrl-Q (returns false; it runs on).
-- opts (the OCI runtime's helper): created = true also attaches to a
-- container not started yet (all its output then comes here),
-- detach_keys = false passes Ctrl-P Ctrl-Q through, ready = a path made
-- once the agent streams.
function Container:attach(opts)
  opts = opts or {}
  return failure.catch(function()
    local agent <close>, rec, ccfg = agent_for(self, "attach", opts.created)
    if rec.state ~= "running" and not (opts.created and rec.state == "ready") then
      failure.raise("container %s: cannot attach while %s", self.id, rec.state)
    end
    return failure.check(agent:attach(self.id, ccfg.stdin, ccfg.terminal,
                                      { detach_keys = opts.detach_keys, ready = opts.ready }))
  end)
end

-- One round of wait: the exit code, and what comes next: "again" (the
-- container was restarted at once), a time to restart it at, or nil.
local function wait_exit(self, deadline)
  local agent <close>, rec = agent_for(self, "wait")
  if rec.state == "stopped" then return rec.exit_code, rec.restart_at end
  local left = deadline and math.max(0, deadline - process.now()) or -1
  local code = failure.check(agent:wait(self.id, left))
  rec = internal.locked(self.pod.id, "exclusive", function(st, cfg)
    local cur = store.must_read(st, cfg.id, self.id, "state")
    return internal.sync_container(st, cfg.id, agent, self.id, cur, { restart = true })
  end)
  if rec.state == "running" then return code, "again" end
  return rec.exit_code or code, rec.restart_at
end

-- Do the restart recorded for the container, unless someone else did (or
-- started it) meanwhile; a pod no longer running drops it.
local function restart_due(self)
  internal.locked(self.pod.id, "exclusive", function(st, cfg)
    local rec = store.must_read(st, cfg.id, self.id, "state")
    if rec.state ~= "stopped" or not rec.restart_at then return end
    local prec = store.read_opt(st, cfg.id, nil, "state")
    if internal.live_state(st, cfg, prec) ~= "running" then
      rec.restart_at = nil
      internal.set_container_state(st, cfg.id, self.id, rec)
      return
    end
    local agent <close> = sandbox.agent(cfg, sandbox.hypervisor(st, cfg))
    internal.restart_container(st, cfg.id, agent, self.id, rec, { restart = true })
  end)
end

--- Wait for the container's process to exit; returns its exit code.
-- timeout in seconds (default: forever). wait is also where restarts
-- happen without a daemon: when a container_exit hook (the restart
-- policy) asks for one, wait sleeps its delay, restarts the container and
-- waits again, so it returns once the container exited for good (or at
-- the timeout, with the last exit code).
function Container:wait(timeout)
  return failure.catch(function()
    local deadline = timeout and process.now() + timeout
    while true do
      local code, next_step = wait_exit(self, deadline)
      if next_step == nil then return code end
      if next_step ~= "again" then
        local delay = math.max(0, next_step - process.time())
        if deadline and process.now() + delay > deadline then return code end
        process.sleep(delay)
        restart_due(self)
      end
    end
  end)
end

--- What the agent kept of the container's output (its newest 64 KiB of
-- each stream): stdout, stderr, truncated. With opts.each, each chunk goes
-- to opts.each(stream, time, data) instead ("stdout" or "stderr"; time in
-- seconds since the epoch, as the agent read it, live: written after the
-- call) in the order they were written, and logs returns truncated;
-- opts.follow: then each chunk written later, until the container's
-- process exits.
function Container:logs(opts)
  opts = opts or {}
  if opts.each ~= nil and type(opts.each) ~= "function" then
    error("bad option 'each' to 'logs' (function expected, got " .. type(opts.each) .. ")", 2)
  end
  return failure.catch(function()
    local agent <close> = agent_for(self, "read the logs")
    if not opts.each and not opts.follow then
      return failure.check(agent:read_output(self.id))
    end
    local parts = { stdout = {}, stderr = {} }
    local each = opts.each or function(stream, _, data)
      local t = parts[stream]
      t[#t + 1] = data
    end
    local function chunk(stream, ms, data, live) each(stream, ms / 1000, data, live) end
    local truncated = failure.check(agent:logs(self.id, opts.follow, chunk))
    if opts.each then return truncated end
    return table.concat(parts.stdout), table.concat(parts.stderr), truncated
  end)
end

--- The container's processes: a list of { pid, cmd }.
function Container:processes()
  return failure.catch(function()
    local agent <close> = agent_for(self, "list processes")
    return failure.check(agent:list_processes(self.id))
  end)
end

--- CPU and memory: { cpu_ns, memory_bytes, memory_limit_bytes, pids }.
function Container:stats()
  return failure.catch(function()
    local agent <close> = agent_for(self, "read stats")
    return failure.check(agent:stats(self.id))
  end)
end

function Container:delete()
  return failure.catch(internal.locked, self.pod.id, "exclusive", function(st, cfg)
    local rec = store.read_opt(st, cfg.id, self.id, "state") or { state = "ready" }
    local up = pod_vm_up(st, cfg)
    local agent <close> = up and sandbox.agent(cfg, sandbox.hypervisor(st, cfg)) or nil
    if up then
      rec = internal.sync_container(st, cfg.id, agent, self.id, rec)
    elseif rec.state == "running" then
      rec.state = "stopped"
    end
    failure.check(state.can_delete("container", self.id, rec.state))
    if agent then failure.check(agent:remove_container(self.id)) end
    local ccfg = store.read_opt(st, cfg.id, self.id, "config") or { id = self.id }
    sandbox.unshare_container(sandbox.hypervisor(st, cfg), ccfg)
    failure.check(st:delete_container(cfg.id, self.id))
    return true
  end)
end

--- { id, pod, state, exit_code, oom, restarts, security } (security: what
-- confines a running container's process, see vc.security.describe) or
-- nil and a message.
function Container:status()
  local ps, err = self.pod:status()
  if not ps then return nil, err end
  for _, c in ipairs(ps.containers) do
    if c.id == self.id then
      c.pod = self.pod.id
      return c
    end
  end
  return nil, string.format("pod %s: no container %s", self.pod.id, self.id)
end

function Container:state()
  local s, err = self:status()
  if not s then return nil, err end
  return s.state
end

M.Container = Container
return M
