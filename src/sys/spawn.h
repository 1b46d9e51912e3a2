/* spawn.h - running a host program to completion, bounded in time.
 *
 * The program runs in a process group of its own, its stdin fed from a
 * pipe with the given bytes, with exactly the given argv and environment.
 * Past its timeout the whole group is killed (SIGKILL).  Its stdout and
 * stderr are captured, up to a bound each.  When vc_spawn_run returns,
 * every descriptor it opened is closed and the child is reaped. */
#ifndef VC_SPAWN_H
#define VC_SPAWN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "error.h"

typedef struct vc_spawn_req {
  const char *path;        /* the program, absolute */
  char *const *argv;       /* NULL-terminated, argv[0] included */
  char *const *envp;       /* NULL-terminated, may be empty */
  const char *input;       /* written to its stdin, then stdin is closed */
  size_t input_len;
  double timeout_s;        /* <= 0: no limit */
  size_t capture_max;      /* bytes kept of stdout and of stderr each */
} vc_spawn_req_t;

typedef enum {
  VC_SPAWN_EXITED,         /* code holds the exit status */
  VC_SPAWN_SIGNALED,       /* code holds the signal number */
  VC_SPAWN_TIMEOUT,        /* killed (with its group) at the timeout */
} vc_spawn_how_t;

typedef struct vc_spawn_res {
  vc_spawn_how_t how;
  int code;
  pid_t pid;
  double elapsed_s;
  char *out, *err;         /* captured output (NUL-terminated), owned */
  size_t out_len, err_len;
  bool out_truncated, err_truncated;
} vc_spawn_res_t;

/* Run req to completion and fill res (free it with vc_spawn_res_free,
 * also after a failure).  Fails (-1) only when the program could not be
 * started: a pipe, fork or execve error, named with the path. */
int vc_spawn_run(const vc_spawn_req_t *req, vc_spawn_res_t *res,
                 vc_err_t *err);

void vc_spawn_res_free(vc_spawn_res_t *res);

#endif
