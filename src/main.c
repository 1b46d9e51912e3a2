/* main.c - the vc program: a Lua 5.4 host for the project's Lua code.
 *
 * It opens the standard libraries, preloads the C core modules and
 * lua-cjson, points package.path at the project's Lua tree (the build tree
 * or the installed one, found from /proc/self/exe), and hands argv to
 * vc.cli under lua_pcall with a traceback handler, as lua.c does. */
#include <errno.h>
#include <limits.h>
#include <lauxlib.h>
#include <libgen.h>
#include <lua-cjson.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "luax.h"

#ifndef VC_VERSION
#define VC_VERSION "0.0.0"
#endif

struct args {
  int argc;
  char **argv;
  int status;      /* exit status returned by vc.cli.main */
};

static int file_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

/* Find the folder holding lua/vc/init.lua: DIR/.. in the build tree
 * (build/vc next to lua/), DIR/../share/vc once installed. */
static int find_home(char *home, size_t size) {
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n < 0)
    return -1;
  exe[n] = '\0';
  char *dir = dirname(exe);
  static const char *const candidates[] = {"%s/..", "%s/../share/vc"};
  for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++) {
    char probe[PATH_MAX + 64];
    snprintf(home, size, candidates[i], dir);
    snprintf(probe, sizeof probe, "%s/lua/vc/init.lua", home);
    if (file_exists(probe)) {
      char resolved[PATH_MAX];
      if (realpath(home, resolved) != NULL)
        snprintf(home, size, "%s", resolved);
      return 0;
    }
  }
  return -1;
}

static void preload(lua_State *L, const char *name, lua_CFunction open) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, open);
  lua_setfield(L, -2, name);
  lua_pop(L, 1);
}

/* package.loaded["vc.core.build"]: facts fixed at build or start time. */
static void push_build(lua_State *L, const char *home) {
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_createtable(L, 0, 3);
  lua_pushliteral(L, VC_VERSION);
  lua_setfield(L, -2, "version");
  lua_pushstring(L, home);
  lua_setfield(L, -2, "home");
  lua_pushstring(L, LUA_RELEASE);
  lua_setfield(L, -2, "lua");
  lua_setfield(L, -2, "vc.core.build");
  lua_pop(L, 1);
}

static int set_path(lua_State *L, const char *home) {
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "path");
  lua_pushfstring(L, "%s/lua/?.lua;%s/lua/?/init.lua;%s", home, home,
                  lua_tostring(L, -1));
  lua_setfield(L, -3, "path");
  lua_pop(L, 2);
  return 0;
}

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
  if (find_home(home, sizeof home) < 0)
    return luaL_error(L, "cannot find the vc Lua tree (lua/vc/init.lua) "
                         "next to the program or under ../share/vc");
  luaL_openlibs(L);
  preload(L, "cjson", luaopen_cjson);
  preload(L, "vc.core.storage", luaopen_vc_core_storage);
  preload(L, "vc.core.state", luaopen_vc_core_state);
  preload(L, "vc.core.uuid", luaopen_vc_core_uuid);
  preload(L, "vc.core.hypervisor", luaopen_vc_core_hypervisor);
  preload(L, "vc.core.agent", luaopen_vc_core_agent);
  push_build(L, home);
  set_path(L, home);

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
