--- Where this process keeps pods, and how long it waits for a pod's lock.
-- Set once by the CLI (--root) or a pod script (vc.setup); everything else
-- asks here for the store.
local storage = require "vc.core.storage"

local M = {}

local DEFAULT_LIB = "/var/lib/vc"
local DEFAULT_RUN = "/run/vc"

local settings = { root = nil, lock_timeout = 30 }
local cache = {}

--- opts.root: a folder holding both trees (DIR/lib, DIR/run);
-- opts.lock_timeout: seconds to wait for a pod held by another process;
-- opts.templates: the folder of VM templates (template.lua; false: the
-- default again).
function M.setup(opts)
  if opts.root ~= nil then
    if type(opts.root) ~= "string" or opts.root == "" then
      error("bad argument 'root' to 'setup' (non-empty string expected)", 2)
    end
    settings.root = assert(storage.abspath(opts.root))
    cache = {}
  end
  if opts.templates == false then
    settings.templates = nil
  elseif opts.templates ~= nil then
    if type(opts.templates) ~= "string" or opts.templates == "" then
      error("bad argument 'templates' to 'setup' (non-empty string or false expected)", 2)
    end
    settings.templates = assert(storage.abspath(opts.templates))
  end
  if opts.lock_timeout ~= nil then
    if type(opts.lock_timeout) ~= "number" or opts.lock_timeout < 0 then
      error("bad argument 'lock_timeout' to 'setup' (non-negative number expected)", 2)
    end
    settings.lock_timeout = opts.lock_timeout
  end
end

--- The lib and run folders in use: --root/setup, else VC_ROOT, else the
-- system defaults.
function M.dirs()
  local root = settings.root or os.getenv("VC_ROOT")
  if root and root ~= "" then
    root = assert(storage.abspath(root))
    return root .. "/lib", root .. "/run"
  end
  return DEFAULT_LIB, DEFAULT_RUN
end

--- The folder of VM templates: setup's, else VC_TEMPLATES, else
-- LIB/templates (shared by every root of a test run, say).
function M.templates()
  if settings.templates then return settings.templates end
  local d = os.getenv("VC_TEMPLATES")
  if d and d ~= "" then return assert(storage.abspath(d)) end
  return (M.dirs()) .. "/templates"
end

function M.lock_timeout()
  return settings.lock_timeout
end

--- The store for the current folders (opened once per process).
function M.store()
  local lib, run = M.dirs()
  local key = lib .. "\0" .. run
  if not cache[key] then
    cache[key] = assert(storage.open(lib, run))
  end
  return cache[key]
end

return M
