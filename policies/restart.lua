-- restart: restart a container whose process exited, per its `restart`
-- key: "no" (the default), "on-failure" (a non-zero exit status) or
-- "always" (active by default; it acts only on containers that ask).
--
-- The n-th restart waits BACKOFF * 2^n seconds (at most MAX_DELAY), and
-- a container is restarted at most MAX_COUNT times in a row (until a user
-- starts it again). Annotations of the container may lower or raise
-- these within bounds: "vc.restart.max" (0-100) and "vc.restart.backoff"
-- (seconds, 0-60). An exit vc caused (vc container kill) is not restarted.
--
-- vc has no daemon: a restart happens when vc observes the exit, in
-- `vc container wait` (which sleeps the delay, restarts and waits again)
-- and in the commands that start containers.
local MAX_COUNT = 5
local BACKOFF = 1
local MAX_DELAY = 30

local function number(c, key, default, lo, hi)
  local v = c.annotations[key]
  if v == nil then return default end
  local n = tonumber(v)
  if not n or n ~= n or n < lo or n > hi then
    return nil, string.format("container %s: annotation %s must be a number from %g to %g, not %q",
                              c.id, key, lo, hi, v)
  end
  return n
end

local function settings(c)
  local max, err = number(c, "vc.restart.max", MAX_COUNT, 0, 100)
  if not max then return nil, err end
  local backoff, berr = number(c, "vc.restart.backoff", BACKOFF, 0, 60)
  if not backoff then return nil, berr end
  return { max = math.floor(max), backoff = backoff }
end

local function find(config, id)
  for _, c in ipairs(config.containers) do
    if c.id == id then return c end
  end
end

return {
  name = "restart",
  description = 'restart = "on-failure" | "always": restart exited containers, with backoff',

  admit = function(config)
    for _, c in ipairs(config.containers) do
      local ok, err = settings(c)
      if not ok then return false, err end
    end
    return true
  end,

  container_exit = function(ev)
    if ev.requested then return nil end
    local c = find(ev.config, ev.container)
    local mode = c and c.restart or "no"
    if mode == "no" or (mode == "on-failure" and ev.exit_code == 0) then return nil end
    local s = settings(c)
    if not s or ev.restarts >= s.max then return nil end
    return { restart = true, delay = math.min(s.backoff * 2 ^ ev.restarts, MAX_DELAY) }
  end,
}
