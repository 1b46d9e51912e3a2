/* main.c - vc-agent: the guest agent.  Command line, set-up, teardown.
 *
 *   vc-agent --listen SOCKET --state-dir DIR [--cgroup-parent NAME] [--log FILE]
 *   vc-agent --port NAME [--port NAME...] --state-dir DIR ...
 *                                  (virtio-serial ports, one client each)
 *
 * It may be PID 1 (of a PID namespace, or of a VM): it adopts orphans
 * (subreaper), reaps every child, and on SIGTERM or "shutdown" kills the
 * containers and cleans up before it exits. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/close_range.h>
#include <sys/prctl.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "agentd.h"
#include "sys/cleanup.h"

void agent_log(agent_t *a, const char *fmt, ...) {
  if (a->log == NULL)
    return;
  struct timespec ts;
  struct tm tm;
  char when[32];
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
  fprintf(a->log, "%s.%03ldZ vc-agent: ", when, ts.tv_nsec / 1000000);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(a->log, fmt, ap);
  va_end(ap);
  fputc('\n', a->log);
  fflush(a->log);
}

static void usage(FILE *f) {
  fputs("usage: vc-agent (--listen SOCKET | --port NAME...) --state-dir DIR\n"
        "                [--cgroup-parent NAME] [--log FILE] [--ready-fd N]\n",
        f);
}

static int listen_unix(agent_t *a, vc_err_t *err) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(a->listen_path) >= sizeof sa.sun_path)
    return vc_fail(err, ENAMETOOLONG, "socket %s: path too long",
                   a->listen_path);
  strcpy(sa.sun_path, a->listen_path);
  struct stat st;
  if (lstat(a->listen_path, &st) == 0) {
    if (!S_ISSOCK(st.st_mode))
      return vc_fail(err, EEXIST, "socket %s: exists and is not a socket",
                     a->listen_path);
    unlink(a->listen_path);   /* left by an agent that died */
  }
  a->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (a->listen_fd < 0)
    return vc_error(err, errno, "socket");
  /* Created 0600 from the start: no window where others may connect. */
  mode_t old = umask(0177);
  int r = bind(a->listen_fd, (struct sockaddr *)&sa, sizeof sa);
  umask(old);
  if (r < 0 || listen(a->listen_fd, 64) < 0)
    return vc_error(err, errno, "socket %s", a->listen_path);
  return 0;
}

/* The virtio-serial port named name: /sys/class/virtio-ports/X/name. */
static int open_port(agent_t *a, const char *port_name, vc_err_t *err) {
  cleanup_dir DIR *d = opendir("/sys/class/virtio-ports");
  if (d == NULL)
    return vc_error(err, errno, "/sys/class/virtio-ports");
  for (struct dirent *e; (e = readdir(d)) != NULL;) {
    if (e->d_name[0] == '.')
      continue;
    char path[PATH_MAX], name[256] = "";
    snprintf(path, sizeof path, "/sys/class/virtio-ports/%s/name", e->d_name);
    cleanup_file FILE *f = fopen(path, "re");
    if (f == NULL || fgets(name, sizeof name, f) == NULL)
      continue;
    name[strcspn(name, "\n")] = '\0';
    if (strcmp(name, port_name) != 0)
      continue;
    snprintf(path, sizeof path, "/dev/%s", e->d_name);
    int fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
      return vc_error(err, errno, "port %s: %s", port_name, path);
    /* SIGIO (on the signalfd) says when the host connects: a port whose
     * host went away is then retried at once, not at the next timer. */
    int fl = fcntl(fd, F_GETFL);
    if (fcntl(fd, F_SETOWN, getpid()) < 0 || fl < 0 ||
        fcntl(fd, F_SETFL, fl | O_ASYNC) < 0)
      agent_log(a, "port %s: no SIGIO: %s", port_name, strerror(errno));
    conn_t *c = conn_add(a, fd);
    if (c == NULL)
      return vc_error(err, ENOMEM, "port");
    c->port = true;
    return 0;
  }
  return vc_fail(err, ENOENT, "port %s: no such virtio-serial port",
                 port_name);
}

static int setup(agent_t *a, vc_err_t *err) {
  /* Orphans of containers come to us, and we reap them. */
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
    return vc_error(err, errno, "PR_SET_CHILD_SUBREAPER");
  signal(SIGPIPE, SIG_IGN);
  /* An inherited SIG_IGN would discard these before the signalfd sees
   * them (and for SIGCHLD, reap children behind our back). */
  sigset_t set;
  sigemptyset(&set);
  const int handled[] = {SIGCHLD, SIGTERM, SIGINT, SIGIO};
  for (size_t i = 0; i < sizeof handled / sizeof handled[0]; i++) {
    signal(handled[i], SIG_DFL);
    sigaddset(&set, handled[i]);
  }
  if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
    return vc_error(err, errno, "sigprocmask");
  a->signal_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (a->signal_fd < 0)
    return vc_error(err, errno, "signalfd");
  if (mkdir_p(a->state_dir, 0750, err) < 0)
    return vc_error_prefix(err, "state dir");
  a->null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (a->null_fd < 0)
    return vc_error(err, errno, "/dev/null");
  a->self_pidns = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
  if (a->self_pidns < 0)
    return vc_error(err, errno, "/proc/self/ns/pid");
  cgroup_init(a);
  if (a->listen_path != NULL)
    return listen_unix(a, err);
  for (size_t i = 0; i < a->n_ports; i++)
    if (open_port(a, a->port_names[i], err) < 0)
      return -1;
  return 0;
}

static void teardown(agent_t *a) {
  pod_destroy(a);
  while (a->conns != NULL)
    conn_free(a, a->conns);
  if (a->listen_fd >= 0 && a->listen_path != NULL)
    unlink(a->listen_path);
  vc_closep(&a->listen_fd);
  vc_closep(&a->signal_fd);
  vc_closep(&a->null_fd);
  vc_closep(&a->self_pidns);
  for (int i = 0; i < CG_N; i++)
    free(a->cg_root[i]);
}

int main(int argc, char **argv) {
  static const struct option options[] = {
      {"listen", required_argument, NULL, 'l'},
      {"port", required_argument, NULL, 'p'},
      {"state-dir", required_argument, NULL, 's'},
      {"cgroup-parent", required_argument, NULL, 'c'},
      {"log", required_argument, NULL, 'L'},
      {"ready-fd", required_argument, NULL, 'r'},
      {"help", no_argument, NULL, 'h'},
      {"version", no_argument, NULL, 'V'},
      {NULL, 0, NULL, 0},
  };
  agent_t a = {.listen_fd = -1, .signal_fd = -1, .null_fd = -1,
               .self_pidns = -1, .cgroup_parent = "vc-agent", .log = stderr};
  const char *log_path = NULL;
  int ready_fd = -1; /* written to once serving: the launcher waits on it */
  for (int opt; (opt = getopt_long(argc, argv, "", options, NULL)) != -1;) {
    switch (opt) {
    case 'l': a.listen_path = optarg; break;
    case 'p':
      if (a.n_ports == AGENT_MAX_PORTS) {
        fprintf(stderr, "vc-agent: at most %d ports\n", AGENT_MAX_PORTS);
        return 2;
      }
      a.port_names[a.n_ports++] = optarg;
      break;
    case 's': a.state_dir = optarg; break;
    case 'c': a.cgroup_parent = optarg; break;
    case 'L': log_path = optarg; break;
    case 'r': ready_fd = atoi(optarg); break;
    case 'h': usage(stdout); return 0;
    case 'V': puts("vc-agent " VC_VERSION); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (optind != argc || (a.listen_path == NULL) == (a.n_ports == 0) ||
      a.state_dir == NULL || !valid_id(a.cgroup_parent)) {
    usage(stderr);
    return 2;
  }
  /* Descriptors 0-2 must be taken (as PID 1 they may be closed), or a
   * pipe could land there and be clobbered by a child's dup2.  What the
   * launcher left open beyond them must not leak into containers. */
  for (int fd = 0; fd >= 0 && fd < 3;)
    fd = open("/dev/null", O_RDWR);
  close_range(3, ~0u, CLOSE_RANGE_CLOEXEC);

  cleanup_file FILE *log = NULL;
  if (log_path != NULL) {
    log = fopen(log_path, "ae");
    if (log == NULL) {
      fprintf(stderr, "vc-agent: log %s: %s\n", log_path, strerror(errno));
      return 1;
    }
    a.log = log;
  }

  vc_err_t err = {0};
  int ret = setup(&a, &err);
  if (ready_fd > 2) {
    if (ret == 0 && write(ready_fd, "1", 1) < 0)
      agent_log(&a, "ready-fd %d: %s", ready_fd, strerror(errno));
    close(ready_fd);
  }
  if (ret == 0) {
    agent_log(&a, "serving on %s%s%s (pid %d)", a.listen_path ? "" : "port ",
              a.listen_path ? a.listen_path : a.port_names[0],
              a.n_ports > 1 ? " and others" : "", (int)getpid());
    ret = loop_run(&a, &err);
  }
  if (ret < 0)
    agent_log(&a, "%s", err.msg);
  teardown(&a);
  agent_log(&a, "exiting");
  /* The guest's init has nothing left to do: power the VM off. */
  if (getpid() == 1 && a.n_ports > 0) {
    sync();
    reboot(RB_POWER_OFF);
  }
  return ret < 0 ? 1 : 0;
}
