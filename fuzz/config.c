/* config.c - libFuzzer target: a JSON config file as `vc pod create
 * --config FILE.json` reads it.  lua-cjson decodes the bytes
 * (vc.config.decode_json), vc.pod.prepare validates and completes the
 * config (vc.config.pod), then what creating the pod does with a valid
 * one: the round trip of config.json through the store's encoding, the
 * backend descriptions of vc.sandbox, and their copy into the C specs of
 * lspec.c that the backends read.
 *
 * Whatever the bytes, nothing may crash, leak or raise: an invalid config
 * is refused with a message, a valid one survives the round trip
 * unchanged, validates again as itself, holds IDs the store takes, and
 * converts.  The inputs run in one Lua state set up as the vc program sets
 * up its own (luahost.c); the Lua code is read from the source tree
 * (FUZZ_HOME), or from VC_FUZZ_HOME when set (a snapshot, for long runs
 * while the tree changes). */
#include <lauxlib.h>
#include <lua.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/lspec.h"
#include "host/luahost.h"

#ifndef FUZZ_HOME
#error "FUZZ_HOME: the folder holding lua/vc (the Makefile sets it)"
#endif

/* Lua's own coverage for libFuzzer, which sees only the C code otherwise:
 * a line hook counts each pair (previous line, line) of the project's Lua
 * code, as AFL counts edges, into libFuzzer's extra counters.  libFuzzer
 * reads them from this section and resets them between inputs.  The
 * previous line's hash is kept in the state's extra space. */
#define EDGES (1u << 16)
__attribute__((section("__libfuzzer_extra_counters"), used))
static uint8_t lua_edges[EDGES];

/* The Lua state, set up once: libFuzzer calls in for every input, and a
 * fresh state each time spends nearly all of it loading vc's Lua tree.
 * Like the counters, a global by libFuzzer's design.  (libFuzzer then
 * stops checking for leaks after each input, Lua keeping memory between
 * them; LeakSanitizer still reports at exit any C allocation lost.) */
static lua_State *fuzz_state;

static void set_prev(lua_State *L, uint32_t prev) {
  memcpy(lua_getextraspace(L), &prev, sizeof prev);
}

static void line_hook(lua_State *L, lua_Debug *ar) {
  if (!lua_getinfo(L, "S", ar) || ar->source[0] != '@')
    return;
  uint32_t h = 2166136261u; /* FNV-1a of the file, then the line */
  for (const char *p = ar->source; *p != '\0'; p++)
    h = (h ^ (unsigned char)*p) * 16777619u;
  h = (h ^ (uint32_t)ar->currentline) * 16777619u;
  uint32_t prev;
  memcpy(&prev, lua_getextraspace(L), sizeof prev);
  uint32_t edge = (h ^ prev) % EDGES;
  if (lua_edges[edge] < 255)
    lua_edges[edge]++;
  set_prev(L, h >> 1);
}

/* Run by the chunk below with the bytes and the C conversions. */
static const char check_chunk[] =
    "local data, vm_box, container_box, process_box = ...\n"
    "local config = require 'vc.config'\n"
    "local pod = require 'vc.pod'\n"
    "local sandbox = require 'vc.sandbox'\n"
    "local storage = require 'vc.core.storage'\n"
    "local store = require 'vc.store'\n"
    "local cjson = require 'cjson'\n"
    "\n"
    "-- a and b hold the same data (numbers: as JSON keeps them, 14 digits)\n"
    "local function same(a, b, path)\n"
    "  if type(a) == 'number' and type(b) == 'number' then\n"
    "    assert(a == b or math.abs(a - b) <= 1e-12 * math.abs(a),\n"
    "           path .. ': ' .. tostring(a) .. ' ~= ' .. tostring(b))\n"
    "    return\n"
    "  end\n"
    "  assert(type(a) == type(b), path .. ': ' .. type(a) .. ' ~= ' .. type(b))\n"
    "  if type(a) ~= 'table' then\n"
    "    assert(a == b, path .. ': ' .. tostring(a) .. ' ~= ' .. tostring(b))\n"
    "    return\n"
    "  end\n"
    "  for k, v in pairs(a) do same(v, b[k], path .. '.' .. tostring(k)) end\n"
    "  for k in pairs(b) do assert(a[k] ~= nil, path .. '.' .. tostring(k) .. ': extra') end\n"
    "end\n"
    "\n"
    "-- What the store gives back after store.write: encoded, decoded.\n"
    "local function round_trip(t)\n"
    "  local text = cjson.encode(t)\n"
    "  local back = assert(store.read({ read = function() return text end },\n"
    "                                 'fuzz', nil, 'config'))\n"
    "  same(t, back, 'round trip')\n"
    "  return back\n"
    "end\n"
    "\n"
    "local raw, err = config.decode_json(data, 'fuzz.json')\n"
    "if not raw then\n"
    "  assert(type(err) == 'string' and err:find('^fuzz.json: '), err)\n"
    "  return\n"
    "end\n"
    "local cfg, why = pod.prepare(raw)\n"
    "if not cfg then\n"
    "  assert(type(why) == 'string' and why:find(': '), why)\n"
    "  return\n"
    "end\n"
    "-- A complete config is valid as it stands, and stays itself.\n"
    "same(cfg, assert(config.pod(cfg)), 'revalidated')\n"
    "-- Its IDs are ones the store takes (C checks them again there).\n"
    "assert(storage.valid_id(cfg.id, 'pod'))\n"
    "for _, c in ipairs(cfg.containers) do\n"
    "  assert(storage.valid_id(c.id, 'container'))\n"
    "end\n"
    "\n"
    "local st = assert(storage.open('/nonexistent/vc-fuzz'))\n"
    "local podcfg = {}\n"
    "for k, v in pairs(cfg) do podcfg[k] = v end\n"
    "podcfg.containers = nil\n"
    "podcfg = round_trip(podcfg)\n"
    "local spec = sandbox.vm_spec(st, podcfg)\n"
    "spec.share = '9p'\n"
    "vm_box(spec)\n"
    "for _, c in ipairs(cfg.containers) do\n"
    "  local ccfg = round_trip(c)\n"
    "  same(ccfg, assert(config.container(ccfg)), 'container revalidated')\n"
    "  assert(config.check_mounts(ccfg, podcfg.volumes, 'fuzz'))\n"
    "  container_box(sandbox.container_spec(ccfg))\n"
    "  process_box({ argv = ccfg.argv, env = ccfg.env, cwd = ccfg.cwd, user = ccfg.user })\n"
    "end\n";

static size_t count_strv(char **v) {
  size_t n = 0;
  while (v[n] != NULL)
    n++;
  return n;
}

/* #t[key] (0 when absent). */
static size_t field_len(lua_State *L, int t, const char *key) {
  lua_getfield(L, t, key);
  size_t n = lua_istable(L, -1) ? (size_t)luaL_len(L, -1) : 0;
  lua_pop(L, 1);
  return n;
}

/* The number of pairs in t[key] (0 when absent). */
static size_t field_pairs(lua_State *L, int t, const char *key) {
  size_t n = 0;
  lua_getfield(L, t, key);
  if (lua_istable(L, -1))
    for (lua_pushnil(L); lua_next(L, -2); lua_pop(L, 1))
      n++;
  lua_pop(L, 1);
  return n;
}

static void check_string(lua_State *L, int t, const char *key, const char *c) {
  lua_getfield(L, t, key);
  const char *s = lua_tostring(L, -1);
  if ((s == NULL) != (c == NULL) || (s != NULL && strcmp(s, c) != 0))
    luaL_error(L, "spec field %s: C has %s, Lua %s", key, c ? c : "NULL",
               s ? s : "nil");
  lua_pop(L, 1);
}

static void check_process(lua_State *L, int t, const vc_process_t *p) {
  if (p->argv == NULL || p->argv[0] == NULL || p->env == NULL)
    luaL_error(L, "process spec: no argv or env");
  if (count_strv(p->argv) != field_len(L, t, "argv") ||
      count_strv(p->env) != field_len(L, t, "env"))
    luaL_error(L, "process spec: argv or env lost entries");
  check_string(L, t, "cwd", p->cwd);
  check_string(L, t, "user", p->user);
}

static int vm_box(lua_State *L) {
  vc_vm_spec_t *vm = vc_lua_vm_box(L, 1);
  check_string(L, 1, "pod_id", vm->pod_id);
  check_string(L, 1, "kernel_params", vm->kernel_params);
  if (vm->cpus < 1 || vm->memory_mib < 64 ||
      vm->n_volumes != field_len(L, 1, "volumes") ||
      vm->n_annotations != field_pairs(L, 1, "annotations"))
    luaL_error(L, "vm spec: wrong sizes");
  for (size_t i = 0; i < vm->n_volumes; i++)
    if (vm->volumes[i].tag == NULL || vm->volumes[i].host_path[0] != '/')
      luaL_error(L, "vm spec: volume %d", (int)i + 1);
  return 0;
}

static int container_box(lua_State *L) {
  vc_container_spec_t *c = vc_lua_container_box(L, 1);
  check_string(L, 1, "id", c->id);
  check_string(L, 1, "rootfs", c->rootfs);
  check_process(L, 1, &c->process);
  if (c->n_mounts != field_len(L, 1, "mounts") ||
      c->n_annotations != field_pairs(L, 1, "annotations"))
    luaL_error(L, "container spec: wrong sizes");
  for (size_t i = 0; i < c->n_annotations; i++)
    if (vc_kv_get(c->annotations, c->n_annotations, c->annotations[i].key) ==
        NULL)
      luaL_error(L, "container spec: annotation %d", (int)i + 1);
  return 0;
}

static int process_box(lua_State *L) {
  check_process(L, 1, vc_lua_process_box(L, 1));
  return 0;
}

static int traceback(lua_State *L) {
  luaL_traceback(L, L, luaL_tolstring(L, 1, NULL), 1);
  return 1;
}

static int setup(lua_State *L) {
  const char *home = getenv("VC_FUZZ_HOME");
  vc_lua_host_open(L, home != NULL ? home : FUZZ_HOME);
  if (luaL_loadbufferx(L, check_chunk, sizeof check_chunk - 1, "=fuzz/config",
                       "t") != LUA_OK)
    return lua_error(L);
  lua_setfield(L, LUA_REGISTRYINDEX, "fuzz.check");
  return 0;
}

static int run(lua_State *L) {
  const char *data = lua_touserdata(L, 1);
  size_t size = (size_t)lua_tointeger(L, 2);
  lua_getfield(L, LUA_REGISTRYINDEX, "fuzz.check");
  lua_pushlstring(L, data, size);
  lua_pushcfunction(L, vm_box);
  lua_pushcfunction(L, container_box);
  lua_pushcfunction(L, process_box);
  lua_call(L, 4, 0);
  return 0;
}

/* Run fn(args) under a traceback; a raise is a finding. */
static void call(lua_State *L, lua_CFunction fn, const uint8_t *data,
                 size_t size) {
  lua_settop(L, 0);
  lua_pushcfunction(L, traceback);
  lua_pushcfunction(L, fn);
  lua_pushlightuserdata(L, (void *)data);
  lua_pushinteger(L, (lua_Integer)size);
  if (lua_pcall(L, 2, 0, 1) != LUA_OK) {
    fprintf(stderr, "fuzz/config: %s\n", lua_tostring(L, -1));
    abort();
  }
  lua_settop(L, 0);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  lua_State *L = luaL_newstate();
  if (L == NULL)
    abort();
  call(L, setup, NULL, 0);
  lua_sethook(L, line_hook, LUA_MASKLINE, 0);
  fuzz_state = L;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  set_prev(fuzz_state, 0);
  call(fuzz_state, run, data, size);
  return 0;
}
