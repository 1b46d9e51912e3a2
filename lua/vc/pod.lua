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
local log = require "vc.log"
local runtime = require "vc.runtime"
local sandbox = require "vc.sandbox"
local state = require "vc.core.state"
local storage = require "vc.core.storage"
local store = require "vc.store"
local uuid = require "vc.core.uuid"

local M = {}

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
-- died behind vc's back is stopped, whatever was last written.
function internal.live_state(st, cfg, rec)
  if not rec then return "unknown" end
  if rec.state == "stopped" then return "stopped" end
  local hv = sandbox.hypervisor(st, cfg)
  local vm = hv:status()
  hv:close()
  if vm ~= "running" and vm ~= "paused" then return "stopped" end
  return rec.state
end

--- Bring a container's record up to date with the agent: a process that
-- exited on its own is recorded as stopped with its exit code.
function internal.sync_container(st, id, agent, cid, rec)
  if rec.state ~= "running" then return rec end
  local s = agent:status(cid)
  if s and s.state == "exited" then
    rec.state, rec.exit_code, rec.oom = "stopped", s.exit_code, s.oom or nil
    rec.finished = now()
    internal.set_container_state(st, id, cid, rec)
  end
  return rec
end

-- Boot the VM and create every container in it (create, and start from
-- stopped). Pushes the undo steps it needs.
local function boot(st, cfg, undo)
  local hv = sandbox.hypervisor(st, cfg)
  failure.check(hv:start())
  undo.push(function() hv:stop() end)
  sandbox.save_info(st, cfg, hv)
  local agent = sandbox.agent(cfg, hv, st)
  local spec = sandbox.vm_spec(st, cfg)
  spec.share = hv:info().share
  failure.check(agent:create_pod(spec))
  for _, cid in ipairs(st:containers(cfg.id)) do
    local ccfg = internal.container_config(st, cfg.id, cid)
    failure.check(agent:create_container(sandbox.shared_container_spec(hv, ccfg)))
  end
  return hv, agent
end

-- Creation ------------------------------------------------------------------

--- Validate a pod config and fill what the user may leave out.
function M.prepare(cfg)
  if type(cfg) ~= "table" then
    error("bad argument #1 to 'create' (table expected, got " .. type(cfg) .. ")", 3)
  end
  local norm, err = config.pod(cfg)
  if not norm then return nil, err end
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

local function create(cfg)
  local st = runtime.store()
  -- Refuse an unknown backend before anything touches the disk.
  sandbox.hypervisor(st, cfg):close()
  local lock, lerr = st:create_pod(cfg.id)
  if not lock then return nil, lerr end
  local undo = failure.undo()
  undo.push(function() assert(st:delete_pod(cfg.id)) end)
  local ok, err = pcall(function()
    local podcfg = {}
    for k, v in pairs(cfg) do podcfg[k] = v end
    podcfg.containers = nil
    store.write(st, cfg.id, nil, "config", podcfg)
    for _, ccfg in ipairs(cfg.containers) do
      failure.check(st:create_container(cfg.id, ccfg.id))
      store.write(st, cfg.id, ccfg.id, "config", ccfg)
    end
    local hv = sandbox.hypervisor(st, podcfg)
    failure.check(hv:create())
    undo.push(function() hv:destroy() end)
    select(2, boot(st, podcfg, undo)):close()
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
  local ok, serr = p:start()
  if not ok then
    -- run is one step for its caller: a pod that cannot start is undone
    local deleted, derr = p:delete { force = true }
    if not deleted then log.warn("rollback: " .. derr, { pod = p.id }) end
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

--- Every stored pod, sorted by ID. Never waits for a lock.
function M.list()
  local pods = {}
  for _, id in ipairs(runtime.store():pods()) do pods[#pods + 1] = new_pod(id) end
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
    local undo = failure.undo()
    local ok, err = pcall(function()
      local agent <close> = from == "stopped" and select(2, boot(st, cfg, undo))
                            or sandbox.agent(cfg, sandbox.hypervisor(st, cfg))
      for _, cid in ipairs(st:containers(self.id)) do
        local crec = store.read_opt(st, self.id, cid, "state") or { state = "ready" }
        if from == "stopped" and crec.state == "running" then crec.state = "stopped" end
        if crec.state == "ready" or from == "stopped" then
          failure.check(agent:start_container(cid))
          undo.push(function() agent:stop_container(cid, 1) end)
          crec = { state = "running", started = now() }
          internal.set_container_state(st, self.id, cid, crec)
          internal.sync_container(st, self.id, agent, cid, crec)
        end
      end
      set_pod_state(st, self.id, rec, "running")
    end)
    if not ok then
      undo.run()
      error(err, 0)
    end
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

function Pod:start()
  return failure.catch(start, self)
end

function Pod:stop()
  return failure.catch(internal.locked, self.id, "exclusive", function(st, cfg)
    local rec = pod_record(st, self.id) or failure.raise("pod %s: not fully created", self.id)
    local from = internal.live_state(st, cfg, rec)
    check_move(self.id, from, "stopped")
    local hv = sandbox.hypervisor(st, cfg)
    if from == "paused" then failure.check(hv:resume()) end
    stop_all(st, cfg, from ~= "stopped")
    set_pod_state(st, self.id, rec, "stopped")
    log.info("pod stopped", { pod = self.id })
    return true
  end)
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

--- Delete the pod: its VM and both trees. opts.force kills a running pod
-- first (no grace period) and deletes a pod whose records are broken.
function Pod:delete(opts)
  local force = opts and opts.force
  return failure.catch(function()
    local st = runtime.store()
    local _lock <close> = failure.check(st:lock(self.id, "exclusive", runtime.lock_timeout()))
    local cfg = store.read_opt(st, self.id, nil, "config")
    local rec = pod_record(st, self.id)
    if cfg and rec then
      local live = internal.live_state(st, cfg, rec)
      if live == "running" and force then
        local ok, e = pcall(stop_all, st, cfg, true, true)
        if not ok then log.warn("delete --force: " .. tostring(e), { pod = self.id }) end
      else
        failure.check(state.can_delete("pod", self.id, live))
      end
    end
    if cfg then
      -- The VM goes first: if it cannot be destroyed, the records stay so
      -- that the pod can still be found and deleted later.
      local hv = sandbox.hypervisor(st, cfg)
      local ok, err = hv:destroy()
      if not ok and not force then failure.raise("pod %s: %s", self.id, err) end
    end
    failure.check(st:delete_pod(self.id))
    log.info("pod deleted", { pod = self.id })
    return true
  end)
end

--- A snapshot of the pod: { id, state, hypervisor, accel, pid, created,
-- containers = { {id, state, exit_code}... } }, or nil and a message.
-- opts.live = false skips asking the agent which processes have exited
-- (the records then tell), as a listing does.
function Pod:status(opts)
  local live = not (opts and opts.live == false)
  return failure.catch(function()
    local st = runtime.store()
    if not st:exists(self.id) then failure.raise("pod %s: no such pod", self.id) end
    local cfg = store.read_opt(st, self.id, nil, "config")
    local rec = pod_record(st, self.id)
    local info = store.read_opt(st, self.id, nil, "hypervisor") or {}
    local s = {
      id = self.id,
      state = cfg and internal.live_state(st, cfg, rec) or "unknown",
      hypervisor = cfg and cfg.hypervisor or "?",
      accel = info.accel,
      pid = info.pid,
      created = rec and rec.created,
      containers = {},
    }
    local agent <close> = live and s.state == "running"
                          and sandbox.try_agent(cfg, sandbox.hypervisor(st, cfg), 1) or nil
    for _, cid in ipairs(st:containers(self.id)) do
      local crec = store.read_opt(st, self.id, cid, "state") or { state = "unknown" }
      local c = { id = cid, state = crec.state, exit_code = crec.exit_code, oom = crec.oom }
      if c.state == "running" or c.state == "paused" then
        if s.state ~= "running" and s.state ~= "paused" then
          c.state, c.exit_code = "stopped", nil
        elseif s.state == "paused" then
          c.state = "paused"
        elseif agent then
          local now_st = agent:status(cid)
          if now_st and now_st.state == "exited" then
            c.state, c.exit_code, c.oom = "stopped", now_st.exit_code, now_st.oom or nil
          end
        end
      end
      s.containers[#s.containers + 1] = c
    end
    return s
  end)
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
