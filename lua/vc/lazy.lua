--- A module loaded on its first use: `local network = lazy "vc.network"`
-- is a stand-in whose fields are the module's, required when one is first
-- read. A command loads only the modules it runs (a `vc container exec`
-- never needs the network, template or policy code, which cost it a
-- third of its own time to load).
return function(name)
  return setmetatable({}, {
    __index = function(self, key)
      local module = require(name)
      setmetatable(self, { __index = module })
      return module[key]
    end,
  })
end
