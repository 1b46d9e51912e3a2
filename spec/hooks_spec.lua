-- Hooks: OCI hooks (host programs fed the OCI state) and Lua hooks of
-- pod scripts and policies, around the pod lifecycle (mock backend, and
-- the namespace backend where a real sandbox process matters).
local cjson = require "cjson"
local process = require "vc.core.process"
local support = require "support"
local vc = require "vc"

local function entries(dir)
  local p = io.popen("ls -A " .. support.quote(dir) .. " 2>/dev/null")
  local out = p:read("a")
  p:close()
  return out
end

-- Gone, or a zombie nobody reaped yet.
local function gone(pid)
  local stat = support.read_file("/proc/" .. pid .. "/stat")
  return stat == nil or stat:match("^%d+ %b() ([ZX])") ~= nil
end

describe("hooks", function()
  local root, dir

  before_each(function()
    root = support.tmpdir()
    dir = root .. "/hooks"
    assert(os.execute("mkdir " .. dir))
    vc.setup { root = root, lock_timeout = 2 }
  end)

  after_each(function()
    vc.hooks.clear()
    require("vc.policy").reset()
    for _, p in ipairs(vc.pod.list()) do p:delete { force = true, hooks = false } end
    support.rmtree(root)
  end)

  -- An executable shell script in the hooks folder; returns its path.
  local function script(name, body)
    local path = dir .. "/" .. name
    support.write_file(path, "#!/bin/sh\n" .. body .. "\n")
    assert(os.execute("chmod +x " .. support.quote(path)))
    return path
  end

  -- A hook that saves its stdin, args and env, and notes its turn.
  local function recorder(tag)
    local path = script("record-" .. tag, 'cat > "$1.json"\n'
                        .. 'echo "$*" > "$1.args"\n'
                        .. 'env | grep -v "^PWD=" | sort > "$1.env"\n'
                        .. 'echo "$2" >> "' .. dir .. '/order"')
    return { path = path, args = { "rec", dir .. "/" .. tag, tag }, env = { "HOOK=" .. tag } }
  end

  local function mock_pod(id, extra)
    local cfg = {
      id = id, hypervisor = "mock",
      containers = { { id = "c1", rootfs = "/tmp", argv = { "/bin/sleep", "1000" } } },
    }
    for k, v in pairs(extra or {}) do cfg[k] = v end
    return cfg
  end

  local function store_is_empty()
    assert.same({}, vc.pod.list { all = true })
    assert.equal("", entries(root .. "/lib/pods"))
    assert.equal("", entries(root .. "/run/pods"))
  end

  describe("OCI hooks", function()
    it("feed each hook the OCI state, in order, with its args and env", function()
      local p = assert(vc.pod.run(mock_pod("oci", {
        annotations = { team = "blue" },
        hooks = {
          prestart = { recorder("pre1"), recorder("pre2") },
          poststart = { recorder("post") },
          poststop = { recorder("stop") },
        },
      })))
      assert.equal("pre1\npre2\npost\n", support.read_file(dir .. "/order"))
      local pre = cjson.decode(support.read_file(dir .. "/pre1.json"))
      assert.same({
        ociVersion = "1.0.2", id = "oci", status = "created", pid = 0,
        bundle = root .. "/lib/pods/oci", annotations = { team = "blue" },
      }, pre)
      assert.equal("created", cjson.decode(support.read_file(dir .. "/pre2.json")).status)
      assert.equal("running", cjson.decode(support.read_file(dir .. "/post.json")).status)
      assert.equal(dir .. "/pre1 pre1\n", support.read_file(dir .. "/pre1.args"))
      assert.equal("HOOK=pre1\n", support.read_file(dir .. "/pre1.env"))
      assert.is_true(p:stop())
      assert.equal("pre1\npre2\npost\nstop\n", support.read_file(dir .. "/order"))
      local stop = cjson.decode(support.read_file(dir .. "/stop.json"))
      assert.equal("stopped", stop.status)
      assert.equal("oci", stop.id)
      assert.is_true(p:delete())
    end)

    it("run the program with args as its whole argv, argv[0] included", function()
      assert(vc.pod.run(mock_pod("argv", { hooks = { prestart = {
        { path = "/bin/sh", args = { "my-hook", "-c", 'tr "\\0" " " < /proc/$$/cmdline > "$0"',
                                     dir .. "/cmdline" } },
      } } })))
      assert.equal("my-hook -c " .. 'tr "\\0" " " < /proc/$$/cmdline > "$0" ' .. dir
                   .. "/cmdline ", support.read_file(dir .. "/cmdline"))
    end)

    it("write annotations as a JSON object even when there are none", function()
      assert(vc.pod.run(mock_pod("empty", { hooks = { prestart = { recorder("pre") } } })))
      local text = support.read_file(dir .. "/pre.json")
      assert.matches('"annotations":{}', text, 1, true)
    end)

    it("a failing prestart hook aborts run and leaves nothing behind", function()
      local bad = script("bad", "echo oops >&2\nexit 3")
      local p, err = vc.pod.run(mock_pod("pre", {
        hooks = { prestart = { { path = bad } }, poststart = { recorder("post") } },
      }))
      assert.is_nil(p)
      assert.equal("pod pre: prestart hook " .. bad .. ": exited with status 3: oops", err)
      assert.is_nil(support.read_file(dir .. "/order"))
      store_is_empty()
    end)

    it("a failing prestart hook fails vc pod run with exit 1, storing nothing", function()
      local file = root .. "/pod.json"
      support.write_file(file, cjson.encode(mock_pod("cli", {
        hooks = { prestart = { { path = script("no", "echo denied >&2; exit 4") } } },
      })))
      local r = support.vc(root, { "pod", "run", "--config", file })
      assert.equal(1, r.code)
      assert.equal("vc: pod cli: prestart hook " .. dir .. "/no: exited with status 4: denied\n",
                   r.stderr)
      assert.equal("", r.stdout)
      store_is_empty()
    end)

    it("a failing prestart hook on start leaves a created pod ready", function()
      local p = assert(vc.pod.create(mock_pod("ready", {
        hooks = { prestart = { { path = script("no", "exit 1") } } },
      })))
      local ok, err = p:start()
      assert.is_nil(ok)
      assert.matches("prestart hook .*/no: exited with status 1$", err)
      assert.equal("ready", p:state())
      assert.equal("ready", p:status().containers[1].state)
    end)

    it("kill a hook past its timeout with its process group, and roll back", function()
      local pids = dir .. "/pids"
      local slow = script("slow", 'echo $$ > "' .. pids .. '"\nsleep 1000 &\necho $! >> "'
                          .. pids .. '"\nwait')
      local t0 = process.now()
      local p, err = vc.pod.run(mock_pod("slow", {
        hooks = { prestart = { { path = slow, timeout = 0.5 } } },
      }))
      local took = process.now() - t0
      assert.is_nil(p)
      assert.equal("pod slow: prestart hook " .. slow
                   .. ": timed out after 0.5s (killed with its process group)", err)
      assert.is_true(took >= 0.5 and took < 10, "took " .. took)
      local n = 0
      for pid in support.read_file(pids):gmatch("%d+") do
        n = n + 1
        local deadline = process.now() + 5
        while not gone(pid) and process.now() < deadline do process.sleep(0.05) end
        assert.is_true(gone(pid), "process " .. pid .. " of the hook is still there")
      end
      assert.equal(2, n)
      store_is_empty()
    end)

    it("name a hook killed by a signal, or one that cannot run", function()
      local p, err = vc.pod.run(mock_pod("sig", {
        hooks = { prestart = { { path = script("term", "kill -TERM $$") } } },
      }))
      assert.is_nil(p)
      assert.matches("prestart hook .*/term: killed by signal 15 %(SIGTERM%)$", err)
      p, err = vc.pod.run(mock_pod("none", {
        hooks = { prestart = { { path = dir .. "/missing" } } },
      }))
      assert.is_nil(p)
      assert.equal("pod none: prestart hook " .. dir .. "/missing: No such file or directory",
                   err)
      store_is_empty()
    end)

    it("a failing poststart hook stops the pod, and its poststop hooks run", function()
      local p = assert(vc.pod.create(mock_pod("ps", {
        hooks = { poststart = { { path = script("fail", "exit 2") } },
                  poststop = { recorder("stop") } },
      })))
      local ok, err = p:start()
      assert.is_nil(ok)
      assert.matches("poststart hook .*/fail: exited with status 2 %(the pod was stopped%)$", err)
      assert.equal("stopped", p:state())
      assert.equal("stop\n", support.read_file(dir .. "/order"))
      assert.is_true(p:delete())
    end)

    it("a failing poststop hook is logged and blocks neither stop nor delete", function()
      local p = assert(vc.pod.run(mock_pod("pst", {
        hooks = { poststop = { { path = script("fail", "exit 1") } } },
      })))
      vc.log.setup { level = "error" }
      local stopped = p:stop()
      vc.log.setup { level = "warn" }
      assert.is_true(stopped)
      assert.equal("stopped", p:state())
      assert.is_true(p:delete())
      store_is_empty()
    end)

    it("run poststop hooks once a running pod is deleted by force", function()
      local p = assert(vc.pod.run(mock_pod("forced", {
        hooks = { poststop = { recorder("stop") } },
      })))
      assert.is_true(p:delete { force = true })
      local st = cjson.decode(support.read_file(dir .. "/stop.json"))
      assert.equal("stopped", st.status)
      assert.equal("forced", st.id)
      store_is_empty()
    end)

    it("give the sandbox's pid on the namespace backend", function()
      local rootfs = root .. "/rootfs"
      assert(os.execute("cp -a " .. support.quote(support.project .. "/build/rootfs") .. " "
                        .. support.quote(rootfs)))
      local check = script("alive", 'cat > "' .. dir .. '/ns.json"\n'
                           .. 'pid=$(sed \'s/.*"pid":\\([0-9]*\\).*/\\1/\' "' .. dir
                           .. '/ns.json")\n'
                           .. '[ -d /proc/$pid ] && [ "$pid" -gt 1 ]')
      local p = assert(vc.pod.run {
        id = "ns", hypervisor = "namespace",
        containers = { { id = "c", rootfs = rootfs, argv = { "/bin/sleep", "100" } } },
        hooks = { prestart = { { path = check } } },
      })
      local state = cjson.decode(support.read_file(dir .. "/ns.json"))
      local info = cjson.decode(support.read_file(root .. "/run/pods/ns/hypervisor.json"))
      assert.equal(math.tointeger(info.pid), math.tointeger(state.pid))
      assert.is_true(p:delete { force = true })
    end)
  end)

  describe("Lua hooks", function()
    it("a pre hook that returns false aborts its step, which is rolled back", function()
      local p = assert(vc.pod.create(mock_pod("gate")))
      local h = vc.hooks.on("pre_start", function(ev)
        if ev.pod == "gate" then return false, "maintenance window" end
      end)
      local ok, err = p:start()
      assert.is_nil(ok)
      assert.equal("pod gate: pre_start hook: refused: maintenance window", err)
      assert.equal("ready", p:state())
      assert.is_true(vc.hooks.off(h))
      assert.is_true(p:start())
      vc.hooks.on("pre_stop", function() return false, "busy" end)
      ok, err = p:stop()
      assert.is_nil(ok)
      assert.equal("pod gate: pre_stop hook: refused: busy", err)
      assert.equal("running", p:state())
      vc.hooks.clear()
      assert.is_true(p:stop())
      vc.hooks.on("pre_delete", function() error("keep it", 0) end)
      ok, err = p:delete()
      assert.is_nil(ok)
      assert.equal("pod gate: pre_delete hook: keep it", err)
      assert.equal("stopped", p:state())
    end)

    it("a pre_create hook that errors leaves nothing behind", function()
      vc.hooks.on("pre_create", function(ev)
        assert(ev.config.containers[1].id == "c1")
        error("no new pods today", 0)
      end)
      local p, err = vc.pod.create(mock_pod("new"))
      assert.is_nil(p)
      assert.equal("pod new: pre_create hook: no new pods today", err)
      store_is_empty()
    end)

    it("post hooks see the config and the state, read-only", function()
      local seen = {}
      for _, point in ipairs { "post_create", "post_start", "post_stop", "post_delete" } do
        vc.hooks.on(point, function(ev)
          local ok, err = pcall(function() ev.config.vm.cpus = 99 end)
          seen[#seen + 1] = {
            point = ev.point, pod = ev.pod, state = ev.state.state,
            ctr = ev.config.containers[1].id, cpus = ev.config.vm.cpus,
            readonly = not ok and err:match("read%-only") ~= nil,
          }
        end)
      end
      local p = assert(vc.pod.run(mock_pod("seen")))
      assert.is_true(p:stop())
      assert.is_true(p:delete())
      assert.same({
        { point = "post_create", pod = "seen", state = "ready", ctr = "c1", cpus = 1,
          readonly = true },
        { point = "post_start", pod = "seen", state = "running", ctr = "c1", cpus = 1,
          readonly = true },
        { point = "post_stop", pod = "seen", state = "stopped", ctr = "c1", cpus = 1,
          readonly = true },
        { point = "post_delete", pod = "seen", state = "stopped", ctr = "c1", cpus = 1,
          readonly = true },
      }, seen)
    end)

    it("container_exit sees the exit status", function()
      local exits = {}
      vc.hooks.on("container_exit", function(ev)
        exits[#exits + 1] = { ev.container, ev.exit_code, ev.requested, ev.restarts }
      end)
      local cfg = mock_pod("exit")
      cfg.containers[1].annotations = { ["vc.mock.exit_code"] = "3" }
      assert(vc.pod.run(cfg))
      assert.same({ { "c1", 3, false, 0 } }, exits)
    end)

    for _, backend in ipairs { "mock", "namespace" } do
      it("drive examples/hooks.lua on the " .. backend .. " backend", function()
        local r = support.vc(root, { "run", support.project .. "/examples/hooks.lua", backend })
        assert.equal(0, r.code, r.stderr)
        for _, line in ipairs {
          "policy small-pods   from script",
          "refused: policy small-pods: refused: 3 containers, at most 2 a pod",
          "1 container(s), 64 MiB for the first",
          "hook container_exit: worker exited with 3 (restarts so far: 2)",
          "worker finished with code 3 after 2 restarts",
          "pre_stop hook: refused: the worker is still busy",
          " deleted\n",
        } do
          assert.matches(line, r.stdout, 1, true)
        end
        assert.equal("", entries(root .. "/lib/pods"))
      end)
    end

    it("refuses an unknown point or a non-function", function()
      assert.has_error(function() vc.hooks.on("pre_fly", print) end)
      assert.has_error(function() vc.hooks.on("pre_start", 42) end)
    end)

    it("run policy hooks first, and name the policy that refuses", function()
      local file = dir .. "/gate.lua"
      support.write_file(file, [[
        return {
          name = "gate",
          pre_start = function(ev)
            if ev.config.annotations.frozen == "yes" then return false, "frozen pod" end
          end,
          pre_stop = function() error("boom") end,
        }
      ]])
      assert(vc.policy.use(file))
      local order = {}
      vc.hooks.on("pre_start", function() order[#order + 1] = "script" end)
      local p = assert(vc.pod.create(mock_pod("frz", { annotations = { frozen = "yes" } })))
      local ok, err = p:start()
      assert.is_nil(ok)
      assert.equal("pod frz: policy gate: pre_start: refused: frozen pod", err)
      assert.same({}, order)
      local q = assert(vc.pod.run(mock_pod("warm")))
      assert.same({ "script" }, order)
      ok, err = q:stop()
      assert.is_nil(ok)
      assert.equal("pod warm: policy gate: pre_stop: " .. file .. ":6: boom", err)
      assert.equal("running", q:state())
    end)
  end)
end)
