/* unixsock.h - connecting to a unix stream socket without hanging. */
#ifndef VC_UNIXSOCK_H
#define VC_UNIXSOCK_H

#include "error.h"

/* A connected, blocking socket to the unix stream socket at path, or -1.
 * A listener that accepts nothing (its backlog full: a hung QEMU, a stuck
 * agent) would make a plain connect wait forever; this one gives up after
 * timeout_ms with ETIMEDOUT (or at a Ctrl-C in vc repl, sys/wait.h).
 * Other failures (ENOENT, ECONNREFUSED...) return at once.  Messages start
 * with "connect". */
int vc_unix_connect(const char *path, int timeout_ms, vc_err_t *err);

#endif
