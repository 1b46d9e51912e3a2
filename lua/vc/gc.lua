--- Recovery after crashes: `vc gc`. Finds what dead vc processes and dead
-- VMs leave behind and cleans it up, one pod at a time under its lock:
--
--   * incomplete pods (a create that never finished, a delete that did
--     not) are deleted, with whatever backend they started;
--   * pods whose VM or sandbox died behind vc's back are recorded as
--     stopped, their containers too, and their stale sockets removed;
--   * backend processes (QEMU, a host agent) that no record names, and
--     mounts left under a pod's run folder, are killed and unmounted;
--   * containers never fully added to their pod are removed;
--   * a pod's network goes with the pod (CNI DEL with its recorded
--     result, then its namespace); a namespace of this store that no pod
--     accounts for is removed.
--
-- A pod locked by another process is being worked on and is skipped. A
-- healthy pod is never touched: every action needs evidence (a missing
-- record, a dead VM, a process or mount no record accounts for).
local failure = require "vc.failure"
local leftovers = require "vc.leftovers"
local network = require "vc.network"
local podlib = require "vc.pod"
local runtime = require "vc.runtime"
local sandbox = require "vc.sandbox"
local store = require "vc.store"

local internal = podlib.internal

local M = {}

local ENOENT = 2

local function now()
  return os.date("!%Y-%m-%dT%H:%M:%SZ")
end

-- The VM the pod's records name, when it is alive: {pid=, start=}.
local function recorded_vm(st, cfg)
  local info = store.read_opt(st, cfg.id, nil, "hypervisor")
  if not info or not info.pid then return nil end
  local hv = sandbox.hypervisor(st, cfg)
  local vm = hv:status()
  hv:close()
  if vm ~= "running" and vm ~= "paused" then return nil end
  return { pid = info.pid, start = info.start_time }
end

-- The files a VM's sockets leave in its run folder (qemu: a socket and a
-- lock for each of the agent's ports).
local SOCKET_FILES = { "agent.sock", "ctrl.sock", "monitor.sock" }
for k = 0, 15 do
  SOCKET_FILES[#SOCKET_FILES + 1] = "agent." .. k .. ".sock"
  SOCKET_FILES[#SOCKET_FILES + 1] = "agent." .. k .. ".lock"
end

-- Sockets of a pod whose VM is gone: nothing serves them any more.
local function stale_sockets(st, id)
  local run = st:paths(id).run_dir
  local found = {}
  for _, name in ipairs(SOCKET_FILES) do
    -- (a socket cannot be opened; renaming a file onto itself tells
    -- whether it is there, and changes nothing)
    local path = run .. "/" .. name
    if os.rename(path, path) then found[#found + 1] = path end
  end
  return found
end

-- Containers without a state record: an add that died half-way.
local function incomplete_containers(st, id)
  local list = {}
  for _, cid in ipairs(st:containers(id)) do
    local rec, _, errno = store.read(st, id, cid, "state")
    if not rec and errno == ENOENT then list[#list + 1] = cid end
  end
  return list
end

-- One pod, under its lock. Appends what was done (or would be) to report.
local function sweep_pod(st, id, procs, report, dry)
  local function did(what) report[#report + 1] = { pod = id, action = what } end
  local cfg, cerr, cerrno = store.read(st, id, nil, "config")
  local rec, rerr, rerrno = store.read(st, id, nil, "state")
  if (cerr and cerrno ~= ENOENT) or (rerr and rerrno ~= ENOENT) then
    -- a record that does not parse is not ours to judge: say so, keep it
    did("left alone: " .. (cerr or rerr) .. " (vc pod delete --force " .. id .. " removes it)")
    return
  end
  if not cfg or not rec then
    did("deleted: its creation or deletion never finished")
    if not dry then internal.delete_locked(st, id, true) end
    return
  end
  local live = internal.live_state(st, cfg, rec)
  -- Processes no record names go first, so that stopping cleans up after
  -- them too (a namespace sandbox's cgroups).
  local keep = live ~= "stopped" and recorded_vm(st, cfg) or nil
  local strays = {}
  for _, p in ipairs(procs or {}) do
    if not (keep and keep.pid == p.pid and keep.start == p.start) then
      strays[#strays + 1] = p
      did(string.format("killed %s process %d, which no record names", p.exe, p.pid))
    end
  end
  if not dry and #strays > 0 then
    local _, errs = leftovers.kill(st, id, nil, strays)
    if errs[1] then failure.raise("pod %s: %s", id, errs[1]) end
    if live == "stopped" and rec.state == "stopped" then
      failure.check(sandbox.hypervisor(st, cfg):stop())
    end
  end
  if live == "stopped" and rec.state ~= "stopped" then
    did("recorded as stopped: its " .. (cfg.hypervisor == "qemu" and "VM" or "sandbox")
        .. " is gone")
    if not dry then
      internal.stop_all(st, cfg, false)
      rec.stopped = now()
      internal.set_pod_state(st, id, rec, "stopped")
    end
  end
  if live == "stopped" then
    for _, path in ipairs(stale_sockets(st, id)) do
      did("removed stale socket " .. path)
      if not dry then os.remove(path) end
    end
  end
  for _, cid in ipairs(incomplete_containers(st, id)) do
    did("removed container " .. cid .. ": its creation never finished")
    if not dry then
      if live == "ready" or live == "running" then
        local hv = sandbox.hypervisor(st, cfg)
        local agent = sandbox.try_agent(cfg, hv, 5)
        if agent then
          agent:remove_container(cid)
          agent:close()
        end
        pcall(sandbox.unshare_container, hv,
              store.read_opt(st, id, cid, "config") or { id = cid })
      end
      failure.check(st:delete_container(id, cid))
    end
  end
end

--- Sweep the store. opts.dry_run reports without acting. Returns the
-- report, a list of { pod=, action= }, and a list of errors (pods that
-- could not be cleaned, with why).
function M.run(opts)
  local dry = opts and opts.dry_run
  local st = runtime.store()
  local procs = leftovers.processes(st)
  local report, errors = {}, {}
  local ids = {}
  for _, id in ipairs(st:pods()) do
    ids[id] = true
    local lock = st:lock(id, "exclusive", 0)
    if lock then
      local ok, err = pcall(sweep_pod, st, id, procs[id], report, dry)
      lock:unlock()
      if not ok then
        if not failure.is(err) then error(err, 0) end
        errors[#errors + 1] = err.msg
      end
    end
  end
  -- Backend processes of pods that are gone altogether.
  for id, list in pairs(procs) do
    if not ids[id] then
      for _, p in ipairs(list) do
        report[#report + 1] = { pod = id, action = string.format(
          "killed %s process %d: its pod is gone", p.exe, p.pid) }
      end
      if not dry then
        local _, errs = leftovers.kill(st, id, nil, list)
        for _, e in ipairs(errs) do errors[#errors + 1] = e end
      end
    end
  end
  -- Network namespaces of this store that no pod accounts for.
  for _, o in ipairs(network.orphans(st)) do
    report[#report + 1] = { pod = o.pod, action = "removed network namespace " .. o.path
                            .. ": its pod is gone" }
    if not dry then
      local ok, err = network.remove_orphan(o)
      if not ok then errors[#errors + 1] = err end
    end
  end
  table.sort(report, function(a, b) return a.pod < b.pod end)
  return report, errors
end

return M
