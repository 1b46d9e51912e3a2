/* luax.h - small helpers shared by the Lua bindings of the C core.  Every
 * C module is vc.core.NAME, opened by luaopen_vc_core_NAME, declared in
 * the main header of its folder and preloaded by src/host/luahost.c. */
#ifndef VC_LUAX_H
#define VC_LUAX_H

#include <lauxlib.h>
#include <lua.h>

#include <unistd.h>

#include "error.h"

/* Push the failure triple nil, "what: why", errno (as luaL_fileresult);
 * returns the number of values pushed. */
static inline int vc_pushfail(lua_State *L, const vc_err_t *err) {
  luaL_pushfail(L);
  lua_pushstring(L, err->msg);
  lua_pushinteger(L, err->errnum);
  return 3;
}

/* A userdata owning n descriptors (initialised to -1), closed by __gc, so
 * that a raise between opening and closing them leaks nothing. */
static inline int vc_fdbox_gc(lua_State *L) {
  int *fds = lua_touserdata(L, 1);
  size_t n = lua_rawlen(L, 1) / sizeof *fds;
  for (size_t i = 0; i < n; i++)
    if (fds[i] >= 0) {
      close(fds[i]);
      fds[i] = -1;
    }
  return 0;
}

static inline int *vc_fdbox(lua_State *L, size_t n) {
  int *fds = lua_newuserdatauv(L, n * sizeof *fds, 0);
  for (size_t i = 0; i < n; i++)
    fds[i] = -1;
  if (luaL_newmetatable(L, "vc.fdbox")) {
    lua_pushcfunction(L, vc_fdbox_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  return fds;
}

/* The modules of src/sys/ (spawn.c, host.c), preloaded by luahost.c. */
int luaopen_vc_core_process(lua_State *L);
int luaopen_vc_core_host(lua_State *L);

#endif
