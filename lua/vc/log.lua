--- Logging to stderr, as text or JSON lines, filtered by level.
-- The CLI sets the level and format from --log-level and --log-format;
-- pod scripts may call vc.log.setup themselves.
local cjson = require "cjson"

local M = {}

local LEVELS = { error = 1, warn = 2, info = 3, debug = 4 }
local settings = { level = LEVELS.warn, format = "text" }

--- Set the level ("error", "warn", "info", "debug") and/or the format
-- ("text", "json"). Returns true, or nil and a message for a bad value.
function M.setup(opts)
  if opts.level ~= nil then
    if not LEVELS[opts.level] then
      return nil, string.format("invalid log level %q (error, warn, info, debug)",
                                tostring(opts.level))
    end
    settings.level = LEVELS[opts.level]
  end
  if opts.format ~= nil then
    if opts.format ~= "text" and opts.format ~= "json" then
      return nil, string.format("invalid log format %q (text, json)", tostring(opts.format))
    end
    settings.format = opts.format
  end
  return true
end

local function emit(level, msg, fields)
  if LEVELS[level] > settings.level then return end
  local line
  if settings.format == "json" then
    local rec = { time = os.date("!%Y-%m-%dT%H:%M:%SZ"), level = level, msg = msg }
    for k, v in pairs(fields or {}) do rec[k] = v end
    line = cjson.encode(rec)
  else
    local parts = { "vc[" .. level .. "]: " .. msg }
    local keys = {}
    for k in pairs(fields or {}) do keys[#keys + 1] = k end
    table.sort(keys)
    for _, k in ipairs(keys) do parts[#parts + 1] = k .. "=" .. tostring(fields[k]) end
    line = table.concat(parts, " ")
  end
  io.stderr:write(line, "\n")
end

function M.error(msg, fields) emit("error", msg, fields) end
function M.warn(msg, fields) emit("warn", msg, fields) end
function M.info(msg, fields) emit("info", msg, fields) end
function M.debug(msg, fields) emit("debug", msg, fields) end

return M
