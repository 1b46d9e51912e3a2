-- networks: pin the networks a pod may join (opt in: vc --policy networks
-- ...). A site edits ALLOWED (or ships its own copy under this name).
--
-- A pod may join a network vc finds by name only if the name is in
-- ALLOWED; a conflist given inline (network.cni a table) and a namespace
-- made by someone else (network.netns) need the pod annotation
-- CUSTOM=true. A pod without a network always passes.
local ALLOWED = { vc = true }
local CUSTOM = "vc.network.custom"

return {
  name = "networks",
  description = "pods join only the networks in ALLOWED (vc), others with vc.network.custom=true",

  admit = function(config)
    local net = config.network
    if type(net) ~= "table" then return true end
    if type(net.cni) == "string" then
      if ALLOWED[net.cni] then return true end
      local names = {}
      for name in pairs(ALLOWED) do names[#names + 1] = name end
      table.sort(names)
      return false, string.format("network %s: not one of the allowed networks (%s)", net.cni,
                                  table.concat(names, ", "))
    end
    if config.annotations[CUSTOM] ~= "true" then
      return false, string.format("network: %s needs the pod annotation %s=true",
                                  net.netns and "a namespace of its own (netns)"
                                  or "a conflist of its own", CUSTOM)
    end
    return true
  end,
}
