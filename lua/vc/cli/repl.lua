--- vc repl: a Lua 5.4 prompt with vc loaded, for managing pods by hand.
--
-- On a terminal: line editing, Tab completion (vc.cli.complete) and a
-- history kept across sessions ($XDG_STATE_HOME/vc/history, else
-- ~/.vc_history) through libedit (vc.core.lineedit). An entry is compiled
-- first as `return <entry>`, so that an expression prints its value
-- (vc.cli.pretty), then as a statement; one that could still be completed
-- (lua.c's "<eof>" test) continues on a ">>" prompt. Errors print their
-- message and the session goes on. Ctrl-C interrupts the running call
-- (vc.core.interrupt says where it lands), or drops the line being typed;
-- Ctrl-D or :quit leaves.
--
-- Without a terminal, stdin is one script, run in the same environment,
-- with no prompt: `echo 'print(#vc.pod.list())' | vc repl`.
local args = require "vc.cli.args"
local build = require "vc.core.build"
local complete = require "vc.cli.complete"
local failure = require "vc.failure"
local interrupt = require "vc.core.interrupt"
local lineedit = require "vc.core.lineedit"
local pretty = require "vc.cli.pretty"
local session = require "vc.cli.session"

local M = {}

local SPEC = {
  usage = "vc repl [--no-history]",
  summary = "An interactive Lua prompt with vc loaded (:help inside lists what there is).\n"
            .. "Without a terminal, stdin is run as one script.",
  options = {
    { "--no-history", help = "neither read nor write the history file" },
  },
}

local PROMPT, PROMPT2 = "> ", ">> "
local EINTR = 4
local EOF_MARK = "<eof>"

local function incomplete(err)
  return err ~= nil and err:sub(-#EOF_MARK) == EOF_MARK
end

--- Compile one entry: the function to run; "incomplete" when more lines
-- could make it whole; or nil and the compiler's message.
function M.compile(text, env)
  local expr, eerr = load("return " .. text, "=stdin", "t", env)
  if expr then return expr end
  local stmt, serr = load(text, "=stdin", "t", env)
  if stmt then return stmt end
  if incomplete(serr) or incomplete(eerr) then return "incomplete" end
  return nil, serr
end

--- An error value as one message.
function M.error_text(e)
  if failure.is(e) then return e.msg end
  local t = type(e)
  if t == "string" or t == "number" then return tostring(e) end
  local mt = getmetatable(e)
  if type(mt) == "table" and mt.__tostring then return tostring(e) end
  return "(error object is a " .. t .. " value)"
end

-- Run a compiled entry and print what it gives; a Ctrl-C interrupts both.
-- fn is called by interrupt.call itself: a function of this (shielded)
-- module between the two would keep a Ctrl-C out of the user's loops.
local function run(fn)
  local r = table.pack(interrupt.call(fn))
  local ok, text = r[1], r[2]
  if ok then ok, text = interrupt.call(pretty.results, r.n - 1, table.unpack(r, 2, r.n)) end
  io.stdout:flush()
  if not ok then
    local msg = M.error_text(text)
    -- a Ctrl-C: on a line of its own, after the terminal's "^C"
    if msg:match("interrupted$") then msg = "\n" .. msg end
    io.stderr:write(msg, "\n")
  elseif text then
    io.stdout:write(text, "\n")
  end
  io.stdout:flush()
end

local COMMANDS = {
  help = function() io.stdout:write(session.help()) end,
  quit = function() return "quit" end,
}
COMMANDS.q = COMMANDS.quit
COMMANDS.exit = COMMANDS.quit

local function command(line)
  local name = line:match("^%s*:(%S*)%s*$")
  local fn = name and COMMANDS[name]
  if not fn then
    io.stderr:write("unknown command ", line:match("^%s*(.-)%s*$"), " (try :help)\n")
    return nil
  end
  return fn()
end

--- The history file: $XDG_STATE_HOME/vc/history, else ~/.vc_history.
function M.history_path()
  local state = os.getenv("XDG_STATE_HOME")
  if state and state:sub(1, 1) == "/" then return state .. "/vc/history" end
  local home = os.getenv("HOME")
  if home and home ~= "" then return home .. "/.vc_history" end
  return nil
end

local function interactive(env, history)
  local ed <close> = lineedit.open("vc", function(before, columns)
    return complete.line(before, env, columns)
  end)
  if history then ed:load_history(history) end -- none yet is fine
  io.stdout:write("vc ", build.version, " (", build.lua, "): :help lists what there is, ",
                  ":quit or Ctrl-D leaves\n")
  local buffer
  while true do
    local line, err, errno = ed:readline(buffer and PROMPT2 or PROMPT)
    if line == nil and errno == EINTR then
      io.stdout:write("^C\n") -- as libedit shows "^D"
      buffer = nil
    elseif line == nil then
      io.stdout:write("\n")
      if err then io.stderr:write("vc: repl: ", err, "\n") end
      return
    elseif not buffer and line:match("^%s*:") then
      ed:add_history(line)
      if command(line) == "quit" then return end
    else
      local text = buffer and (buffer .. "\n" .. line) or line
      local fn, msg = M.compile(text, env)
      if fn == "incomplete" then
        buffer = text
      else
        buffer = nil
        if text:find("%S") then
          ed:add_history(text)
          if history then
            local ok, herr = ed:save_history(history)
            if not ok then
              io.stderr:write("vc: ", herr, " (history not kept)\n")
              history = nil
            end
          end
        end
        if fn then
          run(fn)
        else
          io.stderr:write(msg, "\n")
        end
      end
    end
  end
end

local function script(env)
  local text = io.stdin:read("a")
  local fn, err = load((text:gsub("^#[^\n]*", "")), "=stdin", "t", env)
  if not fn then failure.raise("%s", err) end
  local ok, e = interrupt.call(fn)
  io.stdout:flush()
  if not ok then failure.raise("%s", M.error_text(e)) end
end

function M.main(argv, first)
  local o = args.parse(SPEC, argv, first)
  local env = session.env()
  -- vc's own modules finish their step before a Ctrl-C stops them.
  interrupt.shield("@" .. build.home .. "/lua/vc/")
  local tty = lineedit.isatty(0)
  -- The session itself runs with SIGINT blocked: a Ctrl-C between two
  -- evaluations never ends it.
  local ok, err = interrupt.call(function()
    if tty then
      interactive(env, not o.no_history and M.history_path() or nil)
    else
      script(env)
    end
  end)
  if not ok then error(err, 0) end
  return 0
end

return M
