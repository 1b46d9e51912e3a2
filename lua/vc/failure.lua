--- Failures of the world (a missing pod, a refused transition, a backend
-- error) travel inside the orchestration as raised failure objects, so that
-- each step stays one line and rollback runs in one place; at the public
-- API they become the usual `nil, msg`. Any other error is a bug and is
-- re-raised untouched, with its traceback.
--
-- One failure is not a failure: a wait of the C core that a Ctrl-C cut
-- short in vc repl (errno EINTR, see src/sys/wait.h) is raised as an
-- interruption, an ordinary error, so that it goes through every catch up
-- to the prompt, after the undo steps and the locks on its way.
local interrupt = require "vc.core.interrupt"

local M = {}

local EINTR = 4

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
  if v == nil then
    M.check_interrupt(msg, ...)
    M.raise(msg or "unknown error")
  end
  return v, msg, ...
end

--- Raise msg as an interruption when errno says a Ctrl-C cut a wait short.
function M.check_interrupt(msg, errno)
  if errno == EINTR then interrupt.raise(msg) end
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
