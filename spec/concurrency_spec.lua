-- Concurrency: vc has no daemon, so processes race on the store under
-- locks. 8 processes doing 50 mixed operations each on one pod lose no
-- update, never see an illegal state, refuse cleanly, and a listing never
-- waits for them.
local cjson = require "cjson"
local support = require "support"
local vc = require "vc"

local WORKERS, OPS = 8, 50

-- A refusal must name the states or the lock, nothing else.
local CLEAN = {
  "cannot move from %a+ to %a+",
  "is locked by another process",
  "cannot %a+: it is %a+",
}

local function clean(msg)
  for _, p in ipairs(CLEAN) do
    if msg:match(p) then return true end
  end
  return false
end

describe("concurrency", function()
  local root

  before_each(function()
    root = support.tmpdir()
    vc.setup { root = root, lock_timeout = 30 }
  end)

  after_each(function()
    for _, p in ipairs(vc.pod.list { all = true }) do p:delete { force = true } end
    support.rmtree(root)
  end)

  it("8 processes x 50 mixed operations on one pod: no lost update, no illegal state", function()
    assert(vc.pod.run { id = "hot", hypervisor = "mock" })
    local fixture = support.project .. "/spec/fixtures/mixed_ops.lua"
    local procs = {}
    for w = 1, WORKERS do
      -- half wait for the lock, half give up at once ("pod is locked")
      local cmd = string.format("%s run %s %s hot %d %d %s 2>&1", support.quote(support.bin),
        support.quote(fixture), support.quote(root), w, OPS, w % 2 == 0 and "30" or "0")
      procs[w] = assert(io.popen(cmd))
    end
    -- meanwhile, listings keep working
    local listings = 0
    for _ = 1, 5 do
      local r = support.vc(root, { "pod", "list", "--json" })
      assert.equal(0, r.code, r.stderr)
      local s = cjson.decode(r.stdout)[1]
      assert.equal("hot", s.id)
      listings = listings + 1
    end
    local added, counts = {}, { ok = 0, refused = 0 }
    for w = 1, WORKERS do
      local lines = 0
      for line in procs[w]:lines() do
        lines = lines + 1
        local kind, op, rest = line:match("^(%a+) (%a+):? ?(.*)$")
        assert.is_truthy(kind == "ok" or kind == "refused", "worker " .. w .. ": " .. line)
        counts[kind] = counts[kind] + 1
        if kind == "refused" then
          assert.is_true(clean(rest), "worker " .. w .. ": unclean refusal: " .. line)
        elseif op == "add" then
          added[#added + 1] = rest
        end
      end
      assert.is_true(procs[w]:close())
      assert.equal(OPS, lines, "worker " .. w)
    end
    assert.equal(5, listings)
    assert.is_true(counts.ok > 0 and counts.refused > 0)
    -- no lost update: every container whose add succeeded is there
    local p = assert(vc.pod.fetch("hot"))
    local have = {}
    for _, c in ipairs(assert(p:status()).containers) do have[c.id] = c.state end
    for _, cid in ipairs(added) do assert.is_truthy(have[cid], cid .. " was lost") end
    -- the record agrees with the VM, and the pod still works
    local rec = cjson.decode(support.read_file(root .. "/run/pods/hot/state.json"))
    assert.equal(rec.state, p:state())
    if rec.state == "paused" then assert(p:resume()) end
    if p:state() ~= "stopped" then assert(p:stop()) end
    assert.is_true(p:delete())
  end)

  it("lists pods while another process holds a pod's lock", function()
    assert(vc.pod.run { id = "held", hypervisor = "mock" })
    local h = assert(io.popen(support.quote(support.bin) .. " run " ..
      support.quote(support.project .. "/spec/fixtures/hold_lock.lua") .. " " ..
      support.quote(root) .. " held 5"))
    assert.equal("locked", h:read("l"))
    local t0 = os.time()
    local r = support.vc(root, { "pod", "list" })
    local r2 = support.vc(root, { "pod", "status", "held" })
    -- the lock is held for 5 s: these did not wait for it
    assert.is_true(os.time() - t0 <= 2)
    assert.equal(0, r.code, r.stderr)
    assert.matches("held +running +mock", r.stdout)
    assert.equal(0, r2.code, r2.stderr)
    -- a change waits for the lock instead (up to 30 s), then goes ahead
    local r3 = support.sh(string.format("VC_ROOT=%s %s pod stop held",
      support.quote(root), support.quote(support.bin)))
    h:close()
    assert.equal(0, r3.code, r3.stderr)
    assert.equal("stopped", vc.pod.fetch("held"):state())
  end)
end)
