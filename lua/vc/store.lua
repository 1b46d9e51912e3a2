--- JSON records in the pod store: the C store keeps bytes crash-safe and
-- locked; this turns them into tables and back, and names the file and
-- the pod when a record is missing or does not parse.
local cjson = require "cjson"
local failure = require "vc.failure"

local M = {}

local ENOENT = 2

local function where(pod, ctr, name)
  if ctr then
    return string.format("container %s of pod %s: %s.json", ctr, pod, name)
  end
  return string.format("pod %s: %s.json", pod, name)
end

-- JSON has one number type and cjson reads every number as a float: give
-- integral values back their integer subtype (exit codes, pids, sizes).
local tointeger = math.tointeger

local function integers(t)
  for k, v in next, t do
    local kind = type(v)
    if kind == "number" then
      local i = tointeger(v)
      if i then t[k] = i end
    elseif kind == "table" then
      integers(v)
    end
  end
  return t
end

--- A record's bytes (from st:read or st:snapshot) as a table | nil, msg, 22.
function M.decode(pod, ctr, name, data)
  local ok, t = pcall(cjson.decode, data)
  if not ok or type(t) ~= "table" then
    return nil, where(pod, ctr, name) .. ": not a valid record", 22
  end
  return integers(t)
end

--- Read a record: table | nil, msg, errno (errno 2 when missing).
function M.read(st, pod, ctr, name)
  local data, msg, errno = st:read(pod, ctr, name)
  if data == nil then return nil, msg, errno end
  return M.decode(pod, ctr, name, data)
end

-- data decoded, nil for nil; a record that does not parse raises.
local function decoded(pod, ctr, name, data)
  if data == nil then return nil end
  local t, msg = M.decode(pod, ctr, name, data)
  if t == nil then failure.raise(msg) end
  return t
end

--- The records of a st:snapshot(pod) as tables (nil when missing): config,
-- state, hypervisor, and container_states[ID]; raises a failure for a
-- record that does not parse, as read_opt does.
function M.decode_snapshot(pod, snap)
  local states = {}
  for cid, data in pairs(snap.container_states) do
    states[cid] = decoded(pod, cid, "state", data)
  end
  return {
    config = decoded(pod, nil, "config", snap.config),
    state = decoded(pod, nil, "state", snap.state),
    hypervisor = decoded(pod, nil, "hypervisor", snap.hypervisor),
    containers = snap.containers,
    container_states = states,
  }
end

--- Read a record that may be missing: table | nil, and raise a failure for
-- anything else than its absence.
function M.read_opt(st, pod, ctr, name)
  local t, msg, errno = M.read(st, pod, ctr, name)
  if t == nil and errno ~= ENOENT then failure.raise(msg) end
  return t
end

--- Read a record that must be there; raise a failure otherwise.
function M.must_read(st, pod, ctr, name)
  return failure.check(M.read(st, pod, ctr, name))
end

--- Write a record atomically; raise a failure on error.
function M.write(st, pod, ctr, name, t)
  failure.check(st:write(pod, ctr, name, cjson.encode(t)))
end

return M
