/* fileio.c - whole-file reads and crash-atomic writes. */
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"

static int write_all(int fd, const char *p, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

/* An unnamed file in the folder, or where the file system has no O_TMPFILE
 * a named one (tmp set), made through /proc so that it lands in dfd. */
static int open_temp(int dfd, const char *file, const char *path, char *tmp,
                     vc_err_t *err) {
  int fd = openat(dfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
  if (fd >= 0)
    return fd;
  if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
    return vc_error(err, errno, "write %s: temporary file", path);
  char tmpl[PATH_MAX];
  if (snprintf(tmpl, sizeof tmpl, "/proc/self/fd/%d/.%s.XXXXXX", dfd, file) >=
      (int)sizeof tmpl)
    return vc_error(err, ENAMETOOLONG, "write %s", path);
  fd = mkostemp(tmpl, O_CLOEXEC);
  if (fd < 0)
    return vc_error(err, errno, "write %s: temporary file", path);
  snprintf(tmp, NAME_MAX + 1, "%s", strrchr(tmpl, '/') + 1);
  return fd;
}

/* Give the finished unnamed file a temporary dot-name: only now is it seen. */
static int link_temp(int fd, int dfd, const char *file, const char *path,
                     char *tmp, vc_err_t *err) {
  char proc[64];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
  for (unsigned i = 0; i < 1000; i++) {
    if (snprintf(tmp, NAME_MAX + 1, ".%s.%ld.%u", file, (long)getpid(), i) >
        NAME_MAX)
      break;
    if (linkat(AT_FDCWD, proc, dfd, tmp, AT_SYMLINK_FOLLOW) == 0)
      return 0;
    if (errno != EEXIST) {
      tmp[0] = '\0';
      return vc_error(err, errno, "write %s: link", path);
    }
  }
  tmp[0] = '\0';
  return vc_fail(err, EEXIST, "write %s: no free temporary name", path);
}

/* tmp names the temporary once it has a name, for the caller to remove. */
static int write_temp(int dfd, const char *file, const char *path,
                      const void *data, size_t len, mode_t mode, char *tmp,
                      vc_err_t *err) {
  cleanup_close int fd = open_temp(dfd, file, path, tmp, err);
  if (fd < 0)
    return -1;
  if (fchmod(fd, mode) < 0 || write_all(fd, data, len) < 0 || fsync(fd) < 0)
    return vc_error(err, errno, "write %s", path);
  if (tmp[0] == '\0' && link_temp(fd, dfd, file, path, tmp, err) < 0)
    return -1;
  if (close(vc_steal_fd(fd)) < 0)
    return vc_error(err, errno, "write %s", path);
  if (renameat(dfd, tmp, dfd, file) < 0)
    return vc_error(err, errno, "write %s: rename", path);
  tmp[0] = '\0';
  if (fsync(dfd) < 0)
    return vc_error(err, errno, "write %s: sync folder", path);
  return 0;
}

int vc_write_atomicat(int dfd, const char *file, const char *path,
                      const void *data, size_t len, mode_t mode,
                      vc_err_t *err) {
  char tmp[NAME_MAX + 1] = "";
  if (write_temp(dfd, file, path, data, len, mode, tmp, err) < 0) {
    if (tmp[0] != '\0')
      unlinkat(dfd, tmp, 0);
    return -1;
  }
  return 0;
}

int vc_write_atomic(const char *path, const void *data, size_t len,
                    mode_t mode, vc_err_t *err) {
  const char *slash = strrchr(path, '/');
  char dir[PATH_MAX];
  if (slash == NULL)
    snprintf(dir, sizeof dir, ".");
  else if ((size_t)(slash - path) >= sizeof dir)
    return vc_error(err, ENAMETOOLONG, "write %s", path);
  else
    snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
  const char *file = slash != NULL ? slash + 1 : path;
  if (*file == '\0' || strlen(file) > NAME_MAX - 24)
    return vc_fail(err, EINVAL, "write %s: not a file name", path);
  cleanup_close int dfd = open(dir[0] != '\0' ? dir : "/",
                               O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return vc_error(err, errno, "write %s", path);
  return vc_write_atomicat(dfd, file, path, data, len, mode, err);
}

int vc_read_file(const char *path, size_t max, char **data, size_t *len,
                 vc_err_t *err) {
  return vc_read_fileat(AT_FDCWD, path, path, max, data, len, err);
}

int vc_read_fileat(int dfd, const char *file, const char *path, size_t max,
                   char **data, size_t *len, vc_err_t *err) {
  cleanup_close int fd = openat(dfd, file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return vc_error(err, errno, "read %s", path);
  struct stat st;
  if (fstat(fd, &st) < 0)
    return vc_error(err, errno, "read %s", path);
  if (!S_ISREG(st.st_mode))
    return vc_fail(err, EINVAL, "read %s: not a regular file", path);
  if ((unsigned long long)st.st_size > max)
    return vc_fail(err, EFBIG, "read %s: larger than %zu bytes", path, max);
  /* Room for one byte more than the size, and the NUL.  A read that
   * returns the size fstat gave has read the whole file as it was then,
   * with no second read to see EOF (a listing reads thousands of
   * records); a file that grew since is read on to its end.  /proc files
   * (size 0) are read to EOF. */
  size_t size = (size_t)st.st_size;
  size_t cap = size + 2, used = 0;
  cleanup_free char *buf = malloc(cap);
  if (buf == NULL)
    return vc_error(err, ENOMEM, "read %s", path);
  for (;;) {
    if (used + 1 == cap) {
      if (cap > max)
        return vc_fail(err, EFBIG, "read %s: larger than %zu bytes", path, max);
      char *bigger = realloc(buf, cap * 2);
      if (bigger == NULL)
        return vc_error(err, ENOMEM, "read %s", path);
      buf = bigger;
      cap *= 2;
    }
    ssize_t n = read(fd, buf + used, cap - used - 1);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return vc_error(err, errno, "read %s", path);
    }
    if (n == 0)
      break;
    used += (size_t)n;
    if (used == size)
      break;
  }
  buf[used] = '\0';
  *data = vc_steal_ptr(buf);
  *len = used;
  return 0;
}

/* Records are small regular files that are only ever replaced whole (by
 * rename), never written in place: a read that returns less than it asked
 * for has reached the end.  So open, read, close, without the fstat of
 * vc_read_fileat (a listing reads thousands, and on a VM every system call
 * counts).  What is not a regular file still fails or reads as nothing:
 * O_NONBLOCK keeps a FIFO from blocking (empty), a folder fails (EISDIR,
 * "not a regular file"), a device is cut at max (EFBIG). */
int vc_read_recordat(int dfd, const char *file, const char *path, size_t max,
                     char **data, size_t *len, vc_err_t *err) {
  cleanup_close int fd = openat(
      dfd, file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0)
    return vc_error(err, errno, "read %s", path);
  char first[4096];
  cleanup_free char *buf = NULL;
  size_t cap = sizeof first, used = 0;
  char *at = first;
  for (;;) {
    size_t want = cap - used - 1;
    ssize_t n = read(fd, at + used, want);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EISDIR)
        return vc_fail(err, EINVAL, "read %s: not a regular file", path);
      return vc_error(err, errno, "read %s", path);
    }
    used += (size_t)n;
    if (used > max)
      return vc_fail(err, EFBIG, "read %s: larger than %zu bytes", path, max);
    if ((size_t)n < want)
      break;
    char *bigger = realloc(buf, cap * 2);
    if (bigger == NULL)
      return vc_error(err, ENOMEM, "read %s", path);
    if (buf == NULL)
      memcpy(bigger, first, used);
    buf = at = bigger;
    cap *= 2;
  }
  if (buf == NULL) {
    buf = malloc(used + 1);
    if (buf == NULL)
      return vc_error(err, ENOMEM, "read %s", path);
    memcpy(buf, first, used);
  }
  buf[used] = '\0';
  *data = vc_steal_ptr(buf);
  *len = used;
  return 0;
}
