/* init.c - /init of the vc guest's initramfs (vc-init, static).
 *
 * Makes / a mount point (pivot_root, which the agent uses for containers,
 * refuses the bare initramfs), mounts the basic file systems and the cgroup
 * v1 hierarchies the agent uses, loads the kernel modules listed in
 * /etc/modules (in order, with finit_module), makes /run/vc/shared (where
 * the agent mounts the pod's 9p share), brings lo up, waits for the
 * agent's virtio-serial port, then becomes vc-agent.
 * The agent, as PID 1, powers the VM off when it exits.
 *
 * It is C rather than a busybox script for speed: under TCG every fork and
 * exec of busybox costs ~4 ms of guest time, and a script needs some twenty
 * of them (mount, insmod, ...); here each step is one system call.
 *
 * On any failure: one line "vc-guest: ...: powering off" on the console,
 * then power off.
 *
 * Kernel command line options:
 *   vc.debug=1      a shell on the console instead of the agent
 *   vc.ports=N      the agent serves N virtio-serial ports, agent.0 to
 *                   agent.N-1 (default 1: agent.0), one host client each
 *   vc.port=NAME    the agent serves one virtio-serial port, NAME (the
 *                   last of vc.port and vc.ports counts)
 *   vc.trace=1      the guest's uptime after each step, on the console */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SHARE_DIR "/run/vc/shared"
#define PORT_WAIT_S 5
#define MAX_PORTS 16

struct opts {
  bool debug;
  bool trace;
  char port[64];
  int ports;
};

static double uptime(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void say(const char *fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n < 0)
    return;
  if ((size_t)n >= sizeof line)
    n = sizeof line - 1;
  int fd = open("/dev/console", O_WRONLY | O_NOCTTY | O_CLOEXEC);
  if (fd < 0)
    return;
  dprintf(fd, "vc-guest: %.*s\n", n, line);
  close(fd);
}

/* A shell on the console (vc.debug=1), until it exits. */
static void debug_shell(void) {
  pid_t pid = fork();
  if (pid == 0) {
    execlp("setsid", "setsid", "cttyhack", "sh", (char *)NULL);
    _exit(127);
  }
  int status;
  while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
}

static void power_off(void) {
  sync();
  reboot(RB_POWER_OFF);
  _exit(1); /* the kernel panics; panic=-1 resets; QEMU -no-reboot exits */
}

static void fail(const struct opts *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

static void fail(const struct opts *o, const char *fmt, ...) {
  char what[384];
  int e = errno;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  if (e != 0)
    say("%s: %s: powering off", what, strerror(e));
  else
    say("%s: powering off", what);
  if (o->debug)
    debug_shell();
  power_off();
  _exit(1);
}

static void trace(const struct opts *o, const char *step) {
  if (o->trace)
    say("%.4f %s", uptime(), step);
}

static void must_mount(const struct opts *o, const char *src,
                       const char *target, const char *type,
                       unsigned long flags, const char *data) {
  if (mount(src, target, type, flags, data) < 0)
    fail(o, "mount %s", target);
}

static void must_mkdir(const struct opts *o, const char *path, mode_t mode) {
  if (mkdir(path, mode) < 0 && errno != EEXIST)
    fail(o, "mkdir %s", path);
}

/* The first line of a (small) file, without its newline; "" on failure. */
static void read_line(const char *path, char *out, size_t size) {
  out[0] = '\0';
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return;
  ssize_t n = read(fd, out, size - 1);
  close(fd);
  if (n < 0)
    n = 0;
  out[n] = '\0';
  out[strcspn(out, "\n")] = '\0';
}

static void parse_cmdline(struct opts *o) {
  char line[4096];
  read_line("/proc/cmdline", line, sizeof line);
  char *save = NULL;
  for (char *w = strtok_r(line, " ", &save); w != NULL;
       w = strtok_r(NULL, " ", &save)) {
    if (strcmp(w, "vc.debug=1") == 0)
      o->debug = true;
    else if (strcmp(w, "vc.trace=1") == 0)
      o->trace = true;
    else if (strncmp(w, "vc.port=", 8) == 0)
      snprintf(o->port, sizeof o->port, "%s", w + 8), o->ports = 1;
    else if (strncmp(w, "vc.ports=", 9) == 0)
      o->ports = atoi(w + 9);
  }
}

/* As switch_root does with a new root, without copying anything: bind the
 * initramfs onto /.root, move that over /, and enter it. */
static void bind_root(const struct opts *o) {
  must_mkdir(o, "/.root", 0755);
  must_mount(o, "/", "/.root", NULL, MS_BIND, NULL);
  if (chdir("/.root") < 0)
    fail(o, "chdir /.root");
  must_mount(o, ".", "/", NULL, MS_MOVE, NULL);
  if (chroot(".") < 0 || chdir("/") < 0)
    fail(o, "chroot to the bind mount of the initramfs");
}

static void mount_basics(const struct opts *o) {
  const unsigned long safe = MS_NOSUID | MS_NODEV | MS_NOEXEC;
  must_mount(o, "sysfs", "/sys", "sysfs", safe, NULL);
  must_mount(o, "devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
  must_mkdir(o, "/dev/pts", 0755);
  must_mkdir(o, "/dev/shm", 0755);
  must_mount(o, "devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
             "mode=0620,ptmxmode=0666");
  must_mount(o, "tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
  must_mount(o, "tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");

  /* what the agent uses (the freezer pauses one container; a whole pod
   * pauses in QEMU) */
  static const char *const cgroups[] = {"memory", "pids", "cpu,cpuacct",
                                         "freezer", "devices"};
  must_mount(o, "cgroup", "/sys/fs/cgroup", "tmpfs", safe, "mode=0755");
  for (size_t i = 0; i < sizeof cgroups / sizeof cgroups[0]; i++) {
    char dir[64];
    snprintf(dir, sizeof dir, "/sys/fs/cgroup/%s", cgroups[i]);
    must_mkdir(o, dir, 0755);
    must_mount(o, "cgroup", dir, "cgroup", safe, cgroups[i]);
  }
  if (symlink("cpu,cpuacct", "/sys/fs/cgroup/cpu") < 0 ||
      symlink("cpu,cpuacct", "/sys/fs/cgroup/cpuacct") < 0)
    fail(o, "cgroup links");
}

/* Each module of /etc/modules, in order (dependencies first). */
static void load_modules(const struct opts *o) {
  FILE *list = fopen("/etc/modules", "re");
  if (list == NULL)
    fail(o, "/etc/modules");
  char path[512];
  while (fgets(path, sizeof path, list) != NULL) {
    path[strcspn(path, "\n")] = '\0';
    if (path[0] == '\0')
      continue;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int r = fd < 0 ? -1 : (int)syscall(SYS_finit_module, fd, "", 0);
    int e = errno;
    if (fd >= 0)
      close(fd);
    trace(o, path);
    if (r < 0 && e != EEXIST) {
      char kver[128];
      read_line("/etc/vc-guest-kernel", kver, sizeof kver);
      fclose(list);
      errno = e;
      fail(o, "insmod %s (%s)", path, kver);
    }
  }
  fclose(list);
}

/* Where the agent mounts the pod's 9p share (at create_pod: a VM whose
 * 9p share is mounted cannot be saved as a template). */
static void make_share_dir(const struct opts *o) {
  must_mkdir(o, "/run/vc", 0755);
  must_mkdir(o, SHARE_DIR, 0755);
}

static void loopback_up(void) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct ifreq ifr = {0};
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
  bool ok = fd >= 0 && ioctl(fd, SIOCGIFFLAGS, &ifr) == 0;
  ifr.ifr_flags |= IFF_UP;
  ok = ok && ioctl(fd, SIOCSIFFLAGS, &ifr) == 0;
  if (fd >= 0)
    close(fd);
  if (!ok)
    say("lo: cannot bring it up");
}

static bool has_port(const char *name) {
  DIR *d = opendir("/sys/class/virtio-ports");
  if (d == NULL)
    return false;
  bool found = false;
  for (struct dirent *e; !found && (e = readdir(d)) != NULL;) {
    if (e->d_name[0] == '.')
      continue;
    char path[512], got[64];
    snprintf(path, sizeof path, "/sys/class/virtio-ports/%s/name", e->d_name);
    read_line(path, got, sizeof got);
    found = strcmp(got, name) == 0;
  }
  closedir(d);
  return found;
}


/* virtio-console adds its ports asynchronously: wait for the agent's. */
static void wait_port(const struct opts *o, const char *name,
                      double deadline) {
  while (!has_port(name)) {
    if (uptime() >= deadline) {
      errno = 0;
      fail(o, "no virtio-serial port %s after %d s", name, PORT_WAIT_S);
    }
    nanosleep(&(struct timespec){.tv_nsec = 2000000}, NULL);
  }
}

/* Wait for the agent's ports, then become the agent, serving them all. */
static void exec_agent(const struct opts *o) {
  char names[MAX_PORTS][64];
  char *argv[4 + 2 * MAX_PORTS];
  int argc = 0, n = o->ports > 1 ? o->ports : 1;
  if (n > MAX_PORTS) {
    errno = 0;
    fail(o, "vc.ports=%d: at most %d", n, MAX_PORTS);
  }
  double deadline = uptime() + PORT_WAIT_S;
  argv[argc++] = "vc-agent";
  for (int i = 0; i < n; i++) {
    if (n == 1)
      snprintf(names[i], sizeof names[i], "%s", o->port);
    else
      snprintf(names[i], sizeof names[i], "agent.%d", i);
    wait_port(o, names[i], deadline);
    argv[argc++] = "--port";
    argv[argc++] = names[i];
  }
  trace(o, "port");
  argv[argc++] = "--state-dir";
  argv[argc++] = "/run/vc-agent";
  argv[argc] = NULL;
  execv("/sbin/vc-agent", argv);
  fail(o, "exec /sbin/vc-agent");
}

int main(void) {
  struct opts o = {.debug = false, .port = "agent.0", .ports = 1};
  setenv("PATH", "/sbin:/bin:/usr/sbin:/usr/bin", 1);
  umask(022);
  bind_root(&o);
  must_mount(&o, "proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
             NULL);
  parse_cmdline(&o);
  trace(&o, "init");
  mount_basics(&o);
  trace(&o, "mounts");
  load_modules(&o);
  trace(&o, "modules");
  make_share_dir(&o);
  loopback_up();
  if (o.debug) {
    say("vc.debug=1: a shell instead of vc-agent; leave with poweroff -f");
    debug_shell();
    power_off();
  }
  exec_agent(&o);
}
