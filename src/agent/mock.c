/* mock.c - an agent that runs nothing, for tests only ("mock:DIR").
 *
 * Its world is DIR/mock-agent, one line per container:
 *     ID STATE EXIT AUTO_EXIT EXEC_EXIT
 * A started container runs until stopped or signalled, unless its
 * annotation "vc.mock.exit_code" makes it exit at once with that code;
 * exec returns "vc.mock.exec_exit_code" (default 0) and prints nothing. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "agent.h"
#include "core/mock.h"
#include "sys/cleanup.h"
#include "sys/fileio.h"

#define MAX_CTRS 256
#define ID_MAX 64

struct entry {
  char id[ID_MAX + 1];
  vc_ctr_state_t state;
  int exit_code;
  int auto_exit;   /* < 0: runs until stopped */
  int exec_exit;
};

struct world {
  struct entry e[MAX_CTRS];
  size_t n;
};

static const char *const state_words[] = {"created", "running", "exited"};

static int check(vc_agent_t *a, const char *op, vc_err_t *err) {
  return vc_mock_check(a->annotations, a->n_annotations, op, err);
}

static void world_path(vc_agent_t *a, char *path, size_t size) {
  snprintf(path, size, "%s/mock-agent", a->target);
}

static int load(vc_agent_t *a, struct world *w, vc_err_t *err) {
  char path[PATH_MAX];
  world_path(a, path, sizeof path);
  cleanup_free char *data = NULL;
  size_t len;
  w->n = 0;
  if (vc_read_file(path, 1 << 20, &data, &len, err) < 0)
    return err->errnum == ENOENT ? 0 : -1;
  char *save = NULL;
  for (char *line = strtok_r(data, "\n", &save); line != NULL;
       line = strtok_r(NULL, "\n", &save)) {
    struct entry *e = &w->e[w->n];
    char state[16];
    if (w->n == MAX_CTRS ||
        sscanf(line, "%64s %15s %d %d %d", e->id, state, &e->exit_code,
               &e->auto_exit, &e->exec_exit) != 5)
      return vc_fail(err, EINVAL, "mock: %s: malformed line", path);
    e->state = VC_CTR_CREATED;
    for (int i = 0; i < 3; i++)
      if (strcmp(state, state_words[i]) == 0)
        e->state = (vc_ctr_state_t)i;
    w->n++;
  }
  return 0;
}

static int save(vc_agent_t *a, const struct world *w, vc_err_t *err) {
  char path[PATH_MAX];
  world_path(a, path, sizeof path);
  cleanup_free char *buf = malloc(MAX_CTRS * 128);
  if (buf == NULL)
    return vc_error(err, ENOMEM, "mock");
  size_t used = 0;
  for (size_t i = 0; i < w->n; i++) {
    const struct entry *e = &w->e[i];
    used += (size_t)snprintf(buf + used, 128, "%s %s %d %d %d\n", e->id,
                             state_words[e->state], e->exit_code, e->auto_exit,
                             e->exec_exit);
  }
  return vc_write_atomic(path, buf, used, 0640, err);
}

static struct entry *find(struct world *w, const char *cid) {
  for (size_t i = 0; i < w->n; i++)
    if (strcmp(w->e[i].id, cid) == 0)
      return &w->e[i];
  return NULL;
}

/* Load the world and find cid in it; fails when it is not there. */
static struct entry *lookup(vc_agent_t *a, struct world *w, const char *op,
                            const char *cid, vc_err_t *err) {
  if (check(a, op, err) < 0 || load(a, w, err) < 0)
    return NULL;
  struct entry *e = find(w, cid);
  if (e == NULL)
    vc_fail(err, ENOENT, "agent: no container %s", cid);
  return e;
}

static int annotation_int(const vc_container_spec_t *c, const char *key,
                          int def) {
  const char *v = vc_kv_get(c->annotations, c->n_annotations, key);
  return v != NULL ? atoi(v) : def;
}

static int mock_connect(vc_agent_t *a, double timeout_s, vc_err_t *err) {
  (void)timeout_s;
  struct stat st;
  if (check(a, "agent.connect", err) < 0)
    return -1;
  if (stat(a->target, &st) < 0 || !S_ISDIR(st.st_mode))
    return vc_fail(err, ECONNREFUSED, "agent %s: cannot connect", a->address);
  return 0;
}

static int mock_create_pod(vc_agent_t *a, const vc_vm_spec_t *pod,
                           vc_err_t *err) {
  (void)pod;
  struct world w;
  if (check(a, "agent.create_pod", err) < 0 || load(a, &w, err) < 0)
    return -1;
  return save(a, &w, err);
}

static int mock_destroy_pod(vc_agent_t *a, vc_err_t *err) {
  char path[PATH_MAX];
  if (check(a, "agent.destroy_pod", err) < 0)
    return -1;
  world_path(a, path, sizeof path);
  if (unlink(path) < 0 && errno != ENOENT)
    return vc_error(err, errno, "mock: remove %s", path);
  return 0;
}

static int mock_create_container(vc_agent_t *a, const vc_container_spec_t *c,
                                 vc_err_t *err) {
  struct world w;
  if (check(a, "agent.create_container", err) < 0 || load(a, &w, err) < 0)
    return -1;
  if (strlen(c->id) > ID_MAX || w.n == MAX_CTRS)
    return vc_fail(err, EINVAL, "mock: cannot hold container %s", c->id);
  if (find(&w, c->id) != NULL)
    return vc_fail(err, EEXIST, "agent: container %s already exists", c->id);
  struct entry *e = &w.e[w.n++];
  snprintf(e->id, sizeof e->id, "%s", c->id);
  e->state = VC_CTR_CREATED;
  e->exit_code = -1;
  e->auto_exit = annotation_int(c, "vc.mock.exit_code", -1);
  e->exec_exit = annotation_int(c, "vc.mock.exec_exit_code", 0);
  return save(a, &w, err);
}

static int mock_start_container(vc_agent_t *a, const char *cid,
                                vc_err_t *err) {
  struct world w;
  struct entry *e = lookup(a, &w, "agent.start_container", cid, err);
  if (e == NULL)
    return -1;
  if (e->state == VC_CTR_RUNNING)
    return vc_fail(err, EBUSY, "agent: container %s is already running", cid);
  e->state = e->auto_exit >= 0 ? VC_CTR_EXITED : VC_CTR_RUNNING;
  e->exit_code = e->auto_exit;
  return save(a, &w, err);
}

static int end(vc_agent_t *a, struct world *w, struct entry *e, int code,
               vc_err_t *err) {
  if (e->state != VC_CTR_RUNNING)
    return vc_fail(err, ESRCH, "agent: container %s is not running", e->id);
  e->state = VC_CTR_EXITED;
  e->exit_code = code;
  return save(a, w, err);
}

static int mock_stop_container(vc_agent_t *a, const char *cid,
                               double timeout_s, vc_err_t *err) {
  (void)timeout_s;
  struct world w;
  struct entry *e = lookup(a, &w, "agent.stop_container", cid, err);
  if (e == NULL)
    return -1;
  if (e->state != VC_CTR_RUNNING)
    return 0;
  return end(a, &w, e, 128 + SIGTERM, err);
}

static int mock_remove_container(vc_agent_t *a, const char *cid,
                                 vc_err_t *err) {
  struct world w;
  struct entry *e = lookup(a, &w, "agent.remove_container", cid, err);
  if (e == NULL)
    return err->errnum == ENOENT ? 0 : -1;
  if (e->state == VC_CTR_RUNNING)
    return vc_fail(err, EBUSY, "agent: container %s is running", cid);
  *e = w.e[--w.n];
  return save(a, &w, err);
}

static int mock_freeze(vc_agent_t *a, const char *cid, bool frozen,
                       vc_err_t *err) {
  (void)frozen; /* a mock container has no processes to freeze */
  struct world w;
  struct entry *e = lookup(a, &w, "agent.freeze", cid, err);
  if (e == NULL)
    return -1;
  if (e->state != VC_CTR_RUNNING)
    return vc_fail(err, ESRCH, "agent: container %s is not running", cid);
  return 0;
}

static int mock_update_container(vc_agent_t *a, const char *cid,
                                 const struct vc_resources *r, vc_err_t *err) {
  (void)r; /* a mock container has no cgroups */
  struct world w;
  return lookup(a, &w, "agent.update_container", cid, err) != NULL ? 0 : -1;
}

static int mock_signal(vc_agent_t *a, const char *cid, int sig, bool all,
                       vc_err_t *err) {
  (void)all; /* a mock container is one process */
  struct world w;
  struct entry *e = lookup(a, &w, "agent.signal", cid, err);
  if (e == NULL)
    return -1;
  if (e->state != VC_CTR_RUNNING)
    return vc_fail(err, ESRCH, "agent: container %s is not running", cid);
  /* Signals whose default action is not to terminate leave it running. */
  if (sig == 0 || sig == SIGCHLD || sig == SIGCONT || sig == SIGURG ||
      sig == SIGWINCH)
    return 0;
  return end(a, &w, e, 128 + sig, err);
}

static int mock_exec(vc_agent_t *a, const char *cid, const vc_process_t *p,
                     vc_stdio_t *io, int *exit_code, vc_err_t *err) {
  (void)p;
  (void)io;
  struct world w;
  struct entry *e = lookup(a, &w, "agent.exec", cid, err);
  if (e == NULL)
    return -1;
  if (e->state != VC_CTR_RUNNING)
    return vc_fail(err, ESRCH, "agent: container %s is not running", cid);
  *exit_code = e->exec_exit;
  return 0;
}

static int mock_wait(vc_agent_t *a, const char *cid, double timeout_s,
                     int *exit_code, vc_err_t *err) {
  (void)timeout_s;
  struct world w;
  struct entry *e = lookup(a, &w, "agent.wait", cid, err);
  if (e == NULL)
    return -1;
  if (e->state != VC_CTR_EXITED)
    return vc_fail(err, ETIMEDOUT, "agent: container %s has not exited",
                    cid);
  *exit_code = e->exit_code;
  return 0;
}

static int mock_status(vc_agent_t *a, const char *cid, vc_ctr_status_t *st,
                       vc_err_t *err) {
  struct world w;
  struct entry *e = lookup(a, &w, "agent.status", cid, err);
  if (e == NULL)
    return -1;
  st->state = e->state;
  st->pid = 0;
  st->exit_code = e->exit_code;
  st->oom = false;
  return 0;
}

static int mock_list_processes(vc_agent_t *a, const char *cid,
                               vc_proc_list_t *out, vc_err_t *err) {
  struct world w;
  if (lookup(a, &w, "agent.list_processes", cid, err) == NULL)
    return -1;
  out->n = 0; /* the mock runs no process */
  return 0;
}

static int mock_stats(vc_agent_t *a, const char *cid, vc_ctr_stats_t *out,
                      vc_err_t *err) {
  struct world w;
  if (lookup(a, &w, "agent.stats", cid, err) == NULL)
    return -1;
  memset(out, 0, sizeof *out);
  return 0;
}

static int mock_read_output(vc_agent_t *a, const char *cid, vc_output_t *out,
                            vc_err_t *err) {
  struct world w;
  if (lookup(a, &w, "agent.read_output", cid, err) == NULL)
    return -1;
  memset(out, 0, sizeof *out);
  return 0;
}

/* Attached, the mock container is detached at once (it has no output). */
static int mock_attach(vc_agent_t *a, const char *cid, vc_stdio_t *io,
                       int *exit_code, vc_err_t *err) {
  struct world w;
  struct entry *e = lookup(a, &w, "agent.attach", cid, err);
  if (e == NULL)
    return -1;
  if (e->state == VC_CTR_EXITED)
    return vc_fail(err, ESRCH, "agent: container %s has exited", cid);
  *exit_code = -1;
  io->detached = true;
  return 0;
}

static int mock_logs(vc_agent_t *a, const char *cid, bool follow,
                     vc_chunk_fn fn, void *ud, bool *truncated,
                     vc_err_t *err) {
  (void)follow, (void)fn, (void)ud;
  struct world w;
  if (lookup(a, &w, "agent.logs", cid, err) == NULL)
    return -1;
  *truncated = false;
  return 0;
}

static int mock_ping(vc_agent_t *a, vc_err_t *err) {
  return check(a, "agent.ping", err);
}

static int mock_shutdown(vc_agent_t *a, vc_err_t *err) {
  return mock_destroy_pod(a, err);
}

static void mock_close(vc_agent_t *a) {
  (void)a;
}

const struct vc_agent_ops vc_agent_mock_ops = {
    .scheme = "mock",
    .connect = mock_connect,
    .create_pod = mock_create_pod,
    .destroy_pod = mock_destroy_pod,
    .create_container = mock_create_container,
    .start_container = mock_start_container,
    .stop_container = mock_stop_container,
    .remove_container = mock_remove_container,
    .update_container = mock_update_container,
    .freeze = mock_freeze,
    .signal = mock_signal,
    .exec = mock_exec,
    .wait = mock_wait,
    .status = mock_status,
    .list_processes = mock_list_processes,
    .stats = mock_stats,
    .read_output = mock_read_output,
    .attach = mock_attach,
    .logs = mock_logs,
    .ping = mock_ping,
    .shutdown = mock_shutdown,
    .close = mock_close,
};
