/* json.h - a small strict JSON reader (to a tree) and writer, for the agent
 * protocol (docs/agent-protocol.md).  Used by both ends: the host's
 * src/agent/unix.c and the guest's vc-agent, so it is plain C with no Lua.
 *
 * Reading is strict RFC 8259: one value, nothing after it but white space,
 * nesting at most VC_JSON_DEPTH deep, strings valid UTF-8 with no \u0000.
 * Every failure names what and where ("at byte 12: expected ':'"). */
#ifndef VC_JSON_H
#define VC_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include "sys/error.h"

#define VC_JSON_DEPTH 32

typedef enum vc_json_type {
  VC_JSON_NULL,
  VC_JSON_BOOL,
  VC_JSON_NUMBER,
  VC_JSON_STRING,
  VC_JSON_ARRAY,
  VC_JSON_OBJECT,
} vc_json_type_t;

typedef struct vc_json vc_json_t;
struct vc_json {
  vc_json_type_t type;
  bool boolean;        /* BOOL */
  double number;       /* NUMBER */
  char *string;        /* STRING: NUL-terminated, len bytes */
  size_t len;
  char **keys;         /* OBJECT: n keys (NUL-terminated), in order */
  vc_json_t **items;   /* ARRAY and OBJECT: n values */
  size_t n;
};

/* Parse text[0..len) into a tree that the caller frees with vc_json_free. */
int vc_json_parse(const char *text, size_t len, vc_json_t **out,
                  vc_err_t *err);
void vc_json_free(vc_json_t *v);

/* Lookups on an object; NULL, false or -1 when v is not an object, the
 * member is missing or has another type. */
const vc_json_t *vc_json_get(const vc_json_t *v, const char *key);
const char *vc_json_get_string(const vc_json_t *v, const char *key);
/* 0 with *out set when the member is an integral number in range. */
int vc_json_get_int(const vc_json_t *v, const char *key, long long *out);
bool vc_json_get_bool(const vc_json_t *v, const char *key, bool def);

/* The writer: appends to a growable buffer; an allocation failure or a
 * nesting error is remembered and reported by vc_jw_finish.  Commas and
 * key/value separators are inserted automatically. */
typedef struct vc_jw {
  char *buf;
  size_t len, cap;
  int failed;
  int depth;
  unsigned char count[VC_JSON_DEPTH + 1]; /* items so far at each level, capped */
  bool after_key;
} vc_jw_t;

void vc_jw_init(vc_jw_t *w);
void vc_jw_free(vc_jw_t *w);
void vc_jw_object(vc_jw_t *w);           /* { */
void vc_jw_array(vc_jw_t *w);            /* [ */
void vc_jw_end(vc_jw_t *w, char close);  /* } or ] */
void vc_jw_key(vc_jw_t *w, const char *key);
void vc_jw_string(vc_jw_t *w, const char *s);
void vc_jw_stringn(vc_jw_t *w, const char *s, size_t n);
void vc_jw_int(vc_jw_t *w, long long v);
void vc_jw_bool(vc_jw_t *w, bool b);
void vc_jw_null(vc_jw_t *w);
/* A value already in JSON (the caller has checked that it parses). */
void vc_jw_raw(vc_jw_t *w, const char *json, size_t n);
void vc_jw_base64(vc_jw_t *w, const void *data, size_t n);  /* a string */
/* The finished text (NUL-terminated, owned by w) and its length. */
int vc_jw_finish(vc_jw_t *w, const char **text, size_t *len, vc_err_t *err);

/* Decode base64 (standard alphabet, padding optional) into a new buffer. */
int vc_base64_decode(const char *in, size_t len, char **out, size_t *outlen,
                     vc_err_t *err);

#endif
