-- vc repl: its pieces in this process, then the program itself, typed at
-- through a pseudo-terminal (spec/fixtures/pty_session.py) and fed by a
-- pipe. Every step of a session waits for what the REPL shows, so a slow
-- machine (the sanitized build) makes a run slower, never wrong.
local cjson = require "cjson"
local support = require "support"
local vc = require "vc"

local ROOTFS = support.project .. "/build/rootfs"
local FIXTURE = support.project .. "/spec/fixtures/pty_session.py"

local CTRL_C, CTRL_D, UP = "\3", "\4", "\27[A"
local PROMPT = "^> $" -- the prompt, nothing typed after it yet

local q = support.quote

-- What pods under root can leave behind: processes naming it, mounts.
local function traces(root)
  local out = {}
  local p = assert(io.popen("ls /proc"))
  local pids = p:read("a")
  p:close()
  for pid in pids:gmatch("%d+") do
    local cmd = support.read_file("/proc/" .. pid .. "/cmdline")
    local stat = support.read_file("/proc/" .. pid .. "/stat") or ""
    if cmd and cmd:find(root, 1, true) and not stat:match("^%d+ %b() [ZX]") then
      out[#out + 1] = "process " .. pid .. ": " .. cmd:gsub("%z", " ")
    end
  end
  for l in (support.read_file("/proc/self/mountinfo") or ""):gmatch("[^\n]+") do
    if l:find(root, 1, true) then out[#out + 1] = "mount: " .. l end
  end
  return table.concat(out, "\n")
end

describe("vc repl", function()
  local root, home

  before_each(function()
    root = support.tmpdir()
    home = root .. "/home"
    assert(os.execute("mkdir -p " .. q(home)))
    vc.setup { root = root, lock_timeout = 30 }
  end)

  after_each(function()
    for _, p in ipairs(vc.pod.list { all = true }) do p:delete { force = true } end
    support.rmtree(root)
  end)

  -- Run `vc repl` on a terminal through steps ({ send = }, { expect = },
  -- { exit = }); env: variables ("NAME=value"; else XDG_STATE_HOME is
  -- unset, so the history goes to HOME). Returns the
  -- transcript; a step that fails fails the test with it.
  local function session(steps, env)
    local file = root .. "/steps.json"
    support.write_file(file, cjson.encode(steps))
    local vars = { env and "" or "-u XDG_STATE_HOME", "TERM=vt100", "HOME=" .. q(home),
                   "VC_ROOT=" .. q(root), "PTY_TIMEOUT=" .. (os.getenv("PTY_TIMEOUT") or "60") }
    for _, v in ipairs(env or {}) do vars[#vars + 1] = v end
    local r = support.sh(string.format("env %s python3 %s %s %s repl", table.concat(vars, " "),
                                       q(FIXTURE), q(file), q(support.bin)))
    assert.equal(0, r.code, r.stderr .. "\n--- transcript:\n" .. r.stdout)
    return r.stdout
  end

  -- Type a line at the prompt and wait for the next prompt.
  local function line(text, expect)
    local steps = { { send = text .. "\r" } }
    if expect then steps[2] = { expect = expect } end
    steps[#steps + 1] = { expect = PROMPT }
    return table.unpack(steps)
  end

  local function steps(...)
    local list = { { expect = PROMPT } }
    for _, group in ipairs { ... } do
      for _, s in ipairs(group) do list[#list + 1] = s end
    end
    return list
  end

  -- Pod "ns" on the namespace backend, its container "app" sleeping.
  local function ns_pod()
    local rootfs = root .. "/rootfs"
    assert(os.execute("cp -a " .. q(ROOTFS) .. " " .. q(rootfs)))
    assert(vc.pod.run {
      id = "ns", hypervisor = "namespace",
      containers = { { id = "app", rootfs = rootfs, argv = { "/bin/sleep", "600" },
                       stop_timeout = 1 } },
    })
  end

  local function mock_pod(id)
    return assert(vc.pod.create { id = id, hypervisor = "mock" })
  end

  describe("its pieces", function()
    local repl = require "vc.cli.repl"
    local pretty = require "vc.cli.pretty"
    local complete = require "vc.cli.complete"
    local session_env = require "vc.cli.session"

    it("compiles expressions, statements and incomplete entries as lua.c does", function()
      local env = {}
      assert.equal(2, repl.compile("1+1", env)())
      assert.is_nil(repl.compile("x = 5", env)())
      assert.equal(5, env.x)
      assert.equal("incomplete", repl.compile("for i = 1, 2 do", env))
      assert.equal("incomplete", repl.compile("{ 1,", env))
      assert.equal("incomplete", repl.compile("x = [[long", env))
      local f, err = repl.compile("x = = 1", env)
      assert.is_nil(f)
      assert.matches("^stdin:1: unexpected symbol near '='", err)
    end)

    it("prints values readably, nil, msg as the message, pods as a table", function()
      assert.equal('{ 1, 2, x = "a\\n", ["y z"] = true }',
                   pretty.value { 1, 2, x = "a\n", ["y z"] = true })
      local t = { name = "t" }
      t.self = t
      assert.matches('^{ name = "t", self = <cycle: table: 0x%x+> }$', pretty.value(t))
      assert.equal("pod web: no such pod", pretty.results(3, nil, "pod web: no such pod", 2))
      assert.equal("true", pretty.results(2, true, nil))
      assert.equal("nil", pretty.results(1, nil))
      assert.is_nil(pretty.results(0))
      local long = {}
      for i = 1, 30 do long[i] = i * 1000 end
      assert.matches("^{\n  1000,\n  2000,\n", pretty.value(long))
      mock_pod("web")
      mock_pod("db")
      assert.equal("pod web [ready, mock] containers: none", pretty.show(vc.pod.fetch("web")))
      assert.equal("POD  STATE  HYPERVISOR  CONTAINERS\n" ..
                   "db   ready  mock        -\n" ..
                   "web  ready  mock        -", pretty.show(vc.pod.list()))
    end)

    it("completes names, methods and IDs from the store without running code", function()
      local env = session_env.env()
      mock_pod("webserver")
      assert(vc.pod.fetch("webserver"):add_container {
        id = "app", rootfs = root, argv = { "/bin/true" } })
      env.p = vc.pod.fetch("webserver")
      assert.equal('bserver"', complete.line('pod "we', env))
      assert.equal('webserver"', complete.line('vc.pod.fetch("', env))
      assert.equal('app"', complete.line('pod "webserver":container "', env))
      assert.equal("app'", complete.line("p:container('", env))
      assert.equal("etch", complete.line("vc.pod.f", env))
      assert.equal("d", complete.line("po", env)) -- pod and pods: as far as both go
      local insert, listing = complete.line("p:st", env)
      assert.is_nil(insert)
      assert.matches("start%s+state%s+status%s+stop\n$", listing)
      assert.equal("t", complete.line('pod "webserver":star', env))
      assert.is_nil(complete.line("f().x", env))
      env.trap = setmetatable({}, { __index = function() error("ran user code") end })
      assert.is_nil(complete.line("trap.x", env))
    end)

    it(":help has a line for every function of the API and of pods and containers", function()
      local help = session_env.help()
      for name, f in pairs(vc.pod) do
        if type(f) == "function" then assert.matches("vc.pod." .. name .. "(", help, 1, true) end
      end
      for name, f in pairs(require("vc.pod").Pod) do
        if type(f) == "function" and not name:match("^__") then
          assert.matches("p:" .. name .. "(", help, 1, true)
        end
      end
      for name, f in pairs(require("vc.container").Container) do
        if type(f) == "function" and not name:match("^__") then
          assert.matches("c:" .. name .. "(", help, 1, true)
        end
      end
    end)
  end)

  describe("on a terminal", function()
    it("evaluates, continues incomplete input, and keeps the session after errors", function()
      mock_pod("web")
      local out = session(steps(
        { line("1+1", "^2$") },
        { { send = "for i = 1, 2 do\r" }, { expect = "^>> $" }, line("print(i * 10) end", "^20$") },
        { line("error('boom')", "^stdin:1: boom$") },
        { line("x = {1, 'two', k = true}") },
        { line("x", '^\\{ 1, "two", k = true \\}$') },
        { line('pod "web"', "^pod web \\[ready, mock\\] containers: none$") },
        { line("pods()", "^POD +STATE +HYPERVISOR +CONTAINERS\nweb +ready +mock +-$") },
        { line('vc.pod.fetch "nope"', "^pod nope: no such pod$") },
        { line(":help", "^commands:") },
        { { send = ":quit\r" }, { exit = 0 } }))
      assert.matches("vc %d+%.%d+%.%d+ %(Lua 5%.4", out)
    end)

    it("completes a pod ID from the store and acts on that pod", function()
      mock_pod("webserver")
      session(steps(
        { { send = 'p = pod "we\t' }, { expect = 'p = pod "webserver"$' } },
        { line("", nil) },
        { { send = "p:sta\t" }, { expect = "start +state +status" },
          { send = "rt()\r" }, { expect = "^true$" }, { expect = PROMPT } },
        { line("p:state()", '^"running"$') },
        { { send = CTRL_D }, { exit = 0 } }))
      assert.equal("running", vc.pod.fetch("webserver"):state())
    end)

    it("keeps its history across sessions, under $XDG_STATE_HOME or in ~/.vc_history", function()
      local state = root .. "/state"
      local xdg = { "XDG_STATE_HOME=" .. q(state) }
      session(steps({ line("1+41", "^42$") }, { { send = ":quit\r" }, { exit = 0 } }), xdg)
      local file = state .. "/vc/history"
      assert.matches("1+41", support.read_file(file), 1, true)
      local r = support.sh("stat -c %a " .. q(file))
      assert.equal("600\n", r.stdout)
      -- the up arrow brings the line back in a new session
      session(steps({ { send = UP }, { expect = "1\\+41$" } }, { line("", "^42$") },
                    { { send = CTRL_D }, { exit = 0 } }), xdg)
      session(steps({ line("'home'", '^"home"$') }, { { send = CTRL_D }, { exit = 0 } }))
      assert.matches("'home'", support.read_file(home .. "/.vc_history"), 1, true)
    end)

    it("drops the line being typed on Ctrl-C and leaves on Ctrl-D", function()
      session(steps(
        { { send = "1+41" }, { expect = "1\\+41$" }, { send = CTRL_C }, { expect = PROMPT } },
        { line("20+22", "^42$") },
        { { send = CTRL_D }, { exit = 0 } }))
    end)

    it("interrupts Lua loops with Ctrl-C, even one that pcall would swallow", function()
      session(steps(
        { { send = "print('spinning') while true do end\r" }, { expect = "^spinning$" },
          { send = CTRL_C }, { expect = "^interrupted$" }, { expect = PROMPT } },
        { { send = "print('swallowing') "
                   .. "while true do pcall(function() while true do end end) end\r" },
          { expect = "^swallowing$" }, { send = CTRL_C }, { expect = "^interrupted$" },
          { expect = PROMPT } },
        { line("1+1", "^2$") },
        { { send = CTRL_D }, { exit = 0 } }))
    end)

    it("lets Ctrl-C reach a program started from the prompt", function()
      session(steps(
        { { send = "os.execute('echo started; exec sleep 600')\r" }, { expect = "^started$" },
          { send = CTRL_C }, { expect = "signal$" }, { expect = PROMPT } },
        { line("1+1", "^2$") },
        { { send = CTRL_D }, { exit = 0 } }))
    end)

    it("interrupts a wait for a pod's lock, which the operation then never took", function()
      mock_pod("web")
      session(steps(
        -- another holder of the lock: a second flock in this process
        { line('lk = require("vc.runtime").store():lock("web", "exclusive", 5)') },
        { { send = 'print("starting") return pod("web"):start()\r' }, { expect = "^starting$" },
          { send = CTRL_C }, { expect = "lock pod web: interrupted$" }, { expect = PROMPT } },
        { line('pod("web"):state()', '^"ready"$') },
        { line("lk:unlock()") },
        { line('pod("web"):start()', "^true$") },
        { { send = CTRL_D }, { exit = 0 } }))
      assert.equal("running", vc.pod.fetch("web"):state())
    end)

    it("interrupts a pod's boot and rolls the pod back, lock included", function()
      -- the mock VM names an agent socket nobody serves: the boot waits
      local cfg = "{ id = 'slow', hypervisor = 'mock', vm = { boot_timeout = 600 }, "
                  .. "annotations = { ['vc.mock.agent'] = 'unix' } }"
      session(steps(
        { { send = "print('booting') return vc.pod.create " .. cfg .. "\r" },
          { expect = "^booting$" }, { send = CTRL_C },
          { expect = "^pod slow: agent unix:.*/agent.sock: interrupted$" }, { expect = PROMPT } },
        { line("#vc.pod.list { all = true }", "^0$") },
        { line("vc.pod.create { id = 'slow', hypervisor = 'mock' }",
               "^pod slow \\[ready, mock\\] containers: none$") },
        { { send = CTRL_D }, { exit = 0 } }))
      assert.equal("ready", vc.pod.fetch("slow"):state())
    end)

    it("interrupts a long wait on a container and keeps it and its pod as they were", function()
      ns_pod()
      session(steps(
        { line('c = pod("ns"):container "app"') },
        { { send = "print('waiting') return c:wait()\r" }, { expect = "^waiting$" },
          { send = CTRL_C }, { expect = "agent unix:.*: interrupted$" }, { expect = PROMPT } },
        { line("c:state()", '^"running"$') },
        { line("c:kill 'KILL'", "^true$") },
        { line("c:wait(30)", "^137$") },
        { line('pod("ns"):stop()', "^true$") },
        { { send = CTRL_D }, { exit = 0 } }))
      local p = vc.pod.fetch("ns")
      assert.equal("stopped", p:state())
      assert(p:delete())
      assert.equal("", traces(root))
    end)

    it("gives the terminal to c:shell() and takes it back after", function()
      ns_pod()
      session(steps(
        { line('c = pod("ns"):container "app"') },
        { { send = "c:shell()\r" }, { expect = "# $" }, { mode = "raw" },
          { send = "tty; echo $((6*7))\r" }, { expect = "/dev/pts/\\d+\n42" },
          { send = "sh -c 'echo started; exec sleep 100'\r" }, { expect = "\nstarted" },
          { send = CTRL_C }, { expect = "\\^C\n/ # $" },
          { send = "exit 5\r" }, { expect = "^5$" }, { expect = PROMPT } },
        -- the REPL's line editor has the terminal again: history, arrows
        { line("1+1", "^2$") },
        { { send = UP .. "\r" }, { expect = "^2$" }, { expect = PROMPT } },
        { line('c:state()', '^"running"$') },
        { { send = CTRL_D }, { exit = 0 } }))
      assert(vc.pod.fetch("ns"):delete { force = true })
      assert.equal("", traces(root))
    end)
  end)

  describe("without a terminal", function()
    it("runs stdin as a script, with no prompt, in the session's environment", function()
      mock_pod("web")
      local r = support.vc(root, { "repl" }, "print(#vc.pod.list())\nprint(pod('web'):state())\n")
      assert.equal(0, r.code, r.stderr)
      assert.equal("1\nready\n", r.stdout)
      r = support.vc(root, { "repl" }, "x = 1\nerror('boom at ' .. x)\n")
      assert.equal(1, r.code)
      assert.equal("vc: stdin:2: boom at 1\n", r.stderr)
      r = support.vc(root, { "repl" }, "x = = 1\n")
      assert.equal(1, r.code)
      assert.matches("^vc: stdin:1: unexpected symbol", r.stderr)
    end)
  end)
end)
