/* lineedit.c - line editing and history for vc repl (vc.core.lineedit),
 * over libedit's native API (histedit.h, BSD licence).
 *
 *   lineedit.isatty(fd) -> boolean
 *   lineedit.open(name, complete) -> editor    (on stdin and stdout)
 *       complete(before, columns) -> insert [, listing]: called on Tab
 *       with the line's text before the cursor and the terminal's width;
 *       insert goes in at the cursor, listing (lines ending in "\n") is
 *       shown under the line before it is drawn again
 *   ed:readline(prompt) -> line | nil at the end of input (Ctrl-D)
 *                        | nil, "interrupted", EINTR (a signal: Ctrl-C)
 *   ed:add_history(line)
 *   ed:load_history(path) -> true | nil, msg, errno
 *   ed:save_history(path) -> true | nil, msg, errno
 *       crash-atomic, mode 0600 (a history may hold secrets)
 *   ed:close()                                  (also __gc and __close)
 *
 * libedit keeps a few globals of its own (its signal code, a conversion
 * buffer); vc's state is all in the editor userdata, which libedit hands
 * back to the callbacks through EL_CLIENTDATA.  A callback never lets a Lua
 * error cross libedit's frames: the completer runs under lua_pcall, and a
 * failure there only rings the bell.
 *
 * Ctrl-C: libedit's own signal handling (EL_SIGNAL) stays off, and the
 * terminal is read by read_char below, through vc_wait_fd (sys/wait.h).
 * In vc repl SIGINT is blocked, so a Ctrl-C stays pending until that wait
 * takes it, wherever libedit was (reading, or drawing the line): readline
 * then says "interrupted".  A handler that only made read() fail would
 * lose the Ctrl-C that comes while libedit draws. */
#include <errno.h>
#include <histedit.h>
#include <lauxlib.h>
#include <limits.h>
#include <locale.h>
#include <lua.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <wchar.h>

#include "luahost.h"
#include "sys/cleanup.h"
#include "sys/fileio.h"
#include "sys/luax.h"
#include "sys/wait.h"

#define EDITOR_MT "vc.lineedit"
#define HISTORY_SIZE 1000

struct editor {
  EditLine *el;
  History *hist;
  lua_State *L;       /* the caller's, while readline runs */
  const char *prompt; /* while readline runs */
};

static void release(struct editor *ed) {
  if (ed->el != NULL)
    el_end(ed->el); /* gives the terminal its modes back */
  if (ed->hist != NULL)
    history_end(ed->hist);
  memset(ed, 0, sizeof *ed);
}

static struct editor *checkeditor(lua_State *L) {
  struct editor *ed = luaL_checkudata(L, 1, EDITOR_MT);
  if (ed->el == NULL)
    luaL_error(L, "attempt to use a closed line editor");
  return ed;
}

static struct editor *editor_of(EditLine *el) {
  void *data = NULL;
  el_get(el, EL_CLIENTDATA, &data);
  return data;
}

static char *prompt_of(EditLine *el) {
  struct editor *ed = editor_of(el);
  return (char *)(ed != NULL && ed->prompt != NULL ? ed->prompt : "");
}

/* libedit's character reader (EL_GETCFN): 1 and *wc, 0 at the end of
 * input, -1 with errno on failure (EINTR: a Ctrl-C). */
static int read_char(EditLine *el, wchar_t *wc) {
  (void)el;
  char buf[MB_LEN_MAX];
  size_t n = 0;
  for (;;) {
    vc_err_t err;
    if (vc_wait_fd(STDIN_FILENO, POLLIN, -1, &err) < 0) {
      errno = err.errnum;
      return -1;
    }
    ssize_t got = read(STDIN_FILENO, buf + n, 1);
    if (got < 0 && (errno == EINTR || errno == EAGAIN))
      continue;
    if (got <= 0)
      return got < 0 ? -1 : 0;
    n++;
    mbstate_t mbs;
    memset(&mbs, 0, sizeof mbs);
    size_t k = mbrtowc(wc, buf, n, &mbs);
    if (k == (size_t)-2 && n < sizeof buf)
      continue; /* more bytes of one character */
    if (k == (size_t)-1 || k == (size_t)-2) {
      n = 0; /* not a character here: dropped, as libedit does */
      continue;
    }
    return 1;
  }
}

/* Under lua_pcall: completer, before (light userdata), its length,
 * columns -> insert, listing (strings or nil). */
static int call_completer(lua_State *L) {
  const char *before = lua_touserdata(L, 2);
  size_t len = (size_t)lua_tointeger(L, 3);
  lua_pushvalue(L, 1);
  lua_pushlstring(L, before, len);
  lua_pushvalue(L, 4);
  lua_call(L, 2, 2);
  if (!lua_isnil(L, -2))
    luaL_checkstring(L, -2);
  if (!lua_isnil(L, -1))
    luaL_checkstring(L, -1);
  return 2;
}

/* Tab: ask the Lua completer what to insert and what to show. */
static unsigned char complete(EditLine *el, int ch) {
  (void)ch;
  struct editor *ed = editor_of(el);
  if (ed == NULL || ed->L == NULL)
    return CC_ERROR;
  lua_State *L = ed->L;
  const LineInfo *li = el_line(el);
  int columns = 80;
  el_get(el, EL_GETTC, "co", &columns);
  int top = lua_gettop(L);
  if (!lua_checkstack(L, 8))
    return CC_REFRESH_BEEP;
  lua_pushcfunction(L, call_completer);
  lua_getiuservalue(L, 1, 1); /* readline's self is at 1 */
  lua_pushlightuserdata(L, (void *)li->buffer);
  lua_pushinteger(L, li->cursor - li->buffer);
  lua_pushinteger(L, columns > 0 ? columns : 80);
  if (lua_pcall(L, 4, 2, 0) != LUA_OK) {
    lua_settop(L, top);
    return CC_REFRESH_BEEP;
  }
  const char *insert = lua_tostring(L, -2);
  size_t listing_len = 0;
  const char *listing = lua_tolstring(L, -1, &listing_len);
  unsigned char ret = CC_REFRESH_BEEP;
  if (insert != NULL && insert[0] != '\0')
    ret = el_insertstr(el, insert) == 0 ? CC_REFRESH : CC_REFRESH_BEEP;
  if (listing != NULL && listing_len > 0) {
    fputc('\n', stdout);
    fwrite(listing, 1, listing_len, stdout);
    fflush(stdout);
    ret = CC_REDISPLAY;
  }
  lua_settop(L, top);
  return ret;
}

static int l_readline(lua_State *L) {
  struct editor *ed = checkeditor(L);
  const char *prompt = luaL_optstring(L, 2, "");
  lua_settop(L, 2);
  fflush(stdout);
  ed->L = L;
  ed->prompt = prompt;
  /* The terminal in editing mode before the prompt shows (libedit would
   * switch after): a key pressed once the prompt is there is the editor's,
   * Ctrl-D included, which the terminal's line mode would swallow. */
  el_set(ed->el, EL_PREP_TERM, 1);
  int count = 0;
  errno = 0;
  const char *line = el_gets(ed->el, &count);
  int e = errno;
  ed->L = NULL;
  ed->prompt = NULL;
  if (line == NULL || count <= 0) {
    if (count < 0 && e == EINTR) {
      luaL_pushfail(L);
      lua_pushliteral(L, "interrupted");
      lua_pushinteger(L, EINTR);
      return 3;
    }
    if (count < 0 && e != 0) {
      luaL_pushfail(L);
      lua_pushfstring(L, "read: %s", strerror(e));
      lua_pushinteger(L, e);
      return 3;
    }
    luaL_pushfail(L); /* the end of input */
    return 1;
  }
  size_t len = (size_t)count;
  if (len > 0 && line[len - 1] == '\n')
    len--;
  lua_pushlstring(L, line, len);
  return 1;
}

static int l_add_history(lua_State *L) {
  struct editor *ed = checkeditor(L);
  const char *line = luaL_checkstring(L, 2);
  HistEvent ev;
  history(ed->hist, &ev, H_ENTER, line);
  return 0;
}

static int l_load_history(lua_State *L) {
  struct editor *ed = checkeditor(L);
  const char *path = luaL_checkstring(L, 2);
  vc_err_t err;
  HistEvent ev;
  errno = 0;
  if (history(ed->hist, &ev, H_LOAD, path) < 0) {
    if (errno != 0)
      vc_error(&err, errno, "history %s", path);
    else
      vc_fail(&err, EINVAL, "history %s: not a history file", path);
    return vc_pushfail(L, &err);
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* Make the folders above path that are missing (mode 0700, as the XDG
 * base directory spec asks): $XDG_STATE_HOME/vc. */
static int make_folders(const char *path, vc_err_t *err) {
  char dir[PATH_MAX];
  if (strlen(path) >= sizeof dir)
    return vc_fail(err, ENAMETOOLONG, "history %s: path too long", path);
  snprintf(dir, sizeof dir, "%s", path);
  for (char *p = strchr(dir + 1, '/'); p != NULL; p = strchr(p + 1, '/')) {
    *p = '\0';
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
      return vc_error(err, errno, "history %s", dir);
    *p = '/';
  }
  return 0;
}

/* libedit writes a history to a FILE whose descriptor it fchmods: a memfd,
 * copied then into path crash-atomically (fileio.c). */
static int save_history(History *hist, const char *path, vc_err_t *err) {
  int fd = memfd_create("vc-history", MFD_CLOEXEC);
  if (fd < 0)
    return vc_error(err, errno, "history %s", path);
  cleanup_file FILE *f = fdopen(fd, "w+");
  if (f == NULL) {
    close(fd);
    return vc_error(err, errno, "history %s", path);
  }
  HistEvent ev;
  errno = 0;
  if (history(hist, &ev, H_SAVE_FP, f) < 0 || fflush(f) != 0)
    return vc_error(err, errno != 0 ? errno : EIO, "history %s", path);
  struct stat st;
  if (fstat(fd, &st) < 0)
    return vc_error(err, errno, "history %s", path);
  size_t len = (size_t)st.st_size;
  cleanup_free char *buf = malloc(len + 1);
  if (buf == NULL)
    return vc_error(err, ENOMEM, "history %s", path);
  for (size_t off = 0; off < len;) {
    ssize_t n = pread(fd, buf + off, len - off, (off_t)off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return vc_error(err, n < 0 ? errno : EIO, "history %s", path);
    off += (size_t)n;
  }
  if (make_folders(path, err) < 0)
    return -1;
  return vc_write_atomic(path, buf, len, 0600, err);
}

static int l_save_history(lua_State *L) {
  struct editor *ed = checkeditor(L);
  const char *path = luaL_checkstring(L, 2);
  vc_err_t err;
  if (save_history(ed->hist, path, &err) < 0)
    return vc_pushfail(L, &err);
  lua_pushboolean(L, 1);
  return 1;
}

static int l_close(lua_State *L) {
  struct editor *ed = luaL_checkudata(L, 1, EDITOR_MT);
  release(ed);
  return 0;
}

static int l_tostring(lua_State *L) {
  struct editor *ed = luaL_checkudata(L, 1, EDITOR_MT);
  lua_pushstring(L, ed->el != NULL ? "line editor" : "line editor (closed)");
  return 1;
}

static int l_open(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  /* Closed first, so that a failure below leaves nothing half-made. */
  struct editor *ed = lua_newuserdatauv(L, sizeof *ed, 1);
  memset(ed, 0, sizeof *ed);
  luaL_setmetatable(L, EDITOR_MT);
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, -2, 1);
  /* Multibyte input (UTF-8) needs the user's character type. */
  setlocale(LC_CTYPE, "");
  HistEvent ev;
  ed->hist = history_init();
  if (ed->hist == NULL)
    return luaL_error(L, "lineedit: cannot create a history");
  history(ed->hist, &ev, H_SETSIZE, HISTORY_SIZE);
  history(ed->hist, &ev, H_SETUNIQUE, 1);
  ed->el = el_init(name, stdin, stdout, stderr);
  if (ed->el == NULL)
    return luaL_error(L, "lineedit: cannot set up the terminal");
  el_set(ed->el, EL_CLIENTDATA, ed);
  el_set(ed->el, EL_GETCFN, read_char);
  el_set(ed->el, EL_EDITOR, "emacs");
  el_set(ed->el, EL_PROMPT, prompt_of);
  el_set(ed->el, EL_HIST, history, ed->hist);
  /* The wide form: the narrow one copies the two strings and never frees
   * them (a leak libedit notes in its own source). */
  el_wset(ed->el, EL_ADDFN, L"vc-complete", L"complete the word at the cursor",
          complete);
  el_set(ed->el, EL_BIND, "^I", "vc-complete", NULL);
  el_source(ed->el, NULL); /* ~/.editrc, as every libedit program */
  return 1;
}

static int l_isatty(lua_State *L) {
  lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
  return 1;
}

static const luaL_Reg methods[] = {
    {"add_history", l_add_history},
    {"close", l_close},
    {"load_history", l_load_history},
    {"readline", l_readline},
    {"save_history", l_save_history},
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
    {"isatty", l_isatty},
    {"open", l_open},
    {NULL, NULL},
};

int luaopen_vc_core_lineedit(lua_State *L) {
  luaL_newmetatable(L, EDITOR_MT);
  luaL_setfuncs(L, metamethods, 0);
  luaL_newlibtable(L, methods);
  luaL_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  return 1;
}
