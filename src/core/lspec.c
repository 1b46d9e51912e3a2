/* lspec.c - Lua config tables to spec.h structs, for the bindings. */
#include "lspec.h"

#include <lauxlib.h>
#include <stdbool.h>
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
    m->source = dupfield(L, -1, "source");
    m->path = dupfield(L, -1, "path");
    lua_getfield(L, -1, "read_only");
    m->read_only = lua_toboolean(L, -1);
    lua_pop(L, 1);
    bool tmpfs = lua_getfield(L, -1, "tmpfs") == LUA_TTABLE;
    if (tmpfs) {
      m->tmpfs_size_mib = optuint(L, lua_gettop(L), "size_mib", 0);
      if (lua_getfield(L, -1, "mode") == LUA_TSTRING)
        m->tmpfs_mode = (unsigned)strtoul(lua_tostring(L, -1), NULL, 8) & 07777;
      lua_pop(L, 1);
    }
    lua_pop(L, 2);
    if ((m->volume != NULL) + (m->source != NULL) + tmpfs != 1 ||
        m->path == NULL)
      luaL_error(L, "mounts[%d]: path and one of volume, source and tmpfs are "
                 "required", (int)i);
  }
  lua_pop(L, 1);
}

void vc_lua_resources(lua_State *L, int idx, struct vc_resources *r) {
  int res = lua_absindex(L, idx);
  luaL_checktype(L, res, LUA_TTABLE);
  r->memory_mib = optuint(L, res, "memory_mib", 0);
  r->pids = optuint(L, res, "pids", 0);
  r->cpu_quota_pct = optuint(L, res, "cpu_quota_pct", 0);
}

static void readresources(lua_State *L, int t, struct vc_resources *r) {
  int type = lua_getfield(L, t, "resources");
  if (type == LUA_TTABLE) {
    vc_lua_resources(L, -1, r);
  } else if (type != LUA_TNIL) {
    luaL_error(L, "resources: expected a table");
  }
  lua_pop(L, 1);
}

/* t[key] as an integer from lo to hi; def when absent. */
static long long optint(lua_State *L, int t, const char *key, long long lo,
                        long long hi, long long def) {
  int type = lua_getfield(L, t, key);
  lua_Integer v = def;
  if (type != LUA_TNIL) {
    int ok;
    v = lua_tointegerx(L, -1, &ok);
    if (!ok || v < lo || v > hi)
      luaL_error(L, "%s: expected an integer from %lld to %lld", key, lo, hi);
  }
  lua_pop(L, 1);
  return v;
}

static bool optbool(lua_State *L, int t, const char *key, bool def) {
  int type = lua_getfield(L, t, key);
  bool v = type == LUA_TNIL ? def : lua_toboolean(L, -1);
  if (type != LUA_TNIL && type != LUA_TBOOLEAN)
    luaL_error(L, "%s: expected a boolean", key);
  lua_pop(L, 1);
  return v;
}

/* The list t[key] (a table or nil): pushed, with its length; raises on
 * another type.  The caller pops it. */
static lua_Integer pushlist(lua_State *L, int t, const char *key) {
  int type = lua_getfield(L, t, key);
  if (type == LUA_TNIL)
    return 0;
  if (type != LUA_TTABLE)
    luaL_error(L, "%s: expected a list", key);
  return luaL_len(L, -1);
}

/* calloc of n + 1 items, raising when out of memory. */
static void *items(lua_State *L, lua_Integer n, size_t size) {
  void *p = calloc((size_t)n + 1, size);
  return p != NULL ? p : oom(L);
}

/* Values reach the agent as JSON numbers: exact up to 2^53. */
#define JSON_INT_MAX (1ll << 53)

static void dupseccomp(lua_State *L, int t, struct vc_seccomp *sc) {
  sc->default_action = dupfield(L, t, "defaultAction");
  if (sc->default_action == NULL)
    luaL_error(L, "seccomp: defaultAction is required");
  sc->default_errno = (int)optint(L, t, "defaultErrnoRet", 0, 4095, -1);
  sc->architectures = dupstrv(L, t, "architectures");
  lua_Integer n = pushlist(L, t, "syscalls");
  int rules = lua_gettop(L);
  sc->rules = items(L, n, sizeof *sc->rules);
  for (lua_Integer i = 1; i <= n; i++) {
    if (lua_rawgeti(L, rules, i) != LUA_TTABLE)
      luaL_error(L, "seccomp: syscalls[%d]: expected a table", (int)i);
    int rule = lua_gettop(L);
    struct vc_seccomp_rule *r = &sc->rules[sc->n_rules++];
    r->names = dupstrv(L, rule, "names");
    r->action = dupfield(L, rule, "action");
    if (r->action == NULL)
      luaL_error(L, "seccomp: syscalls[%d]: action is required", (int)i);
    r->errno_ret = (int)optint(L, rule, "errnoRet", 0, 4095, -1);
    lua_Integer na = pushlist(L, rule, "args");
    int args = lua_gettop(L);
    if (na > 6)
      luaL_error(L, "seccomp: syscalls[%d]: at most 6 args", (int)i);
    r->args = items(L, na, sizeof *r->args);
    for (lua_Integer j = 1; j <= na; j++) {
      if (lua_rawgeti(L, args, j) != LUA_TTABLE)
        luaL_error(L, "seccomp: syscalls[%d].args[%d]: expected a table",
                   (int)i, (int)j);
      int arg = lua_gettop(L);
      struct vc_seccomp_arg *a = &r->args[r->n_args++];
      a->op = dupfield(L, arg, "op");
      if (a->op == NULL)
        luaL_error(L, "seccomp: syscalls[%d].args[%d]: op is required",
                   (int)i, (int)j);
      a->index = (unsigned)optint(L, arg, "index", 0, 5, 0);
      a->value = (unsigned long long)optint(L, arg, "value", 0, JSON_INT_MAX, 0);
      a->value_two =
          (unsigned long long)optint(L, arg, "valueTwo", 0, JSON_INT_MAX, 0);
      lua_pop(L, 1);
    }
    lua_pop(L, 2); /* args, the rule */
  }
  lua_pop(L, 1);
}

static void dupsecurity(lua_State *L, int t, struct vc_security *s) {
  int type = lua_getfield(L, t, "security");
  if (type != LUA_TTABLE)
    luaL_error(L, "container spec: security is required");
  int sec = lua_gettop(L);
  s->privileged = optbool(L, sec, "privileged", false);
  s->no_new_privileges = optbool(L, sec, "no_new_privileges", true);
  s->read_only_rootfs = optbool(L, sec, "read_only_rootfs", false);
  s->capabilities = dupstrv(L, sec, "capabilities");
  if (lua_getfield(L, sec, "capability_sets") == LUA_TTABLE) {
    int sets = lua_gettop(L);
    s->cap_sets = true;
    s->cap_effective = dupstrv(L, sets, "effective");
    s->cap_permitted = dupstrv(L, sets, "permitted");
    s->cap_inheritable = dupstrv(L, sets, "inheritable");
    s->cap_ambient = dupstrv(L, sets, "ambient");
  } else if (!lua_isnil(L, -1)) {
    luaL_error(L, "capability_sets: expected a table");
  }
  lua_pop(L, 1);
  s->masked_paths = dupstrv(L, sec, "masked_paths");
  s->readonly_paths = dupstrv(L, sec, "readonly_paths");
  lua_Integer n = pushlist(L, sec, "rlimits");
  int list = lua_gettop(L);
  s->rlimits = items(L, n, sizeof *s->rlimits);
  for (lua_Integer i = 1; i <= n; i++) {
    if (lua_rawgeti(L, list, i) != LUA_TTABLE)
      luaL_error(L, "rlimits[%d]: expected a table", (int)i);
    struct vc_rlimit *r = &s->rlimits[s->n_rlimits++];
    r->type = dupfield(L, -1, "type");
    if (r->type == NULL)
      luaL_error(L, "rlimits[%d]: type is required", (int)i);
    r->soft = optint(L, -1, "soft", -1, JSON_INT_MAX, 0); /* -1: unlimited */
    r->hard = optint(L, -1, "hard", -1, JSON_INT_MAX, 0);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  if (lua_getfield(L, sec, "seccomp") == LUA_TTABLE) {
    s->seccomp = calloc(1, sizeof *s->seccomp);
    if (s->seccomp == NULL)
      oom(L);
    dupseccomp(L, lua_gettop(L), s->seccomp);
  } else if (!lua_isnil(L, -1)) {
    luaL_error(L, "seccomp: expected a table");
  }
  lua_pop(L, 2);
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
  vm->tcg_cache_mib = optuint(L, t, "tcg_cache_mib", 0);
  vm->share = dupfield(L, t, "share");
  vm->netns = dupfield(L, t, "netns");
  if (vm->netns != NULL && vm->netns[0] != '/')
    luaL_error(L, "vm spec: netns must be an absolute path");
  if (lua_getfield(L, t, "taps") != LUA_TNIL)
    vm->taps = dupstrv(L, t, "taps");
  lua_pop(L, 1);
  for (size_t i = 0; vm->taps != NULL && vm->taps[i] != NULL; i++)
    if (strlen(vm->taps[i]) >= 16 || strpbrk(vm->taps[i], ",=/ ") != NULL)
      luaL_error(L, "vm spec: taps[%d]: not an interface name", (int)i + 1);
  vm->network = dupfield(L, t, "network");
  vm->network_len = vm->network != NULL ? strlen(vm->network) : 0;
  vm->incoming = dupfield(L, t, "incoming");
  vm->ram_file = dupfield(L, t, "ram_file");
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
  p->groups = dupstrv(L, t, "groups");
  if (lua_getfield(L, t, "oom_score_adj") != LUA_TNIL) {
    p->has_oom_score_adj = true;
    p->oom_score_adj = (int)optint(L, t, "oom_score_adj", -1000, 1000, 0);
  }
  lua_pop(L, 1);
  lua_getfield(L, t, "terminal");
  p->terminal = lua_toboolean(L, -1);
  lua_getfield(L, t, "stdin");
  p->stdin = lua_toboolean(L, -1);
  lua_pop(L, 2);
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
  c->namespaces_of = dupfield(L, t, "namespaces_of");
  if (c->id == NULL || c->rootfs == NULL)
    luaL_error(L, "container spec: id and rootfs are required");
  vc_lua_process(L, t, &c->process);
  dupmounts(L, t, c);
  readresources(L, t, &c->resources);
  dupsecurity(L, t, &c->security);
  dupkv(L, t, "annotations", &c->annotations, &c->n_annotations);
  dupkv(L, t, "sysctl", &c->sysctls, &c->n_sysctls);
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
