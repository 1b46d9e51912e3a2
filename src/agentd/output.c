/* output.c - ring buffers keeping the newest output of each stream, and
 * when each part of it was read (for logs with timestamps, in order
 * across a process's streams). */
#include <stdlib.h>
#include <string.h>

#include "agentd.h"

/* The oldest mark goes into the next when there are this many: a process
 * writing one byte at a time keeps its bytes, with coarser times. */
#define RING_MARKS 1024

static mark_t *mark_at(const ring_t *r, size_t i) {
  return &r->marks[(r->m_start + i) % RING_MARKS];
}

/* Bytes [start, end) of the stream came at ms, as chunk seq. */
static void mark_put(ring_t *r, uint64_t start, uint64_t end, uint64_t seq,
                     int64_t ms) {
  /* Forget marks whose bytes the ring dropped. */
  uint64_t oldest = r->total - r->len;
  while (r->m_len > 0 && mark_at(r, 0)->end <= oldest) {
    r->m_start = (r->m_start + 1) % RING_MARKS;
    r->m_len--;
  }
  if (r->m_len > 0) {
    mark_t *last = mark_at(r, r->m_len - 1);
    if (last->ms == ms && last->end == start) {
      last->end = end; /* the same millisecond: one chunk */
      return;
    }
  }
  if (r->m_len == RING_MARKS) {
    mark_t *first = mark_at(r, 0), *second = mark_at(r, 1);
    second->start = first->start;
    second->ms = first->ms;
    second->seq = first->seq;
    r->m_start = (r->m_start + 1) % RING_MARKS;
    r->m_len--;
  }
  *mark_at(r, r->m_len++) = (mark_t){.start = start, .end = end, .seq = seq,
                                     .ms = ms};
}

void ring_put(ring_t *r, const char *data, size_t n, uint64_t seq,
              int64_t ms) {
  if (n == 0)
    return;
  if (r->buf == NULL) {
    r->buf = malloc(AGENT_RING_SIZE);
    r->marks = malloc(RING_MARKS * sizeof *r->marks);
    if (r->buf == NULL || r->marks == NULL) {
      free(r->buf);
      free(r->marks);
      r->buf = NULL;
      r->marks = NULL;
      r->truncated = true;   /* no memory: the output is lost, say so */
      return;
    }
  }
  uint64_t start = r->total;
  r->total += n;
  if (n >= AGENT_RING_SIZE) {
    /* Only the tail of this chunk survives. */
    r->truncated = r->truncated || r->len > 0 || n > AGENT_RING_SIZE;
    memcpy(r->buf, data + n - AGENT_RING_SIZE, AGENT_RING_SIZE);
    r->start = 0;
    r->len = AGENT_RING_SIZE;
  } else {
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
  mark_put(r, start, r->total, seq, ms);
}

/* Bytes [from, to) of the stream (still in the ring) into out. */
static void ring_range(const ring_t *r, uint64_t from, uint64_t to,
                       char *out) {
  uint64_t oldest = r->total - r->len;
  size_t off = (r->start + (size_t)(from - oldest)) % AGENT_RING_SIZE;
  size_t n = (size_t)(to - from);
  size_t first = AGENT_RING_SIZE - off < n ? AGENT_RING_SIZE - off : n;
  memcpy(out, r->buf + off, first);
  memcpy(out + first, r->buf, n - first);
}

char *ring_copy(const ring_t *r, size_t *n) {
  *n = 0;
  if (r->len == 0)
    return NULL;
  char *out = malloc(r->len);
  if (out == NULL)
    return NULL;
  ring_range(r, r->total - r->len, r->total, out);
  *n = r->len;
  return out;
}

int ring_chunks(const ring_t *rings[2], chunk_fn fn, void *ud) {
  size_t i[2] = {0, 0};
  for (;;) {
    /* the next chunk in the order they were read, of either stream */
    int which = -1;
    const mark_t *m[2] = {NULL, NULL};
    for (int s = 0; s < 2; s++) {
      const ring_t *r = rings[s];
      uint64_t oldest = r->total - r->len;
      while (i[s] < r->m_len && mark_at(r, i[s])->end <= oldest)
        i[s]++;
      if (i[s] < r->m_len)
        m[s] = mark_at(r, i[s]);
    }
    if (m[0] != NULL && (m[1] == NULL || m[0]->seq <= m[1]->seq))
      which = 0;
    else if (m[1] != NULL)
      which = 1;
    if (which < 0)
      return 0;
    const ring_t *r = rings[which];
    uint64_t oldest = r->total - r->len;
    uint64_t from = m[which]->start > oldest ? m[which]->start : oldest;
    size_t n = (size_t)(m[which]->end - from);
    char *data = malloc(n);
    if (data == NULL)
      return -1;
    ring_range(r, from, m[which]->end, data);
    int ret = fn(ud, which + 1, m[which]->ms, data, n);
    free(data);
    if (ret < 0)
      return -1;
    i[which]++;
  }
}

void ring_free(ring_t *r) {
  free(r->buf);
  free(r->marks);
  memset(r, 0, sizeof *r);
}
