/* term.c - raw mode, window size and session signals (term.h). */
#include <errno.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "term.h"

static void session_signals(sigset_t *set) {
  sigemptyset(set);
  sigaddset(set, SIGWINCH);
  sigaddset(set, SIGINT);
  sigaddset(set, SIGTERM);
  sigaddset(set, SIGHUP);
  sigaddset(set, SIGQUIT);
}

int vc_term_begin(vc_term_t *t, int fd, vc_err_t *err) {
  *t = (vc_term_t){.fd = fd, .sig_fd = -1};
  sigset_t set;
  session_signals(&set);
  if (sigprocmask(SIG_BLOCK, &set, &t->old_mask) < 0)
    return vc_error(err, errno, "terminal: signals");
  t->sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (t->sig_fd < 0) {
    int e = errno;
    sigprocmask(SIG_SETMASK, &t->old_mask, NULL);
    return vc_error(err, e, "terminal: signalfd");
  }
  if (fd < 0)
    return 0;
  if (tcgetattr(fd, &t->saved) < 0) {
    int e = errno;
    vc_term_end(t);
    return vc_error(err, e, "terminal: not a terminal");
  }
  struct termios raw = t->saved;
  cfmakeraw(&raw);
  if (tcsetattr(fd, TCSANOW, &raw) < 0) {
    int e = errno;
    vc_term_end(t);
    return vc_error(err, e, "terminal: raw mode");
  }
  t->raw = true;
  return 0;
}

void vc_term_end(vc_term_t *t) {
  if (t->raw) {
    /* (TCSADRAIN: what the session printed is shown first.) */
    while (tcsetattr(t->fd, TCSADRAIN, &t->saved) < 0 && errno == EINTR)
      ;
    t->raw = false;
  }
  if (t->sig_fd >= 0) {
    close(t->sig_fd);
    t->sig_fd = -1;
    sigprocmask(SIG_SETMASK, &t->old_mask, NULL);
  }
}

void vc_term_size(int fd, unsigned *rows, unsigned *cols) {
  struct winsize ws;
  *rows = 24;
  *cols = 80;
  if (fd >= 0 && ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 &&
      ws.ws_col > 0) {
    *rows = ws.ws_row;
    *cols = ws.ws_col;
  }
}
