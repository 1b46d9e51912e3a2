/* src/sys/ - the host utilities every other part of vc builds on: errors
 * (this header), scope-bound cleanup, whole files and crash-atomic writes,
 * unix sockets, waits that Ctrl-C cuts short, the monotonic clock, host
 * processes and mounts, running hook programs; luax.h holds the
 * conventions of every Lua binding.  Plain C and libc: it includes nothing
 * of vc outside src/sys/ (both vc and vc-agent link it).
 *
 * error.h - the error object every fallible function fills.
 *
 * Convention (as crun): a fallible function returns int, negative on
 * failure, and fills the vc_err_t passed last.  Call sites read
 *     if (ret < 0) return ret;
 * The message is built in place: no allocation, nothing to free. */
#ifndef VC_ERROR_H
#define VC_ERROR_H

#include <stddef.h>

#define VC_ERR_MSG_MAX 1024

typedef struct vc_err {
  int errnum;                 /* errno-like code, 0 when none applies */
  char msg[VC_ERR_MSG_MAX];   /* "what: why" */
} vc_err_t;

/* Fill err with errnum and a printf-like message; when errnum is not 0,
 * ": strerror(errnum)" is appended.  Always returns -1. */
int vc_error(vc_err_t *err, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The same, for a message that says it all: errnum is recorded but no
 * ": strerror" is appended.  Always returns -1. */
int vc_fail(vc_err_t *err, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepend "prefix: " to an error already filled.  Always returns -1. */
int vc_error_prefix(vc_err_t *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
