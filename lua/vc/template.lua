--- VM templates for the qemu backend, as Kata's VM factory: instead of
-- booting, a pod's VM starts from the saved state of a VM that booted
-- the same kernel and initrd, with the same memory, vCPUs, kernel options
-- and devices, to the point where its agent waits for the host. Under TCG
-- that takes a fraction of a boot, and the guest's early memory (the
-- unpacked initrd, init sections) is never touched again.
--
-- A template is made the first time a pod needs it (that pod waits for a
-- boot and a save), under a lock so that one vc makes it while others
-- wait, into TEMPLATES/KEY.vm (runtime.templates()). KEY
-- covers everything the saved state depends on; a template that fails to
-- start a VM is removed and the pod boots (pod.lua). What a template
-- shares between pods is fixed by the agent at create_pod: the guest's
-- clock is set and its random pool reseeded from the host.
--
-- A template is two files: KEY.vm, the saved devices, and KEY.ram, the
-- guest's RAM, which the template's VM wrote through. A VM started from
-- it maps that RAM copy-on-write, through a sealed copy in memory that
-- every running VM of the template shares (src/hv/ram.c): untouched guest
-- pages exist once on the host, and the start copies no guest RAM.
local build = require "vc.core.build"
local failure = require "vc.failure"
local host = require "vc.core.host"
local hypervisor = require "vc.core.hypervisor"
local log = require "vc.log"
local runtime = require "vc.runtime"
local sandbox = require "vc.sandbox"

local M = {}

-- Bump when what a template holds changes in a way its files do not show
-- (QEMU options that vc sets, the guest's template point).
local FORMAT = 6

local function quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- mkdir -p dir, or nil and a message.
local function mkdirs(dir)
  if os.execute("mkdir -p " .. quote(dir) .. " 2>/dev/null") then return true end
  return nil, "cannot make the folder " .. dir
end

-- FNV-1a, 64 bits, in hex.
local function hash(s)
  local h = 0xcbf29ce484222325
  for i = 1, #s do h = (h ~ s:byte(i)) * 0x100000001b3 end
  return string.format("%016x", h)
end

-- The file of program name on PATH, or nil.
local function on_path(name)
  for dir in (os.getenv("PATH") or "/usr/bin:/bin"):gmatch("[^:]+") do
    if host.kind(dir .. "/" .. name) == "file" then return dir .. "/" .. name end
  end
  return nil
end

--- The key of the template a VM spec starts from, or nil when one of its
-- files is missing (the start then fails with the backend's message).
function M.key(spec)
  local qemu = on_path("qemu-system-x86_64")
  local parts = { "format=" .. FORMAT, "vc=" .. build.version }
  for _, f in ipairs { { "qemu", qemu }, { "kernel", spec.kernel }, { "initrd", spec.initrd } } do
    local id = f[2] and host.identity(f[2])
    if not id then return nil end
    parts[#parts + 1] = f[1] .. "=" .. f[2] .. "@" .. id
  end
  parts[#parts + 1] = string.format("cpus=%d memory=%d kvm=%s params=%s", spec.cpus,
                                    spec.memory_mib, host.kind("/dev/kvm") or "-",
                                    spec.kernel_params or "")
  -- (9p devices: one per volume, tagged by its index, read-only or not)
  for _, v in ipairs(spec.volumes or {}) do
    parts[#parts + 1] = "volume " .. (v.read_only and "ro" or "rw")
  end
  -- (virtio-net devices: one per tap, after the shares)
  if spec.taps and #spec.taps > 0 then parts[#parts + 1] = "nics=" .. #spec.taps end
  return hash(table.concat(parts, "\n"))
end

-- Boot a VM like spec's in dir (its sockets, console, empty shares), wait
-- for its agent, save it to path.
local function make(cfg, spec, dir, path)
  failure.check(mkdirs(dir .. "/empty"))
  local tspec = {}
  for k, v in pairs(spec) do tspec[k] = v end
  tspec.pod_id = "template"
  tspec.run_dir = dir
  tspec.foreground = true -- ends with this process, whatever happens
  tspec.incoming = nil
  tspec.ram_file = dir .. "/ram"
  tspec.volumes = {}
  for i, v in ipairs(spec.volumes or {}) do
    tspec.volumes[i] = { tag = v.tag, host_path = dir .. "/empty", read_only = v.read_only }
  end
  -- the pod's NICs without their taps, outside any network namespace
  tspec.netns, tspec.taps = nil, nil
  if spec.taps then
    tspec.taps = {}
    for i = 1, #spec.taps do tspec.taps[i] = "" end
  end
  local hv = failure.check(hypervisor.open("qemu", tspec, nil))
  local ok, err = pcall(function()
    failure.check(hv:create())
    failure.check(hv:start())
    sandbox.agent(cfg, hv, nil, nil, dir):close()
    failure.check(hv:save(path .. ".tmp"))
    -- the RAM first: a template is whole once its .vm is there
    failure.check(os.rename(dir .. "/ram", M.ram_of(path)))
    failure.check(os.rename(path .. ".tmp", path))
  end)
  hv:destroy()
  hv:close()
  os.remove(path .. ".tmp")
  if not ok then error(err, 0) end
end

--- The template for pod cfg's VM (of store st), made if need be; nil for
-- a backend without templates, or when cfg.vm.template is false.
function M.ensure(st, cfg)
  if cfg.hypervisor ~= "qemu" or cfg.vm.template == false then return nil end
  local spec = sandbox.vm_spec(st, cfg)
  local key = M.key(spec)
  if not key then return nil end
  local dir = runtime.templates()
  local path = dir .. "/" .. key .. ".vm"
  if host.kind(path) == "file" and host.kind(M.ram_of(path)) == "file" then return path end
  -- a folder vc cannot write (another user's VC_TEMPLATES, a read-only
  -- system): no template, the pod boots
  local made, merr = mkdirs(dir)
  local lock, lerr
  if made then lock, lerr = host.lock(path .. ".lock") end
  if not lock then
    log.warn("no VM template: " .. (merr or lerr) .. "; booting", { pod = cfg.id })
    return nil
  end
  local ok, err = pcall(function()
    -- made by another vc while this one waited for the lock
    if host.kind(path) == "file" and host.kind(M.ram_of(path)) == "file" then return end
    -- what a vc killed while making it left (its VM died with it)
    local work = dir .. "/" .. key .. ".make"
    os.execute("rm -rf " .. quote(work))
    local done, why = pcall(make, cfg, spec, work, path)
    os.execute("rm -rf " .. quote(work))
    if not done then error(why, 0) end
  end)
  lock:unlock()
  if not ok then error(err, 0) end
  return path
end

--- The guest RAM file of template path (KEY.vm).
function M.ram_of(path)
  return (path:gsub("%.vm$", "")) .. ".ram"
end

--- Forget a template that did not start a VM.
function M.discard(path)
  os.remove(path)
  os.remove(M.ram_of(path))
end

return M
