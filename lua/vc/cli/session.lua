--- What a vc repl session sees: its environment (vc, the helpers pods()
-- and pod "ID", the globals through __index, so that a session's own
-- variables never land in _G) and the one-line help of everything in it.
local container = require "vc.container"
local interrupt = require "vc.core.interrupt"
local podlib = require "vc.pod"
local vc = require "vc"

local M = {}

-- What each name does, where its doc comment does not say it in one line.
local DOC = {
  ["vc.setup"] = "opts: root (a folder for the store), lock_timeout, log_level, log_format",
  ["vc.hypervisors"] = "the names of the hypervisor backends built in",
  ["vc.pod.create"] = "create a pod from a config table (state ready)",
  ["vc.pod.run"] = "create and start a pod",
  ["vc.pod.fetch"] = "the pod called id",
  ["vc.pod.list"] = "every pod (opts.all: incomplete ones too)",
  ["vc.log.debug"] = "log msg (and a table of fields) at level debug",
  ["vc.log.info"] = "log msg (and a table of fields) at level info",
  ["vc.log.warn"] = "log msg (and a table of fields) at level warn",
  ["vc.log.error"] = "log msg (and a table of fields) at level error",
  ["vc.policy.check"] = "run a config through the policies: the config and each decision",
  ["vc.policy.list"] = "the active policies and where they come from",
  ["pod.start"] = "start its containers (booting the VM of a stopped pod)",
  ["pod.stop"] = "stop its containers, then the VM",
  ["pod.pause"] = "pause the VM",
  ["pod.resume"] = "resume the VM",
  ["pod.delete"] = "delete the pod and its VM (opts.force: even a running one)",
  ["pod.status"] = "a snapshot: id, state, hypervisor, containers...",
  ["pod.state"] = "ready, running, paused or stopped",
  ["pod.config"] = "its config as stored",
  ["pod.containers"] = "its containers",
  ["pod.container"] = "the container called cid",
  ["pod.add_container"] = "add a container (created in the VM when it is up)",
  ["container.start"] = "start it (again, when it stopped)",
  ["container.stop"] = "stop it: SIGTERM, then SIGKILL after its stop_timeout",
  ["container.kill"] = "send a signal (\"TERM\", \"KILL\", 9...)",
  ["container.exec"] = "run argv in it: code, stdout, stderr",
  ["container.wait"] = "wait for its process to exit (timeout in seconds): its exit code",
  ["container.logs"] = "what the agent kept of its output: stdout, stderr",
  ["container.processes"] = "its processes: { pid, cmd }...",
  ["container.stats"] = "cpu_ns, memory_bytes, memory_limit_bytes, pids",
  ["container.delete"] = "delete it (not while running)",
  ["container.status"] = "a snapshot: id, pod, state, exit_code",
  ["container.state"] = "ready, running or stopped",
}

-- The first sentence of the "---" comment above a Lua function, if any,
-- lower-cased as the lines of DOC are.
local function doc_comment(f)
  local info = debug.getinfo(f, "S")
  if info.what ~= "Lua" or info.source:sub(1, 1) ~= "@" then return nil end
  local file = io.open(info.source:sub(2), "r")
  if not file then return nil end
  local lines, n = {}, 0
  for line in file:lines() do
    n = n + 1
    if n >= info.linedefined then break end
    lines[n] = line
  end
  file:close()
  local block = {}
  for i = n - 1, 1, -1 do
    local text = lines[i]:match("^%-%-%-?%s?(.*)$")
    if not text then return nil end
    table.insert(block, 1, text)
    if lines[i]:match("^%-%-%-") then
      local doc = table.concat(block, " ")
      doc = doc:match("^(.-)%.%s") or doc:match("^(.-)%.?$")
      return (doc:gsub("^%u%l", string.lower))
    end
  end
  return nil
end

-- "(a, b)" from a Lua function's parameters, self left out.
local function params(f, method)
  local info = debug.getinfo(f, "u")
  local names = {}
  for i = 1, info.nparams do names[#names + 1] = debug.getlocal(f, i) end
  if method and names[1] == "self" then table.remove(names, 1) end
  if info.isvararg then names[#names + 1] = "..." end
  return "(" .. table.concat(names, ", ") .. ")"
end

local function functions_of(t)
  local list = {}
  for k, v in pairs(t) do
    if type(k) == "string" and k:sub(1, 2) ~= "__" and type(v) == "function" then
      list[#list + 1] = k
    end
  end
  table.sort(list)
  return list
end

local function section(lines, title, entries)
  lines[#lines + 1] = title
  for _, e in ipairs(entries) do
    lines[#lines + 1] = string.format("  %-28s %s", e[1], e[2] or "")
  end
end

local function api_entries(shown, t, key, method)
  local out = {}
  for _, name in ipairs(functions_of(t)) do
    local f = t[name]
    out[#out + 1] = { shown .. (method and ":" or ".") .. name .. params(f, method),
                      DOC[key .. "." .. name] or doc_comment(f) }
  end
  return out
end

--- The text :help prints: one line for each thing a session can use.
function M.help()
  local lines = {
    "vc repl: Lua " .. _VERSION:match("%d.*") .. " with vc loaded. An expression prints its value;",
    "Tab completes names, methods and pod and container IDs; Ctrl-C interrupts",
    "a call (the pod is left as the operation's rollback leaves it); Ctrl-D or",
    ":quit leaves.",
    "",
  }
  section(lines, "helpers:", {
    { "pods([opts])", "every pod, shown as a table" },
    { 'pod "ID"', "the pod called ID (an error when there is none)" },
    { "vc", "the vc API, below; vc.version is " .. vc.version },
  })
  local api = api_entries("vc", vc, "vc")
  local libs = {}
  for k, v in pairs(vc) do
    if type(k) == "string" and type(v) == "table" then libs[#libs + 1] = k end
  end
  table.sort(libs, function(a, b) return (a == "pod" and "" or a) < (b == "pod" and "" or b) end)
  for _, k in ipairs(libs) do
    for _, e in ipairs(api_entries("vc." .. k, vc[k], "vc." .. k)) do api[#api + 1] = e end
  end
  section(lines, "vc:", api)
  section(lines, 'a pod (p = pod "ID"):', api_entries("p", podlib.Pod, "pod", true))
  section(lines, 'a container (c = p:container "ID"):',
          api_entries("c", container.Container, "container", true))
  section(lines, "commands:", {
    { ":help", "this list" },
    { ":quit", "leave (Ctrl-D too)" },
  })
  return table.concat(lines, "\n") .. "\n"
end

-- A copy of a library table with some functions run by wrap.
local function wrapped(lib, names, wrap)
  local t = {}
  for k, v in pairs(lib) do t[k] = v end
  for _, name in ipairs(names) do
    local f = lib[name]
    t[name] = function(...) return wrap(f, ...) end
  end
  return t
end

--- A fresh environment for a session's chunks.
function M.env()
  local env = setmetatable({}, { __index = _G })
  env.vc = vc
  env.pods = function(opts) return vc.pod.list(opts) end
  env.pod = function(id)
    local p, err = vc.pod.fetch(id)
    if not p then error(err, 0) end
    return p
  end
  -- A program started from the prompt gets Ctrl-C as in any shell: SIGINT
  -- unblocked (the session blocks it while it evaluates).
  env.os = wrapped(os, { "execute" }, interrupt.unmasked)
  env.io = wrapped(io, { "popen" }, interrupt.unmasked)
  return env
end

return M
