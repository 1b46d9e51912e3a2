/* fileio.h - whole-file reads and crash-atomic writes. */
#ifndef VC_FILEIO_H
#define VC_FILEIO_H

#include <stddef.h>
#include <sys/types.h>

#include "error.h"

/* Replace the file called file in the folder dfd with data, so that a
 * reader sees the old or the new content, never a mix or an empty file,
 * whenever the writer dies: an unnamed O_TMPFILE file (or, where the file
 * system has none, a named temporary) in the same folder, written in full,
 * fsynced, linked to a temporary dot-name, renamed over file, folder
 * fsynced.  path names the file in messages. */
int vc_write_atomicat(int dfd, const char *file, const char *path,
                      const void *data, size_t len, mode_t mode,
                      vc_err_t *err);

/* The same for a path. */
int vc_write_atomic(const char *path, const void *data, size_t len,
                    mode_t mode, vc_err_t *err);

/* Read all of the regular file path (not through a symlink; at most max
 * bytes) into a NUL-terminated buffer that the caller frees.  A missing
 * file fails with errno ENOENT, a larger one with EFBIG. */
int vc_read_file(const char *path, size_t max, char **data, size_t *len,
                 vc_err_t *err);

/* The same for the file called file in the folder dfd (a path under it,
 * or AT_FDCWD); path names it in messages. */
int vc_read_fileat(int dfd, const char *file, const char *path, size_t max,
                   char **data, size_t *len, vc_err_t *err);

/* The same for a store record, a file only ever replaced whole (by
 * rename): a short read is its end, so no fstat.  A FIFO reads as empty. */
int vc_read_recordat(int dfd, const char *file, const char *path, size_t max,
                     char **data, size_t *len, vc_err_t *err);

#endif
