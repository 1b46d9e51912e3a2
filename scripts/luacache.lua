-- scripts/luacache.lua - vc's own Lua modules, compiled: for every
-- lua/vc/**.lua, build/luac/vc/**.luac with the same chunk name the
-- source would get at run time (so messages and tracebacks name the
-- source). `make` runs it with build/vc:
--
--   build/vc run scripts/luacache.lua
--
-- vc loads a module from here only while the file is at least as new as
-- its source (src/host/luahost.c); compiling the modules at each start costs
-- more than all of the rest of a short command's Lua.
local build = require "vc.core.build"

local home = build.home
local src_root = home .. "/lua"
local out_root = home .. "/build/luac"

local function run(cmd)
  local p = assert(io.popen(cmd))
  local out = {}
  for line in p:lines() do out[#out + 1] = line end
  assert(p:close())
  return out
end

local function quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local count = 0
for _, rel in ipairs(run("cd " .. quote(src_root) .. " && find vc -name '*.lua' | sort")) do
  local src = src_root .. "/" .. rel
  local f = assert(io.open(src, "rb"))
  local text = f:read("a")
  f:close()
  local chunk = assert(load(text, "@" .. src, "t"))
  local out = out_root .. "/" .. rel:gsub("%.lua$", ".luac")
  run("mkdir -p " .. quote(out:match("^(.*)/")))
  -- written whole, then renamed: a reader never sees half a file
  local tmp = out .. ".tmp"
  local w = assert(io.open(tmp, "wb"))
  assert(w:write(string.dump(chunk)))
  assert(w:close())
  assert(os.rename(tmp, out))
  count = count + 1
end
io.stderr:write(string.format("luacache: %d modules in %s\n", count, out_root))
