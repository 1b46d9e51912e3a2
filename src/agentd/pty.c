/* pty.c - terminals for containers' processes.
 *
 * As crun does with its console socket: the process itself opens
 * /dev/ptmx inside its container (the container's own devpts instance,
 * so that `tty` there names /dev/pts/N and the slave belongs to the
 * process's user), sends the master to the agent over a unix socket
 * (SCM_RIGHTS), and makes the slave its controlling terminal and its
 * stdin, stdout and stderr.  The agent reads and writes the master. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include "agentd.h"
#include "sys/cleanup.h"

static int send_fd(int sock, int fd) {
  char byte = 'T';
  struct iovec iov = {.iov_base = &byte, .iov_len = 1};
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE(sizeof(int))];
  } u;
  memset(&u, 0, sizeof u);
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1,
                       .msg_control = u.buf, .msg_controllen = sizeof u.buf};
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof fd);
  ssize_t n;
  while ((n = sendmsg(sock, &msg, MSG_NOSIGNAL)) < 0 && errno == EINTR)
    ;
  return n == 1 ? 0 : -1;
}

int pty_child(int sock, vc_err_t *err) {
  cleanup_close int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0)
    return vc_error(err, errno, "terminal: open /dev/ptmx");
  char name[64];
  if (unlockpt(master) < 0 || ptsname_r(master, name, sizeof name) != 0)
    return vc_error(err, errno, "terminal: unlock its slave");
  cleanup_close int slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0)
    return vc_error(err, errno, "terminal: open %s", name);
  if (send_fd(sock, master) < 0)
    return vc_error(err, errno, "terminal: hand it to the agent");
  /* A session of its own, the terminal its controlling one. */
  if (setsid() < 0 || ioctl(slave, TIOCSCTTY, 0) < 0)
    return vc_error(err, errno, "terminal: make %s its controlling terminal",
                    name);
  if (dup2(slave, 0) < 0 || dup2(slave, 1) < 0 || dup2(slave, 2) < 0)
    return vc_error(err, errno, "terminal: stdio");
  return 0;
}

int pty_receive(int sock, vc_err_t *err) {
  char byte;
  struct iovec iov = {.iov_base = &byte, .iov_len = 1};
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE(sizeof(int))];
  } u;
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1,
                       .msg_control = u.buf, .msg_controllen = sizeof u.buf};
  ssize_t n;
  while ((n = recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC)) < 0 &&
         errno == EINTR)
    ;
  struct cmsghdr *c = n == 1 ? CMSG_FIRSTHDR(&msg) : NULL;
  if (c == NULL || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
      c->cmsg_len != CMSG_LEN(sizeof(int))) {
    vc_fail(err, EIO, "terminal: the process sent no terminal");
    return -1;
  }
  int fd;
  memcpy(&fd, CMSG_DATA(c), sizeof fd);
  fcntl(fd, F_SETFL, O_NONBLOCK);
  return fd;
}

int pty_resize(int master, unsigned rows, unsigned cols) {
  struct winsize ws = {.ws_row = (unsigned short)rows,
                       .ws_col = (unsigned short)cols};
  return ioctl(master, TIOCSWINSZ, &ws);
}
