/* output.c - ring buffers keeping the newest output of each stream. */
#include <stdlib.h>
#include <string.h>

#include "agentd.h"

void ring_put(ring_t *r, const char *data, size_t n) {
  if (n == 0)
    return;
  if (r->buf == NULL) {
    r->buf = malloc(AGENT_RING_SIZE);
    if (r->buf == NULL) {
      r->truncated = true;   /* no memory: the output is lost, say so */
      return;
    }
  }
  if (n >= AGENT_RING_SIZE) {
    /* Only the tail of this chunk survives. */
    r->truncated = r->truncated || r->len > 0 || n > AGENT_RING_SIZE;
    memcpy(r->buf, data + n - AGENT_RING_SIZE, AGENT_RING_SIZE);
    r->start = 0;
    r->len = AGENT_RING_SIZE;
    return;
  }
  size_t end = (r->start + r->len) % AGENT_RING_SIZE;
  size_t first = AGENT_RING_SIZE - end < n ? AGENT_RING_SIZE - end : n;
  memcpy(r->buf + end, data, first);
  memcpy(r->buf, data + first, n - first);
  if (r->len + n > AGENT_RING_SIZE) {
    size_t drop = r->len + n - AGENT_RING_SIZE;
    r->start = (r->start + drop) % AGENT_RING_SIZE;
    r->len = AGENT_RING_SIZE;
    r->truncated = true;
  } else {
    r->len += n;
  }
}

char *ring_copy(const ring_t *r, size_t *n) {
  *n = 0;
  if (r->len == 0)
    return NULL;
  char *out = malloc(r->len);
  if (out == NULL)
    return NULL;
  size_t first = AGENT_RING_SIZE - r->start < r->len ? AGENT_RING_SIZE - r->start
                                                     : r->len;
  memcpy(out, r->buf + r->start, first);
  memcpy(out + first, r->buf, r->len - first);
  *n = r->len;
  return out;
}

void ring_free(ring_t *r) {
  free(r->buf);
  memset(r, 0, sizeof *r);
}
