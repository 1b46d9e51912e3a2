std = "lua54"
max_line_length = 100
-- `local _lock <close> = ...` is used by its closing; luacheck 1.1 does not
-- count that, so unused locals named _x are allowed.
ignore = { "211/_.*" }
files["spec/**/*.lua"] = { std = "+busted" }
files["policies/**/*.lua"] = { std = "lua54" }
