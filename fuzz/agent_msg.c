/* agent_msg.c - libFuzzer target: a byte stream as the agent receives it,
 * through the frame decoder and the JSON reader, then the request checks
 * every operation starts with.  Nothing may crash, leak or read out of
 * bounds, whatever the bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/json.h"
#include "proto/proto.h"

static void request(const char *body, size_t len) {
  vc_err_t err;
  vc_json_t *msg = NULL;
  if (vc_json_parse(body, len, &msg, &err) < 0)
    return;
  long long id;
  const char *op = vc_json_get_string(msg, "op");
  if (vc_json_get_int(msg, "id", &id) == 0 && op != NULL) {
    /* What the operations read: nested objects, lists, numbers. */
    const vc_json_t *c = vc_json_get(msg, "container");
    const vc_json_t *argv = vc_json_get(c, "argv");
    for (size_t i = 0; argv != NULL && argv->type == VC_JSON_ARRAY && i < argv->n;
         i++)
      (void)argv->items[i]->string;
    long long t;
    (void)vc_json_get_int(msg, "timeout_ms", &t);
    (void)vc_json_get_bool(msg, "stream", false);
    /* The stream frames: stdin, close_stdin, resize, attach, logs. */
    (void)vc_json_get_int(msg, "rows", &t);
    (void)vc_json_get_int(msg, "cols", &t);
    (void)vc_json_get_bool(msg, "stdin", false);
    (void)vc_json_get_bool(msg, "terminal", false);
    (void)vc_json_get_bool(msg, "follow", false);
    (void)vc_json_get_string(msg, "container_id");
    const vc_json_t *data = vc_json_get(msg, "data");
    if (data != NULL && data->type == VC_JSON_STRING) {
      char *bytes = NULL;
      size_t n;
      if (vc_base64_decode(data->string, data->len, &bytes, &n, &err) == 0)
        free(bytes);
    }
  }
  vc_json_free(msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  vc_frame_reader_t r;
  vc_frame_reader_init(&r);
  size_t pos = 0;
  while (pos < size) {
    size_t used = 0;
    uint32_t bad = 0;
    vc_frame_event_t ev =
        vc_frame_feed(&r, (const char *)data + pos, size - pos, &used, &bad);
    pos += used;
    if (ev == VC_FRAME_READY)
      request(r.body, r.body_len);
    else if (ev == VC_FRAME_FATAL)
      break;
  }
  vc_frame_reader_free(&r);
  /* The same bytes as one body, unframed: the JSON reader alone. */
  request((const char *)data, size);
  return 0;
}
