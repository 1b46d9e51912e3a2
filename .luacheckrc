std = "lua54"
max_line_length = 100
-- `local _lock <close> = ...` is used by its closing; luacheck 1.1 does not
-- count that, so unused locals named _x are allowed.
ignore = { "211/_.*" }
files["spec/**/*.lua"] = { std = "+busted" }
-- Policies run in a sandbox (src/policy/luabox.c) where only these globals exist.
stds.policy = {
  read_globals = {
    "_VERSION", "assert", "error", "getmetatable", "ipairs", "next", "pairs", "pcall",
    "rawequal", "rawget", "rawlen", "require", "select", "setmetatable", "tonumber",
    "tostring", "type", "xpcall", "math", "string", "table", "utf8",
    os = { fields = { "clock", "date", "time" } },
  },
}
files["policies/**/*.lua"] = { std = "policy" }
files["examples/policies/**/*.lua"] = { std = "policy" }
