-- The policy sandbox (vc.core.luabox): what a policy can reach, and the
-- budget and memory cap that stop it, even through pcall.
local luabox = require "vc.core.luabox"
local support = require "support"

-- A box holding a policy whose function f has body src.
local function box_with(src, limits)
  local b = luabox.new(limits or { budget = 2000000, memory = 4 * 1024 * 1024 })
  assert(b:load("return { f = function(...) " .. src .. " end }", "=test"))
  return b
end

-- f's result, or nil and the error.
local function run(src, limits, ...)
  local b = box_with(src, limits)
  local res = table.pack(b:call("f", "ro", ...))
  b:close()
  return table.unpack(res, 1, res.n)
end

describe("vc.core.luabox", function()
  it("loads text only, and needs a returned or registered table", function()
    local b = luabox.new()
    local fields, fns = b:load('return { name = "x", n = 1, admit = function() end }', "=p")
    assert.same({ name = "x", n = 1 }, fields)
    assert.same({ admit = true }, fns)
    b:close()
    local bytecode = string.dump(function() return {} end)
    local ok, err = luabox.new():load(bytecode, "=bin")
    assert.is_nil(ok)
    assert.matches("attempt to load a binary chunk", err, 1, true)
    ok, err = luabox.new():load("return 42", "=p")
    assert.is_nil(ok)
    assert.matches("must return a table or register one", err, 1, true)
    b = luabox.new()
    fields = assert(b:load('require("vc.policy").register { name = "r", f = function() '
                           .. 'return 7 end }', "=p"))
    assert.equal("r", fields.name)
    assert.same({ true, 7 }, { b:call("f", "ro") })
    ok, err = luabox.new():load('local p = require "vc.policy"; p.register {}; '
                                .. 'p.register {}', "=p")
    assert.is_nil(ok)
    assert.matches("registers one table", err, 1, true)
    ok, err = luabox.new():load('require("vc.policy").register {}; return {}', "=p")
    assert.is_nil(ok)
    assert.matches("not both", err, 1, true)
    ok, err = luabox.new():load("return {", "=syntax")
    assert.is_nil(ok)
    assert.matches("syntax:1:", err, 1, true)
  end)

  describe("refuses every way out", function()
    for _, case in ipairs {
      { "io.open('/etc/passwd')", "undefined global 'io'" },
      { "os.execute('true')", "'os.execute' is not available" },
      { "os.remove('/tmp/x')", "'os.remove' is not available" },
      { "os.getenv('HOME')", "'os.getenv' is not available" },
      { "os.exit(1)", "'os.exit' is not available" },
      { "package.loadlib('x', 'y')", "undefined global 'package'" },
      { "require('io')", "module 'io' is not available to policies" },
      { "require('os').execute('true')", "'os.execute' is not available" },
      { "require('debug')", "module 'debug' is not available" },
      { "debug.getregistry()", "undefined global 'debug'" },
      { "load('return 1')", "undefined global 'load'" },
      { "loadstring('return 1')", "undefined global 'loadstring'" },
      { "dofile('/etc/passwd')", "undefined global 'dofile'" },
      { "loadfile('/etc/passwd')", "undefined global 'loadfile'" },
      { "collectgarbage('stop')", "undefined global 'collectgarbage'" },
      { "string.dump(function() end)", "'string.dump' is not available" },
      { "return ('').dump", "'string.dump' is not available" },
      { "coroutine.create(print)", "undefined global 'coroutine'" },
      { "print('x')", "undefined global 'print'" },
      { "rawset({}, 1, 2)", "undefined global 'rawset'" },
      { "setmetatable({}, { __gc = function() while true do end end })",
        "__gc is not available to policies" },
      { "setmetatable({}, { __gc = true })", "__gc is not available to policies" },
    } do
      it(case[1], function()
        local ok, err = run(case[1])
        assert.is_nil(ok)
        assert.matches(case[2], err, 1, true)
      end)
    end

    it("leaves the allowed libraries usable", function()
      assert.same({ true, "a-b", 3, 2, "1970", 7 }, { run([[
        local s = string.format("%s-%s", "a", "b")
        local t = { 3, 1, 2 }
        table.sort(t)
        local m = require "math"
        return s, t[3], m.max(1, 2), os.date("!%Y", 0), utf8.len("abcdefg")
      ]]) })
      assert.same({ true, "x.y.z", 2 }, { run([[return ("x/y/z"):gsub("/", ".")]]) })
    end)
  end)

  describe("the instruction budget", function()
    local limits = { budget = 200000, memory = 4 * 1024 * 1024 }

    it("stops an endless loop", function()
      local ok, err = run("while true do end", limits)
      assert.is_nil(ok)
      assert.equal("instruction budget exceeded (200000 instructions)", err)
    end)

    for _, case in ipairs {
      { "pcall", "for i = 1, 100 do pcall(function() while true do end end) end "
                 .. "return 'swallowed'" },
      { "xpcall", "for i = 1, 100 do xpcall(function() while true do end end, "
                  .. "function() return 'handled' end) end return 'swallowed'" },
      { "nested pcall", "for i = 1, 100 do pcall(pcall, pcall, function() while true do end "
                        .. "end) end return 'swallowed'" },
      { "a looping message handler", "xpcall(function() while true do end end, "
                                     .. "function() while true do end end) return 'swallowed'" },
      { "__close", "do local x <close> = setmetatable({}, { __close = function() "
                   .. "while true do end end }) end return 'swallowed'" },
      { "error objects", "local ok = pcall(function() while true do end end) "
                         .. "if not ok then error({}, 0) end" },
    } do
      it("is not swallowed by " .. case[1], function()
        local ok, err = run(case[2], limits)
        assert.is_nil(ok)
        assert.equal("instruction budget exceeded (200000 instructions)", err)
      end)
    end

    it("charges the C functions that loop without running Lua", function()
      for _, src in ipairs {
        "return (('a'):rep(20000)):find('.-.-.-b')",
        "return (('a'):rep(5000)):gsub('a*b', '')",
        "for w in (('a'):rep(5000)):gmatch('a-b') do end",
        "local t = setmetatable({}, { __len = function() return 1 << 40 end }) "
          .. "table.insert(t, 1, 'x')",
        "table.move({}, 1, 1 << 40, 2)",
        "table.concat({}, '', 1, 1 << 40)",
      } do
        local ok, err = run(src, limits)
        assert.is_nil(ok, src)
        assert.equal("instruction budget exceeded (200000 instructions)", err, src)
      end
      -- patterns on the short strings policies work with are cheap
      assert.same({ true, "/srv/data" }, { run([[
        local p = "/srv//data/"
        p = p:gsub("/+", "/"):gsub("(.)/$", "%1")
        return p
      ]], limits) })
    end)

    it("applies to each call, and a stopped box stays stopped", function()
      local b = luabox.new(limits)
      assert(b:load([[return {
        small = function() for _ = 1, 1000 do end return "ok" end,
        spin = function() while true do end end,
      }]], "=p"))
      for _ = 1, 50 do assert.same({ true, "ok" }, { b:call("small", "ro") }) end
      assert.same({ nil, "instruction budget exceeded (200000 instructions)" },
                  { b:call("spin", "ro") })
      assert.same({ nil, "instruction budget exceeded (200000 instructions)" },
                  { b:call("small", "ro") })
    end)

    it("stops an endless loop at load time", function()
      local ok, err = luabox.new(limits):load("while true do end", "=p")
      assert.is_nil(ok)
      assert.matches("instruction budget exceeded", err, 1, true)
    end)
  end)

  describe("the memory cap", function()
    local limits = { budget = 100000000, memory = 1024 * 1024 }

    for _, case in ipairs {
      { "a growing table", "local t = {} for i = 1, 1e9 do t[i] = i end" },
      { "a growing string", "local s = 'x' while true do s = s .. s end" },
      { "string.rep", "return ('x'):rep(1 << 30)" },
      { "pcall", "for _ = 1, 10 do pcall(function() local t = {} for i = 1, 1e9 do "
                 .. "t[i] = i end end) end return 'swallowed'" },
      { "xpcall", "xpcall(function() return ('x'):rep(1 << 30) end, function() "
                  .. "return 'handled' end) return 'swallowed'" },
    } do
      it("stops " .. case[1], function()
        local ok, err = run(case[2], limits)
        assert.is_nil(ok)
        assert.equal("memory cap exceeded (1048576 bytes)", err)
      end)
    end

    it("refuses misuse: a closed box, limits out of range", function()
      local b = luabox.new()
      assert(b:load("return { f = function() end }", "=p"))
      b:close()
      b:close()
      assert.has_error(function() b:call("f", "ro") end, "luabox: using a closed box")
      assert.has_error(function() luabox.new { memory = 1 } end)
      assert.has_error(function() luabox.new { budget = 1 } end)
      assert.has_error(function() luabox.new():call("f", "ro") end)
    end)

    it("keeps its count", function()
      local b = luabox.new(limits)
      assert(b:load("return {}", "=p"))
      local used = b:memory()
      assert.is_true(used > 0 and used < 1024 * 1024)
    end)
  end)

  describe("values cross as data only", function()
    it("hands in read-only views with rw for mutation", function()
      local b = box_with("", nil)
      b:close()
      b = luabox.new()
      assert(b:load([[return {
        set = function(c) c.vm.cpus = 2 end,
        add = function(c) c.new = 1 end,
        insert = function(c) table.insert(c.list, 4) end,
        read = function(c)
          local keys = {}
          for k in pairs(c) do keys[#keys + 1] = k end
          table.sort(keys)
          local sum = 0
          for _, v in ipairs(c.list) do sum = sum + v end
          return table.concat(keys, ","), #c.list, sum, c.vm.cpus, getmetatable(c)
        end,
        mutate = function(c) c.vm.cpus = 4 end,
        replace = function() return { vm = { cpus = 8 } } end,
      }]], "=p"))
      local cfg = { vm = { cpus = 1 }, list = { 1, 2, 3 } }
      for _, fn in ipairs { "set", "add", "insert" } do
        local ok, err = b:call(fn, "ro", cfg)
        assert.is_nil(ok)
        assert.matches("attempt to modify a read-only table", err, 1, true)
      end
      assert.same({ true, "list,vm", 3, 6, 1, false }, { b:call("read", "ro", cfg) })
      assert.same({ true, { vm = { cpus = 4 }, list = { 1, 2, 3 } } },
                  { b:call("mutate", "rw", cfg) })
      assert.same({ true, { vm = { cpus = 8 } } }, { b:call("replace", "rw", cfg) })
      assert.equal(1, cfg.vm.cpus)
    end)

    it("refuses functions and cycles either way", function()
      local b = luabox.new()
      assert(b:load([[return {
        fn = function() return function() end end,
        deep = function() local t = {} t.t = t return t end,
        echo = function(...) return ... end,
      }]], "=p"))
      local ok, err = b:call("fn", "ro")
      assert.is_nil(ok)
      assert.matches("fn: result holds a function (only data crosses)", err, 1, true)
      ok, err = b:call("deep", "ro")
      assert.is_nil(ok)
      assert.matches("nested too deeply", err, 1, true)
      ok, err = b:call("echo", "ro", print)
      assert.is_nil(ok)
      assert.matches("argument holds a function", err, 1, true)
      local t = {}
      t.t = t
      ok, err = b:call("echo", "ro", t)
      assert.is_nil(ok)
      assert.matches("nested too deeply", err, 1, true)
      assert.same({ true, 1, "a", true, { x = { 2 } } },
                  { b:call("echo", "ro", 1, "a", true, { x = { 2 } }) })
      assert.same({ true, { x = 1 }, "b" }, { b:call("echo", "rw", { x = 1 }, "b") })
      local mut = luabox.new()
      assert(mut:load("return { f = function(c) c.n = 2 end }", "=m"))
      assert.same({ true, { n = 2 } }, { mut:call("f", "rw", { n = 1 }) })
    end)
  end)

  describe("resolve (the policies' realpath)", function()
    local dir

    before_each(function()
      dir = support.tmpdir()
      assert(os.execute("mkdir -p " .. dir .. "/real/sub && ln -s /etc " .. dir .. "/etc-link"
                        .. " && ln -s " .. dir .. "/real " .. dir .. "/ok-link"
                        .. " && ln -s /nonexistent/x " .. dir .. "/dangling"))
    end)

    after_each(function()
      support.rmtree(dir)
    end)

    it("resolves links and '..' as the kernel would", function()
      local real = luabox.resolve(dir)
      assert.equal("/etc", luabox.resolve(dir .. "/etc-link"))
      assert.equal("/etc/passwd", luabox.resolve(dir .. "/etc-link/passwd"))
      assert.equal("/etc/new/file", luabox.resolve(dir .. "/etc-link/new/file"))
      assert.equal("/etc", luabox.resolve(dir .. "/real/../../../../../../etc"))
      assert.equal("/etc", luabox.resolve(dir .. "/missing/../../../../../../../etc"))
      assert.equal(real .. "/real/sub/x", luabox.resolve(dir .. "/ok-link/sub/./x"))
      assert.equal("/", luabox.resolve("/.."))
      local ok, err = luabox.resolve(dir .. "/dangling/x")
      assert.is_nil(ok)
      assert.matches("a dangling symbolic link", err, 1, true)
      ok, err = luabox.resolve("relative")
      assert.is_nil(ok)
      assert.matches("not an absolute path", err, 1, true)
    end)

    it("lists a folder's .lua files, sorted", function()
      for _, n in ipairs { "b.lua", "a.lua", "c.txt", ".hidden.lua" } do
        support.write_file(dir .. "/real/" .. n, "")
      end
      assert.same({ "a.lua", "b.lua" }, luabox.list(dir .. "/real"))
      assert.is_nil(luabox.list(dir .. "/nope"))
    end)
  end)
end)
