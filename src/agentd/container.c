/* container.c - a container's processes: its init, created in new mount,
 * PID, UTS and IPC namespaces and pivoted into its rootfs, and the
 * processes exec'd into it later.
 *
 * A child reports on a CLOEXEC pipe: "R" once set up (it then blocks until
 * the agent opens its gate), or "E<errno>:<message>" when a step failed.
 * End of file after the gate opened means execve succeeded.  So every
 * failure, up to execve itself, reaches the client as a message. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <grp.h>
#include <unistd.h>

#include "agentd.h"
#include "sys/cleanup.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static const char *const dev_nodes[] = {"null",   "zero",    "full",
                                        "random", "urandom", "tty"};
#define N_DEV (sizeof dev_nodes / sizeof dev_nodes[0])

/* The child's ends of its pipes. */
typedef struct child_io {
  int out, err;         /* stdout, stderr */
  int report;           /* the CLOEXEC report pipe */
  int gate;             /* a byte here lets it execve */
  int in;               /* stdin's read end, or -1 for /dev/null */
  int tty;              /* a socket to send its terminal's master on, or -1 */
  int joined;           /* "J" once it is in its cgroups (or "E...") */
  int null_fd;
} child_io_t;

/* The agent's ends. */
typedef struct spawned {
  pid_t pid;
  int out, err, report, gate;
  int joined; /* for the helper that moves it into its cgroups */
  int in;     /* stdin's write end, or -1 */
  int tty;    /* where the child sends its terminal's master, or -1 */
} spawned_t;

typedef void (*child_fn)(const void *arg, const child_io_t *io);

/* In the child: tell the agent what failed, and end. */
static _Noreturn void child_fail(const child_io_t *io, const vc_err_t *e) {
  char msg[VC_ERR_MSG_MAX + 16];
  int n = snprintf(msg, sizeof msg, "E%d:%s", e->errnum, e->msg);
  if (n > 0 && write(io->report, msg, (size_t)n) < 0)
    _exit(126);
  _exit(127);
}

/* --- in the child ------------------------------------------------------ */

int mkdir_p(const char *path, mode_t mode, vc_err_t *err) {
  char buf[PATH_MAX];
  if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
    return vc_fail(err, ENAMETOOLONG, "%s: path too long", path);
  for (char *p = buf + 1;; p++) {
    if (*p != '/' && *p != '\0')
      continue;
    char c = *p;
    *p = '\0';
    if (mkdir(buf, mode) < 0 && errno != EEXIST)
      return vc_error(err, errno, "mkdir %s", buf);
    if (c == '\0')
      return 0;
    *p = c;
  }
}

/* A minimal /dev: the agent's own device nodes bound onto empty files in a
 * tmpfs, a private devpts, /dev/shm, /dev/mqueue and the usual links (in
 * the order of the OCI runtime spec's default mounts: /proc, /dev...,
 * then /sys). */
static int setup_dev(const int dev_fd[N_DEV], vc_err_t *err) {
  if (mkdir_p("/dev", 0755, err) < 0)
    return -1;
  if (mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_STRICTATIME,
            "mode=755,size=65536k") < 0)
    return vc_error(err, errno, "mount /dev");
  for (size_t i = 0; i < N_DEV; i++) {
    if (dev_fd[i] < 0)
      continue;
    char path[64];
    snprintf(path, sizeof path, "/dev/%s", dev_nodes[i]);
    int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0666);
    if (fd < 0)
      return vc_error(err, errno, "create %s", path);
    close(fd);
    if (move_mount(dev_fd[i], "", AT_FDCWD, path,
                   MOVE_MOUNT_F_EMPTY_PATH) < 0)
      return vc_error(err, errno, "mount %s", path);
  }
  if (mkdir("/dev/pts", 0755) < 0 ||
      mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
            "newinstance,ptmxmode=0666,mode=620") < 0)
    return vc_error(err, errno, "mount /dev/pts");
  if (mkdir("/dev/shm", 01777) < 0 ||
      mount("shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
            "mode=1777,size=65536k") < 0)
    return vc_error(err, errno, "mount /dev/shm");
  if (mkdir("/dev/mqueue", 0755) < 0 ||
      mount("mqueue", "/dev/mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC,
            NULL) < 0)
    return vc_error(err, errno, "mount /dev/mqueue");
  static const char *const links[][2] = {
      {"pts/ptmx", "/dev/ptmx"},          {"/proc/self/fd", "/dev/fd"},
      {"/proc/self/fd/0", "/dev/stdin"},  {"/proc/self/fd/1", "/dev/stdout"},
      {"/proc/self/fd/2", "/dev/stderr"},
  };
  for (size_t i = 0; i < sizeof links / sizeof links[0]; i++)
    if (symlink(links[i][0], links[i][1]) < 0)
      return vc_error(err, errno, "symlink %s", links[i][1]);
  return 0;
}

/* The value of NAME in env, or NULL. */
static const char *env_get(const char *const *env, const char *name) {
  size_t len = strlen(name);
  for (; env != NULL && *env != NULL; env++)
    if (strncmp(*env, name, len) == 0 && (*env)[len] == '=')
      return *env + len + 1;
  return NULL;
}

static int check_program(const char *path) {
  struct stat st;
  if (stat(path, &st) < 0)
    return -errno;
  if (!S_ISREG(st.st_mode))
    return -EACCES;
  return access(path, X_OK) < 0 ? -errno : 0;
}

/* argv[0] as execve wants it: searched in PATH when it has no '/'. */
static int find_program(const char *arg0, const char *const *env, char *out,
                        size_t size, vc_err_t *err) {
  int ret = -ENOENT;
  if (strchr(arg0, '/') != NULL) {
    snprintf(out, size, "%s", arg0);
    ret = check_program(out);
  } else if (*arg0 != '\0') {
    const char *path = env_get(env, "PATH");
    if (path == NULL)
      path = DEFAULT_PATH;
    while (ret != 0) {
      size_t n = strcspn(path, ":");
      snprintf(out, size, "%.*s/%s", (int)n, n == 0 ? "." : path, arg0);
      int r = check_program(out);
      if (r == 0 || ret == -ENOENT)
        ret = r;
      if (path[n] == '\0')
        break;
      path += n + 1;
    }
  }
  if (ret == -ENOENT || ret == -ENOTDIR)
    return vc_fail(err, ENOENT, "%s: no such program in the rootfs", arg0);
  if (ret < 0)
    return vc_error(err, -ret, "%s", arg0);
  return 0;
}

/* Ask for the program's pages while the container waits for its start:
 * its execve then finds them in the page cache (over 9p in a VM, that
 * read is much of a cold start). */
static void read_ahead(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return; /* (an execute-only program: execve reads it itself) */
  posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);
  close(fd);
}

/* Limits, user, groups, capabilities, working folder, program: the steps
 * shared by a container's init and an exec.  *envp may gain HOME. */
static int become(const proc_spec_t *p, const sec_t *sec, char ***envp,
                  char *prog, size_t prog_size, vc_err_t *err) {
  uid_t uid;
  gid_t gid, groups[MAX_GROUPS];
  size_t ngroups = MAX_GROUPS;
  char home[PATH_MAX];
  if (user_resolve(p->user, p->groups, &uid, &gid, groups, &ngroups, home,
                   sizeof home, err) < 0)
    return -1;
  if (security_rlimits(sec, err) < 0)
    return -1;
  /* Before the capabilities go (a lower score needs CAP_SYS_RESOURCE). */
  if (p->oom_score_adj != LLONG_MIN) {
    char v[16];
    int n = snprintf(v, sizeof v, "%lld", p->oom_score_adj);
    cleanup_close int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, v, (size_t)n) != n)
      return vc_error(err, errno, "oom_score_adj %s", v);
  }
  if (setgroups(ngroups, groups) < 0 || setgid(gid) < 0)
    return vc_error(err, errno, "user \"%s\"", p->user ? p->user : "0");
  if (security_before_user(sec, err) < 0)
    return -1;
  if (setuid(uid) < 0)
    return vc_error(err, errno, "user \"%s\"", p->user ? p->user : "0");
  if (security_after_user(sec, err) < 0)
    return -1;

  /* HOME from /etc/passwd unless given, as a login would. */
  size_t n = 0;
  while (p->env != NULL && p->env[n] != NULL)
    n++;
  char **env = calloc(n + 2, sizeof *env);
  if (env == NULL)
    return vc_error(err, ENOMEM, "env");
  memcpy(env, p->env, n * sizeof *env);
  if (env_get(p->env, "HOME") == NULL &&
      asprintf(&env[n], "HOME=%s", home) < 0)
    env[n] = NULL;
  *envp = env;

  const char *cwd = p->cwd != NULL && *p->cwd != '\0' ? p->cwd : "/";
  if (chdir(cwd) < 0)
    return vc_error(err, errno, "cwd %s", cwd);
  if (find_program(p->argv[0], (const char *const *)env, prog, prog_size,
                   err) < 0)
    return -1;
  read_ahead(prog);
  return 0;
}

/* Wait until the agent's helper has moved us into our cgroups: nothing
 * of the container's own may run before. */
static void await_cgroups(const child_io_t *io) {
  char buf[VC_ERR_MSG_MAX + 16];
  size_t len = 0;
  for (;;) {
    ssize_t n = read(io->joined, buf + len, sizeof buf - 1 - len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    len += (size_t)n;
    if (buf[0] == 'J' || len == sizeof buf - 1)
      break;
  }
  buf[len] = '\0';
  if (len > 0 && buf[0] == 'J')
    return;
  vc_err_t err = {0};
  char *colon = strchr(buf, ':');
  if (buf[0] == 'E' && colon != NULL)
    vc_fail(&err, atoi(buf + 1), "%s", colon + 1);
  else
    vc_fail(&err, EIO, "join its cgroups: the agent's helper failed");
  child_fail(io, &err);
}

/* Report ready, wait to be in our cgroups and for the gate, execve.  Never
 * returns. */
static _Noreturn void run(const child_io_t *io, const char *prog,
                          const proc_spec_t *p, const sec_t *sec,
                          char **env) {
  vc_err_t err = {0};
  char go;
  if (io->tty >= 0 && pty_child(io->tty, &err) < 0)
    child_fail(io, &err);
  if (write(io->report, "R", 1) != 1)
    _exit(127);
  await_cgroups(io);
  for (;;) {
    ssize_t n = read(io->gate, &go, 1);
    if (n == 1)
      break;
    if (n < 0 && errno == EINTR)
      continue;
    _exit(127);   /* the agent gave up on us */
  }
  /* The program starts clean: nothing blocked, nothing ignored (the
   * agent may have inherited SIG_IGN for some, e.g. as a background job). */
  for (int sig = 1; sig < NSIG; sig++)
    if (sig != SIGKILL && sig != SIGSTOP)
      signal(sig, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  /* Last: no_new_privs and the seccomp filter. */
  if (security_before_exec(sec, &err) < 0)
    child_fail(io, &err);
  execve(prog, (char *const *)p->argv, env);
  vc_error(&err, errno, "exec %s", prog);
  child_fail(io, &err);
}

static int stdio(const child_io_t *io, vc_err_t *err) {
  if (dup2(io->in >= 0 ? io->in : io->null_fd, 0) < 0 || dup2(io->out, 1) < 0 ||
      dup2(io->err, 2) < 0)
    return vc_error(err, errno, "stdio");
  /* If the agent dies, so do its containers. */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  return 0;
}

/* The pod's network files over /etc/NAME, inside the rootfs (after
 * pivot_root, so a symlink there resolves in the container's view); a file
 * missing in the image is made, as runc makes a mount point. */
static int net_mounts(const int net_fd[NET_FILES], vc_err_t *err) {
  for (size_t i = 0; i < NET_FILES; i++) {
    if (net_fd[i] < 0)
      continue;
    char path[64];
    snprintf(path, sizeof path, "/etc/%s", net_files[i]);
    if (mkdir_p("/etc", 0755, err) < 0)
      return -1;
    int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0)
      return vc_error(err, errno, "network file %s", path);
    close(fd);
    if (move_mount(net_fd[i], "", AT_FDCWD, path, MOVE_MOUNT_F_EMPTY_PATH) < 0)
      return vc_error(err, errno, "mount %s", path);
  }
  return 0;
}

/* The container's sysctls, through its fresh /proc (before /proc/sys is
 * made read-only): namespaced ones only, the host checked. */
static int set_sysctls(const vc_json_t *sysctl, vc_err_t *err) {
  for (size_t i = 0; sysctl != NULL && i < sysctl->n; i++) {
    char path[PATH_MAX] = "/proc/sys/";
    size_t n = strlen(path);
    for (const char *k = sysctl->keys[i]; *k != '\0' && n + 1 < sizeof path;
         k++)
      path[n++] = *k == '.' ? '/' : *k;
    path[n] = '\0';
    const vc_json_t *v = sysctl->items[i];
    cleanup_close int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, v->string, v->len) != (ssize_t)v->len)
      return vc_error(err, errno, "sysctl %s", sysctl->keys[i]);
  }
  return 0;
}

/* The init of a container, from its PID 1 until execve. */
static int ctr_setup(const ctr_spec_t *s, const child_io_t *io, char ***env,
                     char *prog, size_t prog_size, vc_err_t *err) {
  if (stdio(io, err) < 0)
    return -1;
  /* A container of a pod's sandbox shares its host name and IPC. */
  bool joined = s->uts_fd >= 0 && s->ipc_fd >= 0;
  if (joined && (setns(s->uts_fd, CLONE_NEWUTS) < 0 ||
                 setns(s->ipc_fd, CLONE_NEWIPC) < 0))
    return vc_error(err, errno, "join its sandbox's namespaces");
  if (unshare(CLONE_NEWNS | (joined ? 0 : CLONE_NEWUTS | CLONE_NEWIPC)) < 0)
    return vc_error(err, errno, "unshare");
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
    return vc_error(err, errno, "make / private");
  if (mount(s->rootfs, s->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
    return vc_error(err, errno, "rootfs %s", s->rootfs);

  /* Take what comes from outside as detached mounts now; they are placed
   * after pivot_root, so that every path is resolved inside the rootfs
   * (a symlink in the image cannot make us mkdir on the agent's side). */
  int dev_fd[N_DEV];
  for (size_t i = 0; i < N_DEV; i++) {
    char path[64];
    snprintf(path, sizeof path, "/dev/%s", dev_nodes[i]);
    dev_fd[i] = open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  }
  int *vol_fd = calloc(s->n_mounts + 1, sizeof *vol_fd);
  if (vol_fd == NULL)
    return vc_error(err, ENOMEM, "mounts");
  for (size_t i = 0; i < s->n_mounts; i++) {
    vol_fd[i] = -1;
    if (s->mounts[i].tmpfs)
      continue; /* made in place */
    vol_fd[i] = open_tree(AT_FDCWD, s->mounts[i].source,
                          OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
    if (vol_fd[i] < 0)
      return vc_error(err, errno, "mount %s", s->mounts[i].path);
  }

  int net_fd[NET_FILES];
  for (size_t i = 0; i < NET_FILES; i++) {
    net_fd[i] = -1;
    if (!s->net_file[i])
      continue;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/etc/%s", s->state_dir, net_files[i]);
    net_fd[i] = open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
    if (net_fd[i] < 0)
      return vc_error(err, errno, "network file %s", path);
  }

  if (chdir(s->rootfs) < 0 || syscall(SYS_pivot_root, ".", ".") < 0 ||
      umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
    return vc_error(err, errno, "pivot_root to %s", s->rootfs);

  if (mkdir_p("/proc", 0555, err) < 0)
    return -1;
  if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
    return vc_error(err, errno, "mount /proc");
  if (set_sysctls(s->sysctl, err) < 0 || setup_dev(dev_fd, err) < 0)
    return -1;
  struct stat st;
  if (stat("/sys", &st) == 0 && S_ISDIR(st.st_mode) &&
      mount("sysfs", "/sys", "sysfs",
            (s->sec.privileged ? 0 : MS_RDONLY) | MS_NOSUID | MS_NODEV |
                MS_NOEXEC, NULL) < 0)
    return vc_error(err, errno, "mount /sys");
  for (size_t i = 0; i < s->n_mounts; i++) {
    const mount_spec_t *m = &s->mounts[i];
    if (mkdir_p(m->path, 0755, err) < 0)
      return vc_error_prefix(err, "mount %s", m->path);
    if (m->tmpfs) {
      char data[64];
      int n = snprintf(data, sizeof data, "mode=%o", m->tmpfs_mode);
      if (m->tmpfs_size_mib > 0)
        snprintf(data + n, sizeof data - (size_t)n, ",size=%lldm",
                 m->tmpfs_size_mib);
      if (mount("tmpfs", m->path, "tmpfs",
                MS_NOSUID | MS_NODEV | (m->read_only ? MS_RDONLY : 0),
                data) < 0)
        return vc_error(err, errno, "mount tmpfs %s", m->path);
      continue;
    }
    if (move_mount(vol_fd[i], "", AT_FDCWD, m->path,
                   MOVE_MOUNT_F_EMPTY_PATH) < 0 ||
        (m->read_only &&
         mount(NULL, m->path, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) < 0))
      return vc_error(err, errno, "mount %s", m->path);
  }
  if (net_mounts(net_fd, err) < 0)
    return -1;
  /* After every mount, so that none can cover a masked path. */
  if (security_mounts(&s->sec, err) < 0)
    return -1;
  const char *host = s->hostname != NULL ? s->hostname : s->id;
  if (!joined && sethostname(host, strlen(host)) < 0)
    return vc_error(err, errno, "sethostname");
  return become(&s->proc, &s->sec, env, prog, prog_size, err);
}

static void ctr_child(const void *arg, const child_io_t *io) {
  const ctr_spec_t *s = arg;
  vc_err_t err = {0};
  char prog[PATH_MAX], **env = NULL;
  if (ctr_setup(s, io, &env, prog, sizeof prog, &err) < 0)
    child_fail(io, &err);
  run(io, prog, &s->proc, &s->sec, env);
}

/* What an exec'd process joins: the container init's namespaces. */
typedef struct exec_job {
  const proc_spec_t *proc;
  const sec_t *sec;     /* the container's */
  int mnt, uts, ipc;
} exec_job_t;

static void exec_child(const void *arg, const child_io_t *io) {
  const exec_job_t *job = arg;
  vc_err_t err = {0};
  char prog[PATH_MAX], **env = NULL;
  if (stdio(io, &err) < 0)
    child_fail(io, &err);
  /* Joining the mount namespace also moves root and cwd to its root. */
  if (setns(job->mnt, CLONE_NEWNS) < 0 || setns(job->uts, CLONE_NEWUTS) < 0 ||
      setns(job->ipc, CLONE_NEWIPC) < 0) {
    vc_error(&err, errno, "join the container's namespaces");
    child_fail(io, &err);
  }
  if (become(job->proc, job->sec, &env, prog, sizeof prog, &err) < 0)
    child_fail(io, &err);
  run(io, prog, job->proc, job->sec, env);
}

/* --- in the agent ------------------------------------------------------ */

#define N_FDS 14
static void close_fds(int (*fds)[N_FDS]) {
  for (int i = 0; i < N_FDS; i++)
    vc_closep(&(*fds)[i]);
}

/* Fork a child into PID namespace pidns (-1: a new one, the child is its
 * PID 1); fn runs in the child, whose stdio ps says.  The agent's own
 * namespace stays as is. */
static int spawn(agent_t *a, int pidns, child_fn fn, const void *arg,
                 const proc_spec_t *ps, spawned_t *sp, vc_err_t *err) {
  /* Pairs of read and write ends: stdout, stderr, report, gate, joined,
   * stdin (a pipe, with_stdin without a terminal); then a socket pair
   * for the terminal's master (tty). */
  __attribute__((cleanup(close_fds))) int fd[N_FDS] = {
      -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1};
  for (int i = 0; i < 12; i += 2) {
    if (i == 10 && (ps->tty || !ps->with_stdin))
      continue;
    if (pipe2(fd + i, O_CLOEXEC) < 0)
      return vc_error(err, errno, "pipe");
  }
  if (ps->tty &&
      socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fd + 12) < 0)
    return vc_error(err, errno, "socketpair");
  if ((pidns < 0 ? unshare(CLONE_NEWPID) : setns(pidns, CLONE_NEWPID)) < 0)
    return vc_error(err, errno, "enter a PID namespace");
  pid_t pid = fork();
  if (pid == 0) {
    child_io_t io = {.out = fd[1], .err = fd[3], .report = fd[5],
                     .gate = fd[6], .joined = fd[8], .in = fd[10],
                     .tty = fd[13], .null_fd = a->null_fd};
    close(fd[0]);
    close(fd[2]);
    close(fd[4]);
    close(fd[7]);
    close(fd[9]);
    if (fd[11] >= 0)
      close(fd[11]);
    if (fd[12] >= 0)
      close(fd[12]);
    fn(arg, &io);
    _exit(127);
  }
  int saved = errno;
  if (setns(a->self_pidns, CLONE_NEWPID) < 0)
    agent_log(a, "setns back to the agent's PID namespace: %s",
              strerror(errno));
  if (pid < 0)
    return vc_error(err, saved, "fork");
  fcntl(fd[0], F_SETFL, O_NONBLOCK);
  fcntl(fd[2], F_SETFL, O_NONBLOCK);
  if (fd[11] >= 0)
    fcntl(fd[11], F_SETFL, O_NONBLOCK);
  *sp = (spawned_t){.pid = pid,
                    .in = vc_steal_fd(fd[11]),
                    .tty = vc_steal_fd(fd[12]),
                    .out = vc_steal_fd(fd[0]),
                    .err = vc_steal_fd(fd[2]),
                    .report = vc_steal_fd(fd[4]),
                    .gate = vc_steal_fd(fd[7]),
                    .joined = vc_steal_fd(fd[9])};
  return 0;
}

/* The child's report: "R" when want_ready, else end of file (execve
 * succeeded); "E<errno>:<message>" is its failure. */
static int child_report(int fd, bool want_ready, vc_err_t *err) {
  char buf[VC_ERR_MSG_MAX + 16];
  size_t len = 0;
  int64_t deadline = vc_now_ms() + AGENT_CHILD_TIMEOUT_MS;
  for (;;) {
    int64_t left = deadline - vc_now_ms();
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int r = left > 0 ? poll(&pfd, 1, (int)left) : 0;
    if (r < 0 && errno == EINTR)
      continue;
    if (r == 0)
      return vc_fail(err, ETIMEDOUT, "the process did not start in %d ms",
                     AGENT_CHILD_TIMEOUT_MS);
    ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
      continue;
    if (n <= 0)
      break;
    len += (size_t)n;
    if (want_ready && buf[0] == 'R')
      return 0;
    if (len == sizeof buf - 1)
      break;
  }
  buf[len] = '\0';
  char *colon = strchr(buf, ':');
  if (buf[0] == 'E' && colon != NULL)
    return vc_fail(err, atoi(buf + 1), "%s", colon + 1);
  if (want_ready || len > 0)
    return vc_fail(err, EIO, "the process ended during its setup");
  return 0;
}

static void close_spawned(spawned_t *sp) {
  vc_closep(&sp->out);
  vc_closep(&sp->err);
  vc_closep(&sp->report);
  vc_closep(&sp->gate);
  vc_closep(&sp->joined);
  vc_closep(&sp->in);
  vc_closep(&sp->tty);
  sp->out = sp->err = sp->report = sp->gate = sp->joined = sp->in =
      sp->tty = -1;
}

/* Undo a child that failed before the agent took it on. */
static void abandon(spawned_t *sp) {
  kill(sp->pid, SIGKILL);
  while (waitpid(sp->pid, NULL, 0) < 0 && errno == EINTR)
    ;
  close_spawned(sp);
}

/* The byte that lets the child execve, then its verdict. */
static int release(int *gate, int report, vc_err_t *err) {
  ssize_t n = write(*gate, "G", 1);
  int saved = errno;
  close(*gate);
  *gate = -1;
  if (child_report(report, false, err) < 0)
    return -1;
  if (n != 1)
    return vc_error(err, saved, "start the process");
  return 0;
}

ctr_t *ctr_find(agent_t *a, const char *id) {
  for (ctr_t *c = a->ctrs; c != NULL; c = c->next)
    if (strcmp(c->id, id) == 0)
      return c;
  return NULL;
}

proc_t *proc_find(ctr_t *c, const char *exec_id) {
  if (exec_id == NULL || *exec_id == '\0')
    return &c->init;
  for (proc_t *p = c->execs; p != NULL; p = p->next)
    if (strcmp(p->exec_id, exec_id) == 0)
      return p;
  return NULL;
}

static void proc_init(proc_t *p, ctr_t *c) {
  p->ctr = c;
  p->out_fd = p->err_fd = p->in_fd = -1;
}

/* The child is set up: take its stdio into p.  With a terminal, the
 * master it sent is its output and (a second descriptor) its input; the
 * pipes it did not keep are closed. */
static int take_stdio(spawned_t *sp, const proc_spec_t *ps, proc_t *p,
                      vc_err_t *err) {
  if (ps->tty) {
    int master = pty_receive(sp->tty, err);
    if (master < 0)
      return -1;
    p->tty = true;
    p->out_fd = master;
    if (pty_resize(master, ps->rows ? ps->rows : 24, ps->cols ? ps->cols : 80) <
            0 ||
        (ps->with_stdin &&
         (p->in_fd = fcntl(master, F_DUPFD_CLOEXEC, 3)) < 0)) {
      vc_error(err, errno, "terminal");
      vc_closep(&p->out_fd);
      p->out_fd = -1;
      return -1;
    }
    vc_closep(&sp->out);
    vc_closep(&sp->err);
    vc_closep(&sp->tty);
    sp->out = sp->err = sp->tty = -1;
    return 0;
  }
  p->out_fd = vc_steal_fd(sp->out);
  p->err_fd = vc_steal_fd(sp->err);
  p->in_fd = vc_steal_fd(sp->in);
  sp->out = sp->err = sp->in = -1;
  return 0;
}

int ctr_create(agent_t *a, ctr_spec_t *s, ctr_t **out, vc_err_t *err) {
  if (ctr_find(a, s->id) != NULL)
    return vc_fail(err, EEXIST, "already exists");
  cleanup_free ctr_t *c = calloc(1, sizeof *c);
  if (c == NULL)
    return vc_error(err, ENOMEM, "create");
  snprintf(c->id, sizeof c->id, "%s", s->id);
  proc_init(&c->init, c);
  c->gate_fd = c->status_fd = c->cg_helper = -1;
  if (cgroup_paths(a, s->id, &c->cg, err) < 0)
    return -1;
  spawned_t sp;
  if (cgroup_check(&c->cg, s, err) < 0 ||
      spawn(a, -1, ctr_child, s, &s->proc, &sp, err) < 0) {
    cgroup_remove(a, &c->cg);
    return -1;
  }
  /* In its cgroups before it can run anything of its own: a helper makes
   * them and moves it there while it sets itself up, and it waits for the
   * helper before execve.  That can wait ~10 ms for the kernel (an RCU
   * grace period, see cgroup.c), which the agent, and the host's next
   * steps, need not wait for.  A failure waits for the helper, so that no
   * folder of its appears after the removal. */
  if (cgroup_enter_async(a, &c->cg, s, sp.pid, sp.joined, &c->cg_helper,
                         err) < 0 ||
      child_report(sp.report, true, err) < 0 ||
      take_stdio(&sp, &s->proc, &c->init, err) < 0) {
    cgroup_settle(&c->cg_helper);
    abandon(&sp);
    cgroup_remove(a, &c->cg);
    return -1;
  }
  vc_closep(&sp.joined);
  c->oom_seen = cgroup_oom_kills(&c->cg);
  c->init.pid = sp.pid;
  c->init.in_stream = s->proc.with_stdin || s->proc.tty;
  c->status_fd = sp.report;
  c->gate_fd = sp.gate;
  c->sec = s->sec; /* the container's now, for its execs */
  s->sec = (sec_t){0};
  c->state = CTR_CREATED;
  c->next = a->ctrs;
  a->ctrs = c;
  *out = vc_steal_ptr(c);
  return 0;
}

int ctr_start(agent_t *a, ctr_t *c, vc_err_t *err) {
  if (c->state != CTR_CREATED)
    return vc_fail(err, EINVAL, "is %s, not created",
                   c->state == CTR_RUNNING ? "running" : "exited");
  int ret = release(&c->gate_fd, c->status_fd, err);
  close(c->status_fd);
  c->status_fd = -1;
  if (ret < 0) {
    /* execve failed: the child is ending (127); take its status now. */
    int status;
    kill(c->init.pid, SIGKILL);
    while (waitpid(c->init.pid, &status, 0) < 0 && errno == EINTR)
      ;
    proc_exited(a, &c->init, status);
    return -1;
  }
  c->state = CTR_RUNNING;
  cgroup_settle(&c->cg_helper); /* done: the process is in its cgroups */
  agent_log(a, "container %s: started, pid %d", c->id, (int)c->init.pid);
  return 0;
}

int ctr_open_ns(pid_t pid, const char *ns, vc_err_t *err) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/ns/%s", (int)pid, ns);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    vc_error(err, errno, "%s", path);
  return fd;
}

static void proc_release(proc_t *p);

/* Keep the newest KEEP_EXITED ended execs (their output stays readable);
 * a container that runs a probe every second must not grow forever. */
#define KEEP_EXITED 32
static void prune_execs(agent_t *a, ctr_t *c) {
  unsigned kept = 0;
  for (proc_t **pp = &c->execs; *pp != NULL;) {
    proc_t *p = *pp;
    if (!p->exited || ++kept <= KEEP_EXITED) {
      pp = &p->next;
      continue;
    }
    *pp = p->next;
    proc_release(p);
    free(p);
    a->changed = true;
  }
}

int ctr_exec(agent_t *a, ctr_t *c, const proc_spec_t *s, proc_t **out,
             vc_err_t *err) {
  if (c->state != CTR_RUNNING)
    return vc_fail(err, ESRCH, "is not running");
  cleanup_close int pidns = ctr_open_ns(c->init.pid, "pid", err);
  cleanup_close int mnt = pidns < 0 ? -1 : ctr_open_ns(c->init.pid, "mnt", err);
  cleanup_close int uts = mnt < 0 ? -1 : ctr_open_ns(c->init.pid, "uts", err);
  cleanup_close int ipc = uts < 0 ? -1 : ctr_open_ns(c->init.pid, "ipc", err);
  if (ipc < 0)
    return -1;
  cleanup_free proc_t *p = calloc(1, sizeof *p);
  if (p == NULL)
    return vc_error(err, ENOMEM, "exec");
  proc_init(p, c);
  exec_job_t job = {.proc = s, .sec = &c->sec, .mnt = mnt, .uts = uts,
                    .ipc = ipc};
  spawned_t sp;
  if (spawn(a, pidns, exec_child, &job, s, &sp, err) < 0)
    return -1;
  if (cgroup_enter_async(a, &c->cg, NULL, sp.pid, sp.joined, NULL, err) < 0 ||
      child_report(sp.report, true, err) < 0 ||
      take_stdio(&sp, s, p, err) < 0 ||
      release(&sp.gate, sp.report, err) < 0) {
    abandon(&sp);
    proc_release(p);
    return -1;
  }
  vc_closep(&sp.joined);
  vc_closep(&sp.report);
  prune_execs(a, c);
  snprintf(p->exec_id, sizeof p->exec_id, "e%u", ++c->next_exec);
  p->pid = sp.pid;
  vc_closep(&sp.tty);
  p->next = c->execs;
  c->execs = p;
  *out = vc_steal_ptr(p);
  return 0;
}

void ctr_kill(agent_t *a, ctr_t *c) {
  for (proc_t *p = c->execs; p != NULL; p = p->next)
    if (!p->exited)
      kill(p->pid, SIGKILL);
  if (!c->init.exited && c->init.pid > 0)
    kill(c->init.pid, SIGKILL);
  vc_err_t err = {0};
  if (c->frozen && cgroup_freeze(&c->cg, false, &err) == 0)
    c->frozen = false; /* frozen, they would not die */
  for (proc_t *p = c->execs; p != NULL; p = p->next) {
    int status;
    if (!p->exited && waitpid(p->pid, &status, 0) == p->pid)
      proc_exited(a, p, status);
  }
  int status;
  if (!c->init.exited && c->init.pid > 0 &&
      waitpid(c->init.pid, &status, 0) == c->init.pid)
    proc_exited(a, &c->init, status);
}

static void proc_release(proc_t *p) {
  vc_closep(&p->out_fd);
  vc_closep(&p->err_fd);
  p->out_fd = p->err_fd = -1;
  stdin_close(p);
  ring_free(&p->out);
  ring_free(&p->err);
}

void ctr_free(agent_t *a, ctr_t *c) {
  ctr_kill(a, c);
  for (ctr_t **pp = &a->ctrs; *pp != NULL; pp = &(*pp)->next)
    if (*pp == c) {
      *pp = c->next;
      break;
    }
  /* Waits and streams on its processes were settled when they ended;
   * what is left (none expected) must not point into freed memory. */
  for (pending_t **pp = &a->pending; *pp != NULL;) {
    pending_t *q = *pp;
    if (q->proc->ctr == c) {
      *pp = q->next;
      if (q->conn != NULL)
        q->conn->busy = false;
      free(q);
    } else {
      pp = &q->next;
    }
  }
  while (c->execs != NULL) {
    proc_t *p = c->execs;
    c->execs = p->next;
    proc_release(p);
    free(p);
  }
  proc_release(&c->init);
  vc_closep(&c->gate_fd);
  vc_closep(&c->status_fd);
  cgroup_settle(&c->cg_helper);
  cgroup_remove(a, &c->cg);
  security_free(&c->sec);
  free(c);
  a->changed = true;
}
