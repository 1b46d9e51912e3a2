--- Policies: untrusted Lua files that admit or refuse pods and containers,
-- fill in their configs, and hook their lifecycle. Each runs in a sandbox
-- of its own (vc.core.luabox: no io, os.execute, require, load, debug...;
-- an instruction budget and a memory cap), so values reach a policy as
-- copies and come back as data.
--
-- Where they come from, in the order they compose:
--   1. the shipped defaults: HOME/policies/*.lua, sorted by file name
--   2. VC_POLICY_PATH: files and folders (their *.lua, sorted), ":"-separated
--   3. this process: --policy FILE on the CLI, vc.policy.use(FILE) in a script
-- A FILE without "/" that is not a .lua file names a shipped policy,
-- HOME/policies/NAME.lua or HOME/policies/optional/NAME.lua. A file is
-- loaded once; a later policy with the name of an earlier one takes its
-- place (so a site can replace "default").
--
-- mutate runs first, every policy in order, each seeing the config the one
-- before made (checked again after each); then admit, in order: the first
-- refusal wins and is reported with its policy's name.
local build = require "vc.core.build"
local config = require "vc.config"
local failure = require "vc.failure"
local luabox = require "vc.core.luabox"
local runtime = require "vc.runtime"
local storage = require "vc.core.storage"

local M = {}

--- The lifecycle points a policy (or a pod script) may hook.
M.POINTS = {
  "pre_create", "post_create", "pre_start", "post_start", "pre_stop", "post_stop",
  "pre_delete", "post_delete", "container_exit",
}

local FUNCTIONS = { admit = true, mutate = true }
for _, p in ipairs(M.POINTS) do FUNCTIONS[p] = true end
local FIELDS = { name = true, description = true }
local NAME_PATTERN = "^[A-Za-z0-9][A-Za-z0-9_.-]*$"
local MAX_SOURCE = 1024 * 1024

-- The sandbox of every policy (vc.policy.setup may change them).
local limits = { memory = 16 * 1024 * 1024, budget = 10000000 }

local extra = {}      -- { { path =, origin = } } added by this process
local loaded = nil    -- the active policies, once loaded

--- The folder of the shipped policies.
function M.home()
  return build.home .. "/policies"
end

local function is_file(path)
  local f = io.open(path, "rb")
  if not f then return false end
  -- a folder opens on Linux, but does not read
  local ok = f:read(0) ~= nil
  f:close()
  return ok
end

-- A --policy argument as a file: a path, or the name of a shipped policy.
local function locate(arg)
  if arg:find("/", 1, true) or arg:match("%.lua$") then
    return failure.check(storage.abspath(arg))
  end
  for _, dir in ipairs { M.home(), M.home() .. "/optional" } do
    local path = dir .. "/" .. arg .. ".lua"
    if is_file(path) then return path end
  end
  failure.raise("policy %s: no such file, nor a shipped policy (see %s)", arg, M.home())
end

-- Every file a path entry names: a .lua file, or a folder's *.lua sorted.
local function expand(entry, origin, out)
  local names = luabox.list(entry)
  if names then
    for _, n in ipairs(names) do out[#out + 1] = { path = entry .. "/" .. n, origin = origin } end
  elseif is_file(entry) then
    out[#out + 1] = { path = entry, origin = origin }
  else
    failure.raise("policy path %s (%s): no such file or folder", entry, origin)
  end
end

--- The policy files in force, in order: { { path =, origin = } }.
function M.sources()
  local out = {}
  local home = M.home()
  local names = luabox.list(home) or {}
  for _, n in ipairs(names) do out[#out + 1] = { path = home .. "/" .. n, origin = "default" } end
  for entry in (os.getenv("VC_POLICY_PATH") or ""):gmatch("[^:]+") do
    expand(failure.check(storage.abspath(entry)), "VC_POLICY_PATH", out)
  end
  for _, e in ipairs(extra) do out[#out + 1] = e end
  return out
end

local function read_source(path)
  local f, err = io.open(path, "rb")
  if not f then failure.raise("policy %s", err) end
  local src = f:read(MAX_SOURCE + 1)
  f:close()
  if not src then failure.raise("policy %s: cannot read it", path) end
  if #src > MAX_SOURCE then failure.raise("policy %s: larger than 1 MiB", path) end
  return src
end

-- Load one policy file into a box of its own; raises a failure naming it.
local function load_one(src)
  local box = luabox.new(limits)
  local fields, funcs = box:load(read_source(src.path), "@" .. src.path)
  if not fields then
    box:close()
    failure.raise("policy %s: %s", src.path, funcs)
  end
  local function bad(fmt, ...)
    box:close()
    failure.raise("policy %s: " .. fmt, src.path, ...)
  end
  if type(fields.name) ~= "string" or #fields.name > 64 or not fields.name:match(NAME_PATTERN) then
    bad("its table needs a name (letters, digits, '_', '.', '-'; got %s)", tostring(fields.name))
  end
  for k in pairs(fields) do
    if not FIELDS[k] then
      bad("unknown key %q (a policy has name, description, admit, mutate and hooks)", k)
    end
  end
  for k in pairs(funcs) do
    if not FUNCTIONS[k] then bad("unknown function %q (not a lifecycle point)", k) end
  end
  return {
    name = fields.name, description = fields.description, path = src.path,
    origin = src.origin, box = box, has = funcs,
  }
end

local function close_all(list)
  for _, p in ipairs(list or {}) do p.box:close() end
end

--- The active policies, loaded once per process (until the sources
-- change): a list of { name, description, path, origin, has = { fn = true } }.
-- Raises a failure when one cannot be loaded: policies fail closed.
function M.active()
  if loaded then return loaded end
  local list, byname, seen = {}, {}, {}
  local ok, err = pcall(function()
    for _, src in ipairs(M.sources()) do
      local real = luabox.resolve(src.path) or src.path
      if not seen[real] then
        seen[real] = true
        local p = load_one(src)
        local at = byname[p.name]
        if at then
          list[at].box:close()
          list[at] = p
        else
          list[#list + 1] = p
          byname[p.name] = #list
        end
      end
    end
  end)
  if not ok then
    close_all(list)
    error(err, 0)
  end
  loaded = list
  return list
end

local function forget()
  close_all(loaded)
  loaded = nil
end

--- Set this process's policies (the CLI's --policy): opts.files replaces
-- the files added so far; opts.memory and opts.budget the sandbox limits.
function M.setup(opts)
  if type(opts) ~= "table" then
    error("bad argument #1 to 'setup' (table expected, got " .. type(opts) .. ")", 2)
  end
  if opts.files ~= nil then
    extra = {}
    for _, f in ipairs(opts.files) do
      extra[#extra + 1] = { path = locate(f), origin = opts.origin or "--policy" }
    end
  end
  if opts.memory ~= nil then limits.memory = opts.memory end
  if opts.budget ~= nil then limits.budget = opts.budget end
  forget()
end

--- Add a policy file (or shipped policy name) for the rest of this process.
function M.use(file)
  if type(file) ~= "string" then
    error("bad argument #1 to 'use' (string expected, got " .. type(file) .. ")", 2)
  end
  return failure.catch(function()
    extra[#extra + 1] = { path = locate(file), origin = "script" }
    forget()
    M.active()
    return true
  end)
end

--- Forget the files this process added and the limits set (for tests).
function M.reset()
  extra = {}
  limits = { memory = 16 * 1024 * 1024, budget = 10000000 }
  forget()
end

--- Call fn of policy p; returns true, results... or raises a failure
-- naming the policy.
function M.call(p, fn, mode, ...)
  local res = table.pack(p.box:call(fn, mode, ...))
  if not res[1] then failure.raise("policy %s: %s: %s", p.name, fn, tostring(res[2])) end
  return table.unpack(res, 1, res.n)
end

-- What admit and mutate get besides the config.
local function context(ctx)
  local c = {}
  for k, v in pairs(ctx or {}) do c[k] = v end
  local lib, run = runtime.dirs()
  c.store = { lib = lib, run = run }
  return c
end

local function same(a, b)
  if type(a) ~= "table" or type(b) ~= "table" then return a == b end
  for k, v in pairs(a) do
    if not same(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end

local function mutate(cfg, ctx, report)
  ctx = context(ctx)
  for _, p in ipairs(M.active()) do
    if p.has.mutate then
      local _, out = M.call(p, "mutate", "rw", cfg, ctx)
      local norm, err = config.pod(out)
      if not norm then
        failure.raise("policy %s: mutate made an invalid config: %s", p.name, err)
      end
      if report then report[p.name] = same(cfg, norm) and "unchanged" or "changed" end
      cfg = norm
    end
  end
  return cfg
end

-- Every policy's verdict on cfg, in order: { { policy, admitted, reason } }.
local function verdicts(cfg, ctx, all)
  ctx = context(ctx)
  local out = {}
  for _, p in ipairs(M.active()) do
    if p.has.admit then
      local ok, err, res, why = pcall(M.call, p, "admit", "ro", cfg, ctx)
      local v = { policy = p }
      if not ok then
        v.admitted, v.reason = false, failure.is(err) and err.msg or tostring(err)
      elseif res == true then
        v.admitted = true
      else
        v.admitted = false
        v.reason = string.format("policy %s: refused: %s", p.name,
                                 why ~= nil and tostring(why)
                                 or "admit returned " .. tostring(res) .. ", not true")
      end
      out[#out + 1] = v
      if not v.admitted and not all then break end
    end
  end
  return out
end

--- Run every policy's mutate over a validated pod config; returns the new
-- config (validated again), or nil and a message naming the policy.
function M.mutate(cfg, ctx)
  return failure.catch(mutate, cfg, ctx)
end

--- Every policy's admit over a pod config (with its containers): true, or
-- nil and the first refusal, "policy NAME: refused: REASON".
function M.admit(cfg, ctx)
  return failure.catch(function()
    for _, v in ipairs(verdicts(cfg, ctx, false)) do
      if not v.admitted then failure.raise("%s", v.reason) end
    end
    return true
  end)
end

local function clone(v)
  if type(v) ~= "table" then return v end
  local c = {}
  for k, x in pairs(v) do c[k] = clone(x) end
  return c
end

local function with_container(full, ccfg)
  local cfg = clone(full)
  cfg.containers = cfg.containers or {}
  cfg.containers[#cfg.containers + 1] = clone(ccfg)
  return cfg
end

--- mutate for a container joining a pod (full: the pod's config with its
-- containers): the policies see the whole pod, the container last; only
-- what they do to that container counts. Returns the container config.
function M.mutate_container(full, ccfg)
  local ctx = { op = "add_container", container = ccfg.id }
  local out, err = M.mutate(with_container(full, ccfg), ctx)
  if not out then return nil, err end
  for _, c in ipairs(out.containers) do
    if c.id == ccfg.id then return c end
  end
  return nil, "policies: mutate removed container " .. ccfg.id
end

--- admit for a container joining a pod.
function M.admit_container(full, ccfg)
  return M.admit(with_container(full, ccfg), { op = "add_container", container = ccfg.id })
end

--- What `vc policy check` shows: mutate and admit over cfg (a raw
-- config), prepare (vc's own defaults) between them, nothing created (and
-- no ID made up for a config without one).
-- Returns { admitted, reason, config, policies = { {name, path, origin,
-- mutate = "changed"|"unchanged"|"-", decision = "admit"|"refuse"|"-",
-- reason} } }, or nil and a message.
function M.check(cfg, prepare)
  return failure.catch(function()
    local norm = failure.check(config.pod(cfg))
    local mutated = {}
    norm = mutate(norm, { op = "create" }, mutated)
    if prepare then
      norm = prepare(norm)
      if cfg.id == nil then norm.id = nil end
    end
    local by = {}
    for _, v in ipairs(verdicts(norm, { op = "create" }, true)) do by[v.policy] = v end
    local report = { admitted = true, config = norm, policies = {} }
    for _, p in ipairs(M.active()) do
      local v = by[p]
      local r = {
        name = p.name, path = p.path, origin = p.origin, mutate = mutated[p.name] or "-",
        decision = not v and "-" or v.admitted and "admit" or "refuse",
        reason = v and v.reason,
      }
      if v and not v.admitted and report.admitted then
        report.admitted, report.reason = false, v.reason
      end
      report.policies[#report.policies + 1] = r
    end
    return report
  end)
end

--- The active policies that define fn (in order).
function M.with(fn)
  local out = {}
  for _, p in ipairs(M.active()) do
    if p.has[fn] then out[#out + 1] = p end
  end
  return out
end

return M
