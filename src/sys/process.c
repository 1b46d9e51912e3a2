/* process.c - recognising host processes across vc invocations. */
#include "process.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "fileio.h"

/* Fields of /proc/PID/stat after the command, which may hold spaces and
 * parentheses: the state (field 3) and the start time (field 22). */
static int read_stat(pid_t pid, char *state, unsigned long long *start,
                     vc_err_t *err) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  cleanup_free char *data = NULL;
  size_t len;
  if (vc_read_file(path, 4096, &data, &len, err) < 0)
    return -1;
  char *p = strrchr(data, ')');
  if (p == NULL || sscanf(p + 1, " %c", state) != 1)
    return vc_fail(err, EINVAL, "%s: unexpected format", path);
  /* After ") S" come fields 4..: skip to field 22. */
  p += 2;
  for (int field = 3; field < 22 && p != NULL; field++) {
    p = strchr(p, ' ');
    if (p != NULL)
      p++;
  }
  if (p == NULL || sscanf(p, "%llu", start) != 1)
    return vc_fail(err, EINVAL, "%s: unexpected format", path);
  return 0;
}

int vc_proc_start_time(pid_t pid, unsigned long long *start, vc_err_t *err) {
  char state;
  return read_stat(pid, &state, start, err);
}

bool vc_proc_alive(pid_t pid, unsigned long long start) {
  vc_err_t err;
  char state;
  unsigned long long t;
  if (pid <= 0 || read_stat(pid, &state, &t, &err) < 0)
    return false;
  return t == start && state != 'Z' && state != 'X';
}

/* vc_proc_end without a pidfd (a kernel before 5.3, or valgrind, which
 * does not know pidfd_open): the signal goes by pid, right after the start
 * time matched, and /proc is polled every 10 ms until the process goes.
 * (Found by the specs under valgrind: the signal was never sent.) */
static bool end_by_pid(pid_t pid, unsigned long long start, int sig,
                       double timeout_s) {
  if (!vc_proc_alive(pid, start))
    return true;
  if (sig != 0)
    kill(pid, sig);
  const struct timespec step = {0, 10 * 1000 * 1000};
  for (double waited = 0; vc_proc_alive(pid, start); waited += 0.01) {
    if (waited >= timeout_s)
      return false;
    nanosleep(&step, NULL);
  }
  return true;
}

bool vc_proc_end(pid_t pid, unsigned long long start, int sig,
                 double timeout_s) {
  /* A pidfd names the process itself: once it is open and the start time
   * still matches, a signal cannot reach a process that reused the pid, and
   * poll says when it exits (a zombie counts as gone). */
  int fd = pid > 0 ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
  if (fd < 0)
    return end_by_pid(pid, start, sig, timeout_s);
  bool gone = !vc_proc_alive(pid, start);
  if (!gone) {
    if (sig != 0)
      syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r;
    while ((r = poll(&p, 1, (int)(timeout_s * 1000))) < 0 && errno == EINTR)
      ;
    gone = r > 0;
  }
  close(fd);
  return gone;
}

int vc_sibling_program(const char *name, char *out, size_t size,
                       vc_err_t *err) {
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n < 0)
    return vc_error(err, errno, "/proc/self/exe");
  exe[n] = '\0';
  /* A program replaced on disk while it runs (a rebuild, an upgrade) reads
   * as "PATH (deleted)": its sibling is still looked for at PATH. */
  static const char deleted[] = " (deleted)";
  size_t dl = sizeof deleted - 1;
  if ((size_t)n > dl && strcmp(exe + n - dl, deleted) == 0)
    exe[n - dl] = '\0';
  char *slash = strrchr(exe, '/');
  if (slash == NULL)
    return vc_fail(err, EINVAL, "/proc/self/exe: %s", exe);
  *slash = '\0';
  const char *self = slash + 1;
  /* vc-asan's is vc-agent-asan; vc-runtime is vc (vc-runtime-asan,
   * vc-asan) under another name */
  const char *suffix = strncmp(self, "vc-runtime", 10) == 0 ? self + 10
                       : strncmp(self, "vc", 2) == 0        ? self + 2
                                                            : "";
  if ((size_t)snprintf(out, size, "%s/%s%s", exe, name, suffix) >= size)
    return vc_fail(err, ENAMETOOLONG, "%s/%s", exe, name);
  return 0;
}
