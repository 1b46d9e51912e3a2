local config = require("vc.config")
local cjson = require("cjson")
local support = require("support")

-- What a container's `security` is when its config says nothing.
local DEFAULT_SECURITY = {
  privileged = false, no_new_privileges = true, read_only_rootfs = false,
  seccomp = "default", capabilities = { add = {}, drop = {} },
  masked_paths = {}, readonly_paths = {},
}

-- A valid pod config, fresh each call.
local function base()
  return {
    id = "web",
    hypervisor = "qemu",
    vm = { cpus = 2, memory_mib = 512, kernel = "/boot/vmlinuz", kernel_params = "quiet" },
    volumes = { { tag = "data", host_path = "/srv/data", read_only = true } },
    containers = {
      { id = "c1", rootfs = "rootfs", argv = { "/bin/echo", "hi" } },
    },
    hooks = { prestart = { { path = "/usr/bin/true" } } },
    annotations = { ["io.vc.x"] = "y" },
  }
end

-- base() changed by f.
local function with(f)
  local c = base()
  f(c)
  return c
end

local function c1(f)
  return with(function(c) f(c.containers[1]) end)
end

local function c2(f)
  return with(function(c)
    c.containers[2] = { id = "c2", rootfs = "r", argv = { "/bin/sh" } }
    f(c.containers[2])
  end)
end

local bad = {
  -- the namespaces a container joins are another's of its pod
  { c2(function(t) t.namespaces_of = "nope" end),
    'containers[2].namespaces_of: no other container "nope" in the pod' },
  { c2(function(t) t.namespaces_of = "c2" end),
    'containers[2].namespaces_of: no other container "c2" in the pod' },
  { c2(function(t) t.namespaces_of = "bad id!" end), "containers[2].namespaces_of: " },
  -- mounts, resources, stop_timeout
  { c1(function(t) t.mounts = { { volume = "nope", path = "/d" } } end),
    'containers[1].mounts[1].volume: no pod volume "nope"' },
  { c1(function(t) t.mounts = { { volume = "data", path = "d" } } end),
    "containers[1].mounts[1].path: expected an absolute path" },
  { c1(function(t)
      t.mounts = { { volume = "data", path = "/d" }, { volume = "data", path = "/d" } }
    end), "containers[1].mounts[2].path: duplicate mount path" },
  { c1(function(t) t.resources = { memory_mib = 2 } end), "containers[1].resources.memory_mib" },
  { c1(function(t) t.resources = { pids = 0 } end), "containers[1].resources.pids" },
  { c1(function(t) t.resources = { cpu_quota_pct = 0 } end),
    "containers[1].resources.cpu_quota_pct" },
  { c1(function(t) t.resources = { swap = 1 } end), "containers[1].resources.swap: unknown key" },
  { c1(function(t) t.stop_timeout = -1 end), "containers[1].stop_timeout" },
  -- the store's own names in a pod folder (fuzz/corpus/config/reserved_container_id)
  { c1(function(t) t.id = "lock" end), 'containers[1].id: container ID "lock" is reserved' },
  { c1(function(t) t.id = "state.json" end),
    'containers[1].id: container ID "state.json" is reserved' },
  -- unknown keys at each level
  { with(function(c) c.bogus = 1 end), "bogus: unknown key" },
  { with(function(c) c[1] = 1 end), "[1]: unknown key" },
  { with(function(c) c.vm.disk = 1 end), "vm.disk: unknown key" },
  { with(function(c) c.volumes[1].mode = "rw" end), "volumes[1].mode: unknown key" },
  { c1(function(t) t.bogus = true end), "containers[1].bogus: unknown key" },
  { with(function(c) c.hooks.prestop = {} end), "hooks.prestop: unknown key" },
  { with(function(c) c.hooks.prestart[1].user = "x" end), "hooks.prestart[1].user: unknown key" },
  -- wrong types
  { with(function(c) c.hypervisor = 3 end), "hypervisor: expected a string, got number" },
  { with(function(c) c.hypervisor = "Qemu" end), "hypervisor: expected a backend name" },
  { with(function(c) c.vm = "big" end), "vm: expected a table, got string" },
  { with(function(c) c.containers = "c1" end), "containers: expected a list, got string" },
  { with(function(c) c.containers = { x = {} } end), "containers: expected a list" },
  { with(function(c) c.containers[3] = c.containers[1] end), "containers: expected a list" },
  { with(function(c) c.containers[1] = "c1" end), "containers[1]: expected a table, got string" },
  { c2(function(t) t.argv = "/bin/sh" end), "containers[2].argv: expected a list of strings" },
  { c2(function(t) t.argv = { "/bin/sh", 1 } end), "containers[2].argv[2]: expected a string" },
  { c2(function(t) t.argv = {} end), "containers[2].argv: expected a non-empty list" },
  { c2(function(t) t.argv = { "", "x" } end),
    "containers[2].argv[1]: expected a non-empty string" },
  { with(function(c) c.annotations.x = 1 end), "annotations.x: expected a string, got number" },
  { with(function(c) c.annotations["a b"] = true end), 'annotations["a b"]: expected a string' },
  { with(function(c) c.annotations[1] = "x" end), "annotations: expected a map with string keys" },
  { with(function(c) c.volumes[1].read_only = "yes" end),
    "volumes[1].read_only: expected a boolean, got string" },
  { c1(function(t) t.rootfs = "" end), "containers[1].rootfs: expected a non-empty string" },
  { c1(function(t) t.rootfs = nil end), "containers[1].rootfs: required key missing" },
  { c1(function(t) t.id = nil end), "containers[1].id: required key missing" },
  { with(function(c) c.vm.kernel_params = false end), "vm.kernel_params: expected a string" },
  -- JSON null
  { with(function(c) c.hypervisor = cjson.null end), "hypervisor: expected a string, got null" },
  { c1(function(t) t.cwd = cjson.null end), "containers[1].cwd: expected a string, got null" },
  -- ranges
  { with(function(c) c.vm.cpus = 0 end), "vm.cpus: expected an integer from 1 to 64, got 0" },
  { with(function(c) c.vm.cpus = 65 end), "vm.cpus: expected an integer from 1 to 64, got 65" },
  { with(function(c) c.vm.tcg_cache_mib = 1 end),
    "vm.tcg_cache_mib: expected an integer from 2 to 1024, got 1" },
  { with(function(c) c.vm.tcg_cache_mib = 16.5 end), "vm.tcg_cache_mib: expected an integer" },
  { with(function(c) c.vm.cpus = 1.5 end), "vm.cpus: expected an integer from 1 to 64, got 1.5" },
  { with(function(c) c.vm.cpus = "2" end),
    "vm.cpus: expected an integer from 1 to 64, got string" },
  { with(function(c) c.vm.memory_mib = 63 end), "vm.memory_mib: expected an integer from 64" },
  { with(function(c) c.vm.memory_mib = 65537 end), "vm.memory_mib: expected an integer from 64" },
  { with(function(c) c.hooks.prestart[1].timeout = 0 end),
    "hooks.prestart[1].timeout: expected a number of seconds greater than 0" },
  { with(function(c) c.hooks.prestart[1].timeout = 3601 end), "timeout: expected a number" },
  { with(function(c) c.hooks.prestart[1].timeout = 0 / 0 end), "timeout: expected a number" },
  { with(function(c) c.hooks.poststop = { { path = "rel" } } end),
    "hooks.poststop[1].path: expected an absolute path" },
  { with(function(c) c.hooks.poststart = { { path = "/x", args = { 1 } } } end),
    "hooks.poststart[1].args[1]: expected a string" },
  -- paths
  { with(function(c) c.volumes[1].host_path = "srv" end),
    "volumes[1].host_path: expected an absolute path" },
  { with(function(c) c.vm.initrd = "initrd.img" end), "vm.initrd: expected an absolute path" },
  { c1(function(t) t.cwd = "tmp" end), "containers[1].cwd: expected an absolute path" },
  -- duplicates
  { c2(function(t) t.id = "c1" end), 'containers[2].id: duplicate container ID "c1"' },
  { with(function(c) c.volumes[2] = { tag = "data", host_path = "/b" } end),
    'volumes[2].tag: duplicate volume tag "data"' },
  -- NUL bytes and long strings
  { c1(function(t) t.argv[2] = "a\0b" end), "containers[1].argv[2]: string contains a NUL byte" },
  { c1(function(t) t.argv[2] = ("x"):rep(4097) end), "containers[1].argv[2]: string too long" },
  { with(function(c) c.annotations[("k"):rep(5000)] = "v" end), "key too long" },
  { with(function(c) c.annotations["a\0"] = "v" end), "key contains a NUL byte" },
  -- env
  { c1(function(t) t.env = "A=B" end), 'containers[1].env: expected a list of "K=V" strings' },
  { c1(function(t) t.env = { "AB" } end), 'containers[1].env[1]: expected a "K=V" string' },
  { c1(function(t) t.env = { "=B" } end), 'containers[1].env[1]: expected a "K=V" string' },
  { c1(function(t) t.env = { A = 1 } end), "containers[1].env.A: expected a string, got number" },
  { c1(function(t) t.env = { ["A=B"] = "c" } end), 'containers[1].env["A=B"]: invalid key' },
  { c1(function(t) t.env = { [""] = "c" } end), 'containers[1].env[""]: invalid key' },
  { c1(function(t) t.env = { "A=1", B = "2" } end), "containers[1].env: expected a list of" },
  { c1(function(t) t.env = { "A=\0" } end), "containers[1].env[1]: string contains a NUL byte" },
  -- user
  { c1(function(t) t.user = -1 end),
    "containers[1].user: expected a user (uid[:gid], name[:group] or an integer >= 0), got -1" },
  { c1(function(t) t.user = "1000:" end), "containers[1].user: expected uid[:gid]" },
  { c1(function(t) t.user = "Root" end), "containers[1].user: expected uid[:gid]" },
  { c1(function(t) t.user = true end), "containers[1].user: expected a user" },
  { c1(function(t) t.user = 1.5 end), "containers[1].user: expected a user (uid[:gid]" },
  -- IDs and tags
  { with(function(c) c.id = ".." end), 'id: invalid ID ".."' },
  { with(function(c) c.id = "a/b" end), 'id: invalid ID "a/b"' },
  { with(function(c) c.id = ("a"):rep(65) end), "id: invalid ID" },
  { with(function(c) c.id = "" end), 'id: invalid ID ""' },
  { with(function(c) c.id = 7 end), "id: expected a string, got number" },
  { c1(function(t) t.id = "-x" end), 'containers[1].id: invalid ID "-x"' },
  { with(function(c) c.volumes[1].tag = ("t"):rep(37) end), "volumes[1].tag: invalid volume tag" },
  { with(function(c) c.volumes[1].tag = "a b" end), 'volumes[1].tag: invalid volume tag "a b"' },
}

describe("vc.config", function()
  describe("pod", function()
    for i, case in ipairs(bad) do
      it("refuses bad case #" .. i .. " (" .. case[2] .. ")", function()
        local out, err = config.pod(case[1])
        assert.is_nil(out)
        assert.is_string(err)
        assert.truthy(err:find(case[2], 1, true),
                      ("expected %q in %q"):format(case[2], err))
      end)
    end

    it("has at least 30 bad cases", function()
      assert.is_true(#bad >= 30)
    end)

    it("reports only the first error, the same one every time", function()
      local _, err = config.pod(with(function(c)
        c.vm.cpus = 0
        c.containers = 1
      end))
      assert.equal("vm.cpus: expected an integer from 1 to 64, got 0", err)
      for _ = 1, 20 do
        local cfg = { zz = 1, aa = 2, mm = 3, annotations = { b = 1, a = 2 } }
        assert.equal("aa: unknown key", select(2, config.pod(cfg)))
        cfg.aa, cfg.mm, cfg.zz = nil, nil, nil
        assert.equal("annotations.a: expected a string, got number", select(2, config.pod(cfg)))
      end
    end)

    it("accepts the minimal config and fills defaults", function()
      local out = assert(config.pod({}))
      assert.same({
        vm = {}, volumes = {}, containers = {}, annotations = {},
        hooks = { prestart = {}, poststart = {}, poststop = {} },
      }, out)
      assert.is_nil(out.id)
      assert.is_nil(out.hypervisor)
      assert.is_nil(out.vm.cpus)
      assert.is_nil(out.vm.memory_mib)
    end)

    it("normalises containers, volumes and hooks", function()
      local out = assert(config.pod(with(function(c)
        c.volumes[2] = { tag = "logs", host_path = "/var/log" }
        c.containers[1].env = { PATH = "/bin", HOME = "/root", A = "x=y" }
        c.containers[1].user = 1000
        c.hooks.prestart[1].env = { Z = "1" }
      end)))
      assert.same({ tag = "logs", host_path = "/var/log", read_only = false }, out.volumes[2])
      assert.same({
        id = "c1", rootfs = "rootfs", argv = { "/bin/echo", "hi" },
        env = { "A=x=y", "HOME=/root", "PATH=/bin" }, cwd = "/", user = "1000",
        mounts = {}, resources = {}, annotations = {}, security = DEFAULT_SECURITY,
        terminal = false, stdin = false,
      }, out.containers[1])
      assert.same({ path = "/usr/bin/true", args = {}, env = { "Z=1" }, timeout = 30 },
                  out.hooks.prestart[1])
      assert.same({}, out.hooks.poststop)
      assert.same({ cpus = 2, memory_mib = 512, kernel = "/boot/vmlinuz",
                    kernel_params = "quiet" }, out.vm)
    end)

    it("accepts list env, user forms and integral floats from JSON", function()
      local out = assert(config.pod(with(function(c)
        c.containers[1].env = { "B=2", "A=1" }
        c.containers[1].user = "0:0"
        c.vm.cpus = 4.0
        c.hooks.prestart[1].timeout = 0.5
      end)))
      assert.same({ "B=2", "A=1" }, out.containers[1].env)
      assert.equal("0:0", out.containers[1].user)
      assert.equal(math.type(out.vm.cpus), "integer")
      assert.equal(0.5, out.hooks.prestart[1].timeout)
      for _, u in ipairs { "root", "nobody:nogroup", "_svc-1", "1000:users", "0" } do
        assert(config.pod(c1(function(t) t.user = u end)))
      end
    end)

    it("accepts IDs and tags at their length limits", function()
      assert(config.pod(with(function(c) c.id = ("a"):rep(64) end)))
      assert(config.pod(with(function(c) c.id = "A.b_c-9" end)))
      assert(config.pod(with(function(c) c.volumes[1].tag = ("t"):rep(36) end)))
      assert(config.pod(c1(function(t) t.argv[2] = ("x"):rep(4096) end)))
    end)

    it("neither mutates nor aliases its input", function()
      local input = with(function(c) c.containers[1].env = { B = "2", A = "1" } end)
      local copy = base()
      copy.containers[1].env = { B = "2", A = "1" }
      local out = assert(config.pod(input))
      assert.same(copy, input)
      assert.are_not.equal(input.containers, out.containers)
      assert.are_not.equal(input.containers[1].argv, out.containers[1].argv)
      assert.are_not.equal(input.volumes[1], out.volumes[1])
      assert.are_not.equal(input.annotations, out.annotations)
      assert.are_not.equal(input.vm, out.vm)
      out.containers[1].argv[1] = "changed"
      assert.equal("/bin/echo", input.containers[1].argv[1])
    end)

    it("gives fresh default tables on each call", function()
      local a, b = assert(config.pod({})), assert(config.pod({}))
      assert.are_not.equal(a.volumes, b.volumes)
      assert.are_not.equal(a.hooks.prestart, b.hooks.prestart)
    end)

    it("accepts empty JSON arrays and objects where lists and maps go", function()
      local raw = cjson.decode([[{"containers": [{"id": "c", "rootfs": "r",
        "argv": ["/x"], "env": {}, "annotations": []}], "volumes": {},
        "annotations": {}, "hooks": {"prestart": []}}]])
      local out = assert(config.pod(raw))
      assert.same({}, out.containers[1].env)
      assert.same({}, out.volumes)
    end)

    it("raises on a non-table argument", function()
      assert.has_error(function() config.pod("x") end,
                       "bad argument #1 to 'pod' (table expected, got string)")
      assert.has_error(function() config.pod(nil) end)
    end)
  end)

  describe("container", function()
    it("uses 'container' as the default message prefix", function()
      local _, err = config.container({ id = "c", rootfs = "r", argv = {} })
      assert.equal("container.argv: expected a non-empty list of strings", err)
    end)

    it("uses the given prefix", function()
      local _, err = config.container({ id = "c", rootfs = "r", argv = { "x" }, cwd = "a" },
                                      "containers[2]")
      assert.equal('containers[2].cwd: expected an absolute path, got "a"', err)
    end)

    it("normalises one container", function()
      local out = assert(config.container({ id = "c", rootfs = "r", argv = { "x" },
                                            env = { K = "V" } }))
      assert.same({ id = "c", rootfs = "r", argv = { "x" }, env = { "K=V" }, cwd = "/",
                    mounts = {}, resources = {}, annotations = {},
                    security = DEFAULT_SECURITY, terminal = false, stdin = false }, out)
    end)

    it("raises on misuse", function()
      assert.has_error(function() config.container(1) end,
                       "bad argument #1 to 'container' (table expected, got number)")
      assert.has_error(function() config.container({}, 2) end,
                       "bad argument #2 to 'container' (string expected, got number)")
    end)
  end)

  describe("valid_id", function()
    it("accepts IDs matching ID_PATTERN", function()
      assert.equal("[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", config.ID_PATTERN)
      for _, s in ipairs { "a", "0", "web-1", "a.b_c", ("z"):rep(64), "a..b" } do
        assert.is_true(config.valid_id(s))
      end
    end)

    it("refuses others with a reason", function()
      for _, s in ipairs { "", "..", ".a", "a/b", "-a", "_a", ("z"):rep(65), "a b", "é", 5 } do
        local ok, err = config.valid_id(s)
        assert.is_nil(ok)
        assert.is_string(err)
        assert.is_nil(err:match("^:"))
      end
      local _, err = config.valid_id("a/b")
      assert.equal('invalid ID "a/b" (must match [A-Za-z0-9][A-Za-z0-9_.-]{0,63})', err)
    end)
  end)

  describe("load_file", function()
    local dir

    before_each(function() dir = support.tmpdir() end)
    after_each(function() support.rmtree(dir) end)

    local function file(name, text)
      local path = dir .. "/" .. name
      support.write_file(path, text)
      return path
    end

    local function fails(path, expected)
      local t, err = config.load_file(path)
      assert.is_nil(t)
      assert.is_string(err)
      assert.truthy(err:find(expected, 1, true), ("expected %q in %q"):format(expected, err))
      return err
    end

    it("loads a Lua file with the allowed libraries", function()
      local path = file("pod.lua", [[
        local n = tonumber("2")
        return {
          id = string.format("web-%d", n),
          vm = { cpus = math.max(1, n), memory_mib = 256 },
          containers = { { id = "c1", rootfs = "r",
                           argv = { "/bin/echo", table.concat({ "a", "b" }) },
                           env = { HOME = os.getenv("HOME") or "/" } } },
        }
      ]])
      local t = assert(config.load_file(path))
      assert.equal("web-2", t.id)
      assert.equal("ab", t.containers[1].argv[2])
      assert(config.pod(t))
    end)

    it("gives the file copies of the libraries", function()
      local path = file("lib.lua", [[
        string.format = nil
        math.pi = 3
        return { ok = type(string.rep) == "function" }
      ]])
      local t = assert(config.load_file(path))
      assert.is_true(t.ok)
      assert.is_function(string.format)
      assert.is_true(math.pi > 3.14)
    end)

    it("reports a syntax error with the path", function()
      local path = file("syntax.lua", "return {")
      local err = fails(path, path .. ":")
      assert.truthy(err:find("expected", 1, true))
    end)

    it("reports a runtime error with the path", function()
      local path = file("rt.lua", "error('boom', 0)")
      assert.equal(path .. ": boom", select(2, config.load_file(path)))
      fails(file("rt2.lua", "local x = nil; return x.y"), "attempt to index")
    end)

    it("refuses a chunk that does not return a table", function()
      local path = file("num.lua", "return 42")
      assert.equal(path .. ": a config file must return a table",
                   select(2, config.load_file(path)))
      fails(file("none.lua", "local x = 1"), "a config file must return a table")
    end)

    it("does not give the file io, os.execute, require, load or globals", function()
      fails(file("io.lua", "return { f = io.open('/etc/passwd') }"), "global 'io'")
      fails(file("exec.lua", "return { os.execute('true') }"), "field 'execute'")
      fails(file("req.lua", "return require('os')"), "global 'require'")
      fails(file("load.lua", "return load('return {}')()"), "global 'load'")
      fails(file("dofile.lua", "return dofile('/dev/null')"), "global 'dofile'")
      local t = assert(config.load_file(file("g.lua", "return { g = _G, s = setmetatable }")))
      assert.is_nil(t.g)
      assert.is_nil(t.s)
    end)

    it("refuses a binary chunk", function()
      local path = file("bin.lua", string.dump(function() return {} end))
      fails(path, "binary chunk")
    end)

    it("loads a JSON object, with null kept as cjson.null for the validator", function()
      local t = assert(config.load_file(file("pod.json",
        '{"id": "web", "vm": {"cpus": 2}, "containers": [], "hypervisor": null}')))
      assert.equal("web", t.id)
      assert.equal(cjson.null, t.hypervisor)
      local _, err = config.pod(t)
      assert.equal("hypervisor: expected a string, got null", err)
      t.hypervisor = nil
      local out = assert(config.pod(t))
      assert.equal(2, out.vm.cpus)
      assert.equal("integer", math.type(out.vm.cpus))
    end)

    it("reports malformed JSON", function()
      local path = file("bad.json", '{"id": ')
      local err = fails(path, path .. ": invalid JSON: ")
      assert.truthy(#err > #(path .. ": invalid JSON: "))
    end)

    it("refuses a JSON top level that is not an object", function()
      fails(file("arr.json", '[{"id": "x"}]'), "must contain an object")
      fails(file("empty.json", " [] "), "must contain an object")
      fails(file("str.json", '"x"'), "must contain an object")
      fails(file("null.json", "null"), "must contain an object")
      assert.same({}, assert(config.load_file(file("obj.json", " {} "))))
    end)

    it("decodes JSON text as a .json file, naming the source (decode_json)", function()
      assert.same({ id = "x" }, assert(config.decode_json('{"id": "x"}', "t")))
      assert.equal("t: a JSON config file must contain an object",
                   select(2, config.decode_json("[]", "t")))
      assert.matches("^t: invalid JSON: ", select(2, config.decode_json("{", "t")))
      -- a NUL escape decodes as data; the validator refuses it (fuzz/corpus/config/nul)
      local raw = assert(config.decode_json('{"annotations": {"a": "b\\u0000c"}}', "t"))
      assert.equal("annotations.a: string contains a NUL byte", select(2, config.pod(raw)))
    end)

    it("refuses an unknown extension", function()
      local path = file("pod.yaml", "id: x")
      assert.equal(path .. ": unknown config format (expected .lua or .json)",
                   select(2, config.load_file(path)))
      fails(dir .. "/noext", "unknown config format")
    end)

    it("reports a missing file", function()
      local path = dir .. "/missing.json"
      assert.equal(path .. ": No such file or directory", select(2, config.load_file(path)))
      fails(dir .. "/missing.lua", "No such file or directory")
    end)

    it("raises on a non-string path", function()
      assert.has_error(function() config.load_file(nil) end,
                       "bad argument #1 to 'load_file' (string expected, got nil)")
    end)
  end)
end)
