--- vc run SCRIPT.lua [ARGS...]: run a Lua pod script with vc loaded, as
-- the lua interpreter would: the global `arg` holds the arguments
-- (arg[0] the script), and `...` too.
local args = require "vc.cli.args"
local failure = require "vc.failure"

local M = {}

local SPEC = {
  usage = "vc run SCRIPT.lua [ARGS...]",
  summary = "Run a Lua pod script; `local vc = require \"vc\"` gives the API.",
}

function M.main(argv, first)
  local script = argv[first]
  if script == "-h" or script == "--help" then
    io.stdout:write(args.help(SPEC))
    return 0
  end
  if not script then args.usage_error("missing SCRIPT (usage: %s)", SPEC.usage) end
  local chunk, err = loadfile(script, "t")
  if not chunk then failure.raise("%s", err) end
  local scriptargs = { [0] = script }
  for i = first + 1, #argv do scriptargs[#scriptargs + 1] = argv[i] end
  _G.arg = scriptargs
  local ok, res = xpcall(chunk, debug.traceback, table.unpack(scriptargs))
  if not ok then
    failure.raise("%s", tostring(res))
  end
  return 0
end

return M
