/* lspec.h - copying validated Lua config tables into spec.h structs.
 *
 * The destination must be zeroed and owned by something Lua collects (a
 * handle's userdata, or a box from vc_lua_box_*), because a wrong type
 * raises: whatever was copied before the raise is then freed by __gc. */
#ifndef VC_LSPEC_H
#define VC_LSPEC_H

#include <lua.h>

#include "spec.h"

void vc_lua_vm_spec(lua_State *L, int idx, vc_vm_spec_t *vm);
void vc_lua_process(lua_State *L, int idx, vc_process_t *p);
/* { memory_mib, pids, cpu_quota_pct } (each optional: 0). */
void vc_lua_resources(lua_State *L, int idx, struct vc_resources *r);

/* Push a collectable box holding a container spec copied from the table
 * at idx; returns the spec, valid while the box is on the stack. */
vc_container_spec_t *vc_lua_container_box(lua_State *L, int idx);
/* Same for a VM spec and for a bare process description. */
vc_vm_spec_t *vc_lua_vm_box(lua_State *L, int idx);
vc_process_t *vc_lua_process_box(lua_State *L, int idx);

#endif
