/* lspec.c - Lua config tables to spec.h structs, for the bindings. */
#include "lspec.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

static void *oom(lua_State *L) {
  luaL_error(L, "not enough memory");
  return NULL;
}

/* A copy of t[key], or NULL when absent; raises on a wrong type. */
static char *dupfield(lua_State *L, int t, const char *key) {
  int type = lua_getfield(L, t, key);
  if (type == LUA_TNIL) {
    lua_pop(L, 1);
    return NULL;
  }
  if (type != LUA_TSTRING)
    luaL_error(L, "%s: expected a string, got %s", key, luaL_typename(L, -1));
  char *s = strdup(lua_tostring(L, -1));
  lua_pop(L, 1);
  return s != NULL ? s : oom(L);
}

static unsigned optuint(lua_State *L, int t, const char *key, unsigned def) {
  int type = lua_getfield(L, t, key);
  lua_Integer v = def;
  if (type != LUA_TNIL) {
    int ok;
    v = lua_tointegerx(L, -1, &ok);
    if (!ok || v < 0 || v > 1 << 24)
      luaL_error(L, "%s: expected a small non-negative integer", key);
  }
  lua_pop(L, 1);
  return (unsigned)v;
}

/* A NULL-terminated copy of the list of strings t[key] ({} when absent).
 * Checks every element before allocating, so a raise leaks nothing. */
static char **dupstrv(lua_State *L, int t, const char *key) {
  int type = lua_getfield(L, t, key);
  lua_Integer n = 0;
  if (type == LUA_TTABLE)
    n = luaL_len(L, -1);
  else if (type != LUA_TNIL)
    luaL_error(L, "%s: expected a list of strings", key);
  for (lua_Integer i = 1; i <= n; i++) {
    if (lua_rawgeti(L, -1, i) != LUA_TSTRING)
      luaL_error(L, "%s[%d]: expected a string", key, (int)i);
    lua_pop(L, 1);
  }
  char **v = calloc((size_t)n + 1, sizeof *v);
  if (v == NULL)
    return oom(L);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, i);
    v[i - 1] = strdup(lua_tostring(L, -1));
    lua_pop(L, 1);
    if (v[i - 1] == NULL) {
      vc_strv_free(v);
      return oom(L);
    }
  }
  lua_pop(L, 1);
  return v;
}

/* t[key] as a map of string to string, stored into out and n on success. */
static void dupkv(lua_State *L, int t, const char *key, struct vc_kv **out,
                  size_t *n) {
  int type = lua_getfield(L, t, key);
  size_t count = 0;
  if (type == LUA_TTABLE) {
    for (lua_pushnil(L); lua_next(L, -2); lua_pop(L, 1)) {
      if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "%s: expected a map of strings to strings", key);
      count++;
    }
  } else if (type != LUA_TNIL) {
    luaL_error(L, "%s: expected a map of strings to strings", key);
  }
  struct vc_kv *kv = calloc(count + 1, sizeof *kv);
  if (kv == NULL) {
    oom(L);
    return;
  }
  size_t i = 0;
  if (type == LUA_TTABLE) {
    for (lua_pushnil(L); lua_next(L, -2); lua_pop(L, 1), i++) {
      kv[i].key = strdup(lua_tostring(L, -2));
      kv[i].value = strdup(lua_tostring(L, -1));
      if (kv[i].key == NULL || kv[i].value == NULL) {
        for (size_t j = 0; j <= i; j++) {
          free(kv[j].key);
          free(kv[j].value);
        }
        free(kv);
        oom(L);
        return;
      }
    }
  }
  lua_pop(L, 1);
  *out = kv;
  *n = count;
}

static void dupvolumes(lua_State *L, int t, vc_vm_spec_t *vm) {
  int type = lua_getfield(L, t, "volumes");
  lua_Integer n = type == LUA_TTABLE ? luaL_len(L, -1) : 0;
  if (type != LUA_TNIL && type != LUA_TTABLE)
    luaL_error(L, "volumes: expected a list");
  vm->volumes = calloc((size_t)n + 1, sizeof *vm->volumes);
  if (vm->volumes == NULL)
    oom(L);
  int list = lua_gettop(L);
  for (lua_Integer i = 1; i <= n; i++) {
    if (lua_rawgeti(L, list, i) != LUA_TTABLE)
      luaL_error(L, "volumes[%d]: expected a table", (int)i);
    struct vc_volume *v = &vm->volumes[vm->n_volumes++];
    v->tag = dupfield(L, -1, "tag");
    v->host_path = dupfield(L, -1, "host_path");
    lua_getfield(L, -1, "read_only");
    v->read_only = lua_toboolean(L, -1);
    lua_pop(L, 2);
    if (v->tag == NULL || v->host_path == NULL)
      luaL_error(L, "volumes[%d]: tag and host_path are required", (int)i);
  }
  lua_pop(L, 1);
}

static void dupmounts(lua_State *L, int t, vc_container_spec_t *c) {
  int type = lua_getfield(L, t, "mounts");
  lua_Integer n = type == LUA_TTABLE ? luaL_len(L, -1) : 0;
  if (type != LUA_TNIL && type != LUA_TTABLE)
    luaL_error(L, "mounts: expected a list");
  c->mounts = calloc((size_t)n + 1, sizeof *c->mounts);
  if (c->mounts == NULL)
    oom(L);
  int list = lua_gettop(L);
  for (lua_Integer i = 1; i <= n; i++) {
    if (lua_rawgeti(L, list, i) != LUA_TTABLE)
      luaL_error(L, "mounts[%d]: expected a table", (int)i);
    struct vc_mount *m = &c->mounts[c->n_mounts++];
    m->volume = dupfield(L, -1, "volume");
    m->path = dupfield(L, -1, "path");
    lua_getfield(L, -1, "read_only");
    m->read_only = lua_toboolean(L, -1);
    lua_pop(L, 2);
    if (m->volume == NULL || m->path == NULL)
      luaL_error(L, "mounts[%d]: volume and path are required", (int)i);
  }
  lua_pop(L, 1);
}

static void readresources(lua_State *L, int t, struct vc_resources *r) {
  int type = lua_getfield(L, t, "resources");
  if (type == LUA_TTABLE) {
    int res = lua_gettop(L);
    r->memory_mib = optuint(L, res, "memory_mib", 0);
    r->pids = optuint(L, res, "pids", 0);
    r->cpu_quota_pct = optuint(L, res, "cpu_quota_pct", 0);
  } else if (type != LUA_TNIL) {
    luaL_error(L, "resources: expected a table");
  }
  lua_pop(L, 1);
}

void vc_lua_vm_spec(lua_State *L, int idx, vc_vm_spec_t *vm) {
  int t = lua_absindex(L, idx);
  luaL_checktype(L, t, LUA_TTABLE);
  vm->pod_id = dupfield(L, t, "pod_id");
  vm->run_dir = dupfield(L, t, "run_dir");
  if (vm->pod_id == NULL || vm->run_dir == NULL)
    luaL_error(L, "vm spec: pod_id and run_dir are required");
  vm->cpus = optuint(L, t, "cpus", 1);
  vm->memory_mib = optuint(L, t, "memory_mib", 256);
  vm->kernel = dupfield(L, t, "kernel");
  vm->initrd = dupfield(L, t, "initrd");
  vm->kernel_params = dupfield(L, t, "kernel_params");
  vm->share = dupfield(L, t, "share");
  vm->incoming = dupfield(L, t, "incoming");
  lua_getfield(L, t, "foreground");
  vm->foreground = lua_toboolean(L, -1);
  lua_pop(L, 1);
  dupvolumes(L, t, vm);
  dupkv(L, t, "annotations", &vm->annotations, &vm->n_annotations);
}

void vc_lua_process(lua_State *L, int idx, vc_process_t *p) {
  int t = lua_absindex(L, idx);
  luaL_checktype(L, t, LUA_TTABLE);
  p->argv = dupstrv(L, t, "argv");
  if (p->argv[0] == NULL)
    luaL_error(L, "argv: must not be empty");
  p->env = dupstrv(L, t, "env");
  p->cwd = dupfield(L, t, "cwd");
  p->user = dupfield(L, t, "user");
}

static int container_box_gc(lua_State *L) {
  vc_container_spec_free(lua_touserdata(L, 1));
  return 0;
}

static int vm_box_gc(lua_State *L) {
  vc_vm_spec_free(lua_touserdata(L, 1));
  return 0;
}

static int process_box_gc(lua_State *L) {
  vc_process_free(lua_touserdata(L, 1));
  return 0;
}

/* A zeroed userdata whose __gc frees it with gc. */
static void *newbox(lua_State *L, size_t size, const char *name,
                    lua_CFunction gc) {
  void *box = lua_newuserdatauv(L, size, 0);
  memset(box, 0, size);
  if (luaL_newmetatable(L, name)) {
    lua_pushcfunction(L, gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  return box;
}

vc_container_spec_t *vc_lua_container_box(lua_State *L, int idx) {
  int t = lua_absindex(L, idx);
  luaL_checktype(L, t, LUA_TTABLE);
  vc_container_spec_t *c = newbox(L, sizeof *c, "vc.container_spec",
                                  container_box_gc);
  c->id = dupfield(L, t, "id");
  c->rootfs = dupfield(L, t, "rootfs");
  if (c->id == NULL || c->rootfs == NULL)
    luaL_error(L, "container spec: id and rootfs are required");
  vc_lua_process(L, t, &c->process);
  dupmounts(L, t, c);
  readresources(L, t, &c->resources);
  dupkv(L, t, "annotations", &c->annotations, &c->n_annotations);
  return c;
}

vc_process_t *vc_lua_process_box(lua_State *L, int idx) {
  int t = lua_absindex(L, idx);
  luaL_checktype(L, t, LUA_TTABLE);
  vc_process_t *p = newbox(L, sizeof *p, "vc.process_spec", process_box_gc);
  vc_lua_process(L, t, p);
  return p;
}

vc_vm_spec_t *vc_lua_vm_box(lua_State *L, int idx) {
  int t = lua_absindex(L, idx);
  luaL_checktype(L, t, LUA_TTABLE);
  vc_vm_spec_t *vm = newbox(L, sizeof *vm, "vc.vm_spec", vm_box_gc);
  vc_lua_vm_spec(L, t, vm);
  return vm;
}
