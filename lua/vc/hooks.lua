--- Hooks: the OCI hooks of a pod's config (programs run on the host with
-- the OCI state on their stdin) and the Lua hooks that policies and pod
-- scripts attach to lifecycle points.
--
-- Lua hooks get one event table, read-only: { point, pod, config (the
-- pod's config with its containers), state (the pod's records: state and
-- each container's state, exit code, restarts), and for container_exit:
-- container, exit_code, oom, restarts, requested }. Policy hooks run
-- first, in policy order, then the script's, in the order attached.
--
-- pre_* hooks run under the pod's lock before the step changes anything:
-- an error or a `false, reason` result aborts the step, which is rolled
-- back. post_* hooks run after the step, the lock released; their errors
-- are logged. container_exit hooks run under the lock too, where vc sees
-- the exit, and may return { restart = true, delay = seconds } (the first
-- such answer counts; see vc.pod's sync_container).
local cjson = require "cjson"
local failure = require "vc.failure"
local log = require "vc.log"
local policy = require "vc.policy"
local process = require "vc.core.process"
local runtime = require "vc.runtime"
local store = require "vc.store"

local M = {}

M.OCI_VERSION = "1.0.2"
-- Bounds the host keeps whatever a policy asks: restarts per container
-- (until a user starts it again) and the delay before one.
M.MAX_RESTARTS = 100
M.MAX_RESTART_DELAY = 300

local KNOWN = {}
for _, p in ipairs(policy.POINTS) do KNOWN[p] = true end

local attached = {}   -- { { point =, fn = } } from pod scripts
local next_id = 0

--- Attach fn(event) to a lifecycle point for the rest of this process
-- (every pod it acts on); returns a handle for off.
function M.on(point, fn)
  if not KNOWN[point] then
    error(string.format("bad argument #1 to 'on' (unknown point %q; one of %s)",
                        tostring(point), table.concat(policy.POINTS, ", ")), 2)
  end
  if type(fn) ~= "function" then
    error("bad argument #2 to 'on' (function expected, got " .. type(fn) .. ")", 2)
  end
  next_id = next_id + 1
  attached[#attached + 1] = { point = point, fn = fn, id = next_id }
  return next_id
end

--- Detach the hook on returned.
function M.off(handle)
  for i, h in ipairs(attached) do
    if h.id == handle then
      table.remove(attached, i)
      return true
    end
  end
  return false
end

--- Detach every script hook.
function M.clear()
  attached = {}
end

local function script_hooks(point)
  local out = {}
  for _, h in ipairs(attached) do
    if h.point == point then out[#out + 1] = h end
  end
  return out
end

--- Whether anything listens at point (loads the policies).
function M.wants(point)
  return #script_hooks(point) > 0 or #policy.with(point) > 0
end

-- A read-only view of t for trusted script hooks.
local function readonly(t)
  if type(t) ~= "table" then return t end
  return setmetatable({}, {
    __index = function(_, k) return readonly(t[k]) end,
    __newindex = function() error("attempt to modify a read-only table (hook event)", 2) end,
    __len = function() return #t end,
    __pairs = function()
      return function(_, k)
        local nk, nv = next(t, k)
        return nk, readonly(nv)
      end, nil, nil
    end,
    __metatable = false,
  })
end

--- The pod's config with its containers' configs, as stored.
function M.full_config(st, cfg)
  local full = {}
  for k, v in pairs(cfg) do full[k] = v end
  full.containers = {}
  for _, cid in ipairs(st:containers(cfg.id)) do
    full.containers[#full.containers + 1] = store.read_opt(st, cfg.id, cid, "config")
  end
  return full
end

-- The pod's records (no agent asked: a hook may run while one is busy).
local function state_of(st, id)
  local rec = store.read_opt(st, id, nil, "state")
  local s = { state = rec and rec.state or "none", created = rec and rec.created,
              containers = {} }
  for _, cid in ipairs(st:containers(id)) do
    local c = store.read_opt(st, id, cid, "state") or { state = "none" }
    s.containers[#s.containers + 1] = {
      id = cid, state = c.state, exit_code = c.exit_code, restarts = c.restarts,
    }
  end
  return s
end

--- The event of point for the pod cfg (a config carrying containers is
-- taken as the full one: create, before anything is stored).
function M.event(point, st, cfg, extra)
  local ev = {
    point = point, pod = cfg.id,
    config = cfg.containers and cfg or M.full_config(st, cfg),
    state = st:exists(cfg.id) and state_of(st, cfg.id) or { state = "none", containers = {} },
  }
  for k, v in pairs(extra or {}) do ev[k] = v end
  return ev
end

-- Run the hooks of point over ev: each(policy_or_nil, ok, a, b) gets
-- what each returned (ok false: it raised a).
local function dispatch(point, ev, each)
  for _, p in ipairs(policy.with(point)) do
    local ok, err, a, b = pcall(policy.call, p, point, "ro", ev)
    if ok then each(p, true, a, b) else each(p, false, err) end
  end
  local hooks = script_hooks(point)
  if #hooks > 0 then
    local view = readonly(ev)
    for _, h in ipairs(hooks) do
      local ok, a, b = pcall(h.fn, view)
      each(nil, ok, a, b)
    end
  end
end

local function who(p, point)
  return p and string.format("policy %s: %s", p.name, point) or (point .. " hook")
end

local function message(e)
  return failure.is(e) and e.msg or tostring(e)
end

--- Run the pre_* hooks of point for pod cfg; the first error or `false,
-- reason` raises a failure: "pod ID: policy NAME: pre_start: REASON".
function M.pre(point, st, cfg, extra)
  if not M.wants(point) then return end
  local ev = M.event(point, st, cfg, extra)
  dispatch(point, ev, function(p, ok, a, b)
    if not ok then
      local msg = message(a)
      if p then failure.raise("pod %s: %s", cfg.id, msg) end
      failure.raise("pod %s: %s: %s", cfg.id, who(p, point), msg)
    elseif a == false then
      failure.raise("pod %s: %s: refused: %s", cfg.id, who(p, point),
                    b ~= nil and tostring(b) or "no reason given")
    end
  end)
end

--- Run the post_* hooks of point for pod id (ev: an event built before the
-- step, when the step removes the records). Errors are logged.
function M.post(point, id, ev)
  local ok, err = pcall(function()
    if not M.wants(point) then return end
    if not ev then
      local st = runtime.store()
      local cfg = store.read_opt(st, id, nil, "config")
      ev = cfg and M.event(point, st, cfg) or { point = point, pod = id }
    end
    ev.point = point
    dispatch(point, ev, function(p, hok, a)
      if not hok then log.warn(who(p, point) .. " failed: " .. message(a), { pod = id }) end
    end)
  end)
  if not ok then log.warn(point .. ": " .. message(err), { pod = id }) end
end

--- The container_exit hooks of a recorded exit. Returns a restart to do,
-- { delay = seconds } within the host's bounds, or nil.
function M.container_exit(st, id, cid, rec, requested)
  local ok, res = pcall(function()
    if not M.wants("container_exit") then return nil end
    local cfg = store.must_read(st, id, nil, "config")
    local ev = M.event("container_exit", st, cfg, {
      container = cid, exit_code = rec.exit_code, oom = rec.oom,
      restarts = rec.restarts or 0, requested = requested or false,
    })
    local decision
    dispatch("container_exit", ev, function(p, hok, a)
      if not hok then
        log.warn(who(p, "container_exit") .. " failed: " .. message(a),
                 { pod = id, container = cid })
      elseif decision == nil and type(a) == "table" and a.restart == true then
        decision = { delay = tonumber(a.delay) or 0, by = p and p.name or "script" }
      end
    end)
    return decision
  end)
  if not ok then
    log.warn("container_exit: " .. message(res), { pod = id, container = cid })
    return nil
  end
  if not res then return nil end
  if (rec.restarts or 0) >= M.MAX_RESTARTS then
    log.warn("container_exit: restart refused: it restarted " .. M.MAX_RESTARTS .. " times",
             { pod = id, container = cid })
    return nil
  end
  if res.delay ~= res.delay or res.delay < 0 then res.delay = 0 end
  res.delay = math.min(res.delay, M.MAX_RESTART_DELAY)
  return res
end

-- OCI hooks ------------------------------------------------------------------

local SIGNALS = { [1] = "SIGHUP", [2] = "SIGINT", [3] = "SIGQUIT", [6] = "SIGABRT",
                  [9] = "SIGKILL", [11] = "SIGSEGV", [13] = "SIGPIPE", [15] = "SIGTERM" }

-- Why a finished hook counts as failed, or nil when it succeeded.
local function failed(r, h)
  local tail = r.stderr:gsub("%s+$", "")
  if #tail > 400 then tail = "..." .. tail:sub(-400) end
  tail = tail ~= "" and (": " .. tail) or ""
  if r.status == "timeout" then
    return string.format("timed out after %gs (killed with its process group)", h.timeout)
  elseif r.status == "signaled" then
    return string.format("killed by signal %d%s%s", r.signal,
                         SIGNALS[r.signal] and (" (" .. SIGNALS[r.signal] .. ")") or "", tail)
  elseif r.code ~= 0 then
    return string.format("exited with status %d%s", r.code, tail)
  end
end

--- The OCI state of the pod, as hooks read it on their stdin.
function M.oci_state(st, cfg, status)
  local info = store.read_opt(st, cfg.id, nil, "hypervisor") or {}
  return {
    ociVersion = M.OCI_VERSION,
    id = cfg.id,
    status = status,
    pid = math.tointeger(info.pid) or 0,
    bundle = st:paths(cfg.id).config_dir,
    annotations = cfg.annotations or {},
  }
end

--- Run the pod's OCI hooks of kind ("prestart", "poststart", "poststop")
-- in order, each with the OCI state (status) on its stdin (oci: a state
-- taken before, when the records are gone). A failing one raises a
-- failure naming it, except poststop hooks, which are logged so that
-- nothing blocks cleanup.
function M.oci(kind, st, cfg, status, oci)
  local list = cfg.hooks and cfg.hooks[kind] or {}
  if #list == 0 then return end
  local input = cjson.encode(oci or M.oci_state(st, cfg, status))
  for _, h in ipairs(list) do
    local argv = #h.args > 0 and h.args or { h.path }
    local r, err = process.run {
      path = h.path, args = argv, env = h.env, stdin = input, timeout = h.timeout,
    }
    local why = r and failed(r, h)
    if why or not r then
      local msg = string.format("pod %s: %s hook %s", cfg.id, kind,
                                why and (h.path .. ": " .. why) or err)
      if kind ~= "poststop" then failure.raise("%s", msg) end
      log.warn(msg, { pod = cfg.id })
    else
      log.debug(kind .. " hook ran", { pod = cfg.id, hook = h.path, seconds = r.elapsed })
    end
  end
end

return M
