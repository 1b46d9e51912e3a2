--- vc repl: the interactive prompt has an issue of its own; until it
-- lands, say so rather than pretend.
local failure = require "vc.failure"

local M = {}

function M.main()
  failure.raise("repl: not available in this version yet (use 'vc run SCRIPT.lua')")
end

return M
