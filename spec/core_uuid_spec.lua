local uuid = require "vc.core.uuid"

describe("vc.core.uuid", function()
  it("generates distinct random v4 UUIDs", function()
    local seen = {}
    for _ = 1, 200 do
      local u = uuid.generate()
      assert.matches("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x+$", u)
      assert.equal(36, #u)
      assert.is_nil(seen[u])
      seen[u] = true
    end
  end)
end)
