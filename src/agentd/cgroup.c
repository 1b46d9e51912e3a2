/* cgroup.c - a container's cgroup v1 folders: memory, pids, cpu, cpuacct,
 * freezer and devices under /sys/fs/cgroup/<controller>/<parent>/<id>.
 * Freezing <parent> in the freezer hierarchy pauses every container (the
 * namespace backend's pause); the agent itself stays out of them all.
 *
 * The folders are made, limited and joined by a helper process, not by
 * the agent: moving a process between cgroups waits for an RCU grace
 * period (see cgroup_warm), and making a cgroup waits while another move
 * does, which the agent's loop must not.
 *
 * A controller that is not mounted is skipped; asking for a limit it would
 * enforce then fails, and so does every container but a privileged one
 * without the devices controller (it is what keeps a container from
 * opening the disks of its host or guest).  cpu and cpuacct are often one hierarchy
 * ("cpu,cpuacct" with two symlinks): the second is then an alias. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "agentd.h"
#include "sys/cleanup.h"

static const char *const cgroup_names[CG_N] = {
    "memory", "pids", "cpu", "cpuacct", "freezer", "devices"};

/* The devices a container may open, as runc and crun allow by default:
 * null, zero, full, tty, random, urandom, /dev/pts/ptmx and the ptys;
 * any node may be made (mknod), none other opened. */
static const char *const allowed_devices[] = {
    "c *:* m",     "b *:* m",     "c 1:3 rwm",   "c 1:5 rwm", "c 1:7 rwm",
    "c 1:8 rwm",   "c 1:9 rwm",   "c 5:0 rwm",   "c 5:2 rwm", "c 136:* rwm",
};

/* Moving a process between cgroup v1 cgroups takes a global lock whose
 * first taker waits for an RCU grace period (~5-20 ms, the largest part of
 * a container's start); takers within a grace period after it do not
 * wait.  So in a VM's guest a short-lived child takes it now, moving
 * itself into the pod's cgroup and exiting, while the host is still
 * setting the pod up: the first container's move, a few ms later, then
 * finds the wait done.  (On the host, the namespace backend has vc take
 * it, earlier still.)  Best effort: any failure only loses the head start.
 * Skipped on one CPU (a 1-vCPU guest): a grace period then waits for that
 * CPU alone, which is quick, while a fork in a guest under TCG is not. */
static void cgroup_warm(agent_t *a) {
  if (sysconf(_SC_NPROCESSORS_ONLN) <= 1)
    return;
  const char *dir = NULL;
  for (int i = 0; i < CG_N && dir == NULL; i++)
    if (a->cg_root[i] != NULL && !a->cg_alias[i])
      dir = a->cg_root[i];
  if (dir == NULL || (mkdir(dir, 0755) < 0 && errno != EEXIST))
    return;
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/cgroup.procs", dir);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return;
  pid_t pid = fork();
  if (pid == 0) {
    vc_close_others(fd, 0); /* not the agent's sockets */
    _exit(write(fd, "0", 1) == 1 ? 0 : 1);
  }
  close(fd);
}

void cgroup_init(agent_t *a) {
  char real[CG_N][PATH_MAX];
  for (int i = 0; i < CG_N; i++) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "/sys/fs/cgroup/%s/cgroup.procs",
             cgroup_names[i]);
    real[i][0] = '\0';
    if (access(path, F_OK) < 0) {
      agent_log(a, "cgroup: no %s controller", cgroup_names[i]);
      continue;
    }
    snprintf(path, sizeof path, "/sys/fs/cgroup/%s", cgroup_names[i]);
    if (realpath(path, real[i]) == NULL)
      continue;
    for (int j = 0; j < i; j++)
      if (a->cg_root[j] != NULL && strcmp(real[i], real[j]) == 0)
        a->cg_alias[i] = true;
    if (asprintf(&a->cg_root[i], "%s/%s", real[i], a->cgroup_parent) < 0)
      a->cg_root[i] = NULL;
  }
  /* On the host (the namespace backend) vc has done it already. */
  if (a->n_ports > 0)
    cgroup_warm(a);
}

static int write_file(const char *dir, const char *file, const char *value,
                      vc_err_t *err) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  cleanup_close int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return vc_error(err, errno, "%s", path);
  size_t len = strlen(value);
  if (write(fd, value, len) != (ssize_t)len)
    return vc_error(err, errno, "write %s to %s", value, path);
  return 0;
}

static int read_ll(const char *dir, const char *file, long long *v) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  cleanup_file FILE *f = fopen(path, "re");
  if (f == NULL || fscanf(f, "%lld", v) != 1)
    return -1;
  return 0;
}

/* rmdir a cgroup; its last processes may take a moment to leave. */
static void remove_dir(agent_t *a, const char *dir) {
  for (int tries = 0; tries < 50; tries++) {
    if (rmdir(dir) == 0 || errno == ENOENT)
      return;
    if (errno != EBUSY)
      break;
    nanosleep(&(struct timespec){.tv_nsec = 4000000}, NULL);
  }
  agent_log(a, "cgroup: rmdir %s: %s", dir, strerror(errno));
}

void cgroup_remove(agent_t *a, cgroups_t *cg) {
  for (int i = 0; i < CG_N; i++) {
    if (cg->dir[i] != NULL && !a->cg_alias[i])
      remove_dir(a, cg->dir[i]);
    free(cg->dir[i]);
    cg->dir[i] = NULL;
  }
}

void cgroup_remove_parent(agent_t *a) {
  for (int i = 0; i < CG_N; i++)
    if (a->cg_root[i] != NULL && !a->cg_alias[i] &&
        access(a->cg_root[i], F_OK) == 0)
      remove_dir(a, a->cg_root[i]);
}

int cgroup_paths(agent_t *a, const char *id, cgroups_t *cg, vc_err_t *err) {
  for (int i = 0; i < CG_N; i++) {
    if (a->cg_root[i] == NULL)
      continue;
    if (asprintf(&cg->dir[i], "%s/%s", a->cg_root[i], id) < 0) {
      cg->dir[i] = NULL;
      cgroup_remove(a, cg);
      return vc_error(err, ENOMEM, "cgroup");
    }
  }
  return 0;
}

/* mkdir the pod's and the container's folders (in the helper). */
static int make_dirs(const agent_t *a, const cgroups_t *cg, vc_err_t *err) {
  for (int i = 0; i < CG_N; i++) {
    if (cg->dir[i] == NULL || a->cg_alias[i])
      continue;
    if ((mkdir(a->cg_root[i], 0755) < 0 && errno != EEXIST) ||
        (mkdir(cg->dir[i], 0755) < 0 && errno != EEXIST))
      return vc_error(err, errno, "cgroup %s", cg->dir[i]);
  }
  return 0;
}

static int need(const cgroups_t *cg, int ctrl, const char *what,
                vc_err_t *err) {
  if (cg->dir[ctrl] == NULL)
    return vc_fail(err, EOPNOTSUPP, "%s: no %s cgroup controller", what,
                   cgroup_names[ctrl]);
  return 0;
}

int cgroup_check(const cgroups_t *cg, const ctr_spec_t *s, vc_err_t *err) {
  if (s->memory_mib >= 0 && need(cg, CG_MEMORY, "memory limit", err) < 0)
    return -1;
  if (s->pids >= 0 && need(cg, CG_PIDS, "pids limit", err) < 0)
    return -1;
  if (s->cpu_quota_pct >= 0 && need(cg, CG_CPU, "cpu quota", err) < 0)
    return -1;
  if (!s->sec.privileged &&
      need(cg, CG_DEVICES, "confining its devices", err) < 0)
    return -1;
  return 0;
}

/* The limits that are >= 0 (cgroup_check has passed). */
static int write_limits(const cgroups_t *cg, long long memory_mib,
                        long long pids, long long cpu_quota_pct,
                        vc_err_t *err) {
  char v[32];
  if (memory_mib >= 0) {
    snprintf(v, sizeof v, "%lld", memory_mib << 20);
    /* The same bound on memory + swap, so the limit cannot be dodged by
     * swapping; absent when the kernel does not account swap.  The kernel
     * keeps memory <= memory + swap: a higher limit raises that first. */
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/memory.memsw.limit_in_bytes",
             cg->dir[CG_MEMORY]);
    bool memsw = access(path, F_OK) == 0;
    long long now = 0;
    bool raise = read_ll(cg->dir[CG_MEMORY], "memory.limit_in_bytes", &now) == 0 &&
                 now < (memory_mib << 20);
    if ((memsw && raise &&
         write_file(cg->dir[CG_MEMORY], "memory.memsw.limit_in_bytes", v,
                    err) < 0) ||
        write_file(cg->dir[CG_MEMORY], "memory.limit_in_bytes", v, err) < 0 ||
        (memsw && !raise &&
         write_file(cg->dir[CG_MEMORY], "memory.memsw.limit_in_bytes", v,
                    err) < 0))
      return -1;
  }
  if (pids >= 0) {
    snprintf(v, sizeof v, "%lld", pids);
    if (write_file(cg->dir[CG_PIDS], "pids.max", v, err) < 0)
      return -1;
  }
  if (cpu_quota_pct >= 0) {
    long long period = 100000;
    read_ll(cg->dir[CG_CPU], "cpu.cfs_period_us", &period);
    /* The kernel refuses quotas under 1 ms. */
    long long quota = cpu_quota_pct * period / 100;
    snprintf(v, sizeof v, "%lld", quota < 1000 ? 1000 : quota);
    if (write_file(cg->dir[CG_CPU], "cpu.cfs_quota_us", v, err) < 0)
      return -1;
  }
  return 0;
}

int cgroup_freeze(const cgroups_t *cg, bool frozen, vc_err_t *err) {
  const char *what = frozen ? "pause" : "resume";
  if (need(cg, CG_FREEZER, what, err) < 0 ||
      write_file(cg->dir[CG_FREEZER], "freezer.state",
                 frozen ? "FROZEN" : "THAWED", err) < 0)
    return -1;
  /* FREEZING until every task of it is frozen; a task in the middle of
   * I/O (a sync over 9p) gets there late: asked again every 100 ms, for
   * up to 10 s, as runc does. */
  char path[PATH_MAX], buf[32];
  snprintf(path, sizeof path, "%s/freezer.state", cg->dir[CG_FREEZER]);
  for (int i = 0; frozen && i < 10000; i++) {
    cleanup_file FILE *f = fopen(path, "re");
    if (f != NULL && fgets(buf, sizeof buf, f) != NULL &&
        strncmp(buf, "FROZEN", 6) == 0)
      return 0;
    if (i % 100 == 99 &&
        write_file(cg->dir[CG_FREEZER], "freezer.state", "FROZEN", err) < 0)
      return -1;
    struct timespec ms = {0, 1000000};
    nanosleep(&ms, NULL);
  }
  if (!frozen)
    return 0;
  write_file(cg->dir[CG_FREEZER], "freezer.state", "THAWED", err);
  return vc_fail(err, ETIMEDOUT, "%s: its processes did not freeze", what);
}

int cgroup_update(const cgroups_t *cg, long long memory_mib, long long pids,
                  long long cpu_quota_pct, vc_err_t *err) {
  if ((memory_mib >= 0 && need(cg, CG_MEMORY, "memory limit", err) < 0) ||
      (pids >= 0 && need(cg, CG_PIDS, "pids limit", err) < 0) ||
      (cpu_quota_pct >= 0 && need(cg, CG_CPU, "cpu quota", err) < 0))
    return -1;
  return write_limits(cg, memory_mib, pids, cpu_quota_pct, err);
}

/* Write s's limits (in the helper; cgroup_check has passed). */
static int set_limits(const cgroups_t *cg, const ctr_spec_t *s,
                      vc_err_t *err) {
  if (write_limits(cg, s->memory_mib, s->pids, s->cpu_quota_pct, err) < 0)
    return -1;
  if (!s->sec.privileged) {
    if (write_file(cg->dir[CG_DEVICES], "devices.deny", "a", err) < 0)
      return -1;
    for (size_t i = 0; i < sizeof allowed_devices / sizeof allowed_devices[0];
         i++)
      if (write_file(cg->dir[CG_DEVICES], "devices.allow", allowed_devices[i],
                     err) < 0)
        return -1;
  }
  return 0;
}

static int join(const cgroups_t *cg, pid_t pid, vc_err_t *err) {
  char v[32];
  snprintf(v, sizeof v, "%d", (int)pid);
  for (int i = 0; i < CG_N; i++)
    if (cg->dir[i] != NULL && write_file(cg->dir[i], "cgroup.procs", v, err) < 0)
      return -1;
  return 0;
}

int cgroup_enter_async(const agent_t *a, const cgroups_t *cg,
                       const ctr_spec_t *s, pid_t pid, int notify, int *busy,
                       vc_err_t *err) {
  pid_t helper = fork();
  if (helper < 0)
    return vc_error(err, errno, "fork");
  if (helper > 0) {
    if (busy != NULL)
      *busy = (int)syscall(SYS_pidfd_open, helper, 0); /* -1: cannot tell */
    return 0;
  }
  vc_close_others(notify, 0); /* not the agent's sockets */
  vc_err_t why = {0};
  char msg[VC_ERR_MSG_MAX + 16];
  const char *failed = NULL;
  if (s != NULL && (make_dirs(a, cg, &why) < 0 || set_limits(cg, s, &why) < 0))
    failed = "set up its cgroups";
  else if (join(cg, pid, &why) < 0)
    failed = "join its cgroups";
  int n = failed != NULL ? snprintf(msg, sizeof msg, "E%d:%s: %s", why.errnum,
                                    failed, why.msg)
                         : snprintf(msg, sizeof msg, "J");
  if (n >= (int)sizeof msg) /* truncated: what the buffer holds */
    n = (int)sizeof msg - 1;
  _exit(write(notify, msg, (size_t)n) == n ? 0 : 1);
}

void cgroup_settle(int *busy) {
  if (*busy < 0)
    return;
  struct pollfd p = {.fd = *busy, .events = POLLIN};
  while (poll(&p, 1, -1) < 0 && errno == EINTR)
    ;
  vc_closep(busy);
}

int cgroup_read(const cgroups_t *cg, int ctrl, const char *file,
                long long *v) {
  *v = 0;
  if (cg->dir[ctrl] == NULL)
    return -1;
  return read_ll(cg->dir[ctrl], file, v);
}

long long cgroup_oom_kills(const cgroups_t *cg) {
  if (cg->dir[CG_MEMORY] == NULL)
    return 0;
  char path[PATH_MAX], line[128];
  snprintf(path, sizeof path, "%s/memory.oom_control", cg->dir[CG_MEMORY]);
  cleanup_file FILE *f = fopen(path, "re");
  long long n = 0;
  while (f != NULL && fgets(line, sizeof line, f) != NULL)
    if (sscanf(line, "oom_kill %lld", &n) == 1)
      break;
  return n;
}

const char *cgroup_procs_dir(const cgroups_t *cg) {
  static const int order[] = {CG_PIDS, CG_MEMORY, CG_CPU, CG_CPUACCT};
  for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
    if (cg->dir[order[i]] != NULL)
      return cg->dir[order[i]];
  return NULL;
}
