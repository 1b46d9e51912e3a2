/* loop.c - the event loop: clients, process output, child exits and
 * deadlines, all through one poll(2).
 *
 * A connection reads requests only while no reply is owed (busy), so that
 * replies keep the order of requests.  Dropped connections are freed at
 * the top of the loop, never while a handler may still hold them; freed
 * processes set a->changed so that a stale poll result is not used. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agentd.h"
#include "sys/cleanup.h"

#define READ_CHUNK 65536
#define PORT_RETRY_MS 100

/* --- output to clients ------------------------------------------------- */

static void conn_write(agent_t *a, conn_t *c) {
  while (c->out_off < c->out_len) {
    ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno == EAGAIN)
      return;
    if (n < 0) {
      conn_drop(a, c);
      return;
    }
    c->out_off += (size_t)n;
  }
  c->out_off = c->out_len = 0;
}

static void conn_append(agent_t *a, conn_t *c, const void *data, size_t n) {
  if (c->out_len + n > c->out_cap) {
    size_t cap = c->out_cap ? c->out_cap : 4096;
    while (cap < c->out_len + n)
      cap *= 2;
    char *p = realloc(c->out, cap);
    if (p == NULL) {
      conn_drop(a, c);
      return;
    }
    c->out = p;
    c->out_cap = cap;
  }
  memcpy(c->out + c->out_len, data, n);
  c->out_len += n;
}

/* Queue w's text as one frame, and try to send it now. */
void conn_send(agent_t *a, conn_t *c, vc_jw_t *w) {
  const char *text;
  size_t len;
  vc_err_t err = {0};
  if (c == NULL || c->dead)
    return;
  if (vc_jw_finish(w, &text, &len, &err) < 0) {
    agent_log(a, "reply: %s", err.msg);
    return;
  }
  if (c->out_len - c->out_off + len > AGENT_OUT_MAX) {
    agent_log(a, "client reads too slowly: dropped");
    conn_drop(a, c);
    return;
  }
  unsigned char head[4] = {len >> 24, len >> 16, len >> 8, len};
  conn_append(a, c, head, 4);
  conn_append(a, c, text, len);
  if (!c->dead)
    conn_write(a, c);
}

void conn_send_error(agent_t *a, conn_t *c, long long id, const vc_err_t *e) {
  vc_jw_t w;
  vc_jw_init(&w);
  vc_jw_object(&w);
  vc_jw_key(&w, "id");
  vc_jw_int(&w, id);
  vc_jw_key(&w, "ok");
  vc_jw_bool(&w, false);
  vc_jw_key(&w, "error");
  vc_jw_string(&w, e->msg);
  vc_jw_key(&w, "errno");
  vc_jw_int(&w, e->errnum);
  vc_jw_end(&w, '}');
  conn_send(a, c, &w);
  vc_jw_free(&w);
}

/* --- connections ------------------------------------------------------- */

/* Forget what the client was waiting for; stops still escalate.  What is
 * queued for it is dropped unless keep_output (a bye's reply). */
static void conn_forget(agent_t *a, conn_t *c, bool keep_output) {
  for (pending_t **pp = &a->pending; *pp != NULL;) {
    pending_t *q = *pp;
    if (q->conn == c && q->kind != PEND_STOP) {
      *pp = q->next;
      free(q);
      continue;
    }
    if (q->conn == c)
      q->conn = NULL;
    pp = &q->next;
  }
  for (ctr_t *k = a->ctrs; k != NULL; k = k->next)
    for (proc_t *p = &k->init; p != NULL;
         p = p == &k->init ? k->execs : p->next)
      if (p->stream == c) {
        p->stream = NULL;
        /* An exec's stdin ends with its client, and its terminal hangs
         * up (its session gets SIGHUP, as when a terminal closes); an
         * init's wait for the next attach (a detach). */
        if (p != &k->init) {
          stdin_close(p);
          if (p->tty) {
            vc_closep(&p->out_fd);
            p->out_fd = -1;
          }
        }
      }
  c->busy = c->hello = c->bye = false;
  c->in_len = 0;
  if (!keep_output)
    c->out_len = c->out_off = 0;
  vc_frame_reader_free(&c->reader);
  vc_frame_reader_init(&c->reader);
}

void conn_drop(agent_t *a, conn_t *c) {
  if (c->port) {
    /* The host went away from the serial port: start over, keep the fd. */
    conn_forget(a, c, false);
    c->retry_at = vc_now_ms() + PORT_RETRY_MS;
    return;
  }
  c->dead = true;
}

void conn_free(agent_t *a, conn_t *c) {
  conn_forget(a, c, false);
  for (conn_t **pp = &a->conns; *pp != NULL; pp = &(*pp)->next)
    if (*pp == c) {
      *pp = c->next;
      break;
    }
  vc_closep(&c->fd);
  vc_frame_reader_free(&c->reader);
  free(c->in);
  free(c->out);
  free(c);
}

conn_t *conn_add(agent_t *a, int fd) {
  conn_t *c = calloc(1, sizeof *c);
  if (c == NULL) {
    close(fd);
    return NULL;
  }
  c->fd = fd;
  vc_frame_reader_init(&c->reader);
  c->next = a->conns;
  a->conns = c;
  return c;
}

/* Feed what was read to the frame reader, one request at a time. */
static void conn_input(agent_t *a, conn_t *c) {
  size_t off = 0;
  proc_t *in = NULL; /* while c streams: the process taking its stdin */
  while (off < c->in_len && !c->dead && !a->quit && !c->bye &&
         (!c->busy || (in = stdin_ready(a, c)) != NULL)) {
    size_t used = 0;
    uint32_t bad = 0;
    vc_frame_event_t ev = vc_frame_feed(&c->reader, c->in + off,
                                        c->in_len - off, &used, &bad);
    off += used;
    vc_err_t err = {0};
    switch (ev) {
    case VC_FRAME_NONE:
      break;
    case VC_FRAME_READY:
      if (c->busy)
        stdin_frame(a, c, in, c->reader.body, c->reader.body_len);
      else
        dispatch(a, c, c->reader.body, c->reader.body_len);
      break;
    case VC_FRAME_BAD_LENGTH:
      if (bad == 0)
        vc_fail(&err, EBADMSG, "empty message (length 0)");
      else
        vc_fail(&err, EMSGSIZE, "message too large (%u bytes, at most %u)",
                bad, VC_PROTO_MAX);
      conn_send_error(a, c, 0, &err);
      break;
    case VC_FRAME_FATAL:
      if (bad > VC_PROTO_MAX) {
        vc_fail(&err, EMSGSIZE, "message too large (%u bytes, at most %u)",
                bad, VC_PROTO_MAX);
        conn_send_error(a, c, 0, &err);
      }
      agent_log(a, "client dropped: %s", bad ? err.msg : "out of memory");
      conn_drop(a, c);
      return;
    }
  }
  if (c->dead)
    return;
  if (c->bye) {
    /* Whatever follows is the next client's (a serial port's next host):
     * it finds a connection as new, once the bye's reply is out. */
    conn_forget(a, c, true);
    return;
  }
  memmove(c->in, c->in + off, c->in_len - off);
  c->in_len -= off;
}

static void conn_read(agent_t *a, conn_t *c) {
  if (c->in_cap - c->in_len < READ_CHUNK) {
    char *p = realloc(c->in, c->in_len + READ_CHUNK);
    if (p == NULL)
      return;
    c->in = p;
    c->in_cap = c->in_len + READ_CHUNK;
  }
  ssize_t n = read(c->fd, c->in + c->in_len, READ_CHUNK);
  if (n < 0 && (errno == EINTR || errno == EAGAIN))
    return;
  if (n <= 0) {
    conn_drop(a, c);
    return;
  }
  c->in_len += (size_t)n;
  conn_input(a, c);
}

static void accept_client(agent_t *a) {
  int fd = accept4(a->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) {
    if (errno != EAGAIN && errno != EINTR)
      agent_log(a, "accept: %s", strerror(errno));
    return;
  }
  conn_add(a, fd);
}

/* --- processes --------------------------------------------------------- */

void output_event(agent_t *a, conn_t *c, long long id, int stream,
                  int64_t ms, const char *data, size_t n) {
  vc_jw_t w;
  vc_jw_init(&w);
  vc_jw_object(&w);
  vc_jw_key(&w, "id");
  vc_jw_int(&w, id);
  vc_jw_key(&w, "event");
  vc_jw_string(&w, "output");
  vc_jw_key(&w, "stream");
  vc_jw_string(&w, stream == 1 ? "stdout" : "stderr");
  vc_jw_key(&w, "time");
  vc_jw_int(&w, ms);
  vc_jw_key(&w, "data");
  vc_jw_base64(&w, data, n);
  vc_jw_end(&w, '}');
  conn_send(a, c, &w);
  vc_jw_free(&w);
}

/* To each client that streams or follows p's output. */
static void stream_event(agent_t *a, proc_t *p, int stream, int64_t ms,
                         const char *data, size_t n) {
  for (pending_t *q = a->pending; q != NULL; q = q->next)
    if (q->proc == p && q->conn != NULL &&
        (q->kind == PEND_STREAM || q->kind == PEND_FOLLOW))
      output_event(a, q->conn, q->id, stream, ms, data, n);
}

void proc_read(agent_t *a, proc_t *p, int which, bool drain) {
  int *fd = which == 1 ? &p->out_fd : &p->err_fd;
  char buf[READ_CHUNK];
  while (*fd >= 0) {
    ssize_t n = read(*fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno == EAGAIN)
      return;
    if (n <= 0) {
      close(*fd);
      *fd = -1;
      return;
    }
    int64_t ms = vc_wall_ms();
    ring_put(which == 1 ? &p->out : &p->err, buf, (size_t)n, ++p->seq, ms);
    stream_event(a, p, which, ms, buf, (size_t)n);
    if (!drain)
      return;
  }
}

pending_t *pending_add(agent_t *a, pending_kind_t kind, conn_t *c,
                       long long id, proc_t *p, int64_t deadline) {
  pending_t *q = calloc(1, sizeof *q);
  if (q == NULL)
    return NULL;
  *q = (pending_t){.next = a->pending, .kind = kind, .conn = c, .id = id,
                   .proc = p, .deadline = deadline};
  a->pending = q;
  c->busy = true;
  return q;
}

/* The reply a pending request was waiting for; the client may go on. */
static void pending_settle(agent_t *a, pending_t *q) {
  proc_t *p = q->proc;
  if (q->conn != NULL && !q->conn->dead) {
    vc_jw_t w;
    vc_jw_init(&w);
    vc_jw_object(&w);
    vc_jw_key(&w, "id");
    vc_jw_int(&w, q->id);
    if (q->kind == PEND_STREAM || q->kind == PEND_FOLLOW) {
      vc_jw_key(&w, "event");
      vc_jw_string(&w, "exit");
    } else {
      vc_jw_key(&w, "ok");
      vc_jw_bool(&w, true);
    }
    exit_result(&w, p);
    vc_jw_end(&w, '}');
    conn_send(a, q->conn, &w);
    vc_jw_free(&w);
    q->conn->busy = false;
  }
  if (q->kind == PEND_STREAM && p->stream == q->conn)
    p->stream = NULL;
}

void proc_exited(agent_t *a, proc_t *p, int status) {
  ctr_t *c = p->ctr;
  p->exited = true;
  p->exit_code = WIFEXITED(status) ? WEXITSTATUS(status)
                                   : 128 + WTERMSIG(status);
  /* A SIGKILL that the memory cgroup's OOM killer counted is an OOM. */
  long long kills = cgroup_oom_kills(&c->cg);
  p->oom = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL &&
           kills > c->oom_seen;
  c->oom_seen = kills;
  stdin_close(p);
  /* Whatever it wrote before it ended comes before its exit: its output,
   * and its files on the host's folders (9p keeps writes in the guest's
   * page cache, which a host reading them at once, or a VM stopped after
   * a one-shot container, would miss). */
  proc_read(a, p, 1, true);
  proc_read(a, p, 2, true);
  pod_flush_shares(a);
  if (p == &c->init) {
    c->state = CTR_EXITED;
    vc_closep(&c->gate_fd);
    c->gate_fd = -1;
  }
  agent_log(a, "container %s: %s%s%spid %d exited %d%s", c->id,
            p->exec_id[0] ? "exec " : "", p->exec_id,
            p->exec_id[0] ? ", " : "", (int)p->pid, p->exit_code,
            p->oom ? " (oom)" : "");
  for (pending_t **pp = &a->pending; *pp != NULL;) {
    pending_t *q = *pp;
    if (q->proc != p) {
      pp = &q->next;
      continue;
    }
    *pp = q->next;
    pending_settle(a, q);
    free(q);
  }
}

void reap(agent_t *a) {
  for (;;) {
    int status;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid <= 0)
      return;
    /* Orphans re-parented to us (we are a subreaper) are just reaped. */
    for (ctr_t *c = a->ctrs; c != NULL; c = c->next) {
      proc_t *hit = c->init.pid == pid && !c->init.exited ? &c->init : NULL;
      for (proc_t *p = c->execs; hit == NULL && p != NULL; p = p->next)
        if (p->pid == pid && !p->exited)
          hit = p;
      if (hit != NULL) {
        proc_exited(a, hit, status);
        break;
      }
    }
  }
}

static void on_signal(agent_t *a) {
  struct signalfd_siginfo si;
  while (read(a->signal_fd, &si, sizeof si) == sizeof si) {
    if (si.ssi_signo == SIGCHLD)
      reap(a);
    else if (si.ssi_signo == SIGIO) {
      /* the port's host side came or went: look at the port again now */
      for (conn_t *c = a->conns; c != NULL; c = c->next)
        c->retry_at = 0;
    } else {
      agent_log(a, "signal %u: shutting down", si.ssi_signo);
      a->quit = true;
    }
  }
}

/* Deadlines that passed: a wait times out, a stop turns to SIGKILL. */
static void on_timers(agent_t *a) {
  int64_t now = vc_now_ms();
  for (pending_t **pp = &a->pending; *pp != NULL;) {
    pending_t *q = *pp;
    if (q->deadline < 0 || q->deadline > now) {
      pp = &q->next;
      continue;
    }
    if (q->kind == PEND_STOP) {
      kill(q->proc->pid, SIGKILL);
      q->deadline = -1;
      pp = &q->next;
      continue;
    }
    *pp = q->next;
    if (q->conn != NULL) {
      vc_err_t err;
      if (q->proc->exec_id[0] != '\0')
        vc_fail(&err, ETIMEDOUT, "container %s: exec %s: still running",
                q->proc->ctr->id, q->proc->exec_id);
      else
        vc_fail(&err, ETIMEDOUT, "container %s: still running",
                q->proc->ctr->id);
      conn_send_error(a, q->conn, q->id, &err);
      q->conn->busy = false;
    }
    free(q);
  }
  for (conn_t *c = a->conns; c != NULL; c = c->next)
    if (c->retry_at != 0 && c->retry_at <= now)
      c->retry_at = 0;
}

static int poll_timeout(agent_t *a) {
  int64_t next = -1;
  for (pending_t *q = a->pending; q != NULL; q = q->next)
    if (q->deadline >= 0 && (next < 0 || q->deadline < next))
      next = q->deadline;
  for (conn_t *c = a->conns; c != NULL; c = c->next)
    if (c->retry_at != 0 && (next < 0 || c->retry_at < next))
      next = c->retry_at;
  if (next < 0)
    return -1;
  int64_t left = next - vc_now_ms();
  return left < 0 ? 0 : left > 60000 ? 60000 : (int)left;
}

/* --- the loop ---------------------------------------------------------- */

enum { TAG_LISTEN, TAG_SIGNAL, TAG_CONN, TAG_OUT, TAG_ERR, TAG_IN };

typedef struct watch {
  int tag;
  void *ptr;
} watch_t;

typedef struct pollset {
  struct pollfd *fds;
  watch_t *what;
  size_t n, cap;
} pollset_t;

static void pollset_free(pollset_t *ps) {
  free(ps->fds);
  free(ps->what);
}

static int watch(pollset_t *ps, int fd, short events, int tag, void *ptr) {
  if (ps->n == ps->cap) {
    size_t cap = ps->cap ? ps->cap * 2 : 32;
    struct pollfd *fds = realloc(ps->fds, cap * sizeof *fds);
    if (fds == NULL)
      return -1;
    ps->fds = fds;
    watch_t *what = realloc(ps->what, cap * sizeof *what);
    if (what == NULL)
      return -1;
    ps->what = what;
    ps->cap = cap;
  }
  ps->fds[ps->n] = (struct pollfd){.fd = fd, .events = events};
  ps->what[ps->n++] = (watch_t){.tag = tag, .ptr = ptr};
  return 0;
}

/* Free dropped clients; let freed-up clients read on. */
static void tidy(agent_t *a) {
  for (conn_t *c = a->conns; c != NULL; c = c->next)
    if (!c->dead && c->in_len > 0 && (!c->busy || stdin_ready(a, c)))
      conn_input(a, c);
  for (conn_t **pp = &a->conns; *pp != NULL;) {
    conn_t *c = *pp;
    if (c->dead)
      conn_free(a, c);   /* unlinks c */
    else
      pp = &c->next;
  }
}

static int build(agent_t *a, pollset_t *ps) {
  ps->n = 0;
  int r = 0;
  if (a->listen_fd >= 0)
    r |= watch(ps, a->listen_fd, POLLIN, TAG_LISTEN, NULL);
  r |= watch(ps, a->signal_fd, POLLIN, TAG_SIGNAL, NULL);
  for (conn_t *c = a->conns; c != NULL; c = c->next) {
    if (c->retry_at != 0)
      continue;
    /* Hang-ups are reported even with no events asked for. */
    short ev = (!c->busy || stdin_ready(a, c) ? POLLIN : 0) |
               (c->out_len > 0 ? POLLOUT : 0);
    r |= watch(ps, c->fd, ev, TAG_CONN, c);
  }
  for (ctr_t *k = a->ctrs; k != NULL; k = k->next) {
    for (proc_t *p = &k->init; p != NULL;
         p = p == &k->init ? k->execs : p->next) {
      /* Output is read no faster than a streaming client takes it. */
      bool slow = p->stream != NULL && !p->stream->dead &&
                  p->stream->out_len - p->stream->out_off > AGENT_STREAM_HIGH;
      if (p->out_fd >= 0 && !slow)
        r |= watch(ps, p->out_fd, POLLIN, TAG_OUT, p);
      if (p->err_fd >= 0 && !slow)
        r |= watch(ps, p->err_fd, POLLIN, TAG_ERR, p);
      if (p->in_fd >= 0 && p->in_len > 0)
        r |= watch(ps, p->in_fd, POLLOUT, TAG_IN, p);
    }
  }
  return r;
}

int loop_run(agent_t *a, vc_err_t *err) {
  __attribute__((cleanup(pollset_free))) pollset_t ps = {0};
  while (!a->quit) {
    tidy(a);
    if (build(a, &ps) < 0)
      return vc_error(err, ENOMEM, "poll set");
    int n = poll(ps.fds, ps.n, poll_timeout(a));
    if (n < 0 && errno != EINTR)
      return vc_error(err, errno, "poll");
    on_timers(a);
    a->changed = false;
    for (size_t i = 0; n > 0 && i < ps.n && !a->changed && !a->quit; i++) {
      short re = ps.fds[i].revents;
      if (re == 0)
        continue;
      watch_t *w = &ps.what[i];
      switch (w->tag) {
      case TAG_LISTEN:
        accept_client(a);
        break;
      case TAG_SIGNAL:
        on_signal(a);
        break;
      case TAG_CONN: {
        conn_t *c = w->ptr;
        if (c->dead)
          break;
        /* A port whose host is away is not read even when it has data:
         * that can be the next host's, arrived before the kernel handled
         * its connection (a reply to it would fail and be dropped).  It is
         * read once the host is back (SIGIO, or the retry timer). */
        if (c->port && (re & POLLHUP)) {
          conn_drop(a, c);
          break;
        }
        if (re & POLLOUT)
          conn_write(a, c);
        if (!c->dead && (re & POLLIN))
          conn_read(a, c);
        else if (!c->dead && (re & (POLLHUP | POLLERR)))
          conn_drop(a, c);
        break;
      }
      case TAG_OUT:
      case TAG_ERR:
        proc_read(a, w->ptr, w->tag == TAG_OUT ? 1 : 2, false);
        break;
      case TAG_IN:
        stdin_flush(a, w->ptr);
        break;
      }
    }
  }
  /* Say goodbye: what is queued (a shutdown's reply) goes out now, if
   * the client reads within a second. */
  int64_t until = vc_now_ms() + 1000;
  for (conn_t *c = a->conns; c != NULL; c = c->next)
    while (!c->dead && c->out_len > 0 && vc_now_ms() < until) {
      struct pollfd pfd = {.fd = c->fd, .events = POLLOUT};
      if (poll(&pfd, 1, (int)(until - vc_now_ms())) <= 0)
        break;
      conn_write(a, c);
    }
  return 0;
}
