/* storage.c - the pod store (vc.core.storage): folders, crash-atomic
 * records, pod locks.
 *
 * A record is written as an unnamed file (O_TMPFILE) in its folder, synced,
 * given a temporary dot-name, renamed over NAME.json, and the folder synced:
 * a reader sees a whole old or a whole new record, whenever the writer dies.
 * Locks are flock on RUN/pods/POD/lock, polled so that they can time out;
 * listing reads folders only and never waits for a lock. */
#include "storage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <limits.h>
#include <lua.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core.h"
#include "sys/cleanup.h"
#include "sys/fileio.h"
#include "sys/luax.h"
#include "sys/wait.h"

#define DIR_MODE 0750
#define FILE_MODE 0640
#define RMTREE_DEPTH 32       /* nesting beyond this is not ours to remove */
#define CREATE_LOCK_WAIT 2.0  /* seconds create_pod waits for its new lock */
#define ID_SHOWN 40           /* bytes of a bad ID quoted in a message */

enum tree { LIB, RUN };

static const char *const kind_names[] = {"pod", "container", NULL};

static const char *const pod_records[] = {"agent", "config", "hypervisor",
                                          "network", "state", NULL};

static const char *const ctr_records[] = {"config", "devices", "mounts",
                                          "process", "state", NULL};

/* What a pod folder holds besides containers: no container may take these. */
static const char *const reserved_ids[] = {
    "agent.json", "config.json", "hypervisor.json",
    "lock",       "network.json", "state.json", NULL};

static const char *const lock_modes[] = {"shared", "exclusive", NULL};

static int in_list(const char *const *list, const char *s) {
  for (size_t i = 0; list[i] != NULL; i++)
    if (strcmp(list[i], s) == 0)
      return 1;
  return 0;
}

/* IDs */

static int id_char(unsigned char c, int first) {
  if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
      (c >= '0' && c <= '9'))
    return 1;
  return !first && (c == '_' || c == '.' || c == '-');
}

/* Quote at most ID_SHOWN bytes of s, escaped, so a message stays one
 * readable line whatever the ID holds. */
static void quote(char *out, size_t size, const char *s, size_t len) {
  static const char hex[] = "0123456789abcdef";
  size_t o = 0, shown = len > ID_SHOWN ? ID_SHOWN : len;
  out[o++] = '"';
  for (size_t i = 0; i < shown && o + 8 < size; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      out[o++] = '\\';
      out[o++] = (char)c;
    } else if (c == '\n' || c == '\t' || c == '\r') {
      out[o++] = '\\';
      out[o++] = c == '\n' ? 'n' : c == '\t' ? 't' : 'r';
    } else if (c < 0x20 || c >= 0x7f) {
      out[o++] = '\\';
      out[o++] = 'x';
      out[o++] = hex[c >> 4];
      out[o++] = hex[c & 15];
    } else {
      out[o++] = (char)c;
    }
  }
  if (shown < len && o + 5 < size) {
    memcpy(out + o, "...", 3);
    o += 3;
  }
  out[o++] = '"';
  out[o] = '\0';
}

/* len counts the bytes of id that may be read: a Lua string may hold NULs. */
static int check_id(const char *kind, const char *id, size_t len,
                    vc_err_t *err) {
  if (kind == NULL)
    kind = "pod";
  if (id == NULL)
    return vc_fail(err, EINVAL, "invalid %s ID (none given)", kind);
  int ok = len >= 1 && len <= VC_ID_MAX;
  for (size_t i = 0; ok && i < len; i++)
    ok = id_char((unsigned char)id[i], i == 0);
  if (!ok) {
    char q[ID_SHOWN * 4 + 8];
    quote(q, sizeof q, id, len);
    return vc_fail(err, EINVAL,
                "invalid %s ID %s: must match [A-Za-z0-9][A-Za-z0-9_.-]{0,%d}",
                kind, q, VC_ID_MAX - 1);
  }
  if (strcmp(kind, "container") == 0 && in_list(reserved_ids, id))
    return vc_fail(err, EINVAL, "container ID \"%s\" is reserved", id);
  return 0;
}

int vc_id_check(const char *kind, const char *id, vc_err_t *err) {
  return check_id(kind, id, id == NULL ? 0 : strnlen(id, VC_ID_MAX + 1), err);
}

static int check_ids(const char *pod, const char *ctr, vc_err_t *err) {
  if (vc_id_check("pod", pod, err) < 0)
    return -1;
  if (ctr != NULL && vc_id_check("container", ctr, err) < 0)
    return -1;
  return 0;
}

int vc_store_record_check(int ctr, const char *name, vc_err_t *err) {
  if (name != NULL && in_list(ctr ? ctr_records : pod_records, name))
    return 0;
  return vc_fail(err, EINVAL, "unknown %s record \"%s\"",
              ctr ? "container" : "pod", name ? name : "(none)");
}

/* Names */

void vc_names_free(vc_names_t *names) {
  for (size_t i = 0; i < names->n; i++)
    free(names->v[i]);
  free(names->v);
  names->v = NULL;
  names->n = names->cap = 0;
}

static int names_add(vc_names_t *names, const char *s, vc_err_t *err) {
  if (names->n == names->cap) {
    size_t cap = names->cap ? names->cap * 2 : 16;
    char **v = realloc(names->v, cap * sizeof *v);
    if (v == NULL)
      return vc_error(err, ENOMEM, "list the store");
    names->v = v;
    names->cap = cap;
  }
  char *copy = strdup(s);
  if (copy == NULL)
    return vc_error(err, ENOMEM, "list the store");
  names->v[names->n++] = copy;
  return 0;
}

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Both trees may list the same ID: keep one. */
static void names_sort_unique(vc_names_t *names) {
  if (names->n == 0)
    return;
  qsort(names->v, names->n, sizeof *names->v, cmp_names);
  size_t kept = 1;
  for (size_t i = 1; i < names->n; i++) {
    if (strcmp(names->v[i], names->v[kept - 1]) == 0)
      free(names->v[i]);
    else
      names->v[kept++] = names->v[i];
  }
  names->n = kept;
}

/* Paths */

static int copy_dir(char *dst, const char *src, const char *what,
                    vc_err_t *err) {
  if (src == NULL || src[0] != '/') {
    char q[ID_SHOWN * 4 + 8];
    quote(q, sizeof q, src ? src : "", src ? strlen(src) : 0);
    return vc_fail(err, EINVAL, "storage %s %s: not an absolute path", what, q);
  }
  size_t len = strlen(src);
  while (len > 1 && src[len - 1] == '/')
    len--;
  if (len >= VC_STORE_DIR_MAX)
    return vc_error(err, ENAMETOOLONG, "storage %s %.64s...", what, src);
  memcpy(dst, src, len);
  dst[len] = '\0';
  return 0;
}

int vc_store_init(vc_store_t *s, const char *root, const char *run,
                  vc_err_t *err) {
  memset(s, 0, sizeof *s);
  if (run != NULL) {
    if (copy_dir(s->lib, root, "lib folder", err) < 0)
      return -1;
    return copy_dir(s->run, run, "run folder", err);
  }
  if (copy_dir(s->root, root, "root", err) < 0)
    return -1;
  /* "/" joins as "" so that its trees are "/lib" and "/run". */
  const char *base = strcmp(s->root, "/") == 0 ? "" : s->root;
  if (snprintf(s->lib, sizeof s->lib, "%s/lib", base) >= VC_STORE_DIR_MAX ||
      snprintf(s->run, sizeof s->run, "%s/run", base) >= VC_STORE_DIR_MAX)
    return vc_error(err, ENAMETOOLONG, "storage root %.64s...", root);
  return 0;
}

/* TREE/pods[/POD[/CTR]][/FILE]: the parts that are not NULL. */
static int tree_path(const vc_store_t *s, enum tree t, const char *pod,
                     const char *ctr, const char *file, char *buf,
                     vc_err_t *err) {
  const char *parts[] = {pod, ctr, file};
  const char *top = t == LIB ? s->lib : s->run;
  int len = snprintf(buf, PATH_MAX, "%s/pods", strcmp(top, "/") ? top : "");
  for (size_t i = 0; i < 3 && len >= 0 && len < PATH_MAX; i++)
    if (parts[i] != NULL)
      len += snprintf(buf + len, PATH_MAX - (size_t)len, "/%s", parts[i]);
  if (len < 0 || len >= PATH_MAX)
    return vc_error(err, ENAMETOOLONG, "%.64s...", buf);
  return 0;
}

static int record_path(const vc_store_t *s, const char *pod, const char *ctr,
                       const char *name, char *dir, char *file,
                       vc_err_t *err) {
  enum tree t = strcmp(name, "config") == 0 ? LIB : RUN;
  if (tree_path(s, t, pod, ctr, NULL, dir, err) < 0)
    return -1;
  if (snprintf(file, NAME_MAX + 1, "%s.json", name) > NAME_MAX)
    return vc_error(err, ENAMETOOLONG, "%s", name);
  return 0;
}

int vc_store_paths(const vc_store_t *s, const char *pod, const char *ctr,
                   char *config_dir, char *run_dir, vc_err_t *err) {
  if (check_ids(pod, ctr, err) < 0 ||
      tree_path(s, LIB, pod, ctr, NULL, config_dir, err) < 0 ||
      tree_path(s, RUN, pod, ctr, NULL, run_dir, err) < 0)
    return -1;
  return 0;
}

/* Folders */

/* 1 for a folder (not a symlink to one), 0 for nothing there. */
static int is_dir(const char *path, vc_err_t *err) {
  struct stat st;
  if (lstat(path, &st) == 0)
    return S_ISDIR(st.st_mode);
  if (errno == ENOENT || errno == ENOTDIR)
    return 0;
  return vc_error(err, errno, "%s", path);
}

/* mkdir with the mode set whatever the umask; 1 when it already existed. */
static int make_dir(const char *path, vc_err_t *err) {
  if (mkdir(path, DIR_MODE) < 0) {
    if (errno == EEXIST)
      return 1;
    return vc_error(err, errno, "create %s", path);
  }
  if (chmod(path, DIR_MODE) < 0)
    return vc_error(err, errno, "chmod %s", path);
  return 0;
}

/* path and its missing ancestors (as mkdir -p), each 0750. */
static int make_dirs(const char *path, vc_err_t *err) {
  char buf[VC_STORE_DIR_MAX];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1; *p != '\0'; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    int r = make_dir(buf, err);
    *p = '/';
    if (r < 0)
      return -1;
  }
  return make_dir(buf, err);
}

/* TREE (with its missing ancestors) and TREE/pods, made when missing. */
static int make_parents(const vc_store_t *s, enum tree t, vc_err_t *err) {
  char path[PATH_MAX];
  const char *top = t == LIB ? s->lib : s->run;
  if (make_dirs(top, err) < 0 ||
      tree_path(s, t, NULL, NULL, NULL, path, err) < 0 ||
      make_dir(path, err) < 0)
    return -1;
  return 0;
}

/* 1 when the pod (or container) has a folder in either tree. */
static int any_tree(const vc_store_t *s, const char *pod, const char *ctr,
                    vc_err_t *err) {
  char path[PATH_MAX];
  for (int t = LIB; t <= RUN; t++) {
    if (tree_path(s, (enum tree)t, pod, ctr, NULL, path, err) < 0)
      return -1;
    int r = is_dir(path, err);
    if (r != 0)
      return r;
  }
  return 0;
}

int vc_store_exists(const vc_store_t *s, const char *pod, const char *ctr,
                    vc_err_t *err) {
  if (check_ids(pod, ctr, err) < 0)
    return -1;
  return any_tree(s, pod, ctr, err);
}

/* Removal */

struct rmtree {
  char path[PATH_MAX];  /* what is being removed, for messages */
  size_t len;
};

static int remove_at(int dfd, const char *name, struct rmtree *rt, int depth,
                     vc_err_t *err);

static int empty_dir(int dfd, const char *name, struct rmtree *rt, int depth,
                     vc_err_t *err) {
  int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return errno == ENOENT ? 0 : vc_error(err, errno, "remove %s", rt->path);
  cleanup_dir DIR *d = fdopendir(fd);
  if (d == NULL) {
    vc_error(err, errno, "remove %s", rt->path);
    close(fd);
    return -1;
  }
  size_t len = rt->len;
  for (;;) {
    errno = 0;
    struct dirent *e = readdir(d);
    if (e == NULL)
      break;
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    int n = snprintf(rt->path + len, sizeof rt->path - len, "/%s", e->d_name);
    rt->len = n < 0 ? len : len + (size_t)n;
    if (rt->len >= sizeof rt->path)
      rt->len = sizeof rt->path - 1;
    int r = remove_at(dirfd(d), e->d_name, rt, depth + 1, err);
    rt->len = len;
    rt->path[len] = '\0';
    if (r < 0)
      return -1;
  }
  if (errno != 0)
    return vc_error(err, errno, "remove %s", rt->path);
  return 0;
}

/* Remove name under dfd and all it holds; a symlink is unlinked, never
 * followed.  1 when something was removed, 0 when nothing was there. */
static int remove_at(int dfd, const char *name, struct rmtree *rt, int depth,
                     vc_err_t *err) {
  if (unlinkat(dfd, name, 0) == 0)
    return 1;
  if (errno == ENOENT)
    return 0;
  if (errno != EISDIR)
    return vc_error(err, errno, "remove %s", rt->path);
  if (depth > RMTREE_DEPTH)
    return vc_fail(err, ELOOP, "remove %s: nested too deeply", rt->path);
  /* Never descend into a mount (a container's rootfs bound in by a backend):
   * deleting a pod must not delete what the mount shows. */
  struct statx stx;
  if (statx(dfd, name, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &stx) == 0 &&
      (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
      (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT))
    return vc_fail(err, EBUSY, "remove %s: a mount point; not removed",
                   rt->path);
  /* A racing writer may add a file while we empty the folder: go again. */
  for (int pass = 0;; pass++) {
    if (empty_dir(dfd, name, rt, depth, err) < 0)
      return -1;
    if (unlinkat(dfd, name, AT_REMOVEDIR) == 0)
      return 1;
    if (errno == ENOENT)
      return 0;
    if ((errno != ENOTEMPTY && errno != EEXIST) || pass >= 8)
      return vc_error(err, errno, "remove %s", rt->path);
  }
}

/* Remove TREE/pods/POD[/CTR]; 1 when it was there. */
static int remove_tree(const vc_store_t *s, enum tree t, const char *pod,
                       const char *ctr, vc_err_t *err) {
  struct rmtree rt;
  if (tree_path(s, t, pod, ctr, NULL, rt.path, err) < 0)
    return -1;
  rt.len = strlen(rt.path);
  char parent[PATH_MAX];
  memcpy(parent, rt.path, rt.len + 1);
  char *slash = strrchr(parent, '/');
  *slash = '\0';
  cleanup_close int dfd =
      open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return errno == ENOENT ? 0 : vc_error(err, errno, "remove %s", rt.path);
  return remove_at(dfd, slash + 1, &rt, 0, err);
}

int vc_store_delete_pod(const vc_store_t *s, const char *pod, vc_err_t *err) {
  if (check_ids(pod, NULL, err) < 0)
    return -1;
  /* The lib tree first: a pod that keeps its run folder (and lock) after
   * a crash here can still be locked and deleted again. */
  int lib = remove_tree(s, LIB, pod, NULL, err);
  if (lib < 0)
    return -1;
  int run = remove_tree(s, RUN, pod, NULL, err);
  if (run < 0)
    return -1;
  if (!lib && !run)
    return vc_fail(err, ENOENT, "pod %s: no such pod", pod);
  return 0;
}

int vc_store_delete_container(const vc_store_t *s, const char *pod,
                              const char *ctr, vc_err_t *err) {
  if (check_ids(pod, ctr, err) < 0)
    return -1;
  int lib = remove_tree(s, LIB, pod, ctr, err);
  if (lib < 0)
    return -1;
  int run = remove_tree(s, RUN, pod, ctr, err);
  if (run < 0)
    return -1;
  if (!lib && !run)
    return vc_fail(err, ENOENT, "container %s: no such container in pod %s", ctr,
                pod);
  return 0;
}

/* Locks */

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}


/* Open RUN/pods/POD/lock; when the pod exists but lost its run folder or
 * lock file (a create or delete killed halfway, /run cleared by a reboot),
 * make them so that the pod can still be locked and deleted. */
static int open_lock(const vc_store_t *s, const char *pod, char *path,
                     vc_err_t *err) {
  char dir[PATH_MAX], lib[PATH_MAX];
  if (tree_path(s, RUN, pod, NULL, NULL, dir, err) < 0 ||
      tree_path(s, RUN, pod, NULL, "lock", path, err) < 0 ||
      tree_path(s, LIB, pod, NULL, NULL, lib, err) < 0)
    return -1;
  for (int tries = 0; tries < 100; tries++) {
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0)
      return fd;
    if (errno != ENOENT)
      return vc_error(err, errno, "lock %s", path);
    int exists = any_tree(s, pod, NULL, err);
    if (exists < 0)
      return -1;
    if (!exists)
      return vc_fail(err, ENOENT, "pod %s: no such pod", pod);
    if (make_parents(s, RUN, err) < 0)
      return -1;
    int had = make_dir(dir, err);
    if (had < 0)
      return -1;
    if (!had) {
      /* The run folder was missing, so the pod lives on in lib only; if
       * lib went too, a delete finished meanwhile: do not bring it back. */
      int lives = is_dir(lib, err);
      if (lives <= 0) {
        rmdir(dir);
        return lives < 0 ? -1 : vc_fail(err, ENOENT, "pod %s: no such pod", pod);
      }
    }
    fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
              FILE_MODE);
    if (fd >= 0) {
      if (fchmod(fd, FILE_MODE) < 0) {
        vc_error(err, errno, "chmod %s", path);
        close(fd);
        return -1;
      }
      return fd;
    }
    if (errno != EEXIST && errno != ENOENT)
      return vc_error(err, errno, "create %s", path);
  }
  return vc_fail(err, EAGAIN, "pod %s: its lock file keeps disappearing", pod);
}

/* flock polled with LOCK_NB and growing sleeps, so that it can time out. */
static int wait_flock(int fd, int op, double deadline, const char *pod,
                      vc_err_t *err) {
  double delay = 0.001;
  for (;;) {
    if (flock(fd, op | LOCK_NB) == 0)
      return 0;
    if (errno == EINTR)
      continue;
    if (errno != EWOULDBLOCK)
      return vc_error(err, errno, "lock pod %s", pod);
    double left = deadline - now();
    if (left <= 0)
      return vc_fail(err, EWOULDBLOCK, "pod %s is locked by another process",
                  pod);
    /* A Ctrl-C in vc repl ends the wait (sys/wait.h). */
    int ms = (int)((delay < left ? delay : left) * 1000 + 0.5);
    if (vc_sleep_ms(ms > 0 ? ms : 1, err) < 0)
      return vc_error_prefix(err, "lock pod %s", pod);
    if (delay < 0.025)
      delay *= 2;
  }
}

/* 1 when fd is still the file at path, 0 when it was replaced. */
static int still_there(const vc_store_t *s, const char *pod, int fd,
                       const char *path, vc_err_t *err) {
  struct stat held, now_there;
  if (fstat(fd, &held) < 0)
    return vc_error(err, errno, "lock %s", path);
  if (lstat(path, &now_there) == 0)
    return held.st_dev == now_there.st_dev && held.st_ino == now_there.st_ino;
  if (errno != ENOENT)
    return vc_error(err, errno, "lock %s", path);
  int exists = any_tree(s, pod, NULL, err);
  if (exists < 0)
    return -1;
  if (!exists)
    return vc_fail(err, ENOENT, "pod %s: no such pod", pod);
  return 0;
}

int vc_store_lock(const vc_store_t *s, const char *pod, int exclusive,
                  double timeout_s, int *lock_fd, vc_err_t *err) {
  if (check_ids(pod, NULL, err) < 0)
    return -1;
  if (!(timeout_s >= 0))
    return vc_fail(err, EINVAL, "lock pod %s: bad timeout", pod);
  double deadline = now() + timeout_s;
  char path[PATH_MAX];
  for (int tries = 0; tries < 100; tries++) {
    cleanup_close int fd = open_lock(s, pod, path, err);
    if (fd < 0)
      return -1;
    if (wait_flock(fd, exclusive ? LOCK_EX : LOCK_SH, deadline, pod, err) < 0)
      return -1;
    /* Whoever held it may have deleted or replaced the file meanwhile. */
    int same = still_there(s, pod, fd, path, err);
    if (same < 0)
      return -1;
    if (same) {
      *lock_fd = vc_steal_fd(fd);
      return 0;
    }
  }
  return vc_fail(err, EAGAIN, "pod %s: its lock file keeps changing", pod);
}

/* Creation */

int vc_store_create_pod(const vc_store_t *s, const char *pod, int *lock_fd,
                        vc_err_t *err) {
  char lib[PATH_MAX], run[PATH_MAX];
  if (vc_store_paths(s, pod, NULL, lib, run, err) < 0 ||
      make_parents(s, LIB, err) < 0 || make_parents(s, RUN, err) < 0)
    return -1;
  int had = is_dir(lib, err);
  if (had == 0)
    had = make_dir(run, err);
  if (had < 0)
    return -1;
  if (had)
    return vc_fail(err, EEXIST, "pod %s already exists", pod);
  cleanup_close int fd = -1;
  if (vc_store_lock(s, pod, 1, CREATE_LOCK_WAIT, &fd, err) < 0) {
    /* Leave the folder to whoever holds the lock; else undo if empty. */
    if (err->errnum != EWOULDBLOCK)
      rmdir(run);
    return -1;
  }
  if (make_dir(lib, err) < 0) {
    vc_err_t ignored;
    remove_tree(s, RUN, pod, NULL, &ignored);
    return -1;
  }
  *lock_fd = vc_steal_fd(fd);
  return 0;
}

int vc_store_create_container(const vc_store_t *s, const char *pod,
                              const char *ctr, vc_err_t *err) {
  char lib[PATH_MAX], run[PATH_MAX];
  if (vc_store_paths(s, pod, ctr, lib, run, err) < 0)
    return -1;
  int pod_there = any_tree(s, pod, NULL, err);
  if (pod_there <= 0)
    return pod_there < 0 ? -1 : vc_fail(err, ENOENT, "pod %s: no such pod", pod);
  int had = any_tree(s, pod, ctr, err);
  if (had == 0)
    had = make_dir(lib, err);
  if (had < 0)
    return -1;
  if (had)
    return vc_fail(err, EEXIST, "container %s already exists in pod %s", ctr,
                pod);
  had = make_dir(run, err);
  if (had != 0) {
    rmdir(lib);
    return had < 0 ? -1
                   : vc_fail(err, EEXIST, "container %s already exists in pod %s",
                          ctr, pod);
  }
  return 0;
}

/* Records */

int vc_store_write(const vc_store_t *s, const char *pod, const char *ctr,
                   const char *name, const void *data, size_t len,
                   vc_err_t *err) {
  char dir[PATH_MAX], file[NAME_MAX + 1], path[PATH_MAX + NAME_MAX + 2];
  if (check_ids(pod, ctr, err) < 0 ||
      vc_store_record_check(ctr != NULL, name, err) < 0 ||
      record_path(s, pod, ctr, name, dir, file, err) < 0)
    return -1;
  snprintf(path, sizeof path, "%s/%s", dir, file);
  if (len > VC_STORE_RECORD_MAX)
    return vc_fail(err, EFBIG, "write %s: %zu bytes, more than the %u a record "
                "may hold", path, len, VC_STORE_RECORD_MAX);
  cleanup_close int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return vc_error(err, errno, "write %s", path);
  return vc_write_atomicat(dfd, file, path, data, len, FILE_MODE, err);
}

int vc_store_read(const vc_store_t *s, const char *pod, const char *ctr,
                  const char *name, char **data, size_t *len, vc_err_t *err) {
  char dir[PATH_MAX], file[NAME_MAX + 1], path[PATH_MAX + NAME_MAX + 2];
  if (check_ids(pod, ctr, err) < 0 ||
      vc_store_record_check(ctr != NULL, name, err) < 0 ||
      record_path(s, pod, ctr, name, dir, file, err) < 0)
    return -1;
  snprintf(path, sizeof path, "%s/%s", dir, file);
  return vc_read_recordat(AT_FDCWD, path, path, VC_STORE_RECORD_MAX, data, len,
                          err);
}

/* Listing */

/* Add the subfolders of path whose names are valid IDs of kind. */
static int list_dirs(const char *path, const char *kind, vc_names_t *out,
                     vc_err_t *err) {
  cleanup_dir DIR *d = opendir(path);
  if (d == NULL)
    return errno == ENOENT ? 0 : vc_error(err, errno, "list %s", path);
  for (;;) {
    errno = 0;
    struct dirent *e = readdir(d);
    if (e == NULL)
      break;
    vc_err_t ignored;
    if (vc_id_check(kind, e->d_name, &ignored) < 0)
      continue;
    int dir = e->d_type == DT_DIR;
    if (e->d_type == DT_UNKNOWN) {
      struct stat st;
      dir = fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISDIR(st.st_mode);
    }
    if (dir && names_add(out, e->d_name, err) < 0)
      return -1;
  }
  if (errno != 0)
    return vc_error(err, errno, "list %s", path);
  return 0;
}

static int list_both(const vc_store_t *s, const char *pod, vc_names_t *out,
                     vc_err_t *err) {
  char path[PATH_MAX];
  for (int t = LIB; t <= RUN; t++) {
    if (tree_path(s, (enum tree)t, pod, NULL, NULL, path, err) < 0 ||
        list_dirs(path, pod ? "container" : "pod", out, err) < 0) {
      vc_names_free(out);
      return -1;
    }
  }
  names_sort_unique(out);
  return 0;
}

int vc_store_pods(const vc_store_t *s, vc_names_t *out, vc_err_t *err) {
  return list_both(s, NULL, out, err);
}

int vc_store_containers(const vc_store_t *s, const char *pod,
                        vc_names_t *out, vc_err_t *err) {
  if (check_ids(pod, NULL, err) < 0)
    return -1;
  return list_both(s, pod, out, err);
}

/* Snapshots */

void vc_snapshot_free(vc_snapshot_t *snap) {
  free(snap->config);
  free(snap->state);
  free(snap->hypervisor);
  for (size_t i = 0; snap->ctr_states != NULL && i < snap->containers.n; i++)
    free(snap->ctr_states[i]);
  free(snap->ctr_states);
  free(snap->ctr_state_lens);
  vc_names_free(&snap->containers);
  memset(snap, 0, sizeof *snap);
}

/* The record file under dfd (dir names dfd in messages; NULL: file is a
 * whole path) into *data, left NULL when it is missing. */
static int read_record_at(int dfd, const char *dir, const char *file,
                          char **data, size_t *len, vc_err_t *err) {
  if (vc_read_recordat(dfd, file, file, VC_STORE_RECORD_MAX, data, len, err) ==
          0 ||
      err->errnum == ENOENT)
    return 0;
  if (dir == NULL)
    return -1;
  /* The message names file alone ("read FILE: why"): name the path. */
  char why[VC_ERR_MSG_MAX];
  size_t skip = strlen("read ") + strlen(file);
  snprintf(why, sizeof why, "%s",
           strlen(err->msg) >= skip ? err->msg + skip : "");
  return vc_fail(err, err->errnum, "read %s/%s%s", dir, file, why);
}

/* The subfolders of the folder dfd (dir in messages) named as container
 * IDs, sorted: getdents64 into a buffer on the stack, as a listing does
 * this for every pod. */
static int run_containers(int dfd, const char *dir, vc_names_t *out,
                          vc_err_t *err) {
  char buf[8192] __attribute__((aligned(8)));
  for (;;) {
    ssize_t n = getdents64(dfd, buf, sizeof buf);
    if (n < 0)
      return vc_error(err, errno, "list %s", dir);
    if (n == 0)
      break;
    for (ssize_t off = 0; off < n;) {
      struct dirent64 *e = (struct dirent64 *)(void *)(buf + off);
      off += e->d_reclen;
      vc_err_t ignored;
      if (vc_id_check("container", e->d_name, &ignored) < 0)
        continue;
      int is_dir = e->d_type == DT_DIR;
      if (e->d_type == DT_UNKNOWN) {
        struct stat st;
        is_dir = fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                 S_ISDIR(st.st_mode);
      }
      if (is_dir && names_add(out, e->d_name, err) < 0)
        return -1;
    }
  }
  names_sort_unique(out);
  return 0;
}

int vc_store_snapshot(const vc_store_t *s, const char *pod,
                      vc_snapshot_t *out, vc_err_t *err) {
  char lib[PATH_MAX], run[PATH_MAX], file[PATH_MAX + 16];
  memset(out, 0, sizeof *out);
  if (vc_store_paths(s, pod, NULL, lib, run, err) < 0)
    return -1;
  snprintf(file, sizeof file, "%s/config.json", lib);
  if (read_record_at(AT_FDCWD, NULL, file, &out->config, &out->config_len,
                     err) < 0)
    return -1;
  cleanup_close int dfd = open(run, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return errno == ENOENT ? 0 : vc_error(err, errno, "read %s", run);
  if (read_record_at(dfd, run, "state.json", &out->state, &out->state_len,
                     err) < 0 ||
      read_record_at(dfd, run, "hypervisor.json", &out->hypervisor,
                     &out->hypervisor_len, err) < 0 ||
      run_containers(dfd, run, &out->containers, err) < 0)
    return -1;
  size_t n = out->containers.n;
  out->ctr_states = calloc(n + 1, sizeof *out->ctr_states);
  out->ctr_state_lens = calloc(n + 1, sizeof *out->ctr_state_lens);
  if (out->ctr_states == NULL || out->ctr_state_lens == NULL)
    return vc_error(err, ENOMEM, "read %s", run);
  for (size_t i = 0; i < n; i++) {
    snprintf(file, sizeof file, "%s/state.json", out->containers.v[i]);
    if (read_record_at(dfd, run, file, &out->ctr_states[i],
                       &out->ctr_state_lens[i], err) < 0)
      return -1;
  }
  return 0;
}

/* The snapshots of many pods, read by up to SNAP_THREADS threads: a
 * listing's time is mostly the kernel's (opening and reading ~3 small
 * files a pod), which the machine's cores can share.  Each thread takes
 * every step-th pod from first. */
#define SNAP_THREADS 4
#define SNAP_PER_THREAD 64 /* fewer pods a thread are not worth one */

typedef struct snap_job {
  const vc_store_t *s;
  const char *const *pods;
  size_t n, first, step;
  vc_snapshot_t *snaps;
  vc_err_t *errs;
  int *failed;
} snap_job_t;

static void *snap_worker(void *arg) {
  const snap_job_t *j = arg;
  for (size_t i = j->first; i < j->n; i += j->step)
    if (!j->failed[i])
      j->failed[i] =
          vc_store_snapshot(j->s, j->pods[i], &j->snaps[i], &j->errs[i]) < 0;
  return NULL;
}

void vc_store_snapshots(const vc_store_t *s, const char *const *pods,
                        size_t n, vc_snapshot_t *snaps, vc_err_t *errs,
                        int *failed) {
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  size_t step = cpus > 1 ? (size_t)cpus : 1;
  if (step > SNAP_THREADS)
    step = SNAP_THREADS;
  if (step > n / SNAP_PER_THREAD)
    step = n / SNAP_PER_THREAD > 0 ? n / SNAP_PER_THREAD : 1;
  snap_job_t jobs[SNAP_THREADS];
  pthread_t threads[SNAP_THREADS];
  bool started[SNAP_THREADS] = {false};
  for (size_t k = 0; k < step; k++) {
    jobs[k] = (snap_job_t){.s = s, .pods = pods, .n = n, .first = k,
                           .step = step, .snaps = snaps, .errs = errs,
                           .failed = failed};
    /* A thread that cannot be made: this one does its share below. */
    if (k > 0)
      started[k] = pthread_create(&threads[k], NULL, snap_worker, &jobs[k]) == 0;
  }
  for (size_t k = 0; k < step; k++)
    if (!started[k])
      snap_worker(&jobs[k]);
  for (size_t k = 1; k < step; k++)
    if (started[k])
      pthread_join(threads[k], NULL);
}

/* Lua binding */

#define STORE_MT "vc.storage.store"
#define LOCK_MT "vc.storage.lock"
#define BOX_MT "vc.storage.box"

struct lockbox {
  int fd;          /* -1 once unlocked */
  int exclusive;
  char pod[VC_ID_MAX + 1];
};

/* Holds what C allocated until Lua has copied it: a raise while pushing
 * then leaks nothing, __gc frees it. */
struct box {
  char *data;
  vc_names_t names;
  vc_snapshot_t snap;
};

static int box_gc(lua_State *L) {
  struct box *b = luaL_checkudata(L, 1, BOX_MT);
  free(b->data);
  b->data = NULL;
  vc_names_free(&b->names);
  vc_snapshot_free(&b->snap);
  return 0;
}

/* The same for store:snapshots: one slot a pod. */
#define SNAPS_MT "vc.storage.snapshots"

struct snaps {
  size_t n;
  vc_snapshot_t *snaps;
  vc_err_t *errs;
  int *failed;
  const char **pods; /* borrowed from the argument table */
};

static int snaps_gc(lua_State *L) {
  struct snaps *b = luaL_checkudata(L, 1, SNAPS_MT);
  for (size_t i = 0; b->snaps != NULL && i < b->n; i++)
    vc_snapshot_free(&b->snaps[i]);
  free(b->snaps);
  free(b->errs);
  free(b->failed);
  free(b->pods);
  memset(b, 0, sizeof *b);
  return 0;
}

static struct box *newbox(lua_State *L) {
  struct box *b = lua_newuserdatauv(L, sizeof *b, 0);
  memset(b, 0, sizeof *b);
  luaL_setmetatable(L, BOX_MT);
  return b;
}

/* With lengths: a Lua string may hold a NUL where C would cut the ID. */
static int lua_ids(const char *pod, size_t podlen, const char *ctr,
                   size_t ctrlen, vc_err_t *err) {
  if (check_id("pod", pod, podlen, err) < 0)
    return -1;
  if (ctr != NULL && check_id("container", ctr, ctrlen, err) < 0)
    return -1;
  return 0;
}

static vc_store_t *checkstore(lua_State *L) {
  return luaL_checkudata(L, 1, STORE_MT);
}

static int pushtrue(lua_State *L) {
  lua_pushboolean(L, 1);
  return 1;
}

static void pushnames(lua_State *L, const vc_names_t *names) {
  lua_createtable(L, (int)names->n, 0);
  for (size_t i = 0; i < names->n; i++) {
    lua_pushstring(L, names->v[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
}

/* storage.valid_id(s [, kind]) -> true | nil, msg, EINVAL */
static int l_valid_id(lua_State *L) {
  size_t len;
  const char *id = luaL_checklstring(L, 1, &len);
  int kind = luaL_checkoption(L, 2, "pod", kind_names);
  vc_err_t err;
  if (check_id(kind_names[kind], id, len, &err) < 0)
    return vc_pushfail(L, &err);
  return pushtrue(L);
}

/* storage.open(root) or storage.open(lib, run) -> store | nil, msg, errno */
static int l_open(lua_State *L) {
  size_t rootlen, runlen = 0;
  const char *root = luaL_checklstring(L, 1, &rootlen);
  const char *run = luaL_optlstring(L, 2, NULL, &runlen);
  vc_store_t *s = lua_newuserdatauv(L, sizeof *s, 0);
  memset(s, 0, sizeof *s);
  luaL_setmetatable(L, STORE_MT);
  vc_err_t err;
  if (strlen(root) != rootlen || (run != NULL && strlen(run) != runlen)) {
    vc_fail(&err, EINVAL, "storage folder holds a NUL byte");
    return vc_pushfail(L, &err);
  }
  if (vc_store_init(s, root, run, &err) < 0)
    return vc_pushfail(L, &err);
  return 1;
}

/* store:root() -> root, or nil for a store opened on two folders */
static int l_root(lua_State *L) {
  vc_store_t *s = checkstore(L);
  if (s->root[0] == '\0')
    luaL_pushfail(L);
  else
    lua_pushstring(L, s->root);
  return 1;
}

/* store:dirs() -> lib, run (the folders holding pods/) */
static int l_dirs(lua_State *L) {
  vc_store_t *s = checkstore(L);
  lua_pushstring(L, s->lib);
  lua_pushstring(L, s->run);
  return 2;
}

/* store:paths(pod [, ctr]) -> { config_dir =, run_dir = } */
static int l_paths(lua_State *L) {
  vc_store_t *s = checkstore(L);
  size_t podlen, ctrlen = 0;
  const char *pod = luaL_checklstring(L, 2, &podlen);
  const char *ctr = luaL_optlstring(L, 3, NULL, &ctrlen);
  char lib[PATH_MAX], run[PATH_MAX];
  vc_err_t err;
  if (lua_ids(pod, podlen, ctr, ctrlen, &err) < 0 ||
      vc_store_paths(s, pod, ctr, lib, run, &err) < 0)
    return vc_pushfail(L, &err);
  lua_createtable(L, 0, 2);
  lua_pushstring(L, lib);
  lua_setfield(L, -2, "config_dir");
  lua_pushstring(L, run);
  lua_setfield(L, -2, "run_dir");
  return 1;
}

static struct lockbox *newlock(lua_State *L, const char *pod, int exclusive) {
  struct lockbox *lk = lua_newuserdatauv(L, sizeof *lk, 0);
  lk->fd = -1;
  lk->exclusive = exclusive;
  snprintf(lk->pod, sizeof lk->pod, "%s", pod);
  luaL_setmetatable(L, LOCK_MT);
  return lk;
}

/* store:create_pod(pod) -> lock (held exclusively) | nil, msg, errno */
static int l_create_pod(lua_State *L) {
  vc_store_t *s = checkstore(L);
  size_t podlen;
  const char *pod = luaL_checklstring(L, 2, &podlen);
  vc_err_t err;
  if (lua_ids(pod, podlen, NULL, 0, &err) < 0)
    return vc_pushfail(L, &err);
  struct lockbox *lk = newlock(L, pod, 1);
  if (vc_store_create_pod(s, pod, &lk->fd, &err) < 0)
    return vc_pushfail(L, &err);
  return 1;
}

/* store:lock(pod, "shared"|"exclusive", timeout_s) -> lock | nil, msg, errno */
static int l_lock(lua_State *L) {
  vc_store_t *s = checkstore(L);
  size_t podlen;
  const char *pod = luaL_checklstring(L, 2, &podlen);
  int exclusive = luaL_checkoption(L, 3, NULL, lock_modes);
  lua_Number timeout = luaL_checknumber(L, 4);
  luaL_argcheck(L, timeout >= 0, 4, "timeout must be a number >= 0");
  vc_err_t err;
  if (lua_ids(pod, podlen, NULL, 0, &err) < 0)
    return vc_pushfail(L, &err);
  struct lockbox *lk = newlock(L, pod, exclusive);
  if (vc_store_lock(s, pod, exclusive, (double)timeout, &lk->fd, &err) < 0)
    return vc_pushfail(L, &err);
  return 1;
}

/* store:create_container(pod, ctr) -> true | nil, msg, errno */
static int l_create_container(lua_State *L) {
  vc_store_t *s = checkstore(L);
  size_t podlen, ctrlen;
  const char *pod = luaL_checklstring(L, 2, &podlen);
  const char *ctr = luaL_checklstring(L, 3, &ctrlen);
  vc_err_t err;
  if (lua_ids(pod, podlen, ctr, ctrlen, &err) < 0 ||
      vc_store_create_container(s, pod, ctr, &err) < 0)
    return vc_pushfail(L, &err);
  return pushtrue(L);
}

/* store:write(pod, ctr_or_nil, name, data) -> true | nil, msg, errno */
static int l_write(lua_State *L) {
  vc_store_t *s = checkstore(L);
  size_t podlen, ctrlen = 0, len;
  const char *pod = luaL_checklstring(L, 2, &podlen);
  const char *ctr = luaL_optlstring(L, 3, NULL, &ctrlen);
  int name =
      luaL_checkoption(L, 4, NULL, ctr != NULL ? ctr_records : pod_records);
  const char *data = luaL_checklstring(L, 5, &len);
  const char *record = (ctr != NULL ? ctr_records : pod_records)[name];
  vc_err_t err;
  if (lua_ids(pod, podlen, ctr, ctrlen, &err) < 0 ||
      vc_store_write(s, pod, ctr, record, data, len, &err) < 0)
    return vc_pushfail(L, &err);
  return pushtrue(L);
}

/* store:read(pod, ctr_or_nil, name) -> data | nil, msg, errno */
static int l_read(lua_State *L) {
  vc_store_t *s = checkstore(L);
  size_t podlen, ctrlen = 0, len = 0;
  const char *pod = luaL_checklstring(L, 2, &podlen);
  const char *ctr = luaL_optlstring(L, 3, NULL, &ctrlen);
  int name =
      luaL_checkoption(L, 4, NULL, ctr != NULL ? ctr_records : pod_records);
  const char *record = (ctr != NULL ? ctr_records : pod_records)[name];
  vc_err_t err;
  if (lua_ids(pod, podlen, ctr, ctrlen, &err) < 0)
    return vc_pushfail(L, &err);
  struct box *b = newbox(L);
  if (vc_store_read(s, pod, ctr, record, &b->data, &len, &err) < 0)
    return vc_pushfail(L, &err);
  lua_pushlstring(L, b->data, len);
  free(b->data);
  b->data = NULL;
  return 1;
}

/* store:pods() -> sorted IDs | nil, msg, errno; never waits for a lock */
static int l_pods(lua_State *L) {
  vc_store_t *s = checkstore(L);
  struct box *b = newbox(L);
  vc_err_t err;
  if (vc_store_pods(s, &b->names, &err) < 0)
    return vc_pushfail(L, &err);
  pushnames(L, &b->names);
  vc_names_free(&b->names);
  return 1;
}

/* store:containers(pod) -> sorted IDs ({} for no such pod) | nil, msg, errno */
static int l_containers(lua_State *L) {
  vc_store_t *s = checkstore(L);
  size_t podlen;
  const char *pod = luaL_checklstring(L, 2, &podlen);
  vc_err_t err;
  if (lua_ids(pod, podlen, NULL, 0, &err) < 0)
    return vc_pushfail(L, &err);
  struct box *b = newbox(L);
  if (vc_store_containers(s, pod, &b->names, &err) < 0)
    return vc_pushfail(L, &err);
  pushnames(L, &b->names);
  vc_names_free(&b->names);
  return 1;
}

static void setrecord(lua_State *L, const char *key, const char *data,
                      size_t len) {
  if (data == NULL)
    return;
  lua_pushlstring(L, data, len);
  lua_setfield(L, -2, key);
}

/* A snapshot as store:snapshot returns it; frees it. */
static void push_snapshot(lua_State *L, vc_snapshot_t *snap) {
  lua_createtable(L, 0, 5);
  setrecord(L, "config", snap->config, snap->config_len);
  setrecord(L, "state", snap->state, snap->state_len);
  setrecord(L, "hypervisor", snap->hypervisor, snap->hypervisor_len);
  pushnames(L, &snap->containers);
  lua_setfield(L, -2, "containers");
  lua_createtable(L, 0, (int)snap->containers.n);
  for (size_t i = 0; i < snap->containers.n; i++)
    setrecord(L, snap->containers.v[i], snap->ctr_states[i],
              snap->ctr_state_lens[i]);
  lua_setfield(L, -2, "container_states");
  vc_snapshot_free(snap);
}

/* store:snapshot(pod) -> { config =, state =, hypervisor = (each the
 * record's bytes, nil when missing), containers = { sorted IDs of the
 * containers with a run folder }, container_states = { [ID] = bytes } }
 * | nil, msg, errno: what a status reads, in one pass, never locking. */
static int l_snapshot(lua_State *L) {
  vc_store_t *s = checkstore(L);
  size_t podlen;
  const char *pod = luaL_checklstring(L, 2, &podlen);
  vc_err_t err;
  if (lua_ids(pod, podlen, NULL, 0, &err) < 0)
    return vc_pushfail(L, &err);
  struct box *b = newbox(L);
  vc_snapshot_t *snap = &b->snap;
  if (vc_store_snapshot(s, pod, snap, &err) < 0)
    return vc_pushfail(L, &err);
  push_snapshot(L, snap);
  return 1;
}

/* store:snapshots(pods) -> { [pod] = snapshot }, { [pod] = msg }: the
 * snapshot of each pod in the list pods, as store:snapshot would give
 * it, or why not; read in parallel (vc_store_snapshots). */
static int l_snapshots(lua_State *L) {
  vc_store_t *s = checkstore(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  size_t n = (size_t)luaL_len(L, 2);
  struct snaps *b = lua_newuserdatauv(L, sizeof *b, 0);
  memset(b, 0, sizeof *b);
  luaL_setmetatable(L, SNAPS_MT);
  b->snaps = calloc(n + 1, sizeof *b->snaps);
  b->errs = calloc(n + 1, sizeof *b->errs);
  b->failed = calloc(n + 1, sizeof *b->failed);
  b->pods = calloc(n + 1, sizeof *b->pods);
  if (b->snaps == NULL || b->errs == NULL || b->failed == NULL ||
      b->pods == NULL)
    return luaL_error(L, "snapshots: out of memory");
  b->n = n;
  for (size_t i = 0; i < n; i++) {
    /* A string (not a number lua_tolstring would convert on the stack
     * only): it stays alive in the argument table. */
    if (lua_geti(L, 2, (lua_Integer)i + 1) != LUA_TSTRING)
      return luaL_error(L, "bad argument #1 to 'snapshots' (pods[%d] is a %s,"
                        " not a string)", (int)i + 1, luaL_typename(L, -1));
    size_t len;
    const char *pod = lua_tolstring(L, -1, &len);
    lua_pop(L, 1);
    /* A bad ID is that pod's failure (an embedded NUL included). */
    if (lua_ids(pod, len, NULL, 0, &b->errs[i]) < 0)
      b->failed[i] = 1;
    else
      b->pods[i] = pod;
  }
  vc_store_snapshots(s, b->pods, n, b->snaps, b->errs, b->failed);
  lua_createtable(L, 0, (int)n);
  lua_newtable(L);
  for (size_t i = 0; i < n; i++) {
    lua_geti(L, 2, (lua_Integer)i + 1);
    if (b->failed[i]) {
      lua_pushstring(L, b->errs[i].msg);
      lua_rawset(L, -3);
    } else {
      push_snapshot(L, &b->snaps[i]);
      lua_rawset(L, -4);
    }
  }
  return 2;
}

/* store:exists(pod [, ctr]) -> boolean | nil, msg, errno */
static int l_exists(lua_State *L) {
  vc_store_t *s = checkstore(L);
  size_t podlen, ctrlen = 0;
  const char *pod = luaL_checklstring(L, 2, &podlen);
  const char *ctr = luaL_optlstring(L, 3, NULL, &ctrlen);
  vc_err_t err;
  int r = lua_ids(pod, podlen, ctr, ctrlen, &err);
  if (r == 0)
    r = vc_store_exists(s, pod, ctr, &err);
  if (r < 0)
    return vc_pushfail(L, &err);
  lua_pushboolean(L, r);
  return 1;
}

/* store:delete_pod(pod) -> true | nil, msg, errno */
static int l_delete_pod(lua_State *L) {
  vc_store_t *s = checkstore(L);
  size_t podlen;
  const char *pod = luaL_checklstring(L, 2, &podlen);
  vc_err_t err;
  if (lua_ids(pod, podlen, NULL, 0, &err) < 0 ||
      vc_store_delete_pod(s, pod, &err) < 0)
    return vc_pushfail(L, &err);
  return pushtrue(L);
}

/* store:delete_container(pod, ctr) -> true | nil, msg, errno */
static int l_delete_container(lua_State *L) {
  vc_store_t *s = checkstore(L);
  size_t podlen, ctrlen;
  const char *pod = luaL_checklstring(L, 2, &podlen);
  const char *ctr = luaL_checklstring(L, 3, &ctrlen);
  vc_err_t err;
  if (lua_ids(pod, podlen, ctr, ctrlen, &err) < 0 ||
      vc_store_delete_container(s, pod, ctr, &err) < 0)
    return vc_pushfail(L, &err);
  return pushtrue(L);
}

/* storage.abspath(path) -> path made absolute against the current folder
 * (not resolving links), so that records hold paths that mean the same
 * to every later vc process | nil, msg, errno */
static int l_abspath(lua_State *L) {
  const char *p = luaL_checkstring(L, 1);
  luaL_argcheck(L, p[0] != '\0', 1, "empty path");
  if (p[0] == '/') {
    lua_settop(L, 1);
    return 1;
  }
  char cwd[PATH_MAX];
  if (getcwd(cwd, sizeof cwd) == NULL) {
    vc_err_t err;
    vc_error(&err, errno, "current folder");
    return vc_pushfail(L, &err);
  }
  while (p[0] == '.' && p[1] == '/')
    p += 2;
  if (strcmp(p, ".") == 0)
    lua_pushstring(L, cwd);
  else
    lua_pushfstring(L, "%s%s%s", cwd, strcmp(cwd, "/") ? "/" : "", p);
  return 1;
}

static int store_tostring(lua_State *L) {
  vc_store_t *s = checkstore(L);
  if (s->root[0] != '\0')
    lua_pushfstring(L, STORE_MT " (%s)", s->root);
  else
    lua_pushfstring(L, STORE_MT " (%s, %s)", s->lib, s->run);
  return 1;
}

/* lock:unlock(), also __close and __gc: releasing twice is fine. */
static int lock_unlock(lua_State *L) {
  struct lockbox *lk = luaL_checkudata(L, 1, LOCK_MT);
  if (lk->fd >= 0) {
    close(lk->fd);
    lk->fd = -1;
  }
  return 0;
}

/* lock:mode() -> "shared" | "exclusive" */
static int lock_mode(lua_State *L) {
  struct lockbox *lk = luaL_checkudata(L, 1, LOCK_MT);
  if (lk->fd < 0)
    return luaL_error(L, "attempt to use an unlocked lock (pod %s)", lk->pod);
  lua_pushstring(L, lock_modes[lk->exclusive]);
  return 1;
}

static int lock_tostring(lua_State *L) {
  struct lockbox *lk = luaL_checkudata(L, 1, LOCK_MT);
  lua_pushfstring(L, LOCK_MT " (pod %s, %s)", lk->pod,
                  lk->fd < 0 ? "unlocked" : lock_modes[lk->exclusive]);
  return 1;
}

static const luaL_Reg funcs[] = {
    {"abspath", l_abspath},
    {"open", l_open},
    {"valid_id", l_valid_id},
    {NULL, NULL},
};

static const luaL_Reg store_methods[] = {
    {"containers", l_containers},
    {"create_container", l_create_container},
    {"create_pod", l_create_pod},
    {"delete_container", l_delete_container},
    {"delete_pod", l_delete_pod},
    {"dirs", l_dirs},
    {"exists", l_exists},
    {"lock", l_lock},
    {"paths", l_paths},
    {"pods", l_pods},
    {"read", l_read},
    {"root", l_root},
    {"snapshot", l_snapshot},
    {"snapshots", l_snapshots},
    {"write", l_write},
    {NULL, NULL},
};

static const luaL_Reg store_meta[] = {
    {"__tostring", store_tostring},
    {NULL, NULL},
};

static const luaL_Reg lock_methods[] = {
    {"mode", lock_mode},
    {"unlock", lock_unlock},
    {NULL, NULL},
};

static const luaL_Reg lock_meta[] = {
    {"__close", lock_unlock},
    {"__gc", lock_unlock},
    {"__tostring", lock_tostring},
    {NULL, NULL},
};

static const luaL_Reg box_meta[] = {
    {"__gc", box_gc},
    {NULL, NULL},
};

static const luaL_Reg snaps_meta[] = {
    {"__gc", snaps_gc},
    {NULL, NULL},
};

static void newclass(lua_State *L, const char *name, const luaL_Reg *meta,
                     const luaL_Reg *methods) {
  luaL_newmetatable(L, name);
  luaL_setfuncs(L, meta, 0);
  if (methods != NULL) {
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
}

int luaopen_vc_core_storage(lua_State *L) {
  newclass(L, STORE_MT, store_meta, store_methods);
  newclass(L, LOCK_MT, lock_meta, lock_methods);
  newclass(L, BOX_MT, box_meta, NULL);
  newclass(L, SNAPS_MT, snaps_meta, NULL);
  luaL_newlib(L, funcs);
  return 1;
}
