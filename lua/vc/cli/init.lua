--- The vc command line: global options, then a command.
--
--     vc [--root DIR] [--log-level L] [--log-format F] COMMAND [ARGS...]
--
-- main(argv) returns the exit code: 0, 1 for a failure (printed as
-- "vc: <what>: <why>"), 2 for a usage error, or a command's own (exec).
local args = require "vc.cli.args"
local failure = require "vc.failure"
local log = require "vc.log"
local runtime = require "vc.runtime"

local M = {}

local COMMANDS = {
  { "run", "vc.cli.script", "run a Lua pod script" },
  { "repl", "vc.cli.repl", "an interactive Lua prompt for managing pods" },
  { "pod", "vc.cli.pod", "create, run, start, stop, pause, resume, delete, list pods" },
  { "container", "vc.cli.container", "create, start, stop, kill, exec, delete containers" },
  { "policy", "vc.cli.policy", "check a config against the policies; list them" },
  { "gc", "vc.cli.gc", "clean up what crashes left behind (vc gc --dry-run tells)" },
  { "version", nil, "print the version" },
}

local GLOBAL = {
  usage = "vc [--root DIR] [--log-level LEVEL] [--log-format FORMAT] COMMAND [ARGS...]",
  options = {
    { "--root", arg = "DIR",
      help = "keep pods under DIR (default /var/lib/vc and /run/vc; env VC_ROOT)" },
    { "--log-level", arg = "LEVEL", help = "error, warn, info or debug (default warn)" },
    { "--log-format", arg = "FORMAT", help = "text or json (default text)" },
  },
}

local function help()
  local lines = { args.help(GLOBAL), "commands:" }
  for _, c in ipairs(COMMANDS) do
    lines[#lines + 1] = string.format("  %-12s %s", c[1], c[3])
  end
  lines[#lines + 1] = "\n'vc COMMAND --help' tells more."
  return table.concat(lines, "\n") .. "\n"
end

-- Split argv into the global options and the command with its arguments.
local function globals(argv)
  local g, i = {}, 1
  while i <= #argv do
    local a = argv[i]
    local name, inline = a:match("^(%-%-[%w-]+)=(.*)$")
    name = name or a
    if name == "--root" or name == "--log-level" or name == "--log-format" then
      local v = inline
      if not v then
        i = i + 1
        v = argv[i]
      end
      if v == nil then args.usage_error("option %s needs a value", name) end
      g[name:sub(3):gsub("-", "_")] = v
    elseif a == "-h" or a == "--help" then
      g.help = true
    elseif a:sub(1, 1) == "-" then
      args.usage_error("unknown option %s (usage: %s)", a, GLOBAL.usage)
    else
      break
    end
    i = i + 1
  end
  return g, i
end

local function dispatch(argv)
  local g, i = globals(argv)
  if g.help or argv[i] == "help" then
    io.stdout:write(help())
    return 0
  end
  local ok, err = log.setup { level = g.log_level, format = g.log_format }
  if not ok then args.usage_error("%s", err) end
  if g.root then runtime.setup { root = g.root } end
  local name = argv[i]
  if not name then args.usage_error("missing command (usage: %s)", GLOBAL.usage) end
  if name == "version" then
    io.stdout:write("vc ", require("vc.core.build").version, " (",
                    require("vc.core.build").lua, ")\n")
    return 0
  end
  for _, c in ipairs(COMMANDS) do
    if c[1] == name and c[2] then
      return require(c[2]).main(argv, i + 1)
    end
  end
  args.usage_error("unknown command %q (try 'vc --help')", name)
end

local function handler(e)
  if args.is_usage(e) or failure.is(e) then return e end
  return debug.traceback(tostring(e), 2)
end

function M.main(argv)
  -- installed as vc-runtime too: the OCI runtime command line
  if tostring(argv[0]):match("vc%-runtime[%w-]*$") then
    return require("vc.cli.oci").main(argv)
  end
  local ok, res = xpcall(dispatch, handler, argv)
  if ok then return res or 0 end
  if args.is_usage(res) then
    if res.help then
      io.stdout:write(res.msg)
      return 0
    end
    io.stderr:write("vc: ", res.msg, "\n")
    return 2
  end
  if failure.is(res) then
    io.stderr:write("vc: ", res.msg, "\n")
    return 1
  end
  io.stderr:write("vc: internal error: ", tostring(res), "\n")
  return 1
end

--- For commands: turn a `nil, msg` result into a failure (exit code 1).
function M.check(v, msg, ...)
  return failure.check(v, msg, ...)
end

return M
