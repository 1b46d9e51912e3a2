/* proto.c - frames of the agent protocol: blocking I/O for clients, an
 * incremental decoder for the agent's non-blocking connections. */
#include "proto.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sys/cleanup.h"
#include "sys/clock.h"
#include "sys/wait.h"

int vc_frame_write(int fd, const void *data, size_t len, vc_err_t *err) {
  if (len == 0 || len > VC_PROTO_MAX)
    return vc_fail(err, EMSGSIZE, "agent: message of %zu bytes (at most %u)",
                   len, VC_PROTO_MAX);
  unsigned char head[4] = {(unsigned char)(len >> 24),
                           (unsigned char)(len >> 16),
                           (unsigned char)(len >> 8), (unsigned char)len};
  const unsigned char *parts[2] = {head, data};
  size_t sizes[2] = {4, len};
  for (int i = 0; i < 2; i++) {
    size_t off = 0;
    while (off < sizes[i]) {
      /* MSG_NOSIGNAL: a peer that went away is an error, not a SIGPIPE;
       * a virtio port is no socket, so it falls back to write. */
      ssize_t n = send(fd, parts[i] + off, sizes[i] - off, MSG_NOSIGNAL);
      if (n < 0 && errno == ENOTSOCK)
        n = write(fd, parts[i] + off, sizes[i] - off);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return vc_error(err, errno, "agent: send");
      off += (size_t)n;
    }
  }
  return 0;
}

/* Read exactly n bytes before the deadline (< 0: none). */
static int read_full(int fd, void *buf, size_t n, long long deadline,
                     vc_err_t *err) {
  size_t off = 0;
  while (off < n) {
    int wait_ms = -1;
    if (deadline >= 0) {
      long long left = deadline - vc_now_ms();
      if (left <= 0)
        return vc_fail(err, ETIMEDOUT, "agent: no answer in time");
      wait_ms = (int)(left > 1000000 ? 1000000 : left);
    }
    /* Always through a wait, even without a deadline: a Ctrl-C in vc repl
     * ends it (sys/wait.h). */
    int r = vc_wait_fd(fd, POLLIN, wait_ms, err);
    if (r < 0)
      return -1;
    if (r == 0)
      continue;
    ssize_t got = read(fd, (char *)buf + off, n - off);
    if (got < 0 && errno == EINTR)
      continue;
    if (got < 0)
      return vc_error(err, errno, "agent: receive");
    if (got == 0)
      return vc_fail(err, ECONNRESET, "agent: connection closed");
    off += (size_t)got;
  }
  return 0;
}

int vc_frame_read(int fd, int timeout_ms, char **data, size_t *len,
                  vc_err_t *err) {
  long long deadline = timeout_ms < 0 ? -1 : vc_now_ms() + timeout_ms;
  unsigned char head[4];
  if (read_full(fd, head, 4, deadline, err) < 0)
    return -1;
  uint32_t n = (uint32_t)head[0] << 24 | (uint32_t)head[1] << 16 |
               (uint32_t)head[2] << 8 | head[3];
  if (n == 0 || n > VC_PROTO_MAX)
    return vc_fail(err, EMSGSIZE, "agent: bad message length %u", n);
  cleanup_free char *buf = malloc((size_t)n + 1);
  if (buf == NULL)
    return vc_error(err, ENOMEM, "agent: receive");
  if (read_full(fd, buf, n, deadline, err) < 0)
    return -1;
  buf[n] = '\0';
  *data = vc_steal_ptr(buf);
  *len = n;
  return 0;
}

void vc_frame_reader_init(vc_frame_reader_t *r) {
  memset(r, 0, sizeof *r);
}

void vc_frame_reader_free(vc_frame_reader_t *r) {
  free(r->body);
  memset(r, 0, sizeof *r);
}

vc_frame_event_t vc_frame_feed(vc_frame_reader_t *r, const char *data,
                               size_t n, size_t *used, uint32_t *bad_len) {
  size_t pos = 0;
  vc_frame_event_t ev = VC_FRAME_NONE;
  if (r->want == 0 && r->body_len > 0)
    r->body_len = 0; /* the last READY body has been handled */
  while (pos < n && ev == VC_FRAME_NONE) {
    if (r->skip > 0) {
      size_t k = n - pos < r->skip ? n - pos : r->skip;
      r->skip -= k;
      pos += k;
      continue;
    }
    if (r->want == 0) {
      r->head[r->head_len++] = (unsigned char)data[pos++];
      if (r->head_len < 4)
        continue;
      r->head_len = 0;
      uint32_t len = (uint32_t)r->head[0] << 24 | (uint32_t)r->head[1] << 16 |
                     (uint32_t)r->head[2] << 8 | r->head[3];
      if (len == 0 || len > VC_PROTO_MAX) {
        *bad_len = len;
        if (len > VC_PROTO_SKIP_MAX)
          ev = VC_FRAME_FATAL;
        else {
          r->skip = len;
          ev = VC_FRAME_BAD_LENGTH;
        }
        continue;
      }
      if (r->body == NULL && (r->body = malloc(VC_PROTO_MAX + 1)) == NULL) {
        ev = VC_FRAME_FATAL;
        continue;
      }
      r->want = len;
      r->body_len = 0;
      continue;
    }
    size_t k = n - pos < r->want - r->body_len ? n - pos
                                               : r->want - r->body_len;
    memcpy(r->body + r->body_len, data + pos, k);
    r->body_len += k;
    pos += k;
    if (r->body_len == r->want) {
      r->body[r->body_len] = '\0';
      r->want = 0;
      ev = VC_FRAME_READY;
    }
  }
  *used = pos;
  return ev;
}
