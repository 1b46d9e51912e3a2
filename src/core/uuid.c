/* uuid.c - random identifiers from libuuid (vc.core.uuid). */
#include <lauxlib.h>
#include <lua.h>
#include <uuid/uuid.h>

#include "core.h"
#include "sys/luax.h"

/* uuid.generate() -> "xxxxxxxx-xxxx-4xxx-xxxx-xxxxxxxxxxxx" (random, v4) */
static int l_generate(lua_State *L) {
  uuid_t u;
  char s[37];
  uuid_generate_random(u);
  uuid_unparse_lower(u, s);
  lua_pushstring(L, s);
  return 1;
}

static const luaL_Reg funcs[] = {
    {"generate", l_generate},
    {NULL, NULL},
};

int luaopen_vc_core_uuid(lua_State *L) {
  luaL_newlib(L, funcs);
  return 1;
}
