--- vc.security: what confines a container, and what it gets by default.
--
-- A container gets what crun, runc and Docker give one by default and no
-- more: the OCI/Docker default capabilities (bounding, effective and
-- permitted for root; ambient empty), no_new_privs, a seccomp filter that
-- denies what Docker's and containers-common's default profiles deny
-- (here as a deny-list: every other system call is allowed), masked and
-- read-only paths under /proc and /sys, the default devices (the agent's
-- cgroup rules) and RLIMIT_NOFILE 1024. A config widens or narrows it
-- with `security` and `rlimits` (checked here, see `M.check_security`),
-- and the shipped `default` policy decides who may widen it.
--
-- The host computes the effective set (`M.effective`); the agent
-- (src/agentd/security.c) applies exactly that.
local cjson = require "cjson"

local M = {}

-- Capabilities by number, as linux/capability.h (kernel 5.9+).
M.CAPABILITIES = {
  "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
  "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
  "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
  "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
  "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
  "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
  "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
  "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
  "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
  "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
  "CAP_CHECKPOINT_RESTORE",
}
local KNOWN = {}
for i, name in ipairs(M.CAPABILITIES) do KNOWN[name] = i - 1 end

-- Docker's and podman's default set (the OCI runtime spec's example
-- config has only the last three).
M.DEFAULT_CAPABILITIES = {
  "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
  "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
  "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

-- As runc, crun and podman: /dev/null over files, an empty read-only
-- tmpfs over folders; missing paths are skipped.
M.MASKED_PATHS = {
  "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
  "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
  "/sys/firmware", "/sys/devices/virtual/powercap",
}
M.READONLY_PATHS = {
  "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
}

M.RLIMITS = {
  "as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice",
  "nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack",
}
-- crun's and runc's default spec.
M.DEFAULT_RLIMITS = { nofile = { soft = 1024, hard = 1024 } }

local EPERM, ENOSYS = 1, 38
local CLONE_NAMESPACES = {
  0x00020000, -- CLONE_NEWNS
  0x02000000, -- CLONE_NEWCGROUP
  0x04000000, -- CLONE_NEWUTS
  0x08000000, -- CLONE_NEWIPC
  0x10000000, -- CLONE_NEWUSER
  0x20000000, -- CLONE_NEWPID
  0x40000000, -- CLONE_NEWNET
}

-- The default seccomp rules: each denies its system calls unless the
-- container has one of the capabilities in `unless` (as the conditional
-- parts of Docker's profile). ptrace, process_vm_readv/writev and
-- personality stay allowed, as in Docker's profile on kernels >= 4.8.
local DENY = {
  { names = { "add_key", "keyctl", "request_key" } },  -- the keyring is not namespaced
  { names = { "kexec_file_load", "kexec_load", "reboot" }, unless = { "CAP_SYS_BOOT" } },
  { names = { "create_module", "delete_module", "finit_module", "init_module",
              "get_kernel_syms", "query_module" }, unless = { "CAP_SYS_MODULE" } },
  { names = { "acct" }, unless = { "CAP_SYS_PACCT" } },
  { names = { "clock_adjtime", "clock_settime", "settimeofday", "stime" },
    unless = { "CAP_SYS_TIME" } },
  { names = { "iopl", "ioperm" }, unless = { "CAP_SYS_RAWIO" } },
  { names = { "mount", "umount", "umount2", "move_mount", "open_tree", "fsopen",
              "fsconfig", "fsmount", "fspick", "mount_setattr", "pivot_root",
              "setns", "unshare", "swapon", "swapoff", "quotactl", "quotactl_fd",
              "lookup_dcookie", "fanotify_init", "nfsservctl", "sysfs", "_sysctl",
              "uselib", "ustat", "vm86", "vm86old", "name_to_handle_at" },
    unless = { "CAP_SYS_ADMIN" } },
  { names = { "bpf" }, unless = { "CAP_SYS_ADMIN", "CAP_BPF" } },
  { names = { "perf_event_open" }, unless = { "CAP_SYS_ADMIN", "CAP_PERFMON" } },
  { names = { "open_by_handle_at" }, unless = { "CAP_DAC_READ_SEARCH" } },
  { names = { "userfaultfd", "kcmp" }, unless = { "CAP_SYS_PTRACE" } },
  { names = { "get_mempolicy", "mbind", "set_mempolicy", "move_pages" },
    unless = { "CAP_SYS_NICE" } },
  { names = { "syslog" }, unless = { "CAP_SYSLOG" } },
  { names = { "vhangup" }, unless = { "CAP_SYS_TTY_CONFIG" } },
  -- io_uring bypasses seccomp for the operations it queues.
  { names = { "io_uring_setup", "io_uring_enter", "io_uring_register" } },
  -- clone3's flags are behind a pointer a filter cannot read: ENOSYS makes
  -- the C library fall back to clone, whose flags it can.
  { names = { "clone3" }, errno = ENOSYS, unless = { "CAP_SYS_ADMIN" } },
}
for _, flag in ipairs(CLONE_NAMESPACES) do
  DENY[#DENY + 1] = { names = { "clone" }, unless = { "CAP_SYS_ADMIN" },
    args = { { index = 0, value = flag, valueTwo = flag, op = "SCMP_CMP_MASKED_EQ" } } }
end
M.DEFAULT_SECCOMP_RULES = DENY

local ACTIONS = {
  SCMP_ACT_ALLOW = true, SCMP_ACT_ERRNO = true, SCMP_ACT_KILL = true,
  SCMP_ACT_KILL_THREAD = true, SCMP_ACT_KILL_PROCESS = true, SCMP_ACT_TRAP = true,
  SCMP_ACT_TRACE = true, SCMP_ACT_LOG = true,
}
local OPS = {
  SCMP_CMP_NE = true, SCMP_CMP_LT = true, SCMP_CMP_LE = true, SCMP_CMP_EQ = true,
  SCMP_CMP_GE = true, SCMP_CMP_GT = true, SCMP_CMP_MASKED_EQ = true,
}
-- JSON numbers: cjson keeps 14 significant digits in the store's records.
M.MAX_VALUE = 1 << 46

-- Checks --------------------------------------------------------------------

local function fail(path, fmt, ...)
  return nil, (path == "" and "" or path .. ": ") .. fmt:format(...)
end

-- path.key, or key at the top.
local function join(path, key) return path == "" and key or path .. "." .. key end

local function is_list(v)
  if type(v) ~= "table" then return false end
  local n = 0
  for k in next, v do
    if math.type(k) ~= "integer" or k < 1 then return false end
    n = n + 1
  end
  return n == #v
end

--- "CAP_X" for "CAP_X", "cap_x" or "X"; "ALL" for "all"; nil for an
-- unknown name.
function M.capability(name)
  if type(name) ~= "string" then return nil end
  local up = name:upper()
  if up == "ALL" then return "ALL" end
  if up:sub(1, 4) ~= "CAP_" then up = "CAP_" .. up end
  return KNOWN[up] and up or nil
end

--- A capability's number (CAP_X, cap_x or X), or nil.
function M.capability_number(name)
  local cap = M.capability(name)
  return cap and KNOWN[cap]
end

local function cap_list(v, path)
  if not is_list(v) then return fail(path, "expected a list of capability names") end
  local out = {}
  for i, name in ipairs(v) do
    local cap = M.capability(name)
    if not cap then
      return fail(path .. "[" .. i .. "]", "unknown capability %s",
                  type(name) == "string" and ("%q"):format(name) or type(name))
    end
    out[#out + 1] = cap
  end
  return out
end

local function int_field(t, key, path, lo, hi)
  local v = t[key]
  local i = type(v) == "number" and math.tointeger(v)
  if not i or i < lo or i > hi then
    return fail(join(path, key), "expected an integer from %d to %d, got %s", lo, hi,
                type(v) == "number" and tostring(v) or type(v))
  end
  return i
end

local function known_keys(t, path, keys)
  local names = {}
  for k in next, t do names[#names + 1] = tostring(k) end
  table.sort(names)
  for _, k in ipairs(names) do
    if not keys[k] then return fail(join(path, k), "unknown key") end
  end
  return true
end

--- An OCI linux.seccomp object, checked and copied: { defaultAction,
-- defaultErrnoRet, architectures, syscalls = { { names, action,
-- errnoRet, args = { { index, value, valueTwo, op } } } } }.
function M.check_seccomp(v, path)
  if type(v) ~= "table" or is_list(v) and next(v) ~= nil then
    return fail(path, "expected an OCI seccomp object")
  end
  local ok, err = known_keys(v, path, { defaultAction = true, defaultErrnoRet = true,
                                        architectures = true, syscalls = true, flags = true })
  if not ok then return nil, err end
  if not ACTIONS[v.defaultAction] then
    return fail(join(path, "defaultAction"), "expected an SCMP_ACT_* action, got %s",
                type(v.defaultAction) == "string" and ("%q"):format(v.defaultAction)
                or type(v.defaultAction))
  end
  local out = { defaultAction = v.defaultAction, architectures = {}, syscalls = {} }
  if v.defaultErrnoRet ~= nil then
    out.defaultErrnoRet, err = int_field(v, "defaultErrnoRet", path, 0, 4095)
    if err then return nil, err end
  end
  if v.flags ~= nil and not (is_list(v.flags) and #v.flags == 0) then
    return fail(join(path, "flags"), "seccomp flags are not supported")
  end
  if v.architectures ~= nil then
    if not is_list(v.architectures) then
      return fail(join(path, "architectures"), "expected a list")
    end
    for i, a in ipairs(v.architectures) do
      if type(a) ~= "string" or not a:match("^SCMP_ARCH_[A-Z0-9_]+$") then
        return fail(join(path, "architectures[" .. i .. "]"), "expected an SCMP_ARCH_* name")
      end
      out.architectures[i] = a
    end
  end
  local rules = v.syscalls or {}
  if not is_list(rules) then return fail(join(path, "syscalls"), "expected a list") end
  for i, r in ipairs(rules) do
    local rp = join(path, "syscalls[" .. i .. "]")
    if type(r) ~= "table" then return fail(rp, "expected a table") end
    ok, err = known_keys(r, rp, { names = true, action = true, errnoRet = true, args = true,
                                  comment = true })
    if not ok then return nil, err end
    if not is_list(r.names) or #r.names == 0 then
      return fail(rp .. ".names", "expected a non-empty list of system call names")
    end
    local rule = { names = {}, action = r.action, args = {} }
    for j, name in ipairs(r.names) do
      if type(name) ~= "string" or not name:match("^[a-z_][a-z0-9_]*$") then
        return fail(rp .. ".names[" .. j .. "]", "expected a system call name")
      end
      rule.names[j] = name
    end
    if not ACTIONS[r.action] then
      return fail(rp .. ".action", "expected an SCMP_ACT_* action")
    end
    if r.errnoRet ~= nil then
      rule.errnoRet, err = int_field(r, "errnoRet", rp, 0, 4095)
      if err then return nil, err end
    end
    local args = r.args or {}
    if not is_list(args) or #args > 6 then
      return fail(rp .. ".args", "expected a list of at most 6")
    end
    for j, a in ipairs(args) do
      local ap = rp .. ".args[" .. j .. "]"
      if type(a) ~= "table" then return fail(ap, "expected a table") end
      ok, err = known_keys(a, ap, { index = true, value = true, valueTwo = true, op = true })
      if not ok then return nil, err end
      local arg = {}
      arg.index, err = int_field(a, "index", ap, 0, 5)
      if err then return nil, err end
      arg.value, err = int_field(a, "value", ap, 0, M.MAX_VALUE)
      if err then return nil, err end
      arg.valueTwo = 0
      if a.valueTwo ~= nil then
        arg.valueTwo, err = int_field(a, "valueTwo", ap, 0, M.MAX_VALUE)
        if err then return nil, err end
      end
      if not OPS[a.op] then return fail(ap .. ".op", "expected an SCMP_CMP_* operator") end
      arg.op = a.op
      rule.args[j] = arg
    end
    out.syscalls[i] = rule
  end
  return out
end

--- A seccomp profile file (OCI JSON), checked.
function M.load_seccomp(file, path)
  local f, oerr = io.open(file, "rb")
  if not f then return fail(path, "%s", oerr) end
  local src = f:read("a")
  f:close()
  local ok, v = pcall(cjson.decode, src or "")
  if not ok then return fail(path, "%s: invalid JSON: %s", file, tostring(v)) end
  if type(v) ~= "table" or not (src or ""):match("^%s*{") then
    return fail(path, "%s: expected an OCI seccomp object", file)
  end
  local out, err = M.check_seccomp(v, "")
  if not out then return fail(path, "%s: %s", file, err) end
  return out
end

-- Absolute paths, without "..".
local function abs_paths(v, path)
  if not is_list(v) then return fail(path, "expected a list of absolute paths") end
  local out = {}
  for i, p in ipairs(v) do
    if type(p) ~= "string" or p:sub(1, 1) ~= "/" or #p > 4096 or p:find("\0", 1, true)
       or ("/" .. p .. "/"):find("/%.%./") then
      return fail(path .. "[" .. i .. "]", "expected an absolute path without '..', got %s",
                  type(p) == "string" and ("%q"):format(p) or type(p))
    end
    out[i] = p
  end
  return out
end

local SETS = { "effective", "permitted", "inheritable", "ambient" }

-- The capability sets a config gives (an OCI bundle's): when one is
-- given all four are (a missing one is empty), each within the bounding
-- set, the ambient one within the permitted and inheritable ones (the
-- kernel's rule).
local function check_sets(caps, out, path)
  local given = false
  for _, key in ipairs(SETS) do given = given or caps[key] ~= nil end
  if not given then return true end
  local bounding = M.capabilities(out)
  local sets = {}
  for _, key in ipairs(SETS) do
    local list, err = cap_list(caps[key] or {}, path .. "." .. key)
    if not list then return nil, err end
    local set = {}
    for i, c in ipairs(list) do
      if c == "ALL" then
        return fail(path .. "." .. key .. "[" .. i .. "]", '"ALL" is for add and drop only')
      end
      if not bounding[c] then
        return fail(path .. "." .. key, "%s is not in the bounding set (add it)", c)
      end
      set[c] = true
    end
    sets[key] = set
    out.capabilities[key] = list
  end
  for c in pairs(sets.ambient) do
    if not (sets.permitted[c] and sets.inheritable[c]) then
      return fail(path .. ".ambient", "%s is not both permitted and inheritable", c)
    end
  end
  return true
end

--- config.security: { privileged, capabilities = { add, drop [,
-- effective, permitted, inheritable, ambient] }, seccomp = "default" |
-- "unconfined" | FILE.json | profile, no_new_privileges, read_only_rootfs,
-- masked_paths, readonly_paths }, with its defaults. add and drop change
-- the default (bounding) set; the four sets, when given, are exactly what
-- the process has, whatever its user (else root has the bounding set and
-- another user none, as after a setuid). The paths are masked and made
-- read-only besides vc's own. A seccomp file is read now and kept as the
-- profile it holds.
function M.check_security(v, path)
  if type(v) ~= "table" then return fail(path, "expected a table, got %s", type(v)) end
  local ok, err = known_keys(v, path, { privileged = true, capabilities = true, seccomp = true,
                                        no_new_privileges = true, read_only_rootfs = true,
                                        masked_paths = true, readonly_paths = true })
  if not ok then return nil, err end
  local out = { privileged = false, no_new_privileges = true, read_only_rootfs = false,
                seccomp = "default", capabilities = { add = {}, drop = {} },
                masked_paths = {}, readonly_paths = {} }
  for _, key in ipairs { "masked_paths", "readonly_paths" } do
    if v[key] ~= nil then
      out[key], err = abs_paths(v[key], join(path, key))
      if err then return nil, err end
    end
  end
  for _, key in ipairs { "privileged", "no_new_privileges", "read_only_rootfs" } do
    if v[key] ~= nil then
      if type(v[key]) ~= "boolean" then
        return fail(join(path, key), "expected a boolean, got %s", type(v[key]))
      end
      out[key] = v[key]
    end
  end
  if v.capabilities ~= nil then
    local caps = v.capabilities
    local cp = join(path, "capabilities")
    if type(caps) ~= "table" then return fail(cp, "expected { add = {...}, drop = {...} }") end
    ok, err = known_keys(caps, cp, { add = true, drop = true, effective = true,
                                     permitted = true, inheritable = true, ambient = true })
    if not ok then return nil, err end
    for _, key in ipairs { "add", "drop" } do
      if caps[key] ~= nil then
        out.capabilities[key], err = cap_list(caps[key], cp .. "." .. key)
        if err then return nil, err end
      end
    end
    ok, err = check_sets(caps, out, cp)
    if not ok then return nil, err end
  end
  local sc = v.seccomp
  if type(sc) == "table" then
    out.seccomp, err = M.check_seccomp(sc, join(path, "seccomp"))
    if err then return nil, err end
  elseif sc == "default" or sc == "unconfined" or sc == nil then
    out.seccomp = sc or "default"
  elseif type(sc) == "string" and sc:sub(1, 1) == "/" and sc:match("%.json$") then
    out.seccomp, err = M.load_seccomp(sc, join(path, "seccomp"))
    if err then return nil, err end
  else
    return fail(join(path, "seccomp"),
                'expected "default", "unconfined", the absolute path of a .json profile'
                .. ' or a profile')
  end
  return out
end

--- config.rlimits: { NAME = n | "unlimited" | { soft =, hard = } }, names
-- as RLIMIT_* without the prefix, in lower case; values made
-- { soft =, hard = } (-1 is "unlimited").
function M.check_rlimits(v, path)
  if type(v) ~= "table" then return fail(path, "expected a table, got %s", type(v)) end
  local allowed = {}
  for _, n in ipairs(M.RLIMITS) do allowed[n] = true end
  local ok, err = known_keys(v, path, allowed)
  if not ok then return nil, err end
  local function value(x, p)
    if x == "unlimited" then return -1 end
    local i = type(x) == "number" and math.tointeger(x)
    if not i or i < 0 or i > M.MAX_VALUE then
      return fail(p, 'expected an integer from 0 to %d or "unlimited"', M.MAX_VALUE)
    end
    return i
  end
  local out = {}
  for name, x in pairs(v) do
    local p = join(path, name)
    local soft, hard
    if type(x) == "table" then
      ok, err = known_keys(x, p, { soft = true, hard = true })
      if not ok then return nil, err end
      soft, err = value(x.soft, p .. ".soft")
      if err then return nil, err end
      hard, err = value(x.hard, p .. ".hard")
      if err then return nil, err end
    else
      soft, err = value(x, p)
      if err then return nil, err end
      hard = soft
    end
    if hard ~= -1 and (soft == -1 or soft > hard) then
      return fail(p, "the soft limit is above the hard limit")
    end
    out[name] = { soft = soft, hard = hard }
  end
  return out
end

-- The effective set -----------------------------------------------------------

--- The items of list as the keys of a set.
function M.set_of(list)
  local s = {}
  for _, x in ipairs(list) do s[x] = true end
  return s
end
local set_of = M.set_of

--- The capabilities a container's config gives it (a set of names).
function M.capabilities(sec)
  if sec.privileged then return set_of(M.CAPABILITIES) end
  local caps = set_of(M.DEFAULT_CAPABILITIES)
  for _, c in ipairs(sec.capabilities.add) do
    if c == "ALL" then caps = set_of(M.CAPABILITIES) else caps[c] = true end
  end
  for _, c in ipairs(sec.capabilities.drop) do
    if c == "ALL" then caps = {} else caps[c] = nil end
  end
  return caps
end

--- The default profile for a container with capabilities caps.
function M.default_seccomp(caps)
  local rules = {}
  for _, r in ipairs(DENY) do
    local exempt = false
    for _, c in ipairs(r.unless or {}) do exempt = exempt or caps[c] == true end
    if not exempt then
      rules[#rules + 1] = { names = r.names, action = "SCMP_ACT_ERRNO",
                            errnoRet = r.errno or EPERM, args = r.args or {} }
    end
  end
  return { defaultAction = "SCMP_ACT_ALLOW",
           architectures = { "SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32" },
           syscalls = rules }
end

local RLIMIT_NAMES = {}
for _, n in ipairs(M.RLIMITS) do RLIMIT_NAMES[n] = "RLIMIT_" .. n:upper() end

-- a's items, then b's that a has not.
local function union(a, b)
  local out, seen = {}, {}
  for _, list in ipairs { a, b or {} } do
    for _, x in ipairs(list) do
      if not seen[x] then out[#out + 1], seen[x] = x, true end
    end
  end
  return out
end

--- What the agent applies to a container (a validated config, defaults
-- filled): the spec's `security` (src/core/spec.h, struct vc_security).
function M.effective(ccfg)
  local sec = ccfg.security or assert(M.check_security({}, "security"))
  local caps = M.capabilities(sec)
  local list = {}
  for _, name in ipairs(M.CAPABILITIES) do
    if caps[name] then list[#list + 1] = name end
  end
  local sets
  if not sec.privileged and sec.capabilities.effective then
    sets = {}
    for _, key in ipairs(SETS) do
      local given = set_of(sec.capabilities[key])
      local l = {}
      for _, name in ipairs(M.CAPABILITIES) do
        if given[name] then l[#l + 1] = name end
      end
      sets[key] = l
    end
  end
  local limits = {}
  for name, l in pairs(M.DEFAULT_RLIMITS) do limits[name] = l end
  for name, l in pairs(ccfg.rlimits or {}) do limits[name] = l end
  local rlimits = {}
  for _, name in ipairs(M.RLIMITS) do
    local l = limits[name]
    if l then
      rlimits[#rlimits + 1] = { type = RLIMIT_NAMES[name], soft = l.soft, hard = l.hard }
    end
  end
  local seccomp
  if sec.privileged or sec.seccomp == "unconfined" then
    seccomp = nil
  elseif sec.seccomp == "default" then
    seccomp = M.default_seccomp(caps)
  else
    seccomp = sec.seccomp
  end
  return {
    privileged = sec.privileged,
    no_new_privileges = sec.no_new_privileges,
    read_only_rootfs = sec.read_only_rootfs,
    capabilities = list,
    capability_sets = sets,
    masked_paths = sec.privileged and {} or union(M.MASKED_PATHS, sec.masked_paths),
    readonly_paths = sec.privileged and {} or union(M.READONLY_PATHS, sec.readonly_paths),
    rlimits = rlimits,
    seccomp = seccomp,
  }
end

--- A CapEff hex string as the sorted names of its capabilities.
function M.names(hex)
  local v = tonumber(hex, 16)
  if not v then return nil end
  local out = {}
  for i, name in ipairs(M.CAPABILITIES) do
    if v & (1 << (i - 1)) ~= 0 then out[#out + 1] = name end
  end
  table.sort(out)
  return out
end

local SECCOMP_MODES = { [0] = "disabled", [1] = "strict", [2] = "filter" }

--- The agent's status of a container's process as what confines it:
-- { capabilities = {names}, seccomp = "filter"|..., no_new_privileges }
-- (nil when the agent did not say).
function M.describe(status)
  if not status or not status.cap_eff then return nil end
  return { capabilities = M.names(status.cap_eff),
           seccomp = SECCOMP_MODES[status.seccomp] or "unknown",
           no_new_privileges = status.no_new_privs }
end

return M
