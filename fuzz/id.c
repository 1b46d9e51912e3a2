/* id.c - libFuzzer target: pod and container IDs and store folders, as
 * the C core checks them before it builds any path (storage.c).  The
 * first byte picks the kind (pod or container); the rest is the ID, and
 * also a root folder for vc_store_init.
 *
 * Invariants, whatever the bytes:
 * - vc_id_check (C strings) and storage.valid_id (Lua strings, NULs
 *   included) accept exactly what a plain reading of the rule accepts:
 *   [A-Za-z0-9][A-Za-z0-9_.-]{0,63}, and for a container none of the
 *   names a pod folder holds;
 * - so an accepted ID never holds '/' or a NUL, is never "." or "..", and
 *   is 1 to VC_ID_MAX bytes; its folders are the tree's pods/ folder plus
 *   "/ID", nothing else;
 * - a refused one is EINVAL with a message of one printable line;
 * - a store root is accepted only when absolute and short enough, and its
 *   trees are ROOT/lib and ROOT/run. */
#include <errno.h>
#include <lauxlib.h>
#include <limits.h>
#include <lua.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "core/storage.h"
#include "sys/luax.h"

#define ROOT "/fuzz/root"

#define check(cond)                                                          \
  do {                                                                       \
    if (!(cond)) {                                                           \
      fprintf(stderr, "fuzz/id: %s:%d: %s\n", __FILE__, __LINE__, #cond);    \
      abort();                                                               \
    }                                                                        \
  } while (0)

static const char *const reserved[] = {"agent.json", "config.json",
                                       "hypervisor.json", "lock",
                                       "network.json", "state.json", NULL};

/* The rule, read plainly, on len bytes. */
static int rule(int container, const char *id, size_t len) {
  if (len < 1 || len > 64)
    return 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)id[i];
    int alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                (c >= '0' && c <= '9');
    if (!alnum && (i == 0 || (c != '_' && c != '.' && c != '-')))
      return 0;
  }
  if (container)
    for (size_t i = 0; reserved[i] != NULL; i++)
      if (strlen(reserved[i]) == len && memcmp(reserved[i], id, len) == 0)
        return 0;
  return 1;
}

static void check_refusal(const vc_err_t *err) {
  size_t n = strnlen(err->msg, sizeof err->msg);
  check(err->errnum == EINVAL);
  check(n > 0 && n < sizeof err->msg);
  for (size_t i = 0; i < n; i++)
    check((unsigned char)err->msg[i] >= 0x20 &&
          (unsigned char)err->msg[i] < 0x7f);
}

/* The C entry points, on the bytes up to the first NUL. */
static void check_c(int container, const char *id) {
  size_t len = strlen(id);
  vc_err_t err;
  int ok = vc_id_check(container ? "container" : "pod", id, &err) == 0;
  check(ok == rule(container, id, len));
  if (!ok) {
    check_refusal(&err);
  } else {
    check(len >= 1 && len <= VC_ID_MAX);
    check(strchr(id, '/') == NULL);
    check(strcmp(id, ".") != 0 && strcmp(id, "..") != 0);
    check(id[0] != '.' && id[0] != '-' && id[0] != '_');
  }

  vc_store_t s;
  check(vc_store_init(&s, ROOT, NULL, &err) == 0);
  char lib[PATH_MAX], run[PATH_MAX], want[PATH_MAX];
  int r = container ? vc_store_paths(&s, "pod", id, lib, run, &err)
                    : vc_store_paths(&s, id, NULL, lib, run, &err);
  check((r == 0) == ok);
  if (r < 0) {
    check_refusal(&err);
    return;
  }
  snprintf(want, sizeof want, ROOT "/lib/pods/%s%s", container ? "pod/" : "",
           id);
  check(strcmp(lib, want) == 0);
  snprintf(want, sizeof want, ROOT "/run/pods/%s%s", container ? "pod/" : "",
           id);
  check(strcmp(run, want) == 0);
  check(strstr(lib, "/../") == NULL && strstr(lib, "/./") == NULL);
}

/* A store on root (one folder) and on root and root (two). */
static void check_root(const char *root) {
  vc_store_t s;
  vc_err_t err;
  size_t len = strlen(root);
  while (len > 1 && root[len - 1] == '/')
    len--;
  int ok = vc_store_init(&s, root, NULL, &err) == 0;
  /* room for "/lib" and "/run" after the root, and the NUL */
  int fits = len + (len == 1 ? 4 : 5) <= VC_STORE_DIR_MAX;
  check(ok == (root[0] == '/' && fits));
  if (ok) {
    const char *base = len == 1 ? "" : root;
    size_t blen = len == 1 ? 0 : len;
    check(strlen(s.lib) == blen + 4 && strncmp(s.lib, base, blen) == 0 &&
          strcmp(s.lib + blen, "/lib") == 0);
    check(strlen(s.run) == blen + 4 && strcmp(s.run + blen, "/run") == 0);
  }
  ok = vc_store_init(&s, root, root, &err) == 0;
  check(ok == (root[0] == '/' && len < VC_STORE_DIR_MAX));
  if (ok)
    check(strlen(s.lib) == len && strcmp(s.lib, s.run) == 0);
}

/* The Lua binding, which sees the whole string, NULs included. */
static int check_lua(lua_State *L) {
  const char *id = lua_touserdata(L, 1);
  size_t len = (size_t)lua_tointeger(L, 2);
  int container = lua_toboolean(L, 3);
  luaL_requiref(L, "vc.core.storage", luaopen_vc_core_storage, 0);
  int storage = lua_gettop(L);
  lua_getfield(L, storage, "valid_id");
  lua_pushlstring(L, id, len);
  lua_pushstring(L, container ? "container" : "pod");
  lua_call(L, 2, 3);
  int ok = lua_toboolean(L, -3);
  check(ok == rule(container, id, len));
  check(ok || (lua_isstring(L, -2) && lua_tointeger(L, -1) == EINVAL));
  lua_settop(L, storage);

  /* store:paths refuses exactly what valid_id refuses. */
  lua_getfield(L, storage, "open");
  lua_pushliteral(L, ROOT);
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "paths");
  lua_insert(L, -2);
  if (container)
    lua_pushliteral(L, "pod");
  lua_pushlstring(L, id, len);
  lua_call(L, container ? 3 : 2, 1);
  check(lua_istable(L, -1) == ok);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  int container = data[0] & 1;
  /* A copy of exactly the bytes, NUL-terminated, so that reading past
   * them is caught. */
  char *id = malloc(size);
  check(id != NULL);
  memcpy(id, data + 1, size - 1);
  id[size - 1] = '\0';
  check_c(container, id);
  check_root(id);
  vc_err_t err;
  int rec = vc_store_record_check(container, id, &err);
  check(rec == 0 || err.errnum == EINVAL);

  lua_State *L = luaL_newstate();
  check(L != NULL);
  lua_pushcfunction(L, check_lua);
  lua_pushlightuserdata(L, id);
  lua_pushinteger(L, (lua_Integer)size - 1);
  lua_pushboolean(L, container);
  if (lua_pcall(L, 3, 0, 0) != LUA_OK) {
    fprintf(stderr, "fuzz/id: %s\n", lua_tostring(L, -1));
    abort();
  }
  lua_close(L);
  free(id);
  return 0;
}
