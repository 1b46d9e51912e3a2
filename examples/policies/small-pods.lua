-- small-pods: an example policy. Like every policy it runs sandboxed (no
-- io, no os.execute, a budget and a memory cap) and sees copies only.
--
--   vc --policy examples/policies/small-pods.lua pod create ...
--   vc policy check --policy examples/policies/small-pods.lua pod.lua
--
-- mutate gives every container a memory limit (DEFAULT_MIB unless it
-- names one); admit refuses a pod of more than MAX containers, and a
-- container that asks for more than MAX_MIB.
local MAX = 2
local DEFAULT_MIB = 64
local MAX_MIB = 512

return {
  name = "small-pods",
  description = "at most 2 containers a pod, each with a memory limit",

  mutate = function(config)
    for _, c in ipairs(config.containers) do
      c.resources.memory_mib = c.resources.memory_mib or DEFAULT_MIB
    end
  end,

  admit = function(config, ctx)
    if #config.containers > MAX then
      return false, string.format("%d containers, at most %d a pod", #config.containers, MAX)
    end
    for _, c in ipairs(config.containers) do
      if c.resources.memory_mib > MAX_MIB then
        return false, string.format("container %s: %d MiB, at most %d", c.id,
                                    c.resources.memory_mib, MAX_MIB)
      end
    end
    -- ctx.op tells a new pod ("create") from a container joining one
    -- ("add_container", ctx.container).
    return ctx.op == "create" or ctx.op == "add_container", "unknown operation"
  end,

  -- A pre_* hook may refuse a step: `return false, reason`.
  pre_start = function(ev)
    if ev.config.annotations["example.paused"] == "true" then
      return false, "annotated example.paused"
    end
  end,
}
