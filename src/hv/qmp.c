/* qmp.c - a minimal QMP client: one JSON object per line. */
#include "qmp.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "sys/cleanup.h"
#include "sys/clock.h"
#include "sys/unixsock.h"

#define LINE_MAX_BYTES (256 * 1024)

/* Read one line (a JSON object) into a tree.  Reads a byte at a time: QMP
 * replies are short and this keeps no buffer between calls. */
static int read_message(int fd, long long deadline, vc_json_t **msg,
                        vc_err_t *err) {
  cleanup_free char *buf = malloc(LINE_MAX_BYTES);
  if (buf == NULL)
    return vc_error(err, ENOMEM, "qmp");
  size_t n = 0;
  for (;;) {
    long long left = deadline - vc_now_ms();
    if (left <= 0)
      return vc_fail(err, ETIMEDOUT, "qmp: no answer in time");
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r = poll(&p, 1, (int)left);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      return vc_error(err, errno, "qmp: poll");
    if (r == 0)
      continue;
    char c;
    ssize_t got = read(fd, &c, 1);
    if (got < 0 && errno == EINTR)
      continue;
    if (got < 0)
      return vc_error(err, errno, "qmp: read");
    if (got == 0)
      return vc_fail(err, ECONNRESET, "qmp: connection closed");
    if (c == '\n') {
      if (n == 0 || (n == 1 && buf[0] == '\r')) {
        n = 0;
        continue;
      }
      return vc_json_parse(buf, n, msg, err) < 0
                 ? vc_error_prefix(err, "qmp: bad message")
                 : 0;
    }
    if (n == LINE_MAX_BYTES)
      return vc_fail(err, EMSGSIZE, "qmp: message too long");
    buf[n++] = c;
  }
}

static int send_all(int fd, const char *s, vc_err_t *err) {
  size_t len = strlen(s), off = 0;
  while (off < len) {
    ssize_t n = send(fd, s + off, len - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return vc_error(err, errno, "qmp: send");
    off += (size_t)n;
  }
  return 0;
}

/* Read until the reply to the last command; events are skipped. */
static int read_reply(int fd, long long deadline, vc_json_t **ret,
                      vc_err_t *err) {
  for (;;) {
    vc_json_t *msg = NULL;
    if (read_message(fd, deadline, &msg, err) < 0)
      return -1;
    if (vc_json_get(msg, "return") != NULL) {
      if (ret != NULL)
        *ret = msg;
      else
        vc_json_free(msg);
      return 0;
    }
    const vc_json_t *e = vc_json_get(msg, "error");
    if (e != NULL) {
      const char *desc = vc_json_get_string(e, "desc");
      vc_fail(err, EIO, "qmp: %s", desc != NULL ? desc : "error");
      vc_json_free(msg);
      return -1;
    }
    vc_json_free(msg); /* an event */
  }
}

int vc_qmp_execute_line(int fd, const char *line, int timeout_ms,
                        vc_json_t **ret, vc_err_t *err) {
  if (send_all(fd, line, err) < 0 || send_all(fd, "\n", err) < 0)
    return -1;
  return read_reply(fd, vc_now_ms() + timeout_ms, ret, err);
}

int vc_qmp_execute_fd(int fd, const char *line, int passfd, int timeout_ms,
                      vc_json_t **ret, vc_err_t *err) {
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  memset(&u, 0, sizeof u);
  struct iovec iov = {.iov_base = (void *)line, .iov_len = strlen(line)};
  struct msghdr m = {.msg_iov = &iov,
                     .msg_iovlen = 1,
                     .msg_control = u.buf,
                     .msg_controllen = sizeof u.buf};
  struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cm), &passfd, sizeof(int));
  /* The descriptor goes with the command's first bytes; the rest (if a
   * short send left any) and the newline follow. */
  ssize_t n;
  while ((n = sendmsg(fd, &m, MSG_NOSIGNAL)) < 0 && errno == EINTR)
    ;
  if (n < 0)
    return vc_error(err, errno, "qmp: send");
  if (send_all(fd, line + n, err) < 0 || send_all(fd, "\n", err) < 0)
    return -1;
  return read_reply(fd, vc_now_ms() + timeout_ms, ret, err);
}

int vc_qmp_execute(int fd, const char *cmd, int timeout_ms, vc_json_t **ret,
                   vc_err_t *err) {
  char line[256];
  if ((size_t)snprintf(line, sizeof line, "{\"execute\":\"%s\"}\n", cmd) >=
      sizeof line)
    return vc_fail(err, EINVAL, "qmp: command too long");
  if (send_all(fd, line, err) < 0)
    return -1;
  return read_reply(fd, vc_now_ms() + timeout_ms, ret, err);
}

int vc_qmp_connect(const char *path, int timeout_ms, int *out,
                   vc_err_t *err) {
  long long deadline = vc_now_ms() + timeout_ms;
  cleanup_close int fd = vc_unix_connect(path, timeout_ms, err);
  if (fd < 0)
    return vc_error_prefix(err, "qmp %s", path);
  vc_json_t *greeting = NULL;
  if (read_message(fd, deadline, &greeting, err) < 0)
    return -1;
  int ok = vc_json_get(greeting, "QMP") != NULL;
  vc_json_free(greeting);
  if (!ok)
    return vc_fail(err, EPROTO, "qmp %s: no greeting", path);
  if (vc_qmp_execute(fd, "qmp_capabilities", timeout_ms, NULL, err) < 0)
    return -1;
  *out = vc_steal_fd(fd);
  return 0;
}
