/* qemu.c - a pod is a QEMU microvm booting vc's guest kernel and initrd,
 * whose /init runs vc-agent on a virtio-serial port.
 *
 * QEMU outlives the vc process that starts it (launch), confined: its own
 * seccomp sandbox (-sandbox), only the capabilities its 9p server needs,
 * files and sockets readable by root only.  Files in RUN_DIR: ctrl.sock
 * (QMP, ours), monitor.sock (QMP, for monitoring tools), agent.K.sock
 * (the agent's virtio-serial ports, one client each, K < AGENT_PORTS) and
 * their agent.K.lock (src/agent/unix.c), console.log (the guest's serial
 * console),
 * qemu.log (QEMU's own errors), and .shared/,
 * shared with the guest over 9p (tag "vcshared", mounted by the agent at
 * /run/vc/shared), where each container's rootfs is bind-mounted.
 *
 * A VM can also start from a saved state (spec.incoming, a template that
 * save wrote from a VM booted to the point where its agent waits): QEMU
 * loads it instead of booting, in a fraction of the time, with the same
 * devices but this pod's sockets and shares (lua/vc/template.lua). */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdint.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hypervisor.h"
#include "qmp.h"
#include "ram.h"
#include "proto/json.h"
#include "sys/cleanup.h"
#include "sys/clock.h"
#include "sys/fileio.h"
#include "sys/process.h"
#include "sys/wait.h"

#define QEMU "qemu-system-x86_64"
#define GUEST_SHARED "/run/vc/shared"
#define QMP_MS 2000
/* The descriptor a VM started from a template reads its saved state on. */
#define INCOMING_FD 3
/* ... and its template's RAM (a sealed memfd, src/hv/ram.c). */
#define RAM_FD 4
#define RAM_ID "vc-ram"
#define IGNORE_SHARED                                                          \
  "{\"execute\":\"migrate-set-capabilities\",\"arguments\":{\"capabilities\":" \
  "[{\"capability\":\"x-ignore-shared\",\"state\":true}]}}"
/* The agent's ports: so many vc processes (an interactive exec, an
 * attach, a ps...) talk to one VM's agent at once.  Each costs the guest
 * 4 MiB: virtio-mmio offers queues of 1024 entries, and the guest's
 * virtio_console fills a port's receive queue with a page per entry (as
 * it does the control queue's): 36 MiB of guest RAM in all, zero pages
 * on the host until data lands in them. */
#define AGENT_PORTS 8
/* TCG's translation cache, in MiB, unless the pod sets vm.tcg_cache_mib.
 * QEMU's default (1 GiB) lets a long-lived guest grow QEMU's RSS by
 * whatever code it ever ran.  A boot fills ~45 MiB: a smaller cache
 * flushes during boot (32 MiB: 12 MiB less idle RSS, ~90 ms more of
 * QEMU's CPU time per boot here), so a VM that boots (a template being
 * made, a pod without one) gets TCG_BOOT_MIB.  A VM restored from a
 * template and its first container fill ~19 MiB; TCG_RESTORE_MIB holds
 * an idle pod ~3 MiB lower, for ~110 ms more start (one flush) and ~1.6x
 * the time for shell work that runs much varied code; 8 MiB made every
 * exec take hundreds of milliseconds (docs/PERFORMANCE.md). */
#define TCG_BOOT_MIB 64
#define TCG_RESTORE_MIB 16
/* Kernel options under TCG, where every guest instruction is emulated:
 * the initcalls left out are a self-test and tracing files nothing in a
 * pod uses (~70 ms of QEMU's CPU time per boot here, docs/PERFORMANCE.md);
 * nowatchdog drops the lockup detectors, which a vCPU starved on a busy
 * host (many pods booting at once) would trip for no guest fault;
 * tsc=reliable keeps the clocksource watchdog from declaring the TSC
 * unstable for the same reason (TCG's TSC follows the host's clock), which
 * left a guest, and every pod of its template, on jiffies (4 ms ticks). */
#define TCG_KERNEL_PARAMS                                                      \
  " nowatchdog tsc=reliable initcall_blacklist=crypto_kdf108_init,"           \
  "init_kprobe_trace,init_trace_printk_function_export"

static int path_in(vc_hv_t *hv, const char *name, char *out, size_t size,
                   vc_err_t *err) {
  if ((size_t)snprintf(out, size, "%s/%s", hv->spec.run_dir, name) >= size)
    return vc_fail(err, ENAMETOOLONG, "qemu: %s/%s: path too long",
                   hv->spec.run_dir, name);
  return 0;
}

/* KVM where /dev/kvm opens and the CPU has virtualisation extensions: a
 * /dev/kvm without vmx or svm (seen on some sandboxed hosts) accepts a VM
 * that then never runs. */
static bool kvm_usable(void) {
  int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (fd < 0)
    return false;
  close(fd);
  cleanup_file FILE *f = fopen("/proc/cpuinfo", "re");
  char line[4096];
  while (f != NULL && fgets(line, sizeof line, f) != NULL)
    if (strncmp(line, "flags", 5) == 0)
      return strstr(line, " vmx") != NULL || strstr(line, " svm") != NULL;
  return false;
}

/* The host's TSC rate in kHz, from /proc/cpuinfo; 0 when unknown.  Passing
 * it to the guest avoids a hang calibrating against the PIT on microvm. */
static unsigned long tsc_khz(void) {
  cleanup_file FILE *f = fopen("/proc/cpuinfo", "re");
  char line[256];
  double mhz = 0;
  while (f != NULL && fgets(line, sizeof line, f) != NULL)
    if (sscanf(line, "cpu MHz : %lf", &mhz) == 1 ||
        sscanf(line, "cpu MHz\t: %lf", &mhz) == 1)
      break;
  return (unsigned long)(mhz * 1000);
}

static int check_file(const char *what, const char *path, vc_err_t *err) {
  if (path == NULL)
    return vc_fail(err, EINVAL, "qemu: no %s given (run make guest)", what);
  if (access(path, R_OK) < 0)
    return vc_error(err, errno, "qemu: %s %s", what, path);
  return 0;
}

static int qemu_create(vc_hv_t *hv, vc_err_t *err) {
  char shared[PATH_MAX];
  if (check_file("kernel", hv->spec.kernel, err) < 0 ||
      check_file("initrd", hv->spec.initrd, err) < 0 ||
      path_in(hv, ".shared", shared, sizeof shared, err) < 0)
    return -1;
  for (size_t i = 0; i < hv->spec.n_volumes; i++)
    if (access(hv->spec.volumes[i].host_path, F_OK) < 0)
      return vc_error(err, errno, "qemu: volume %s: %s",
                      hv->spec.volumes[i].tag, hv->spec.volumes[i].host_path);
  if (mkdir(shared, 0750) < 0 && errno != EEXIST)
    return vc_error(err, errno, "qemu: %s", shared);
  return 0;
}

/* argv for QEMU, its strings in buf (one allocation, freed by the caller). */
struct cmdline {
  char *argv[96];
  int argc;
  char buf[16384];
  size_t used;
};

static int add(struct cmdline *c, vc_err_t *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int add(struct cmdline *c, vc_err_t *err, const char *fmt, ...) {
  if (c->argc >= (int)(sizeof c->argv / sizeof c->argv[0]) - 1)
    return vc_fail(err, E2BIG, "qemu: too many arguments");
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(c->buf + c->used, sizeof c->buf - c->used, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= sizeof c->buf - c->used)
    return vc_fail(err, E2BIG, "qemu: command line too long");
  c->argv[c->argc++] = c->buf + c->used;
  c->argv[c->argc] = NULL;
  c->used += (size_t)n + 1;
  return 0;
}

/* A 9p share: commas in the path are doubled, as QEMU's option syntax wants. */
/* path with QEMU's option commas doubled. */
static void escape_commas(const char *path, char *out, size_t size) {
  size_t j = 0;
  for (const char *p = path; *p != '\0' && j < size - 2; p++) {
    if (*p == ',')
      out[j++] = ',';
    out[j++] = *p;
  }
  out[j] = '\0';
}

static int add_share(struct cmdline *c, int n, const char *path,
                     const char *tag, bool ro, vc_err_t *err) {
  char escaped[PATH_MAX * 2];
  escape_commas(path, escaped, sizeof escaped);
  if (add(c, err, "-fsdev") < 0 ||
      add(c, err, "local,id=fs%d,path=%s,security_model=none,multidevs=remap%s", n, escaped,
          ro ? ",readonly=on" : "") < 0 ||
      add(c, err, "-device") < 0 ||
      add(c, err, "virtio-9p-device,fsdev=fs%d,mount_tag=%s", n, tag) < 0)
    return -1;
  return 0;
}

static int build_cmdline(vc_hv_t *hv, struct cmdline *c, bool kvm,
                         vc_err_t *err) {
  const char *run = hv->spec.run_dir;
  /* (a template, made for every pod of its shape, boots with the default) */
  unsigned tb_mib = hv->spec.foreground        ? TCG_BOOT_MIB
                    : hv->spec.tcg_cache_mib != 0 ? hv->spec.tcg_cache_mib
                    : hv->spec.incoming != NULL   ? TCG_RESTORE_MIB
                                                  : TCG_BOOT_MIB;
  unsigned long khz = tsc_khz();
  char tsc[64] = "";
  if (khz > 0)
    snprintf(tsc, sizeof tsc, " tsc_early_khz=%lu", khz);
  if (add(c, err, QEMU) < 0 || add(c, err, "-name") < 0 ||
      add(c, err, "vc-%s", hv->spec.pod_id) < 0 ||
      add(c, err, "-accel") < 0 ||
      (kvm ? add(c, err, "kvm") : add(c, err, "tcg,tb-size=%u", tb_mib)) < 0 ||
      add(c, err, "-m") < 0 || add(c, err, "%u", hv->spec.memory_mib) < 0 ||
      add(c, err, "-smp") < 0 || add(c, err, "%u", hv->spec.cpus) < 0 ||
      add(c, err, "-nodefaults") < 0 || add(c, err, "-no-user-config") < 0 ||
      add(c, err, "-display") < 0 || add(c, err, "none") < 0 ||
      add(c, err, "-no-reboot") < 0 || add(c, err, "-machine") < 0 ||
      add(c, err, "microvm%s", hv->spec.ram_file != NULL
                                   ? ",memory-backend=" RAM_ID : "") < 0 ||
      add(c, err, "-kernel") < 0 ||
      add(c, err, "%s", hv->spec.kernel) < 0 || add(c, err, "-initrd") < 0 ||
      add(c, err, "%s", hv->spec.initrd) < 0 || add(c, err, "-append") < 0 ||
      add(c, err, "console=ttyS0 quiet panic=-1 cryptomgr.notests vc.ports=%d"
          "%s%s%s%s", AGENT_PORTS, tsc, kvm ? "" : TCG_KERNEL_PARAMS,
          hv->spec.kernel_params != NULL ? " " : "",
          hv->spec.kernel_params != NULL ? hv->spec.kernel_params : "") < 0 ||
      add(c, err, "-serial") < 0 || add(c, err, "file:%s/console.log", run) < 0 ||
      add(c, err, "-qmp") < 0 ||
      add(c, err, "unix:%s/ctrl.sock,server=on,wait=off", run) < 0 ||
      add(c, err, "-qmp") < 0 ||
      add(c, err, "unix:%s/monitor.sock,server=on,wait=off", run) < 0 ||
      /* AGENT_PORTS ports, one agent client each (port 0 is the
       * console's): fewer virtqueues for the guest to set up than the
       * default 31 */
      add(c, err, "-device") < 0 ||
      add(c, err, "virtio-serial-device,max_ports=%d", AGENT_PORTS + 1) < 0)
    return -1;
  for (int k = 0; k < AGENT_PORTS; k++)
    if (add(c, err, "-chardev") < 0 ||
        add(c, err, "socket,path=%s/agent.%d.sock,server=on,wait=off,id=agent%d",
            run, k, k) < 0 ||
        add(c, err, "-device") < 0 ||
        add(c, err, "virtserialport,chardev=agent%d,name=agent.%d", k, k) < 0)
    return -1;
  char shared[PATH_MAX];
  if (path_in(hv, ".shared", shared, sizeof shared, err) < 0 ||
      add_share(c, 0, shared, "vcshared", false, err) < 0)
    return -1;
  /* Volume N's 9p tag is "vcvolN", not the volume's own: the guest reads
   * the tags when it boots, and a VM started from a template has the
   * template's (the agent is told which tag is which volume). */
  for (size_t i = 0; i < hv->spec.n_volumes; i++) {
    const struct vc_volume *v = &hv->spec.volumes[i];
    char tag[32];
    snprintf(tag, sizeof tag, "vcvol%zu", i);
    if (add_share(c, (int)i + 1, v->host_path, tag, v->read_only, err) < 0)
      return -1;
  }
  /* A NIC per tap device in the pod's network namespace, which QEMU runs
   * in (exec_qemu); the tap is its host's side, mirrored to the CNI's
   * interface (lua/vc/network.lua).  A template's NIC has no tap. */
  for (size_t i = 0; hv->spec.taps != NULL && hv->spec.taps[i] != NULL; i++) {
    const char *tap = hv->spec.taps[i];
    if (tap[0] == '\0') {
      if (add(c, err, "-device") < 0 ||
          add(c, err, "virtio-net-device,id=nic%zu", i) < 0)
        return -1;
      continue;
    }
    if (add(c, err, "-netdev") < 0 ||
        add(c, err, "tap,id=net%zu,ifname=%s,script=no,downscript=no,vhost=off",
            i, tap) < 0 ||
        add(c, err, "-device") < 0 ||
        add(c, err, "virtio-net-device,id=nic%zu,netdev=net%zu", i, i) < 0)
      return -1;
  }
  /* Guest RAM in a file: a template's, written through (share=on) while
   * it is made; a VM from a template maps it private (share=off) from the
   * memfd on RAM_FD (qemu_start), copy-on-write. */
  if (hv->spec.ram_file != NULL) {
    char escaped[PATH_MAX * 2];
    escape_commas(hv->spec.ram_file, escaped, sizeof escaped);
    bool from = hv->spec.incoming != NULL;
    if (add(c, err, "-object") < 0 ||
        (from ? add(c, err, "memory-backend-file,id=" RAM_ID ",size=%uM,"
                    "mem-path=/proc/self/fd/%d,share=off", hv->spec.memory_mib, RAM_FD)
              : add(c, err, "memory-backend-file,id=" RAM_ID ",size=%uM,"
                    "mem-path=%s,share=on", hv->spec.memory_mib, escaped)) < 0)
      return -1;
  }
  /* The saved state comes on an inherited descriptor (launch): QEMU's
   * sandbox forbids the "exec:" a path would need.  With the RAM in a
   * file, the migration must skip it (x-ignore-shared, set over QMP:
   * "defer" waits for that). */
  if (hv->spec.incoming != NULL &&
      (add(c, err, "-incoming") < 0 ||
       (hv->spec.ram_file != NULL ? add(c, err, "defer")
                                  : add(c, err, "fd:%d", INCOMING_FD)) < 0))
    return -1;
  /* QEMU's own seccomp filter: no obsolete system calls, no setuid, no
   * fork or exec, no changing of priorities, affinities or limits. */
  if (add(c, err, "-sandbox") < 0 ||
      add(c, err, "on,obsolete=deny,elevateprivileges=deny,spawn=deny,"
          "resourcecontrol=deny") < 0)
    return -1;
  return 0;
}

/* The tail of a file, for error messages. */
static void tail_of(const char *path, char *out, size_t size) {
  cleanup_free char *data = NULL;
  size_t len;
  vc_err_t err;
  out[0] = '\0';
  if (vc_read_file(path, 4 << 20, &data, &len, &err) < 0)
    return;
  while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
    data[--len] = '\0';
  snprintf(out, size, "%s", data + (len > size - 1 ? len - (size - 1) : 0));
}

/* What QEMU keeps of root's capabilities: what its 9p server needs to act
 * on the files of a rootfs whatever their owner and mode (security_model
 * =none: it creates, chowns and chmods them as the guest asks, and makes
 * device nodes).  Without CAP_SYS_ADMIN, CAP_NET_ADMIN, CAP_SYS_MODULE,
 * CAP_SYS_PTRACE, ... a QEMU taken over by its guest cannot mount, load a
 * module, reconfigure the host's network or trace other processes. */
static const int QEMU_CAPS[] = {CAP_CHOWN,  CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH,
                                CAP_FOWNER, CAP_FSETID,       CAP_MKNOD};

/* In the child, before exec: root keeps QEMU_CAPS only.  Root's
 * capabilities after exec are its bounding set (and inheritable), so the
 * bounding set is cut and the inheritable and ambient sets are emptied. */
static int keep_qemu_caps(void) {
  uint64_t keep = 0;
  for (size_t i = 0; i < sizeof QEMU_CAPS / sizeof QEMU_CAPS[0]; i++)
    keep |= 1ULL << QEMU_CAPS[i];
  for (int cap = 0; cap < 64; cap++) {
    if (keep & (1ULL << cap))
      continue;
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
      return -1; /* EINVAL: past the kernel's last capability */
  }
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 &&
      errno != EINVAL)
    return -1;
  struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
  struct __user_cap_data_struct d[2];
  if (syscall(SYS_capget, &h, d) < 0)
    return -1;
  for (int i = 0; i < 2; i++) {
    uint32_t k = (uint32_t)(keep >> (32 * i));
    d[i].effective &= k;
    d[i].permitted &= k;
    d[i].inheritable = 0;
  }
  return (int)syscall(SYS_capset, &h, d);
}

/* The child that becomes QEMU: stdio on /dev/null and the log, the saved
 * state (if any) on INCOMING_FD, files and sockets private to root. */
static void exec_qemu(char **argv, int logfd, int incoming, int ram,
                      const char *netns, bool kvm) {
  /* vc repl blocks SIGINT (sys/wait.h): the VM starts with none blocked. */
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  umask(077);
  int null = open("/dev/null", O_RDWR);
  if (null < 0 || dup2(null, 0) < 0 || dup2(logfd, 1) < 0 ||
      dup2(logfd, 2) < 0)
    _exit(127);
  /* (moved out of the way first: either may be on the other's number) */
  int in = incoming >= 0 ? fcntl(incoming, F_DUPFD_CLOEXEC, 10) : -1;
  int mem = ram >= 0 ? fcntl(ram, F_DUPFD_CLOEXEC, 10) : -1;
  if ((incoming >= 0 && (in < 0 || dup2(in, INCOMING_FD) < 0)) ||
      (ram >= 0 && (mem < 0 || dup2(mem, RAM_FD) < 0)))
    _exit(127);
  /* A networked pod's QEMU runs in the pod's network namespace, where
   * its taps are (it needs no other network). */
  if (netns != NULL) {
    int ns = open(netns, O_RDONLY | O_CLOEXEC);
    if (ns < 0 || setns(ns, CLONE_NEWNET) < 0) {
      dprintf(2, "qemu: join the network namespace %s: %s\n", netns,
              strerror(errno));
      _exit(127);
    }
    close(ns);
  }
  /* Under TCG, no transparent huge pages for QEMU: they make its memory
   * resident 2 MiB at a time (~2 MiB more per idle pod here) and speed up
   * nothing the emulator does much (under KVM, the guest's RAM wants
   * them). */
  if (!kvm && prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) < 0) {
    dprintf(2, "qemu: disabling huge pages: %s\n", strerror(errno));
    _exit(127);
  }
  if (keep_qemu_caps() < 0) {
    dprintf(2, "qemu: dropping capabilities: %s\n", strerror(errno));
    _exit(127);
  }
  execvp(argv[0], argv);
  dprintf(2, "%s: %s\n", argv[0], strerror(errno));
  _exit(127);
}

/* Start QEMU.  A foreground VM (a template being made) is our child and
 * ends with this process (PDEATHSIG).  A pod's VM outlives vc: a launcher
 * child forks it and exits, telling its pid on a pipe, so QEMU is nobody's
 * child and no zombie of vc's.  The launcher dies with vc (PDEATHSIG) and
 * QEMU is exec'd at once after the fork, so a vc killed at any point leaves
 * either nothing or a QEMU whose arguments name the pod's run folder, which
 * vc gc finds (lua/vc/leftovers.lua). */
static int launch(vc_hv_t *hv, char **argv, int logfd, int incoming, int ram,
                  bool kvm, vc_err_t *err) {
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) < 0)
    return vc_error(err, errno, "qemu: pipe");
  cleanup_close int rd = pipefd[0];
  cleanup_close int wr = pipefd[1];
  pid_t parent = getpid();
  pid_t child = fork();
  if (child < 0)
    return vc_error(err, errno, "qemu: fork");
  if (child == 0) {
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
      _exit(127);
    setsid();
    if (hv->spec.foreground)
      exec_qemu(argv, logfd, incoming, ram, hv->spec.netns, kvm);
    pid_t q = fork();
    if (q == 0)
      exec_qemu(argv, logfd, incoming, ram, hv->spec.netns, kvm);
    _exit(q > 0 && write(wr, &q, sizeof q) == (ssize_t)sizeof q ? 0 : 127);
  }
  close(wr);
  wr = -1;
  pid_t pid = child;
  if (!hv->spec.foreground) {
    int status;
    ssize_t n;
    while ((n = read(rd, &pid, sizeof pid)) < 0 && errno == EINTR)
      ;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR)
      ;
    if (n != (ssize_t)sizeof pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0)
      return vc_fail(err, EIO, "qemu: cannot start: the launcher failed");
  }
  hv->info.pid = pid;
  if (vc_proc_start_time(pid, &hv->info.start_time, err) < 0)
    return vc_error_prefix(err, "qemu: started, then gone");
  return 0;
}

static bool alive(vc_hv_t *hv) {
  return vc_proc_alive(hv->info.pid, hv->info.start_time);
}

/* Wait until QEMU answers on its control socket, or has died (then its
 * log says why). */
static int wait_ready(vc_hv_t *hv, const char *log, vc_err_t *err) {
  char sock[PATH_MAX], why[512];
  if (path_in(hv, "ctrl.sock", sock, sizeof sock, err) < 0)
    return -1;
  long long deadline = vc_now_ms() + 30000;
  for (;;) {
    if (!alive(hv) || (hv->spec.foreground &&
                       waitpid(hv->info.pid, NULL, WNOHANG) == hv->info.pid)) {
      tail_of(log, why, sizeof why);
      return vc_fail(err, EIO, "qemu: cannot start: %s",
                     why[0] != '\0' ? why : "it exited");
    }
    cleanup_close int fd = -1;
    vc_err_t cerr;
    if (vc_qmp_connect(sock, QMP_MS, &fd, &cerr) == 0)
      return 0;
    if (cerr.errnum != ENOENT && cerr.errnum != ECONNREFUSED) {
      if (err != NULL)
        *err = cerr;
      return vc_error_prefix(err, "qemu: start");
    }
    if (vc_now_ms() > deadline)
      return vc_fail(err, ETIMEDOUT, "qemu: no control socket in 30 s");
    if (vc_sleep_ms(2, err) < 0)
      return -1;
  }
}

/* Start loading the saved state on INCOMING_FD, the RAM (in its file)
 * left out, as the template's QEMU saved it. */
static int load_deferred(vc_hv_t *hv, vc_err_t *err) {
  char sock[PATH_MAX], load[128];
  snprintf(load, sizeof load,
           "{\"execute\":\"migrate-incoming\",\"arguments\":{\"uri\":\"fd:%d\"}}",
           INCOMING_FD);
  cleanup_close int fd = -1;
  if (path_in(hv, "ctrl.sock", sock, sizeof sock, err) < 0 ||
      vc_qmp_connect(sock, QMP_MS, &fd, err) < 0 ||
      vc_qmp_execute_line(fd, IGNORE_SHARED, QMP_MS, NULL, err) < 0 ||
      vc_qmp_execute_line(fd, load, QMP_MS, NULL, err) < 0)
    return vc_error_prefix(err, "qemu: start from %s", hv->spec.incoming);
  return 0;
}

/* A VM started from a saved state (spec.incoming) is paused once QEMU has
 * loaded it, as it was saved: wait for that, then let it run.  A state
 * QEMU cannot load makes it exit, which fails here. */
static int resume_loaded(vc_hv_t *hv, vc_err_t *err) {
  char sock[PATH_MAX];
  if (path_in(hv, "ctrl.sock", sock, sizeof sock, err) < 0)
    return -1;
  cleanup_close int fd = -1;
  if (vc_qmp_connect(sock, QMP_MS, &fd, err) < 0)
    return vc_error_prefix(err, "qemu: start from %s", hv->spec.incoming);
  struct timespec step = {0, 5 * 1000 * 1000};
  for (int i = 0; i < 12000; i++) { /* a minute */
    vc_json_t *r = NULL;
    if (vc_qmp_execute(fd, "query-status", QMP_MS, &r, err) < 0)
      return vc_error_prefix(err, "qemu: start from %s", hv->spec.incoming);
    const char *st = vc_json_get_string(vc_json_get(r, "return"), "status");
    bool loading = st != NULL && strcmp(st, "inmigrate") == 0;
    bool running = st != NULL && strcmp(st, "running") == 0;
    bool paused = st != NULL && (strcmp(st, "paused") == 0 ||
                                 strcmp(st, "postmigrate") == 0 ||
                                 strcmp(st, "prelaunch") == 0);
    if (!loading && !running && !paused)
      vc_fail(err, EIO, "qemu: start from %s: the VM is %s",
              hv->spec.incoming, st != NULL ? st : "in no known state");
    vc_json_free(r);
    if (running)
      return 0;
    if (paused)
      return vc_qmp_execute(fd, "cont", QMP_MS, NULL, err) < 0
                 ? vc_error_prefix(err, "qemu: start from %s",
                                   hv->spec.incoming)
                 : 0;
    if (!loading)
      return -1;
    nanosleep(&step, NULL);
  }
  return vc_fail(err, ETIMEDOUT, "qemu: start from %s: still loading",
                 hv->spec.incoming);
}

static int qemu_start(vc_hv_t *hv, vc_err_t *err) {
  char base[PATH_MAX], log[PATH_MAX], pidfile[PATH_MAX];
  if (path_in(hv, "agent", base, sizeof base, err) < 0 ||
      path_in(hv, "qemu.log", log, sizeof log, err) < 0 ||
      path_in(hv, "qemu.pid", pidfile, sizeof pidfile, err) < 0)
    return -1;
  /* sun_path: agent.K.sock and monitor.sock are the longest names */
  if (strlen(base) + 7 >= 108)
    return vc_fail(err, ENAMETOOLONG, "qemu: socket path %s.%d.sock is too "
                   "long (use a shorter --root)", base, AGENT_PORTS - 1);
  bool kvm = kvm_usable();
  cleanup_free struct cmdline *c = calloc(1, sizeof *c);
  if (c == NULL)
    return vc_error(err, ENOMEM, "qemu");
  if (build_cmdline(hv, c, kvm, err) < 0)
    return -1;
  unlink(pidfile); /* written by older versions of vc */
  cleanup_close int logfd =
      open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (logfd < 0)
    return vc_error(err, errno, "qemu: %s", log);
  cleanup_close int incoming = -1;
  if (hv->spec.incoming != NULL &&
      (incoming = open(hv->spec.incoming, O_RDONLY | O_CLOEXEC)) < 0)
    return vc_error(err, errno, "qemu: template %s", hv->spec.incoming);
  /* (ram_lock is held until QEMU maps the memfd: closed here after the
   * launch and, in the launched processes, at QEMU's exec) */
  cleanup_close int ram = -1;
  cleanup_close int ram_lock = -1;
  if (hv->spec.incoming != NULL && hv->spec.ram_file != NULL &&
      (ram = vc_ram_open(hv->spec.ram_file, incoming,
                         (size_t)hv->spec.memory_mib << 20, &ram_lock, err)) < 0)
    return vc_error_prefix(err, "qemu: template %s", hv->spec.incoming);
  int launched = launch(hv, c->argv, logfd, incoming, ram, kvm, err);
  vc_closep(&ram_lock);
  if (launched < 0)
    return -1;
  if (wait_ready(hv, log, err) < 0) {
    vc_proc_end(hv->info.pid, hv->info.start_time, SIGKILL, 5);
    if (hv->spec.foreground)
      waitpid(hv->info.pid, NULL, 0);
    return -1;
  }
  if (hv->spec.incoming != NULL &&
      ((hv->spec.ram_file != NULL && load_deferred(hv, err) < 0) ||
       resume_loaded(hv, err) < 0)) {
    vc_proc_end(hv->info.pid, hv->info.start_time, SIGKILL, 5);
    return -1;
  }
  snprintf(hv->info.accel, sizeof hv->info.accel, "%s", kvm ? "kvm" : "tcg");
  snprintf(hv->info.share, sizeof hv->info.share, "9p");
  snprintf(hv->info.agent, sizeof hv->info.agent, "serial:%d:%.500s",
           AGENT_PORTS, base);
  return 0;
}

/* Run one QMP command on the control socket. */
static int qmp(vc_hv_t *hv, const char *cmd, vc_json_t **ret, vc_err_t *err) {
  char path[PATH_MAX];
  if (path_in(hv, "ctrl.sock", path, sizeof path, err) < 0)
    return -1;
  cleanup_close int fd = -1;
  if (vc_qmp_connect(path, QMP_MS, &fd, err) < 0 ||
      vc_qmp_execute(fd, cmd, QMP_MS, ret, err) < 0)
    return -1;
  return 0;
}

static int qemu_status(vc_hv_t *hv, vc_vm_state_t *state, vc_err_t *err) {
  (void)err;
  if (hv->info.pid == 0) {
    *state = VC_VM_NONE;
    return 0;
  }
  if (!alive(hv)) {
    *state = VC_VM_STOPPED;
    return 0;
  }
  vc_json_t *r = NULL;
  vc_err_t qerr;
  if (qmp(hv, "query-status", &r, &qerr) < 0) {
    *state = VC_VM_RUNNING; /* alive, but its monitor is busy */
    return 0;
  }
  const char *st = vc_json_get_string(vc_json_get(r, "return"), "status");
  *state = st == NULL || strcmp(st, "running") == 0 ? VC_VM_RUNNING
           : strcmp(st, "paused") == 0              ? VC_VM_PAUSED
           : strcmp(st, "shutdown") == 0 || strcmp(st, "guest-panicked") == 0
               ? VC_VM_STOPPED
               : VC_VM_RUNNING;
  vc_json_free(r);
  return 0;
}

static int qemu_pause(vc_hv_t *hv, vc_err_t *err) {
  if (!alive(hv))
    return vc_fail(err, ESRCH, "qemu: the VM is not running");
  return qmp(hv, "stop", NULL, err);
}

static int qemu_resume(vc_hv_t *hv, vc_err_t *err) {
  if (!alive(hv))
    return vc_fail(err, ESRCH, "qemu: the VM is not running");
  return qmp(hv, "cont", NULL, err);
}

/* The guest may be powering off already (the agent's shutdown): give it a
 * moment, then QMP quit, then SIGTERM, then SIGKILL. */
static int end_vm(vc_hv_t *hv, double timeout_s, vc_err_t *err) {
  pid_t pid = hv->info.pid;
  unsigned long long start = hv->info.start_time;
  if (!alive(hv))
    return 0;
  if (vc_proc_end(pid, start, 0, timeout_s < 1 ? timeout_s : 1))
    return 0;
  vc_err_t qerr;
  if (qmp(hv, "quit", NULL, &qerr) == 0 && vc_proc_end(pid, start, 0, 2))
    return 0;
  if (vc_proc_end(pid, start, SIGTERM, 2) ||
      vc_proc_end(pid, start, SIGKILL, 5))
    return 0;
  return vc_fail(err, EBUSY, "qemu: process %d survives SIGKILL", (int)pid);
}

/* Stop the VM, then remove the sockets and pid file nothing serves any
 * more (a later start makes them anew). */
static int qemu_stop(vc_hv_t *hv, double timeout_s, vc_err_t *err) {
  if (end_vm(hv, timeout_s, err) < 0)
    return -1;
  if (hv->spec.foreground && hv->info.pid > 0) /* our child: reap it */
    while (waitpid(hv->info.pid, NULL, 0) < 0 && errno == EINTR)
      ;
  static const char *const files[] = {"ctrl.sock", "monitor.sock",
                                      "qemu.pid", NULL};
  char p[PATH_MAX];
  vc_err_t ignored;
  for (size_t i = 0; files[i] != NULL; i++)
    if (path_in(hv, files[i], p, sizeof p, &ignored) == 0)
      unlink(p);
  for (int k = 0; k < AGENT_PORTS; k++) {
    char name[32];
    snprintf(name, sizeof name, "agent.%d.sock", k);
    if (path_in(hv, name, p, sizeof p, &ignored) == 0)
      unlink(p);
    snprintf(name, sizeof name, "agent.%d.lock", k);
    if (path_in(hv, name, p, sizeof p, &ignored) == 0)
      unlink(p);
  }
  return 0;
}

/* Pause the VM, migrate its whole state to path and wait until it is
 * written.  The file is opened here (root's only: it holds the guest's
 * memory) and handed to QEMU over QMP (getfd), as its sandbox forbids the
 * "exec:" a path would need (QEMU 7.2 has no "file:").  Paused first: a
 * guest copied while it ran under TCG was seen to panic once started from
 * the copy, now and then; a VM started from a paused state is resumed by
 * qemu_start. */
static int qemu_save(vc_hv_t *hv, const char *path, double timeout_s,
                     vc_err_t *err) {
  if (!alive(hv))
    return vc_fail(err, ESRCH, "qemu: the VM is not running");
  char sock[PATH_MAX];
  if (path_in(hv, "ctrl.sock", sock, sizeof sock, err) < 0)
    return -1;
  cleanup_close int out =
      open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (out < 0)
    return vc_error(err, errno, "qemu: save to %s", path);
  cleanup_close int fd = -1;
  if (vc_qmp_connect(sock, QMP_MS, &fd, err) < 0 ||
      vc_qmp_execute(fd, "stop", QMP_MS, NULL, err) < 0 ||
      (hv->spec.ram_file != NULL &&
       vc_qmp_execute_line(fd, IGNORE_SHARED, QMP_MS, NULL, err) < 0) ||
      vc_qmp_execute_fd(fd,
                        "{\"execute\":\"getfd\",\"arguments\":"
                        "{\"fdname\":\"vc-save\"}}",
                        out, QMP_MS, NULL, err) < 0 ||
      vc_qmp_execute_line(fd,
                          "{\"execute\":\"migrate\",\"arguments\":"
                          "{\"uri\":\"fd:vc-save\"}}",
                          QMP_MS, NULL, err) < 0)
    return vc_error_prefix(err, "qemu: save");
  struct timespec step = {0, 10 * 1000 * 1000};
  for (double waited = 0; waited < timeout_s; waited += 0.01) {
    vc_json_t *r = NULL;
    if (vc_qmp_execute(fd, "query-migrate", QMP_MS, &r, err) < 0)
      return vc_error_prefix(err, "qemu: save");
    const vc_json_t *ret = vc_json_get(r, "return");
    const char *st = vc_json_get_string(ret, "status");
    bool done = st != NULL && strcmp(st, "completed") == 0;
    bool failed = st != NULL && strcmp(st, "failed") == 0;
    if (failed)
      vc_fail(err, EIO, "qemu: save to %s failed: %s", path,
              vc_json_get_string(ret, "error-desc") != NULL
                  ? vc_json_get_string(ret, "error-desc")
                  : "no reason given");
    vc_json_free(r);
    if (done)
      return hv->spec.ram_file != NULL ? vc_ram_sparsify(hv->spec.ram_file, err) : 0;
    if (failed)
      return -1;
    nanosleep(&step, NULL);
  }
  return vc_fail(err, ETIMEDOUT, "qemu: save to %s: not done in %gs", path,
                 timeout_s);
}

static int shared_dir(vc_hv_t *hv, const char *cid, char *out, size_t size,
                      vc_err_t *err) {
  if ((size_t)snprintf(out, size, "%s/.shared/%s", hv->spec.run_dir, cid) >=
      size)
    return vc_fail(err, ENAMETOOLONG, "qemu: shared path too long");
  return 0;
}

/* Whether path is the root of a mount: 1, 0, or -1 (errno) when it cannot
 * be told (it does not exist). */
static int mount_root(const char *path) {
  struct statx stx;
  if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, 0, &stx) < 0)
    return -1;
  return (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0;
}

/* Unmount what is mounted at path, however many times (a stale mount of
 * a crashed run under this one's). */
static int unmount_all(const char *path, vc_err_t *err) {
  while (mount_root(path) == 1)
    if (umount2(path, MNT_DETACH) < 0)
      return vc_error(err, errno, "qemu: unmount %s", path);
  return 0;
}

/* qemu_unshare_rootfs: share NAME is the folder .shared/NAME holding one
 * bind mount named as the shared folder (so the guest's mountinfo shows
 * its name); a vc of the earlier layout bound it at .shared/NAME itself. */
static int qemu_unshare_rootfs(vc_hv_t *hv, const char *name, vc_err_t *err) {
  char dir[PATH_MAX];
  if (shared_dir(hv, name, dir, sizeof dir, err) < 0 || unmount_all(dir, err) < 0)
    return -1;
  cleanup_dir DIR *d = opendir(dir);
  if (d == NULL)
    return errno == ENOENT ? 0 : vc_error(err, errno, "qemu: %s", dir);
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    char sub[PATH_MAX];
    if ((size_t)snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name) >= sizeof sub)
      return vc_fail(err, ENAMETOOLONG, "qemu: shared path too long");
    if (unmount_all(sub, err) < 0)
      return -1;
    if (rmdir(sub) < 0 && errno != ENOENT)
      return vc_error(err, errno, "qemu: remove %s", sub);
  }
  if (rmdir(dir) < 0 && errno != ENOENT)
    return vc_error(err, errno, "qemu: remove %s", dir);
  return 0;
}

static int qemu_share_rootfs(vc_hv_t *hv, const char *name,
                             const char *host_path, char *guest, size_t size,
                             vc_err_t *err) {
  char dir[PATH_MAX], bind[PATH_MAX];
  struct stat st;
  /* NAME is a container's ID (its rootfs) or ID@N (its mount N) */
  const char *at = strchr(name, '@');
  int id_len = at != NULL ? (int)(at - name) : (int)strlen(name);
  const char *what = at != NULL ? "host folder" : "rootfs";
  if (stat(host_path, &st) < 0)
    return vc_error(err, errno, "container %.*s: %s %s", id_len, name, what, host_path);
  if (!S_ISDIR(st.st_mode))
    return vc_fail(err, ENOTDIR, "container %.*s: %s %s: not a folder", id_len, name,
                   what, host_path);
  /* The bind is named as the folder (its last component; "root" for /). */
  char real[PATH_MAX];
  if (realpath(host_path, real) == NULL)
    return vc_error(err, errno, "container %.*s: %s %s", id_len, name, what, host_path);
  const char *base = strrchr(real, '/') + 1;
  if (*base == '\0')
    base = "root";
  int base_len = (int)strlen(base);
  if (shared_dir(hv, name, dir, sizeof dir, err) < 0 ||
      qemu_unshare_rootfs(hv, name, err) < 0) /* what a crashed run left */
    return -1;
  if ((size_t)snprintf(bind, sizeof bind, "%s/%.*s", dir, base_len, base) >= sizeof bind ||
      (size_t)snprintf(guest, size, GUEST_SHARED "/%s/%.*s", name, base_len, base) >= size)
    return vc_fail(err, ENAMETOOLONG, "qemu: shared path too long");
  if (mkdir(dir, 0750) < 0)
    return vc_error(err, errno, "qemu: %s", dir);
  if (mkdir(bind, 0750) < 0 || mount(host_path, bind, NULL, MS_BIND | MS_REC, NULL) < 0) {
    int e = errno;
    rmdir(bind);
    rmdir(dir);
    return vc_error(err, e, "qemu: bind %s", host_path);
  }
  return 0;
}

static int qemu_destroy(vc_hv_t *hv, vc_err_t *err) {
  if (qemu_stop(hv, 0, err) < 0)
    return -1;
  char shared[PATH_MAX];
  if (path_in(hv, ".shared", shared, sizeof shared, err) < 0)
    return -1;
  cleanup_dir DIR *d = opendir(shared);
  struct dirent *e;
  while (d != NULL && (e = readdir(d)) != NULL)
    if (e->d_name[0] != '.' && qemu_unshare_rootfs(hv, e->d_name, err) < 0)
      return -1;
  rmdir(shared);
  return 0;
}

const struct vc_hv_ops vc_hv_qemu_ops = {
    .name = "qemu",
    .create = qemu_create,
    .start = qemu_start,
    .stop = qemu_stop,
    .pause = qemu_pause,
    .resume = qemu_resume,
    .status = qemu_status,
    .destroy = qemu_destroy,
    .share_rootfs = qemu_share_rootfs,
    .unshare_rootfs = qemu_unshare_rootfs,
    .save = qemu_save,
};
