-- Bad input, table-driven: each case is refused with a clear error that
-- names the problem and a non-zero exit, and leaves the store byte for byte
-- as it was. The cases span the CLI, pod configs (Lua and JSON), IDs,
-- volumes, signals, state transitions and broken messages from a guest.
local support = require "support"

local ROOTFS = support.project .. "/build/rootfs"

-- The store as bytes: every record, lock and folder under lib/ and run/;
-- the logs that backends append to (agent.log, console.log) are not
-- records and may grow.
local function store_bytes(root)
  local p = assert(io.popen("cd " .. support.quote(root) .. " && find lib run " ..
    "! -name '*.log' -print0 | sort -z | xargs -0 -r stat -c '%n %F %a %s' && " ..
    "find lib run -type f ! -name '*.log' -print0 | sort -z | xargs -0 -r sha256sum"))
  local out = p:read("a")
  p:close()
  return out
end

local CONFIGS = {
  ["syntax.lua"] = "return { id = ",
  ["escape.lua"] = 'os.execute("touch /tmp/vc-escaped") return {}',
  ["notable.lua"] = 'return "pod"',
  ["bad.json"] = '{"id": "x", "containers": [',
  ["unknown.json"] = '{"id": "x", "hypervisor": "mock", "colour": "blue"}',
  ["wrongtype.json"] = '{"hypervisor": "mock", "vm": {"cpus": "two"}}',
  ["argv.lua"] = [[return { hypervisor = "mock",
    containers = { { id = "c", rootfs = "/", argv = {} } } }]],
  ["dup.lua"] = [[return { hypervisor = "mock", containers = {
    { id = "c", rootfs = "/", argv = { "/bin/true" } },
    { id = "c", rootfs = "/", argv = { "/bin/true" } } } }]],
  ["mount.lua"] = [[return { hypervisor = "mock", containers = {
    { id = "c", rootfs = "/", argv = { "/bin/true" },
      mounts = { { volume = "nope", path = "/data" } } } } }]],
  ["rootfs.json"] = '{"hypervisor": "mock", "containers": [{"id": "c", ' ..
    '"rootfs": "/nonexistent/rootfs", "argv": ["/bin/true"]}]}',
  ["volfile.lua"] = [[return { hypervisor = "mock",
    volumes = { { tag = "v", host_path = "/etc/hostname" } } }]],
  ["idtype.json"] = '{"id": 42, "hypervisor": "mock"}',
}

-- { name, argv (with @DIR for the configs' folder), stderr pattern [, exit code] }
local CASES = {
  -- IDs
  { "a pod ID with a slash", { "pod", "create", "--hypervisor", "mock", "--id", "a/b" },
    "invalid ID" },
  { "a pod ID going up", { "pod", "create", "--hypervisor", "mock", "--id", "../etc" },
    "invalid ID" },
  { "an empty pod ID", { "pod", "create", "--hypervisor", "mock", "--id", "" }, "invalid ID" },
  { "a 65-byte pod ID", { "pod", "create", "--hypervisor", "mock", "--id", ("a"):rep(65) },
    "invalid ID" },
  { "a pod ID with a newline", { "pod", "status", "p\nq" }, "invalid pod ID" },
  { "status of a path", { "pod", "status", "../../etc/passwd" }, "invalid pod ID" },
  { "a container ID going up", { "container", "create", "p", "--id", "..", "--rootfs", ROOTFS,
    "--", "/bin/true" }, "invalid" },
  { "a pod ID that exists", { "pod", "create", "--hypervisor", "mock", "--id", "p" },
    "pod p already exists" },
  { "a container ID that exists", { "container", "create", "p", "--id", "c", "--rootfs", ROOTFS,
    "--", "/bin/true" }, "container c already exists" },
  { "no such pod", { "pod", "start", "nosuch" }, "pod nosuch: no such pod" },
  { "no such container", { "container", "start", "p", "nosuch" }, "no container nosuch" },
  -- the CLI
  { "an unknown command", { "frobnicate" }, "unknown command", 2 },
  { "an unknown pod command", { "pod", "frob" }, "unknown pod command", 2 },
  { "an unknown option", { "pod", "list", "--colour" }, "unknown option", 2 },
  { "an option without its value", { "pod", "create", "--id" }, "needs a value", 2 },
  { "a bad log level", { "--log-level", "loud", "pod", "list" }, "invalid log level", 2 },
  { "exec without argv", { "container", "exec", "p", "c" }, "missing %-%- ARGV", 2 },
  { "vCPUs out of range", { "pod", "create", "--hypervisor", "mock", "--cpus", "0" }, "vm.cpus" },
  { "memory not a number", { "pod", "create", "--hypervisor", "mock", "--memory", "lots" },
    "vm.memory_mib" },
  { "an unknown backend", { "pod", "create", "--hypervisor", "xen" }, 'unknown hypervisor "xen"' },
  -- volumes
  { "a volume without a path", { "pod", "create", "--hypervisor", "mock", "--volume", "tag" },
    "expected TAG:HOSTPATH", 2 },
  { "a volume that does not exist", { "pod", "create", "--hypervisor", "mock",
    "--volume", "d:/nonexistent/dir" }, "volumes%[1%]%.host_path: /nonexistent/dir" },
  { "a volume that is a file", { "pod", "create", "--config", "@DIR/volfile.lua" },
    "volumes%[1%]%.host_path: /etc/hostname: not a folder" },
  -- configs
  { "a missing config file", { "pod", "create", "--config", "@DIR/none.lua" }, "none.lua" },
  { "a Lua config with a syntax error", { "pod", "create", "--config", "@DIR/syntax.lua" },
    "syntax.lua" },
  { "a Lua config reaching for os", { "pod", "create", "--config", "@DIR/escape.lua" },
    "escape.lua:1:.*execute" },
  { "a Lua config not returning a table", { "pod", "create", "--config", "@DIR/notable.lua" },
    "notable.lua" },
  { "malformed JSON", { "pod", "create", "--config", "@DIR/bad.json" }, "bad.json" },
  { "an unknown key", { "pod", "create", "--config", "@DIR/unknown.json" }, "colour" },
  { "a wrong type", { "pod", "create", "--config", "@DIR/wrongtype.json" }, "vm.cpus" },
  { "an ID that is a number", { "pod", "create", "--config", "@DIR/idtype.json" }, "id" },
  { "an empty argv", { "pod", "create", "--config", "@DIR/argv.lua" }, "containers%[1%]%.argv" },
  { "two containers with one ID", { "pod", "create", "--config", "@DIR/dup.lua" }, "c" },
  { "a mount of an unknown volume", { "pod", "create", "--config", "@DIR/mount.lua" }, "nope" },
  { "a rootfs that does not exist", { "pod", "create", "--config", "@DIR/rootfs.json" },
    "containers%[1%]%.rootfs: /nonexistent/rootfs" },
  { "a container rootfs that does not exist", { "container", "create", "p", "--rootfs",
    "/nonexistent", "--", "/bin/true" }, "rootfs: /nonexistent" },
  -- signals
  { "a signal name that does not exist", { "container", "kill", "p", "c", "NOSIG" },
    'invalid signal "NOSIG"' },
  { "a signal number out of range", { "container", "kill", "p", "c", "999" },
    'invalid signal "999"' },
  { "a negative signal", { "container", "kill", "p", "c", "-9" }, "%-9", 2 },
  -- state transitions
  { "start a running pod", { "pod", "start", "p" }, "cannot move from running to running" },
  { "resume a running pod", { "pod", "resume", "p" }, "cannot" },
  { "delete a running pod", { "pod", "delete", "p" }, "cannot delete while running" },
  { "exec in a stopped container", { "container", "exec", "p", "done", "--", "/bin/true" },
    "done" },
  { "pause a stopped pod", { "pod", "pause", "off" }, "cannot move from stopped to paused" },
}

-- Broken messages from a guest: a fake agent takes the socket of pod ns's
-- agent, and a command that talks to it must fail cleanly.
local GUEST_MODES = {
  { "hello-garbage", "broken reply: at byte 0" },
  { "garbage", "broken reply: at byte 1: expected a string key" },
  { "array", "broken reply: not a JSON object with an integer id" },
  { "wrongid", "broken reply: it answers a request never sent" },
  { "oversize", "bad message length 2147483647" },
  { "truncated", "connection closed" },
}

describe("bad input", function()
  local root, dir

  local function vcr(args)
    local a = {}
    for i, v in ipairs(args) do a[i] = v:gsub("@DIR", dir) end
    return support.vc(root, a)
  end

  local function ok(args)
    local r = vcr(args)
    assert(r.code == 0, table.concat(args, " ") .. ": " .. r.stderr)
  end

  lazy_setup(function()
    root = support.tmpdir()
    dir = root .. "/configs"
    os.execute("mkdir " .. support.quote(dir))
    for name, text in pairs(CONFIGS) do support.write_file(dir .. "/" .. name, text) end
    ok { "pod", "run", "--hypervisor", "mock", "--id", "p" }
    ok { "container", "create", "p", "--id", "c", "--rootfs", ROOTFS, "--", "/bin/sleep", "600" }
    ok { "container", "start", "p", "c" }
    ok { "container", "create", "p", "--id", "done", "--rootfs", ROOTFS, "--", "/bin/true" }
    ok { "container", "start", "p", "done" }
    ok { "container", "stop", "p", "done" }
    ok { "pod", "create", "--hypervisor", "mock", "--id", "off" }
    ok { "pod", "stop", "off" }
    ok { "pod", "run", "--hypervisor", "namespace", "--id", "ns" }
    ok { "container", "create", "ns", "--id", "c", "--rootfs", ROOTFS, "--", "/bin/sleep", "600" }
    ok { "container", "start", "ns", "c" }
  end)

  lazy_teardown(function()
    for _, id in ipairs { "p", "off", "ns" } do
      support.vc(root, { "pod", "delete", "--force", id })
    end
    assert.equal("", support.traces(root))
    support.rmtree(root)
  end)

  it("has at least 30 cases", function()
    assert.is_true(#CASES + #GUEST_MODES >= 30)
  end)

  for _, case in ipairs(CASES) do
    local name, argv, pattern, code = case[1], case[2], case[3], case[4] or 1
    it("refuses " .. name, function()
      local before = store_bytes(root)
      local r = vcr(argv)
      assert.equal(code, r.code, r.stdout .. r.stderr)
      assert.matches("^vc: ", r.stderr)
      assert.matches(pattern, r.stderr)
      assert.equal(1, select(2, r.stderr:gsub("\n", "")), "one line: " .. r.stderr)
      assert.equal(before, store_bytes(root))
    end)
  end

  it("never ran what a config tried to escape with", function()
    assert.is_nil(support.read_file("/tmp/vc-escaped"))
  end)

  for _, m in ipairs(GUEST_MODES) do
    local mode = m[1]
    it("fails cleanly on a broken message from the guest: " .. mode, function()
      local sock = root .. "/run/pods/ns/agent.sock"
      local before = store_bytes(root)
      assert(os.rename(sock, sock .. ".real"))
      local fake = assert(io.popen(string.format("python3 %s %s %s",
        support.quote(support.project .. "/spec/fixtures/fake_agent.py"),
        support.quote(sock), mode)))
      assert.equal("ready", fake:read("l"))
      local r = vcr { "container", "exec", "ns", "c", "--", "/bin/true" }
      fake:close()
      assert(os.rename(sock .. ".real", sock))
      assert.equal(1, r.code, r.stdout .. r.stderr)
      assert.matches("^vc: ", r.stderr)
      assert.matches("^vc: .*agent unix:" .. sock:gsub("%p", "%%%0") .. ": .*" .. m[2], r.stderr)
      assert.equal(before, store_bytes(root))
      -- and the real agent still serves
      assert.equal(0, vcr({ "container", "exec", "ns", "c", "--", "/bin/true" }).code)
    end)
  end
end)
