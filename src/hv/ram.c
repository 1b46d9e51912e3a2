/* ram.c - a template's guest RAM, shared copy-on-write by the VMs that
 * start from it (as Kata's VM templating).
 *
 * A template keeps its guest RAM in a file (KEY.ram, written by the
 * template's QEMU through a share=on memory backend).  A VM started from
 * it maps the RAM private (share=off) from a sealed memfd that holds the
 * file's pages: the guest's pages exist once on the host until a guest
 * writes to them.  The memfd is the one a running VM of that template
 * already maps (found in its QEMU's descriptors by name), or, when no such
 * VM runs, a new one filled from the file.  The name carries the identity
 * of the template's device-state file (inode and modification time): a
 * template made anew never meets the memfd of the one it replaced, whose
 * RAM would not match its devices.  Who looks for the memfd and fills it
 * holds a flock on the RAM file until its QEMU has it, so VMs that start
 * at the same time share one copy too.  Sealed (no shrinking, growing
 * or writing), it cannot change under a VM's feet: a template file that
 * is removed or truncated later harms no running VM, whose private
 * mapping of a shorter file would otherwise fault (SIGBUS). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ram.h"
#include "sys/cleanup.h"

#define SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL)
#define CHUNK (1 << 20)
#define PAGE 4096

/* The memfd's name: "vc-ram:", the template file's name and the device
 * state's inode and modification time (in hex). */
static int ram_name(const char *ram_file, int state_fd, char *out, size_t size,
                    vc_err_t *err) {
  struct stat st;
  if (fstat(state_fd, &st) < 0)
    return vc_error(err, errno, "template RAM %s: device state", ram_file);
  const char *base = strrchr(ram_file, '/');
  base = base != NULL ? base + 1 : ram_file;
  if ((size_t)snprintf(out, size, "vc-ram:%s:%llx.%llx.%lx", base,
                       (unsigned long long)st.st_ino,
                       (unsigned long long)st.st_mtim.tv_sec,
                       (unsigned long)st.st_mtim.tv_nsec) >= size ||
      strlen(out) > 200)
    return vc_fail(err, ENAMETOOLONG, "template RAM %s: name too long", ram_file);
  return 0;
}

/* An exclusive flock on ram_file, waited for; -1 (and no error) when the
 * file is gone, which fill then reports. */
static int lock_ram(const char *ram_file, int *lock, vc_err_t *err) {
  *lock = open(ram_file, O_RDONLY | O_CLOEXEC);
  if (*lock < 0)
    return errno == ENOENT ? 0 : vc_error(err, errno, "template RAM %s", ram_file);
  while (flock(*lock, LOCK_EX) < 0) {
    if (errno != EINTR) {
      int e = errno;
      close(*lock);
      *lock = -1;
      return vc_error(err, e, "template RAM %s: flock", ram_file);
    }
  }
  return 0;
}

/* fd if it is a sealed memfd of bytes, else closes it and returns -1. */
static int usable(int fd, size_t bytes) {
  struct stat st;
  if (fd >= 0 && fcntl(fd, F_GET_SEALS) == SEALS && fstat(fd, &st) == 0 &&
      (size_t)st.st_size == bytes)
    return fd;
  if (fd >= 0)
    close(fd);
  return -1;
}

/* The memfd named name that a running QEMU maps, opened anew, or -1. */
static int find_shared(const char *name, size_t bytes) {
  char want[300]; /* name is at most 200 bytes (ram_name) */
  if ((size_t)snprintf(want, sizeof want, "/memfd:%s (deleted)", name) >= sizeof want)
    return -1;
  cleanup_dir DIR *proc = opendir("/proc");
  struct dirent *p;
  while (proc != NULL && (p = readdir(proc)) != NULL) {
    char *end;
    long pid = strtol(p->d_name, &end, 10);
    if (pid <= 0 || *end != '\0')
      continue;
    char path[64], comm[32] = "";
    snprintf(path, sizeof path, "/proc/%ld/comm", pid);
    cleanup_close int cfd = open(path, O_RDONLY | O_CLOEXEC);
    if (cfd < 0 || read(cfd, comm, sizeof comm - 1) <= 0 ||
        strncmp(comm, "qemu-system", 11) != 0)
      continue;
    snprintf(path, sizeof path, "/proc/%ld/fd", pid);
    cleanup_dir DIR *fds = opendir(path);
    struct dirent *f;
    while (fds != NULL && (f = readdir(fds)) != NULL) {
      char link[128], target[300];
      if ((size_t)snprintf(link, sizeof link, "%s/%s", path, f->d_name) >= sizeof link)
        continue;
      ssize_t n = readlink(link, target, sizeof target - 1);
      if (n <= 0)
        continue;
      target[n] = '\0';
      if (strcmp(target, want) != 0)
        continue;
      int fd = usable(open(link, O_RDONLY | O_CLOEXEC), bytes);
      if (fd >= 0)
        return fd;
    }
  }
  return -1;
}

static bool zero_page(const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != 0)
      return false;
  return true;
}

/* A new memfd with the file's pages (its holes left out: they read as
 * zeros and take no memory), sealed. */
static int fill(const char *ram_file, const char *name, size_t bytes,
                vc_err_t *err) {
  cleanup_close int in = open(ram_file, O_RDONLY | O_CLOEXEC);
  if (in < 0)
    return vc_error(err, errno, "template RAM %s", ram_file);
  struct stat st;
  if (fstat(in, &st) < 0)
    return vc_error(err, errno, "template RAM %s", ram_file);
  if ((size_t)st.st_size != bytes)
    return vc_fail(err, EINVAL, "template RAM %s: %lld bytes, not the VM's %zu",
                   ram_file, (long long)st.st_size, bytes);
  cleanup_close int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0 || ftruncate(fd, (off_t)bytes) < 0)
    return vc_error(err, errno, "template RAM: memfd");
  off_t pos = 0;
  while ((size_t)pos < bytes) {
    off_t data = lseek(in, pos, SEEK_DATA);
    if (data < 0 && errno == ENXIO)
      break; /* a hole to the end */
    if (data < 0)
      return vc_error(err, errno, "template RAM %s", ram_file);
    off_t hole = lseek(in, data, SEEK_HOLE);
    if (hole < 0)
      return vc_error(err, errno, "template RAM %s", ram_file);
    /* (in the kernel: the file's zero pages are holes already, made by
     * vc_ram_sparsify when the template was saved) */
    if (lseek(fd, data, SEEK_SET) < 0)
      return vc_error(err, errno, "template RAM: memfd");
    for (pos = data; pos < hole;) {
      ssize_t n = sendfile(fd, in, &pos, (size_t)(hole - pos));
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return vc_error(err, n < 0 ? errno : EIO, "template RAM %s: copy", ram_file);
    }
  }
  if (fcntl(fd, F_ADD_SEALS, SEALS) < 0)
    return vc_error(err, errno, "template RAM: seal");
  return vc_steal_fd(fd);
}

int vc_ram_sparsify(const char *ram_file, vc_err_t *err) {
  cleanup_close int fd = open(ram_file, O_RDWR | O_CLOEXEC);
  if (fd < 0)
    return vc_error(err, errno, "template RAM %s", ram_file);
  cleanup_free unsigned char *buf = malloc(CHUNK);
  if (buf == NULL)
    return vc_error(err, ENOMEM, "template RAM");
  off_t pos = 0;
  for (;;) {
    ssize_t n = pread(fd, buf, CHUNK, pos);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return vc_error(err, errno, "template RAM %s: read", ram_file);
    if (n == 0)
      return 0;
    /* each run of zero pages becomes a hole */
    for (size_t o = 0; o < (size_t)n;) {
      size_t run = 0;
      while (o + run + PAGE <= (size_t)n && zero_page(buf + o + run, PAGE))
        run += PAGE;
      if (run > 0 && fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                               pos + (off_t)o, (off_t)run) < 0)
        return vc_error(err, errno, "template RAM %s: punch a hole", ram_file);
      o += run > 0 ? run : PAGE;
    }
    pos += n;
  }
}

int vc_ram_open(const char *ram_file, int state_fd, size_t bytes, int *lock,
                vc_err_t *err) {
  char name[256];
  *lock = -1;
  if (ram_name(ram_file, state_fd, name, sizeof name, err) < 0 ||
      lock_ram(ram_file, lock, err) < 0)
    return -1;
  int fd = find_shared(name, bytes);
  if (fd < 0)
    fd = fill(ram_file, name, bytes, err);
  if (fd < 0 && *lock >= 0) {
    close(*lock);
    *lock = -1;
  }
  return fd;
}
