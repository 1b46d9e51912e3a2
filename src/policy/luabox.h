/* src/policy/ - sandboxes for untrusted Lua, where policies run: each in a
 * Lua state of its own, with an allow-list of libraries, a memory cap and
 * an instruction budget (luabox.c, vc.core.luabox; docs/ARCHITECTURE.md,
 * "The sandbox").  It may use src/sys/ only.
 *
 * luabox.h - the Lua module of this folder. */
#ifndef VC_LUABOX_H
#define VC_LUABOX_H

struct lua_State;
int luaopen_vc_core_luabox(struct lua_State *L);

#endif
