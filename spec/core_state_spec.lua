local state = require "vc.core.state"

describe("vc.core.state", function()
  local LEGAL = {
    ready = { running = true, stopped = true },
    running = { paused = true, stopped = true },
    paused = { running = true, stopped = true },
    stopped = { running = true },
  }

  it("lists the four states", function()
    assert.same({ "ready", "running", "paused", "stopped" }, state.states)
  end)

  it("allows exactly the legal moves, for pods and containers", function()
    for _, kind in ipairs { "pod", "container" } do
      for _, from in ipairs(state.states) do
        for _, to in ipairs(state.states) do
          local ok, msg = state.check(kind, "x", from, to)
          if LEGAL[from][to] then
            assert.is_true(ok, kind .. " " .. from .. "->" .. to)
          else
            assert.is_nil(ok)
            assert.equal(kind .. " x: cannot move from " .. from .. " to " .. to, msg)
          end
        end
      end
    end
  end)

  it("names the object and both states", function()
    local ok, msg = state.check("pod", "web", "stopped", "paused")
    assert.is_nil(ok)
    assert.equal("pod web: cannot move from stopped to paused", msg)
  end)

  it("lets a pod be deleted when ready, paused or stopped", function()
    assert.is_true(state.can_delete("pod", "p", "ready"))
    assert.is_true(state.can_delete("pod", "p", "paused"))
    assert.is_true(state.can_delete("pod", "p", "stopped"))
    local ok, msg = state.can_delete("pod", "p", "running")
    assert.is_nil(ok)
    assert.matches("pod p: cannot delete while running", msg, 1, true)
  end)

  it("lets a container be deleted when ready or stopped", function()
    assert.is_true(state.can_delete("container", "c", "ready"))
    assert.is_true(state.can_delete("container", "c", "stopped"))
    assert.is_nil(state.can_delete("container", "c", "running"))
    assert.is_nil(state.can_delete("container", "c", "paused"))
  end)

  it("raises on misuse: an unknown state or kind", function()
    assert.has_error(function() state.check("pod", "x", "ready", "flying") end)
    assert.has_error(function() state.check("vm", "x", "ready", "running") end)
    assert.is_false(state.valid("flying"))
    assert.is_true(state.valid("paused"))
  end)
end)
