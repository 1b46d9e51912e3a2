local cjson = require "cjson"
local lfs = require "lfs"
local storage = require "vc.core.storage"
local support = require "support"

local ENOENT, EAGAIN, EEXIST, EFBIG, EINVAL = 2, 11, 17, 27, 22 -- EAGAIN = EWOULDBLOCK
local DIR, FILE = "rwxr-x---", "rw-r-----"
local PATTERN = "[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"

-- Wall-clock seconds (10 ms steps): enough to time locks.
local function wall()
  local f = assert(io.open("/proc/uptime"))
  local t = f:read("n")
  f:close()
  return t
end

local function perm(path)
  return lfs.symlinkattributes(path, "permissions")
end

local function exists(path)
  return lfs.symlinkattributes(path, "mode") ~= nil
end

-- Every path below dir (relative, sorted) with its permissions.
local function tree(dir)
  local out = {}
  local function walk(rel)
    for name in lfs.dir(dir .. rel) do
      if name ~= "." and name ~= ".." then
        local p = rel .. "/" .. name
        out[#out + 1] = p .. " " .. perm(dir .. p)
        if lfs.symlinkattributes(dir .. p, "mode") == "directory" then walk(p) end
      end
    end
  end
  walk("")
  table.sort(out)
  return out
end

local function mkdirs(path)
  local acc = ""
  for part in path:gmatch("[^/]+") do
    acc = acc .. "/" .. part
    if not exists(acc) then assert(lfs.mkdir(acc)) end
  end
end

-- A script that locks a pod, prints "ready", and holds the lock for hold
-- seconds or until the release file appears.
local HOLDER = [[
local storage = require "vc.core.storage"
local root, pod, mode, hold, release = ...
local function wall()
  local f = assert(io.open("/proc/uptime"))
  local t = f:read("n")
  f:close()
  return t
end
local st = assert(storage.open(root))
local lock = assert(st:lock(pod, mode, 5))
io.stdout:write("ready\n")
io.stdout:flush()
local stop = wall() + tonumber(hold)
while wall() < stop and not io.open(release) do os.execute("sleep 0.01") end
lock:unlock()
]]

-- Run support.bin on a script alongside: the shell prints its PID, then
-- becomes vc; the script's first line of output is read, and finish()
-- waits until it has exited.
local function start(script, ...)
  local args = {}
  for i, a in ipairs({ ... }) do args[i] = support.quote(a) end
  local cmd = string.format("echo $$; exec %s run %s %s", support.quote(support.bin),
                            support.quote(script), table.concat(args, " "))
  local pipe = assert(io.popen(cmd))
  local proc = { pid = pipe:read("l") }
  proc.ready = pipe:read("l")
  function proc.finish()
    pipe:read("a")   -- EOF once the process and its children are gone
    pipe:close()
  end
  return proc
end

describe("vc.core.storage", function()
  local tmp, root, st, holder, release

  before_each(function()
    tmp = support.tmpdir()
    root = tmp .. "/root"
    st = assert(storage.open(root))
    holder = tmp .. "/holder.lua"
    release = tmp .. "/release"
    support.write_file(holder, HOLDER)
  end)

  after_each(function()
    support.rmtree(tmp)
  end)

  local function hold(pod, mode, seconds)
    local proc = start(holder, root, pod, mode, seconds or 10, release)
    assert.equals("ready", proc.ready)
    return proc
  end

  local function let_go(proc)
    support.write_file(release, "")
    proc.finish()
    os.remove(release)
  end

  describe("valid_id", function()
    local good = { "a", "Z", "0", "a-b", "a_b", "a.b", "a..b", "pod-1.2_3", "A9.",
                   "a" .. string.rep("b", 63) }
    local bad = { "", ".", "..", "/", "a/b", "-a", "_a", ".a", "a\n", "a b", "a\0b",
                  "\t", "h\xc3\xa9llo", "a" .. string.rep("b", 64), "a:b", "a\\b" }

    it("accepts IDs of 1 to 64 letters, digits, '_', '.', '-' not starting with a sign", function()
      for _, id in ipairs(good) do
        assert.is_true(storage.valid_id(id), id)
        assert.is_true(storage.valid_id(id, "pod"), id)
        assert.is_true(storage.valid_id(id, "container"), id)
      end
    end)

    it("refuses anything else with EINVAL", function()
      for _, id in ipairs(bad) do
        for _, kind in ipairs({ "pod", "container" }) do
          local ok, msg, errno = storage.valid_id(id, kind)
          assert.is_nil(ok, id)
          assert.equals(EINVAL, errno)
          assert.truthy(msg:find("invalid " .. kind .. " ID \"", 1, true), msg)
          assert.truthy(msg:find(PATTERN, 1, true), msg)
        end
      end
    end)

    it("quotes the ID with control and non-ASCII bytes escaped", function()
      local _, msg = storage.valid_id("a\nb")
      assert.equals('invalid pod ID "a\\nb": must match ' .. PATTERN, msg)
      _, msg = storage.valid_id("h\xc3\xa9\0", "container")
      assert.equals('invalid container ID "h\\xc3\\xa9\\x00": must match ' .. PATTERN, msg)
      _, msg = storage.valid_id(string.rep("x", 1000))
      assert.equals('invalid pod ID "' .. string.rep("x", 40) .. '...": must match ' .. PATTERN,
                    msg)
    end)

    it("reserves the names of a pod folder's own files for containers only", function()
      for _, id in ipairs({ "lock", "state.json", "network.json", "hypervisor.json",
                            "agent.json", "config.json" }) do
        assert.is_true(storage.valid_id(id, "pod"))
        local ok, msg, errno = storage.valid_id(id, "container")
        assert.is_nil(ok)
        assert.equals('container ID "' .. id .. '" is reserved', msg)
        assert.equals(EINVAL, errno)
      end
      assert.is_true(storage.valid_id("state", "container"))
    end)

    it("raises on misuse", function()
      assert.has_error(function() storage.valid_id("a", "vm") end)
      assert.has_error(function() storage.valid_id({}) end)
    end)
  end)

  describe("open", function()
    it("wants an absolute root and creates nothing", function()
      local ok, msg, errno = storage.open("relative/root")
      assert.is_nil(ok)
      assert.equals(EINVAL, errno)
      assert.truthy(msg:find("not an absolute path", 1, true))
      assert.equals(root, st:root())
      assert.equals(root, storage.open(root .. "//"):root())
      assert.same({}, st:pods())
      assert.is_false(st:exists("p"))
      assert.is_false(exists(root))
    end)

    it("gives each pod and container its two folders", function()
      assert.same({ config_dir = root .. "/lib/pods/p", run_dir = root .. "/run/pods/p" },
                  st:paths("p"))
      assert.same({ config_dir = root .. "/lib/pods/p/c", run_dir = root .. "/run/pods/p/c" },
                  st:paths("p", "c"))
      local lib, run = st:dirs()
      assert.equals(root .. "/lib", lib)
      assert.equals(root .. "/run", run)
      local two = assert(storage.open(tmp .. "/l", tmp .. "/r"))
      assert.equals(tmp .. "/r/pods/p", two:paths("p").run_dir)
      assert.is_nil(two:root())
    end)
  end)

  describe("layout", function()
    local script = [[
      local storage = require "vc.core.storage"
      local st = assert(storage.open(...))
      local lock = assert(st:create_pod("p"))
      assert(st:create_container("p", "c"))
      for _, name in ipairs({ "config", "state", "network", "hypervisor", "agent" }) do
        assert(st:write("p", nil, name, "{}"))
      end
      for _, name in ipairs({ "config", "state", "process", "mounts", "devices" }) do
        assert(st:write("p", "c", name, "[]"))
      end
      lock:unlock()
    ]]

    for _, umask in ipairs({ "0777", "0002" }) do
      it("is exact, with folders 0750 and files 0640 under umask " .. umask, function()
        support.write_file(tmp .. "/make.lua", script)
        local r = support.sh(string.format("umask %s; %s run %s %s", umask,
                                           support.quote(support.bin),
                                           support.quote(tmp .. "/make.lua"),
                                           support.quote(root)))
        assert.equals(0, r.code, r.stderr)
        assert.equals(DIR, perm(root))
        local want = {}
        for _, d in ipairs({ "/lib", "/lib/pods", "/lib/pods/p", "/lib/pods/p/c", "/run",
                             "/run/pods", "/run/pods/p", "/run/pods/p/c" }) do
          want[#want + 1] = d .. " " .. DIR
        end
        for _, f in ipairs({ "/lib/pods/p/config.json", "/lib/pods/p/c/config.json",
                             "/run/pods/p/lock", "/run/pods/p/state.json",
                             "/run/pods/p/network.json", "/run/pods/p/hypervisor.json",
                             "/run/pods/p/agent.json", "/run/pods/p/c/state.json",
                             "/run/pods/p/c/process.json", "/run/pods/p/c/mounts.json",
                             "/run/pods/p/c/devices.json" }) do
          want[#want + 1] = f .. " " .. FILE
        end
        table.sort(want)
        assert.same(want, tree(root))
        assert.equals("[]", support.read_file(root .. "/run/pods/p/c/mounts.json"))
      end)
    end
  end)

  describe("records", function()
    before_each(function()
      assert(st:create_pod("p")):unlock()
      assert(st:create_container("p", "c"))
    end)

    it("read back what was written, whole and replaced", function()
      local big = string.rep("0123456789abcdef", 65536) .. "\0tail"
      assert.is_true(st:write("p", nil, "state", '{"state":"ready"}'))
      assert.equals('{"state":"ready"}', st:read("p", nil, "state"))
      assert.is_true(st:write("p", nil, "state", big))
      assert.equals(big, st:read("p", nil, "state"))
      assert.is_true(st:write("p", nil, "state", "1"))
      assert.equals("1", st:read("p", nil, "state"))
      assert.is_true(st:write("p", "c", "config", ""))
      assert.equals("", st:read("p", "c", "config"))
      assert.is_true(st:write("p", nil, "state", '{"state":"ready"}'))
      assert.equals('{"state":"ready"}', support.read_file(root .. "/run/pods/p/state.json"))
      -- Nothing left over but the records themselves.
      local names = {}
      for name in lfs.dir(root .. "/run/pods/p") do names[#names + 1] = name end
      table.sort(names)
      assert.same({ ".", "..", "c", "lock", "state.json" }, names)
    end)

    it("say which file is missing, with ENOENT", function()
      local ok, msg, errno = st:read("p", "c", "process")
      assert.is_nil(ok)
      assert.equals(ENOENT, errno)
      assert.truthy(msg:find(root .. "/run/pods/p/c/process.json", 1, true), msg)
      ok, msg, errno = st:read("nopod", nil, "config")
      assert.is_nil(ok)
      assert.equals(ENOENT, errno)
      assert.truthy(msg:find(root .. "/lib/pods/nopod/config.json", 1, true), msg)
      ok, msg, errno = st:write("nopod", nil, "state", "{}")
      assert.is_nil(ok)
      assert.equals(ENOENT, errno)
      assert.truthy(msg:find(root .. "/run/pods/nopod/state.json", 1, true), msg)
    end)

    it("are at most 16 MiB", function()
      local ok, msg, errno = st:write("p", nil, "agent", string.rep("x", 16 * 1024 * 1024 + 1))
      assert.is_nil(ok)
      assert.equals(EFBIG, errno)
      assert.truthy(msg:find("agent.json", 1, true))
      support.write_file(root .. "/run/pods/p/agent.json", string.rep("x", 16 * 1024 * 1024 + 1))
      ok, msg, errno = st:read("p", nil, "agent")
      assert.is_nil(ok)
      assert.equals(EFBIG, errno)
      assert.truthy(msg:find("larger than", 1, true))
    end)

    it("have fixed names: anything else is misuse and raises", function()
      assert.has_error(function() st:write("p", nil, "process", "{}") end)
      assert.has_error(function() st:write("p", "c", "network", "{}") end)
      assert.has_error(function() st:read("p", nil, "../x") end)
      assert.has_error(function() st:write("p", nil, "state") end)
      assert.has_error(function() st:lock("p", "sideways", 1) end)
      assert.has_error(function() st:lock("p", "shared", -1) end)
      assert.has_error(function() st.pods({}) end)
    end)
  end)

  describe("creation", function()
    it("refuses to create a pod or a container twice", function()
      local lock = assert(st:create_pod("p"))
      assert.equals("exclusive", lock:mode())
      local ok, msg, errno = st:create_pod("p")
      assert.is_nil(ok)
      assert.equals("pod p already exists", msg)
      assert.equals(EEXIST, errno)
      assert.is_true(st:create_container("p", "c"))
      ok, msg, errno = st:create_container("p", "c")
      assert.is_nil(ok)
      assert.equals("container c already exists in pod p", msg)
      assert.equals(EEXIST, errno)
      ok, msg, errno = st:create_container("other", "c")
      assert.is_nil(ok)
      assert.equals("pod other: no such pod", msg)
      assert.equals(ENOENT, errno)
      lock:unlock()
      -- A pod that only has its lib folder exists too.
      mkdirs(root .. "/lib/pods/q")
      ok, msg = st:create_pod("q")
      assert.is_nil(ok)
      assert.equals("pod q already exists", msg)
    end)

    it("returns the new pod locked: nobody else can lock it yet", function()
      local lock <close> = assert(st:create_pod("p"))
      local script = tmp .. "/try.lua"
      support.write_file(script, [[
        local storage = require "vc.core.storage"
        local st = assert(storage.open(...))
        print((select(2, st:lock("p", "shared", 0))))
      ]])
      local r = support.sh(support.quote(support.bin) .. " run " .. support.quote(script) ..
                           " " .. support.quote(root))
      assert.equals("pod p is locked by another process\n", r.stdout)
      lock:unlock()
      r = support.sh(support.quote(support.bin) .. " run " .. support.quote(script) ..
                     " " .. support.quote(root))
      assert.equals("nil\n", r.stdout)
    end)

    it("touches nothing on disk for an invalid ID", function()
      assert(st:create_pod("p")):unlock()
      local before = support.snapshot(tmp)
      for _, id in ipairs({ "..", "/", "a/b", "", "../../etc", string.rep("a", 65), "a\0" }) do
        local calls = {
          function() return st:create_pod(id) end,
          function() return st:create_container("p", id) end,
          function() return st:create_container(id, "c") end,
          function() return st:write(id, nil, "state", "{}") end,
          function() return st:write("p", id, "state", "{}") end,
          function() return st:read(id, nil, "config") end,
          function() return st:lock(id, "exclusive", 0) end,
          function() return st:delete_pod(id) end,
          function() return st:delete_container("p", id) end,
          function() return st:containers(id) end,
          function() return st:exists(id) end,
          function() return st:paths(id) end,
        }
        for i, call in ipairs(calls) do
          local ok, msg, errno = call()
          assert.is_nil(ok, "call " .. i)
          assert.equals(EINVAL, errno)
          assert.truthy(msg:find("^invalid %a+ ID \""), msg)
        end
      end
      assert.is_nil(st:create_container("p", "lock"))
      assert.equals(before, support.snapshot(tmp))
    end)
  end)

  describe("locks", function()
    before_each(function()
      assert(st:create_pod("p")):unlock()
    end)

    it("are shared by several processes at once", function()
      local a = hold("p", "shared")
      local b = hold("p", "shared")
      local lock = assert(st:lock("p", "shared", 0))
      assert.equals("shared", lock:mode())
      local ok, msg, errno = st:lock("p", "exclusive", 0)
      assert.is_nil(ok)
      assert.equals("pod p is locked by another process", msg)
      assert.equals(EAGAIN, errno)
      lock:unlock()
      let_go(a)
      let_go(b)
      assert(st:lock("p", "exclusive", 0)):unlock()
    end)

    it("time out with 'is locked' when another process holds the pod", function()
      local proc = hold("p", "exclusive")
      local t0 = wall()
      local ok, msg, errno = st:lock("p", "shared", 0.5)
      local waited = wall() - t0
      assert.is_nil(ok)
      assert.equals("pod p is locked by another process", msg)
      assert.equals(EAGAIN, errno)
      assert.is_true(waited >= 0.4 and waited < 2, "waited " .. waited)
      t0 = wall()
      assert.is_nil(st:lock("p", "exclusive", 0))
      assert.is_true(wall() - t0 < 0.2)
      let_go(proc)
    end)

    it("go to a waiter when the holder exits", function()
      local proc = hold("p", "exclusive", 0.5)
      local t0 = wall()
      local lock = assert(st:lock("p", "exclusive", 5))
      local waited = wall() - t0
      assert.is_true(waited >= 0.2 and waited < 3, "waited " .. waited)
      assert.equals("exclusive", lock:mode())
      proc.finish()
    end)

    it("are released by unlock, <close> and collection, once", function()
      do
        local lock <close> = assert(st:lock("p", "exclusive", 0))
        assert.equals("exclusive", lock:mode())
        assert.is_nil(st:lock("p", "shared", 0))
      end
      local lock = assert(st:lock("p", "exclusive", 0))
      assert.truthy(tostring(lock):find("pod p, exclusive", 1, true))
      lock:unlock()
      lock:unlock()
      assert.truthy(tostring(lock):find("unlocked", 1, true))
      assert.has_error(function() lock:mode() end, "attempt to use an unlocked lock (pod p)")
      lock = assert(st:lock("p", "exclusive", 0))
      lock = nil -- luacheck: ignore 311
      collectgarbage()
      collectgarbage()
      assert(st:lock("p", "exclusive", 0)):unlock()
    end)

    it("say when there is no such pod", function()
      local ok, msg, errno = st:lock("nopod", "shared", 0)
      assert.is_nil(ok)
      assert.equals("pod nopod: no such pod", msg)
      assert.equals(ENOENT, errno)
      assert.is_false(exists(root .. "/run/pods/nopod"))
    end)

    it("never hold up listing", function()
      assert.is_true(st:create_container("p", "c"))
      assert.is_true(st:write("p", nil, "state", "{}"))
      local proc = hold("p", "exclusive")
      local t0 = wall()
      for _ = 1, 20 do
        assert.same({ "p" }, st:pods())
        assert.same({ "c" }, st:containers("p"))
        assert.is_true(st:exists("p"))
        assert.equals("{}", st:read("p", nil, "state"))
      end
      assert.is_true(wall() - t0 < 0.3)
      let_go(proc)
    end)
  end)

  describe("listing", function()
    it("is the sorted union of both trees, valid folder names only", function()
      assert.same({}, st:pods())
      assert.same({}, st:containers("p"))
      for _, id in ipairs({ "b", "a", "c" }) do assert(st:create_pod(id)):unlock() end
      mkdirs(root .. "/lib/pods/only-lib")
      mkdirs(root .. "/run/pods/only-run")
      mkdirs(root .. "/run/pods/.hidden")
      support.write_file(root .. "/run/pods/file", "")
      assert(lfs.link(tmp, root .. "/lib/pods/link", true))
      assert.same({ "a", "b", "c", "only-lib", "only-run" }, st:pods())
      assert.is_true(st:create_container("a", "z"))
      assert.is_true(st:create_container("a", "y"))
      mkdirs(root .. "/run/pods/a/x")
      mkdirs(root .. "/lib/pods/a/.tmp")
      assert.same({ "x", "y", "z" }, st:containers("a"))
      assert.is_true(st:exists("a", "x"))
      assert.is_false(st:exists("a", "w"))
      assert.is_false(st:exists("link"))
    end)
  end)

  describe("snapshot", function()
    it("reads a pod's records and its containers' states in one call", function()
      assert(st:create_pod("p")):unlock()
      assert(st:write("p", nil, "config", '{"id":"p"}'))
      assert(st:write("p", nil, "state", '{"state":"ready"}'))
      for _, c in ipairs({ "b", "a", "c" }) do assert(st:create_container("p", c)) end
      assert(st:write("p", "a", "state", '{"state":"running"}'))
      assert(st:write("p", "c", "state", '{"state":"stopped"}'))
      mkdirs(root .. "/lib/pods/p/only-lib")
      mkdirs(root .. "/run/pods/p/.tmp")
      support.write_file(root .. "/run/pods/p/file", "")
      assert(lfs.link(tmp, root .. "/run/pods/p/link", true))
      assert.same({
        config = '{"id":"p"}',
        state = '{"state":"ready"}',
        -- only the containers with a run folder: those whose creation can
        -- be complete; folders only, valid IDs only, sorted
        containers = { "a", "b", "c" },
        container_states = { a = '{"state":"running"}', c = '{"state":"stopped"}' },
      }, assert(st:snapshot("p")))
    end)

    it("leaves out what is missing, down to a pod that is not there", function()
      assert.same({ containers = {}, container_states = {} }, assert(st:snapshot("none")))
      assert(st:create_pod("p")):unlock()
      assert(st:write("p", nil, "config", "{}"))
      os.execute("rm -rf " .. support.quote(root .. "/run/pods/p"))
      assert.same({ config = "{}", containers = {}, container_states = {} },
                  assert(st:snapshot("p")))
    end)

    it("fails on a record it cannot read, naming its path", function()
      assert(st:create_pod("p")):unlock()
      assert(st:create_container("p", "c"))
      support.write_file(root .. "/run/pods/p/c/state.json", string.rep("x", 16 * 1024 * 1024 + 1))
      local ok, msg, errno = st:snapshot("p")
      assert.is_nil(ok)
      assert.equals(EFBIG, errno)
      assert.matches(root .. "/run/pods/p/c/state.json: larger than", msg, 1, true)
      assert(lfs.mkdir(root .. "/lib/pods/p/config.json"))
      ok, msg = st:snapshot("p")
      assert.is_nil(ok)
      assert.matches("read " .. root .. "/lib/pods/p/config.json: not a regular file", msg, 1, true)
    end)

    it("reads a FIFO planted as a record as empty, without blocking", function()
      assert(st:create_pod("p")):unlock()
      assert(os.execute("mkfifo " .. support.quote(root .. "/run/pods/p/state.json")))
      assert.equal("", assert(st:read("p", nil, "state")))
      assert.equal("", assert(st:snapshot("p")).state)
    end)

    it("checks the ID first", function()
      local ok, msg, errno = st:snapshot("../p")
      assert.is_nil(ok)
      assert.equals(EINVAL, errno)
      assert.matches("invalid pod ID", msg, 1, true)
      assert.has_error(function() st:snapshot() end)
    end)
  end)

  describe("snapshots", function()
    it("reads many pods as snapshot does, in parallel, with each pod's failure", function()
      -- enough pods for several threads (64 a thread at least)
      local ids = {}
      for i = 1, 300 do
        local id = ("p%03d"):format(i)
        ids[#ids + 1] = id
        assert(st:create_pod(id)):unlock()
        assert(st:write(id, nil, "config", ('{"id":"%s"}'):format(id)))
        if i % 3 ~= 0 then assert(st:write(id, nil, "state", '{"state":"ready"}')) end
        if i % 5 == 0 then
          assert(st:create_container(id, "c"))
          assert(st:write(id, "c", "state", ('{"n":%d}'):format(i)))
        end
      end
      -- a record that cannot be read, a pod that is not there, bad IDs
      support.write_file(root .. "/run/pods/p007/state.json", string.rep("x", 16 * 1024 * 1024 + 1))
      ids[#ids + 1] = "none"
      ids[#ids + 1] = "../p001"
      ids[#ids + 1] = "p\0nul"
      local snaps, errs = st:snapshots(ids)
      for _, id in ipairs(ids) do
        local one, msg = st:snapshot(id)
        assert.same(one, snaps[id], id)
        assert.equal(msg, errs[id], id)
      end
      assert.matches("larger than", errs.p007, 1, true)
      assert.matches("invalid pod ID", errs["../p001"], 1, true)
      assert.is_truthy(errs["p\0nul"])
      assert.same({ containers = {}, container_states = {} }, snaps.none)
      assert.same({ snaps = {}, errs = {} }, (function()
        local a, b = st:snapshots({})
        return { snaps = a, errs = b }
      end)())
      assert.has_error(function() st:snapshots({ 1 }) end)
      assert.has_error(function() st:snapshots() end)
    end)
  end)

  describe("deletion", function()
    it("removes both trees of a pod or a container", function()
      assert(st:create_pod("p")):unlock()
      assert(st:create_pod("q")):unlock()
      assert.is_true(st:create_container("p", "c"))
      assert.is_true(st:create_container("p", "d"))
      assert.is_true(st:write("p", "c", "config", "{}"))
      assert.is_true(st:write("p", "c", "state", "{}"))
      assert.is_true(st:delete_container("p", "c"))
      assert.is_false(exists(root .. "/lib/pods/p/c"))
      assert.is_false(exists(root .. "/run/pods/p/c"))
      assert.same({ "d" }, st:containers("p"))
      local ok, _, errno = st:delete_container("p", "c")
      assert.is_nil(ok)
      assert.equals(ENOENT, errno)
      assert.is_true(st:write("p", nil, "config", "{}"))
      assert.is_true(st:write("p", nil, "state", "{}"))
      local lock = assert(st:lock("p", "exclusive", 0))
      assert.is_true(st:delete_pod("p"))
      lock:unlock()
      assert.is_false(exists(root .. "/lib/pods/p"))
      assert.is_false(exists(root .. "/run/pods/p"))
      assert.same({ "q" }, st:pods())
      ok, _, errno = st:delete_pod("p")
      assert.is_nil(ok)
      assert.equals(ENOENT, errno)
    end)

    it("makes a waiter for the deleted pod fail with 'no such pod'", function()
      assert(st:create_pod("p")):unlock()
      support.write_file(tmp .. "/del.lua", [[
        local storage = require "vc.core.storage"
        local st = assert(storage.open(...))
        local lock = assert(st:lock("p", "exclusive", 5))
        io.stdout:write("ready\n")
        io.stdout:flush()
        os.execute("sleep 0.3")
        assert(st:delete_pod("p"))
        lock:unlock()
      ]])
      local proc = start(tmp .. "/del.lua", root)
      assert.equals("ready", proc.ready)
      local ok, msg, errno = st:lock("p", "shared", 5)
      proc.finish()
      assert.is_nil(ok)
      assert.equals("pod p: no such pod", msg)
      assert.equals(ENOENT, errno)
      assert.same({}, st:pods())
    end)

    for _, case in ipairs({
      { "only a run folder (create killed early)", "/run/pods/half" },
      { "only a lib folder (run tree lost)", "/lib/pods/half" },
    }) do
      it("copes with a half-made pod: " .. case[1], function()
        assert(st:create_pod("p")):unlock()
        mkdirs(root .. case[2])
        assert.same({ "half", "p" }, st:pods())
        assert.is_true(st:exists("half"))
        local lock = assert(st:lock("half", "exclusive", 0))
        if case[2]:find("^/lib") then
          assert.equals(DIR, perm(root .. "/run/pods/half"))
        end
        assert.equals(FILE, perm(root .. "/run/pods/half/lock"))
        assert.is_true(st:delete_pod("half"))
        lock:unlock()
        assert.is_false(exists(root .. "/lib/pods/half"))
        assert.is_false(exists(root .. "/run/pods/half"))
        assert.same({ "p" }, st:pods())
      end)
    end

    it("deletes a half-deleted pod (lib gone, run left without its lock)", function()
      assert(st:create_pod("p")):unlock()
      assert.is_true(st:write("p", nil, "state", "{}"))
      assert(os.remove(root .. "/run/pods/p/lock"))
      assert(os.remove(root .. "/lib/pods/p"))
      assert.same({ "p" }, st:pods())
      assert(st:lock("p", "exclusive", 0)):unlock()
      assert.is_true(st:delete_pod("p"))
      assert.same({}, st:pods())
    end)

    it("never follows a symlink", function()
      local outside = tmp .. "/outside"
      mkdirs(outside .. "/sub")
      support.write_file(outside .. "/keep", "precious")
      support.write_file(outside .. "/sub/keep", "precious")
      assert(st:create_pod("p")):unlock()
      assert.is_true(st:create_container("p", "c"))
      assert(lfs.link(outside, root .. "/run/pods/p/link", true))
      assert(lfs.link(outside .. "/keep", root .. "/lib/pods/p/c/file-link", true))
      mkdirs(root .. "/run/pods/p/c/deep/er")
      assert(lfs.link(outside .. "/sub", root .. "/run/pods/p/c/deep/er/link", true))
      assert(lfs.link(outside, root .. "/lib/pods/evil", true))
      assert.is_true(st:delete_pod("p"))
      assert.is_true(st:delete_pod("evil"))
      assert.is_false(exists(root .. "/lib/pods/evil"))
      assert.is_false(exists(root .. "/run/pods/p"))
      assert.equals("precious", support.read_file(outside .. "/keep"))
      assert.equals("precious", support.read_file(outside .. "/sub/keep"))
    end)
  end)

  describe("crash-atomic writes", function()
    it("leave a whole record whenever the writer is killed", function()
      local fixture = support.project .. "/spec/fixtures/state_writer.lua"
      assert(st:create_pod("p")):unlock()
      assert.is_true(st:write("p", nil, "state", '{"seq":0}'))
      for round = 1, 40 do
        local proc = start(fixture, root, "p")
        assert.equals("ready", proc.ready, "round " .. round)
        os.execute(string.format("sleep 0.%03d; kill -KILL %s", math.random(0, 15), proc.pid))
        proc.finish()
        local data = assert(st:read("p", nil, "state"))
        assert.is_true(#data > 0, "round " .. round)
        local ok = pcall(cjson.decode, data)
        assert.is_true(ok, "round " .. round .. ": " .. #data .. " bytes do not decode")
      end
      -- Left under a temporary name: only whole records (".state.json.PID.N",
      -- an O_TMPFILE linked before the rename); a partial ".state.json.XXXXXX"
      -- only where the file system has no O_TMPFILE (mkostemp fallback).
      local dir = root .. "/run/pods/p"
      for name in lfs.dir(dir) do
        if name ~= "." and name ~= ".." and name ~= "lock" and name ~= "state.json" then
          if name:find("^%.state%.json%.%d+%.%d+$") then
            assert.is_true(pcall(cjson.decode, support.read_file(dir .. "/" .. name)), name)
          else
            assert.truthy(name:find("^%.state%.json%.%w%w%w%w%w%w$"), name)
          end
        end
      end
    end)
  end)
end)
