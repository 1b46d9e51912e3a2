/* unixsock.c - connecting to a unix stream socket without hanging. */
#include "unixsock.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "cleanup.h"
#include "wait.h"

int vc_unix_connect(const char *path, int timeout_ms, vc_err_t *err) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof sa.sun_path)
    return vc_fail(err, ENAMETOOLONG, "connect: path too long");
  memcpy(sa.sun_path, path, strlen(path) + 1);
  /* Non-blocking, so that a full backlog is EAGAIN, not a wait. */
  cleanup_close int fd =
      socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return vc_error(err, errno, "connect: socket");
  long long deadline = vc_now_ms() + timeout_ms;
  while (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    if (errno == EINTR)
      continue;
    if (errno != EAGAIN)
      return vc_error(err, errno, "connect");
    if (vc_now_ms() >= deadline)
      return vc_fail(err, ETIMEDOUT,
                     "connect: nothing accepted the connection within %d ms",
                     timeout_ms);
    if (vc_sleep_ms(1, err) < 0) /* a Ctrl-C in vc repl */
      return -1;
  }
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0)
    return vc_error(err, errno, "connect: fcntl");
  return vc_steal_fd(fd);
}
