/* mock.c - a hypervisor backend that boots nothing, for tests only.
 *
 * Its "VM" is one word in RUN_DIR/mock-vm (none, running, paused,
 * stopped); a test may overwrite it to play a VM dying behind vc's back.
 * The pod annotation "vc.mock.agent" = "unix" plays a guest whose agent
 * never answers (see mock_start). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include "hypervisor.h"
#include "core/mock.h"
#include "sys/cleanup.h"
#include "sys/fileio.h"

static const char *const words[] = {
    [VC_VM_NONE] = "none",
    [VC_VM_RUNNING] = "running",
    [VC_VM_PAUSED] = "paused",
    [VC_VM_STOPPED] = "stopped",
};

static int vm_path(vc_hv_t *hv, char *path, size_t size, vc_err_t *err) {
  if ((size_t)snprintf(path, size, "%s/mock-vm", hv->spec.run_dir) >= size)
    return vc_error(err, ENAMETOOLONG, "mock: run folder path too long");
  return 0;
}

static int save(vc_hv_t *hv, vc_vm_state_t st, vc_err_t *err) {
  char path[4096];
  if (vm_path(hv, path, sizeof path, err) < 0)
    return -1;
  return vc_write_atomic(path, words[st], strlen(words[st]), 0640, err);
}

static int load(vc_hv_t *hv, vc_vm_state_t *st, vc_err_t *err) {
  char path[4096];
  if (vm_path(hv, path, sizeof path, err) < 0)
    return -1;
  cleanup_free char *data = NULL;
  size_t len = 0;
  /* written whole by rename (save): a record */
  if (vc_read_recordat(AT_FDCWD, path, path, 64, &data, &len, err) < 0) {
    if (err->errnum != ENOENT)
      return -1;
    *st = VC_VM_NONE;
    return 0;
  }
  for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
    if (strlen(words[i]) == len && memcmp(words[i], data, len) == 0) {
      *st = (vc_vm_state_t)i;
      return 0;
    }
  }
  return vc_fail(err, EINVAL, "mock: %s: unknown VM state", path);
}

static int check(vc_hv_t *hv, const char *op, vc_err_t *err) {
  return vc_mock_check(hv->spec.annotations, hv->spec.n_annotations, op,
                       err);
}

/* Move from one of the states in from (bitmask) to to. */
static int move(vc_hv_t *hv, const char *op, unsigned from, vc_vm_state_t to,
                vc_err_t *err) {
  vc_vm_state_t st;
  if (check(hv, op, err) < 0 || load(hv, &st, err) < 0)
    return -1;
  if (!(from & (1u << st)))
    return vc_fail(err, EINVAL, "mock: cannot %s a VM that is %s",
                    op + strlen("hypervisor."), words[st]);
  return save(hv, to, err);
}

static int mock_create(vc_hv_t *hv, vc_err_t *err) {
  if (check(hv, "hypervisor.create", err) < 0)
    return -1;
  return save(hv, VC_VM_NONE, err);
}

static int mock_start(vc_hv_t *hv, vc_err_t *err) {
  char world[4096];
  if (move(hv, "hypervisor.start", 1u << VC_VM_NONE | 1u << VC_VM_STOPPED,
           VC_VM_RUNNING, err) < 0)
    return -1;
  /* A freshly booted VM has an empty agent: forget the mock agent's world. */
  snprintf(world, sizeof world, "%s/mock-agent", hv->spec.run_dir);
  if (unlink(world) < 0 && errno != ENOENT)
    return vc_error(err, errno, "mock: remove %s", world);
  hv->info.pid = 0;
  hv->info.start_time = 0;
  snprintf(hv->info.accel, sizeof hv->info.accel, "none");
  snprintf(hv->info.share, sizeof hv->info.share, "bind");
  /* "vc.mock.agent": "unix" names an agent socket that nothing serves, as
   * a VM whose guest never comes up would: a boot that times out, or that
   * a Ctrl-C in vc repl ends. */
  const char *agent = vc_kv_get(hv->spec.annotations, hv->spec.n_annotations,
                                "vc.mock.agent");
  if (agent != NULL && strcmp(agent, "unix") == 0)
    snprintf(hv->info.agent, sizeof hv->info.agent, "unix:%s/agent.sock",
             hv->spec.run_dir);
  else
    snprintf(hv->info.agent, sizeof hv->info.agent, "mock:%s",
             hv->spec.run_dir);
  return 0;
}

static int mock_stop(vc_hv_t *hv, double timeout_s, vc_err_t *err) {
  (void)timeout_s;
  return move(hv, "hypervisor.stop",
              1u << VC_VM_RUNNING | 1u << VC_VM_PAUSED | 1u << VC_VM_STOPPED,
              VC_VM_STOPPED, err);
}

static int mock_pause(vc_hv_t *hv, vc_err_t *err) {
  return move(hv, "hypervisor.pause", 1u << VC_VM_RUNNING, VC_VM_PAUSED, err);
}

static int mock_resume(vc_hv_t *hv, vc_err_t *err) {
  return move(hv, "hypervisor.resume", 1u << VC_VM_PAUSED, VC_VM_RUNNING,
              err);
}

static int mock_status(vc_hv_t *hv, vc_vm_state_t *st, vc_err_t *err) {
  if (check(hv, "hypervisor.status", err) < 0)
    return -1;
  return load(hv, st, err);
}

static int mock_destroy(vc_hv_t *hv, vc_err_t *err) {
  char path[4096];
  if (check(hv, "hypervisor.destroy", err) < 0 ||
      vm_path(hv, path, sizeof path, err) < 0)
    return -1;
  if (unlink(path) < 0 && errno != ENOENT)
    return vc_error(err, errno, "mock: remove %s", path);
  return 0;
}

const struct vc_hv_ops vc_hv_mock_ops = {
    .name = "mock",
    .create = mock_create,
    .start = mock_start,
    .stop = mock_stop,
    .pause = mock_pause,
    .resume = mock_resume,
    .status = mock_status,
    .destroy = mock_destroy,
};
