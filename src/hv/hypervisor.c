/* hypervisor.c - the backend registry and its Lua binding
 * (vc.core.hypervisor).
 *
 *   hypervisor.backends()              -> { "mock", ... }
 *   hypervisor.warm(name)              start what a coming pod of backend
 *                                      name will wait for (hypervisor.h)
 *   hypervisor.open(name, spec [, info]) -> hv | nil, msg
 *   hv:create() hv:start() hv:stop([timeout]) hv:pause() hv:resume()
 *   hv:destroy()                       -> true | nil, msg, errno
 *   hv:status()                        -> "none"|"running"|"paused"|"stopped"
 *   hv:info()                          -> { backend, pid, start_time, accel, agent }
 *   hv:close()                         (also __gc and __close)
 */
#include "hypervisor.h"

#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <string.h>

#include "core/lspec.h"
#include "sys/luax.h"

#define HV_MT "vc.hypervisor"

static const struct vc_hv_ops *const backends[] = {
    &vc_hv_qemu_ops,
    &vc_hv_namespace_ops,
    &vc_hv_mock_ops,
    NULL,
};

static const char *const vm_state_names[] = {
    [VC_VM_NONE] = "none",
    [VC_VM_RUNNING] = "running",
    [VC_VM_PAUSED] = "paused",
    [VC_VM_STOPPED] = "stopped",
};

const struct vc_hv_ops *vc_hv_find(const char *name) {
  for (size_t i = 0; backends[i] != NULL; i++)
    if (strcmp(backends[i]->name, name) == 0)
      return backends[i];
  return NULL;
}

typedef struct {
  vc_hv_t hv;
  int open;
} lhv_t;

static lhv_t *checkhv(lua_State *L) {
  lhv_t *h = luaL_checkudata(L, 1, HV_MT);
  if (!h->open)
    luaL_error(L, "attempt to use a closed hypervisor handle");
  return h;
}

static int l_close(lua_State *L) {
  lhv_t *h = luaL_checkudata(L, 1, HV_MT);
  vc_vm_spec_free(&h->hv.spec);
  h->open = 0;
  return 0;
}

static int l_tostring(lua_State *L) {
  lhv_t *h = luaL_checkudata(L, 1, HV_MT);
  if (!h->open)
    lua_pushliteral(L, "hypervisor (closed)");
  else
    lua_pushfstring(L, "hypervisor %s (pod %s)", h->hv.ops->name,
                    h->hv.spec.pod_id);
  return 1;
}

/* Restore the runtime facts saved by an earlier process. */
static void read_info(lua_State *L, int t, vc_hv_info_t *info) {
  if (lua_isnoneornil(L, t))
    return;
  luaL_checktype(L, t, LUA_TTABLE);
  lua_getfield(L, t, "pid");
  info->pid = (pid_t)luaL_optinteger(L, -1, 0);
  lua_getfield(L, t, "start_time");
  info->start_time = (unsigned long long)luaL_optinteger(L, -1, 0);
  lua_getfield(L, t, "accel");
  snprintf(info->accel, sizeof info->accel, "%s", luaL_optstring(L, -1, ""));
  lua_getfield(L, t, "agent");
  snprintf(info->agent, sizeof info->agent, "%s", luaL_optstring(L, -1, ""));
  lua_getfield(L, t, "share");
  snprintf(info->share, sizeof info->share, "%s", luaL_optstring(L, -1, ""));
  lua_pop(L, 5);
}

static int l_open(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  const struct vc_hv_ops *ops = vc_hv_find(name);
  if (ops == NULL) {
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (size_t i = 0; backends[i] != NULL; i++) {
      if (i > 0)
        luaL_addstring(&b, ", ");
      luaL_addstring(&b, backends[i]->name);
    }
    luaL_pushresult(&b);
    luaL_pushfail(L);
    lua_pushfstring(L, "unknown hypervisor \"%s\" (available: %s)", name,
                    lua_tostring(L, -2));
    lua_pushinteger(L, EINVAL);
    return 3;
  }
  lhv_t *h = lua_newuserdatauv(L, sizeof *h, 0);
  memset(h, 0, sizeof *h);
  luaL_setmetatable(L, HV_MT);
  h->open = 1; /* from here __gc frees whatever the spec holds */
  h->hv.ops = ops;
  vc_lua_vm_spec(L, 2, &h->hv.spec);
  read_info(L, 3, &h->hv.info);
  return 1;
}

static int result(lua_State *L, int ret, const vc_err_t *err) {
  if (ret < 0)
    return vc_pushfail(L, err);
  lua_pushboolean(L, 1);
  return 1;
}

static int l_create(lua_State *L) {
  lhv_t *h = checkhv(L);
  vc_err_t err = {0};
  return result(L, h->hv.ops->create(&h->hv, &err), &err);
}

static int l_start(lua_State *L) {
  lhv_t *h = checkhv(L);
  vc_err_t err = {0};
  return result(L, h->hv.ops->start(&h->hv, &err), &err);
}

static int l_stop(lua_State *L) {
  lhv_t *h = checkhv(L);
  double timeout = luaL_optnumber(L, 2, 10);
  vc_err_t err = {0};
  return result(L, h->hv.ops->stop(&h->hv, timeout, &err), &err);
}

static int l_pause(lua_State *L) {
  lhv_t *h = checkhv(L);
  vc_err_t err = {0};
  return result(L, h->hv.ops->pause(&h->hv, &err), &err);
}

static int l_resume(lua_State *L) {
  lhv_t *h = checkhv(L);
  vc_err_t err = {0};
  return result(L, h->hv.ops->resume(&h->hv, &err), &err);
}

static int l_destroy(lua_State *L) {
  lhv_t *h = checkhv(L);
  vc_err_t err = {0};
  return result(L, h->hv.ops->destroy(&h->hv, &err), &err);
}

/* hv:save(path [, timeout]) -> true: the VM's state into path (qemu). */
static int l_save(lua_State *L) {
  lhv_t *h = checkhv(L);
  const char *path = luaL_checkstring(L, 2);
  double timeout = luaL_optnumber(L, 3, 60);
  vc_err_t err = {0};
  if (h->hv.ops->save == NULL) {
    vc_fail(&err, ENOTSUP, "%s: cannot save a VM's state", h->hv.ops->name);
    return vc_pushfail(L, &err);
  }
  return result(L, h->hv.ops->save(&h->hv, path, timeout, &err), &err);
}

/* hv:share_rootfs(cid, host_path) -> the path the agent must use */
static int l_share_rootfs(lua_State *L) {
  lhv_t *h = checkhv(L);
  const char *cid = luaL_checkstring(L, 2);
  const char *path = luaL_checkstring(L, 3);
  if (h->hv.ops->share_rootfs == NULL) {
    lua_settop(L, 3);
    return 1;
  }
  char guest[4096];
  vc_err_t err = {0};
  if (h->hv.ops->share_rootfs(&h->hv, cid, path, guest, sizeof guest, &err) <
      0)
    return vc_pushfail(L, &err);
  lua_pushstring(L, guest);
  return 1;
}

static int l_unshare_rootfs(lua_State *L) {
  lhv_t *h = checkhv(L);
  const char *cid = luaL_checkstring(L, 2);
  vc_err_t err = {0};
  if (h->hv.ops->unshare_rootfs == NULL)
    return result(L, 0, &err);
  return result(L, h->hv.ops->unshare_rootfs(&h->hv, cid, &err), &err);
}

static int l_status(lua_State *L) {
  lhv_t *h = checkhv(L);
  vc_err_t err = {0};
  vc_vm_state_t st = VC_VM_NONE;
  if (h->hv.ops->status(&h->hv, &st, &err) < 0)
    return vc_pushfail(L, &err);
  lua_pushstring(L, vm_state_names[st]);
  return 1;
}

static int l_info(lua_State *L) {
  lhv_t *h = checkhv(L);
  lua_createtable(L, 0, 6);
  lua_pushstring(L, h->hv.ops->name);
  lua_setfield(L, -2, "backend");
  lua_pushinteger(L, h->hv.info.pid);
  lua_setfield(L, -2, "pid");
  lua_pushinteger(L, (lua_Integer)h->hv.info.start_time);
  lua_setfield(L, -2, "start_time");
  lua_pushstring(L, h->hv.info.accel);
  lua_setfield(L, -2, "accel");
  lua_pushstring(L, h->hv.info.agent);
  lua_setfield(L, -2, "agent");
  lua_pushstring(L, h->hv.info.share);
  lua_setfield(L, -2, "share");
  return 1;
}

static int l_backends(lua_State *L) {
  lua_newtable(L);
  for (size_t i = 0; backends[i] != NULL; i++) {
    lua_pushstring(L, backends[i]->name);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

static int l_warm(lua_State *L) {
  const struct vc_hv_ops *ops = vc_hv_find(luaL_checkstring(L, 1));
  if (ops != NULL && ops->warm != NULL)
    ops->warm();
  return 0;
}

static const luaL_Reg methods[] = {
    {"close", l_close},
    {"create", l_create},
    {"destroy", l_destroy},
    {"info", l_info},
    {"pause", l_pause},
    {"resume", l_resume},
    {"save", l_save},
    {"share_rootfs", l_share_rootfs},
    {"start", l_start},
    {"status", l_status},
    {"stop", l_stop},
    {"unshare_rootfs", l_unshare_rootfs},
    {NULL, NULL},
};

static const luaL_Reg metamethods[] = {
    {"__close", l_close},
    {"__gc", l_close},
    {"__index", NULL},
    {"__tostring", l_tostring},
    {NULL, NULL},
};

static const luaL_Reg funcs[] = {
    {"backends", l_backends},
    {"open", l_open},
    {"warm", l_warm},
    {NULL, NULL},
};

int luaopen_vc_core_hypervisor(lua_State *L) {
  luaL_newmetatable(L, HV_MT);
  luaL_setfuncs(L, metamethods, 0);
  luaL_newlibtable(L, methods);
  luaL_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  return 1;
}
