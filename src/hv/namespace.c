/* namespace.c - a sandbox without a VM: the agent runs on the host as
 * PID 1 of fresh PID, mount, UTS, IPC and network namespaces, detached so
 * that it outlives the vc process that started it.
 *
 * Host-side layout: RUN_DIR/agent.sock (the agent's socket), RUN_DIR/.sandbox
 * (the agent's state folder; a dot-name, so the store never takes it for a
 * container), RUN_DIR/agent.log (its stderr).  Cgroups (v1): the agent's
 * containers live under CONTROLLER/vc-POD-HASH/, freezer included, and the
 * sandbox is paused by freezing freezer/vc-POD-HASH.  The agent makes them
 * (agentd/cgroup.c); the backend removes them.  The agent itself is in
 * none of them: moving a process between cgroup v1 hierarchies waits for
 * an RCU grace period (several ms), which the containers' own move pays
 * once (ns_warm); the agent stays responsive while its containers are
 * frozen. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hypervisor.h"
#include "sys/cleanup.h"
#include "sys/fileio.h"
#include "sys/process.h"
#include "sys/wait.h"

#define CGROUP_ROOT "/sys/fs/cgroup"

static const char *const controllers[] = {"freezer", "memory", "pids", "cpu",
                                          "cpuacct", NULL};

/* "vc-POD-HASH", a valid ID: the hash of the run folder (which holds the
 * whole pod ID) keeps it unique when two stores hold one pod ID. */
static void cgroup_name(vc_hv_t *hv, char *out, size_t size) {
  uint32_t h = 2166136261u;
  for (const char *p = hv->spec.run_dir; *p != '\0'; p++)
    h = (h ^ (unsigned char)*p) * 16777619u;
  snprintf(out, size, "vc-%.40s-%08x", hv->spec.pod_id, h);
}

static int path_in(vc_hv_t *hv, const char *name, char *out, size_t size,
                   vc_err_t *err) {
  if ((size_t)snprintf(out, size, "%s/%s", hv->spec.run_dir, name) >= size)
    return vc_fail(err, ENAMETOOLONG, "namespace: %s/%s: path too long",
                   hv->spec.run_dir, name);
  return 0;
}

/* Remove a cgroup folder and the ones below it (cgroup files go with their
 * folder; only folders need rmdir), deepest first. */
static void cgroup_rmtree(const char *path, int depth) {
  cleanup_dir DIR *d = opendir(path);
  if (d != NULL && depth < 8) {
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      if (e->d_type != DT_DIR || strcmp(e->d_name, ".") == 0 ||
          strcmp(e->d_name, "..") == 0)
        continue;
      char sub[PATH_MAX];
      if ((size_t)snprintf(sub, sizeof sub, "%s/%s", path, e->d_name) <
          sizeof sub)
        cgroup_rmtree(sub, depth + 1);
    }
  }
  /* A process may still be on its way out (the warm-up below, a
   * container's last exit): give it a moment. */
  for (int tries = 0; rmdir(path) < 0 && errno == EBUSY && tries < 100;
       tries++)
    nanosleep(&(struct timespec){.tv_nsec = 2000000}, NULL);
}

static void remove_cgroups(vc_hv_t *hv) {
  char name[128], path[PATH_MAX];
  cgroup_name(hv, name, sizeof name);
  for (size_t i = 0; controllers[i] != NULL; i++) {
    snprintf(path, sizeof path, CGROUP_ROOT "/%s/%s", controllers[i], name);
    cgroup_rmtree(path, 0);
  }
}

static int freezer_write(vc_hv_t *hv, const char *state, vc_err_t *err) {
  char name[128], path[PATH_MAX];
  cgroup_name(hv, name, sizeof name);
  snprintf(path, sizeof path, CGROUP_ROOT "/freezer/%s/freezer.state", name);
  cleanup_close int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write(fd, state, strlen(state)) < 0)
    return vc_error(err, errno, "namespace: %s", path);
  return 0;
}

/* "THAWED", "FREEZING" or "FROZEN"; "" when unknown. */
static void freezer_read(vc_hv_t *hv, char *out, size_t size) {
  char name[128], path[PATH_MAX];
  cgroup_name(hv, name, sizeof name);
  snprintf(path, sizeof path, CGROUP_ROOT "/freezer/%s/freezer.state", name);
  cleanup_free char *data = NULL;
  size_t len;
  vc_err_t err;
  out[0] = '\0';
  if (vc_read_file(path, 64, &data, &len, &err) == 0)
    snprintf(out, size, "%.*s", (int)strcspn(data, "\n"), data);
}

/* The freezer cgroup this process is in, as the path of its cgroup.procs
 * (from /proc/self/cgroup: "ID:CONTROLLERS:PATH" lines). */
static int own_freezer_procs(char *out, size_t size) {
  cleanup_file FILE *f = fopen("/proc/self/cgroup", "re");
  char line[PATH_MAX + 64];
  while (f != NULL && fgets(line, sizeof line, f) != NULL) {
    char *ctrls = strchr(line, ':');
    char *path = ctrls != NULL ? strchr(ctrls + 1, ':') : NULL;
    if (path == NULL)
      continue;
    *path++ = '\0';
    path[strcspn(path, "\n")] = '\0';
    char *save = NULL;
    for (char *c = strtok_r(ctrls + 1, ",", &save); c != NULL;
         c = strtok_r(NULL, ",", &save)) {
      if (strcmp(c, "freezer") != 0)
        continue;
      int n = snprintf(out, size, CGROUP_ROOT "/freezer%s/cgroup.procs",
                       strcmp(path, "/") == 0 ? "" : path);
      return n > 0 && (size_t)n < size ? 0 : -1;
    }
  }
  return -1;
}

/* Moving a process into a cgroup v1 takes a global lock whose first taker
 * waits for an RCU grace period: 6 ms on an idle 2-core machine, 10-20 ms
 * on a busy one, the largest part of a container's start (crun pays it as
 * well).  Takers that come while it is being taken, or within about a
 * grace period after, wait only for what is left of it.  So as soon as vc
 * knows that a namespace pod is coming, before its record, a short-lived
 * process takes it, "moving" itself into the freezer cgroup it is in, and
 * exits, while vc stores the pod and starts the agent: the first
 * container's move then finds the wait done.  It makes nothing, so a vc
 * killed meanwhile leaves nothing.  The wait holds the cgroup mutex, so
 * that making a cgroup meanwhile waits too: vc makes none, the agent makes
 * its containers' from a helper process.  Best effort: a failure only
 * loses the head start.  A double fork, so that nothing is left for this
 * process to reap, and all of the work in the grandchild. */
static void ns_warm(void) {
  pid_t child = fork();
  if (child == 0) {
    if (fork() == 0) {
      /* Nothing of vc's: a copy of a pod's lock would hold it. */
      close_range(3, ~0U, 0);
      char path[PATH_MAX];
      int fd = own_freezer_procs(path, sizeof path) < 0
                   ? -1
                   : open(path, O_WRONLY | O_CLOEXEC);
      _exit(fd >= 0 && write(fd, "0", 1) == 1 ? 0 : 1);
    }
    _exit(0);
  }
  while (child > 0 && waitpid(child, NULL, 0) < 0 && errno == EINTR)
    ;
}

static int ns_create(vc_hv_t *hv, vc_err_t *err) {
  char agent[PATH_MAX];
  if (vc_sibling_program("vc-agent", agent, sizeof agent, err) < 0)
    return -1;
  if (access(agent, X_OK) < 0)
    return vc_error(err, errno, "namespace: agent program %s", agent);
  char state[PATH_MAX];
  if (path_in(hv, ".sandbox", state, sizeof state, err) < 0)
    return -1;
  if (mkdir(state, 0750) < 0 && errno != EEXIST)
    return vc_error(err, errno, "namespace: %s", state);
  /* Pause needs the freezer; the agent makes the cgroups. */
  if (access(CGROUP_ROOT "/freezer/cgroup.procs", F_OK) < 0)
    return vc_error(err, errno, "namespace: no freezer cgroup hierarchy at "
                    CGROUP_ROOT "/freezer");
  return 0;
}

static int set_loopback_up(void) {
  cleanup_close int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct ifreq ifr = {0};
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
  if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
    return -1;
  ifr.ifr_flags |= IFF_UP;
  return ioctl(s, SIOCSIFFLAGS, &ifr);
}

/* The sandbox's PID 1, before exec: its own /proc, loopback up, stdio to
 * the log.  Returns what failed, with errno set. */
static const char *sandbox_init(vc_hv_t *hv) {
  char path[PATH_MAX];
  /* "none": ignored for a propagation change, but tools read it (valgrind) */
  if (mount(NULL, "/", "none", MS_REC | MS_PRIVATE, NULL) < 0 ||
      mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) <
          0)
    return "mount /proc";
  if (set_loopback_up() < 0)
    return "loopback";
  snprintf(path, sizeof path, "%s/agent.log", hv->spec.run_dir);
  cleanup_close int log = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
                               0640);
  cleanup_close int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (log < 0 || null < 0 || dup2(null, 0) < 0 || dup2(log, 1) < 0 ||
      dup2(log, 2) < 0)
    return "open the agent log";
  return NULL;
}

static void child_fail(int report, const char *what) {
  char msg[512];
  int n = snprintf(msg, sizeof msg, "%s: %s", what, strerror(errno));
  if (write(report, msg, (size_t)n) < 0)
    _exit(127);
  _exit(127);
}

/* The intermediate child: new namespaces, then the sandbox's PID 1, whose
 * pid it reports before leaving it to init. */
static void launcher(vc_hv_t *hv, pid_t parent, int pid_pipe, int report,
                     int ready, char *ready_arg, size_t ready_size,
                     char *const argv[]) {
  /* It ends with vc, so that a vc killed while the sandbox starts leaves
   * an agent only if it was forked already, never one that appears later
   * (the agent does not inherit this). */
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
    _exit(127);
  setsid();
  /* A networked pod's sandbox joins the pod's network namespace (made by
   * vc with CNI, or by an engine); else it gets an empty one. */
  if (hv->spec.netns != NULL) {
    int ns = open(hv->spec.netns, O_RDONLY | O_CLOEXEC);
    if (ns < 0 || setns(ns, CLONE_NEWNET) < 0)
      child_fail(report, "join the pod's network namespace");
    close(ns);
  }
  if (unshare(CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC |
              (hv->spec.netns != NULL ? 0 : CLONE_NEWNET)) < 0)
    child_fail(report, "unshare");
  pid_t pid = fork();
  if (pid == 0) {
    close(pid_pipe);
    const char *failed = sandbox_init(hv);
    /* The agent's copy of the ready pipe, open across exec. */
    int fd = failed == NULL ? dup(ready) : -1;
    if (failed == NULL && fd < 0)
      failed = "ready pipe";
    if (failed == NULL) {
      snprintf(ready_arg, ready_size, "%d", fd);
      execv(argv[0], argv);
      failed = argv[0];
    }
    child_fail(report, failed);
  }
  int32_t v = pid;
  if (write(pid_pipe, &v, sizeof v) < 0)
    _exit(1);
  _exit(0);
}

/* The last lines of the agent's log, for an error message. */
static void log_tail(vc_hv_t *hv, char *out, size_t size) {
  char path[PATH_MAX];
  cleanup_free char *data = NULL;
  size_t len;
  vc_err_t err;
  out[0] = '\0';
  snprintf(path, sizeof path, "%s/agent.log", hv->spec.run_dir);
  if (vc_read_file(path, 1 << 20, &data, &len, &err) < 0)
    return;
  while (len > 0 && data[len - 1] == '\n')
    data[--len] = '\0';
  size_t start = len > size - 1 ? len - (size - 1) : 0;
  snprintf(out, size, "%s", data + start);
}

/* Wait until the agent says it serves (a byte on its ready pipe); fail at
 * once, quoting its log, if it dies first (the pipe closes empty). */
static int await_agent(vc_hv_t *hv, int ready, double timeout_s,
                       vc_err_t *err) {
  /* A Ctrl-C in vc repl ends the wait (sys/wait.h); the caller stops
   * the sandbox. */
  int r = vc_wait_fd(ready, POLLIN, (int)(timeout_s * 1000), err);
  if (r < 0)
    return vc_error_prefix(err, "namespace: waiting for the agent");
  if (r == 0)
    return vc_fail(err, ETIMEDOUT, "namespace: the agent did not listen "
                   "within %gs", timeout_s);
  char c;
  if (r > 0 && read(ready, &c, 1) == 1)
    return 0;
  char tail[512];
  log_tail(hv, tail, sizeof tail);
  return vc_fail(err, EIO, "namespace: the agent exited at start%s%s",
                 tail[0] != '\0' ? ": " : "", tail);
}

static int ns_stop(vc_hv_t *hv, double timeout_s, vc_err_t *err);

static int ns_start(vc_hv_t *hv, vc_err_t *err) {
  char agent[PATH_MAX], sock[PATH_MAX], state[PATH_MAX];
  char name[128];
  if (vc_sibling_program("vc-agent", agent, sizeof agent, err) < 0 ||
      path_in(hv, "agent.sock", sock, sizeof sock, err) < 0 ||
      path_in(hv, ".sandbox", state, sizeof state, err) < 0)
    return -1;
  /* sun_path holds 108 bytes */
  if (strlen(sock) >= 108 || strlen(sock) + 6 > sizeof hv->info.agent)
    return vc_fail(err, ENAMETOOLONG, "namespace: socket path %s is too long "
                   "(use a shorter --root)", sock);
  cgroup_name(hv, name, sizeof name);
  if (unlink(sock) < 0 && errno != ENOENT)
    return vc_error(err, errno, "namespace: remove stale %s", sock);
  char ready_arg[16] = "";
  char *const argv[] = {agent, "--listen",        sock, "--state-dir",
                        state, "--cgroup-parent", name, "--ready-fd",
                        ready_arg, NULL};
  int pids[2], report[2], ready[2];
  if (pipe2(pids, O_CLOEXEC) < 0)
    return vc_error(err, errno, "namespace: pipe");
  if (pipe2(report, O_CLOEXEC) < 0) {
    close(pids[0]);
    close(pids[1]);
    return vc_error(err, errno, "namespace: pipe");
  }
  if (pipe2(ready, O_CLOEXEC) < 0) {
    close(pids[0]);
    close(pids[1]);
    close(report[0]);
    close(report[1]);
    return vc_error(err, errno, "namespace: pipe");
  }
  cleanup_close int pid_r = pids[0], report_r = report[0], ready_r = ready[0];
  pid_t parent = getpid();
  pid_t child = fork();
  if (child < 0) {
    close(pids[1]);
    close(report[1]);
    close(ready[1]);
    return vc_error(err, errno, "namespace: fork");
  }
  if (child == 0) {
    close(pid_r);
    close(report_r);
    close(ready_r);
    launcher(hv, parent, pids[1], report[1], ready[1], ready_arg,
             sizeof ready_arg, argv);
  }
  close(pids[1]);
  close(report[1]);
  close(ready[1]);
  int status;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR)
    ;
  int32_t pid = 0;
  ssize_t got = read(pid_r, &pid, sizeof pid);
  /* The report pipe closes at exec (CLOEXEC) or carries why it failed. */
  char msg[512];
  ssize_t n = read(report_r, msg, sizeof msg - 1);
  if (n > 0 || got != (ssize_t)sizeof pid || pid <= 0) {
    msg[n > 0 ? n : 0] = '\0';
    remove_cgroups(hv);
    return vc_fail(err, EIO, "namespace: cannot start the sandbox: %s",
                   n > 0 ? msg : "launcher failed");
  }
  hv->info.pid = pid;
  if (vc_proc_start_time(pid, &hv->info.start_time, err) < 0)
    return vc_error_prefix(err, "namespace: sandbox process %d", (int)pid);
  snprintf(hv->info.accel, sizeof hv->info.accel, "none");
  snprintf(hv->info.share, sizeof hv->info.share, "bind");
  snprintf(hv->info.agent, sizeof hv->info.agent, "unix:%.100s", sock);
  if (await_agent(hv, ready_r, 10, err) < 0) {
    vc_err_t ignored;
    ns_stop(hv, 1, &ignored);
    return -1;
  }
  return 0;
}

static bool alive(vc_hv_t *hv) {
  return vc_proc_alive(hv->info.pid, hv->info.start_time);
}

static int ns_stop(vc_hv_t *hv, double timeout_s, vc_err_t *err) {
  char sock[PATH_MAX];
  if (alive(hv)) {
    /* Frozen tasks act on no signal, SIGKILL included: thaw first. */
    char st[16];
    freezer_read(hv, st, sizeof st);
    if (strcmp(st, "THAWED") != 0 && st[0] != '\0')
      freezer_write(hv, "THAWED", err);
    /* The agent is PID 1 of the sandbox: when it goes, all go. */
    if (!vc_proc_end(hv->info.pid, hv->info.start_time, SIGTERM, timeout_s) &&
        !vc_proc_end(hv->info.pid, hv->info.start_time, SIGKILL, 5))
      return vc_fail(err, EBUSY, "namespace: sandbox process %d survives "
                     "SIGKILL", (int)hv->info.pid);
  }
  remove_cgroups(hv);
  if (path_in(hv, "agent.sock", sock, sizeof sock, err) == 0)
    unlink(sock);
  return 0;
}

static int ns_pause(vc_hv_t *hv, vc_err_t *err) {
  if (!alive(hv))
    return vc_fail(err, ESRCH, "namespace: the sandbox is not running");
  /* The agent makes it with the pod's first container: there may be none. */
  char name[128], path[PATH_MAX];
  cgroup_name(hv, name, sizeof name);
  snprintf(path, sizeof path, CGROUP_ROOT "/freezer/%s", name);
  if (mkdir(path, 0755) < 0 && errno != EEXIST)
    return vc_error(err, errno, "namespace: %s", path);
  if (freezer_write(hv, "FROZEN", err) < 0)
    return -1;
  /* Freezing is asynchronous: wait until every task is frozen. */
  struct timespec pause = {0, 1000000};
  for (int i = 0; i < 5000; i++) {
    char st[16];
    freezer_read(hv, st, sizeof st);
    if (strcmp(st, "FROZEN") == 0)
      return 0;
    nanosleep(&pause, NULL);
  }
  return vc_fail(err, ETIMEDOUT, "namespace: the sandbox did not freeze");
}

static int ns_resume(vc_hv_t *hv, vc_err_t *err) {
  if (!alive(hv))
    return vc_fail(err, ESRCH, "namespace: the sandbox is not running");
  return freezer_write(hv, "THAWED", err);
}

static int ns_status(vc_hv_t *hv, vc_vm_state_t *state, vc_err_t *err) {
  (void)err;
  if (hv->info.pid == 0) {
    *state = VC_VM_NONE;
    return 0;
  }
  if (!alive(hv)) {
    *state = VC_VM_STOPPED;
    return 0;
  }
  char st[16];
  freezer_read(hv, st, sizeof st);
  *state = strcmp(st, "FROZEN") == 0 ? VC_VM_PAUSED : VC_VM_RUNNING;
  return 0;
}

static int ns_destroy(vc_hv_t *hv, vc_err_t *err) {
  if (ns_stop(hv, 5, err) < 0)
    return -1;
  char log[PATH_MAX];
  if (path_in(hv, "agent.log", log, sizeof log, err) == 0)
    unlink(log);
  return 0;
}

const struct vc_hv_ops vc_hv_namespace_ops = {
    .name = "namespace",
    .warm = ns_warm,
    .create = ns_create,
    .start = ns_start,
    .stop = ns_stop,
    .pause = ns_pause,
    .resume = ns_resume,
    .status = ns_status,
    .destroy = ns_destroy,
};
