/* unix.c - the host side of the agent protocol over a unix socket
 * ("unix:PATH"), or over one of a VM's virtio-serial ports
 * ("serial:N:BASE"), see docs/agent-protocol.md.
 *
 * One connection per handle, one request at a time: send a frame, read
 * frames until the reply with the same id.  The agent's errors become
 * this side's errors with the agent's own message.
 *
 * A serial port carries one client at a time (QEMU's socket chardev
 * accepts one connection; the guest sees one byte stream), so a VM has
 * N ports, their host ends BASE.K.sock, and a client takes the first whose
 * BASE.K.lock it can flock.  The lock is the client's for as long as it
 * is connected, and the kernel drops it when the client dies.  Before it
 * lets go, a client says "bye": the port's next client then finds the
 * agent's side as new even if the guest has not yet seen the hang-up. */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "proto/json.h"
#include "proto/proto.h"
#include "sys/cleanup.h"
#include "sys/clock.h"
#include "sys/term.h"
#include "sys/unixsock.h"
#include "sys/wait.h"

/* Time allowed for a reply to an operation that does not wait on purpose. */
#define REPLY_MS 30000

struct conn {
  int fd;
  int lock_fd;          /* serial: the port's lock, held while connected */
  long long next_id;
};

static void json_freep(vc_json_t **v) {
  vc_json_free(*v);
}
#define cleanup_json __attribute__((cleanup(json_freep)))

static void jw_freep(vc_jw_t *w) {
  vc_jw_free(w);
}
#define cleanup_jw __attribute__((cleanup(jw_freep)))

static struct conn *conn_of(vc_agent_t *a, vc_err_t *err) {
  struct conn *c = a->priv;
  if (c == NULL || c->fd < 0) {
    vc_fail(err, ENOTCONN, "agent %s: not connected", a->address);
    return NULL;
  }
  return c;
}

/* Begin a request {"id": N, "op": op, ...}; the caller adds arguments. */
static long long begin(struct conn *c, vc_jw_t *w, const char *op) {
  long long id = ++c->next_id;
  vc_jw_object(w);
  vc_jw_key(w, "id");
  vc_jw_int(w, id);
  vc_jw_key(w, "op");
  vc_jw_string(w, op);
  return id;
}

static int send_request(vc_agent_t *a, struct conn *c, vc_jw_t *w,
                        vc_err_t *err) {
  const char *text;
  size_t len;
  vc_jw_end(w, '}');
  if (vc_jw_finish(w, &text, &len, err) < 0 ||
      vc_frame_write(c->fd, text, len, err) < 0)
    return vc_error_prefix(err, "agent %s", a->address);
  return 0;
}

/* Read the next frame for request id (events included); *msg is owned by
 * the caller.  A failure closes the connection: its stream is unusable. */
static int read_frame(vc_agent_t *a, struct conn *c, long long id,
                      long long deadline, vc_json_t **msg, vc_err_t *err) {
  for (;;) {
    int left = deadline < 0 ? -1 : (int)(deadline - vc_now_ms());
    if (deadline >= 0 && left < 0)
      left = 0;
    cleanup_free char *data = NULL;
    size_t len;
    if (vc_frame_read(c->fd, left, &data, &len, err) < 0) {
      close(c->fd);
      c->fd = -1;
      return vc_error_prefix(err, "agent %s", a->address);
    }
    if (vc_json_parse(data, len, msg, err) < 0) {
      close(c->fd);
      c->fd = -1;
      return vc_error_prefix(err, "agent %s: broken reply", a->address);
    }
    long long got = 0;
    bool has_id = vc_json_get_int(*msg, "id", &got) == 0;
    if (has_id && got == id)
      return 0;
    /* Lower ids are stale replies; anything else cannot come from an agent
     * that follows the protocol. */
    if (!has_id || got > id) {
      vc_json_free(*msg);
      *msg = NULL;
      close(c->fd);
      c->fd = -1;
      return vc_fail(err, EPROTO, "agent %s: broken reply: %s", a->address,
                     has_id ? "it answers a request never sent"
                            : "not a JSON object with an integer id");
    }
    vc_json_free(*msg); /* a stale frame from an abandoned request */
    *msg = NULL;
  }
}

/* The reply to request id: 0 and *reply when ok, else the agent's error. */
static int reply(vc_agent_t *a, struct conn *c, long long id,
                 long long deadline, vc_json_t **reply, vc_err_t *err) {
  vc_json_t *msg = NULL;
  if (read_frame(a, c, id, deadline, &msg, err) < 0)
    return -1;
  if (vc_json_get_bool(msg, "ok", false)) {
    *reply = msg;
    return 0;
  }
  const char *why = vc_json_get_string(msg, "error");
  long long e = 0;
  vc_json_get_int(msg, "errno", &e);
  vc_fail(err, (int)e, "%s", why != NULL ? why : "agent: malformed reply");
  vc_json_free(msg);
  return -1;
}

/* Send w (begun for id) and wait for its reply. */
static int call(vc_agent_t *a, vc_jw_t *w, long long id, int timeout_ms,
                vc_json_t **out, vc_err_t *err) {
  struct conn *c = a->priv;
  if (send_request(a, c, w, err) < 0)
    return -1;
  long long deadline = timeout_ms < 0 ? -1 : vc_now_ms() + timeout_ms;
  vc_json_t *r = NULL;
  if (reply(a, c, id, deadline, &r, err) < 0)
    return -1;
  if (out != NULL)
    *out = r;
  else
    vc_json_free(r);
  return 0;
}

/* A request with only a container id. */
static int simple(vc_agent_t *a, const char *op, const char *cid,
                  vc_json_t **out, vc_err_t *err) {
  struct conn *c = conn_of(a, err);
  if (c == NULL)
    return -1;
  cleanup_jw vc_jw_t w;
  vc_jw_init(&w);
  long long id = begin(c, &w, op);
  if (cid != NULL) {
    vc_jw_key(&w, "container_id");
    vc_jw_string(&w, cid);
  }
  return call(a, &w, id, REPLY_MS, out, err);
}

static int dial(const char *path, int timeout_ms, vc_err_t *err) {
  int fd = vc_unix_connect(path, timeout_ms, err);
  if (fd < 0)
    vc_error_prefix(err, "agent %s", path);
  return fd;
}

/* "serial:N:BASE": the number of ports, and BASE. */
static int serial_target(const vc_agent_t *a, int *n, const char **base,
                         vc_err_t *err) {
  char *end;
  long v = strtol(a->target, &end, 10);
  if (end == a->target || *end != ':' || v < 1 || v > 64 || end[1] == '\0')
    return vc_fail(err, EINVAL, "agent address \"%s\": not serial:N:BASE",
                   a->address);
  *n = (int)v;
  *base = end + 1;
  return 0;
}

/* Connect to a free port of a serial address: flock its lock, then dial
 * its socket.  EBUSY when every port has a client. */
static int dial_serial(vc_agent_t *a, struct conn *c, int timeout_ms,
                       vc_err_t *err) {
  int n = 0;
  const char *base = NULL;
  if (serial_target(a, &n, &base, err) < 0)
    return -1;
  vc_closep(&c->lock_fd);
  for (int k = 0; k < n; k++) {
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s.%d.lock", base, k) >= (int)sizeof path)
      return vc_fail(err, ENAMETOOLONG, "agent %s: path too long", a->address);
    cleanup_close int lock =
        open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (lock < 0)
      return vc_error(err, errno, "agent %s", path);
    if (flock(lock, LOCK_EX | LOCK_NB) < 0) {
      if (errno == EWOULDBLOCK)
        continue;
      return vc_error(err, errno, "agent %s: flock", path);
    }
    snprintf(path, sizeof path, "%s.%d.sock", base, k);
    int fd = dial(path, timeout_ms, err);
    if (fd < 0)
      return -1;
    c->lock_fd = lock;
    lock = -1;
    return fd;
  }
  return vc_fail(err, EBUSY, "agent %s: all %d ports have a client",
                 a->address, n);
}

static int handshake(vc_agent_t *a, struct conn *c, int timeout_ms,
                     vc_err_t *err) {
  cleanup_jw vc_jw_t w;
  vc_jw_init(&w);
  long long id = begin(c, &w, "version");
  vc_jw_key(&w, "protocol");
  vc_jw_int(&w, VC_PROTO_VERSION);
  cleanup_json vc_json_t *r = NULL;
  if (call(a, &w, id, timeout_ms, &r, err) < 0)
    return -1;
  long long v;
  if (vc_json_get_int(r, "protocol", &v) < 0 || v != VC_PROTO_VERSION)
    return vc_fail(err, EPROTO, "agent %s: speaks another protocol",
                   a->address);
  return 0;
}

static int unix_connect(vc_agent_t *a, double timeout_s, vc_err_t *err) {
  struct conn *c = a->priv;
  if (c == NULL) {
    c = calloc(1, sizeof *c);
    if (c == NULL)
      return vc_error(err, ENOMEM, "agent");
    c->fd = c->lock_fd = -1;
    a->priv = c;
  }
  if (c->fd >= 0)
    return 0;
  bool serial = a->ops == &vc_agent_serial_ops;
  /* The sandbox may still be starting: retry until the deadline. */
  long long deadline = vc_now_ms() + (long long)(timeout_s * 1000);
  int pause_ms = 2;
  for (;;) {
    long long left = deadline - vc_now_ms();
    int ms = left > 100 ? (int)left : 100;
    int fd = serial ? dial_serial(a, c, ms, err) : dial(a->target, ms, err);
    if (fd >= 0) {
      c->fd = fd;
      break;
    }
    /* (a port that frees up is taken at the next try) */
    if ((err->errnum != ENOENT && err->errnum != ECONNREFUSED &&
         !(serial && err->errnum == EBUSY)) ||
        vc_now_ms() >= deadline)
      return vc_error_prefix(err, "agent did not answer within %gs",
                             timeout_s);
    /* A boot that a Ctrl-C in vc repl ends (sys/wait.h). */
    if (vc_sleep_ms(pause_ms, err) < 0)
      return vc_error_prefix(err, "agent %s", a->address);
    pause_ms = pause_ms < 50 ? pause_ms * 2 : pause_ms;
  }
  /* A VM's port accepts at once; the guest answers once it has booted. */
  long long left = deadline - vc_now_ms();
  if (handshake(a, c, left > 1000 ? (int)left : 1000, err) < 0) {
    if (c->fd >= 0)
      close(c->fd);
    c->fd = -1;
    vc_closep(&c->lock_fd);
    return -1;
  }
  return 0;
}

static void write_strv(vc_jw_t *w, const char *key, char *const *v) {
  vc_jw_key(w, key);
  vc_jw_array(w);
  for (; v != NULL && *v != NULL; v++)
    vc_jw_string(w, *v);
  vc_jw_end(w, ']');
}

static void write_resources(vc_jw_t *w, const struct vc_resources *r) {
  vc_jw_key(w, "resources");
  vc_jw_object(w);
  const struct {
    const char *key;
    unsigned v;
  } res[] = {{"memory_mib", r->memory_mib},
             {"pids", r->pids},
             {"cpu_quota_pct", r->cpu_quota_pct}};
  for (size_t i = 0; i < sizeof res / sizeof res[0]; i++) {
    if (res[i].v == 0)
      continue;
    vc_jw_key(w, res[i].key);
    vc_jw_int(w, res[i].v);
  }
  vc_jw_end(w, '}');
}

static void write_process(vc_jw_t *w, const vc_process_t *p) {
  write_strv(w, "argv", p->argv);
  write_strv(w, "env", p->env);
  vc_jw_key(w, "cwd");
  vc_jw_string(w, p->cwd != NULL ? p->cwd : "/");
  if (p->user != NULL) {
    vc_jw_key(w, "user");
    vc_jw_string(w, p->user);
  }
  if (p->groups != NULL && p->groups[0] != NULL)
    write_strv(w, "groups", p->groups);
  if (p->has_oom_score_adj) {
    vc_jw_key(w, "oom_score_adj");
    vc_jw_int(w, p->oom_score_adj);
  }
}

static int unix_create_pod(vc_agent_t *a, const vc_vm_spec_t *pod,
                           vc_err_t *err) {
  struct conn *c = conn_of(a, err);
  if (c == NULL)
    return -1;
  cleanup_jw vc_jw_t w;
  vc_jw_init(&w);
  long long id = begin(c, &w, "create_pod");
  vc_jw_key(&w, "pod_id");
  vc_jw_string(&w, pod->pod_id);
  bool ninep = pod->share != NULL && strcmp(pod->share, "9p") == 0;
  if (ninep) {
    /* A VM's guest: its share, the host's time and fresh randomness (it
     * may have started from a template, docs/agent-protocol.md). */
    struct timespec now;
    unsigned char rnd[32];
    char hex[2 * sizeof rnd + 1];
    clock_gettime(CLOCK_REALTIME, &now);
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
      return vc_error(err, errno, "getrandom");
    for (size_t i = 0; i < sizeof rnd; i++)
      snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
    vc_jw_key(&w, "share");
    vc_jw_string(&w, "vcshared");
    /* Two numbers: JSON's exact integers end at 2^53, and the clock in
     * nanoseconds is past it. */
    vc_jw_key(&w, "time_sec");
    vc_jw_int(&w, (long long)now.tv_sec);
    vc_jw_key(&w, "time_nsec");
    vc_jw_int(&w, (long long)now.tv_nsec);
    vc_jw_key(&w, "entropy");
    vc_jw_string(&w, hex);
  }
  vc_jw_key(&w, "volumes");
  vc_jw_array(&w);
  for (size_t i = 0; i < pod->n_volumes; i++) {
    const struct vc_volume *v = &pod->volumes[i];
    vc_jw_object(&w);
    vc_jw_key(&w, "tag");
    vc_jw_string(&w, v->tag);
    vc_jw_key(&w, "type");
    vc_jw_string(&w, ninep ? "9p" : "bind");
    vc_jw_key(&w, "source");
    char source[32]; /* a VM's 9p tag for volume i (src/hv/qemu.c) */
    snprintf(source, sizeof source, "vcvol%zu", i);
    vc_jw_string(&w, ninep ? source : v->host_path);
    vc_jw_key(&w, "read_only");
    vc_jw_bool(&w, v->read_only);
    vc_jw_end(&w, '}');
  }
  vc_jw_end(&w, ']');
  if (pod->network != NULL) {
    /* Lua encoded it; an object that does not parse is not sent. */
    vc_json_t *net = NULL;
    if (vc_json_parse(pod->network, pod->network_len, &net, err) < 0)
      return vc_error_prefix(err, "create_pod: network");
    bool object = net->type == VC_JSON_OBJECT;
    vc_json_free(net);
    if (!object)
      return vc_fail(err, EINVAL, "create_pod: network: not an object");
    vc_jw_key(&w, "network");
    vc_jw_raw(&w, pod->network, pod->network_len);
  }
  return call(a, &w, id, REPLY_MS, NULL, err);
}

static int unix_destroy_pod(vc_agent_t *a, vc_err_t *err) {
  return simple(a, "destroy_pod", NULL, NULL, err);
}

static void write_seccomp(vc_jw_t *w, const struct vc_seccomp *sc) {
  vc_jw_key(w, "seccomp");
  if (sc == NULL) {
    vc_jw_null(w);
    return;
  }
  vc_jw_object(w);
  vc_jw_key(w, "defaultAction");
  vc_jw_string(w, sc->default_action);
  if (sc->default_errno >= 0) {
    vc_jw_key(w, "defaultErrnoRet");
    vc_jw_int(w, sc->default_errno);
  }
  write_strv(w, "architectures", sc->architectures);
  vc_jw_key(w, "syscalls");
  vc_jw_array(w);
  for (size_t i = 0; i < sc->n_rules; i++) {
    const struct vc_seccomp_rule *r = &sc->rules[i];
    vc_jw_object(w);
    write_strv(w, "names", r->names);
    vc_jw_key(w, "action");
    vc_jw_string(w, r->action);
    if (r->errno_ret >= 0) {
      vc_jw_key(w, "errnoRet");
      vc_jw_int(w, r->errno_ret);
    }
    vc_jw_key(w, "args");
    vc_jw_array(w);
    for (size_t j = 0; j < r->n_args; j++) {
      vc_jw_object(w);
      vc_jw_key(w, "index");
      vc_jw_int(w, r->args[j].index);
      vc_jw_key(w, "value");
      vc_jw_int(w, (long long)r->args[j].value);
      vc_jw_key(w, "valueTwo");
      vc_jw_int(w, (long long)r->args[j].value_two);
      vc_jw_key(w, "op");
      vc_jw_string(w, r->args[j].op);
      vc_jw_end(w, '}');
    }
    vc_jw_end(w, ']');
    vc_jw_end(w, '}');
  }
  vc_jw_end(w, ']');
  vc_jw_end(w, '}');
}

static void write_security(vc_jw_t *w, const struct vc_security *s) {
  vc_jw_key(w, "security");
  vc_jw_object(w);
  vc_jw_key(w, "privileged");
  vc_jw_bool(w, s->privileged);
  vc_jw_key(w, "no_new_privileges");
  vc_jw_bool(w, s->no_new_privileges);
  vc_jw_key(w, "read_only_rootfs");
  vc_jw_bool(w, s->read_only_rootfs);
  write_strv(w, "capabilities", s->capabilities);
  if (s->cap_sets) {
    vc_jw_key(w, "capability_sets");
    vc_jw_object(w);
    write_strv(w, "effective", s->cap_effective);
    write_strv(w, "permitted", s->cap_permitted);
    write_strv(w, "inheritable", s->cap_inheritable);
    write_strv(w, "ambient", s->cap_ambient);
    vc_jw_end(w, '}');
  }
  write_strv(w, "masked_paths", s->masked_paths);
  write_strv(w, "readonly_paths", s->readonly_paths);
  vc_jw_key(w, "rlimits");
  vc_jw_array(w);
  for (size_t i = 0; i < s->n_rlimits; i++) {
    vc_jw_object(w);
    vc_jw_key(w, "type");
    vc_jw_string(w, s->rlimits[i].type);
    vc_jw_key(w, "soft");
    vc_jw_int(w, s->rlimits[i].soft);
    vc_jw_key(w, "hard");
    vc_jw_int(w, s->rlimits[i].hard);
    vc_jw_end(w, '}');
  }
  vc_jw_end(w, ']');
  write_seccomp(w, s->seccomp);
  vc_jw_end(w, '}');
}

static int unix_create_container(vc_agent_t *a, const vc_container_spec_t *s,
                                 vc_err_t *err) {
  struct conn *c = conn_of(a, err);
  if (c == NULL)
    return -1;
  cleanup_jw vc_jw_t w;
  vc_jw_init(&w);
  long long id = begin(c, &w, "create_container");
  vc_jw_key(&w, "container");
  vc_jw_object(&w);
  vc_jw_key(&w, "id");
  vc_jw_string(&w, s->id);
  vc_jw_key(&w, "rootfs");
  vc_jw_string(&w, s->rootfs);
  if (s->namespaces_of != NULL) {
    vc_jw_key(&w, "namespaces_of");
    vc_jw_string(&w, s->namespaces_of);
  }
  write_process(&w, &s->process);
  vc_jw_key(&w, "terminal");
  vc_jw_bool(&w, s->process.terminal);
  vc_jw_key(&w, "stdin");
  vc_jw_bool(&w, s->process.stdin);
  if (s->process.terminal) {
    unsigned rows, cols; /* the size of vc's terminal, if it has one */
    vc_term_size(isatty(STDOUT_FILENO) ? STDOUT_FILENO : -1, &rows, &cols);
    vc_jw_key(&w, "rows");
    vc_jw_int(&w, rows);
    vc_jw_key(&w, "cols");
    vc_jw_int(&w, cols);
  }
  vc_jw_key(&w, "mounts");
  vc_jw_array(&w);
  for (size_t i = 0; i < s->n_mounts; i++) {
    vc_jw_object(&w);
    if (s->mounts[i].volume != NULL) {
      vc_jw_key(&w, "volume");
      vc_jw_string(&w, s->mounts[i].volume);
    } else if (s->mounts[i].source != NULL) {
      vc_jw_key(&w, "source");
      vc_jw_string(&w, s->mounts[i].source);
    } else {
      vc_jw_key(&w, "tmpfs");
      vc_jw_object(&w);
      if (s->mounts[i].tmpfs_size_mib > 0) {
        vc_jw_key(&w, "size_mib");
        vc_jw_int(&w, s->mounts[i].tmpfs_size_mib);
      }
      vc_jw_key(&w, "mode");
      vc_jw_int(&w, s->mounts[i].tmpfs_mode ? s->mounts[i].tmpfs_mode : 01777);
      vc_jw_end(&w, '}');
    }
    vc_jw_key(&w, "path");
    vc_jw_string(&w, s->mounts[i].path);
    vc_jw_key(&w, "read_only");
    vc_jw_bool(&w, s->mounts[i].read_only);
    vc_jw_end(&w, '}');
  }
  vc_jw_end(&w, ']');
  write_resources(&w, &s->resources);
  write_security(&w, &s->security);
  if (s->n_sysctls > 0) {
    vc_jw_key(&w, "sysctl");
    vc_jw_object(&w);
    for (size_t i = 0; i < s->n_sysctls; i++) {
      vc_jw_key(&w, s->sysctls[i].key);
      vc_jw_string(&w, s->sysctls[i].value);
    }
    vc_jw_end(&w, '}');
  }
  vc_jw_end(&w, '}');
  return call(a, &w, id, REPLY_MS, NULL, err);
}

static int unix_start_container(vc_agent_t *a, const char *cid,
                                vc_err_t *err) {
  return simple(a, "start_container", cid, NULL, err);
}

static int unix_stop_container(vc_agent_t *a, const char *cid,
                               double timeout_s, vc_err_t *err) {
  struct conn *c = conn_of(a, err);
  if (c == NULL)
    return -1;
  cleanup_jw vc_jw_t w;
  vc_jw_init(&w);
  long long id = begin(c, &w, "stop_container");
  vc_jw_key(&w, "container_id");
  vc_jw_string(&w, cid);
  vc_jw_key(&w, "timeout_ms");
  vc_jw_int(&w, (long long)(timeout_s * 1000));
  return call(a, &w, id, (int)(timeout_s * 1000) + REPLY_MS, NULL, err);
}

static int unix_remove_container(vc_agent_t *a, const char *cid,
                                 vc_err_t *err) {
  return simple(a, "remove_container", cid, NULL, err);
}

static int unix_freeze(vc_agent_t *a, const char *cid, bool frozen,
                       vc_err_t *err) {
  return simple(a, frozen ? "pause_container" : "resume_container", cid, NULL,
                err);
}

static int unix_update_container(vc_agent_t *a, const char *cid,
                                 const struct vc_resources *r, vc_err_t *err) {
  struct conn *c = conn_of(a, err);
  if (c == NULL)
    return -1;
  cleanup_jw vc_jw_t w;
  vc_jw_init(&w);
  long long id = begin(c, &w, "update_container");
  vc_jw_key(&w, "container_id");
  vc_jw_string(&w, cid);
  write_resources(&w, r);
  return call(a, &w, id, REPLY_MS, NULL, err);
}

static int unix_signal(vc_agent_t *a, const char *cid, int sig, bool all,
                       vc_err_t *err) {
  struct conn *c = conn_of(a, err);
  if (c == NULL)
    return -1;
  cleanup_jw vc_jw_t w;
  vc_jw_init(&w);
  long long id = begin(c, &w, "signal");
  vc_jw_key(&w, "container_id");
  vc_jw_string(&w, cid);
  vc_jw_key(&w, "signal");
  vc_jw_int(&w, sig);
  if (all) {
    vc_jw_key(&w, "all");
    vc_jw_bool(&w, true);
  }
  return call(a, &w, id, REPLY_MS, NULL, err);
}

static int write_all(int fd, const char *p, size_t n, vc_err_t *err) {
  while (n > 0) {
    ssize_t k = write(fd, p, n);
    if (k < 0 && errno == EINTR)
      continue;
    if (k < 0)
      return vc_error(err, errno, "output");
    p += k;
    n -= (size_t)k;
  }
  return 0;
}

/* An output event's stream, time and bytes (*bytes owned by the caller). */
static int output_data(const vc_json_t *ev, int *stream, long long *ms,
                       char **bytes, size_t *n, vc_err_t *err) {
  const char *name = vc_json_get_string(ev, "stream");
  const vc_json_t *data = vc_json_get(ev, "data");
  if (name == NULL || data == NULL || data->type != VC_JSON_STRING ||
      (strcmp(name, "stdout") != 0 && strcmp(name, "stderr") != 0))
    return vc_fail(err, EPROTO, "agent: malformed output event");
  *stream = strcmp(name, "stderr") == 0 ? 2 : 1;
  *ms = 0;
  vc_json_get_int(ev, "time", ms);
  if (vc_base64_decode(data->string, data->len, bytes, n, err) < 0)
    return vc_error_prefix(err, "agent: output event");
  return 0;
}

/* Copy one output event's data to its descriptor. */
static int output_event(const vc_json_t *ev, int out_fd, int err_fd,
                        vc_err_t *err) {
  int stream;
  long long ms;
  cleanup_free char *bytes = NULL;
  size_t n;
  if (output_data(ev, &stream, &ms, &bytes, &n, err) < 0)
    return -1;
  /* A reader that went away (a closed pipe) does not stop the process. */
  if (write_all(stream == 2 ? err_fd : out_fd, bytes, n, err) < 0 &&
      err->errnum != EPIPE)
    return -1;
  return 0;
}

/* The end of a stream: its exit event's code, or an error. */
static int exit_event(const vc_json_t *ev, int *exit_code, vc_err_t *err) {
  const char *kind = vc_json_get_string(ev, "event");
  long long code;
  if (vc_json_get(ev, "ok") != NULL && !vc_json_get_bool(ev, "ok", true)) {
    const char *why = vc_json_get_string(ev, "error");
    return vc_fail(err, EPROTO, "agent: %s", why != NULL ? why : "error");
  }
  if (kind == NULL || strcmp(kind, "exit") != 0 ||
      vc_json_get_int(ev, "exit_code", &code) < 0)
    return vc_fail(err, EPROTO, "agent: malformed exec event");
  *exit_code = (int)code;
  return 0;
}

/* Bytes of stdin per frame: base64 makes them 4/3 as many, well under the
 * frame limit. */
#define STDIN_CHUNK (64 * 1024)

/* Frames (length prefixes included) waiting to go to the agent. */
struct outbuf {
  char *buf;
  size_t len, off, cap;
};

static int out_append(struct outbuf *o, vc_jw_t *w, vc_err_t *err) {
  const char *text;
  size_t len;
  vc_jw_end(w, '}');
  if (vc_jw_finish(w, &text, &len, err) < 0)
    return -1;
  if (o->off == o->len)
    o->off = o->len = 0;
  if (o->len + len + 4 > o->cap) {
    size_t cap = o->len + len + 4;
    char *p = realloc(o->buf, cap);
    if (p == NULL)
      return vc_error(err, ENOMEM, "stdin");
    o->buf = p;
    o->cap = cap;
  }
  unsigned char head[4] = {len >> 24, len >> 16, len >> 8, len};
  memcpy(o->buf + o->len, head, 4);
  memcpy(o->buf + o->len + 4, text, len);
  o->len += len + 4;
  return 0;
}

/* {"id": id, "op": "stdin", "data": ...}, or close_stdin when data is NULL. */
static int stdin_frame(struct outbuf *o, long long id, const char *data,
                       size_t n, vc_err_t *err) {
  cleanup_jw vc_jw_t w;
  vc_jw_init(&w);
  vc_jw_object(&w);
  vc_jw_key(&w, "id");
  vc_jw_int(&w, id);
  vc_jw_key(&w, "op");
  vc_jw_string(&w, data != NULL ? "stdin" : "close_stdin");
  if (data != NULL) {
    vc_jw_key(&w, "data");
    vc_jw_base64(&w, data, n);
  }
  return out_append(o, &w, err);
}

static int resize_frame(struct outbuf *o, long long id, int term_fd,
                        vc_err_t *err) {
  unsigned rows, cols;
  vc_term_size(term_fd, &rows, &cols);
  cleanup_jw vc_jw_t w;
  vc_jw_init(&w);
  vc_jw_object(&w);
  vc_jw_key(&w, "id");
  vc_jw_int(&w, id);
  vc_jw_key(&w, "op");
  vc_jw_string(&w, "resize");
  vc_jw_key(&w, "rows");
  vc_jw_int(&w, rows);
  vc_jw_key(&w, "cols");
  vc_jw_int(&w, cols);
  return out_append(o, &w, err);
}

/* Where Ctrl-P Ctrl-Q (podman's detach keys) ends in data[0..n), or 0;
 * *held says a Ctrl-P ended the previous chunk (it was held back). */
static size_t detach_at(const char *data, size_t n, bool held) {
  for (size_t i = 0; i < n; i++)
    if (data[i] == 0x11 && (i > 0 ? data[i - 1] == 0x10 : held))
      return i + 1;
  return 0;
}

/* Write what is queued, blocking (a detach's last bytes). */
static void out_flush(struct conn *c, struct outbuf *o) {
  while (o->off < o->len) {
    ssize_t n = send(c->fd, o->buf + o->off, o->len - o->off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return;
    o->off += (size_t)n;
  }
}

/* A stream (an exec's or an attach's) after its reply: output events to
 * io's descriptors, io->in_fd's bytes as stdin frames (read only while
 * nothing is queued: the agent takes a frame only when the process's
 * stdin has room, so a slow process slows down whoever writes to in_fd),
 * window sizes on SIGWINCH, until the exit event, a detach or a signal. */
static int stream(vc_agent_t *a, struct conn *c, long long id, vc_stdio_t *io,
                  int *exit_code, vc_err_t *err) {
  struct outbuf o = {0};
  cleanup_free char *chunk = io->in_fd >= 0 ? malloc(STDIN_CHUNK + 1) : NULL;
  bool in_open = io->in_fd >= 0, held = false;
  int ret = -1;
  if (io->in_fd >= 0 && chunk == NULL) {
    vc_error(err, ENOMEM, "stdin");
    goto out;
  }
  for (;;) {
    struct pollfd pfd[3] = {
        {.fd = c->fd, .events = POLLIN | (o.off < o.len ? POLLOUT : 0)},
        {.fd = in_open && o.off >= o.len ? io->in_fd : -1, .events = POLLIN},
        {.fd = io->sig_fd, .events = POLLIN}};
    if (poll(pfd, 3, -1) < 0) {
      if (errno == EINTR)
        continue;
      vc_error(err, errno, "poll");
      goto out;
    }
    if (pfd[2].revents != 0) {
      struct signalfd_siginfo si;
      while (read(io->sig_fd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo != SIGWINCH) {
          io->signo = (int)si.ssi_signo;
          vc_fail(err, EINTR, "interrupted by signal %d", io->signo);
          goto out;
        }
        if (io->tty && resize_frame(&o, id, io->term_fd, err) < 0)
          goto out;
      }
    }
    if (pfd[0].revents & POLLOUT) {
      ssize_t n = send(c->fd, o.buf + o.off, o.len - o.off,
                       MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n < 0 && errno != EAGAIN && errno != EINTR) {
        vc_error(err, errno, "agent %s: stdin", a->address);
        goto out;
      }
      if (n > 0)
        o.off += (size_t)n;
    }
    if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      cleanup_json vc_json_t *ev = NULL;
      if (read_frame(a, c, id, -1, &ev, err) < 0)
        goto out;
      const char *kind = vc_json_get_string(ev, "event");
      if (kind != NULL && strcmp(kind, "output") == 0) {
        if (output_event(ev, io->out_fd, io->err_fd, err) < 0)
          goto out;
        continue;
      }
      /* exit (what of stdin is still unsent, nobody would read) */
      ret = exit_event(ev, exit_code, err);
      goto out;
    }
    if (pfd[1].revents != 0) {
      ssize_t n = read(io->in_fd, chunk + held, STDIN_CHUNK);
      if (n < 0 && (errno == EINTR || errno == EAGAIN))
        continue;
      if (n < 0) {
        vc_error(err, errno, "read stdin");
        goto out;
      }
      size_t len = (size_t)n + held;
      if (io->detach_keys && n > 0) {
        size_t end = detach_at(chunk + held, (size_t)n, held);
        if (end > 0) { /* what came before the keys goes, then we leave */
          size_t keep = held + end >= 2 ? held + end - 2 : 0;
          if (keep > 0 && stdin_frame(&o, id, chunk, keep, err) < 0)
            goto out;
          out_flush(c, &o);
          io->detached = true;
          ret = 0;
          goto out;
        }
        /* a trailing Ctrl-P waits for the next key */
        bool hold = chunk[len - 1] == 0x10;
        if (len - hold > 0 &&
            stdin_frame(&o, id, chunk, len - hold, err) < 0)
          goto out;
        if (hold)
          chunk[0] = 0x10;
        held = hold;
        continue;
      }
      /* end of file: the process's stdin is closed (after a held key) */
      if ((len > 0 && stdin_frame(&o, id, chunk, len, err) < 0) ||
          (n == 0 && stdin_frame(&o, id, NULL, 0, err) < 0))
        goto out;
      held = false;
      in_open = n > 0;
    }
  }
out:
  free(o.buf);
  /* A detach, a signal or a failure leaves the stream in the middle:
   * closing the connection ends it (the process runs on). */
  if ((ret < 0 || io->detached) && c->fd >= 0) {
    close(c->fd);
    c->fd = -1;
  }
  return ret;
}

static int unix_exec(vc_agent_t *a, const char *cid, const vc_process_t *p,
                     vc_stdio_t *io, int *exit_code, vc_err_t *err) {
  struct conn *c = conn_of(a, err);
  if (c == NULL)
    return -1;
  cleanup_jw vc_jw_t w;
  vc_jw_init(&w);
  long long id = begin(c, &w, "exec");
  vc_jw_key(&w, "container_id");
  vc_jw_string(&w, cid);
  vc_jw_key(&w, "process");
  vc_jw_object(&w);
  write_process(&w, p);
  vc_jw_key(&w, "stdin");
  vc_jw_bool(&w, io->in_fd >= 0);
  vc_jw_key(&w, "terminal");
  vc_jw_bool(&w, io->tty);
  if (io->tty) {
    unsigned rows = io->rows, cols = io->cols;
    if (rows == 0 || cols == 0)
      vc_term_size(io->term_fd, &rows, &cols);
    vc_jw_key(&w, "rows");
    vc_jw_int(&w, rows);
    vc_jw_key(&w, "cols");
    vc_jw_int(&w, cols);
  }
  vc_jw_end(&w, '}');
  vc_jw_key(&w, "stream");
  vc_jw_bool(&w, true);
  if (call(a, &w, id, REPLY_MS, NULL, err) < 0)
    return -1;
  return stream(a, c, id, io, exit_code, err);
}

static int unix_attach(vc_agent_t *a, const char *cid, vc_stdio_t *io,
                       int *exit_code, vc_err_t *err) {
  struct conn *c = conn_of(a, err);
  if (c == NULL)
    return -1;
  cleanup_jw vc_jw_t w;
  vc_jw_init(&w);
  long long id = begin(c, &w, "attach");
  vc_jw_key(&w, "container_id");
  vc_jw_string(&w, cid);
  if (call(a, &w, id, REPLY_MS, NULL, err) < 0)
    return -1;
  if (io->ready_path != NULL) {
    int fd = open(io->ready_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
      return vc_error(err, errno, "attach: %s", io->ready_path);
    close(fd);
  }
  /* The terminal takes the host's size now: it may have changed since
   * the container was made. */
  struct outbuf o = {0};
  if (io->tty && io->term_fd >= 0) {
    if (resize_frame(&o, id, io->term_fd, err) < 0)
      return -1;
    out_flush(c, &o);
    free(o.buf);
  }
  return stream(a, c, id, io, exit_code, err);
}

/* Each {stream, time, data} of a logs reply to fn. */
static int past_chunks(const vc_json_t *list, vc_chunk_fn fn, void *ud,
                       vc_err_t *err) {
  if (list == NULL || list->type != VC_JSON_ARRAY)
    return vc_fail(err, EPROTO, "agent: logs: no chunks in the reply");
  for (size_t i = 0; i < list->n; i++) {
    int s;
    long long ms;
    cleanup_free char *bytes = NULL;
    size_t n;
    if (output_data(list->items[i], &s, &ms, &bytes, &n, err) < 0)
      return -1;
    int r = fn(ud, s, ms, bytes, n, false);
    if (r != 0)
      return vc_fail(err, r, "logs");
  }
  return 0;
}

static int unix_logs(vc_agent_t *a, const char *cid, bool follow,
                     vc_chunk_fn fn, void *ud, bool *truncated,
                     vc_err_t *err) {
  struct conn *c = conn_of(a, err);
  if (c == NULL)
    return -1;
  cleanup_jw vc_jw_t w;
  vc_jw_init(&w);
  long long id = begin(c, &w, "logs");
  vc_jw_key(&w, "container_id");
  vc_jw_string(&w, cid);
  vc_jw_key(&w, "follow");
  vc_jw_bool(&w, follow);
  cleanup_json vc_json_t *r = NULL;
  if (call(a, &w, id, REPLY_MS, &r, err) < 0)
    return -1;
  *truncated = vc_json_get_bool(r, "truncated", false);
  bool more = follow && !vc_json_get_bool(r, "exited", true);
  if (past_chunks(vc_json_get(r, "chunks"), fn, ud, err) < 0)
    goto broken;
  while (more) {
    cleanup_json vc_json_t *ev = NULL;
    if (read_frame(a, c, id, -1, &ev, err) < 0)
      return -1;
    const char *kind = vc_json_get_string(ev, "event");
    if (kind == NULL || strcmp(kind, "output") != 0) {
      int code;
      return exit_event(ev, &code, err);
    }
    int s;
    long long ms;
    cleanup_free char *bytes = NULL;
    size_t n;
    if (output_data(ev, &s, &ms, &bytes, &n, err) < 0)
      goto broken;
    int ret = fn(ud, s, ms, bytes, n, true);
    if (ret != 0) {
      vc_fail(err, ret, "logs");
      goto broken;
    }
  }
  return 0;
broken: /* the stream goes on without us: close it */
  if (more && c->fd >= 0) {
    close(c->fd);
    c->fd = -1;
  }
  return -1;
}

static int unix_wait(vc_agent_t *a, const char *cid, double timeout_s,
                     int *exit_code, vc_err_t *err) {
  struct conn *c = conn_of(a, err);
  if (c == NULL)
    return -1;
  cleanup_jw vc_jw_t w;
  vc_jw_init(&w);
  long long id = begin(c, &w, "wait");
  vc_jw_key(&w, "container_id");
  vc_jw_string(&w, cid);
  vc_jw_key(&w, "timeout_ms");
  long long ms = timeout_s < 0 ? -1 : (long long)(timeout_s * 1000);
  vc_jw_int(&w, ms);
  cleanup_json vc_json_t *r = NULL;
  if (call(a, &w, id, ms < 0 ? -1 : (int)ms + REPLY_MS, &r, err) < 0)
    return -1;
  long long code;
  if (vc_json_get_int(r, "exit_code", &code) < 0)
    return vc_fail(err, EPROTO, "agent: wait: no exit_code in the reply");
  *exit_code = (int)code;
  return 0;
}

static int unix_status(vc_agent_t *a, const char *cid, vc_ctr_status_t *st,
                       vc_err_t *err) {
  cleanup_json vc_json_t *r = NULL;
  if (simple(a, "status", cid, &r, err) < 0)
    return -1;
  const char *state = vc_json_get_string(r, "state");
  long long pid = 0, code = -1;
  vc_json_get_int(r, "pid", &pid);
  vc_json_get_int(r, "exit_code", &code);
  if (state == NULL)
    return vc_fail(err, EPROTO, "agent: status: no state in the reply");
  st->state = strcmp(state, "running") == 0  ? VC_CTR_RUNNING
              : strcmp(state, "exited") == 0 ? VC_CTR_EXITED
                                             : VC_CTR_CREATED;
  st->pid = (int)pid;
  st->exit_code = (int)code;
  st->oom = vc_json_get_bool(r, "oom", false);
  long long seccomp = -1;
  const char *cap_eff = vc_json_get_string(r, "cap_eff");
  st->seccomp = vc_json_get_int(r, "seccomp", &seccomp) == 0 ? (int)seccomp : -1;
  st->no_new_privs = vc_json_get_bool(r, "no_new_privs", false);
  if (cap_eff != NULL && strlen(cap_eff) < sizeof st->cap_eff &&
      strspn(cap_eff, "0123456789abcdef") == strlen(cap_eff))
    snprintf(st->cap_eff, sizeof st->cap_eff, "%s", cap_eff);
  return 0;
}

static int unix_list_processes(vc_agent_t *a, const char *cid,
                               vc_proc_list_t *out, vc_err_t *err) {
  cleanup_json vc_json_t *r = NULL;
  if (simple(a, "list_processes", cid, &r, err) < 0)
    return -1;
  const vc_json_t *list = vc_json_get(r, "processes");
  if (list == NULL || list->type != VC_JSON_ARRAY)
    return vc_fail(err, EPROTO, "agent: list_processes: no processes");
  out->v = calloc(list->n + 1, sizeof *out->v);
  if (out->v == NULL)
    return vc_error(err, ENOMEM, "agent");
  for (size_t i = 0; i < list->n; i++) {
    long long pid = 0;
    const char *cmd = vc_json_get_string(list->items[i], "cmd");
    vc_json_get_int(list->items[i], "pid", &pid);
    out->v[i].pid = (int)pid;
    out->v[i].cmd = strdup(cmd != NULL ? cmd : "");
    out->n++;
    if (out->v[i].cmd == NULL) {
      vc_proc_list_free(out);
      return vc_error(err, ENOMEM, "agent");
    }
  }
  return 0;
}

static unsigned long long uint_of(const vc_json_t *r, const char *key) {
  long long v = 0;
  return vc_json_get_int(r, key, &v) == 0 && v > 0 ? (unsigned long long)v : 0;
}

static int unix_stats(vc_agent_t *a, const char *cid, vc_ctr_stats_t *out,
                      vc_err_t *err) {
  cleanup_json vc_json_t *r = NULL;
  if (simple(a, "stats", cid, &r, err) < 0)
    return -1;
  out->cpu_ns = uint_of(r, "cpu_ns");
  out->memory_bytes = uint_of(r, "memory_bytes");
  out->memory_limit_bytes = uint_of(r, "memory_limit_bytes");
  out->pids = uint_of(r, "pids");
  return 0;
}

static int unix_read_output(vc_agent_t *a, const char *cid, vc_output_t *out,
                            vc_err_t *err) {
  cleanup_json vc_json_t *r = NULL;
  if (simple(a, "read_output", cid, &r, err) < 0)
    return -1;
  const vc_json_t *o = vc_json_get(r, "stdout"), *e = vc_json_get(r, "stderr");
  if (o == NULL || e == NULL || o->type != VC_JSON_STRING ||
      e->type != VC_JSON_STRING)
    return vc_fail(err, EPROTO, "agent: read_output: malformed reply");
  if (vc_base64_decode(o->string, o->len, &out->out, &out->out_len, err) < 0)
    return -1;
  if (vc_base64_decode(e->string, e->len, &out->err, &out->err_len, err) < 0) {
    vc_output_free(out);
    return -1;
  }
  out->truncated = vc_json_get_bool(r, "truncated", false);
  return 0;
}

static int unix_ping(vc_agent_t *a, vc_err_t *err) {
  return simple(a, "ping", NULL, NULL, err);
}

static int unix_shutdown(vc_agent_t *a, vc_err_t *err) {
  return simple(a, "shutdown", NULL, NULL, err);
}

static void unix_close(vc_agent_t *a) {
  struct conn *c = a->priv;
  if (c == NULL)
    return;
  if (c->fd >= 0 && a->ops == &vc_agent_serial_ops) {
    /* (a dead agent or a stream still open: the port's hang-up does it) */
    vc_err_t ignored;
    cleanup_jw vc_jw_t w;
    vc_jw_init(&w);
    long long id = begin(c, &w, "bye");
    call(a, &w, id, 2000, NULL, &ignored);
  }
  if (c->fd >= 0)
    close(c->fd);
  vc_closep(&c->lock_fd); /* after the socket: the next client may come */
  free(c);
  a->priv = NULL;
}

#define UNIX_OPS                                                       \
  .connect = unix_connect, .create_pod = unix_create_pod,              \
  .destroy_pod = unix_destroy_pod,                                     \
  .create_container = unix_create_container,                           \
  .start_container = unix_start_container,                             \
  .stop_container = unix_stop_container,                               \
  .remove_container = unix_remove_container, .signal = unix_signal,    \
  .update_container = unix_update_container, .freeze = unix_freeze,    \
  .exec = unix_exec, .attach = unix_attach, .logs = unix_logs,         \
  .wait = unix_wait, .status = unix_status,                            \
  .list_processes = unix_list_processes, .stats = unix_stats,          \
  .read_output = unix_read_output, .ping = unix_ping,                  \
  .shutdown = unix_shutdown, .close = unix_close

const struct vc_agent_ops vc_agent_unix_ops = {.scheme = "unix", UNIX_OPS};
const struct vc_agent_ops vc_agent_serial_ops = {.scheme = "serial", UNIX_OPS};

