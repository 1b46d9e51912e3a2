/* term.h - the host's terminal during an interactive session: raw mode,
 * its size, and the signals that must not leave it raw.
 *
 * vc_term_begin puts fd (a terminal, or -1 for none) in raw mode, so that
 * every key (Ctrl-C included) goes to the container's terminal, and blocks
 * SIGWINCH, SIGINT, SIGTERM, SIGHUP and SIGQUIT into a signalfd that the
 * session's loop reads: SIGWINCH resizes, the others end the session.
 * vc_term_end puts everything back (terminal mode, signal mask), on every
 * path; the caller then raises the signal that ended the session, if one
 * did, so that vc dies of it as it would have. */
#ifndef VC_TERM_H
#define VC_TERM_H

#include <signal.h>
#include <stdbool.h>
#include <termios.h>

#include "error.h"

typedef struct vc_term {
  int fd;               /* the terminal in raw mode, or -1 */
  bool raw;             /* saved holds its mode */
  struct termios saved;
  sigset_t old_mask;
  int sig_fd;           /* the signalfd, or -1 */
} vc_term_t;

int vc_term_begin(vc_term_t *t, int fd, vc_err_t *err);
void vc_term_end(vc_term_t *t);
/* fd's window size; 24 x 80 when fd is not a terminal. */
void vc_term_size(int fd, unsigned *rows, unsigned *cols);

#endif
