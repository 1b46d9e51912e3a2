/* src/host/ - the vc program: main.c (a Lua 5.4 host, as lua.c), the Lua
 * state it starts from and the C modules it preloads (luahost.c), vc
 * repl's line editor (lineedit.c) and Ctrl-C (interrupt.c).  The top of
 * the tree: it may use every other folder of src/ but src/agentd/.
 *
 * luahost.h - the Lua state a vc host starts from, shared by the vc
 * program (main.c) and the fuzz targets that run the project's Lua code. */
#ifndef VC_LUAHOST_H
#define VC_LUAHOST_H

#include <lua.h>
#include <stddef.h>

/* The folder holding lua/vc/init.lua, found from /proc/self/exe: DIR/.. in
 * the build tree (build/vc next to lua/), DIR/../share/vc once installed.
 * -1 when there is none. */
int vc_lua_find_home(char *home, size_t size);

/* Open the standard libraries, preload the C core modules (vc.core.*) and
 * lua-cjson, set package.loaded["vc.core.build"], and put HOME/lua first
 * on package.path.  Runs in protected mode: it may raise (memory). */
void vc_lua_host_open(lua_State *L, const char *home);

/* This folder's modules (the others are declared in their folders). */
int luaopen_vc_core_interrupt(lua_State *L);
int luaopen_vc_core_lineedit(lua_State *L);

#endif
