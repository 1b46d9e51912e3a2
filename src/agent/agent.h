/* src/agent/ - the host's clients of the agent: this interface, its
 * registry and Lua binding (agent.c, vc.core.agent), one file per address
 * scheme (unix.c, mock.c).  It may use src/sys/, src/proto/ and
 * src/core/; never a hypervisor backend.
 *
 * agent.h - the interface to the agent that runs containers in a sandbox.
 *
 * An agent is reached at an address "scheme:rest" given by the hypervisor
 * backend; the scheme picks the implementation (src/agent/<scheme>.c).  Every
 * call names the container it acts on; the agent keeps the truth about its
 * processes, the Lua layer keeps the pod's records. */
#ifndef VC_AGENT_H
#define VC_AGENT_H

#include <stdbool.h>

#include "core/spec.h"
#include "sys/error.h"

typedef enum vc_ctr_state {
  VC_CTR_CREATED,
  VC_CTR_RUNNING,
  VC_CTR_EXITED,
} vc_ctr_state_t;

typedef struct vc_ctr_status {
  vc_ctr_state_t state;
  int pid;              /* in the sandbox's PID namespace, 0 when none */
  int exit_code;        /* when exited: the code, or 128 + signal */
  bool oom;             /* killed by the memory limit */
  /* What confines its first process, as the sandbox's kernel reports it
   * (unknown: cap_eff "", seccomp -1). */
  char cap_eff[17];     /* CapEff of /proc/PID/status, hex */
  int seccomp;          /* 0 none, 1 strict, 2 filter */
  bool no_new_privs;
} vc_ctr_status_t;

/* The processes of a container, as the sandbox sees them. */
typedef struct vc_proc_list {
  size_t n;
  struct vc_proc {
    int pid;
    char *cmd;
  } *v;
} vc_proc_list_t;

typedef struct vc_ctr_stats {
  unsigned long long cpu_ns;
  unsigned long long memory_bytes;
  unsigned long long memory_limit_bytes; /* 0: none */
  unsigned long long pids;
} vc_ctr_stats_t;

/* What the agent kept of a process's output (the newest part). */
typedef struct vc_output {
  char *out, *err;
  size_t out_len, err_len;
  bool truncated;
} vc_output_t;

/* The stdio of a session with a process (an exec, an attach). */
typedef struct vc_stdio {
  int in_fd;            /* its stdin comes from here until end of file; -1:
                           none (an exec's stdin is then /dev/null) */
  int out_fd, err_fd;   /* its output (with a terminal, all on out_fd) */
  bool tty;             /* a terminal in the container */
  unsigned rows, cols;  /* its first size (0: 24 x 80) */
  int term_fd;          /* the host terminal whose size it follows, or -1 */
  int sig_fd;           /* a vc_term_t's signalfd, or -1: SIGWINCH resizes,
                           any other signal ends the session (EINTR) */
  bool detach_keys;     /* Ctrl-P Ctrl-Q in in_fd's bytes detach */
  const char *ready_path; /* attach: made (empty) once the agent streams, or
                             NULL (the OCI runtime's start waits for it) */
  /* results */
  int signo;            /* the signal that ended the session, or 0 */
  bool detached;
} vc_stdio_t;

/* One chunk of a process's output: stream 1 (stdout) or 2 (stderr), when
 * the agent read it (ms since the epoch); live: it came after the call.
 * A non-zero return ends the call with that error. */
typedef int (*vc_chunk_fn)(void *ud, int stream, long long ms,
                           const char *data, size_t n, bool live);

void vc_proc_list_free(vc_proc_list_t *l);
void vc_output_free(vc_output_t *o);

typedef struct vc_agent vc_agent_t;

struct vc_agent_ops {
  const char *scheme;
  /* Reach the agent, retrying until timeout_s while the sandbox boots. */
  int (*connect)(vc_agent_t *a, double timeout_s, vc_err_t *err);
  int (*create_pod)(vc_agent_t *a, const vc_vm_spec_t *pod, vc_err_t *err);
  int (*destroy_pod)(vc_agent_t *a, vc_err_t *err);
  int (*create_container)(vc_agent_t *a, const vc_container_spec_t *c,
                          vc_err_t *err);
  int (*start_container)(vc_agent_t *a, const char *cid, vc_err_t *err);
  /* SIGTERM, then SIGKILL after timeout_s. */
  int (*stop_container)(vc_agent_t *a, const char *cid, double timeout_s,
                        vc_err_t *err);
  int (*remove_container)(vc_agent_t *a, const char *cid, vc_err_t *err);
  /* Pause (freeze) or resume a running container, it alone. */
  int (*freeze)(vc_agent_t *a, const char *cid, bool frozen, vc_err_t *err);
  /* New cgroup limits for a made container (a 0 in r: unchanged). */
  int (*update_container)(vc_agent_t *a, const char *cid,
                          const struct vc_resources *r, vc_err_t *err);
  /* all: every process of the container, else its first one. */
  int (*signal)(vc_agent_t *a, const char *cid, int sig, bool all,
                vc_err_t *err);
  /* Run a new process in a running container, its stdio as io says;
   * *exit_code gets its status. */
  int (*exec)(vc_agent_t *a, const char *cid, const vc_process_t *p,
              vc_stdio_t *io, int *exit_code, vc_err_t *err);
  /* Connect io to the container's first process until it exits
   * (*exit_code) or io->detached. */
  int (*attach)(vc_agent_t *a, const char *cid, vc_stdio_t *io,
                int *exit_code, vc_err_t *err);
  /* What the container's first process wrote, chunk by chunk with times,
   * to fn; with follow, then its output as it comes until it exits. */
  int (*logs)(vc_agent_t *a, const char *cid, bool follow, vc_chunk_fn fn,
              void *ud, bool *truncated, vc_err_t *err);
  /* Wait up to timeout_s (< 0: forever) for the container's process to
   * exit; ETIMEDOUT when it has not. */
  int (*wait)(vc_agent_t *a, const char *cid, double timeout_s,
              int *exit_code, vc_err_t *err);
  int (*status)(vc_agent_t *a, const char *cid, vc_ctr_status_t *st,
                vc_err_t *err);
  int (*list_processes)(vc_agent_t *a, const char *cid, vc_proc_list_t *out,
                        vc_err_t *err);
  int (*stats)(vc_agent_t *a, const char *cid, vc_ctr_stats_t *out,
               vc_err_t *err);
  int (*read_output)(vc_agent_t *a, const char *cid, vc_output_t *out,
                     vc_err_t *err);
  int (*ping)(vc_agent_t *a, vc_err_t *err);
  /* Ask the agent to end the sandbox (kill everything, exit/power off). */
  int (*shutdown)(vc_agent_t *a, vc_err_t *err);
  /* Release the connection (not the containers). */
  void (*close)(vc_agent_t *a);
};

struct vc_agent {
  const struct vc_agent_ops *ops;
  char *address;              /* the whole "scheme:rest" */
  const char *target;         /* the part after the scheme */
  struct vc_kv *annotations;  /* the pod's annotations */
  size_t n_annotations;
  void *priv;                 /* the implementation's, freed by close */
};

/* The implementation for the scheme of address, or NULL. */
const struct vc_agent_ops *vc_agent_find(const char *address);

extern const struct vc_agent_ops vc_agent_mock_ops;
extern const struct vc_agent_ops vc_agent_unix_ops;
extern const struct vc_agent_ops vc_agent_serial_ops;

/* The Lua binding (vc.core.agent). */
struct lua_State;
int luaopen_vc_core_agent(struct lua_State *L);

#endif
