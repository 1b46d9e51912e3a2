-- Shared helpers for the specs: the binary under test, temporary roots,
-- and running commands with their output and exit code captured.
local M = {}

local function cwd()
  local p = assert(io.popen("pwd"))
  local dir = p:read("l")
  p:close()
  return dir
end

M.project = cwd()
-- VC_BIN is set by scripts/run-tests to the build being tested (normal or
-- sanitized); specs that run vc as a user would use this binary.
M.bin = os.getenv("VC_BIN") or (M.project .. "/build/vc")

function M.quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

function M.read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local data = f:read("a")
  f:close()
  return data
end

function M.write_file(path, data)
  local f = assert(io.open(path, "wb"))
  assert(f:write(data))
  assert(f:close())
end

function M.tmpdir()
  local p = assert(io.popen("mktemp -d /tmp/vc-spec.XXXXXX"))
  local dir = p:read("l")
  p:close()
  return dir
end

function M.rmtree(dir)
  assert(dir:match("^/tmp/vc%-spec%."), "refusing to remove " .. dir)
  os.execute("rm -rf " .. M.quote(dir))
end

-- Run a shell command; returns { code=, stdout=, stderr= }.
function M.sh(cmd, stdin)
  local dir = M.tmpdir()
  local inp = dir .. "/in"
  M.write_file(inp, stdin or "")
  local full = string.format("(%s) <%s >%s/out 2>%s/err", cmd, M.quote(inp),
                             M.quote(dir), M.quote(dir))
  local ok, how, code = os.execute(full)
  local r = {
    code = ok and 0 or (how == "exit" and code or 128 + code),
    stdout = M.read_file(dir .. "/out") or "",
    stderr = M.read_file(dir .. "/err") or "",
  }
  M.rmtree(dir)
  return r
end

-- Run build/vc with arguments (a list, each quoted) under a given root.
function M.vc(root, args, stdin)
  local parts = { M.quote(M.bin) }
  if root then
    parts[#parts + 1] = "--root " .. M.quote(root)
  end
  for _, a in ipairs(args) do parts[#parts + 1] = M.quote(a) end
  return M.sh(table.concat(parts, " "), stdin)
end

-- FNV-1a (32 bits) of s, as the namespace backend names its cgroups.
local function fnv1a(s)
  local h = 2166136261
  for i = 1, #s do h = ((h ~ s:byte(i)) * 16777619) & 0xffffffff end
  return h
end

-- What pods under root can leave on the host, one line each: processes
-- whose command line names root (QEMU's and the agent's do), mounts under
-- it, cgroups of the namespace backend named for it. "" when none.
function M.traces(root)
  local out = {}
  local p = assert(io.popen("ls /proc"))
  local pids = p:read("a")
  p:close()
  for pid in pids:gmatch("%d+") do
    local cmd = M.read_file("/proc/" .. pid .. "/cmdline")
    local stat = M.read_file("/proc/" .. pid .. "/stat") or ""
    if cmd and cmd:find(root, 1, true) and not stat:match("^%d+ %b() Z") then
      out[#out + 1] = "process " .. pid .. ": " .. cmd:gsub("%z", " ")
    end
  end
  for line in (M.read_file("/proc/self/mountinfo") or ""):gmatch("[^\n]+") do
    if line:find(root, 1, true) then out[#out + 1] = "mount: " .. line end
  end
  p = assert(io.popen("ls /sys/fs/cgroup/freezer 2>/dev/null"))
  local cgroups = p:read("a")
  p:close()
  for name, id, hash in cgroups:gmatch("(vc%-(%S+)%-(%x+))") do
    if fnv1a(root .. "/run/pods/" .. id) == tonumber(hash, 16) then
      out[#out + 1] = "cgroup: " .. name
    end
  end
  -- network namespaces of pods of this root (vc.network names them)
  local tag = ("%08x"):format(fnv1a(root .. "/run"))
  p = assert(io.popen("ls /run/netns 2>/dev/null"))
  local netns = p:read("a")
  p:close()
  for name in netns:gmatch("%S+") do
    if name:match("^vc%-.+%-" .. tag .. "$") then out[#out + 1] = "netns: " .. name end
  end
  return table.concat(out, "\n")
end

-- What pods on a test network can leave on the host: links on its bridge
-- (veths), IPAM leases of its name, iptables rules naming its subnet
-- (prefix, "10.214.9."). "" when none.
function M.net_traces(name, bridge, prefix)
  local out = {}
  local function lines(cmd)
    local p = assert(io.popen(cmd .. " 2>/dev/null"))
    local text = p:read("a")
    p:close()
    return text:gmatch("[^\n]+")
  end
  for l in lines("ip -o link show master " .. M.quote(bridge)) do
    out[#out + 1] = "link: " .. l
  end
  for l in lines("ls /var/lib/cni/networks/" .. M.quote(name)) do
    if not l:match("^last_reserved_ip") and l ~= "lock" then out[#out + 1] = "lease: " .. l end
  end
  for l in lines("iptables-save") do
    if l:find(prefix, 1, true) then out[#out + 1] = "iptables: " .. l end
  end
  return table.concat(out, "\n")
end

-- A conflist of a test network of its own: bridge + host-local on
-- 10.214.N.0/24 + portmap + loopback ({ list, name, bridge, prefix }).
function M.test_network(n)
  local name, bridge, prefix = "vctest" .. n, "vct" .. n, "10.214." .. n .. "."
  return {
    list = {
      cniVersion = "1.0.0", name = name,
      plugins = {
        { type = "bridge", bridge = bridge, isGateway = true, hairpinMode = true,
          ipam = { type = "host-local",
                   ranges = { { { subnet = prefix .. "0/24", gateway = prefix .. "1" } } },
                   routes = { { dst = "0.0.0.0/0" } } } },
        { type = "portmap", capabilities = { portMappings = true } },
        { type = "loopback" },
      },
    },
    name = name, bridge = bridge, prefix = prefix,
  }
end

-- Remove a test network's bridge and lease folder (the plugins keep both).
function M.drop_test_network(net)
  os.execute("ip link delete " .. M.quote(net.bridge) .. " >/dev/null 2>&1")
  os.execute("rm -rf " .. M.quote("/var/lib/cni/networks/" .. net.name))
end

-- fn(net) on test network n, whose bridge and lease folder are removed
-- after it, whatever fn does; fn's error is raised again then.
function M.with_test_network(n, fn)
  local net = M.test_network(n)
  local ok, err = pcall(fn, net)
  M.drop_test_network(net)
  if not ok then error(err, 0) end
end

-- Every file below dir with its content, for "store unchanged" checks.
function M.snapshot(dir)
  local p = assert(io.popen("cd " .. M.quote(dir) ..
    " && find . -print0 | sort -z | xargs -0 -r stat -c '%n %F %a %s'" ..
    " && find . -type f -print0 | sort -z | xargs -0 -r sha256sum"))
  local out = p:read("a")
  p:close()
  return out
end

return M
