--- vc gc: clean up what crashed vc processes and dead VMs left behind.
local args = require "vc.cli.args"
local format = require "vc.cli.format"
local gc = require "vc.gc"

local M = {}

local SPEC = {
  usage = "vc gc [--dry-run] [--json]",
  summary = "Find and clean up what crashes left behind: incomplete pods, pods "
    .. "whose VM died, backend processes and mounts no record names. Pods busy "
    .. "in another vc process are skipped; healthy pods are never touched.",
  options = {
    { "--dry-run", help = "report what would be done, do nothing" },
    { "--json", help = "print the report as JSON" },
  },
}

function M.main(argv, first)
  local o = args.parse(SPEC, argv, first)
  local report, errors = gc.run { dry_run = o.dry_run }
  if o.json then
    format.json(io.stdout, { actions = report, errors = errors, dry_run = o.dry_run or false },
                { "actions", "errors" })
  elseif #report == 0 and #errors == 0 then
    io.stdout:write("nothing to clean up\n")
  else
    for _, r in ipairs(report) do
      io.stdout:write(o.dry_run and "would have " or "", "pod ", r.pod, ": ", r.action, "\n")
    end
  end
  for _, e in ipairs(errors) do io.stderr:write("vc: gc: ", e, "\n") end
  return #errors == 0 and 0 or 1
end

return M
