/* src/proto/ - the agent protocol's wire format, shared by both ends: the
 * host's agent client (src/agent/unix.c) and vc-agent (src/agentd/).
 * JSON (json.h) and frames (this header).  It may use src/sys/ only.
 *
 * proto.h - frames of the agent protocol (docs/agent-protocol.md):
 * a 4-byte big-endian length, then that many bytes of one JSON object. */
#ifndef VC_PROTO_H
#define VC_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "sys/error.h"

#define VC_PROTO_VERSION 4
#define VC_PROTO_MAX (1u << 20)          /* largest frame body */
#define VC_PROTO_SKIP_MAX (64u << 20)    /* largest body skipped, not read */

/* Write one frame (blocking; retries on EINTR and short writes). */
int vc_frame_write(int fd, const void *data, size_t len, vc_err_t *err);

/* Read one frame (blocking, at most timeout_ms in all; < 0 waits forever).
 * *data is NUL-terminated and freed by the caller.  ECONNRESET when the
 * peer closed, ETIMEDOUT on timeout, EMSGSIZE for a bad length. */
int vc_frame_read(int fd, int timeout_ms, char **data, size_t *len,
                  vc_err_t *err);

/* An incremental decoder for servers reading non-blocking sockets. */
typedef struct vc_frame_reader {
  unsigned char head[4];
  size_t head_len;
  char *body;            /* being filled, VC_PROTO_MAX + 1 bytes */
  size_t body_len, want;
  size_t skip;           /* bytes of an oversized body still to drop */
} vc_frame_reader_t;

typedef enum vc_frame_event {
  VC_FRAME_NONE,         /* all input used, no frame finished */
  VC_FRAME_READY,        /* a whole body is in r->body[0..r->body_len) */
  VC_FRAME_BAD_LENGTH,   /* a length of 0 or > VC_PROTO_MAX was read and is
                            being skipped; *bad_len tells it */
  VC_FRAME_FATAL,        /* a length beyond VC_PROTO_SKIP_MAX: drop the peer */
} vc_frame_event_t;

void vc_frame_reader_init(vc_frame_reader_t *r);
void vc_frame_reader_free(vc_frame_reader_t *r);
/* Consume up to n bytes of data; *used tells how many were taken.  Call
 * again with the rest after handling an event.  After READY, the body
 * stays valid until the next call.  An allocation failure is FATAL. */
vc_frame_event_t vc_frame_feed(vc_frame_reader_t *r, const char *data,
                               size_t n, size_t *used, uint32_t *bad_len);

#endif
