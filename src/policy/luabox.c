/* luabox.c - sandboxes for untrusted Lua: policies (vc.core.luabox).
 *
 *   luabox.new([{ memory = bytes, budget = instructions }]) -> box
 *   box:load(source, chunkname) -> fields, functions | nil, msg
 *   box:call(name, "ro"|"rw", ...) -> true, results... | nil, msg
 *       "ro": table arguments arrive as read-only views; "rw": as mutable
 *       copies, and when the function returns nothing or nil first, its
 *       first argument (as it changed it) comes back in its place
 *   box:memory() -> bytes the box's state holds now
 *   box:close()                       (also __gc and __close)
 *   luabox.resolve(path) -> path with links and ".." resolved | nil, msg, errno
 *   luabox.list(dir) -> sorted names of the *.lua files in dir | nil, msg, errno
 *
 * Each box is a lua_State of its own, so a policy never holds a host
 * object: values cross as data only (nil, booleans, numbers, strings and
 * tables of them, copied raw, no metamethod runs), and "ro" arguments
 * arrive as read-only views.  The state allocates through a counting
 * allocator that refuses to grow past the cap, and runs under a count
 * hook that stops it past its instruction budget (per load or call).
 * Neither stop can be swallowed: it sets the box's stop flag, the box's
 * pcall and xpcall re-raise while it is set, and the hook then fires at
 * every instruction.  A stopped box is closed and answers every later
 * call with the same message.
 *
 * Inside: the base functions without load, loadfile, dofile,
 * collectgarbage, print and warn (pcall, xpcall and setmetatable
 * replaced: a metatable with __gc is refused, since finalizers run with
 * hooks off); string (no dump), table, math, utf8, os.time/clock/date;
 * require of those and of "vc.policy" (register, realpath, read_only,
 * under) only.
 * Reading an undefined global is an error.  The C functions that loop
 * without running Lua code are charged: pattern matching its worst case,
 * (n+1)^(repetitions+1) steps for a subject of n bytes, and the table
 * functions the length of the range they walk. */
#include <errno.h>
#include <lauxlib.h>
#include <limits.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "luabox.h"
#include "sys/cleanup.h"
#include "sys/luax.h"

#define BOX_MT "vc.luabox"
#define DEFAULT_MEMORY (16 * 1024 * 1024)
#define DEFAULT_BUDGET 10000000LL
#define HOOK_STEP 1000
#define RESERVE (64 * 1024)  /* lets a stopped box build its error */
#define MAX_DEPTH 32
#define MAX_NODES 100000
#define MAX_BYTES (64 * 1024 * 1024)
#define MAX_RESULTS 8

enum { STOP_NONE, STOP_BUDGET, STOP_MEMORY };

typedef struct box {
  lua_State *B;            /* the sandbox's state; NULL once closed */
  size_t used, cap;        /* bytes allocated by B, its cap */
  long long budget, spent; /* instructions per load or call, used so far */
  int stop;                /* why it was stopped, or STOP_NONE */
  int failed;              /* the last growth failed (see box_alloc) */
  int loaded;
  char why[160];           /* the message of a stop, kept after close */
} box_t;

/* Registry keys of the sandbox's state (their addresses). */
static const char POLICY_KEY = 'p';
static const char REGISTERED_KEY = 'r';
static const char RO_MT_KEY = 'm';
static const char RO_REAL_KEY = 'o';
static const char MODULES_KEY = 'l';

static box_t *box_of(lua_State *B) {
  void *ud;
  lua_getallocf(B, &ud);
  return ud;
}

static void count_hook(lua_State *B, lua_Debug *ar);

static void stop(box_t *b, int why) {
  if (b->stop != STOP_NONE)
    return;
  b->stop = why;
  if (why == STOP_BUDGET)
    snprintf(b->why, sizeof b->why,
             "instruction budget exceeded (%lld instructions)", b->budget);
  else
    snprintf(b->why, sizeof b->why, "memory cap exceeded (%zu bytes)",
             b->cap);
  /* From now on every instruction raises (lua_sethook may be called at
   * any time, even from an allocation). */
  if (b->B != NULL)
    lua_sethook(b->B, count_hook, LUA_MASKCOUNT, 1);
}

/* Lua retries a failed allocation once after an emergency collection: a
 * second failure in a row, with no growth between them, is the one Lua
 * raises as "not enough memory", and stops the box. */
static void *box_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  box_t *b = ud;
  size_t old = ptr != NULL ? osize : 0;
  if (nsize == 0) {
    free(ptr);
    b->used -= old;
    return NULL;
  }
  if (nsize > old) {
    size_t limit = b->cap + (b->stop != STOP_NONE ? RESERVE : 0);
    size_t others = b->used - old;
    if (others > limit || nsize > limit - others) {
      if (b->failed)
        stop(b, STOP_MEMORY);
      b->failed = 1;
      return NULL;
    }
  }
  void *p = realloc(ptr, nsize);
  if (p == NULL)
    return NULL;
  b->used = b->used - old + nsize;
  if (nsize > old)
    b->failed = 0;
  return p;
}

static void count_hook(lua_State *B, lua_Debug *ar) {
  (void)ar;
  box_t *b = box_of(B);
  if (b->stop == STOP_NONE) {
    b->spent += HOOK_STEP;
    if (b->spent <= b->budget)
      return;
    stop(b, STOP_BUDGET);
  }
  lua_pushstring(B, b->why);
  lua_error(B);
}

/* Spend n steps of the budget in a C function; raises past it. */
static void charge(lua_State *B, double n) {
  box_t *b = box_of(B);
  if (b->stop == STOP_NONE && (double)b->spent + n <= (double)b->budget) {
    b->spent += (long long)n;
    return;
  }
  stop(b, STOP_BUDGET);
  lua_pushstring(B, b->why);
  lua_error(B);
}

/* pcall and xpcall: as the base library's, except that a stopped box
 * re-raises instead of returning false. */
static int finish_pcall(lua_State *B, int status, int extra) {
  box_t *b = box_of(B);
  if (status == LUA_ERRMEM)
    stop(b, STOP_MEMORY);
  if (b->stop != STOP_NONE) {
    lua_pushstring(B, b->why);
    return lua_error(B);
  }
  if (status != LUA_OK) {
    lua_pushboolean(B, 0);
    lua_pushvalue(B, -2);
    return 2;
  }
  return lua_gettop(B) - extra;
}

static int box_pcall(lua_State *B) {
  luaL_checkany(B, 1);
  lua_pushboolean(B, 1);
  lua_insert(B, 1);
  int status = lua_pcall(B, lua_gettop(B) - 2, LUA_MULTRET, 0);
  return finish_pcall(B, status, 0);
}

/* The policy's message handler, unless the box is stopped: a stop is
 * raised from the count hook, and Lua calls the handler before unwinding,
 * with hooks still off, where no budget could stop it. */
static int message_handler(lua_State *B) {
  if (box_of(B)->stop != STOP_NONE)
    return 1;
  lua_pushvalue(B, lua_upvalueindex(1));
  lua_insert(B, 1);
  lua_call(B, lua_gettop(B) - 1, 1);
  return 1;
}

static int box_xpcall(lua_State *B) {
  int n = lua_gettop(B);
  luaL_checktype(B, 2, LUA_TFUNCTION);
  lua_pushvalue(B, 2);
  lua_pushcclosure(B, message_handler, 1);
  lua_replace(B, 2);
  lua_pushboolean(B, 1);
  lua_pushvalue(B, 1);
  lua_rotate(B, 3, 2);
  int status = lua_pcall(B, n - 2, LUA_MULTRET, 2);
  return finish_pcall(B, status, 2);
}

/* A finalizer runs with hooks off, so no budget could stop it. */
static int box_setmetatable(lua_State *B) {
  int t = lua_type(B, 2);
  luaL_checktype(B, 1, LUA_TTABLE);
  luaL_argexpected(B, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
  if (t == LUA_TTABLE) {
    lua_pushliteral(B, "__gc");
    if (lua_rawget(B, 2) != LUA_TNIL)
      return luaL_error(B, "setmetatable: __gc is not available to policies");
    lua_pop(B, 1);
  }
  if (luaL_getmetafield(B, 1, "__metatable") != LUA_TNIL)
    return luaL_error(B, "cannot change a protected metatable");
  lua_settop(B, 2);
  lua_setmetatable(B, 1);
  return 1;
}

static int box_require(lua_State *B) {
  const char *name = luaL_checkstring(B, 1);
  lua_rawgetp(B, LUA_REGISTRYINDEX, &MODULES_KEY);
  if (lua_getfield(B, -1, name) == LUA_TNIL)
    return luaL_error(B, "module '%s' is not available to policies (they "
                         "may require string, table, math, utf8, os and "
                         "vc.policy)", name);
  return 1;
}

/* __index of _G and of the trimmed libraries: a clear error. */
static int missing(lua_State *B) {
  const char *lib = lua_tostring(B, lua_upvalueindex(1));
  const char *key = lua_type(B, 2) == LUA_TSTRING ? lua_tostring(B, 2) : "?";
  if (lib[0] == '\0')
    return luaL_error(B, "undefined global '%s' (not available to policies)",
                      key);
  return luaL_error(B, "'%s.%s' is not available to policies", lib, key);
}

static void guard(lua_State *B, int t, const char *lib) {
  lua_createtable(B, 0, 1);
  lua_pushstring(B, lib);
  lua_pushcclosure(B, missing, 1);
  lua_setfield(B, -2, "__index");
  lua_setmetatable(B, t);
}

/* Pattern functions -------------------------------------------------------
 * Lua's matcher backtracks without running Lua code: charge the worst
 * case before it runs, (n+1) per repetition item, per start position. */
static double pattern_cost(const char *p, size_t plen, size_t n,
                           int anchored) {
  double f = (double)n + 1, cost = anchored ? 1 : f;
  for (size_t i = 0; i < plen; i++) {
    char c = p[i];
    if (c == '%' && i + 1 < plen) {
      char d = p[++i];
      if (d == 'b' || (d >= '1' && d <= '9'))
        cost *= f;
      if (d == 'b')
        i += 2;
    } else if (c == '[') {
      size_t j = i + 1;
      if (j < plen && p[j] == '^')
        j++;
      if (j < plen && p[j] == ']')
        j++;
      while (j < plen && p[j] != ']')
        j += p[j] == '%' ? 2 : 1;
      i = j;
    } else if (c == '*' || c == '+' || c == '-') {
      cost *= f;
    } else if (c == '?') {
      cost *= 2;
    }
    if (cost > 1e18)
      break;
  }
  return cost;
}

static int charged_match(lua_State *B, int can_anchor, int plain_arg) {
  size_t n, plen;
  luaL_checklstring(B, 1, &n);
  const char *p = luaL_checklstring(B, 2, &plen);
  if (plain_arg > 0 && lua_toboolean(B, plain_arg))
    charge(B, (double)n + 1);
  else
    charge(B, pattern_cost(p, plen, n, can_anchor && plen > 0 && p[0] == '^'));
  lua_pushvalue(B, lua_upvalueindex(1));
  lua_insert(B, 1);
  lua_call(B, lua_gettop(B) - 1, LUA_MULTRET);
  return lua_gettop(B);
}

static int str_find(lua_State *B) { return charged_match(B, 1, 4); }
static int str_match(lua_State *B) { return charged_match(B, 1, 0); }
static int str_gsub(lua_State *B) { return charged_match(B, 1, 0); }

static int gmatch_step(lua_State *B) {
  charge(B, lua_tonumber(B, lua_upvalueindex(2)));
  lua_settop(B, 0);
  lua_pushvalue(B, lua_upvalueindex(1));
  lua_call(B, 0, LUA_MULTRET);
  return lua_gettop(B);
}

static int str_gmatch(lua_State *B) {
  size_t n, plen;
  luaL_checklstring(B, 1, &n);
  const char *p = luaL_checklstring(B, 2, &plen);
  double cost = pattern_cost(p, plen, n, 0);
  lua_pushvalue(B, lua_upvalueindex(1));
  lua_insert(B, 1);
  lua_call(B, lua_gettop(B) - 1, 1);
  lua_pushnumber(B, cost);
  lua_pushcclosure(B, gmatch_step, 2);
  return 1;
}

/* Table functions: charge the range they walk (a __len may make it huge). */
static double range_of(lua_State *B, int i, int j) {
  lua_Integer a = luaL_optinteger(B, i, 1);
  lua_Integer e = luaL_optinteger(B, j, 0);
  return e >= a ? (double)e - (double)a + 1 : 0;
}

static int charged_table(lua_State *B) {
  const char *which = lua_tostring(B, lua_upvalueindex(2));
  double cost = 1;
  if (strcmp(which, "move") == 0) {
    cost += range_of(B, 2, 3);
  } else if (lua_type(B, 1) == LUA_TTABLE) {
    double len = (double)luaL_len(B, 1);
    if (strcmp(which, "concat") == 0)
      cost += lua_isnoneornil(B, 4) ? len : range_of(B, 3, 4);
    else if (strcmp(which, "sort") == 0)
      cost += len * 32;
    else
      cost += len;
  }
  charge(B, cost);
  lua_pushvalue(B, lua_upvalueindex(1));
  lua_insert(B, 1);
  lua_call(B, lua_gettop(B) - 1, LUA_MULTRET);
  return lua_gettop(B);
}

/* Replace lib[name] (lib at index t) by fn with the original as upvalue 1
 * and extra (if any) as upvalue 2. */
static void wrap(lua_State *B, int t, const char *name, lua_CFunction fn,
                 const char *extra) {
  lua_getfield(B, t, name);
  int n = 1;
  if (extra != NULL) {
    lua_pushstring(B, extra);
    n = 2;
  }
  lua_pushcclosure(B, fn, n);
  lua_setfield(B, t, name);
}

/* Read-only views ---------------------------------------------------------
 * An empty proxy whose metatable reads through to the real table (kept in
 * a weak map proxy -> real), wrapping nested tables on the way out. */
static void push_readonly(lua_State *B, int real);

static int ro_real(lua_State *B, int proxy) {
  lua_rawgetp(B, LUA_REGISTRYINDEX, &RO_REAL_KEY);
  lua_pushvalue(B, proxy);
  lua_rawget(B, -2);
  lua_remove(B, -2);
  return lua_gettop(B);
}

static void push_view(lua_State *B, int idx) {
  if (lua_type(B, idx) == LUA_TTABLE)
    push_readonly(B, idx);
  else
    lua_pushvalue(B, idx);
}

static int ro_index(lua_State *B) {
  int real = ro_real(B, 1);
  lua_pushvalue(B, 2);
  lua_rawget(B, real);
  push_view(B, lua_gettop(B));
  return 1;
}

static int ro_newindex(lua_State *B) {
  return luaL_error(B, "attempt to modify a read-only table (hooks and "
                       "admit see copies; mutate may change the config)");
}

static int ro_len(lua_State *B) {
  int real = ro_real(B, 1);
  lua_pushinteger(B, (lua_Integer)lua_rawlen(B, real));
  return 1;
}

static int ro_next(lua_State *B) {
  int real = ro_real(B, 1);
  lua_settop(B, real);
  lua_pushvalue(B, 2);
  if (lua_next(B, real) == 0)
    return 0;
  push_view(B, lua_gettop(B));
  lua_remove(B, -2);
  return 2;
}

static int ro_pairs(lua_State *B) {
  lua_pushcfunction(B, ro_next);
  lua_pushvalue(B, 1);
  lua_pushnil(B);
  return 3;
}

static void push_readonly(lua_State *B, int real) {
  real = lua_absindex(B, real);
  lua_createtable(B, 0, 0);
  lua_rawgetp(B, LUA_REGISTRYINDEX, &RO_REAL_KEY);
  lua_pushvalue(B, -2);
  lua_pushvalue(B, real);
  lua_rawset(B, -3);
  lua_pop(B, 1);
  lua_rawgetp(B, LUA_REGISTRYINDEX, &RO_MT_KEY);
  lua_setmetatable(B, -2);
}

/* Crossing between states ----------------------------------------------- */

struct xfer {
  lua_State *from, *to;
  int nodes;
  size_t bytes;            /* of strings copied so far */
  const char *what;        /* "argument" or "result", for messages */
  char err[128];
};

/* The real table of the read-only view at idx pushed (its index), or 0
 * when idx is no view. */
static int real_table(lua_State *F, int idx) {
  if (!lua_getmetatable(F, idx))
    return 0;
  lua_rawgetp(F, LUA_REGISTRYINDEX, &RO_MT_KEY);
  int is_view = lua_rawequal(F, -1, -2);
  lua_pop(F, 2);
  if (!is_view)
    return 0;
  lua_rawgetp(F, LUA_REGISTRYINDEX, &RO_REAL_KEY);
  lua_pushvalue(F, idx);
  lua_rawget(F, -2);
  lua_remove(F, -2);
  return lua_gettop(F);
}

/* Push onto x->to a copy of the value at idx (absolute) of x->from.
 * Only reads x->from, without allocating there; returns -1 with x->err
 * set for what cannot cross. */
static int copy_value(struct xfer *x, int idx, int depth) {
  lua_State *F = x->from, *T = x->to;
  if (++x->nodes > MAX_NODES) {
    snprintf(x->err, sizeof x->err, "%s too large (over %d values)", x->what,
             MAX_NODES);
    return -1;
  }
  switch (lua_type(F, idx)) {
  case LUA_TNIL:
    lua_pushnil(T);
    return 0;
  case LUA_TBOOLEAN:
    lua_pushboolean(T, lua_toboolean(F, idx));
    return 0;
  case LUA_TNUMBER:
    if (lua_isinteger(F, idx))
      lua_pushinteger(T, lua_tointeger(F, idx));
    else
      lua_pushnumber(T, lua_tonumber(F, idx));
    return 0;
  case LUA_TSTRING: {
    size_t len;
    const char *s = lua_tolstring(F, idx, &len);
    x->bytes += len;
    if (x->bytes > MAX_BYTES) {
      snprintf(x->err, sizeof x->err, "%s too large (over %d bytes)", x->what,
               MAX_BYTES);
      return -1;
    }
    lua_pushlstring(T, s, len);
    return 0;
  }
  case LUA_TLIGHTUSERDATA:
    /* cjson.null */
    if (lua_touserdata(F, idx) == NULL) {
      lua_pushnil(T);
      return 0;
    }
    break;
  case LUA_TTABLE: {
    if (depth >= MAX_DEPTH || !lua_checkstack(F, 6) || !lua_checkstack(T, 4)) {
      snprintf(x->err, sizeof x->err, "%s nested too deeply (over %d levels)",
               x->what, MAX_DEPTH);
      return -1;
    }
    int real = real_table(F, idx);
    if (real != 0) {
      /* a view handed back: its table, which the box could not change */
      int r = copy_value(x, real, depth);
      lua_remove(F, real);
      return r;
    }
    lua_newtable(T);
    lua_pushnil(F);
    while (lua_next(F, idx) != 0) {
      int kt = lua_type(F, -2);
      if (kt != LUA_TSTRING && kt != LUA_TNUMBER && kt != LUA_TBOOLEAN) {
        snprintf(x->err, sizeof x->err, "%s has a %s key", x->what,
                 lua_typename(F, kt));
        lua_pop(F, 2);
        return -1;
      }
      int top = lua_gettop(F);
      if (copy_value(x, top - 1, depth + 1) < 0 ||
          copy_value(x, top, depth + 1) < 0) {
        lua_pop(F, 2);
        return -1;
      }
      lua_rawset(T, -3);
      lua_pop(F, 1);
    }
    return 0;
  }
  default:
    break;
  }
  snprintf(x->err, sizeof x->err, "%s holds a %s (only data crosses)",
           x->what, luaL_typename(F, idx));
  return -1;
}

/* Running inside the box ------------------------------------------------- */

struct call_ctx {
  lua_State *host;
  int first, n;            /* the arguments on the host's stack */
  int readonly;
  const char *name;        /* the policy function to call */
  const char *src;         /* or the source to load */
  size_t len;
  const char *chunkname;
};

static int box_register(lua_State *B) {
  luaL_checktype(B, 1, LUA_TTABLE);
  if (lua_rawgetp(B, LUA_REGISTRYINDEX, &REGISTERED_KEY) != LUA_TNIL)
    return luaL_error(B, "register: a policy registers one table");
  lua_settop(B, 1);
  lua_rawsetp(B, LUA_REGISTRYINDEX, &REGISTERED_KEY);
  return 0;
}

static int resolve(const char *in, char *out, size_t size, vc_err_t *err);

static int box_realpath(lua_State *B) {
  const char *p = luaL_checkstring(B, 1);
  char out[PATH_MAX];
  vc_err_t err;
  charge(B, 1000);
  if (resolve(p, out, sizeof out, &err) < 0) {
    luaL_pushfail(B);
    lua_pushstring(B, err.msg);
    return 2;
  }
  lua_pushstring(B, out);
  return 1;
}

/* read_only(path): whether path lies on a read-only mount. */
static int box_read_only(lua_State *B) {
  const char *p = luaL_checkstring(B, 1);
  struct statvfs sv;
  charge(B, 1000);
  if (statvfs(p, &sv) < 0) {
    luaL_pushfail(B);
    lua_pushfstring(B, "%s: %s", p, strerror(errno));
    return 2;
  }
  lua_pushboolean(B, (sv.f_flag & ST_RDONLY) != 0);
  return 1;
}

/* under(path, dir): path is dir or lies below it (by name). */
static int box_under(lua_State *B) {
  size_t n, d;
  const char *p = luaL_checklstring(B, 1, &n);
  const char *dir = luaL_checklstring(B, 2, &d);
  while (d > 1 && dir[d - 1] == '/')
    d--;
  int ok = n >= d && memcmp(p, dir, d) == 0 &&
           (n == d || p[d] == '/' || (d == 1 && dir[0] == '/'));
  lua_pushboolean(B, ok);
  return 1;
}

static const luaL_Reg policy_lib[] = {
    {"read_only", box_read_only},
    {"realpath", box_realpath},
    {"register", box_register},
    {"under", box_under},
    {NULL, NULL},
};

/* Open the allowed libraries into a fresh state (runs protected). */
static int setup(lua_State *B) {
  luaL_requiref(B, "_G", luaopen_base, 1);
  int g = lua_gettop(B);
  /* rawset too: it would write past a read-only view */
  static const char *const removed[] = {"collectgarbage", "dofile", "load",
                                        "loadfile", "print", "rawset",
                                        "warn", NULL};
  for (int i = 0; removed[i] != NULL; i++) {
    lua_pushnil(B);
    lua_setfield(B, g, removed[i]);
  }
  static const luaL_Reg replaced[] = {
      {"pcall", box_pcall},
      {"require", box_require},
      {"setmetatable", box_setmetatable},
      {"xpcall", box_xpcall},
      {NULL, NULL},
  };
  luaL_setfuncs(B, replaced, 0);

  lua_newtable(B);  /* the modules require may return */
  int mods = lua_gettop(B);
  luaL_requiref(B, "string", luaopen_string, 1);
  int s = lua_gettop(B);
  lua_pushnil(B);
  lua_setfield(B, s, "dump");
  wrap(B, s, "find", str_find, NULL);
  wrap(B, s, "match", str_match, NULL);
  wrap(B, s, "gmatch", str_gmatch, NULL);
  wrap(B, s, "gsub", str_gsub, NULL);
  guard(B, s, "string");
  lua_setfield(B, mods, "string");
  luaL_requiref(B, "table", luaopen_table, 1);
  int t = lua_gettop(B);
  static const char *const walking[] = {"concat", "insert", "move", "remove",
                                        "sort", NULL};
  for (int i = 0; walking[i] != NULL; i++)
    wrap(B, t, walking[i], charged_table, walking[i]);
  lua_setfield(B, mods, "table");
  luaL_requiref(B, "math", luaopen_math, 1);
  lua_setfield(B, mods, "math");
  luaL_requiref(B, "utf8", luaopen_utf8, 1);
  lua_setfield(B, mods, "utf8");
  luaopen_os(B);
  int full = lua_gettop(B);
  lua_createtable(B, 0, 3);
  static const char *const os_kept[] = {"clock", "date", "time", NULL};
  for (int i = 0; os_kept[i] != NULL; i++) {
    lua_getfield(B, full, os_kept[i]);
    lua_setfield(B, -2, os_kept[i]);
  }
  guard(B, lua_gettop(B), "os");
  lua_pushvalue(B, -1);
  lua_setfield(B, g, "os");
  lua_setfield(B, mods, "os");
  lua_pop(B, 1);
  luaL_newlib(B, policy_lib);
  lua_setfield(B, mods, "vc.policy");
  lua_pushvalue(B, mods);
  lua_rawsetp(B, LUA_REGISTRYINDEX, &MODULES_KEY);
  /* package.loaded of the box is left as luaL_requiref made it; nothing
   * in the box can reach it. */

  lua_newtable(B);  /* weak map proxy -> real table */
  lua_createtable(B, 0, 1);
  lua_pushliteral(B, "k");
  lua_setfield(B, -2, "__mode");
  lua_setmetatable(B, -2);
  lua_rawsetp(B, LUA_REGISTRYINDEX, &RO_REAL_KEY);
  static const luaL_Reg ro_meta[] = {
      {"__index", ro_index},
      {"__len", ro_len},
      {"__newindex", ro_newindex},
      {"__pairs", ro_pairs},
      {NULL, NULL},
  };
  luaL_newlib(B, ro_meta);
  lua_pushboolean(B, 0);
  lua_setfield(B, -2, "__metatable");
  lua_rawsetp(B, LUA_REGISTRYINDEX, &RO_MT_KEY);
  guard(B, g, "");
  return 0;
}

static int load_policy(lua_State *B) {
  struct call_ctx *c = lua_touserdata(B, 1);
  if (luaL_loadbufferx(B, c->src, c->len, c->chunkname, "t") != LUA_OK)
    return lua_error(B);
  lua_call(B, 0, 1);
  int returned = lua_type(B, -1);
  int registered = lua_rawgetp(B, LUA_REGISTRYINDEX, &REGISTERED_KEY);
  if (returned == LUA_TTABLE && registered != LUA_TNIL)
    return luaL_error(B, "a policy returns its table or registers it, not "
                         "both");
  if (returned != LUA_TTABLE && registered == LUA_TNIL)
    return luaL_error(B, "a policy must return a table or register one "
                         "(require \"vc.policy\".register{...})");
  if (registered == LUA_TNIL)
    lua_pop(B, 1);
  lua_rawsetp(B, LUA_REGISTRYINDEX, &POLICY_KEY);
  return 0;
}

static int call_policy(lua_State *B) {
  struct call_ctx *c = lua_touserdata(B, 1);
  lua_settop(B, 0);
  lua_rawgetp(B, LUA_REGISTRYINDEX, &POLICY_KEY);
  lua_pushstring(B, c->name);
  if (lua_rawget(B, 1) != LUA_TFUNCTION)
    return luaL_error(B, "the policy has no function '%s'", c->name);
  luaL_checkstack(B, c->n + 8, "too many arguments");
  struct xfer x = {c->host, B, 0, 0, "argument", ""};
  for (int i = 0; i < c->n; i++) {
    if (copy_value(&x, c->first + i, 0) < 0)
      return luaL_error(B, "%s", x.err);
    if (c->readonly && lua_type(B, -1) == LUA_TTABLE) {
      push_readonly(B, -1);
      lua_remove(B, -2);
    }
  }
  if (!c->readonly && c->n > 0) {
    /* Keep the first argument, to hand back what mutate changed. */
    lua_pushvalue(B, 3);
    lua_insert(B, 2);
    lua_call(B, c->n, LUA_MULTRET);
    if (lua_gettop(B) >= 3 && lua_type(B, 3) != LUA_TNIL)
      lua_remove(B, 2);
    else if (lua_gettop(B) >= 3)
      lua_remove(B, 3);
    return lua_gettop(B) - 1;
  }
  lua_call(B, c->n, LUA_MULTRET);
  return lua_gettop(B) - 1;
}

/* Host side ---------------------------------------------------------------- */

static box_t *checkbox(lua_State *L) {
  return luaL_checkudata(L, 1, BOX_MT);
}

static void box_shut(box_t *b) {
  if (b->B != NULL) {
    /* Should anything still run while closing, it raises at once. */
    stop(b, b->stop != STOP_NONE ? b->stop : STOP_BUDGET);
    lua_State *B = b->B;
    b->B = NULL;
    lua_close(B);
  }
}

static int l_close(lua_State *L) {
  box_t *b = checkbox(L);
  int why = b->stop;
  box_shut(b);
  b->stop = why;
  return 0;
}

/* nil, msg for a failed load or call; a stopped box is closed. */
static int box_failed(lua_State *L, box_t *b, int status) {
  if (status == LUA_ERRMEM)
    stop(b, STOP_MEMORY);
  luaL_pushfail(L);
  if (b->stop != STOP_NONE) {
    lua_pushstring(L, b->why);
    int why = b->stop;
    box_shut(b);
    b->stop = why;
  } else if (lua_type(b->B, -1) == LUA_TSTRING) {
    size_t len;
    const char *msg = lua_tolstring(b->B, -1, &len);
    lua_pushlstring(L, msg, len);
  } else {
    lua_pushfstring(L, "(error object is a %s value)",
                    luaL_typename(b->B, -1));
  }
  if (b->B != NULL)
    lua_settop(b->B, 0);
  return 2;
}

/* Start a load or call: a fresh budget, the hook armed. */
static int begin(lua_State *L, box_t *b) {
  if (b->B == NULL && b->stop == STOP_NONE)
    return luaL_error(L, "luabox: using a closed box");
  if (b->B == NULL) {
    luaL_pushfail(L);
    lua_pushstring(L, b->why);
    return 2;
  }
  lua_settop(b->B, 0);
  b->spent = 0;
  lua_sethook(b->B, count_hook, LUA_MASKCOUNT, HOOK_STEP);
  return 0;
}

static int l_load(lua_State *L) {
  box_t *b = checkbox(L);
  struct call_ctx c = {0};
  c.src = luaL_checklstring(L, 2, &c.len);
  c.chunkname = luaL_checkstring(L, 3);
  if (b->loaded)
    return luaL_error(L, "this box already holds a policy");
  int n = begin(L, b);
  if (n > 0)
    return n;
  lua_State *B = b->B;
  lua_pushcfunction(B, load_policy);
  lua_pushlightuserdata(B, &c);
  int status = lua_pcall(B, 1, 0, 0);
  if (status != LUA_OK)
    return box_failed(L, b, status);
  b->loaded = 1;
  /* Describe it: its data fields, and the names of its functions. */
  lua_rawgetp(B, LUA_REGISTRYINDEX, &POLICY_KEY);
  lua_checkstack(B, 8);
  lua_newtable(L);
  lua_newtable(L);
  int fields = lua_gettop(L) - 1, funcs = fields + 1;
  struct xfer x = {B, L, 0, 0, "policy table", ""};
  lua_pushnil(B);
  while (lua_next(B, 1) != 0) {
    if (lua_type(B, -2) != LUA_TSTRING) {
      lua_settop(B, 0);
      luaL_pushfail(L);
      lua_pushliteral(L, "a policy table has string keys only");
      return 2;
    }
    if (lua_type(B, -1) == LUA_TFUNCTION) {
      lua_pushstring(L, lua_tostring(B, -2));
      lua_pushboolean(L, 1);
      lua_rawset(L, funcs);
    } else {
      lua_pushstring(L, lua_tostring(B, -2));
      if (copy_value(&x, lua_gettop(B), 0) < 0) {
        lua_settop(B, 0);
        luaL_pushfail(L);
        lua_pushstring(L, x.err);
        return 2;
      }
      lua_rawset(L, fields);
    }
    lua_pop(B, 1);
  }
  lua_settop(B, 0);
  return 2;
}

static int l_call(lua_State *L) {
  box_t *b = checkbox(L);
  static const char *const modes[] = {"ro", "rw", NULL};
  struct call_ctx c = {0};
  c.host = L;
  c.name = luaL_checkstring(L, 2);
  c.readonly = luaL_checkoption(L, 3, NULL, modes) == 0;
  c.first = 4;
  c.n = lua_gettop(L) - 3;
  if (!b->loaded && b->B != NULL)
    return luaL_error(L, "this box holds no policy (load one first)");
  /* Copying in reads the host's stack only: make room for it now. */
  luaL_checkstack(L, 2 * MAX_DEPTH + MAX_RESULTS + 8, "policy call");
  int n = begin(L, b);
  if (n > 0)
    return n;
  lua_State *B = b->B;
  lua_pushcfunction(B, call_policy);
  lua_pushlightuserdata(B, &c);
  int status = lua_pcall(B, 1, LUA_MULTRET, 0);
  if (status != LUA_OK)
    return box_failed(L, b, status);
  int nres = lua_gettop(B);
  if (nres > MAX_RESULTS)
    nres = MAX_RESULTS;
  int base = lua_gettop(L);
  lua_pushboolean(L, 1);
  struct xfer x = {B, L, 0, 0, "result", ""};
  for (int i = 1; i <= nres; i++) {
    if (copy_value(&x, i, 0) < 0) {
      lua_settop(L, base);
      lua_settop(B, 0);
      luaL_pushfail(L);
      lua_pushfstring(L, "%s: %s", c.name, x.err);
      return 2;
    }
  }
  lua_settop(B, 0);
  return nres + 1;
}

static int l_memory(lua_State *L) {
  box_t *b = checkbox(L);
  lua_pushinteger(L, (lua_Integer)b->used);
  return 1;
}

static int l_gc(lua_State *L) {
  box_shut(checkbox(L));
  return 0;
}

static int l_new(lua_State *L) {
  lua_Integer memory = DEFAULT_MEMORY, budget = DEFAULT_BUDGET;
  if (!lua_isnoneornil(L, 1)) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "memory");
    memory = luaL_optinteger(L, -1, memory);
    lua_getfield(L, 1, "budget");
    budget = luaL_optinteger(L, -1, budget);
    luaL_argcheck(L, memory >= 64 * 1024 && memory <= ((lua_Integer)1 << 32),
                  1, "memory must be from 64 KiB to 4 GiB");
    luaL_argcheck(L, budget >= HOOK_STEP, 1, "budget too small");
  }
  /* The userdata exists (closed) before the state, so that an error
   * while making the state leaks nothing. */
  box_t *b = lua_newuserdatauv(L, sizeof *b, 0);
  memset(b, 0, sizeof *b);
  luaL_setmetatable(L, BOX_MT);
  b->cap = (size_t)memory;
  b->budget = budget;
  lua_State *B = lua_newstate(box_alloc, b);
  if (B == NULL)
    return luaL_error(L, "luabox: not enough memory for a sandbox");
  b->B = B;
  b->spent = 0;
  lua_sethook(B, count_hook, LUA_MASKCOUNT, HOOK_STEP);
  lua_pushcfunction(B, setup);
  if (lua_pcall(B, 0, 0, 0) != LUA_OK || b->stop != STOP_NONE) {
    box_shut(b);
    return luaL_error(L, "luabox: cannot set up a sandbox (memory cap too "
                         "small?)");
  }
  return 1;
}

/* Path resolution ---------------------------------------------------------- */

/* in (absolute) as the kernel would follow it: realpath of its longest
 * existing prefix, then the rest with "." and ".." applied by name (those
 * parts do not exist, so no link can hide in them).  A dangling link is
 * refused rather than guessed at. */
static int resolve(const char *in, char *out, size_t size, vc_err_t *err) {
  size_t len = strlen(in);
  if (in[0] != '/')
    return vc_fail(err, EINVAL, "%s: not an absolute path", in);
  if (len >= PATH_MAX)
    return vc_fail(err, ENAMETOOLONG, "path too long");
  char prefix[PATH_MAX], real[PATH_MAX];
  memcpy(prefix, in, len + 1);
  size_t keep = len;
  for (;;) {
    const char *probe = keep == 0 ? "/" : prefix;
    if (realpath(probe, real) != NULL)
      break;
    if (errno != ENOENT)
      return vc_error(err, errno, "%s", probe);
    struct stat st;
    if (keep > 0 && lstat(prefix, &st) == 0)
      return vc_fail(err, ENOENT, "%s: a dangling symbolic link", prefix);
    char *slash = strrchr(prefix, '/');
    keep = (size_t)(slash - prefix);
    *slash = '\0';
  }
  size_t n = strlen(real);
  const char *p = in + keep;
  while (*p != '\0') {
    while (*p == '/')
      p++;
    size_t c = strcspn(p, "/");
    if (c == 0 || (c == 1 && p[0] == '.')) {
      /* nothing */
    } else if (c == 2 && p[0] == '.' && p[1] == '.') {
      while (n > 1 && real[n - 1] != '/')
        n--;
      if (n > 1)
        n--;
      real[n] = '\0';
    } else {
      if (n + 1 + c >= sizeof real)
        return vc_fail(err, ENAMETOOLONG, "%s: path too long", in);
      if (n > 1)
        real[n++] = '/';
      memcpy(real + n, p, c);
      n += c;
      real[n] = '\0';
    }
    p += c;
  }
  if (n + 1 > size)
    return vc_fail(err, ENAMETOOLONG, "%s: path too long", in);
  memcpy(out, real, n + 1);
  return 0;
}

static int l_resolve(lua_State *L) {
  const char *p = luaL_checkstring(L, 1);
  char out[PATH_MAX];
  vc_err_t err;
  if (resolve(p, out, sizeof out, &err) < 0)
    return vc_pushfail(L, &err);
  lua_pushstring(L, out);
  return 1;
}

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int l_list(lua_State *L) {
  const char *dir = luaL_checkstring(L, 1);
  cleanup_dir DIR *d = opendir(dir);
  if (d == NULL) {
    vc_err_t err;
    vc_error(&err, errno, "%s", dir);
    return vc_pushfail(L, &err);
  }
  lua_newtable(L);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    size_t len = strlen(e->d_name);
    struct stat st;
    if (len <= 4 || e->d_name[0] == '.' ||
        strcmp(e->d_name + len - 4, ".lua") != 0 ||
        fstatat(dirfd(d), e->d_name, &st, 0) < 0 || !S_ISREG(st.st_mode))
      continue;
    lua_pushstring(L, e->d_name);
    lua_rawseti(L, -2, ++n);
  }
  /* Sort in Lua's own table.sort order: byte order, as strcmp. */
  const char **names = lua_newuserdatauv(L, (size_t)n * sizeof *names + 1, 0);
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, -2, i + 1);
    names[i] = lua_tostring(L, -1);
    lua_pop(L, 1);  /* still referenced by the table */
  }
  qsort(names, (size_t)n, sizeof *names, cmp_names);
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_pushstring(L, names[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static const luaL_Reg box_methods[] = {
    {"call", l_call},
    {"close", l_close},
    {"load", l_load},
    {"memory", l_memory},
    {NULL, NULL},
};

static const luaL_Reg box_meta[] = {
    {"__close", l_gc},
    {"__gc", l_gc},
    {NULL, NULL},
};

static const luaL_Reg funcs[] = {
    {"list", l_list},
    {"new", l_new},
    {"resolve", l_resolve},
    {NULL, NULL},
};

int luaopen_vc_core_luabox(lua_State *L) {
  luaL_newmetatable(L, BOX_MT);
  luaL_setfuncs(L, box_meta, 0);
  luaL_newlib(L, box_methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  return 1;
}
