/* host.c - what vc sees of the host beyond its store, for recovery
 * (`vc gc`, forced deletes): the processes a backend may have left running,
 * and the mounts it may have left behind.
 *
 *   host.processes(prefixes) -> { {pid=, ppid=, start=, exe=, cmdline=}... }
 *       live processes whose program's file name starts with one of the
 *       prefixes ("qemu-system", "vc-agent"); cmdline is the argument list
 *   host.kill(pid, start [, timeout]) -> true | nil, msg
 *       SIGKILL the process named by pid and start time (never a process
 *       that reused the pid) and wait until it is gone
 *   host.mounts(prefix) -> { path... }
 *       mount points of this mount namespace at or under the folder prefix,
 *       the deepest first
 *   host.umount(path) -> true | nil, msg, errno
 *       detach the mount at path (never following a symlink)
 *   host.kind(path) -> "directory" | "file" | "other" | nil, msg, errno
 *       what path names, symlinks followed
 *   host.identity(path) -> "DEV:INO:SIZE:MTIME_NS" | nil, msg, errno
 *       which file path names and which version of it (symlinks followed):
 *       changes when the file is replaced or rewritten (VM templates)
 *   host.lock(path) -> lock | nil, msg, errno
 *       an exclusive flock on path (created), waiting for it; lock:unlock()
 *       or closing it (also __close, __gc) releases it */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "cleanup.h"
#include "error.h"
#include "fileio.h"
#include "luax.h"
#include "process.h"

#define CMDLINE_MAX (64 * 1024)

static bool has_prefix(lua_State *L, int prefixes, const char *name) {
  lua_Integer n = luaL_len(L, prefixes);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_geti(L, prefixes, i);
    size_t len;
    const char *p = lua_tolstring(L, -1, &len);
    bool match = p != NULL && strncmp(name, p, len) == 0;
    lua_pop(L, 1);
    if (match)
      return true;
  }
  return false;
}

/* Push pid's argument list; false when the process is gone or is a kernel
 * thread (no arguments). */
static bool push_cmdline(lua_State *L, pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
  cleanup_free char *data = NULL;
  size_t len;
  vc_err_t err;
  if (vc_read_file(path, CMDLINE_MAX, &data, &len, &err) < 0 || len == 0)
    return false;
  lua_createtable(L, 8, 0);
  lua_Integer i = 0;
  for (size_t at = 0; at < len;) {
    size_t n = strnlen(data + at, len - at);
    lua_pushlstring(L, data + at, n);
    lua_rawseti(L, -2, ++i);
    at += n + 1;
  }
  return true;
}

/* The parent of pid (field 4 of /proc/PID/stat); 0 when unknown. */
static pid_t parent_of(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  cleanup_free char *data = NULL;
  size_t len;
  vc_err_t err;
  if (vc_read_file(path, 4096, &data, &len, &err) < 0)
    return 0;
  const char *p = strrchr(data, ')');
  int ppid;
  if (p == NULL || sscanf(p + 1, " %*c %d", &ppid) != 1)
    return 0;
  return (pid_t)ppid;
}

static int l_processes(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  cleanup_dir DIR *d = opendir("/proc");
  if (d == NULL) {
    vc_err_t err;
    vc_error(&err, errno, "/proc");
    return vc_pushfail(L, &err);
  }
  lua_newtable(L);
  lua_Integer count = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (!isdigit((unsigned char)e->d_name[0]))
      continue;
    char *end;
    long lpid = strtol(e->d_name, &end, 10);
    if (*end != '\0' || lpid <= 0 || lpid > INT_MAX)
      continue;
    pid_t pid = (pid_t)lpid;
    char path[64], exe[PATH_MAX];
    snprintf(path, sizeof path, "/proc/%d/exe", (int)pid);
    ssize_t n = readlink(path, exe, sizeof exe - 1);
    if (n <= 0)
      continue; /* gone, or a kernel thread */
    exe[n] = '\0';
    const char *slash = strrchr(exe, '/');
    const char *name = slash != NULL ? slash + 1 : exe;
    if (!has_prefix(L, 1, name))
      continue;
    unsigned long long start;
    vc_err_t err;
    if (vc_proc_start_time(pid, &start, &err) < 0 || !vc_proc_alive(pid, start))
      continue;
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, pid);
    lua_setfield(L, -2, "pid");
    lua_pushinteger(L, (lua_Integer)start);
    lua_setfield(L, -2, "start");
    lua_pushinteger(L, parent_of(pid));
    lua_setfield(L, -2, "ppid");
    lua_pushstring(L, name);
    lua_setfield(L, -2, "exe");
    if (!push_cmdline(L, pid)) {
      lua_pop(L, 1);
      continue;
    }
    lua_setfield(L, -2, "cmdline");
    lua_rawseti(L, -2, ++count);
  }
  return 1;
}

static int l_kill(lua_State *L) {
  lua_Integer pid = luaL_checkinteger(L, 1);
  lua_Integer start = luaL_checkinteger(L, 2);
  lua_Number timeout = luaL_optnumber(L, 3, 5);
  luaL_argcheck(L, pid > 0 && pid <= INT_MAX, 1, "not a process id");
  luaL_argcheck(L, start >= 0, 2, "not a start time");
  luaL_argcheck(L, timeout >= 0, 3, "negative timeout");
  if (!vc_proc_end((pid_t)pid, (unsigned long long)start, SIGKILL, timeout)) {
    luaL_pushfail(L);
    lua_pushfstring(L, "process %d survives SIGKILL", (int)pid);
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* Undo the octal escapes of /proc/self/mountinfo (\040 for a space...). */
static void unescape(char *s) {
  char *out = s;
  for (char *p = s; *p != '\0'; p++) {
    if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' &&
        p[2] <= '7' && p[3] >= '0' && p[3] <= '7') {
      *out++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
      p += 3;
    } else {
      *out++ = *p;
    }
  }
  *out = '\0';
}

static int l_mounts(lua_State *L) {
  size_t plen;
  const char *prefix = luaL_checklstring(L, 1, &plen);
  luaL_argcheck(L, plen > 1 && prefix[0] == '/' && prefix[plen - 1] != '/', 1,
                "an absolute folder path expected");
  cleanup_file FILE *f = fopen("/proc/self/mountinfo", "re");
  if (f == NULL) {
    vc_err_t err;
    vc_error(&err, errno, "/proc/self/mountinfo");
    return vc_pushfail(L, &err);
  }
  lua_newtable(L);
  lua_Integer count = 0;
  cleanup_free char *line = NULL;
  size_t cap = 0;
  while (getline(&line, &cap, f) > 0) {
    /* ID PARENT MAJ:MIN ROOT MOUNTPOINT ... */
    char *save = NULL, *field = strtok_r(line, " ", &save);
    for (int i = 0; i < 4 && field != NULL; i++)
      field = strtok_r(NULL, " ", &save);
    if (field == NULL)
      continue;
    unescape(field);
    if (strncmp(field, prefix, plen) != 0 ||
        (field[plen] != '\0' && field[plen] != '/'))
      continue;
    lua_pushstring(L, field);
    lua_rawseti(L, -2, ++count);
  }
  /* The deepest first: mountinfo lists parents before their children. */
  for (lua_Integer i = 1, j = count; i < j; i++, j--) {
    lua_geti(L, -1, i);
    lua_geti(L, -2, j);
    lua_seti(L, -3, i);
    lua_seti(L, -2, j);
  }
  return 1;
}

static int l_umount(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  if (umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW) < 0) {
    vc_err_t err;
    vc_error(&err, errno, "unmount %s", path);
    return vc_pushfail(L, &err);
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* stat(path), symlinks followed; on failure pushes nil, msg, errno and
 * returns their count, else 0. */
static int stat_or_fail(lua_State *L, const char *path, struct stat *st) {
  if (stat(path, st) == 0)
    return 0;
  vc_err_t err;
  vc_error(&err, errno, "%s", path);
  return vc_pushfail(L, &err);
}

static int l_kind(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  struct stat st;
  int failed = stat_or_fail(L, path, &st);
  if (failed)
    return failed;
  lua_pushstring(L, S_ISDIR(st.st_mode)   ? "directory"
                    : S_ISREG(st.st_mode) ? "file"
                                          : "other");
  return 1;
}

static int l_identity(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  struct stat st;
  int failed = stat_or_fail(L, path, &st);
  if (failed)
    return failed;
  char id[128];
  snprintf(id, sizeof id, "%llu:%llu:%llu:%lld%09ld",
           (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
           (unsigned long long)st.st_size, (long long)st.st_mtim.tv_sec,
           (long)st.st_mtim.tv_nsec);
  lua_pushstring(L, id);
  return 1;
}

#define LOCK_MT "vc.host.lock"

static int lock_release(lua_State *L) {
  int *fd = luaL_checkudata(L, 1, LOCK_MT);
  if (*fd >= 0)
    close(*fd);
  *fd = -1;
  return 0;
}

static int l_lock(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int *fd = lua_newuserdatauv(L, sizeof *fd, 0);
  *fd = -1;
  luaL_setmetatable(L, LOCK_MT);
  vc_err_t err;
  *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
  if (*fd < 0) {
    vc_error(&err, errno, "lock %s", path);
    return vc_pushfail(L, &err);
  }
  while (flock(*fd, LOCK_EX) < 0) {
    if (errno != EINTR) {
      vc_error(&err, errno, "lock %s", path);
      return vc_pushfail(L, &err);
    }
  }
  return 1;
}

int luaopen_vc_core_host(lua_State *L) {
  static const luaL_Reg lock_methods[] = {
      {"unlock", lock_release},
      {"__close", lock_release},
      {"__gc", lock_release},
      {NULL, NULL},
  };
  luaL_newmetatable(L, LOCK_MT);
  luaL_setfuncs(L, lock_methods, 0);
  lua_pushvalue(L, -1);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  static const luaL_Reg funcs[] = {
      {"identity", l_identity},
      {"kill", l_kill},
      {"kind", l_kind},
      {"lock", l_lock},
      {"mounts", l_mounts},
      {"processes", l_processes},
      {"umount", l_umount},
      {NULL, NULL},
  };
  luaL_newlib(L, funcs);
  return 1;
}
