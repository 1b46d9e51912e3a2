/* cleanup.h - scope-bound ownership with __attribute__((cleanup)).
 *
 * A variable declared with one of these is released when it leaves scope;
 * ownership moves out by setting it to NULL (or -1 for descriptors).
 * Beware: lua_error longjmps past these, so Lua bindings check their
 * arguments before declaring any. */
#ifndef VC_CLEANUP_H
#define VC_CLEANUP_H

#include <dirent.h>
#include <errno.h>
#include <linux/close_range.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static inline void vc_freep(void *p) {
  free(*(void **)p);
}

static inline void vc_closep(int *fd) {
  if (*fd >= 0) {
    int saved = errno;
    close(*fd);
    errno = saved;
  }
}

static inline void vc_closedirp(DIR **d) {
  if (*d != NULL)
    closedir(*d);
}

static inline void vc_fclosep(FILE **f) {
  if (*f != NULL)
    fclose(*f);
}

#define cleanup_free __attribute__((cleanup(vc_freep)))
#define cleanup_close __attribute__((cleanup(vc_closep)))
#define cleanup_dir __attribute__((cleanup(vc_closedirp)))
#define cleanup_file __attribute__((cleanup(vc_fclosep)))

/* In a forked child: release every descriptor from 3 up but keep, which
 * belong to the parent (flags 0: close them; CLOSE_RANGE_CLOEXEC: at the
 * coming execve). */
static inline void vc_close_others(int keep, unsigned flags) {
  if (keep > 3)
    close_range(3, (unsigned)keep - 1, flags);
  close_range((unsigned)keep + 1, ~0u, flags);
}

/* Move ownership out of a cleanup variable. */
#define vc_steal_ptr(p) ({ __typeof__(p) p_ = (p); (p) = NULL; p_; })
#define vc_steal_fd(fd) ({ int fd_ = (fd); (fd) = -1; fd_; })

#endif
