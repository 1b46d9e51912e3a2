/* interrupt.c - Ctrl-C for an interactive session (vc.core.interrupt).
 *
 *   interrupt.call(fn, ...) -> true, results... | false, err
 *       pcall with Ctrl-C as an error: SIGINT is blocked for fn's length
 *       and a count hook looks for it pending; the error is "interrupted"
 *   interrupt.unmasked(fn, ...) -> fn's results (its error raised again)
 *       fn runs with SIGINT delivered to a handler that does nothing: a
 *       blocking system call (a terminal read) fails with EINTR, and a
 *       program started meanwhile starts with SIGINT unblocked
 *   interrupt.raise(msg)       raise msg as an interruption (see below)
 *   interrupt.shield(prefix)   chunks whose source starts with prefix
 *                              ("@/usr/share/vc/lua/vc/") are not cut
 *
 * Where a Ctrl-C lands.  There is no handler and no flag: while call runs,
 * a Ctrl-C stays pending in the kernel until someone takes it.
 * - In a blocking wait of the C core (an agent's reply, an agent coming
 *   up, a pod's lock: sys/wait.h), the wait takes it and fails with EINTR;
 *   vc.failure turns that into interrupt.raise, so the operation unwinds
 *   through its ordinary error paths: undo lists run, locks close.
 * - In Lua code, the hook takes it every HOOK_COUNT instructions, unless a
 *   frame of a shielded chunk (vc's own modules) is on the stack above the
 *   innermost call: an operation is never cut between two of its steps,
 *   say between starting a VM and pushing the undo that stops it.  The
 *   Ctrl-C then waits for the operation's next wait, or for its return to
 *   the caller's code.
 * Once raised, an interruption is latched until call returns: the hook
 *   then runs at every instruction and raises it again in unshielded code,
 *   so a pcall in the user's loop cannot swallow it.  A Ctrl-C left pending when fn returns came too late
 *   and is dropped.
 *
 * Nothing here is a C global: the latch and the shield live in a userdata
 * in the registry. */
#include <lauxlib.h>
#include <limits.h>
#include <lua.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "luahost.h"
#include "sys/luax.h"

/* Instructions between two looks at the pending signals (one system call):
 * well under a millisecond of Lua.  (Any count hook makes Lua 5.4 check at
 * every instruction: code under call runs about half as fast.) */
#define HOOK_COUNT 10000

struct istate {
  bool latched;
  size_t plen;
  char prefix[PATH_MAX + 16];
};

/* Its address is the registry key of the state (constant, never written). */
static const char state_key = 0;

static struct istate *state(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &state_key);
  struct istate *s = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return s;
}

static void sigint_set(sigset_t *set) {
  sigemptyset(set);
  sigaddset(set, SIGINT);
}

static bool sigint_pending(void) {
  sigset_t pending;
  return sigpending(&pending) == 0 && sigismember(&pending, SIGINT) == 1;
}

/* Take every pending SIGINT (it is blocked): they are handled now. */
static void take_sigint(void) {
  sigset_t set;
  sigint_set(&set);
  struct timespec zero = {0, 0};
  while (sigtimedwait(&set, NULL, &zero) == SIGINT)
    ;
}

static int l_call(lua_State *L);

/* Whether a shielded frame runs above the innermost interrupt.call. */
static bool shielded(lua_State *L, const struct istate *s) {
  if (s->plen == 0)
    return false;
  lua_Debug ar;
  for (int level = 0; lua_getstack(L, level, &ar); level++) {
    if (!lua_getinfo(L, "Sf", &ar))
      return false;
    bool boundary = lua_tocfunction(L, -1) == l_call;
    lua_pop(L, 1);
    if (boundary)
      return false;
    if (ar.source != NULL && strncmp(ar.source, s->prefix, s->plen) == 0)
      return true;
  }
  return false;
}

static void hook(lua_State *L, lua_Debug *ar);

/* From now on the hook raises at the first instruction of unshielded code:
 * right after a pcall that caught the interruption returns, say. */
static void latch(lua_State *L, struct istate *s) {
  s->latched = true;
  lua_sethook(L, hook, LUA_MASKCOUNT, 1);
}

static void hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  struct istate *s = state(L);
  if (s == NULL || (!s->latched && !sigint_pending()))
    return;
  if (shielded(L, s))
    return;
  if (!s->latched) {
    take_sigint();
    latch(L, s);
  }
  lua_pushliteral(L, "interrupted");
  lua_error(L);
}

static int l_call(lua_State *L) {
  luaL_checkany(L, 1);
  struct istate *s = state(L);
  sigset_t set, old;
  sigint_set(&set);
  sigprocmask(SIG_BLOCK, &set, &old);
  lua_Hook oldhook = lua_gethook(L);
  int oldmask = lua_gethookmask(L), oldcount = lua_gethookcount(L);
  bool oldlatched = s->latched;
  s->latched = false;
  lua_sethook(L, hook, LUA_MASKCOUNT, HOOK_COUNT);
  int status = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
  lua_sethook(L, oldhook, oldmask, oldcount);
  s->latched = oldlatched;
  take_sigint();
  sigprocmask(SIG_SETMASK, &old, NULL);
  luaL_checkstack(L, 1, "interrupt.call");
  lua_pushboolean(L, status == LUA_OK);
  lua_insert(L, 1);
  return lua_gettop(L);
}

/* Does nothing: being there makes a blocking system call fail with EINTR. */
static void on_sigint(int sig) {
  (void)sig;
}

static int l_unmasked(lua_State *L) {
  luaL_checkany(L, 1);
  struct sigaction sa = {.sa_handler = on_sigint}, oldsa;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &oldsa);
  sigset_t set, old;
  sigint_set(&set);
  sigprocmask(SIG_UNBLOCK, &set, &old);
  int status = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
  sigprocmask(SIG_SETMASK, &old, NULL);
  sigaction(SIGINT, &oldsa, NULL);
  if (status != LUA_OK)
    return lua_error(L);
  return lua_gettop(L);
}

static int l_raise(lua_State *L) {
  luaL_checkany(L, 1);
  lua_settop(L, 1);
  struct istate *s = state(L);
  if (lua_gethook(L) == hook) /* under interrupt.call */
    latch(L, s);
  else
    s->latched = true;
  return lua_error(L);
}

static int l_shield(lua_State *L) {
  size_t len;
  const char *prefix = luaL_checklstring(L, 1, &len);
  struct istate *s = state(L);
  luaL_argcheck(L, len < sizeof s->prefix, 1, "prefix too long");
  memcpy(s->prefix, prefix, len + 1);
  s->plen = len;
  return 0;
}

static const luaL_Reg funcs[] = {
    {"call", l_call},
    {"raise", l_raise},
    {"shield", l_shield},
    {"unmasked", l_unmasked},
    {NULL, NULL},
};

int luaopen_vc_core_interrupt(lua_State *L) {
  if (state(L) == NULL) {
    struct istate *s = lua_newuserdatauv(L, sizeof *s, 0);
    memset(s, 0, sizeof *s);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &state_key);
  }
  luaL_newlib(L, funcs);
  return 1;
}
