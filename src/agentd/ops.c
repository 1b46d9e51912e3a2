/* ops.c - requests: checking them, doing them, replying
 * (docs/agent-protocol.md, "Operations"). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentd.h"
#include "sys/cleanup.h"

typedef struct req {
  const vc_json_t *msg;
  long long id;
  vc_jw_t *w;           /* the reply, {"id":N,"ok":true so far */
} req_t;

/* 0: reply now with what is in r->w; 1: the reply comes later. */
typedef int (*op_fn)(agent_t *a, conn_t *c, const req_t *r, vc_err_t *err);

/* --- arguments --------------------------------------------------------- */

static int bad(vc_err_t *err, const char *what) {
  return vc_fail(err, EINVAL, "bad request: %s", what);
}

/* A list of strings as a NULL-terminated array pointing into the
 * request; NULL member: an empty list. */
static int strings(const vc_json_t *v, const char *name, bool need,
                   const char ***out, vc_err_t *err) {
  const vc_json_t empty = {.type = VC_JSON_ARRAY};
  if (v == NULL && !need)
    v = &empty;
  if (v == NULL || v->type != VC_JSON_ARRAY || (need && v->n == 0))
    return vc_fail(err, EINVAL, "\"%s\" must be a %slist of strings", name,
                   need ? "non-empty " : "");
  const char **list = calloc(v->n + 1, sizeof *list);
  if (list == NULL)
    return vc_error(err, ENOMEM, "%s", name);
  for (size_t i = 0; i < v->n; i++) {
    if (v->items[i]->type != VC_JSON_STRING) {
      free(list);
      return vc_fail(err, EINVAL, "\"%s\" must be a %slist of strings", name,
                     need ? "non-empty " : "");
    }
    list[i] = v->items[i]->string;
  }
  *out = list;
  return 0;
}

static long long opt_int(const vc_json_t *v, const char *key, long long def) {
  long long n;
  return vc_json_get_int(v, key, &n) == 0 ? n : def;
}

/* A process's argv, env, cwd, user and stdio; free p->argv and p->env. */
static int process_spec(const vc_json_t *v, proc_spec_t *p, vc_err_t *err) {
  *p = (proc_spec_t){0};
  if (v == NULL || v->type != VC_JSON_OBJECT)
    return vc_fail(err, EINVAL, "no process");
  if (strings(vc_json_get(v, "argv"), "argv", true, &p->argv, err) < 0 ||
      strings(vc_json_get(v, "env"), "env", false, &p->env, err) < 0 ||
      strings(vc_json_get(v, "groups"), "groups", false, &p->groups, err) < 0)
    return -1;
  p->cwd = vc_json_get_string(v, "cwd");
  p->user = vc_json_get_string(v, "user");
  p->oom_score_adj = opt_int(v, "oom_score_adj", LLONG_MIN);
  if (p->oom_score_adj != LLONG_MIN &&
      (p->oom_score_adj < -1000 || p->oom_score_adj > 1000))
    return vc_fail(err, EINVAL, "\"oom_score_adj\" must be -1000 to 1000");
  p->tty = vc_json_get_bool(v, "terminal", false);
  p->with_stdin = vc_json_get_bool(v, "stdin", false);
  long long rows = opt_int(v, "rows", 24), cols = opt_int(v, "cols", 80);
  if (rows < 1 || rows > 65535 || cols < 1 || cols > 65535)
    return vc_fail(err, EINVAL, "\"rows\" and \"cols\" must be 1 to 65535");
  p->rows = (unsigned short)rows;
  p->cols = (unsigned short)cols;
  if (p->cwd != NULL && p->cwd[0] != '/' && p->cwd[0] != '\0')
    return vc_fail(err, EINVAL, "cwd \"%s\" is not absolute", p->cwd);
  return 0;
}

static void proc_spec_free(proc_spec_t *p) {
  free(p->argv);
  free(p->env);
  free(p->groups);
}


static int find_ctr(agent_t *a, const req_t *r, ctr_t **out, vc_err_t *err) {
  const char *id = vc_json_get_string(r->msg, "container_id");
  if (id == NULL)
    return bad(err, "no string \"container_id\"");
  *out = ctr_find(a, id);
  if (*out == NULL)
    return vc_fail(err, ENOENT, "container %s: no such container", id);
  return 0;
}

/* The container's init, or the exec named by "exec_id". */
static int find_proc(agent_t *a, const req_t *r, proc_t **out,
                     vc_err_t *err) {
  ctr_t *c;
  if (find_ctr(a, r, &c, err) < 0)
    return -1;
  const char *exec_id = vc_json_get_string(r->msg, "exec_id");
  *out = proc_find(c, exec_id);
  if (*out == NULL)
    return vc_fail(err, ENOENT, "container %s: exec %s: no such process",
                   c->id, exec_id);
  return 0;
}

static const char *proc_name(const proc_t *p, char *buf, size_t n) {
  if (p->exec_id[0] == '\0')
    snprintf(buf, n, "container %s", p->ctr->id);
  else
    snprintf(buf, n, "container %s: exec %s", p->ctr->id, p->exec_id);
  return buf;
}

void exit_result(vc_jw_t *w, const proc_t *p) {
  vc_jw_key(w, "exit_code");
  vc_jw_int(w, p->exit_code);
  vc_jw_key(w, "oom");
  vc_jw_bool(w, p->oom);
}

/* --- operations -------------------------------------------------------- */

static int op_version(agent_t *a, conn_t *c, const req_t *r, vc_err_t *err) {
  (void)a;
  long long proto;
  if (vc_json_get_int(r->msg, "protocol", &proto) < 0)
    return bad(err, "no integer \"protocol\"");
  if (proto != VC_PROTO_VERSION)
    return vc_fail(err, EPROTONOSUPPORT,
                   "protocol %lld not supported (this agent speaks %d)", proto,
                   VC_PROTO_VERSION);
  c->hello = true;
  vc_jw_key(r->w, "protocol");
  vc_jw_int(r->w, VC_PROTO_VERSION);
  vc_jw_key(r->w, "agent");
  vc_jw_string(r->w, "vc-agent " VC_VERSION);
  return 0;
}

/* The client is done: the connection starts over as if new (a serial
 * port's next host may come right after, before its hang-up is seen). */
static int op_bye(agent_t *a, conn_t *c, const req_t *r, vc_err_t *err) {
  (void)a, (void)r, (void)err;
  c->bye = true;
  return 0;
}

static int op_ping(agent_t *a, conn_t *c, const req_t *r, vc_err_t *err) {
  (void)a, (void)c, (void)r, (void)err;
  return 0;
}

static int op_create_pod(agent_t *a, conn_t *c, const req_t *r,
                         vc_err_t *err) {
  (void)c;
  if (a->pod_id == NULL && pod_guest_setup(a, r->msg, err) < 0)
    return -1;
  return pod_create(a, vc_json_get_string(r->msg, "pod_id"),
                    vc_json_get(r->msg, "volumes"),
                    vc_json_get(r->msg, "network"), err);
}

static int op_destroy_pod(agent_t *a, conn_t *c, const req_t *r,
                          vc_err_t *err) {
  (void)c, (void)r, (void)err;
  pod_destroy(a);
  agent_log(a, "pod destroyed");
  return 0;
}

static int op_shutdown(agent_t *a, conn_t *c, const req_t *r, vc_err_t *err) {
  (void)c, (void)r, (void)err;
  a->quit = true;   /* after this reply; main tears the pod down */
  return 0;
}

static int container_spec(agent_t *a, const vc_json_t *v, ctr_spec_t *s,
                          vc_err_t *err) {
  const vc_json_t *res = vc_json_get(v, "resources");
  s->rootfs = vc_json_get_string(v, "rootfs");
  s->memory_mib = opt_int(res, "memory_mib", -1);
  s->pids = opt_int(res, "pids", -1);
  s->cpu_quota_pct = opt_int(res, "cpu_quota_pct", -1);
  if (s->rootfs == NULL || s->rootfs[0] != '/')
    return vc_fail(err, EINVAL, "\"rootfs\" must be an absolute path");
  if (s->memory_mib == 0 || s->memory_mib < -1 ||
      s->memory_mib > (LLONG_MAX >> 20) || s->pids == 0 || s->pids < -1 ||
      s->cpu_quota_pct == 0 || s->cpu_quota_pct < -1 ||
      s->cpu_quota_pct > 100000)
    return vc_fail(err, EINVAL, "\"resources\": values must be positive");
  if (process_spec(v, &s->proc, err) < 0 ||
      security_parse(vc_json_get(v, "security"), &s->sec, err) < 0)
    return -1;
  s->sysctl = vc_json_get(v, "sysctl");
  if (s->sysctl != NULL && s->sysctl->type != VC_JSON_OBJECT)
    return vc_fail(err, EINVAL, "\"sysctl\" must be an object");
  for (size_t i = 0; s->sysctl != NULL && i < s->sysctl->n; i++) {
    const char *k = s->sysctl->keys[i];
    if (s->sysctl->items[i]->type != VC_JSON_STRING || k[0] == '\0' ||
        k[0] == '.' || strstr(k, "..") != NULL || strchr(k, '/') != NULL)
      return vc_fail(err, EINVAL, "sysctl \"%s\": bad name or value", k);
  }
  const vc_json_t *mounts = vc_json_get(v, "mounts");
  if (mounts == NULL)
    return 0;
  if (mounts->type != VC_JSON_ARRAY)
    return vc_fail(err, EINVAL, "\"mounts\" must be a list");
  s->mounts = calloc(mounts->n + 1, sizeof *s->mounts);
  if (s->mounts == NULL)
    return vc_error(err, ENOMEM, "mounts");
  for (size_t i = 0; i < mounts->n; i++) {
    mount_spec_t *m = &s->mounts[s->n_mounts++];
    m->volume = vc_json_get_string(mounts->items[i], "volume");
    m->path = vc_json_get_string(mounts->items[i], "path");
    m->read_only = vc_json_get_bool(mounts->items[i], "read_only", false);
    if (m->path == NULL || m->path[0] != '/')
      return vc_fail(err, EINVAL, "mount %zu: \"path\" must be absolute", i + 1);
    const char *source = vc_json_get_string(mounts->items[i], "source");
    if (source != NULL && m->volume == NULL) {
      if (source[0] != '/')
        return vc_fail(err, EINVAL, "mount %s: \"source\" must be absolute",
                       m->path);
      m->source = source;
      continue;
    }
    const vc_json_t *tmpfs = vc_json_get(mounts->items[i], "tmpfs");
    if (tmpfs != NULL && tmpfs->type == VC_JSON_OBJECT && m->volume == NULL) {
      m->tmpfs = true;
      m->tmpfs_size_mib = opt_int(tmpfs, "size_mib", -1);
      long long mode = opt_int(tmpfs, "mode", 01777);
      if (m->tmpfs_size_mib == 0 || m->tmpfs_size_mib < -1 ||
          m->tmpfs_size_mib > (1 << 20) || mode < 0 || mode > 07777)
        return vc_fail(err, EINVAL, "mount %s: bad \"tmpfs\"", m->path);
      m->tmpfs_mode = (unsigned)mode;
      continue;
    }
    volume_t *vol = m->volume != NULL ? pod_volume(a, m->volume) : NULL;
    if (vol == NULL)
      return vc_fail(err, ENOENT, "mount %s: no such volume \"%s\"", m->path,
                     m->volume ? m->volume : "");
    m->source = vol->dir;
  }
  return 0;
}

/* The UTS and IPC namespaces of container `of` (its pod's sandbox), for
 * a container that joins them. */
static int join_namespaces(agent_t *a, const char *of, ctr_spec_t *s,
                           vc_err_t *err) {
  if (of == NULL)
    return 0;
  ctr_t *owner = ctr_find(a, of);
  if (owner == NULL)
    return vc_fail(err, ENOENT, "namespaces_of: no container \"%s\"", of);
  if (owner->init.pid <= 0 || owner->init.exited)
    return vc_fail(err, ESRCH, "namespaces_of: container %s has ended", of);
  if ((s->uts_fd = ctr_open_ns(owner->init.pid, "uts", err)) < 0 ||
      (s->ipc_fd = ctr_open_ns(owner->init.pid, "ipc", err)) < 0)
    return vc_error_prefix(err, "namespaces_of %s", of);
  return 0;
}

static int op_create_container(agent_t *a, conn_t *c, const req_t *r,
                               vc_err_t *err) {
  (void)c;
  const vc_json_t *v = vc_json_get(r->msg, "container");
  if (v == NULL || v->type != VC_JSON_OBJECT)
    return bad(err, "no object \"container\"");
  ctr_spec_t s = {.id = vc_json_get_string(v, "id"),
                  .hostname = a->hostname,
                  .state_dir = a->state_dir};
  memcpy(s.net_file, a->net_file, sizeof s.net_file);
  if (!valid_id(s.id))
    return vc_fail(err, EINVAL, "container \"%s\": bad id",
                   s.id ? s.id : "");
  ctr_t *ctr = NULL;
  s.uts_fd = s.ipc_fd = -1;
  int ret = container_spec(a, v, &s, err);
  if (ret == 0)
    ret = join_namespaces(a, vc_json_get_string(v, "namespaces_of"), &s, err);
  if (ret == 0)
    ret = ctr_create(a, &s, &ctr, err);
  if (s.uts_fd >= 0)
    close(s.uts_fd);
  if (s.ipc_fd >= 0)
    close(s.ipc_fd);
  proc_spec_free(&s.proc);
  free(s.mounts);
  security_free(&s.sec); /* (moved into the container when made) */
  if (ret < 0)
    return vc_error_prefix(err, "container %s", s.id);
  agent_log(a, "container %s: created, pid %d", s.id, (int)ctr->init.pid);
  vc_jw_key(r->w, "pid");
  vc_jw_int(r->w, ctr->init.pid);
  return 0;
}

static int op_start_container(agent_t *a, conn_t *c, const req_t *r,
                              vc_err_t *err) {
  (void)c;
  ctr_t *ctr;
  if (find_ctr(a, r, &ctr, err) < 0)
    return -1;
  if (ctr_start(a, ctr, err) < 0)
    return vc_error_prefix(err, "container %s", ctr->id);
  vc_jw_key(r->w, "pid");
  vc_jw_int(r->w, ctr->init.pid);
  return 0;
}

static int op_stop_container(agent_t *a, conn_t *c, const req_t *r,
                             vc_err_t *err) {
  ctr_t *ctr;
  if (find_ctr(a, r, &ctr, err) < 0)
    return -1;
  if (ctr->init.exited) {
    exit_result(r->w, &ctr->init);
    return 0;
  }
  long long timeout = opt_int(r->msg, "timeout_ms", 10000);
  /* A created init has not run its program: nothing to be graceful to. */
  bool now = timeout <= 0 || ctr->state == CTR_CREATED;
  kill(ctr->init.pid, now ? SIGKILL : SIGTERM);
  if (ctr->frozen && cgroup_freeze(&ctr->cg, false, err) == 0)
    ctr->frozen = false; /* a paused container stops too */
  if (pending_add(a, PEND_STOP, c, r->id, &ctr->init,
                  now ? -1 : vc_now_ms() + timeout) == NULL)
    return vc_error(err, ENOMEM, "stop");
  return 1;
}

/* Drop the kernel's unused dentries and inodes, those of the removed
 * container's rootfs and folders among them.  The host shares a folder at
 * a path of the container's own (its ID), which goes with it; but a later
 * container given the same folder reaches the same inode, and 9p's cache
 * would move the removed container's cached tree there, with handles on
 * the host paths that are gone (seen as "no such program").  Nothing in
 * use is dropped, and dirty pages stay until written. */
static void forget_shared_dentries(void) {
  int fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
  if (fd >= 0) {
    if (write(fd, "2", 1) != 1) {
      /* (an old or restricted kernel: the risk stays, nothing breaks) */
    }
    close(fd);
  }
}

static int op_remove_container(agent_t *a, conn_t *c, const req_t *r,
                               vc_err_t *err) {
  (void)c;
  ctr_t *ctr;
  if (find_ctr(a, r, &ctr, err) < 0)
    return -1;
  if (ctr->state == CTR_RUNNING)
    return vc_fail(err, EBUSY, "container %s: is running; stop it first",
                   ctr->id);
  agent_log(a, "container %s: removed", ctr->id);
  ctr_free(a, ctr);
  forget_shared_dentries();
  return 0;
}

static int op_signal(agent_t *a, conn_t *c, const req_t *r, vc_err_t *err) {
  (void)c;
  proc_t *p;
  char name[128];
  long long sig;
  if (find_proc(a, r, &p, err) < 0)
    return -1;
  if (vc_json_get_int(r->msg, "signal", &sig) < 0 || sig < 0 || sig >= NSIG)
    return bad(err, "\"signal\" must be a signal number");
  if (p->exited || p->ctr->state != CTR_RUNNING)
    return vc_fail(err, ESRCH, "%s: is not running",
                   proc_name(p, name, sizeof name));
  const char *dir = cgroup_procs_dir(&p->ctr->cg);
  if (vc_json_get_bool(r->msg, "all", false) && dir != NULL) {
    /* Every process of the container, its first one last (as runc's
     * kill --all: the others may not outlive it). */
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/cgroup.procs", dir);
    cleanup_file FILE *f = fopen(path, "re");
    int pid;
    while (f != NULL && fscanf(f, "%d", &pid) == 1)
      if (pid != p->pid)
        kill(pid, (int)sig);
  }
  if (kill(p->pid, (int)sig) < 0)
    return vc_error(err, errno, "%s: signal %lld",
                    proc_name(p, name, sizeof name), sig);
  /* Frozen, a process would not die: SIGKILL resumes a paused one. */
  if (sig == SIGKILL && p->ctr->frozen &&
      cgroup_freeze(&p->ctr->cg, false, err) == 0)
    p->ctr->frozen = false;
  return 0;
}

static int freeze(agent_t *a, const req_t *r, bool frozen, vc_err_t *err) {
  ctr_t *ctr;
  if (find_ctr(a, r, &ctr, err) < 0)
    return -1;
  if (ctr->state != CTR_RUNNING || ctr->init.exited)
    return vc_fail(err, ESRCH, "container %s: is not running", ctr->id);
  if (ctr->frozen == frozen)
    return 0;
  if (cgroup_freeze(&ctr->cg, frozen, err) < 0)
    return vc_error_prefix(err, "container %s", ctr->id);
  ctr->frozen = frozen;
  return 0;
}

static int op_pause_container(agent_t *a, conn_t *c, const req_t *r,
                              vc_err_t *err) {
  (void)c;
  return freeze(a, r, true, err);
}

static int op_resume_container(agent_t *a, conn_t *c, const req_t *r,
                               vc_err_t *err) {
  (void)c;
  return freeze(a, r, false, err);
}

static int op_update_container(agent_t *a, conn_t *c, const req_t *r,
                               vc_err_t *err) {
  (void)c;
  ctr_t *ctr;
  if (find_ctr(a, r, &ctr, err) < 0)
    return -1;
  const vc_json_t *res = vc_json_get(r->msg, "resources");
  if (res == NULL || res->type != VC_JSON_OBJECT)
    return bad(err, "no object \"resources\"");
  long long mem = opt_int(res, "memory_mib", -1), pids = opt_int(res, "pids", -1),
            cpu = opt_int(res, "cpu_quota_pct", -1);
  if (mem == 0 || mem < -1 || mem > (LLONG_MAX >> 20) || pids == 0 ||
      pids < -1 || cpu == 0 || cpu < -1 || cpu > 100000)
    return vc_fail(err, EINVAL, "\"resources\": values must be positive");
  if (cgroup_update(&ctr->cg, mem, pids, cpu, err) < 0)
    return vc_error_prefix(err, "container %s", ctr->id);
  return 0;
}

static int op_exec(agent_t *a, conn_t *c, const req_t *r, vc_err_t *err) {
  ctr_t *ctr;
  if (find_ctr(a, r, &ctr, err) < 0)
    return -1;
  proc_spec_t s;
  proc_t *p = NULL;
  bool stream = vc_json_get_bool(r->msg, "stream", false);
  int ret = process_spec(vc_json_get(r->msg, "process"), &s, err);
  if (ret == 0 && (s.with_stdin || s.tty) && !stream)
    ret = bad(err, "\"stdin\" and \"terminal\" need \"stream\"");
  if (ret == 0)
    ret = ctr_exec(a, ctr, &s, &p, err);
  bool input = s.with_stdin || s.tty;
  proc_spec_free(&s);
  if (ret < 0)
    return vc_error_prefix(err, "container %s", ctr->id);
  agent_log(a, "container %s: exec %s, pid %d", ctr->id, p->exec_id,
            (int)p->pid);
  vc_jw_key(r->w, "exec_id");
  vc_jw_string(r->w, p->exec_id);
  vc_jw_key(r->w, "pid");
  vc_jw_int(r->w, p->pid);
  if (stream) {
    /* The reply goes first; output events and exit follow, and stdin
     * frames may come meanwhile (stdin.c). */
    if (pending_add(a, PEND_STREAM, c, r->id, p, -1) == NULL)
      return vc_error(err, ENOMEM, "exec");
    p->stream = c;
    p->stream_id = r->id;
    p->in_stream = input;
  }
  return 0;
}

/* The container's init, streamed as an exec is: its output from now on,
 * its stdin (when it has one) from this client, until it exits; the
 * client detaches by going away.  One client at a time. */
static int op_attach(agent_t *a, conn_t *c, const req_t *r, vc_err_t *err) {
  ctr_t *ctr;
  if (find_ctr(a, r, &ctr, err) < 0)
    return -1;
  proc_t *p = &ctr->init;
  if (p->exited)
    return vc_fail(err, ESRCH, "container %s: has exited", ctr->id);
  if (p->stream != NULL)
    return vc_fail(err, EBUSY, "container %s: another client is attached",
                   ctr->id);
  if (pending_add(a, PEND_STREAM, c, r->id, p, -1) == NULL)
    return vc_error(err, ENOMEM, "attach");
  p->stream = c;
  p->stream_id = r->id;
  vc_jw_key(r->w, "terminal");
  vc_jw_bool(r->w, p->tty);
  vc_jw_key(r->w, "stdin");
  vc_jw_bool(r->w, p->in_fd >= 0);
  return 0;
}

static int op_wait(agent_t *a, conn_t *c, const req_t *r, vc_err_t *err) {
  proc_t *p;
  char name[128];
  if (find_proc(a, r, &p, err) < 0)
    return -1;
  if (p->exited) {
    exit_result(r->w, p);
    return 0;
  }
  long long timeout = opt_int(r->msg, "timeout_ms", -1);
  if (timeout == 0)
    return vc_fail(err, ETIMEDOUT, "%s: still running",
                   proc_name(p, name, sizeof name));
  if (pending_add(a, PEND_WAIT, c, r->id, p,
                  timeout < 0 ? -1 : vc_now_ms() + timeout) == NULL)
    return vc_error(err, ENOMEM, "wait");
  return 1;
}

static int op_status(agent_t *a, conn_t *c, const req_t *r, vc_err_t *err) {
  (void)c;
  static const char *const states[] = {"created", "running", "exited"};
  ctr_t *ctr;
  if (find_ctr(a, r, &ctr, err) < 0)
    return -1;
  vc_jw_key(r->w, "state");
  vc_jw_string(r->w, states[ctr->state]);
  vc_jw_key(r->w, "pid");
  vc_jw_int(r->w, ctr->init.pid);
  if (ctr->state == CTR_EXITED) {
    vc_jw_key(r->w, "exit_code");
    vc_jw_int(r->w, ctr->init.exit_code);
  }
  vc_jw_key(r->w, "oom");
  vc_jw_bool(r->w, ctr->init.oom);
  /* What confines the init, as the kernel has it (not as asked). */
  char cap_eff[32];
  int seccomp, nnp;
  if (!ctr->init.exited &&
      security_status(ctr->init.pid, cap_eff, sizeof cap_eff, &seccomp,
                      &nnp) == 0) {
    vc_jw_key(r->w, "cap_eff");
    vc_jw_string(r->w, cap_eff);
    vc_jw_key(r->w, "seccomp");
    vc_jw_int(r->w, seccomp);
    vc_jw_key(r->w, "no_new_privs");
    vc_jw_bool(r->w, nnp == 1);
  }
  return 0;
}

/* /proc/PID/cmdline with its NULs as spaces ("" for a zombie). */
static void cmdline(pid_t pid, char *buf, size_t size) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
  cleanup_file FILE *f = fopen(path, "re");
  size_t n = f != NULL ? fread(buf, 1, size - 1, f) : 0;
  while (n > 0 && buf[n - 1] == '\0')
    n--;
  for (size_t i = 0; i < n; i++)
    if (buf[i] == '\0')
      buf[i] = ' ';
  buf[n] = '\0';
}

static int op_list_processes(agent_t *a, conn_t *c, const req_t *r,
                             vc_err_t *err) {
  (void)c;
  ctr_t *ctr;
  if (find_ctr(a, r, &ctr, err) < 0)
    return -1;
  char cmd[4096];
  vc_jw_key(r->w, "processes");
  vc_jw_array(r->w);
  const char *dir = cgroup_procs_dir(&ctr->cg);
  if (dir != NULL) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/cgroup.procs", dir);
    cleanup_file FILE *f = fopen(path, "re");
    int pid;
    while (f != NULL && fscanf(f, "%d", &pid) == 1) {
      cmdline(pid, cmd, sizeof cmd);
      vc_jw_object(r->w);
      vc_jw_key(r->w, "pid");
      vc_jw_int(r->w, pid);
      vc_jw_key(r->w, "cmd");
      vc_jw_string(r->w, cmd);
      vc_jw_end(r->w, '}');
    }
  } else {
    /* No cgroup to ask: the processes the agent started. */
    for (proc_t *p = &ctr->init; p != NULL;
         p = p == &ctr->init ? ctr->execs : p->next) {
      if (p->exited || ctr->state != CTR_RUNNING)
        continue;
      cmdline(p->pid, cmd, sizeof cmd);
      vc_jw_object(r->w);
      vc_jw_key(r->w, "pid");
      vc_jw_int(r->w, p->pid);
      vc_jw_key(r->w, "cmd");
      vc_jw_string(r->w, cmd);
      vc_jw_end(r->w, '}');
    }
  }
  vc_jw_end(r->w, ']');
  return 0;
}

static int op_stats(agent_t *a, conn_t *c, const req_t *r, vc_err_t *err) {
  (void)c;
  static const struct {
    const char *key;
    int ctrl;
    const char *file;
  } stats[] = {
      {"cpu_ns", CG_CPUACCT, "cpuacct.usage"},
      {"memory_bytes", CG_MEMORY, "memory.usage_in_bytes"},
      {"memory_limit_bytes", CG_MEMORY, "memory.limit_in_bytes"},
      {"pids", CG_PIDS, "pids.current"},
  };
  ctr_t *ctr;
  if (find_ctr(a, r, &ctr, err) < 0)
    return -1;
  for (size_t i = 0; i < sizeof stats / sizeof stats[0]; i++) {
    long long v;
    cgroup_read(&ctr->cg, stats[i].ctrl, stats[i].file, &v);
    vc_jw_key(r->w, stats[i].key);
    vc_jw_int(r->w, v);
  }
  return 0;
}

static int op_read_output(agent_t *a, conn_t *c, const req_t *r,
                          vc_err_t *err) {
  (void)c;
  proc_t *p;
  if (find_proc(a, r, &p, err) < 0)
    return -1;
  proc_read(a, p, 1, true);
  proc_read(a, p, 2, true);
  const ring_t *rings[] = {&p->out, &p->err};
  const char *keys[] = {"stdout", "stderr"};
  for (int i = 0; i < 2; i++) {
    size_t n;
    cleanup_free char *data = ring_copy(rings[i], &n);
    if (data == NULL && rings[i]->len > 0)
      return vc_error(err, ENOMEM, "read_output");
    vc_jw_key(r->w, keys[i]);
    vc_jw_base64(r->w, data, n);
  }
  vc_jw_key(r->w, "truncated");
  vc_jw_bool(r->w, p->out.truncated || p->err.truncated);
  return 0;
}

static int put_chunk(void *ud, int stream, int64_t ms, const char *data,
                     size_t n) {
  vc_jw_t *w = ud;
  vc_jw_object(w);
  vc_jw_key(w, "stream");
  vc_jw_string(w, stream == 1 ? "stdout" : "stderr");
  vc_jw_key(w, "time");
  vc_jw_int(w, ms);
  vc_jw_key(w, "data");
  vc_jw_base64(w, data, n);
  vc_jw_end(w, '}');
  return 0;
}

/* What a process wrote, chunk by chunk as it was read, with times; with
 * "follow", then its output as it comes, until it exits. */
static int op_logs(agent_t *a, conn_t *c, const req_t *r, vc_err_t *err) {
  proc_t *p;
  if (find_proc(a, r, &p, err) < 0)
    return -1;
  proc_read(a, p, 1, true);
  proc_read(a, p, 2, true);
  const ring_t *rings[2] = {&p->out, &p->err};
  vc_jw_key(r->w, "chunks");
  vc_jw_array(r->w);
  if (ring_chunks(rings, put_chunk, r->w) < 0)
    return vc_error(err, ENOMEM, "logs");
  vc_jw_end(r->w, ']');
  vc_jw_key(r->w, "truncated");
  vc_jw_bool(r->w, p->out.truncated || p->err.truncated);
  vc_jw_key(r->w, "exited");
  vc_jw_bool(r->w, p->exited);
  if (vc_json_get_bool(r->msg, "follow", false) && !p->exited &&
      pending_add(a, PEND_FOLLOW, c, r->id, p, -1) == NULL)
    return vc_error(err, ENOMEM, "logs");
  return 0;
}

static const struct op {
  const char *name;
  op_fn fn;
} ops[] = {
    {"attach", op_attach},
    {"bye", op_bye},
    {"create_container", op_create_container},
    {"create_pod", op_create_pod},
    {"destroy_pod", op_destroy_pod},
    {"exec", op_exec},
    {"list_processes", op_list_processes},
    {"logs", op_logs},
    {"pause_container", op_pause_container},
    {"ping", op_ping},
    {"read_output", op_read_output},
    {"remove_container", op_remove_container},
    {"resume_container", op_resume_container},
    {"shutdown", op_shutdown},
    {"signal", op_signal},
    {"start_container", op_start_container},
    {"stats", op_stats},
    {"status", op_status},
    {"stop_container", op_stop_container},
    {"update_container", op_update_container},
    {"version", op_version},
    {"wait", op_wait},
};

/* --- dispatch ---------------------------------------------------------- */

static int run(agent_t *a, conn_t *c, const vc_json_t *msg, long long id,
               vc_jw_t *w, vc_err_t *err) {
  const char *op = vc_json_get_string(msg, "op");
  if (op == NULL)
    return vc_fail(err, EINVAL, "malformed message: no string \"op\"");
  if (!c->hello && strcmp(op, "version") != 0)
    return vc_fail(err, EPROTO, "handshake first: send version");
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
    if (strcmp(ops[i].name, op) == 0) {
      req_t r = {.msg = msg, .id = id, .w = w};
      return ops[i].fn(a, c, &r, err);
    }
  return vc_fail(err, EOPNOTSUPP, "unknown operation \"%s\"", op);
}

/* A stdin frame sent before its client saw the stream's exit. */
static bool late_stdin(const vc_json_t *msg) {
  const char *op = vc_json_get_string(msg, "op");
  return op != NULL &&
         (strcmp(op, "stdin") == 0 || strcmp(op, "close_stdin") == 0 ||
          strcmp(op, "resize") == 0);
}

void dispatch(agent_t *a, conn_t *c, const char *body, size_t len) {
  vc_err_t err = {0};
  vc_json_t *msg = NULL;
  long long id = 0;
  if (vc_json_parse(body, len, &msg, &err) < 0) {
    vc_error_prefix(&err, "malformed message");
    err.errnum = EINVAL;
    conn_send_error(a, c, 0, &err);
    return;
  }
  if (msg->type != VC_JSON_OBJECT) {
    vc_fail(&err, EINVAL, "malformed message: not a JSON object");
  } else if (vc_json_get_int(msg, "id", &id) < 0 || id <= 0) {
    id = 0;
    vc_fail(&err, EINVAL, "malformed message: no positive integer \"id\"");
  } else if (late_stdin(msg)) {
    vc_json_free(msg); /* of a stream that ended: nobody reads it */
    return;
  } else {
    vc_jw_t w;
    vc_jw_init(&w);
    vc_jw_object(&w);
    vc_jw_key(&w, "id");
    vc_jw_int(&w, id);
    vc_jw_key(&w, "ok");
    vc_jw_bool(&w, true);
    int ret = run(a, c, msg, id, &w, &err);
    if (ret == 0) {
      vc_jw_end(&w, '}');
      conn_send(a, c, &w);
    }
    vc_jw_free(&w);
    vc_json_free(msg);
    if (ret >= 0)
      return;
    if (ret < 0 && err.msg[0] != '\0')
      agent_log(a, "%s", err.msg);
    conn_send_error(a, c, id, &err);
    return;
  }
  vc_json_free(msg);
  conn_send_error(a, c, id, &err);
}
