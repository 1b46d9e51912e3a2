/* main.c - the vc program: a Lua 5.4 host for the project's Lua code.
 *
 * It opens the standard libraries, preloads the C core modules and
 * lua-cjson, points package.path at the project's Lua tree (the build tree
 * or the installed one, found from /proc/self/exe) - all in luahost.c,
 * shared with the fuzz targets - and hands argv to vc.cli under lua_pcall
 * with a traceback handler, as lua.c does. */
#include <lauxlib.h>
#include <limits.h>
#include <lua.h>
#include <stdio.h>

#include "luahost.h"
#include "sys/luax.h"

struct args {
  int argc;
  char **argv;
  int status;      /* exit status returned by vc.cli.main */
};

static int msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)",
                          luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

static int pmain(lua_State *L) {
  struct args *a = lua_touserdata(L, 1);
  char home[PATH_MAX];
  if (vc_lua_find_home(home, sizeof home) < 0)
    return luaL_error(L, "cannot find the vc Lua tree (lua/vc/init.lua) "
                         "next to the program or under ../share/vc");
  /* The libraries and the preloaded C modules: see luahost.c. */
  vc_lua_host_open(L, home);
  /* The line editor (libedit) is vc repl's alone: linked into vc, not
   * into the fuzz targets that share luahost.c. */
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_vc_core_lineedit);
  lua_setfield(L, -2, "vc.core.lineedit");
  lua_pop(L, 1);

  lua_getglobal(L, "require");
  lua_pushliteral(L, "vc.cli");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "main");
  lua_createtable(L, a->argc, 1);
  lua_pushstring(L, a->argv[0]);
  lua_rawseti(L, -2, 0);
  for (int i = 1; i < a->argc; i++) {
    lua_pushstring(L, a->argv[i]);
    lua_rawseti(L, -2, i);
  }
  lua_call(L, 1, 1);
  a->status = (int)luaL_optinteger(L, -1, 0);
  return 0;
}

int main(int argc, char **argv) {
  lua_State *L = luaL_newstate();
  if (L == NULL) {
    fputs("vc: cannot create the Lua state: not enough memory\n", stderr);
    return 1;
  }
  struct args a = {argc, argv, 1};
  lua_pushcfunction(L, msghandler);
  lua_pushcfunction(L, pmain);
  lua_pushlightuserdata(L, &a);
  if (lua_pcall(L, 1, 0, 1) != LUA_OK) {
    fprintf(stderr, "vc: internal error: %s\n", lua_tostring(L, -1));
    a.status = 1;
  }
  lua_close(L);
  return a.status;
}
