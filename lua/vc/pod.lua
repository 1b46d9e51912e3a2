--- Pods: creation, lifecycle and deletion, orchestrated over the store,
-- the state machine, the hypervisor and the agent.
--
-- Every operation that changes a pod holds the pod's lock exclusively for
-- its whole length and re-reads the pod's records under it, so a pod object
-- is only a name: any vc process can act on any pod. A failed step undoes
-- what the operation did before it. Reads (status, list) take no lock:
-- every record is replaced atomically, so each read sees a whole record.
local config = require "vc.config"
local failure = require "vc.failure"
local lazy = require "vc.lazy"
local hooks = lazy "vc.hooks"
local host = require "vc.core.host"
local leftovers = lazy "vc.leftovers"
local log = require "vc.log"
local network = lazy "vc.network"
local policy = lazy "vc.policy"
local process = require "vc.core.process"
local runtime = require "vc.runtime"
local sandbox = require "vc.sandbox"
local security = lazy "vc.security"
local state = require "vc.core.state"
local storage = require "vc.core.storage"
local store = require "vc.store"
local template = lazy "vc.template"
local uuid = require "vc.core.uuid"

local M = {}

local ENOENT = 2

local DEFAULT_HYPERVISOR = "qemu"
local DEFAULT_CPUS = 1
local DEFAULT_MEMORY_MIB = 256

local Pod = {}
Pod.__index = Pod

local function now()
  return os.date("!%Y-%m-%dT%H:%M:%SZ")
end

local function new_pod(id)
  return setmetatable({ id = id }, Pod)
end

function Pod:__tostring()
  local s = self:status()
  if not s then return "pod " .. self.id .. " (gone)" end
  local ctrs = {}
  for _, c in ipairs(s.containers) do ctrs[#ctrs + 1] = c.id .. ":" .. c.state end
  return string.format("pod %s [%s, %s] containers: %s", s.id, s.state, s.hypervisor,
                       #ctrs > 0 and table.concat(ctrs, " ") or "none")
end

-- Internals shared with vc.container ---------------------------------------

local internal = {}
M.internal = internal

--- Run fn(st, cfg) with the pod locked in mode; failures raise.
function internal.locked(id, mode, fn)
  local st = runtime.store()
  local _lock <close> = failure.check(st:lock(id, mode, runtime.lock_timeout()))
  local cfg = store.must_read(st, id, nil, "config")
  return fn(st, cfg)
end

function internal.container_config(st, id, cid)
  return store.must_read(st, id, cid, "config")
end

function internal.set_container_state(st, id, cid, rec)
  rec.updated = now()
  store.write(st, id, cid, "state", rec)
end

local function pod_record(st, id)
  return store.read_opt(st, id, nil, "state")
end

local function set_pod_state(st, id, rec, to)
  rec.state = to
  rec.updated = now()
  store.write(st, id, nil, "state", rec)
end

local function check_move(id, from, to)
  failure.check(state.check("pod", id, from, to))
end

--- The pod's stored state, corrected by what its VM says: a pod whose VM
-- died behind vc's back is stopped, whatever was last written, and a VM
-- paused or resumed by a vc that died before writing the record is what
-- it is. A pod with no state record was never fully created: "incomplete"
-- (`vc gc` or a forced delete removes it).
-- info: the pod's hypervisor.json when the caller has read it (false: missing).
function internal.live_state(st, cfg, rec, info)
  if not rec then return "incomplete" end
  if rec.state == "stopped" then return "stopped" end
  local hv = sandbox.hypervisor(st, cfg, info)
  local vm = hv:status()
  hv:close()
  if vm ~= "running" and vm ~= "paused" then return "stopped" end
  if vm == "paused" and rec.state == "running" then return "paused" end
  if vm == "running" and rec.state == "paused" then return "running" end
  return rec.state
end

--- Bring a container's record up to date with the agent: a process that
-- exited on its own is recorded as stopped with its exit code, and the
-- container_exit hooks see it. opts.requested: vc caused the exit (kill);
-- opts.restart: a restart the hooks ask for with no delay is done now
-- (else it is recorded as restart_at, for Container:wait to do).
function internal.sync_container(st, id, agent, cid, rec, opts)
  if rec.state ~= "running" then return rec end
  local s = agent:status(cid)
  if s and s.state == "exited" then
    rec.state, rec.exit_code, rec.oom = "stopped", s.exit_code, s.oom or nil
    rec.finished = now()
    internal.set_container_state(st, id, cid, rec)
    opts = opts or {}
    local restart = hooks.container_exit(st, id, cid, rec, opts.requested)
    if restart then
      rec.restart_at = process.time() + restart.delay
      internal.set_container_state(st, id, cid, rec)
      if opts.restart and restart.delay == 0 then
        return internal.restart_container(st, id, agent, cid, rec, opts)
      end
    end
  end
  return rec
end

--- Make a stopped container's process anew and start it: a restart a
-- container_exit hook asked for, counted in its record (restarts).
function internal.restart_container(st, id, agent, cid, rec, opts)
  local cfg = store.must_read(st, id, nil, "config")
  local hv = sandbox.hypervisor(st, cfg)
  failure.check(agent:remove_container(cid))
  local ccfg = internal.container_config(st, id, cid)
  failure.check(agent:create_container(sandbox.shared_container_spec(hv, ccfg)))
  failure.check(agent:start_container(cid))
  local n = (rec.restarts or 0) + 1
  log.info("container restarted", { pod = id, container = cid, restarts = n })
  rec = { state = "running", started = now(), restarts = n }
  internal.set_container_state(st, id, cid, rec)
  return internal.sync_container(st, id, agent, cid, rec, opts)
end

--- true, or nil and a message naming key when path is not a folder: a
-- rootfs or a volume must be one before anything is created.
function internal.check_folder(key, path)
  local kind, err = host.kind(path)
  if not kind then return nil, key .. ": " .. err end
  if kind ~= "directory" then return nil, key .. ": " .. path .. ": not a folder" end
  return true
end

-- Seconds (of QEMU's CPU time under TCG) for the agent of a VM started
-- from a template: it runs at once, so this is only how long a broken
-- template is waited for before the VM boots instead.
local TEMPLATE_TIMEOUT = 10

-- Start the pod's VM and connect to its agent: from a template when the
-- backend has one (template.lua), else by booting. A template that does
-- not give a VM whose agent answers is discarded, and the VM boots.
-- Pushes the undo steps it needs.
local function launch(st, cfg, undo, hv, timeout)
  sandbox.save_launching(st, cfg)
  failure.check(hv:start())
  undo.push(function() hv:stop() end)
  sandbox.save_info(st, cfg, hv)
  return sandbox.agent(cfg, hv, st, timeout)
end

local function start_vm(st, cfg, undo)
  local tpl = template.ensure(st, cfg)
  if tpl then
    local hv = sandbox.hypervisor(st, cfg, false,
                                  { incoming = tpl, ram_file = template.ram_of(tpl) })
    local timeout = math.min(cfg.vm.boot_timeout or sandbox.AGENT_TIMEOUT, TEMPLATE_TIMEOUT)
    local ok, agent = pcall(launch, st, cfg, undo, hv, timeout)
    if ok then return hv, agent end
    if not failure.is(agent) then error(agent, 0) end -- an interruption
    hv:stop(0)
    log.warn("template " .. tpl .. " did not start a VM: " .. agent.msg .. "; booting",
             { pod = cfg.id })
    template.discard(tpl)
  end
  local hv = sandbox.hypervisor(st, cfg)
  return hv, launch(st, cfg, undo, hv)
end

-- Boot the VM and create every container in it (create, and start from
-- stopped). Pushes the undo steps it needs.
local function boot(st, cfg, undo, fresh)
  -- A VM started by a vc that died before recording it would hold the
  -- pod's sockets: the pod is stopped, so no backend process is its own.
  -- (Not for a pod created just now: a pod ID is free only once a delete
  -- or gc has killed every process of the pod that had it.)
  if not fresh and sandbox.needs_scan(store.read_opt(st, cfg.id, nil, "hypervisor")) then
    leftovers.kill(st, cfg.id)
  end
  local hv, agent = start_vm(st, cfg, undo)
  local spec = sandbox.vm_spec(st, cfg)
  spec.share = hv:info().share
  spec.network = network.agent_payload(st, cfg)
  failure.check(agent:create_pod(spec))
  -- a container whose namespaces are another's comes after that one
  local pending, made = {}, {}
  for _, cid in ipairs(st:containers(cfg.id)) do
    pending[#pending + 1] = internal.container_config(st, cfg.id, cid)
  end
  while #pending > 0 do
    local later = {}
    for _, ccfg in ipairs(pending) do
      if ccfg.namespaces_of and not made[ccfg.namespaces_of] and #later < #pending - 1 then
        later[#later + 1] = ccfg
      else
        failure.check(agent:create_container(sandbox.shared_container_spec(hv, ccfg)))
        made[ccfg.id] = true
      end
    end
    if #later == #pending then break end
    pending = later
  end
  return hv, agent
end

-- Creation ------------------------------------------------------------------

--- vc's own defaults, over a validated config: ID, backend, vCPUs and
-- memory, absolute rootfs paths.
function M.defaults(norm)
  norm.id = norm.id or uuid.generate()
  norm.hypervisor = norm.hypervisor or DEFAULT_HYPERVISOR
  norm.vm = norm.vm or {}
  norm.vm.cpus = norm.vm.cpus or DEFAULT_CPUS
  norm.vm.memory_mib = norm.vm.memory_mib or DEFAULT_MEMORY_MIB
  for _, c in ipairs(norm.containers) do
    c.rootfs = assert(storage.abspath(c.rootfs))
  end
  return norm
end

--- Validate a pod config and fill what the user may leave out.
function M.prepare(cfg)
  if type(cfg) ~= "table" then
    error("bad argument #1 to 'create' (table expected, got " .. type(cfg) .. ")", 3)
  end
  local norm, err = config.pod(cfg)
  if not norm then return nil, err end
  -- As early as the backend is known: it overlaps what follows.
  sandbox.warm(norm.hypervisor or DEFAULT_HYPERVISOR)
  -- Policies fill in first (vc's defaults come after, so that they can
  -- tell what the user left out), then judge the config as it will be.
  norm, err = policy.mutate(norm, { op = "create" })
  if not norm then return nil, err end
  M.defaults(norm)
  for i, c in ipairs(norm.containers) do
    c.rootfs = assert(storage.abspath(c.rootfs))
    local ok, ferr = internal.check_folder(("containers[%d].rootfs"):format(i), c.rootfs)
    if not ok then return nil, ferr end
  end
  for i, v in ipairs(norm.volumes or {}) do
    local ok, ferr = internal.check_folder(("volumes[%d].host_path"):format(i), v.host_path)
    if not ok then return nil, ferr end
  end
  local admitted, aerr = policy.admit(norm, { op = "create" })
  if not admitted then return nil, aerr end
  return norm
end

local function create(cfg)
  local st = runtime.store()
  -- Refuse an unknown backend before anything touches the disk.
  sandbox.hypervisor(st, cfg):close()
  local lock, lerr = st:create_pod(cfg.id)
  if not lock then return nil, lerr end
  local undo = failure.undo()
  undo.push(function() assert(st:delete_pod(cfg.id)) end)
  local ok, err = pcall(function()
    hooks.pre("pre_create", st, cfg)
    local podcfg = {}
    for k, v in pairs(cfg) do podcfg[k] = v end
    podcfg.containers = nil
    -- The pod's record before anything of its backend: a delete (or gc)
    -- of a pod killed half-way knows its backend from it.
    store.write(st, cfg.id, nil, "config", podcfg)
    for _, ccfg in ipairs(cfg.containers) do
      failure.check(st:create_container(cfg.id, ccfg.id))
    end
    network.setup(st, podcfg, undo, podcfg.hypervisor == "qemu")
    local hv = sandbox.hypervisor(st, podcfg)
    failure.check(hv:create())
    undo.push(function() hv:destroy() end)
    for _, ccfg in ipairs(cfg.containers) do
      store.write(st, cfg.id, ccfg.id, "config", ccfg)
    end
    select(2, boot(st, podcfg, undo, true)):close()
    for _, ccfg in ipairs(cfg.containers) do
      internal.set_container_state(st, cfg.id, ccfg.id, { state = "ready" })
    end
    set_pod_state(st, cfg.id, { created = now() }, "ready")
  end)
  if not ok then
    -- Undo while still holding the lock, so nobody sees the pod half-gone.
    for _, e in ipairs(undo.run()) do log.warn("rollback: " .. e, { pod = cfg.id }) end
  end
  lock:unlock()
  if not ok then
    if failure.is(err) then return nil, err.msg end
    error(err, 0)
  end
  log.info("pod created", { pod = cfg.id, hypervisor = cfg.hypervisor })
  hooks.post("post_create", cfg.id)
  return new_pod(cfg.id)
end

--- Create a pod from a config table: store it, boot its VM and create its
-- containers (state ready). Returns the pod, or nil and a message; on
-- failure nothing is left behind.
function M.create(cfg)
  local norm, err = M.prepare(cfg)
  if not norm then return nil, err end
  return failure.catch(create, norm)
end

--- Create and start.
function M.run(cfg)
  local norm, err = M.prepare(cfg)
  if not norm then return nil, err end
  local p, cerr = failure.catch(create, norm)
  if not p then return nil, cerr end
  local done, ok, serr = pcall(p.start, p)
  if not (done and ok) then
    -- run is one step for its caller: a pod that cannot start is undone,
    -- also when the start raised (a Ctrl-C in vc repl)
    local deleted, derr = p:delete { force = true, hooks = false }
    if not deleted then log.warn("rollback: " .. derr, { pod = p.id }) end
    if not done then error(ok, 0) end
    return nil, serr
  end
  return p
end

--- The pod called id, or nil and a message.
function M.fetch(id)
  if type(id) ~= "string" then
    error("bad argument #1 to 'fetch' (string expected, got " .. type(id) .. ")", 2)
  end
  local okid, msg = storage.valid_id(id, "pod")
  if not okid then return nil, msg end
  if not runtime.store():exists(id) then
    return nil, string.format("pod %s: no such pod", id)
  end
  return new_pod(id)
end

--- Every pod, sorted by ID. Never waits for a lock. A pod is listed once
-- its creation is complete (its state record written); opts.all lists the
-- incomplete ones too (being created, or left by a crash).
function M.list(opts)
  local all = opts and opts.all
  local st = runtime.store()
  local pods = {}
  for _, id in ipairs(st:pods()) do
    -- complete: both records (a delete killed half-way leaves only one)
    local rec, _, errno = store.read(st, id, nil, "state")
    local cfg, _, cerrno = store.read(st, id, nil, "config")
    if all or (rec or errno ~= ENOENT) and (cfg or cerrno ~= ENOENT) then
      pods[#pods + 1] = new_pod(id)
    end
  end
  return pods
end

-- Lifecycle -----------------------------------------------------------------

local function start(self)
  return internal.locked(self.id, "exclusive", function(st, cfg)
    local rec = pod_record(st, self.id) or failure.raise("pod %s: not fully created", self.id)
    local from = internal.live_state(st, cfg, rec)
    if from == "paused" then
      failure.raise("pod %s: cannot start: it is paused (resume it)", self.id)
    end
    check_move(self.id, from, "running")
    hooks.pre("pre_start", st, cfg)
    local undo = failure.undo()
    local ok, err = pcall(function()
      local agent <close> = from == "stopped" and select(2, boot(st, cfg, undo))
                            or sandbox.agent(cfg, sandbox.hypervisor(st, cfg))
      hooks.oci("prestart", st, cfg, "created")
      for _, cid in ipairs(st:containers(self.id)) do
        local crec = store.read_opt(st, self.id, cid, "state") or { state = "ready" }
        if from == "stopped" and crec.state == "running" then crec.state = "stopped" end
        if crec.state == "ready" or from == "stopped" then
          failure.check(agent:start_container(cid))
          undo.push(function() agent:stop_container(cid, 1) end)
          crec = { state = "running", started = now() }
          internal.set_container_state(st, self.id, cid, crec)
          internal.sync_container(st, self.id, agent, cid, crec, { restart = true })
        end
      end
      set_pod_state(st, self.id, rec, "running")
    end)
    if not ok then
      undo.run()
      error(err, 0)
    end
    local hok, herr = pcall(hooks.oci, "poststart", st, cfg, "running")
    if not hok then internal.stop_failed_start(st, cfg, rec, herr) end
    log.info("pod started", { pod = self.id })
    return true
  end)
end

-- Stop every running container through the agent when the VM answers
-- (gracefully, or at once with kill), then the VM.
local function stop_all(st, cfg, vm_alive, kill)
  local hv = sandbox.hypervisor(st, cfg)
  local agent = vm_alive and sandbox.try_agent(cfg, hv, 10) or nil
  if vm_alive and not agent then log.warn("stop: agent unreachable", { pod = cfg.id }) end
  for _, cid in ipairs(st:containers(cfg.id)) do
    local crec = store.read_opt(st, cfg.id, cid, "state") or { state = "ready" }
    if crec.state == "running" then
      local ccfg = internal.container_config(st, cfg.id, cid)
      if agent then
        failure.check(agent:stop_container(cid, kill and 0 or ccfg.stop_timeout or 10))
        local s = agent:status(cid)
        crec.exit_code = s and s.exit_code
      end
      crec.state, crec.finished = "stopped", now()
      internal.set_container_state(st, cfg.id, cid, crec)
    end
  end
  -- The agent ends the sandbox in order (in a VM: powers it off); the
  -- backend then makes sure it is gone.
  if agent then
    agent:shutdown()
    agent:close()
  end
  failure.check(hv:stop())
end

internal.stop_all = stop_all
internal.set_pod_state = set_pod_state

--- A poststart hook failed (err): stop the pod again, then raise err.
function internal.stop_failed_start(st, cfg, rec, err)
  local ok, serr = pcall(stop_all, st, cfg, true)
  if not ok then log.warn("stop after poststart: " .. tostring(serr), { pod = cfg.id }) end
  set_pod_state(st, cfg.id, rec, "stopped")
  hooks.oci("poststop", st, cfg, "stopped")
  failure.raise("%s (the pod was stopped)", failure.is(err) and err.msg or tostring(err))
end

function Pod:start()
  local ok, err = failure.catch(start, self)
  if ok then hooks.post("post_start", self.id) end
  return ok, err
end

function Pod:stop()
  local ok, err = failure.catch(internal.locked, self.id, "exclusive", function(st, cfg)
    local rec = pod_record(st, self.id) or failure.raise("pod %s: not fully created", self.id)
    local from = internal.live_state(st, cfg, rec)
    check_move(self.id, from, "stopped")
    hooks.pre("pre_stop", st, cfg)
    local hv = sandbox.hypervisor(st, cfg)
    if from == "paused" then failure.check(hv:resume()) end
    stop_all(st, cfg, from ~= "stopped")
    set_pod_state(st, self.id, rec, "stopped")
    hooks.oci("poststop", st, cfg, "stopped")
    log.info("pod stopped", { pod = self.id })
    return true
  end)
  if ok then hooks.post("post_stop", self.id) end
  return ok, err
end

local function pause_resume(self, from, to, op)
  return failure.catch(internal.locked, self.id, "exclusive", function(st, cfg)
    local rec = pod_record(st, self.id) or failure.raise("pod %s: not fully created", self.id)
    local live = internal.live_state(st, cfg, rec)
    check_move(self.id, live, to)
    -- legal moves that belong to another operation (ready -> running is start)
    if live ~= from then
      failure.raise("pod %s: cannot %s: it is %s, not %s", self.id, op, live, from)
    end
    local hv = sandbox.hypervisor(st, cfg)
    failure.check(hv[op](hv))
    set_pod_state(st, self.id, rec, to)
    log.info("pod " .. op .. "d", { pod = self.id })
    return true
  end)
end

function Pod:pause() return pause_resume(self, "running", "paused", "pause") end
function Pod:resume() return pause_resume(self, "paused", "running", "resume") end

-- Delete pod id, whose lock the caller holds: its VM, what no record
-- names, and both trees. force kills a running or paused pod first (no
-- grace period) and deletes a pod whose records are broken or incomplete.
function internal.delete_locked(st, id, force)
  local read = force and store.read or store.read_opt
  local cfg = read(st, id, nil, "config")
  local rec = read(st, id, nil, "state")
  if cfg and rec then
    local ok, live = pcall(internal.live_state, st, cfg, rec)
    if not ok and not force then error(live, 0) end
    if force and (live == "running" or live == "paused") then
      local stopped, e = pcall(function()
        if live == "paused" then failure.check(sandbox.hypervisor(st, cfg):resume()) end
        stop_all(st, cfg, true, true)
      end)
      if not stopped then log.warn("delete --force: " .. tostring(e), { pod = id }) end
    elseif not force then
      failure.check(state.can_delete("pod", id, live))
    end
  end
  -- The pod's backend processes that no record names (a VM started by a
  -- vc killed before it saved the VM's pid), when there may be any: listed
  -- once (/proc, whose size is the host's). The lock is held, so no new
  -- one can appear, and killing one that is gone is a no-op.
  local info = cfg and read(st, id, nil, "hypervisor") or nil
  local procs = {}
  if not (cfg and rec) or sandbox.needs_scan(info) then
    procs = leftovers.processes(st)[id] or {}
  end
  if cfg then
    -- Those first, so that destroy can clean up after them too (a
    -- namespace sandbox's cgroups).
    info = info or {}
    leftovers.kill(st, id, { pid = info.pid, start = info.start_time }, procs)
    -- The VM goes first: if it cannot be destroyed, the records stay so
    -- that the pod can still be found and deleted later.
    local ok, hv = pcall(sandbox.hypervisor, st, cfg)
    local done, err = false, tostring(hv)
    if ok then done, err = hv:destroy() end
    if not done and not force then failure.raise("pod %s: %s", id, err) end
  end
  -- Then anything left: a process of a pod with no config, a mount of a
  -- crashed run.
  local _, kerrs = leftovers.kill(st, id, nil, procs)
  local _, uerrs = leftovers.unmount(st, id)
  if #kerrs + #uerrs > 0 then
    failure.raise("pod %s: %s", id, kerrs[1] or uerrs[1])
  end
  -- Once nothing runs in it: the network (CNI DEL, its namespace).
  network.teardown(st, id, force)
  failure.check(st:delete_pod(id))
  log.info("pod deleted", { pod = id })
end

-- Before a delete, the lock held: the pre_delete hooks (lua_hooks), and
-- what comes after it: the post_delete event, and the OCI state for the
-- poststop hooks of a pod whose VM the delete takes down.
local function before_delete(st, id, force, lua_hooks)
  local after = {}
  local cfg = store.read(st, id, nil, "config")
  local rec = cfg and store.read(st, id, nil, "state")
  if not rec then return after end
  local ok, live = pcall(internal.live_state, st, cfg, rec)
  if not ok or (live == "running" and not force) then return after end
  if lua_hooks then
    hooks.pre("pre_delete", st, cfg)
    after.event = hooks.wants("post_delete") and hooks.event("post_delete", st, cfg) or nil
  end
  if live == "running" or live == "paused" then
    after.cfg, after.oci = cfg, hooks.oci_state(st, cfg, "stopped")
  end
  return after
end

--- Delete the pod: its VM and both trees. opts.force kills a running pod
-- first (no grace period) and deletes a pod whose records are broken;
-- opts.hooks = false skips the Lua hooks (a rollback is no user's delete).
function Pod:delete(opts)
  local force = opts and opts.force
  local lua_hooks = not (opts and opts.hooks == false)
  local after
  local ok, err = failure.catch(function()
    local st = runtime.store()
    local _lock <close> = failure.check(st:lock(self.id, "exclusive", runtime.lock_timeout()))
    after = before_delete(st, self.id, force, lua_hooks)
    internal.delete_locked(st, self.id, force)
    return true
  end)
  if ok then
    -- OCI poststop hooks run once the pod is gone, as the OCI spec says.
    if after.oci then hooks.oci("poststop", nil, after.cfg, "stopped", after.oci) end
    if lua_hooks then hooks.post("post_delete", self.id, after.event or { pod = self.id }) end
  end
  return ok, err
end

--- A snapshot of the pod: { id, state, hypervisor, accel, pid, created,
-- containers = { {id, state, exit_code, security}... } }, or nil and a
-- message; a running container's security is what confines its process
-- (vc.security.describe: capabilities, seccomp mode, no_new_privileges).
-- opts.live = false skips asking the agent which processes have exited
-- (the records then tell), as a listing does.
-- What Pod:status returns, raising failures. snap: the pod's records
-- (st:snapshot, read once in one pass), when the caller has them already.
local function status_of(st, id, live, snap)
  local recs = store.decode_snapshot(id, snap or failure.check(st:snapshot(id)))
  local cfg, rec = recs.config, recs.state
  -- no record at all: a pod being created or deleted, or none
  if not cfg and not rec and not st:exists(id) then
    failure.raise("pod %s: no such pod", id)
  end
  local info = recs.hypervisor or false
  local s = {
    id = id,
    state = cfg and internal.live_state(st, cfg, rec, info) or "incomplete",
    hypervisor = cfg and cfg.hypervisor or "?",
    accel = info and info.accel or nil,
    pid = info and info.pid or nil,
    created = rec and rec.created,
    network = cfg and network.status(st, cfg) or nil,
    containers = {},
  }
  local agent <close> = live and s.state == "running"
                        and sandbox.try_agent(cfg, sandbox.hypervisor(st, cfg, info), 1) or nil
  -- a container is listed once its creation is complete (its state record)
  for _, cid in ipairs(recs.containers) do
    local crec = recs.container_states[cid]
    if not crec then goto next end
    local c = { id = cid, state = crec.state, exit_code = crec.exit_code, oom = crec.oom,
                restarts = crec.restarts }
    if c.state == "running" or c.state == "paused" then
      if s.state ~= "running" and s.state ~= "paused" then
        c.state, c.exit_code = "stopped", nil
      elseif s.state == "paused" then
        c.state = "paused"
      elseif agent then
        local now_st = agent:status(cid)
        if now_st and now_st.state == "exited" then
          c.state, c.exit_code, c.oom = "stopped", now_st.exit_code, now_st.oom or nil
        else
          c.security = security.describe(now_st)
        end
      end
    end
    s.containers[#s.containers + 1] = c
    ::next::
  end
  return s
end

--- A snapshot of the pod: { id, state, hypervisor, accel, pid, created,
-- containers = { {id, state, exit_code, security}... } }, or nil and a
-- message; a running container's security is what confines its process
-- (vc.security.describe: capabilities, seccomp mode, no_new_privileges).
-- opts.live = false skips asking the agent which processes have exited
-- (the records then tell), as a listing does.
function Pod:status(opts)
  local live = not (opts and opts.live == false)
  return failure.catch(function()
    return status_of(runtime.store(), self.id, live)
  end)
end

--- The status of every pod as `Pod:status { live = false }` gives it, in
-- the order of M.list (opts.all as there), for listings: one pass that
-- reads each record once. A pod whose status fails is { id =, error = msg }.
function M.list_status(opts)
  local all = opts and opts.all
  local st = runtime.store()
  local out = {}
  local ids = st:pods()
  -- every pod's records at once, read in parallel
  local snaps, errs = st:snapshots(ids)
  for _, id in ipairs(ids) do
    local snap, err = snaps[id], errs[id]
    -- as M.list: complete pods (both records), and any it cannot tell
    if all or not snap or snap.state and snap.config then
      local s
      if snap then s, err = failure.catch(status_of, st, id, false, snap) end
      out[#out + 1] = s or { id = id, error = err }
    end
  end
  return out
end

function Pod:state()
  local s, err = self:status()
  if not s then return nil, err end
  return s.state
end

--- The pod's config as stored (a copy).
function Pod:config()
  return failure.catch(function()
    return store.must_read(runtime.store(), self.id, nil, "config")
  end)
end

--- The pod's containers, as container objects.
function Pod:containers()
  local container = require "vc.container"
  local list = {}
  for _, cid in ipairs(runtime.store():containers(self.id)) do
    list[#list + 1] = container.new(self, cid)
  end
  return list
end

--- The container called cid, or nil and a message.
function Pod:container(cid)
  local container = require "vc.container"
  return container.fetch(self, cid)
end

--- Add a container to an existing pod (created in its VM when the VM is up).
function Pod:add_container(ccfg)
  local container = require "vc.container"
  return container.add(self, ccfg)
end

M.Pod = Pod
return M
