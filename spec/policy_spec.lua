-- Policies: where they come from and in which order, admit and mutate
-- around pod creation, each shipped policy's decisions, and the CLI.
local cjson = require "cjson"
local hooks = require "vc.hooks"
local policy = require "vc.policy"
local process = require "vc.core.process"
local support = require "support"
local vc = require "vc"

local function entries(dir)
  local p = io.popen("ls -A " .. support.quote(dir) .. " 2>/dev/null")
  local out = p:read("a")
  p:close()
  return out
end

describe("policies", function()
  local root, dir

  before_each(function()
    root = support.tmpdir()
    dir = root .. "/policies"
    assert(os.execute("mkdir " .. dir))
    vc.setup { root = root, lock_timeout = 2 }
  end)

  after_each(function()
    policy.reset()
    vc.hooks.clear()
    for _, p in ipairs(vc.pod.list { all = true }) do p:delete { force = true, hooks = false } end
    support.rmtree(root)
  end)

  local function write(name, src)
    local path = dir .. "/" .. name
    support.write_file(path, src)
    return path
  end

  local function mock_pod(id, extra)
    local cfg = {
      id = id, hypervisor = "mock",
      containers = { { id = "c1", rootfs = "/tmp", argv = { "/bin/sleep", "1000" } } },
    }
    for k, v in pairs(extra or {}) do cfg[k] = v end
    return cfg
  end

  local function names()
    local out = {}
    for _, p in ipairs(assert(vc.policy.list())) do out[#out + 1] = p.name .. ":" .. p.origin end
    return out
  end

  -- The verdict of every active policy over cfg: admitted, reason, config.
  local function check(cfg)
    local r = assert(vc.policy.check(cfg))
    return r.admitted, r.reason, r.config
  end

  local function nothing_stored()
    assert.same({}, vc.pod.list { all = true })
    assert.equal("", entries(root .. "/lib/pods"))
  end

  describe("sources", function()
    it("start with the shipped defaults, in file order", function()
      assert.same({ "default:default", "isolation:default", "restart:default" }, names())
      for _, p in ipairs(vc.policy.list()) do
        assert.equal(support.project .. "/policies/" .. p.name .. ".lua", p.path)
      end
    end)

    it("add files and shipped policies by name, once each, in order", function()
      local a = write("a.lua", 'return { name = "a", admit = function() return true end }')
      assert(vc.policy.use(a))
      assert(vc.policy.use("readonly-rootfs"))
      assert(vc.policy.use(a))
      assert.same({ "default:default", "isolation:default", "restart:default", "a:script",
                    "readonly-rootfs:script" }, names())
      local ok, err = vc.policy.use("no-such-policy")
      assert.is_nil(ok)
      assert.matches("policy no-such-policy: no such file, nor a shipped policy", err, 1, true)
    end)

    it("let a later policy replace an earlier one of the same name, in its place", function()
      assert(vc.policy.use(write("mine.lua", [[
        return { name = "default", admit = function() return false, "site rules" end }
      ]])))
      assert.same({ "default:script", "isolation:default", "restart:default" }, names())
      local ok, reason = check(mock_pod("x"))
      assert.is_false(ok)
      assert.equal("policy default: refused: site rules", reason)
    end)

    for _, case in ipairs {
      { "a syntax error", "return {", "expected" },
      { "no name", "return { admit = function() return true end }", "its table needs a name" },
      { "a bad name", 'return { name = "a b" }', "its table needs a name" },
      { "an unknown function", 'return { name = "x", pre_strat = function() end }',
        'unknown function "pre_strat"' },
      { "an unknown key", 'return { name = "x", order = 1 }', 'unknown key "order"' },
      { "no table", "return 1", "must return a table or register one" },
      { "an error at load", 'error("nope")', "nope" },
      { "an endless loop at load", "while true do end", "instruction budget exceeded" },
    } do
      it("fail closed on " .. case[1] .. ", naming the file", function()
        local path = write("bad.lua", case[2])
        local ok, err = vc.policy.use(path)
        assert.is_nil(ok)
        assert.matches("policy " .. path .. ": ", err, 1, true)
        assert.matches(case[3], err, 1, true)
        local p, cerr = vc.pod.create(mock_pod("x"))
        assert.is_nil(p)
        assert.equal(err, cerr)
        nothing_stored()
      end)
    end
  end)

  describe("admit and mutate", function()
    it("refuse with the first refusal, naming its policy, and store nothing", function()
      assert(vc.policy.use(write("one.lua", [[
        return { name = "one", admit = function(c)
          if c.annotations.tier == "gold" then return false, "no gold pods" end
          return true
        end }
      ]])))
      assert(vc.policy.use(write("two.lua", [[
        return { name = "two", admit = function() return false, "never" end }
      ]])))
      vc.pod.list()
      local before = support.snapshot(root)
      local p, err = vc.pod.create(mock_pod("gold", { annotations = { tier = "gold" } }))
      assert.is_nil(p)
      assert.equal("policy one: refused: no gold pods", err)
      p, err = vc.pod.run(mock_pod("plain"))
      assert.is_nil(p)
      assert.equal("policy two: refused: never", err)
      assert.equal(before, support.snapshot(root))
    end)

    it("count anything but true from admit as a refusal", function()
      assert(vc.policy.use(write("lazy.lua", [[
        return { name = "lazy", admit = function() end }
      ]])))
      local p, err = vc.pod.create(mock_pod("x"))
      assert.is_nil(p)
      assert.equal("policy lazy: refused: admit returned nil, not true", err)
    end)

    it("mutate fills in before vc's defaults; admit judges the result", function()
      assert(vc.policy.use(write("fill.lua", [[
        return {
          name = "fill",
          mutate = function(c, ctx)
            c.annotations.filled = ctx.op
            if c.vm.cpus == nil then c.vm.cpus = 2 end
            c.containers[1].env = { "FILLED=1" }
          end,
          admit = function(c)
            if c.vm.cpus ~= 2 or c.vm.memory_mib ~= 256 then return false, "not filled" end
            return true
          end,
        }
      ]])))
      local p = assert(vc.pod.create(mock_pod("filled")))
      local cfg = assert(p:config())
      assert.equal(2, cfg.vm.cpus)
      assert.equal("create", cfg.annotations.filled)
      local ccfg = cjson.decode(support.read_file(root .. "/lib/pods/filled/c1/config.json"))
      assert.same({ "FILLED=1" }, ccfg.env)
    end)

    it("refuse a config that mutate made invalid, naming the policy", function()
      assert(vc.policy.use(write("broken.lua", [[
        return { name = "broken", mutate = function(c) c.vm.cpus = "many" end }
      ]])))
      local p, err = vc.pod.create(mock_pod("x"))
      assert.is_nil(p)
      assert.equal("policy broken: mutate made an invalid config: vm.cpus: expected an integer "
                   .. "from 1 to 64, got string", err)
      nothing_stored()
    end)

    it("stop a policy's endless loop and memory bomb, naming it", function()
      policy.setup { budget = 100000, memory = 2 * 1024 * 1024 }
      assert(vc.policy.use(write("spin.lua", [[
        return { name = "spin", admit = function(c)
          if c.annotations.spin then
            while true do pcall(function() while true do end end) end
          end
          local t = {}
          for i = 1, 1e9 do t[i] = ("x"):rep(64) .. i end
        end }
      ]])))
      local p, err = vc.pod.create(mock_pod("x", { annotations = { spin = "1" } }))
      assert.is_nil(p)
      assert.equal("policy spin: admit: instruction budget exceeded (100000 instructions)", err)
      policy.setup { files = {}, budget = 100000000 }
      assert(vc.policy.use(dir .. "/spin.lua"))
      p, err = vc.pod.create(mock_pod("y"))
      assert.is_nil(p)
      assert.equal("policy spin: admit: memory cap exceeded (2097152 bytes)", err)
      nothing_stored()
    end)

    it("refuse every way out of the sandbox, naming the policy", function()
      local path = write("evil.lua", [[
        return { name = "evil", admit = function(c)
          local how = c.annotations.how
          if how == "io" then return io.open("/etc/shadow") end
          if how == "exec" then return os.execute("touch /tmp/pwned") end
          if how == "require" then return require("io") end
          if how == "load" then return load("return 1") end
          return true
        end }
      ]])
      assert(vc.policy.use(path))
      for how, why in pairs {
        io = "undefined global 'io'",
        exec = "'os.execute' is not available to policies",
        require = "module 'io' is not available to policies",
        load = "undefined global 'load'",
      } do
        local p, err = vc.pod.create(mock_pod("x", { annotations = { how = how } }))
        assert.is_nil(p)
        assert.matches("^policy evil: admit: " .. path:gsub("%p", "%%%0") .. ":%d+: ", err)
        assert.matches(why, err, 1, true)
      end
      nothing_stored()
    end)

    it("judge a container added to a pod, with the whole pod in view", function()
      assert(vc.policy.use(write("few.lua", [[
        return { name = "few",
          mutate = function(c, ctx)
            if ctx.op == "add_container" then
              c.containers[#c.containers].annotations.added = "yes"
            end
          end,
          admit = function(c, ctx)
            if #c.containers > 2 then
              return false, "at most 2 containers, not for " .. tostring(ctx.container)
            end
            return true
          end }
      ]])))
      local p = assert(vc.pod.create(mock_pod("few")))
      local c2 = assert(p:add_container { id = "c2", rootfs = "/tmp", argv = { "/bin/true" } })
      local cfg = cjson.decode(support.read_file(root .. "/lib/pods/few/c2/config.json"))
      assert.equal("yes", cfg.annotations.added)
      local c3, err = p:add_container { id = "c3", rootfs = "/tmp", argv = { "/bin/true" } }
      assert.is_nil(c3)
      assert.equal("policy few: refused: at most 2 containers, not for c3", err)
      assert.is_nil(p:container("c3"))
      assert.equal("", entries(root .. "/lib/pods/few"):gsub("%S+", function(e)
        return (e == "c1" or e == "c2" or e == "config.json") and "" or e
      end):gsub("%s", ""))
      assert.truthy(c2)
    end)
  end)

  describe("default", function()
    it("caps vCPUs and memory", function()
      assert.is_true(check(mock_pod("x", { vm = { cpus = 16, memory_mib = 32768 } })))
      local ok, reason = check(mock_pod("x", { vm = { cpus = 17 } }))
      assert.is_false(ok)
      assert.equal("policy default: refused: vm.cpus: 17 vCPUs, at most 16", reason)
      ok, reason = check(mock_pod("x", { vm = { memory_mib = 40000 } }))
      assert.is_false(ok)
      assert.equal("policy default: refused: vm.memory_mib: 40000 MiB, at most 32768", reason)
      local cfg = mock_pod("x", { vm = { memory_mib = 128 } })
      cfg.containers[1].resources = { memory_mib = 512 }
      ok, reason = check(cfg)
      assert.is_false(ok)
      assert.equal("policy default: refused: container c1: memory limit 512 MiB above the "
                   .. "pod's 128", reason)
    end)

    it("gives a pod that names no memory enough for its containers", function()
      local cfg = mock_pod("x")
      cfg.containers[1].resources = { memory_mib = 300 }
      cfg.containers[2] = { id = "c2", rootfs = "/tmp", argv = { "/bin/true" },
                            resources = { memory_mib = 200 } }
      local ok, _, out = check(cfg)
      assert.is_true(ok)
      assert.equal(564, out.vm.memory_mib)
      ok, _, out = check(mock_pod("y"))
      assert.is_true(ok)
      assert.equal(256, out.vm.memory_mib)
    end)

    describe("volumes", function()
      local data

      before_each(function()
        data = root .. "/data"
        assert(os.execute("mkdir -p " .. data .. "/sub && ln -s /etc " .. data .. "/etc-link"
                          .. " && ln -s /proc/self " .. data .. "/proc-link"
                          .. " && ln -s /nonexistent " .. data .. "/dangling"
                          .. " && ln -s /opt " .. data .. "/opt-link"))
      end)

      local function volume(path)
        return mock_pod("v", { volumes = { { tag = "v", host_path = path } } })
      end

      it("come from the allowed folders", function()
        assert.is_true(check(volume(data)))
        assert.is_true(check(volume(data .. "/sub/new")))
        assert.is_true(check(volume(data .. "/sub/../sub")))
      end)

      for _, case in ipairs {
        { "/", "is the root folder" },
        { "/etc", "lies in /etc, which is never shared" },
        { "/etc/ssh", "lies in /etc, which is never shared" },
        { "/proc", "lies in /proc" },
        { "/sys/kernel", "lies in /sys" },
        { "/dev", "lies in /dev" },
        { "/boot", "lies in /boot" },
        { "/run/vc", "lies in /run/vc" },
        { "/run/vc/pods/x", "lies in /run/vc" },
        { "/opt/data", "is not under an allowed folder" },
        { "DATA/../../../etc", "(/etc) lies in /etc" },
        { "DATA/missing/../../../../etc/x", "(/etc/x) lies in /etc" },
        { "DATA/etc-link", "(/etc) lies in /etc" },
        { "DATA/etc-link/new", "(/etc/new) lies in /etc" },
        { "DATA/proc-link", "lies in /proc" },
        { "DATA/opt-link/x", "(/opt/x) is not under an allowed folder" },
        { "DATA/dangling/x", "a dangling symbolic link" },
        { "ROOT/run/pods", "which is never shared" },
        { "ROOT/lib/pods/x", "which is never shared" },
      } do
        it("never from " .. case[1], function()
          local path = case[1]:gsub("^DATA", data):gsub("^ROOT", root)
          local ok, reason = check(volume(path))
          assert.is_false(ok, path)
          assert.matches("^policy default: refused: volume v: ", reason)
          assert.matches(case[2], reason, 1, true)
        end)
      end

      it("refuses a pod before anything exists", function()
        local p, err = vc.pod.create(volume(data .. "/etc-link"))
        assert.is_nil(p)
        assert.matches("policy default: refused: volume v: .*lies in /etc", err)
        nothing_stored()
      end)
    end)
  end)

  describe("isolation", function()
    local function pod(hv, level, ctr_level)
      local cfg = mock_pod("i", { annotations = { ["vc.isolation"] = level } })
      cfg.hypervisor = hv
      cfg.containers[1].annotations = { ["vc.isolation"] = ctr_level }
      return cfg
    end

    it("runs untrusted workloads in a VM, and refuses other backends for them", function()
      local ok, reason, out = check(pod(nil, "untrusted"))
      assert.is_true(ok, reason)
      assert.equal("qemu", out.hypervisor)
      for _, hv in ipairs { "namespace", "mock" } do
        ok, reason = check(pod(hv, "untrusted"))
        assert.is_false(ok)
        assert.equal("policy isolation: refused: untrusted workloads must run in a VM (qemu), "
                     .. "not on the " .. hv .. " backend", reason)
      end
      ok, reason = check(pod("namespace", nil, "untrusted"))
      assert.is_false(ok)
      assert.matches("untrusted workloads must run in a VM", reason, 1, true)
      ok = check(pod("qemu", "untrusted"))
      assert.is_true(ok)
    end)

    it("gives trusted pods the namespace sandbox, and leaves others alone", function()
      local ok, _, out = check(pod(nil, "trusted"))
      assert.is_true(ok)
      assert.equal("namespace", out.hypervisor)
      ok, _, out = check(pod("mock", "trusted"))
      assert.is_true(ok)
      assert.equal("mock", out.hypervisor)
      ok, _, out = check(pod(nil, nil))
      assert.is_true(ok)
      assert.equal("qemu", out.hypervisor)
      local reason
      ok, reason = check(pod("mock", "somewhat"))
      assert.is_false(ok)
      assert.equal('policy isolation: refused: pod: annotation vc.isolation must be "trusted" '
                   .. 'or "untrusted", not "somewhat"', reason)
    end)

    it("refuses an untrusted pod on the namespace backend, creating nothing", function()
      local p, err = vc.pod.run(pod("namespace", "untrusted"))
      assert.is_nil(p)
      assert.matches("^policy isolation: refused: untrusted workloads", err)
      nothing_stored()
    end)
  end)

  describe("restart", function()
    local function failing(mode, code, annotations)
      local cfg = mock_pod("r")
      local a = { ["vc.mock.exit_code"] = tostring(code), ["vc.restart.backoff"] = "0",
                  ["vc.restart.max"] = "3" }
      for k, v in pairs(annotations or {}) do a[k] = v end
      cfg.containers[1].annotations = a
      cfg.containers[1].restart = mode
      return cfg
    end

    local function ctr(p)
      return assert(p:status()).containers[1]
    end

    it("restarts a failing container on-failure, up to its count", function()
      local p = assert(vc.pod.run(failing("on-failure", 1)))
      local c = ctr(p)
      assert.equal("stopped", c.state)
      assert.equal(1, c.exit_code)
      assert.equal(3, c.restarts)
    end)

    it("leaves a clean exit alone on-failure, and restarts it always", function()
      local p = assert(vc.pod.run(failing("on-failure", 0)))
      assert.is_nil(ctr(p).restarts)
      assert.is_true(p:delete { force = true })
      p = assert(vc.pod.run(failing("always", 0)))
      assert.equal(3, ctr(p).restarts)
      assert.is_true(p:delete { force = true })
      p = assert(vc.pod.run(failing("no", 1)))
      assert.is_nil(ctr(p).restarts)
      assert.is_true(p:delete { force = true })
      p = assert(vc.pod.run(failing(nil, 1)))
      assert.is_nil(ctr(p).restarts)
    end)

    it("does not restart what vc container kill ended", function()
      local cfg = mock_pod("k")
      cfg.containers[1].restart = "always"
      cfg.containers[1].annotations = { ["vc.restart.backoff"] = "0" }
      local p = assert(vc.pod.run(cfg))
      assert.is_true(p:container("c1"):kill("KILL"))
      local c = ctr(p)
      assert.equal("stopped", c.state)
      assert.equal(137, c.exit_code)
      assert.is_nil(c.restarts)
    end)

    it("restarts with backoff in wait, which returns the final exit code", function()
      local p = assert(vc.pod.run(failing("on-failure", 4, {
        ["vc.restart.backoff"] = "0.1", ["vc.restart.max"] = "2",
      })))
      assert.is_nil(ctr(p).restarts)
      local t0 = process.now()
      assert.equal(4, p:container("c1"):wait(20))
      local took = process.now() - t0
      assert.equal(2, ctr(p).restarts)
      assert.is_true(took >= 0.25 and took < 10, "took " .. took)
    end)

    it("refuses bad restart annotations", function()
      local ok, reason = check(failing("always", 1, { ["vc.restart.max"] = "lots" }))
      assert.is_false(ok)
      assert.equal('policy restart: refused: container c1: annotation vc.restart.max must be a '
                   .. 'number from 0 to 100, not "lots"', reason)
      local p, err = vc.pod.create(mock_pod("bad-restart", {
        containers = { { id = "c", rootfs = "/tmp", argv = { "/bin/true" }, restart = "often" } },
      }))
      assert.is_nil(p)
      assert.equal('containers[1].restart: expected "no", "on-failure" or "always", got "often"',
                   err)
    end)

    it("is bounded by vc whatever a policy asks", function()
      assert(vc.policy.use(write("forever.lua", [[
        return { name = "forever",
                 container_exit = function() return { restart = true, delay = -5 } end }
      ]])))
      local max = hooks.MAX_RESTARTS
      hooks.MAX_RESTARTS = 4
      local cfg = mock_pod("b")
      cfg.containers[1].annotations = { ["vc.mock.exit_code"] = "0" }
      vc.log.setup { level = "error" }
      local p, err = vc.pod.run(cfg)
      vc.log.setup { level = "warn" }
      hooks.MAX_RESTARTS = max
      assert(p, err)
      assert.equal(4, ctr(p).restarts)
    end)
  end)

  describe("readonly-rootfs", function()
    local mnt

    before_each(function()
      assert(vc.policy.use("readonly-rootfs"))
    end)

    after_each(function()
      if mnt then
        os.execute("umount " .. support.quote(mnt) .. " 2>/dev/null")
        mnt = nil
      end
    end)

    it("refuses a writable rootfs unless annotated", function()
      local cfg = mock_pod("ro")
      cfg.containers[1].rootfs = root
      local ok, reason = check(cfg)
      assert.is_false(ok)
      assert.equal("policy readonly-rootfs: refused: container c1: rootfs " .. root
                   .. " is writable (put it on a read-only mount, or annotate "
                   .. "vc.rootfs.writable=true)", reason)
      cfg.containers[1].annotations = { ["vc.rootfs.writable"] = "true" }
      assert.is_true(check(cfg))
      cfg.containers[1].annotations = { ["vc.rootfs.writable"] = "yes" }
      ok, reason = check(cfg)
      assert.is_false(ok)
      assert.matches('annotation vc.rootfs.writable must be "true" or "false"', reason, 1, true)
    end)

    it("accepts a rootfs on a read-only mount", function()
      mnt = root .. "/ro"
      assert(os.execute("mkdir " .. mnt .. " && mount --bind " .. mnt .. " " .. mnt
                        .. " && mount -o remount,bind,ro " .. mnt))
      local cfg = mock_pod("ro")
      cfg.containers[1].rootfs = mnt
      assert.is_true(check(cfg))
      local p = assert(vc.pod.create(cfg))
      local c, err = p:add_container { id = "w", rootfs = root, argv = { "/bin/true" } }
      assert.is_nil(c)
      assert.matches("policy readonly%-rootfs: refused: container w: rootfs .* is writable", err)
      assert.is_nil(p:container("w"))
      assert.is_true(p:delete())
    end)
  end)

  describe("the CLI", function()
    local function vc_cli(env, ...)
      local parts = { env or "", support.quote(support.bin), "--root", support.quote(root) }
      for _, a in ipairs { ... } do parts[#parts + 1] = support.quote(a) end
      return support.sh(table.concat(parts, " "))
    end

    local function config_file(cfg)
      local path = root .. "/pod.json"
      support.write_file(path, cjson.encode(cfg))
      return path
    end

    it("vc policy check prints each decision and the config after mutation", function()
      local file = config_file(mock_pod("web", { annotations = { ["vc.isolation"] = "trusted" } }))
      local r = vc_cli(nil, "policy", "check", file)
      assert.equal(0, r.code, r.stderr)
      assert.matches("POLICY%s+FROM%s+MUTATE%s+ADMIT%s+REASON\n", r.stdout)
      assert.matches("default%s+default%s+unchanged%s+admit%s+%-\n", r.stdout)
      assert.matches("isolation%s+default%s+unchanged%s+admit", r.stdout)
      assert.matches("restart%s+default%s+%-%s+admit", r.stdout)
      assert.matches('config after mutation:\n{\n  "annotations": {\n    "vc.isolation": "trusted"',
                     r.stdout, 1, true)
      assert.matches('"rootfs": "/tmp"', r.stdout, 1, true)
      r = vc_cli(nil, "policy", "check", "--json", file)
      assert.equal(0, r.code, r.stderr)
      local rep = cjson.decode(r.stdout)
      assert.is_true(rep.admitted)
      assert.equal(3, #rep.policies)
      assert.equal("web", rep.config.id)
      assert.same({}, rep.config.volumes)
      assert.equal("", entries(root .. "/lib/pods"))
    end)

    it("vc policy check exits 1 with the first refusal", function()
      local cfg = mock_pod("web", { annotations = { ["vc.isolation"] = "untrusted" } })
      cfg.vm = { cpus = 32 }
      local file = config_file(cfg)
      local r = vc_cli(nil, "policy", "check", file)
      assert.equal(1, r.code)
      assert.matches("default%s+default%s+unchanged%s+refuse%s+vm.cpus: 32 vCPUs, at most 16",
                     r.stdout)
      assert.matches("isolation%s+default%s+unchanged%s+refuse%s+untrusted workloads", r.stdout)
      assert.equal("vc: policy default: refused: vm.cpus: 32 vCPUs, at most 16\n", r.stderr)
      r = vc_cli(nil, "policy", "check", "--json", file)
      assert.equal(1, r.code)
      local rep = cjson.decode(r.stdout)
      assert.is_false(rep.admitted)
      assert.equal("refuse", rep.policies[1].decision)
      assert.equal("refuse", rep.policies[2].decision)
      assert.equal("admit", rep.policies[3].decision)
    end)

    it("vc policy check names what is wrong with a config", function()
      local r = vc_cli(nil, "policy", "check", config_file({ containers = { { id = "x" } } }))
      assert.equal(1, r.code)
      assert.equal("vc: containers[1].rootfs: required key missing\n", r.stderr)
      r = vc_cli(nil, "policy", "check", root .. "/missing.json")
      assert.equal(1, r.code)
      assert.matches("missing.json: No such file", r.stderr, 1, true)
      r = vc_cli(nil, "policy", "check")
      assert.equal(2, r.code)
      assert.matches("missing CONFIG", r.stderr, 1, true)
    end)

    it("vc policy list shows each policy and where it came from", function()
      local extra = write("extra.lua", 'return { name = "extra", pre_start = function() end }')
      local other = root .. "/other"
      assert(os.execute("mkdir " .. other))
      support.write_file(other .. "/b.lua", 'return { name = "b", admit = function() '
                         .. 'return true end }')
      support.write_file(other .. "/a.lua", 'return { name = "a", mutate = function() end }')
      local r = vc_cli("VC_POLICY_PATH=" .. support.quote(other .. "::" .. extra),
                       "policy", "list", "--policy", "readonly-rootfs", "--json")
      assert.equal(0, r.code, r.stderr)
      local got = {}
      for _, p in ipairs(cjson.decode(r.stdout)) do
        got[#got + 1] = { p.name, p.origin, table.concat(p.functions, ",") }
      end
      assert.same({
        { "default", "default", "admit,mutate" },
        { "isolation", "default", "admit,mutate" },
        { "restart", "default", "admit,container_exit" },
        { "a", "VC_POLICY_PATH", "mutate" },
        { "b", "VC_POLICY_PATH", "admit" },
        { "extra", "VC_POLICY_PATH", "pre_start" },
        { "readonly-rootfs", "--policy", "admit" },
      }, got)
      r = vc_cli("VC_POLICY_PATH=/nonexistent", "policy", "list")
      assert.equal(1, r.code)
      assert.equal("vc: policy path /nonexistent (VC_POLICY_PATH): no such file or folder\n",
                   r.stderr)
    end)

    it("takes --policy on pod and container commands", function()
      local gate = write("gate.lua", [[
        return { name = "gate",
          admit = function(c) return c.annotations.ok == "yes", "not ok" end,
          pre_start = function() return false, "closed" end }
      ]])
      local r = vc_cli(nil, "pod", "create", "--hypervisor", "mock", "--id", "p",
                       "--policy", gate)
      assert.equal(1, r.code)
      assert.equal("vc: policy gate: refused: not ok\n", r.stderr)
      assert.equal("", entries(root .. "/lib/pods"))
      local file = config_file({ id = "p", hypervisor = "mock", annotations = { ok = "yes" } })
      r = vc_cli(nil, "pod", "create", "--config", file, "--policy", gate)
      assert.equal(0, r.code, r.stderr)
      r = vc_cli(nil, "pod", "start", "--policy", gate, "p")
      assert.equal(1, r.code)
      assert.equal("vc: pod p: policy gate: pre_start: refused: closed\n", r.stderr)
      r = vc_cli(nil, "pod", "start", "p")
      assert.equal(0, r.code, r.stderr)
      r = vc_cli(nil, "container", "create", "p", "--id", "c", "--rootfs", root,
                 "--policy", "readonly-rootfs", "--", "/bin/true")
      assert.equal(1, r.code)
      assert.matches("^vc: policy readonly%-rootfs: refused: container c: rootfs", r.stderr)
      r = vc_cli(nil, "pod", "stop", "--policy", root .. "/nope.lua", "p")
      assert.equal(1, r.code)
      assert.matches("^vc: policy " .. root:gsub("%p", "%%%0") .. "/nope.lua: ", r.stderr)
      r = vc_cli(nil, "pod", "stop", "--policy", "nope", "p")
      assert.equal(1, r.code)
      assert.matches("vc: policy nope: no such file, nor a shipped policy", r.stderr, 1, true)
      assert.equal("running", cjson.decode(vc_cli(nil, "pod", "status", "--json", "p").stdout)
                   .state)
    end)
  end)
end)
