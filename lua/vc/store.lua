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
local function integers(t)
  for k, v in pairs(t) do
    if type(v) == "number" then
      t[k] = math.tointeger(v) or v
    elseif type(v) == "table" then
      integers(v)
    end
  end
  return t
end

--- Read a record: table | nil, msg, errno (errno 2 when missing).
function M.read(st, pod, ctr, name)
  local data, msg, errno = st:read(pod, ctr, name)
  if data == nil then return nil, msg, errno end
  local ok, t = pcall(cjson.decode, data)
  if not ok or type(t) ~= "table" then
    return nil, where(pod, ctr, name) .. ": not a valid record", 22
  end
  return integers(t)
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
