/* stdin.c - a streaming exec's stdin, forwarded by its client.
 *
 * While an exec with "stdin": true streams, its client sends frames of two
 * kinds on the same connection: {"id": ID, "op": "stdin", "data": BASE64}
 * and {"id": ID, "op": "close_stdin"}, ID being the exec's.  Each frame's
 * bytes go to the process's stdin pipe; what the pipe has no room for
 * waits in the process (in_buf), and meanwhile no further frame is read
 * from the client, so the agent holds at most one frame per process and a
 * slow reader slows the writer down to the host (flow control).  A broken
 * frame gets an error frame with the stream's id and ends nothing: the
 * process, the stream and other clients go on.  A process with a terminal
 * also takes {"id": ID, "op": "resize", "rows": R, "cols": C}. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agentd.h"
#include "sys/cleanup.h"

proc_t *stdin_ready(agent_t *a, conn_t *c) {
  for (ctr_t *k = a->ctrs; k != NULL; k = k->next)
    for (proc_t *p = &k->init; p != NULL;
         p = p == &k->init ? k->execs : p->next)
      if (p->stream == c)
        return p->in_stream && p->in_len == 0 ? p : NULL;
  return NULL;
}

void stdin_close(proc_t *p) {
  vc_closep(&p->in_fd);
  p->in_fd = -1;
  free(p->in_buf);
  p->in_buf = NULL;
  p->in_len = p->in_off = 0;
  p->in_close = false;
}

void stdin_flush(agent_t *a, proc_t *p) {
  (void)a;
  while (p->in_off < p->in_len) {
    ssize_t n = write(p->in_fd, p->in_buf + p->in_off, p->in_len - p->in_off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno == EAGAIN)
      return;
    if (n < 0) { /* EPIPE: the process closed its stdin; the rest is lost */
      stdin_close(p);
      return;
    }
    p->in_off += (size_t)n;
  }
  free(p->in_buf);
  p->in_buf = NULL;
  p->in_len = p->in_off = 0;
  if (p->in_close)
    stdin_close(p);
}

static void json_freep(vc_json_t **v) { vc_json_free(*v); }

static void refuse(agent_t *a, conn_t *c, long long id, const char *what) {
  vc_err_t err;
  vc_fail(&err, EINVAL, "stdin: %s", what);
  agent_log(a, "%s", err.msg);
  conn_send_error(a, c, id, &err);
}

void stdin_frame(agent_t *a, conn_t *c, proc_t *p, const char *body,
                 size_t len) {
  vc_err_t err = {0};
  __attribute__((cleanup(json_freep))) vc_json_t *msg = NULL;
  if (vc_json_parse(body, len, &msg, &err) < 0 ||
      msg->type != VC_JSON_OBJECT) {
    refuse(a, c, p->stream_id, "malformed frame");
    return;
  }
  long long id = 0;
  const char *op = vc_json_get_string(msg, "op");
  if (vc_json_get_int(msg, "id", &id) < 0 || id != p->stream_id) {
    refuse(a, c, p->stream_id, "a frame for another request while streaming");
    return;
  }
  if (op != NULL && strcmp(op, "close_stdin") == 0) {
    if (p->in_len > 0)
      p->in_close = true;
    else
      stdin_close(p);
    return;
  }
  if (op != NULL && strcmp(op, "resize") == 0) {
    long long rows, cols;
    if (!p->tty) {
      refuse(a, c, id, "resize: the process has no terminal");
      return;
    }
    if (vc_json_get_int(msg, "rows", &rows) < 0 ||
        vc_json_get_int(msg, "cols", &cols) < 0 || rows < 1 || rows > 65535 ||
        cols < 1 || cols > 65535) {
      refuse(a, c, id, "resize: \"rows\" and \"cols\" must be 1 to 65535");
      return;
    }
    if (p->out_fd >= 0 && pty_resize(p->out_fd, (unsigned)rows,
                                     (unsigned)cols) < 0)
      agent_log(a, "resize: %s", strerror(errno));
    return;
  }
  if (op == NULL || strcmp(op, "stdin") != 0) {
    refuse(a, c, id,
           "only \"stdin\", \"close_stdin\" and \"resize\" while streaming");
    return;
  }
  const vc_json_t *data = vc_json_get(msg, "data");
  char *bytes = NULL;
  size_t n = 0;
  if (data == NULL || data->type != VC_JSON_STRING ||
      vc_base64_decode(data->string, data->len, &bytes, &n, &err) < 0) {
    refuse(a, c, id, "\"data\" must be base64");
    return;
  }
  if (p->in_fd < 0 || n == 0) { /* closed: nobody reads these bytes */
    free(bytes);
    return;
  }
  p->in_buf = bytes;
  p->in_len = n;
  p->in_off = 0;
  stdin_flush(a, p);
}
