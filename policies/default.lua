-- default: the baseline every pod gets (active by default).
--
--  * caps: at most MAX_CPUS vCPUs and MAX_MEMORY_MIB of guest memory, and
--    no container memory limit above its pod's memory;
--  * volumes (and a container's host_path mounts): a host_path must lie
--    under one of VOLUME_ROOTS once its symbolic links and ".." are
--    resolved (host-side, by vc), and never in a system folder (DENIED)
--    nor in vc's own store;
--  * security: a container asks for more than vc gives by default
--    (security.privileged, seccomp "unconfined", or an added capability
--    that masters its sandbox, DANGEROUS) only in a pod annotated
--    PRIVILEGED=true on the qemu backend, where the VM stays the boundary;
--    on namespace such a container would be the host's root: refused;
--  * oom_score_adj: below 0 only on qemu (the guest's OOM killer);
--  * network: a host port below 1024 (a privileged port: ssh, http...)
--    is mapped only for a pod annotated PRIVILEGED_PORTS=true;
--  * mutate: a pod that names no memory gets enough for its containers'
--    limits (at least vc's 256 MiB).
--
-- A site changes these by editing the installed copy, or by shipping a
-- policy of its own named "default" (on VC_POLICY_PATH), which replaces
-- this one.
local policy = require "vc.policy"

local MAX_CPUS = 16
local MAX_MEMORY_MIB = 32768
local BASE_MEMORY_MIB = 256
local OVERHEAD_MIB = 64

-- Folders volumes may come from (with the volume stores of podman and
-- of Kubernetes' kubelet, whose containers come through vc-runtime).
local VOLUME_ROOTS = {
  "/srv", "/home", "/mnt", "/media", "/tmp", "/var/tmp", "/var/lib/vc/volumes",
  "/var/lib/containers/storage/volumes", "/var/lib/kubelet/pods",
}
-- Never shared, whatever VOLUME_ROOTS say.
local DENIED = { "/etc", "/proc", "/sys", "/dev", "/boot", "/root", "/run/vc", "/var/lib/vc/pods" }

-- Capabilities that make a container the master of its sandbox.
local DANGEROUS = { CAP_SYS_ADMIN = true, CAP_SYS_MODULE = true, CAP_SYS_PTRACE = true,
                    CAP_SYS_RAWIO = true, ALL = true }
local PRIVILEGED = "vc.security.privileged"
local PRIVILEGED_PORTS = "vc.network.privileged-ports"

local function check_ports(config)
  local net = config.network
  if type(net) ~= "table" or not net.ports then return true end
  for _, p in ipairs(net.ports) do
    if p.host < 1024 and config.annotations[PRIVILEGED_PORTS] ~= "true" then
      return false, string.format("network.ports: host port %d/%s is below 1024 (annotate the"
                                  .. " pod %s=true to map it)", p.host, p.protocol,
                                  PRIVILEGED_PORTS)
    end
  end
  return true
end

-- What in a container's (checked) security widens it, or nil.
local function widened(sec)
  if sec.privileged then return "security.privileged" end
  if sec.seccomp == "unconfined" then return 'security.seccomp = "unconfined"' end
  for _, cap in ipairs(sec.capabilities.add) do
    if DANGEROUS[cap] then return "security.capabilities.add " .. cap end
  end
  return nil
end

local function check_security(c, config)
  local what = widened(c.security)
  if not what then return true end
  if config.hypervisor ~= "qemu" then
    return false, string.format("container %s: %s on the %s backend would be the host's"
                                .. " root (only on qemu, with the pod annotation %s=true)",
                                c.id, what, tostring(config.hypervisor), PRIVILEGED)
  end
  if config.annotations[PRIVILEGED] ~= "true" then
    return false, string.format("container %s: %s needs the pod annotation %s=true",
                                c.id, what, PRIVILEGED)
  end
  return true
end

local function check_volume(v, store)
  local real, err = policy.realpath(v.host_path)
  if not real then
    return false, string.format("volume %s: %s", v.tag, err)
  end
  local shown = real == v.host_path and real or (v.host_path .. " (" .. real .. ")")
  if real == "/" then
    return false, string.format("volume %s: %s is the root folder", v.tag, shown)
  end
  local denied = { store.lib .. "/pods", store.run }
  for _, d in ipairs(DENIED) do denied[#denied + 1] = d end
  for _, d in ipairs(denied) do
    if policy.under(real, d) then
      return false, string.format("volume %s: %s lies in %s, which is never shared",
                                  v.tag, shown, d)
    end
  end
  for _, root in ipairs(VOLUME_ROOTS) do
    if policy.under(real, root) then return true end
  end
  return false, string.format("volume %s: %s is not under an allowed folder (%s)",
                              v.tag, shown, table.concat(VOLUME_ROOTS, ", "))
end

return {
  name = "default",
  description = "caps on vCPUs and memory; volumes only from allowed host folders;"
                .. " privileged containers only in annotated qemu pods; host ports below"
                .. " 1024 only in annotated pods",

  mutate = function(config)
    if config.vm.memory_mib == nil then
      local sum = 0
      for _, c in ipairs(config.containers) do sum = sum + (c.resources.memory_mib or 0) end
      if sum > 0 then
        config.vm.memory_mib = math.min(MAX_MEMORY_MIB,
                                        math.max(BASE_MEMORY_MIB, sum + OVERHEAD_MIB))
      end
    end
    return config
  end,

  admit = function(config, ctx)
    local vm = config.vm
    if vm.cpus and vm.cpus > MAX_CPUS then
      return false, string.format("vm.cpus: %d vCPUs, at most %d", vm.cpus, MAX_CPUS)
    end
    if vm.memory_mib and vm.memory_mib > MAX_MEMORY_MIB then
      return false, string.format("vm.memory_mib: %d MiB, at most %d", vm.memory_mib,
                                  MAX_MEMORY_MIB)
    end
    for _, c in ipairs(config.containers) do
      local limit = c.resources.memory_mib
      if limit and vm.memory_mib and limit > vm.memory_mib then
        return false, string.format("container %s: memory limit %d MiB above the pod's %d",
                                    c.id, limit, vm.memory_mib)
      end
      local ok, why = check_security(c, config)
      if not ok then return false, why end
      if (c.oom_score_adj or 0) < 0 and config.hypervisor ~= "qemu" then
        return false, string.format("container %s: oom_score_adj %d below 0 on the %s backend"
                                    .. " would shield it from the host's OOM killer", c.id,
                                    c.oom_score_adj, tostring(config.hypervisor))
      end
      for i, m in ipairs(c.mounts) do
        if m.host_path then
          ok, why = check_volume({ tag = ("of container %s (mounts[%d])"):format(c.id, i),
                                   host_path = m.host_path }, ctx.store)
          if not ok then return false, why end
        end
      end
    end
    for _, v in ipairs(config.volumes) do
      local ok, why = check_volume(v, ctx.store)
      if not ok then return false, why end
    end
    return check_ports(config)
  end,
}
