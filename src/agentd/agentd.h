/* src/agentd/ - vc-agent, the other end of the agent protocol: PID 1 of a
 * guest VM (or of fresh namespaces on the host) that runs the containers.
 * A static program: it may use src/proto/ and src/sys/ (but no Lua
 * binding of them), and nothing else of vc.
 *
 * agentd.h - the guest agent's private interface: its state, connections,
 * containers and processes (docs/agent-protocol.md is the contract).
 *
 * The agent is one thread around one poll(2) loop; its whole state is one
 * agent_t passed around.  Requests are handled to completion when they
 * arrive, except those that wait for a process (wait, stop_container, a
 * streaming exec): those become a pending_t, settled by the reaper or a
 * timer. */
#ifndef VC_AGENTD_H
#define VC_AGENTD_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "proto/json.h"
#include "proto/proto.h"
#include "sys/clock.h"
#include "sys/error.h"

#define AGENT_RING_SIZE (64u << 10)   /* output kept per stream */
#define AGENT_OUT_MAX (16u << 20)     /* unsent bytes before a client is dropped */
/* Unsent bytes to a streaming client above which its process's output is
 * not read (the process then blocks on its full pipe): flow control. */
#define AGENT_STREAM_HIGH (256u << 10)
#define AGENT_CHILD_TIMEOUT_MS 10000  /* a child's setup or exec, at most */
#define AGENT_MAX_PORTS 16            /* virtio-serial ports served */

typedef struct agent agent_t;
typedef struct conn conn_t;
typedef struct ctr ctr_t;

/* output.c: the newest AGENT_RING_SIZE bytes of a stream, and when they
 * were read: bytes [start, end) of the stream (counted from its first
 * byte) came at ms (wall clock), as its process's chunk number seq. */
typedef struct mark {
  uint64_t start, end, seq;
  int64_t ms;
} mark_t;

typedef struct ring {
  char *buf;            /* allocated on the first byte */
  size_t start, len;
  uint64_t total;       /* bytes ever put */
  mark_t *marks;        /* a ring of m_len marks from m_start */
  size_t m_start, m_len;
  bool truncated;       /* older bytes were dropped */
} ring_t;

void ring_put(ring_t *r, const char *data, size_t n, uint64_t seq,
              int64_t ms);
/* The contents in order, into a new buffer (NULL when empty or on ENOMEM). */
char *ring_copy(const ring_t *r, size_t *n);
/* What rings[0] (stdout) and rings[1] (stderr) hold, chunk by chunk in the
 * order they were read: fn(ud, 1 or 2, ms, data, n); -1 when fn or an
 * allocation fails. */
typedef int (*chunk_fn)(void *ud, int stream, int64_t ms, const char *data,
                        size_t n);
int ring_chunks(const ring_t *rings[2], chunk_fn fn, void *ud);
void ring_free(ring_t *r);

/* A process the agent started: a container's init or an exec. */
typedef struct proc {
  struct proc *next;    /* in ctr->execs */
  ctr_t *ctr;
  char exec_id[16];     /* "" for the init */
  pid_t pid;            /* as the agent sees it */
  int out_fd, err_fd;   /* read ends of its stdout and stderr, or -1; with
                           a terminal, out_fd is its master, err_fd -1 */
  bool tty;             /* its stdio is a terminal (pty.c) */
  ring_t out, err;
  uint64_t seq;         /* chunks read so far, of either stream */
  bool exited, oom;
  int exit_code;
  /* The client whose stream owns the process's input (a streaming exec's
   * or an attach's), NULL when none; its output goes to every PEND_STREAM
   * and PEND_FOLLOW of the process. */
  conn_t *stream;
  long long stream_id;
  /* Its stdin (stdin.c): the pipe's write end (or a descriptor of its
   * terminal's master), or -1; bytes of the last frame the pipe had no
   * room for yet (while any are left, no more frames are read from the
   * client); close once they are written.  An exec's stdin ends with its
   * client; a container init's stays open for the next attach. */
  bool in_stream;       /* its stream's client sends stdin/resize frames */
  int in_fd;
  char *in_buf;
  size_t in_len, in_off;
  bool in_close;
} proc_t;

typedef enum ctr_state { CTR_CREATED, CTR_RUNNING, CTR_EXITED } ctr_state_t;

/* cgroup.c: controllers, in the order of cgroup_names. */
enum { CG_MEMORY, CG_PIDS, CG_CPU, CG_CPUACCT, CG_FREEZER, CG_DEVICES, CG_N };

typedef struct cgroups {
  char *dir[CG_N];      /* the container's folder per controller, or NULL */
} cgroups_t;

/* security.c: what confines a container's processes, as the host sent it
 * ("security" of create_container, docs/agent-protocol.md). */
struct sec_rlimit {
  int resource;
  rlim_t soft, hard;
};

typedef struct sec {
  bool privileged;      /* all capabilities, no filter, every device */
  bool no_new_privs;
  bool read_only_rootfs;
  uint64_t caps;        /* bounding, effective, permitted (root) */
  bool sets;            /* given: exactly these, whatever the user */
  uint64_t effective, permitted, inheritable, ambient;
  char **masked;        /* NULL-terminated absolute paths */
  char **readonly;
  struct sec_rlimit *rlimits;
  size_t n_rlimits;
  struct sock_filter *bpf;  /* the compiled seccomp filter, or NULL */
  size_t bpf_len;           /* instructions */
} sec_t;

int security_parse(const vc_json_t *v, sec_t *s, vc_err_t *err);
void security_free(sec_t *s);
/* In a container's process, in this order (see security.c). */
int security_mounts(const sec_t *s, vc_err_t *err);
int security_rlimits(const sec_t *s, vc_err_t *err);
int security_before_user(const sec_t *s, vc_err_t *err);
int security_after_user(const sec_t *s, vc_err_t *err);
int security_before_exec(const sec_t *s, vc_err_t *err);
/* What the kernel says of pid: CapEff (hex), Seccomp, NoNewPrivs. */
int security_status(pid_t pid, char *cap_eff, size_t size, int *seccomp,
                    int *no_new_privs);

struct ctr {
  ctr_t *next;
  char id[65];
  ctr_state_t state;
  proc_t init;
  proc_t *execs;
  unsigned next_exec;
  int gate_fd;          /* write end: one byte lets the created init exec */
  int status_fd;        /* read end of the init's CLOEXEC report pipe */
  cgroups_t cg;
  sec_t sec;            /* applied to the init and to every exec */
  int cg_helper;        /* pidfd of the helper making cg, or -1 */
  long long oom_seen;   /* memory.oom_control oom_kill already accounted */
  bool frozen;          /* paused alone (its freezer cgroup) */
};

/* A client: a unix socket connection or the virtio-serial port. */
struct conn {
  conn_t *next;
  int fd;
  bool port;            /* virtio-serial: never closed, reset on hang-up */
  bool dead;            /* dropped; freed by the loop at a safe point */
  bool busy;            /* a reply is pending: read no further requests */
  bool hello;           /* version done */
  bool bye;             /* the client said bye: start over once it is read */
  int64_t retry_at;     /* port only: when to poll again after a hang-up */
  vc_frame_reader_t reader;
  char *in;             /* bytes read but not yet fed (while busy) */
  size_t in_len, in_cap;
  char *out;            /* frames not yet written */
  size_t out_len, out_cap, out_off;
};

/* PEND_STREAM: an exec's or attach's stream; PEND_FOLLOW: logs that
 * follow (output events, no input, no back pressure). */
typedef enum pending_kind {
  PEND_WAIT, PEND_STOP, PEND_STREAM, PEND_FOLLOW
} pending_kind_t;

/* A request whose reply waits for a process to end (or a deadline). */
typedef struct pending {
  struct pending *next;
  pending_kind_t kind;
  conn_t *conn;         /* NULL once the client went away (stop goes on) */
  long long id;
  proc_t *proc;
  int64_t deadline;     /* monotonic ms, -1: none */
} pending_t;

typedef struct volume {
  struct volume *next;
  char tag[65];
  char *dir;            /* STATE_DIR/volumes/TAG */
  bool mounted;
  bool nine_p;          /* the host's folder over 9p (in a VM) */
} volume_t;

struct agent {
  const char *listen_path;   /* --listen, or NULL */
  const char *port_names[AGENT_MAX_PORTS]; /* --port (repeated) */
  size_t n_ports;
  const char *state_dir;
  const char *cgroup_parent;
  FILE *log;
  int listen_fd, signal_fd;
  int null_fd;               /* /dev/null, every process's stdin */
  int self_pidns;            /* /proc/self/ns/pid, to come back after setns */
  char *cg_root[CG_N];       /* /sys/fs/cgroup/<ctrl>/PARENT, or NULL */
  bool cg_alias[CG_N];       /* same folder as an earlier controller */
  conn_t *conns;
  ctr_t *ctrs;
  pending_t *pending;
  volume_t *volumes;
  bool share_mounted;        /* the pod's 9p share, at SHARE_DIR */
  char *pod_id;
  char *hostname;            /* the pod's, from its network; NULL: none */
  bool net_file[3];          /* STATE_DIR/etc/net_files[i] written (net.c) */
  bool quit;                 /* leave the loop, tear down, exit */
  bool changed;              /* processes were freed: re-poll */
};

/* main.c */
void agent_log(agent_t *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* loop.c */
int loop_run(agent_t *a, vc_err_t *err);
/* A new client on fd (owned from now on); NULL when out of memory. */
conn_t *conn_add(agent_t *a, int fd);
void conn_send(agent_t *a, conn_t *c, vc_jw_t *w);
void conn_send_error(agent_t *a, conn_t *c, long long id, const vc_err_t *e);
void conn_drop(agent_t *a, conn_t *c);
void conn_free(agent_t *a, conn_t *c);
/* An output event {"id", "event": "output", "stream", "time", "data"}. */
void output_event(agent_t *a, conn_t *c, long long id, int stream,
                  int64_t ms, const char *data, size_t n);
/* stdin.c: a streaming exec's stdin, forwarded from its client. */
/* The process streaming to c whose stdin takes another frame now, or NULL. */
proc_t *stdin_ready(agent_t *a, conn_t *c);
/* A frame from c while it streams: "stdin" or "close_stdin" for p. */
void stdin_frame(agent_t *a, conn_t *c, proc_t *p, const char *body,
                 size_t len);
/* The pipe has room: write what is pending. */
void stdin_flush(agent_t *a, proc_t *p);
/* Close p's stdin and forget what is pending (exit, client gone). */
void stdin_close(proc_t *p);
/* Read what a process wrote, into its rings and to its streams. */
void proc_read(agent_t *a, proc_t *p, int which, bool drain);
/* Reap every child that has ended. */
void reap(agent_t *a);
void proc_exited(agent_t *a, proc_t *p, int status);
/* Write back what the pod's processes wrote to the host's folders over 9p
 * (its share and 9p volumes): their page cache holds writes back. */
void pod_flush_shares(agent_t *a);
pending_t *pending_add(agent_t *a, pending_kind_t kind, conn_t *c,
                       long long id, proc_t *p, int64_t deadline);

/* ops.c */
void dispatch(agent_t *a, conn_t *c, const char *body, size_t len);
void exit_result(vc_jw_t *w, const proc_t *p);

/* container.c */
typedef struct proc_spec {
  const char **argv;    /* NULL-terminated, pointing into the request */
  const char **env;
  const char *cwd, *user;
  const char **groups;  /* more supplementary groups: gids or names */
  long long oom_score_adj;  /* -1000..1000, or LLONG_MIN: the agent's */
  bool tty;             /* a terminal as its stdio (pty.c) */
  bool with_stdin;      /* its stdin a pipe from the agent, not /dev/null */
  unsigned short rows, cols;  /* the terminal's first size */
} proc_spec_t;

typedef struct mount_spec {
  const char *volume, *path;   /* volume NULL: source or a tmpfs */
  bool read_only, tmpfs;
  long long tmpfs_size_mib;    /* -1: the kernel's default */
  unsigned tmpfs_mode;
  const char *source;   /* the volume's folder, filled by the agent */
} mount_spec_t;

/* net.c: the files every container of a networked pod binds in /etc. */
#define NET_FILES 3
extern const char *const net_files[NET_FILES];
/* create_pod's "network": the hostname, the files, a VM's interfaces. */
int net_setup(agent_t *a, const vc_json_t *net, vc_err_t *err);
/* A VM's interfaces and routes (NULL, NULL: none, as on the host). */
int net_guest(agent_t *a, const vc_json_t *ifaces, const vc_json_t *routes,
              vc_err_t *err);
void net_teardown(agent_t *a);

typedef struct ctr_spec {
  const char *id, *rootfs;
  const char *hostname;       /* the pod's, or NULL: the container's ID */
  const char *state_dir;      /* the agent's: the net files in its etc/ */
  bool net_file[NET_FILES];
  proc_spec_t proc;
  mount_spec_t *mounts;
  size_t n_mounts;
  long long memory_mib, pids, cpu_quota_pct;   /* -1: not set */
  int uts_fd, ipc_fd;   /* namespaces to join (the pod's sandbox's), or -1 */
  const vc_json_t *sysctl;  /* { "net.ipv4.ip_forward": "1" }, or NULL */
  sec_t sec;            /* owned; moved into the container once made */
} ctr_spec_t;

/* On success s->sec moves into the container. */
int ctr_create(agent_t *a, ctr_spec_t *s, ctr_t **out, vc_err_t *err);
int ctr_start(agent_t *a, ctr_t *c, vc_err_t *err);
int ctr_exec(agent_t *a, ctr_t *c, const proc_spec_t *s, proc_t **out,
             vc_err_t *err);
/* /proc/PID/ns/NS opened (close-on-exec), or -1 with err set. */
int ctr_open_ns(pid_t pid, const char *ns, vc_err_t *err);
/* SIGKILL every process of c and reap them (blocking). */
void ctr_kill(agent_t *a, ctr_t *c);
void ctr_free(agent_t *a, ctr_t *c);
ctr_t *ctr_find(agent_t *a, const char *id);
/* mkdir -p, each missing folder with mode. */
int mkdir_p(const char *path, mode_t mode, vc_err_t *err);
proc_t *proc_find(ctr_t *c, const char *exec_id);

/* pty.c: a terminal for a process, made in its container (so that its
 * devpts is the container's own). */
/* In the child, after it became its user: open a pty pair, send the
 * master over sock, make the slave its controlling terminal and stdio. */
int pty_child(int sock, vc_err_t *err);
/* In the agent: the master the child sent (non-blocking), or -1. */
int pty_receive(int sock, vc_err_t *err);
int pty_resize(int master, unsigned rows, unsigned cols);

/* user.c: resolve "uid[:gid]" or "name[:group]" from /etc of the current
 * root; at most *ngroups supplementary groups. */
#define MAX_GROUPS 64
/* extra: more supplementary groups (gids or names), NULL-terminated or NULL. */
int user_resolve(const char *spec, const char *const *extra, uid_t *uid,
                 gid_t *gid, gid_t *groups, size_t *ngroups, char *home,
                 size_t home_size, vc_err_t *err);

/* cgroup.c */
void cgroup_init(agent_t *a);
/* The container's folder names (made by cgroup_enter_async). */
int cgroup_paths(agent_t *a, const char *id, cgroups_t *cg, vc_err_t *err);
/* Whether s's limits have their controllers. */
int cgroup_check(const cgroups_t *cg, const ctr_spec_t *s, vc_err_t *err);
/* Put pid into the cgroups cg names, from a helper process so that the
 * agent does not wait; given a spec s, the helper first makes the folders
 * and sets s's limits (cgroup_check has passed).  It writes "J" to notify
 * once pid is in every cgroup, else "E<errno>:<message>", and exits (the
 * agent reaps it).  busy, when not NULL, gets a descriptor for
 * cgroup_settle, or -1. */
int cgroup_enter_async(const agent_t *a, const cgroups_t *cg,
                       const ctr_spec_t *s, pid_t pid, int notify, int *busy,
                       vc_err_t *err);
/* Wait until the helper behind *busy is gone (no folder of its own will
 * appear after), and close *busy; nothing when it is -1. */
void cgroup_settle(int *busy);
int cgroup_read(const cgroups_t *cg, int ctrl, const char *file,
                long long *v);
/* The oom_kill count of memory.oom_control, 0 when unknown. */
long long cgroup_oom_kills(const cgroups_t *cg);
/* The folder whose cgroup.procs lists the container's processes. */
const char *cgroup_procs_dir(const cgroups_t *cg);
/* Freeze (pause) or thaw a container's processes, it alone. */
int cgroup_freeze(const cgroups_t *cg, bool frozen, vc_err_t *err);
/* New limits for a made container (each -1: unchanged). */
int cgroup_update(const cgroups_t *cg, long long memory_mib, long long pids,
                  long long cpu_quota_pct, vc_err_t *err);
void cgroup_remove(agent_t *a, cgroups_t *cg);
void cgroup_remove_parent(agent_t *a);

/* pod.c */
/* create_pod's "share", "time_sec"/"time_nsec" and "entropy" (a VM's guest
 * only). */
int pod_guest_setup(agent_t *a, const vc_json_t *msg, vc_err_t *err);
int pod_create(agent_t *a, const char *pod_id, const vc_json_t *volumes,
               const vc_json_t *network, vc_err_t *err);
volume_t *pod_volume(agent_t *a, const char *tag);
/* Kill and remove every container, unmount volumes, remove cgroups. */
void pod_destroy(agent_t *a);

/* An ID as the store allows: [A-Za-z0-9][A-Za-z0-9_.-]{0,63}. */
bool valid_id(const char *s);

#endif
