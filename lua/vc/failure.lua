--- Failures of the world (a missing pod, a refused transition, a backend
-- error) travel inside the orchestration as raised failure objects, so that
-- each step stays one line and rollback runs in one place; at the public
-- API they become the usual `nil, msg`. Any other error is a bug and is
-- re-raised untouched, with its traceback.
local M = {}

local Failure = {}
Failure.__index = Failure
Failure.__tostring = function(f) return f.msg end

--- Raise a failure with a formatted message.
function M.raise(fmt, ...)
  error(setmetatable({ msg = select("#", ...) > 0 and fmt:format(...) or fmt }, Failure), 0)
end

--- Pass results through, raising a failure when the first is nil: for the
-- `value | nil, msg` results of the C core.
function M.check(v, msg, ...)
  if v == nil then M.raise(msg or "unknown error") end
  return v, msg, ...
end

function M.is(e)
  return getmetatable(e) == Failure
end

--- Call fn(...); a failure becomes `nil, msg`, other errors propagate.
function M.catch(fn, ...)
  local res = table.pack(pcall(fn, ...))
  if res[1] then return table.unpack(res, 2, res.n) end
  if M.is(res[2]) then return nil, res[2].msg end
  error(res[2], 0)
end

--- An undo list: push(fn) as each step succeeds, run() to undo them in
-- reverse order when a later step fails. Undo errors are collected, never
-- raised, so every step gets its chance.
function M.undo()
  local steps = {}
  local u = {}
  function u.push(fn) steps[#steps + 1] = fn end
  function u.run()
    local errs = {}
    for i = #steps, 1, -1 do
      local ok, e = pcall(steps[i])
      if not ok then errs[#errs + 1] = tostring(e) end
    end
    steps = {}
    return errs
  end
  return u
end

return M
