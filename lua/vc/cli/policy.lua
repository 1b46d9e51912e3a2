--- vc policy ...: what the policies make of a config, and which are
-- active; and the --policy option every pod and container command takes.
local args = require "vc.cli.args"
local cjson = require "cjson"
local cli = require "vc.cli"
local config = require "vc.config"
local format = require "vc.cli.format"
local pod = require "vc.pod"
local lazy = require "vc.lazy"
local policy = lazy "vc.policy"

local M = {}

--- The --policy option (repeatable): a policy file, or a shipped one by name.
M.OPTION = { "--policy", arg = "FILE", many = true,
             help = "also apply this policy (a .lua file, or a shipped one by name)" }

--- Give a command spec the --policy option.
function M.add_option(spec)
  spec.options = spec.options or {}
  for _, o in ipairs(spec.options) do
    if o[1] == M.OPTION[1] then return end
  end
  spec.options[#spec.options + 1] = M.OPTION
end

--- Make the parsed --policy values this process's policies.
function M.apply(o)
  if o.policy and #o.policy > 0 then policy.setup { files = o.policy } end
end

local SPECS = {
  check = { usage = "vc policy check [--json] [--policy FILE]... CONFIG",
            positional = { "CONFIG" }, options = { { "--json", help = "print JSON" } },
            summary = "Run every policy's mutate and admit over a pod config (.lua or "
                      .. ".json) without creating anything; exits 1 when refused." },
  list = { usage = "vc policy list [--json] [--policy FILE]...",
           options = { { "--json", help = "print JSON" } },
           summary = "Show the active policies, in order, and where each comes from." },
}
M.add_option(SPECS.check)
M.add_option(SPECS.list)

local ORDER = { "check", "list" }

local function help()
  local lines = { "usage: vc policy COMMAND [ARGS...]", "", "commands:" }
  for _, name in ipairs(ORDER) do
    lines[#lines + 1] = string.format("  %-6s %s", name, SPECS[name].summary)
  end
  lines[#lines + 1] = "\nPolicies: the shipped defaults (" .. policy.home() .. "), then "
                      .. "VC_POLICY_PATH (files and folders, ':'-separated), then --policy."
  return table.concat(lines, "\n") .. "\n"
end

-- Keys whose values are lists, so that an empty one prints as [].
local LISTS = {
  containers = true, volumes = true, argv = true, env = true, mounts = true, args = true,
  prestart = true, poststart = true, poststop = true, policies = true,
}

-- A scalar as JSON (cjson 2.1.0 escapes every "/", which JSON allows but
-- does not need).
local function scalar(v)
  return (cjson.encode(v):gsub("\\/", "/"))
end

-- value as indented JSON, keys sorted.
local function pretty(v, indent, key)
  indent = indent or ""
  if type(v) ~= "table" then return scalar(v) end
  local inner = indent .. "  "
  local parts = {}
  if #v > 0 or (next(v) == nil and LISTS[key]) then
    for _, x in ipairs(v) do parts[#parts + 1] = inner .. pretty(x, inner, key) end
    if #parts == 0 then return "[]" end
    return "[\n" .. table.concat(parts, ",\n") .. "\n" .. indent .. "]"
  end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  for _, k in ipairs(keys) do
    parts[#parts + 1] = inner .. scalar(k) .. ": " .. pretty(v[k], inner, k)
  end
  if #parts == 0 then return "{}" end
  return "{\n" .. table.concat(parts, ",\n") .. "\n" .. indent .. "}"
end

-- A refusal without the "policy NAME: " its row already shows.
local function short(p)
  if not p.reason then return "-" end
  local prefix = "policy " .. p.name .. ": "
  local r = p.reason
  if r:sub(1, #prefix) == prefix then r = r:sub(#prefix + 1) end
  return (r:gsub("^refused: ", ""))
end

local ACTIONS = {}

function ACTIONS.check(o)
  local raw = cli.check(config.load_file(o.config))
  local report = cli.check(policy.check(raw, pod.defaults))
  if o.json then
    format.json(io.stdout, report, { "policies", "containers", "volumes", "argv", "env",
                                     "mounts", "args", "prestart", "poststart", "poststop" })
  else
    local rows = {}
    for _, p in ipairs(report.policies) do
      rows[#rows + 1] = { p.name, p.origin, p.mutate, p.decision, short(p) }
    end
    format.table(io.stdout, { "POLICY", "FROM", "MUTATE", "ADMIT", "REASON" }, rows)
    io.stdout:write("\nconfig after mutation:\n", pretty(report.config), "\n")
  end
  if not report.admitted then
    io.stderr:write("vc: ", report.reason, "\n")
    return 1
  end
  return 0
end

function ACTIONS.list(o)
  local list = {}
  for _, p in ipairs(policy.active()) do
    local fns = {}
    for fn in pairs(p.has) do fns[#fns + 1] = fn end
    table.sort(fns)
    list[#list + 1] = { name = p.name, origin = p.origin, path = p.path,
                        description = p.description, functions = fns }
  end
  if o.json then
    format.json_list(io.stdout, list, { "functions" })
    return 0
  end
  local rows = {}
  for _, p in ipairs(list) do
    rows[#rows + 1] = { p.name, p.origin, p.path, table.concat(p.functions, ",") }
  end
  format.table(io.stdout, { "POLICY", "FROM", "FILE", "FUNCTIONS" }, rows)
  return 0
end

function M.main(argv, first)
  local name = argv[first]
  if name == "-h" or name == "--help" then
    io.stdout:write(help())
    return 0
  end
  if name == nil then args.usage_error("missing policy command (try 'vc policy --help')") end
  local spec = SPECS[name]
  if not spec then
    args.usage_error("unknown policy command %q (try 'vc policy --help')", name)
  end
  local o = args.parse(spec, argv, first + 1)
  M.apply(o)
  return ACTIONS[name](o)
end

return M
