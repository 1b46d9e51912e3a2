-- hooks.lua: Lua hooks and a custom policy around a pod's life.
--
--   vc run examples/hooks.lua [HYPERVISOR]
--
-- With no HYPERVISOR the pod runs on the namespace backend (containers in
-- namespaces on this host, no VM); "mock" walks through the same steps
-- without running anything.
local vc = require "vc"

local backend = arg[1] or "namespace"
local here = arg[0]:match("^(.*)/[^/]*$") or "."
local mock = backend == "mock"

-- A policy of our own, sandboxed like the shipped ones, for every pod this
-- script touches (as `vc --policy FILE` would do on the command line).
assert(vc.policy.use(here .. "/policies/small-pods.lua"))
for _, p in ipairs(assert(vc.policy.list())) do
  print(string.format("policy %-12s from %s", p.name, p.origin))
end

-- Lua hooks: functions called at lifecycle points, for every pod of this
-- process. They get a read-only event: point, pod, config, state, and for
-- container_exit the container, its exit code and restarts.
vc.hooks.on("post_create", function(ev)
  print(string.format("hook post_create: pod %s, %d container(s), %d MiB for the first",
                      ev.pod, #ev.config.containers,
                      ev.config.containers[1].resources.memory_mib))
end)
vc.hooks.on("container_exit", function(ev)
  print(string.format("hook container_exit: %s exited with %d (restarts so far: %d)",
                      ev.container, ev.exit_code, ev.restarts))
end)
-- A pre_* hook may refuse its step: the pod stays as it was.
local busy = true
vc.hooks.on("pre_stop", function()
  if busy then return false, "the worker is still busy" end
end)

local function worker(id, extra)
  local c = {
    id = id,
    rootfs = here .. "/../build/rootfs",
    argv = { "/bin/sh", "-c", "echo working; exit 3" },
    -- the shipped restart policy: restart on a non-zero exit, twice, after
    -- 0.2 s then 0.4 s (vc container wait does the restarts)
    restart = "on-failure",
    annotations = { ["vc.restart.max"] = "2", ["vc.restart.backoff"] = "0.2" },
  }
  -- the mock's stand-in for the process exiting by itself
  if mock then c.annotations["vc.mock.exit_code"] = "3" end
  for k, v in pairs(extra or {}) do c[k] = v end
  return c
end

-- The policy refuses a pod of three containers before anything exists.
local _, err = vc.pod.create {
  hypervisor = backend, containers = { worker("a"), worker("b"), worker("c") },
}
print("refused: " .. err)

local pod = assert(vc.pod.run { hypervisor = backend, containers = { worker("worker") } })
print(pod)
local code = assert(pod:container("worker"):wait(60))
print(string.format("worker finished with code %d after %d restarts", code,
                    pod:status().containers[1].restarts or 0))

local ok, why = pod:stop()
print("stop: " .. tostring(ok or why))
busy = false
assert(pod:stop())
assert(pod:delete())
print("pod " .. pod.id .. " deleted")
