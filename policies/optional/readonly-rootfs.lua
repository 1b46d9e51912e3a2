-- readonly-rootfs: refuse a container whose root file system could be
-- written (opt in: vc --policy readonly-rootfs ...).
--
-- A rootfs counts as read-only when it lies on a read-only mount of the
-- host (a read-only bind mount, a squashfs...): every backend shares it
-- from there, so no container can change it. The annotation
-- "vc.rootfs.writable" = "true" on a container accepts a writable one.
local policy = require "vc.policy"

local KEY = "vc.rootfs.writable"

return {
  name = "readonly-rootfs",
  description = "containers need a read-only rootfs unless annotated vc.rootfs.writable=true",

  admit = function(config)
    for _, c in ipairs(config.containers) do
      local allowed = c.annotations[KEY]
      if allowed ~= nil and allowed ~= "true" and allowed ~= "false" then
        return false, string.format('container %s: annotation %s must be "true" or "false"',
                                    c.id, KEY)
      end
      if allowed ~= "true" then
        local ro, err = policy.read_only(c.rootfs)
        if ro == nil then return false, string.format("container %s: %s", c.id, err) end
        if not ro then
          return false, string.format("container %s: rootfs %s is writable (put it on a "
                                      .. "read-only mount, or annotate %s=true)",
                                      c.id, c.rootfs, KEY)
        end
      end
    end
    return true
  end,
}
