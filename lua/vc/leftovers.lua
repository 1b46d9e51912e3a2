--- What a pod's backend can leave on the host when a vc process dies at
-- the wrong moment: backend processes (QEMU, an agent on the host) that no
-- record names any more, and mounts under the pod's run folder. A backend
-- process belongs to a pod when one of its arguments names a path in the
-- pod's run folder (QEMU's sockets and console, the agent's socket), which
-- every backend process of vc has.
local host = require "vc.core.host"

local M = {}

-- The programs backends run; nothing else is ever killed.
local PROGRAMS = { "qemu-system", "vc-agent" }

-- The pod ID a process serves under run (the store's run folder), if any:
-- an argument holding "RUN/pods/ID/" at its start or after ':', '=' or ','
-- (QEMU's "file:PATH", "path=PATH").
local function pod_of(proc, prefix)
  for _, arg in ipairs(proc.cmdline) do
    local from = 1
    while true do
      local at = arg:find(prefix, from, true)
      if not at then break end
      local before = at > 1 and arg:sub(at - 1, at - 1) or ""
      if before == "" or before == ":" or before == "=" or before == "," then
        local id = arg:match("^([%w_.-]+)/", at + #prefix)
        if id then return id end
      end
      from = at + 1
    end
  end
  return nil
end

--- The backend processes serving pods of store st, the roots of their
-- process trees only (a container's first process is a fork of the agent
-- with its arguments, and ends with it): { [id] = {proc...} }, each proc
-- { pid=, ppid=, start=, exe=, cmdline= }.
function M.processes(st)
  local _, run = st:dirs()
  local prefix = run .. "/pods/"
  local procs, pods = host.processes(PROGRAMS) or {}, {}
  for _, proc in ipairs(procs) do pods[proc.pid] = pod_of(proc, prefix) end
  local by_pod = {}
  for _, proc in ipairs(procs) do
    local id = pods[proc.pid]
    if id and pods[proc.ppid] ~= id then
      by_pod[id] = by_pod[id] or {}
      table.insert(by_pod[id], proc)
    end
  end
  return by_pod
end

--- Kill pod id's backend processes, except the one named by keep
-- ({pid=, start=}, the VM a record names). Returns the killed processes
-- and a list of errors.
function M.kill(st, id, keep, procs)
  procs = procs or M.processes(st)[id] or {}
  local killed, errs = {}, {}
  for _, p in ipairs(procs) do
    if not (keep and keep.pid == p.pid and keep.start == p.start) then
      local ok, err = host.kill(p.pid, p.start, 5)
      if ok then killed[#killed + 1] = p else errs[#errs + 1] = err end
    end
  end
  return killed, errs
end

--- Detach every mount left under pod id's run folder. Returns the paths
-- unmounted and a list of errors.
function M.unmount(st, id)
  local gone, errs = {}, {}
  for _, path in ipairs(host.mounts(st:paths(id).run_dir) or {}) do
    local ok, err = host.umount(path)
    if ok then gone[#gone + 1] = path else errs[#errs + 1] = err end
  end
  return gone, errs
end

return M
