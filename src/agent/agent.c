/* agent.c - agent implementations by address scheme, and their Lua binding
 * (vc.core.agent).
 *
 *   agent.open(address [, { annotations = {...} }]) -> a | nil, msg
 *   agent.signum(name_or_number)        -> n | nil, msg   ("TERM", "SIGTERM", "15")
 *   a:connect(timeout) a:create_pod(vm) a:destroy_pod()
 *   a:create_container(spec) a:start_container(cid) a:stop_container(cid, t)
 *   a:remove_container(cid) a:signal(cid, n [, all])
 *   a:pause_container(cid) a:resume_container(cid)
 *   a:update_container(cid, {memory_mib, pids, cpu_quota_pct})
 *                       -> true | nil, msg, errno
 *   a:exec(cid, process [, "capture"|"inherit" [, stdin [, tty]]])
 *       -> code, out, err | nil, msg, errno
 *       stdin: nil (/dev/null), a string (its bytes, then end of file) or
 *       true (vc's own stdin, until its end of file); tty: a terminal in
 *       the container (with "inherit", vc's terminal is raw meanwhile and
 *       its size follows vc's)
 *   a:attach(cid, stdin, tty [, {detach_keys=, ready=}]) -> code | false
 *     (detached with Ctrl-P Ctrl-Q)
 *   a:logs(cid, follow, fn) -> truncated   fn(stream, ms, data, live)
 *   a:wait(cid [, timeout])             -> code | nil, msg, errno
 *   a:status(cid) -> { state, pid, exit_code, oom [, cap_eff, seccomp,
 *                      no_new_privs] } | nil, msg, errno
 *   a:close()                           (also __gc and __close)
 */
#include "agent.h"

#include <ctype.h>
#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/lspec.h"
#include "sys/luax.h"
#include "sys/term.h"

#define AGENT_MT "vc.agent"

static const struct vc_agent_ops *const impls[] = {
    &vc_agent_mock_ops,
    &vc_agent_unix_ops,
    &vc_agent_serial_ops,
    NULL,
};

void vc_proc_list_free(vc_proc_list_t *l) {
  for (size_t i = 0; i < l->n; i++)
    free(l->v[i].cmd);
  free(l->v);
  memset(l, 0, sizeof *l);
}

void vc_output_free(vc_output_t *o) {
  free(o->out);
  free(o->err);
  memset(o, 0, sizeof *o);
}

const struct vc_agent_ops *vc_agent_find(const char *address) {
  const char *colon = strchr(address, ':');
  if (colon == NULL)
    return NULL;
  size_t len = (size_t)(colon - address);
  for (size_t i = 0; impls[i] != NULL; i++)
    if (strlen(impls[i]->scheme) == len &&
        strncmp(impls[i]->scheme, address, len) == 0)
      return impls[i];
  return NULL;
}

typedef struct {
  vc_agent_t a;
  int open;
} lagent_t;

static void release(vc_agent_t *a) {
  if (a->ops != NULL)
    a->ops->close(a);
  free(a->address);
  for (size_t i = 0; i < a->n_annotations; i++) {
    free(a->annotations[i].key);
    free(a->annotations[i].value);
  }
  free(a->annotations);
  memset(a, 0, sizeof *a);
}

static vc_agent_t *checkagent(lua_State *L) {
  lagent_t *h = luaL_checkudata(L, 1, AGENT_MT);
  if (!h->open)
    luaL_error(L, "attempt to use a closed agent handle");
  return &h->a;
}

static int l_close(lua_State *L) {
  lagent_t *h = luaL_checkudata(L, 1, AGENT_MT);
  if (h->open)
    release(&h->a);
  h->open = 0;
  return 0;
}

static int l_tostring(lua_State *L) {
  lagent_t *h = luaL_checkudata(L, 1, AGENT_MT);
  if (h->open)
    lua_pushfstring(L, "agent %s", h->a.address);
  else
    lua_pushliteral(L, "agent (closed)");
  return 1;
}

/* Copy opts.annotations into the handle (already owned by __gc). */
static void read_annotations(lua_State *L, int opts, vc_agent_t *a) {
  if (lua_isnoneornil(L, opts))
    return;
  if (lua_getfield(L, opts, "annotations") != LUA_TTABLE) {
    lua_pop(L, 1);
    return;
  }
  size_t n = 0;
  for (lua_pushnil(L); lua_next(L, -2); lua_pop(L, 1))
    if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING)
      n++;
  a->annotations = calloc(n + 1, sizeof *a->annotations);
  if (a->annotations == NULL)
    luaL_error(L, "not enough memory");
  for (lua_pushnil(L); lua_next(L, -2); lua_pop(L, 1)) {
    if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
      continue;
    struct vc_kv *kv = &a->annotations[a->n_annotations++];
    kv->key = strdup(lua_tostring(L, -2));
    kv->value = strdup(lua_tostring(L, -1));
    if (kv->key == NULL || kv->value == NULL)
      luaL_error(L, "not enough memory");
  }
  lua_pop(L, 1);
}

static int l_open(lua_State *L) {
  const char *address = luaL_checkstring(L, 1);
  if (!lua_isnoneornil(L, 2))
    luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2); /* the handle goes to 3, whether opts was given or not */
  const struct vc_agent_ops *ops = vc_agent_find(address);
  if (ops == NULL) {
    luaL_pushfail(L);
    lua_pushfstring(L, "agent address \"%s\": unknown scheme", address);
    lua_pushinteger(L, EINVAL);
    return 3;
  }
  lagent_t *h = lua_newuserdatauv(L, sizeof *h, 0);
  memset(h, 0, sizeof *h);
  luaL_setmetatable(L, AGENT_MT);
  h->open = 1;
  h->a.address = strdup(address);
  if (h->a.address == NULL)
    return luaL_error(L, "not enough memory");
  h->a.target = h->a.address + strlen(ops->scheme) + 1;
  read_annotations(L, 2, &h->a);
  h->a.ops = ops; /* last: close is only called on a complete handle */
  return 1;
}

static int result(lua_State *L, int ret, const vc_err_t *err) {
  if (ret < 0)
    return vc_pushfail(L, err);
  lua_pushboolean(L, 1);
  return 1;
}

static int l_connect(lua_State *L) {
  vc_agent_t *a = checkagent(L);
  double timeout = luaL_optnumber(L, 2, 30);
  vc_err_t err = {0};
  return result(L, a->ops->connect(a, timeout, &err), &err);
}

static int l_create_pod(lua_State *L) {
  vc_agent_t *a = checkagent(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  vc_vm_spec_t *vm = vc_lua_vm_box(L, 2);
  vc_err_t err = {0};
  int ret = a->ops->create_pod(a, vm, &err);
  return result(L, ret, &err);
}

static int l_destroy_pod(lua_State *L) {
  vc_agent_t *a = checkagent(L);
  vc_err_t err = {0};
  return result(L, a->ops->destroy_pod(a, &err), &err);
}

static int l_create_container(lua_State *L) {
  vc_agent_t *a = checkagent(L);
  vc_container_spec_t *c = vc_lua_container_box(L, 2);
  vc_err_t err = {0};
  return result(L, a->ops->create_container(a, c, &err), &err);
}

static int l_start_container(lua_State *L) {
  vc_agent_t *a = checkagent(L);
  const char *cid = luaL_checkstring(L, 2);
  vc_err_t err = {0};
  return result(L, a->ops->start_container(a, cid, &err), &err);
}

static int l_stop_container(lua_State *L) {
  vc_agent_t *a = checkagent(L);
  const char *cid = luaL_checkstring(L, 2);
  double timeout = luaL_optnumber(L, 3, 10);
  vc_err_t err = {0};
  return result(L, a->ops->stop_container(a, cid, timeout, &err), &err);
}

static int l_remove_container(lua_State *L) {
  vc_agent_t *a = checkagent(L);
  const char *cid = luaL_checkstring(L, 2);
  vc_err_t err = {0};
  return result(L, a->ops->remove_container(a, cid, &err), &err);
}

static int l_freeze(lua_State *L, bool frozen) {
  vc_agent_t *a = checkagent(L);
  const char *cid = luaL_checkstring(L, 2);
  vc_err_t err = {0};
  return result(L, a->ops->freeze(a, cid, frozen, &err), &err);
}

static int l_pause_container(lua_State *L) { return l_freeze(L, true); }
static int l_resume_container(lua_State *L) { return l_freeze(L, false); }

static int l_update_container(lua_State *L) {
  vc_agent_t *a = checkagent(L);
  const char *cid = luaL_checkstring(L, 2);
  struct vc_resources r = {0};
  vc_lua_resources(L, 3, &r);
  vc_err_t err = {0};
  return result(L, a->ops->update_container(a, cid, &r, &err), &err);
}

static int l_signal(lua_State *L) {
  vc_agent_t *a = checkagent(L);
  const char *cid = luaL_checkstring(L, 2);
  lua_Integer sig = luaL_checkinteger(L, 3);
  luaL_argcheck(L, sig >= 0 && sig < NSIG, 3, "not a signal number");
  bool all = lua_toboolean(L, 4);
  vc_err_t err = {0};
  return result(L, a->ops->signal(a, cid, (int)sig, all, &err), &err);
}

/* Read back what a capture file received, and push it. */
static int push_capture(lua_State *L, int fd, vc_err_t *err) {
  luaL_Buffer b;
  char chunk[4096];
  if (lseek(fd, 0, SEEK_SET) < 0)
    return vc_error(err, errno, "exec: read output");
  luaL_buffinit(L, &b);
  for (;;) {
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return vc_error(err, errno, "exec: read output");
    if (n == 0)
      break;
    luaL_addlstring(&b, chunk, (size_t)n);
  }
  luaL_pushresult(&b);
  return 0;
}

/* A session's terminal: raw mode when the process reads this terminal's
 * keys, and the signals that must not leave it raw (sys/term.h).  After
 * vc_term_end, the signal that ended the session is raised again. */
static int session_begin(vc_term_t *t, vc_stdio_t *io, vc_err_t *err) {
  io->term_fd = isatty(STDIN_FILENO)    ? STDIN_FILENO
                : isatty(STDOUT_FILENO) ? STDOUT_FILENO
                                        : -1;
  bool keys = io->in_fd == STDIN_FILENO && io->term_fd == STDIN_FILENO;
  if (vc_term_begin(t, keys ? STDIN_FILENO : -1, err) < 0)
    return -1;
  io->sig_fd = t->sig_fd;
  return 0;
}

static void session_end(vc_term_t *t, const vc_stdio_t *io) {
  vc_term_end(t);
  if (io->signo != 0)
    raise(io->signo);
}

/* stdin argument n: nil, a string (through a memfd) or true (fd 0). */
static int stdin_arg(lua_State *L, int n, vc_err_t *err) {
  int t = lua_type(L, n);
  luaL_argexpected(L, t <= LUA_TNIL || t == LUA_TSTRING ||
                          (t == LUA_TBOOLEAN && lua_toboolean(L, n)),
                   n, "nil, string or true");
  if (t == LUA_TBOOLEAN)
    return STDIN_FILENO;
  if (t != LUA_TSTRING)
    return -1;
  int *in = vc_fdbox(L, 1);
  size_t len;
  const char *s = lua_tolstring(L, n, &len);
  in[0] = memfd_create("vc-exec-in", MFD_CLOEXEC);
  for (size_t off = 0; in[0] >= 0 && off < len;) {
    ssize_t k = write(in[0], s + off, len - off);
    if (k < 0 && errno != EINTR)
      break;
    off += k > 0 ? (size_t)k : 0;
  }
  if (in[0] < 0 || lseek(in[0], 0, SEEK_END) != (off_t)len ||
      lseek(in[0], 0, SEEK_SET) < 0) {
    vc_error(err, errno, "exec: stdin");
    return -2;
  }
  return in[0];
}

static int l_exec(lua_State *L) {
  static const char *const modes[] = {"capture", "inherit", NULL};
  vc_agent_t *a = checkagent(L);
  const char *cid = luaL_checkstring(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  int inherit = luaL_checkoption(L, 4, "capture", modes) == 1;
  lua_settop(L, 6); /* (boxes are pushed above the arguments) */
  bool tty = lua_toboolean(L, 6);
  vc_process_t *p = vc_lua_process_box(L, 3);
  vc_err_t err = {0};
  int code = -1;
  vc_stdio_t io = {.in_fd = stdin_arg(L, 5, &err), .tty = tty,
                   .term_fd = -1, .sig_fd = -1};
  if (io.in_fd == -2)
    return vc_pushfail(L, &err);
  if (inherit) {
    io.out_fd = STDOUT_FILENO;
    io.err_fd = STDERR_FILENO;
    vc_term_t term;
    if (tty && session_begin(&term, &io, &err) < 0)
      return vc_pushfail(L, &err);
    int ret = a->ops->exec(a, cid, p, &io, &code, &err);
    if (tty)
      session_end(&term, &io);
    if (ret < 0)
      return vc_pushfail(L, &err);
    lua_pushinteger(L, code);
    return 1;
  }
  int *fds = vc_fdbox(L, 2);
  fds[0] = memfd_create("vc-exec-out", MFD_CLOEXEC);
  fds[1] = memfd_create("vc-exec-err", MFD_CLOEXEC);
  if (fds[0] < 0 || fds[1] < 0) {
    vc_error(&err, errno, "exec: capture output");
    return vc_pushfail(L, &err);
  }
  io.out_fd = fds[0];
  io.err_fd = fds[1];
  if (a->ops->exec(a, cid, p, &io, &code, &err) < 0)
    return vc_pushfail(L, &err);
  lua_pushinteger(L, code);
  if (push_capture(L, fds[0], &err) < 0 || push_capture(L, fds[1], &err) < 0)
    return vc_pushfail(L, &err);
  return 3;
}

/* a:attach(cid, stdin, tty [, opts]) -> code | false (detached) | nil,
 * msg, errno; opts.detach_keys (default true), opts.ready (a path made
 * once the agent streams). */
static int l_attach(lua_State *L) {
  vc_agent_t *a = checkagent(L);
  const char *cid = luaL_checkstring(L, 2);
  bool with_stdin = lua_toboolean(L, 3), tty = lua_toboolean(L, 4);
  bool keys = true;
  const char *ready = NULL;
  lua_settop(L, 5);
  if (!lua_isnil(L, 5)) {
    luaL_checktype(L, 5, LUA_TTABLE);
    if (lua_getfield(L, 5, "detach_keys") != LUA_TNIL)
      keys = lua_toboolean(L, -1);
    lua_pop(L, 1);
    lua_getfield(L, 5, "ready");
    ready = luaL_optstring(L, -1, NULL); /* stays on the stack */
  }
  vc_err_t err = {0};
  int code = -1;
  vc_stdio_t io = {.in_fd = with_stdin ? STDIN_FILENO : -1,
                   .out_fd = STDOUT_FILENO, .err_fd = STDERR_FILENO,
                   .tty = tty, .term_fd = -1, .sig_fd = -1,
                   .detach_keys = keys, .ready_path = ready};
  vc_term_t term;
  if (session_begin(&term, &io, &err) < 0)
    return vc_pushfail(L, &err);
  int ret = a->ops->attach(a, cid, &io, &code, &err);
  session_end(&term, &io);
  if (ret < 0)
    return vc_pushfail(L, &err);
  if (io.detached)
    lua_pushboolean(L, false);
  else
    lua_pushinteger(L, code);
  return 1;
}

struct chunk_call {
  lua_State *L;
  int fn;               /* its stack index */
  bool failed;          /* its error is on the stack's top */
};

static int call_chunk(void *ud, int stream, long long ms, const char *data,
                      size_t n, bool live) {
  struct chunk_call *cc = ud;
  lua_State *L = cc->L;
  lua_pushvalue(L, cc->fn);
  lua_pushstring(L, stream == 2 ? "stderr" : "stdout");
  lua_pushinteger(L, ms);
  lua_pushlstring(L, data, n);
  lua_pushboolean(L, live);
  if (lua_pcall(L, 4, 0, 0) != LUA_OK) {
    cc->failed = true;
    return ECANCELED;
  }
  return 0;
}

/* a:logs(cid, follow, fn) -> truncated | nil, msg, errno
 *     fn(stream, ms, data, live) for each chunk of the container's output
 *     (stream "stdout" or "stderr", ms its time since the epoch); with
 *     follow, until the container's process exits. */
static int l_logs(lua_State *L) {
  vc_agent_t *a = checkagent(L);
  const char *cid = luaL_checkstring(L, 2);
  bool follow = lua_toboolean(L, 3);
  luaL_checktype(L, 4, LUA_TFUNCTION);
  lua_settop(L, 4);
  struct chunk_call cc = {.L = L, .fn = 4};
  vc_err_t err = {0};
  bool truncated = false;
  if (a->ops->logs(a, cid, follow, call_chunk, &cc, &truncated, &err) < 0) {
    if (cc.failed)
      return lua_error(L);
    return vc_pushfail(L, &err);
  }
  lua_pushboolean(L, truncated);
  return 1;
}

static int l_wait(lua_State *L) {
  vc_agent_t *a = checkagent(L);
  const char *cid = luaL_checkstring(L, 2);
  double timeout = luaL_optnumber(L, 3, -1);
  vc_err_t err = {0};
  int code = -1;
  if (a->ops->wait(a, cid, timeout, &code, &err) < 0)
    return vc_pushfail(L, &err);
  lua_pushinteger(L, code);
  return 1;
}

static int l_status(lua_State *L) {
  static const char *const names[] = {"created", "running", "exited"};
  vc_agent_t *a = checkagent(L);
  const char *cid = luaL_checkstring(L, 2);
  vc_err_t err = {0};
  vc_ctr_status_t st = {0};
  if (a->ops->status(a, cid, &st, &err) < 0)
    return vc_pushfail(L, &err);
  lua_createtable(L, 0, 4);
  lua_pushstring(L, names[st.state]);
  lua_setfield(L, -2, "state");
  lua_pushinteger(L, st.pid);
  lua_setfield(L, -2, "pid");
  if (st.state == VC_CTR_EXITED) {
    lua_pushinteger(L, st.exit_code);
    lua_setfield(L, -2, "exit_code");
  }
  lua_pushboolean(L, st.oom);
  lua_setfield(L, -2, "oom");
  if (st.cap_eff[0] != '\0') {
    lua_pushstring(L, st.cap_eff);
    lua_setfield(L, -2, "cap_eff");
    lua_pushinteger(L, st.seccomp);
    lua_setfield(L, -2, "seccomp");
    lua_pushboolean(L, st.no_new_privs);
    lua_setfield(L, -2, "no_new_privs");
  }
  return 1;
}

static int l_list_processes(lua_State *L) {
  vc_agent_t *a = checkagent(L);
  const char *cid = luaL_checkstring(L, 2);
  vc_err_t err = {0};
  vc_proc_list_t list = {0};
  if (a->ops->list_processes(a, cid, &list, &err) < 0)
    return vc_pushfail(L, &err);
  /* Copy into Lua-owned strings before anything can raise. */
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (size_t i = 0; i < list.n; i++) {
    char pid[24];
    luaL_addlstring(&b, pid, (size_t)snprintf(pid, sizeof pid, "%d", list.v[i].pid));
    luaL_addchar(&b, '\0');
    luaL_addstring(&b, list.v[i].cmd != NULL ? list.v[i].cmd : "");
    luaL_addchar(&b, '\0');
  }
  size_t n = list.n;
  vc_proc_list_free(&list);
  luaL_pushresult(&b);
  size_t len;
  const char *p = lua_tolstring(L, -1, &len);
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, strtol(p, NULL, 10));
    lua_setfield(L, -2, "pid");
    p += strlen(p) + 1;
    lua_pushstring(L, p);
    lua_setfield(L, -2, "cmd");
    p += strlen(p) + 1;
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

static int l_stats(lua_State *L) {
  vc_agent_t *a = checkagent(L);
  const char *cid = luaL_checkstring(L, 2);
  vc_err_t err = {0};
  vc_ctr_stats_t st = {0};
  if (a->ops->stats(a, cid, &st, &err) < 0)
    return vc_pushfail(L, &err);
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, (lua_Integer)st.cpu_ns);
  lua_setfield(L, -2, "cpu_ns");
  lua_pushinteger(L, (lua_Integer)st.memory_bytes);
  lua_setfield(L, -2, "memory_bytes");
  lua_pushinteger(L, (lua_Integer)st.memory_limit_bytes);
  lua_setfield(L, -2, "memory_limit_bytes");
  lua_pushinteger(L, (lua_Integer)st.pids);
  lua_setfield(L, -2, "pids");
  return 1;
}

/* a:read_output(cid) -> stdout, stderr, truncated */
static int l_read_output(lua_State *L) {
  vc_agent_t *a = checkagent(L);
  const char *cid = luaL_checkstring(L, 2);
  vc_err_t err = {0};
  vc_output_t o = {0};
  if (a->ops->read_output(a, cid, &o, &err) < 0)
    return vc_pushfail(L, &err);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addlstring(&b, o.out != NULL ? o.out : "", o.out_len);
  luaL_addlstring(&b, o.err != NULL ? o.err : "", o.err_len);
  size_t out_len = o.out_len;
  int truncated = o.truncated;
  vc_output_free(&o);
  luaL_pushresult(&b);
  size_t len;
  const char *all = lua_tolstring(L, -1, &len);
  lua_pushlstring(L, all, out_len);
  lua_pushlstring(L, all + out_len, len - out_len);
  lua_pushboolean(L, truncated);
  return 3;
}

static int l_ping(lua_State *L) {
  vc_agent_t *a = checkagent(L);
  vc_err_t err = {0};
  return result(L, a->ops->ping(a, &err), &err);
}

static int l_shutdown(lua_State *L) {
  vc_agent_t *a = checkagent(L);
  vc_err_t err = {0};
  return result(L, a->ops->shutdown(a, &err), &err);
}

static const struct {
  const char *name;
  int num;
} signals[] = {
    {"ABRT", SIGABRT}, {"ALRM", SIGALRM}, {"BUS", SIGBUS},
    {"CHLD", SIGCHLD}, {"CONT", SIGCONT}, {"FPE", SIGFPE},
    {"HUP", SIGHUP},   {"ILL", SIGILL},   {"INT", SIGINT},
    {"IO", SIGIO},     {"KILL", SIGKILL}, {"PIPE", SIGPIPE},
    {"PROF", SIGPROF}, {"PWR", SIGPWR},   {"QUIT", SIGQUIT},
    {"SEGV", SIGSEGV}, {"STOP", SIGSTOP}, {"SYS", SIGSYS},
    {"TERM", SIGTERM}, {"TRAP", SIGTRAP}, {"TSTP", SIGTSTP},
    {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU}, {"URG", SIGURG},
    {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"VTALRM", SIGVTALRM},
    {"WINCH", SIGWINCH}, {"XCPU", SIGXCPU}, {"XFSZ", SIGXFSZ},
};

static int l_signum(lua_State *L) {
  const char *s = luaL_checkstring(L, 1);
  const char *name = strncasecmp(s, "SIG", 3) == 0 ? s + 3 : s;
  if (isdigit((unsigned char)s[0])) {
    char *end;
    long n = strtol(s, &end, 10);
    if (*end == '\0' && n > 0 && n < NSIG) {
      lua_pushinteger(L, n);
      return 1;
    }
  } else {
    for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++) {
      if (strcasecmp(name, signals[i].name) == 0) {
        lua_pushinteger(L, signals[i].num);
        return 1;
      }
    }
  }
  luaL_pushfail(L);
  lua_pushfstring(L, "invalid signal \"%s\"", s);
  return 2;
}

static const luaL_Reg methods[] = {
    {"close", l_close},
    {"connect", l_connect},
    {"create_container", l_create_container},
    {"create_pod", l_create_pod},
    {"destroy_pod", l_destroy_pod},
    {"exec", l_exec},
    {"attach", l_attach},
    {"logs", l_logs},
    {"list_processes", l_list_processes},
    {"ping", l_ping},
    {"read_output", l_read_output},
    {"remove_container", l_remove_container},
    {"shutdown", l_shutdown},
    {"signal", l_signal},
    {"update_container", l_update_container},
    {"pause_container", l_pause_container},
    {"resume_container", l_resume_container},
    {"start_container", l_start_container},
    {"stats", l_stats},
    {"status", l_status},
    {"stop_container", l_stop_container},
    {"wait", l_wait},
    {NULL, NULL},
};

static const luaL_Reg metamethods[] = {
    {"__close", l_close},
    {"__gc", l_close},
    {"__index", NULL},
    {"__tostring", l_tostring},
    {NULL, NULL},
};

static const luaL_Reg funcs[] = {
    {"open", l_open},
    {"signum", l_signum},
    {NULL, NULL},
};

int luaopen_vc_core_agent(lua_State *L) {
  luaL_newmetatable(L, AGENT_MT);
  luaL_setfuncs(L, metamethods, 0);
  luaL_newlibtable(L, methods);
  luaL_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  return 1;
}
