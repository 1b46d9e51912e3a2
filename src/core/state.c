/* state.c - the state machine shared by pods and containers (vc.core.state).
 *
 * States: ready, running, paused, stopped.  The table below is the whole
 * policy: which moves are legal, and in which states an object may be
 * deleted.  Errors name the object and both states. */
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

#include "core.h"
#include "sys/luax.h"

enum { READY, RUNNING, PAUSED, STOPPED, NSTATES };

static const char *const state_names[] = {"ready", "running", "paused",
                                          "stopped", NULL};

/* legal[from][to] */
static const unsigned char legal[NSTATES][NSTATES] = {
    [READY] = {[RUNNING] = 1, [STOPPED] = 1},
    [RUNNING] = {[PAUSED] = 1, [STOPPED] = 1},
    [PAUSED] = {[RUNNING] = 1, [STOPPED] = 1},
    [STOPPED] = {[RUNNING] = 1},
};

static const char *const kind_names[] = {"pod", "container", NULL};

/* deletable[kind][state]: pods when not running, containers when ready or
 * stopped (a paused container lives in a paused pod: stop it first). */
static const unsigned char deletable[2][NSTATES] = {
    {[READY] = 1, [PAUSED] = 1, [STOPPED] = 1},
    {[READY] = 1, [STOPPED] = 1},
};

/* state.check(kind, id, from, to) -> true | nil, msg */
static int l_check(lua_State *L) {
  int kind = luaL_checkoption(L, 1, NULL, kind_names);
  const char *id = luaL_checkstring(L, 2);
  int from = luaL_checkoption(L, 3, NULL, state_names);
  int to = luaL_checkoption(L, 4, NULL, state_names);
  if (legal[from][to]) {
    lua_pushboolean(L, 1);
    return 1;
  }
  luaL_pushfail(L);
  lua_pushfstring(L, "%s %s: cannot move from %s to %s", kind_names[kind], id,
                  state_names[from], state_names[to]);
  return 2;
}

/* state.can_delete(kind, id, state) -> true | nil, msg */
static int l_can_delete(lua_State *L) {
  int kind = luaL_checkoption(L, 1, NULL, kind_names);
  const char *id = luaL_checkstring(L, 2);
  int st = luaL_checkoption(L, 3, NULL, state_names);
  if (deletable[kind][st]) {
    lua_pushboolean(L, 1);
    return 1;
  }
  luaL_pushfail(L);
  lua_pushfstring(L, "%s %s: cannot delete while %s (stop it first)",
                  kind_names[kind], id, state_names[st]);
  return 2;
}

/* state.valid(s) -> boolean */
static int l_valid(lua_State *L) {
  const char *s = luaL_checkstring(L, 1);
  int ok = 0;
  for (int i = 0; state_names[i] != NULL; i++)
    ok |= strcmp(s, state_names[i]) == 0;
  lua_pushboolean(L, ok);
  return 1;
}

static const luaL_Reg funcs[] = {
    {"can_delete", l_can_delete},
    {"check", l_check},
    {"valid", l_valid},
    {NULL, NULL},
};

int luaopen_vc_core_state(lua_State *L) {
  luaL_newlib(L, funcs);
  lua_createtable(L, NSTATES, 0);
  for (int i = 0; i < NSTATES; i++) {
    lua_pushstring(L, state_names[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "states");
  return 1;
}
