/* src/core/ - the primitives that hold a pod together: the store of
 * records and locks (storage.c, vc.core.storage), the state machine
 * (state.c, vc.core.state), random IDs (uuid.c, vc.core.uuid), and the
 * plain C descriptions of pods and containers handed to the backends
 * (spec.h, and lspec.h, which fills them from Lua tables; mock.h is the
 * failure switch both mock backends read).  It may use src/sys/ only.
 *
 * core.h - the Lua modules of this folder. */
#ifndef VC_CORE_H
#define VC_CORE_H

struct lua_State;
int luaopen_vc_core_storage(struct lua_State *L);
int luaopen_vc_core_state(struct lua_State *L);
int luaopen_vc_core_uuid(struct lua_State *L);

#endif
