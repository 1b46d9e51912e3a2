/* spawn.c - running host programs for OCI hooks, and its Lua binding
 * (vc.core.process).
 *
 *   process.run { path =, args = {argv0, ...}, env = {"K=V", ...},
 *                 stdin = "...", timeout = seconds, capture = bytes }
 *     -> { status = "exited"|"signaled"|"timeout", code =, signal =, pid =,
 *          elapsed =, stdout =, stderr = } | nil, msg, errno
 *   process.spawn { path =, args =, env = } -> pid (left running)
 *   process.sleep(seconds)
 *   process.now() -> seconds on the monotonic clock
 *   process.time() -> seconds since the epoch, with a fraction
 *
 * The child gets its own process group (set by both sides of the fork, so
 * the group exists whichever runs first), default signal dispositions and
 * an empty signal mask, only descriptors 0-2, and exactly the argv and
 * environment asked for.  execve errors come back over a close-on-exec
 * pipe.  The parent feeds stdin and drains stdout and stderr with poll,
 * watching a pidfd for the exit; at the deadline it kills the whole group
 * and reaps the child. */
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <lua.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "luax.h"
#include "unixsock.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

#define DEFAULT_CAPTURE (64 * 1024)
#define CHUNK 4096

static double clock_s(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double now_s(void) {
  return clock_s(CLOCK_MONOTONIC);
}

/* Put fd at target in the child, without close-on-exec. */
static int place_fd(int fd, int target) {
  if (fd == target)
    return fcntl(fd, F_SETFD, 0);
  return dup2(fd, target);
}

/* The child between fork and execve: async-signal-safe calls only. */
static _Noreturn void child(const vc_spawn_req_t *req, int in, int out,
                            int errfd, int report) {
  setpgid(0, 0);
  struct sigaction dfl = {.sa_handler = SIG_DFL};
  for (int sig = 1; sig < NSIG; sig++)
    sigaction(sig, &dfl, NULL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  /* Lift the three above 2 first, so that placing one never overwrites
   * another that happened to get a low number. */
  int fds[3] = {in, out, errfd};
  for (int i = 0; i < 3; i++)
    fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
  for (int i = 0; i < 3; i++)
    if (fds[i] < 0 || place_fd(fds[i], i) < 0)
      goto fail;
  /* Whatever vc holds open that is not close-on-exec stays with vc. */
  vc_close_others(report, CLOSE_RANGE_CLOEXEC);
  execve(req->path, req->argv, req->envp);
fail:;
  int e = errno;
  ssize_t n = write(report, &e, sizeof e);
  (void)n;
  _exit(127);
}

/* write() that turns a closed pipe into EPIPE without a SIGPIPE. */
static ssize_t write_nosigpipe(int fd, const void *buf, size_t len) {
  sigset_t pipe_set, old, pending;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  sigpending(&pending);
  int was_pending = sigismember(&pending, SIGPIPE);
  sigprocmask(SIG_BLOCK, &pipe_set, &old);
  ssize_t n = write(fd, buf, len);
  int saved = errno;
  if (n < 0 && saved == EPIPE && !was_pending) {
    struct timespec zero = {0, 0};
    while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
      ;
  }
  sigprocmask(SIG_SETMASK, &old, NULL);
  errno = saved;
  return n;
}

struct sink {
  char *buf;
  size_t len, max;
  bool truncated;
};

/* Read what fd has now into s (keeping at most s->max bytes); returns 0 at
 * end of file or on an error, 1 when more may come. */
static int drain(int fd, struct sink *s) {
  char chunk[CHUNK];
  for (;;) {
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno == EAGAIN)
      return 1;
    if (n <= 0)
      return 0;
    size_t keep = (size_t)n;
    if (keep > s->max - s->len) {
      keep = s->max - s->len;
      s->truncated = true;
    }
    memcpy(s->buf + s->len, chunk, keep);
    s->len += keep;
  }
}

static void close_fd(int *fd) {
  if (*fd >= 0) {
    close(*fd);
    *fd = -1;
  }
}

static void set_nonblock(int fd) {
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* Kill the child's group (and the child, should it have left the group),
 * then reap it. */
static void kill_and_reap(pid_t pid, int *status) {
  kill(-pid, SIGKILL);
  kill(pid, SIGKILL);
  while (waitpid(pid, status, 0) < 0 && errno == EINTR)
    ;
}

/* Feed stdin, collect the output, watch for the exit or the deadline. */
static void supervise(const vc_spawn_req_t *req, pid_t pid, int in, int out,
                      int errfd, vc_spawn_res_t *res) {
  struct sink sinks[2] = {
      {res->out, 0, req->capture_max, false},
      {res->err, 0, req->capture_max, false},
  };
  int fds[2] = {out, errfd};
  cleanup_close int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  double start = now_s();
  double deadline = req->timeout_s > 0 ? start + req->timeout_s : 0;
  size_t written = 0;
  int status = 0;
  bool done = false;
  if (req->input_len == 0)
    close_fd(&in);
  else
    set_nonblock(in);
  set_nonblock(fds[0]);
  set_nonblock(fds[1]);
  while (!done) {
    struct pollfd p[4];
    int n = 0, ip = -1, op[2] = {-1, -1}, pp = -1;
    if (in >= 0)
      p[ip = n++] = (struct pollfd){.fd = in, .events = POLLOUT};
    for (int i = 0; i < 2; i++)
      if (fds[i] >= 0)
        p[op[i] = n++] = (struct pollfd){.fd = fds[i], .events = POLLIN};
    if (pidfd >= 0)
      p[pp = n++] = (struct pollfd){.fd = pidfd, .events = POLLIN};
    /* Without a pidfd (an old kernel), look at the child every 20 ms. */
    int ms = pidfd >= 0 ? -1 : 20;
    if (deadline > 0) {
      double left = deadline - now_s();
      if (left <= 0) {
        kill_and_reap(pid, &status);
        res->how = VC_SPAWN_TIMEOUT;
        res->code = SIGKILL;
        break;
      }
      int lms = (int)(left * 1000) + 1;
      if (ms < 0 || lms < ms)
        ms = lms;
    }
    int r = poll(p, (nfds_t)n, ms);
    if (r < 0 && errno != EINTR)
      break;
    if (ip >= 0 && p[ip].revents != 0) {
      ssize_t w = write_nosigpipe(in, req->input + written,
                                  req->input_len - written);
      if (w > 0)
        written += (size_t)w;
      /* A program may close its stdin early: that is its business. */
      if (written == req->input_len || (w < 0 && errno != EAGAIN &&
                                         errno != EINTR))
        close_fd(&in);
    }
    for (int i = 0; i < 2; i++)
      if (op[i] >= 0 && p[op[i]].revents != 0 && !drain(fds[i], &sinks[i]))
        close_fd(&fds[i]);
    if (pidfd < 0 || (pp >= 0 && p[pp].revents != 0)) {
      pid_t w = waitpid(pid, &status, WNOHANG);
      if (w == pid) {
        done = true;
        res->how = WIFSIGNALED(status) ? VC_SPAWN_SIGNALED : VC_SPAWN_EXITED;
        res->code = WIFSIGNALED(status) ? WTERMSIG(status)
                                        : WEXITSTATUS(status);
      }
    }
  }
  if (!done && res->how != VC_SPAWN_TIMEOUT) {
    /* poll failed: do not leave the child behind. */
    kill_and_reap(pid, &status);
    res->how = VC_SPAWN_TIMEOUT;
    res->code = SIGKILL;
  }
  /* What it wrote before it ended; a descendant holding the pipes open
   * is not waited for. */
  for (int i = 0; i < 2; i++)
    if (fds[i] >= 0)
      drain(fds[i], &sinks[i]);
  close_fd(&in);
  close_fd(&fds[0]);
  close_fd(&fds[1]);
  res->out_len = sinks[0].len;
  res->err_len = sinks[1].len;
  res->out[res->out_len] = '\0';
  res->err[res->err_len] = '\0';
  res->out_truncated = sinks[0].truncated;
  res->err_truncated = sinks[1].truncated;
  res->elapsed_s = now_s() - start;
}

int vc_spawn_run(const vc_spawn_req_t *req, vc_spawn_res_t *res,
                 vc_err_t *err) {
  memset(res, 0, sizeof *res);
  vc_spawn_req_t r = *req;
  if (r.capture_max == 0)
    r.capture_max = DEFAULT_CAPTURE;
  res->out = malloc(r.capture_max + 1);
  res->err = malloc(r.capture_max + 1);
  if (res->out == NULL || res->err == NULL)
    return vc_error(err, ENOMEM, "%s", r.path);
  int in[2] = {-1, -1}, out[2] = {-1, -1}, errp[2] = {-1, -1};
  int rep[2] = {-1, -1};
  if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 ||
      pipe2(errp, O_CLOEXEC) < 0 || pipe2(rep, O_CLOEXEC) < 0) {
    int e = errno;
    int *all[] = {in, out, errp, rep};
    for (size_t i = 0; i < 4; i++) {
      close_fd(&all[i][0]);
      close_fd(&all[i][1]);
    }
    return vc_error(err, e, "%s: pipe", r.path);
  }
  /* No signal handler of vc may run in the child before it resets them. */
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, &old);
  pid_t pid = fork();
  if (pid == 0)
    child(&r, in[0], out[1], errp[1], rep[1]);
  int fork_errno = errno;
  sigprocmask(SIG_SETMASK, &old, NULL);
  close_fd(&in[0]);
  close_fd(&out[1]);
  close_fd(&errp[1]);
  close_fd(&rep[1]);
  if (pid < 0) {
    close_fd(&in[1]);
    close_fd(&out[0]);
    close_fd(&errp[0]);
    close_fd(&rep[0]);
    return vc_error(err, fork_errno, "%s: fork", r.path);
  }
  setpgid(pid, pid);
  res->pid = pid;
  /* Until execve, the child only moves descriptors: this read is short. */
  int child_errno = 0;
  ssize_t n;
  while ((n = read(rep[0], &child_errno, sizeof child_errno)) < 0 &&
         errno == EINTR)
    ;
  close_fd(&rep[0]);
  if (n == (ssize_t)sizeof child_errno) {
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
      ;
    close_fd(&in[1]);
    close_fd(&out[0]);
    close_fd(&errp[0]);
    return vc_error(err, child_errno, "%s", r.path);
  }
  supervise(&r, pid, in[1], out[0], errp[0], res);
  return 0;
}

void vc_spawn_res_free(vc_spawn_res_t *res) {
  free(res->out);
  free(res->err);
  res->out = res->err = NULL;
}

/* Lua binding ------------------------------------------------------------ */

#define RESULT_MT "vc.process.result"

static int result_gc(lua_State *L) {
  vc_spawn_res_free(luaL_checkudata(L, 1, RESULT_MT));
  return 0;
}

/* The strings of the list t[field] (t at index 1) as a NULL-terminated
 * array owned by a userdata left on the stack; first (if not NULL) goes
 * before them when the list is empty. */
static char **string_list(lua_State *L, const char *field, const char *first) {
  int t = lua_getfield(L, 1, field);
  if (t != LUA_TNIL && t != LUA_TTABLE)
    luaL_error(L, "bad argument #1 to 'run' (%s: list of strings expected)",
               field);
  size_t n = t == LUA_TTABLE ? lua_rawlen(L, -1) : 0;
  size_t total = n == 0 && first != NULL ? 1 : n;
  char **v = lua_newuserdatauv(L, (total + 1) * sizeof *v, 0);
  if (n == 0 && first != NULL)
    v[0] = (char *)first;
  for (size_t i = 0; i < n; i++) {
    if (lua_rawgeti(L, -2, (lua_Integer)i + 1) != LUA_TSTRING)
      luaL_error(L, "bad argument #1 to 'run' (%s[%d]: string expected)",
                 field, (int)i + 1);
    /* The string stays alive in the list, which stays on the stack. */
    v[i] = (char *)lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  v[total] = NULL;
  return v;
}

static int l_run(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  vc_spawn_req_t req = {0};
  lua_getfield(L, 1, "path");
  req.path = luaL_checkstring(L, -1);
  luaL_argcheck(L, req.path[0] == '/', 1, "path must be absolute");
  req.argv = string_list(L, "args", req.path);
  req.envp = string_list(L, "env", NULL);
  lua_getfield(L, 1, "stdin");
  req.input = luaL_optlstring(L, -1, "", &req.input_len);
  lua_getfield(L, 1, "timeout");
  req.timeout_s = luaL_optnumber(L, -1, 0);
  lua_getfield(L, 1, "capture");
  lua_Integer cap = luaL_optinteger(L, -1, DEFAULT_CAPTURE);
  luaL_argcheck(L, cap > 0 && cap <= (1 << 24), 1, "capture out of range");
  req.capture_max = (size_t)cap;
  vc_spawn_res_t *res = lua_newuserdatauv(L, sizeof *res, 0);
  memset(res, 0, sizeof *res);
  luaL_setmetatable(L, RESULT_MT);
  vc_err_t err;
  if (vc_spawn_run(&req, res, &err) < 0) {
    vc_spawn_res_free(res);
    return vc_pushfail(L, &err);
  }
  static const char *const how[] = {"exited", "signaled", "timeout"};
  lua_createtable(L, 0, 8);
  lua_pushstring(L, how[res->how]);
  lua_setfield(L, -2, "status");
  lua_pushinteger(L, res->code);
  lua_setfield(L, -2, res->how == VC_SPAWN_EXITED ? "code" : "signal");
  lua_pushinteger(L, res->pid);
  lua_setfield(L, -2, "pid");
  lua_pushnumber(L, res->elapsed_s);
  lua_setfield(L, -2, "elapsed");
  lua_pushlstring(L, res->out, res->out_len);
  lua_setfield(L, -2, "stdout");
  lua_pushlstring(L, res->err, res->err_len);
  lua_setfield(L, -2, "stderr");
  lua_pushboolean(L, res->out_truncated || res->err_truncated);
  lua_setfield(L, -2, "truncated");
  return 1;
}

/* process.spawn { path =, args =, env = [, console_socket =] } -> pid: a
 * program started and left running, in a session of its own, with this
 * process's descriptors 0-2 and no others (the OCI runtime's helper: its
 * caller's stdio are the container's); with console_socket, a new
 * terminal instead, its controlling one, whose master is sent there. It is not waited for: when this process exits, the
 * nearest subreaper (an engine's conmon or shim) adopts it. */
/* A new pseudo-terminal whose master goes to the runtime-spec console
 * socket at path (SCM_RIGHTS, with the terminal's name as the data, as
 * runc sends it); returns the slave, or -1 with err set. */
static int console_to(const char *path, vc_err_t *err) {
  cleanup_close int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  char name[64];
  if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0 ||
      ptsname_r(master, name, sizeof name) != 0)
    return vc_error(err, errno, "console: a pseudo-terminal");
  int slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0)
    return vc_error(err, errno, "console: open %s", name);
  cleanup_close int sock = vc_unix_connect(path, 5000, err);
  if (sock < 0) {
    close(slave);
    return vc_error_prefix(err, "console socket %s", path);
  }
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  memset(&u, 0, sizeof u);
  struct iovec iov = {.iov_base = name, .iov_len = strlen(name)};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1,
                       .msg_control = u.buf, .msg_controllen = sizeof u.buf};
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &master, sizeof master);
  if (sendmsg(sock, &msg, MSG_NOSIGNAL) < 0) {
    vc_error(err, errno, "console socket %s: send", path);
    close(slave);
    return -1;
  }
  return slave;
}

static int l_spawn(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_getfield(L, 1, "path");
  const char *path = luaL_checkstring(L, -1);
  luaL_argcheck(L, path[0] == '/', 1, "path must be absolute");
  char **argv = string_list(L, "args", path);
  char **envp = string_list(L, "env", NULL);
  lua_getfield(L, 1, "console_socket");
  const char *console = luaL_optstring(L, -1, NULL);
  cleanup_close int tty = -1;
  if (console != NULL) {
    vc_err_t err;
    if ((tty = console_to(console, &err)) < 0)
      return vc_pushfail(L, &err);
  }
  int rep[2];
  if (pipe2(rep, O_CLOEXEC) < 0)
    return luaL_fileresult(L, 0, "pipe");
  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    close(rep[0]);
    close(rep[1]);
    errno = e;
    return luaL_fileresult(L, 0, "fork");
  }
  if (pid == 0) {
    setsid();
    /* with a console: the terminal is its controlling one, and its stdio */
    if (tty >= 0 && (ioctl(tty, TIOCSCTTY, 0) < 0 || dup2(tty, 0) < 0 ||
                     dup2(tty, 1) < 0 || dup2(tty, 2) < 0)) {
      int e = errno;
      ssize_t n = write(rep[1], &e, sizeof e);
      (void)n;
      _exit(127);
    }
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    for (int sig = 1; sig < NSIG; sig++)
      sigaction(sig, &dfl, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int fd = 0; fd < 3; fd++)
      fcntl(fd, F_SETFD, 0);
    vc_close_others(rep[1], CLOSE_RANGE_CLOEXEC);
    execve(path, argv, envp);
    int e = errno;
    ssize_t n = write(rep[1], &e, sizeof e);
    (void)n;
    _exit(127);
  }
  close(rep[1]);
  int child_errno;
  ssize_t n;
  while ((n = read(rep[0], &child_errno, sizeof child_errno)) < 0 &&
         errno == EINTR)
    ;
  close(rep[0]);
  if (n == (ssize_t)sizeof child_errno) {
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
      ;
    errno = child_errno;
    return luaL_fileresult(L, 0, path);
  }
  lua_pushinteger(L, pid);
  return 1;
}

static int l_sleep(lua_State *L) {
  double s = luaL_checknumber(L, 1);
  if (s > 0) {
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
      ;
  }
  return 0;
}

static int l_now(lua_State *L) {
  lua_pushnumber(L, now_s());
  return 1;
}

static int l_time(lua_State *L) {
  lua_pushnumber(L, clock_s(CLOCK_REALTIME));
  return 1;
}

static const luaL_Reg funcs[] = {
    {"now", l_now},
    {"run", l_run},
    {"sleep", l_sleep},
    {"spawn", l_spawn},
    {"time", l_time},
    {NULL, NULL},
};

int luaopen_vc_core_process(lua_State *L) {
  if (luaL_newmetatable(L, RESULT_MT)) {
    lua_pushcfunction(L, result_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  return 1;
}
