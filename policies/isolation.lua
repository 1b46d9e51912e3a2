-- isolation: the backend of a pod follows how far its workload is trusted
-- (active by default; it acts only on annotated pods).
--
-- The annotation "vc.isolation", on the pod or on any of its containers:
--   "untrusted"  the pod must run in a VM: qemu is chosen when the pod
--                names no backend, and any other backend is refused;
--   "trusted"    the lighter namespace sandbox is chosen when the pod
--                names no backend.
-- Without it, nothing changes (vc's default backend is qemu).
local VM_BACKENDS = { qemu = true }
local LEVELS = { trusted = true, untrusted = true }
local KEY = "vc.isolation"

-- The strictest level the pod or a container asks for, or nil; a bad
-- value gives nil and why.
local function level(config)
  local found
  local function see(where, v)
    if v == nil then return true end
    if not LEVELS[v] then
      return nil, string.format('%s: annotation %s must be "trusted" or "untrusted", not %q',
                                where, KEY, v)
    end
    if v == "untrusted" or found == nil then found = v end
    return true
  end
  local ok, err = see("pod", config.annotations[KEY])
  if not ok then return nil, err end
  for _, c in ipairs(config.containers) do
    ok, err = see("container " .. c.id, c.annotations[KEY])
    if not ok then return nil, err end
  end
  return found
end

return {
  name = "isolation",
  description = 'annotation vc.isolation: "untrusted" pods run in a VM (qemu), '
                .. '"trusted" ones may use the namespace sandbox',

  mutate = function(config)
    local l = level(config)
    if config.hypervisor == nil then
      if l == "untrusted" then
        config.hypervisor = "qemu"
      elseif l == "trusted" then
        config.hypervisor = "namespace"
      end
    end
    return config
  end,

  admit = function(config)
    local l, err = level(config)
    if err then return false, err end
    if l == "untrusted" and not VM_BACKENDS[config.hypervisor] then
      return false, string.format("untrusted workloads must run in a VM (qemu), not on the %s "
                                  .. "backend", tostring(config.hypervisor))
    end
    return true
  end,
}
