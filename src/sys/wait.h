/* wait.h - waits that a Ctrl-C cuts short, with no handler and no flag.
 *
 * vc installs no SIGINT handler and keeps no "interrupted" flag.  An
 * interactive session (vc repl, see interrupt.c) blocks SIGINT while it
 * evaluates, so a Ctrl-C stays pending in the kernel.  A wait that can last
 * (an agent's reply, an agent coming up, a pod's lock held by another
 * process) watches for it with a signalfd, takes it, and fails with EINTR
 * "interrupted"; its caller reports that as any other failure, so the
 * operation stops at that step and rolls back as it would on an error.  In
 * a process that does not block SIGINT (every other vc command) these are
 * plain waits, and Ctrl-C ends the process as it always did.
 *
 * Header-only, so that the agent and the fuzz targets, which share the
 * protocol code, need no other object. */
#ifndef VC_WAIT_H
#define VC_WAIT_H

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "cleanup.h"
#include "clock.h"
#include "error.h"

/* Whether this process asks for Ctrl-C to interrupt waits: SIGINT blocked. */
static inline bool vc_interruptible(void) {
  sigset_t cur;
  return sigprocmask(SIG_BLOCK, NULL, &cur) == 0 &&
         sigismember(&cur, SIGINT) == 1;
}

/* Wait up to timeout_ms (< 0: no limit) for events on fd (-1: none, which
 * makes it a sleep).  Returns 1 when fd is ready, 0 at the timeout, -1 with
 * err on failure; in an interruptible process a Ctrl-C, pending or to
 * come, is taken and fails with EINTR "interrupted" (before fd's events:
 * a stream that never pauses still stops). */
static inline int vc_wait_fd(int fd, short events, int timeout_ms,
                             vc_err_t *err) {
  cleanup_close int sig = -1;
  if (vc_interruptible()) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sig = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sig < 0)
      return vc_error(err, errno, "signalfd");
  }
  struct pollfd p[2] = {{.fd = sig, .events = POLLIN},
                        {.fd = fd, .events = events}};
  long long deadline = timeout_ms < 0 ? -1 : vc_now_ms() + timeout_ms;
  for (;;) {
    int left = -1;
    if (deadline >= 0) {
      long long ms = deadline - vc_now_ms();
      left = ms < 0 ? 0 : (int)ms;
    }
    int r = poll(p, 2, left);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      return vc_error(err, errno, "poll");
    if (p[0].revents != 0) {
      struct signalfd_siginfo si;
      if (read(sig, &si, sizeof si) < 0 && errno != EAGAIN)
        return vc_error(err, errno, "signalfd");
      return vc_fail(err, EINTR, "interrupted");
    }
    return r > 0 ? 1 : 0;
  }
}

/* Sleep ms milliseconds; -1 with err when interrupted (see vc_wait_fd). */
static inline int vc_sleep_ms(int ms, vc_err_t *err) {
  return vc_wait_fd(-1, 0, ms, err) < 0 ? -1 : 0;
}

#endif
