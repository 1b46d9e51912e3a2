/* luahost.c - the Lua state a vc host starts from (see luahost.h): what
 * main.c runs vc.cli in, and what the fuzz targets run vc.config in. */
#include "luahost.h"

#include <lauxlib.h>
#include <libgen.h>
#include <limits.h>
#include <lua-cjson.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/agent.h"
#include "core/core.h"
#include "hv/hypervisor.h"
#include "policy/luabox.h"
#include "sys/luax.h"

#ifndef VC_VERSION
#define VC_VERSION "0.0.0"
#endif

static int file_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

int vc_lua_find_home(char *home, size_t size) {
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

static void set_path(lua_State *L, const char *home) {
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "path");
  lua_pushfstring(L, "%s/lua/?.lua;%s/lua/?/init.lua;%s", home, home,
                  lua_tostring(L, -1));
  lua_setfield(L, -3, "path");
  lua_pop(L, 2);
}

static int newer_or_same(const struct stat *a, const struct stat *b) {
  return a->st_mtim.tv_sec > b->st_mtim.tv_sec ||
         (a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
          a->st_mtim.tv_nsec >= b->st_mtim.tv_nsec);
}

/* A searcher for vc's own modules ("vc", "vc.*"), ahead of Lua's: the
 * compiled module in HOME/build/luac/ (scripts/luacache.lua, run by make)
 * while it is at least as new as its source in HOME/lua/; otherwise
 * nothing, and Lua's searcher loads the source.  Upvalue 1: HOME. */
static int search_compiled(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  const char *home = lua_tostring(L, lua_upvalueindex(1));
  if (strcmp(name, "vc") != 0 && strncmp(name, "vc.", 3) != 0)
    return 0;
  char rel[256];
  if (snprintf(rel, sizeof rel, "%s", name) >= (int)sizeof rel)
    return 0;
  for (char *p = rel; *p != '\0'; p++)
    if (*p == '.')
      *p = '/';
  static const char *const forms[] = {"%s/lua/%s.lua", "%s/lua/%s/init.lua"};
  static const char *const compiled[] = {"%s/build/luac/%s.luac",
                                         "%s/build/luac/%s/init.luac"};
  for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
    char src[PATH_MAX], bin[PATH_MAX];
    struct stat s, b;
    snprintf(src, sizeof src, forms[i], home, rel);
    if (stat(src, &s) < 0)
      continue;
    snprintf(bin, sizeof bin, compiled[i], home, rel);
    if (stat(bin, &b) < 0 || !newer_or_same(&b, &s) ||
        luaL_loadfilex(L, bin, "b") != LUA_OK)
      return 0; /* (a failed load left its message: the source decides) */
    lua_pushstring(L, src);
    return 2;
  }
  return 0;
}

/* Insert search_compiled as package.searchers[2], after the preload one. */
static void add_searcher(lua_State *L, const char *home) {
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "searchers");
  lua_Integer n = luaL_len(L, -1);
  for (lua_Integer i = n; i >= 2; i--) {
    lua_rawgeti(L, -1, i);
    lua_rawseti(L, -2, i + 1);
  }
  lua_pushstring(L, home);
  lua_pushcclosure(L, search_compiled, 1);
  lua_rawseti(L, -2, 2);
  lua_pop(L, 2);
}

void vc_lua_host_open(lua_State *L, const char *home) {
  luaL_openlibs(L);
  preload(L, "cjson", luaopen_cjson);
  preload(L, "vc.core.storage", luaopen_vc_core_storage);
  preload(L, "vc.core.state", luaopen_vc_core_state);
  preload(L, "vc.core.uuid", luaopen_vc_core_uuid);
  preload(L, "vc.core.hypervisor", luaopen_vc_core_hypervisor);
  preload(L, "vc.core.agent", luaopen_vc_core_agent);
  preload(L, "vc.core.luabox", luaopen_vc_core_luabox);
  preload(L, "vc.core.process", luaopen_vc_core_process);
  preload(L, "vc.core.host", luaopen_vc_core_host);
  preload(L, "vc.core.interrupt", luaopen_vc_core_interrupt);
  push_build(L, home);
  set_path(L, home);
  add_searcher(L, home);
}
