/* json.c - a strict JSON reader (to a tree) and an appending writer. */
#include "json.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sys/cleanup.h"

/* Reading ---------------------------------------------------------------- */

struct reader {
  const char *s;
  size_t len, pos;
  vc_err_t *err;
};

static int bad(struct reader *r, const char *what) {
  if (r->pos >= r->len)
    return vc_fail(r->err, EINVAL, "at byte %zu: %s (end of input)", r->pos,
                   what);
  return vc_fail(r->err, EINVAL, "at byte %zu: %s", r->pos, what);
}

static void skip_ws(struct reader *r) {
  while (r->pos < r->len && (r->s[r->pos] == ' ' || r->s[r->pos] == '\t' ||
                             r->s[r->pos] == '\n' || r->s[r->pos] == '\r'))
    r->pos++;
}

static int literal(struct reader *r, const char *word) {
  size_t n = strlen(word);
  if (r->len - r->pos < n || memcmp(r->s + r->pos, word, n) != 0)
    return bad(r, "invalid literal");
  r->pos += n;
  return 0;
}

static vc_json_t *node(vc_json_type_t type) {
  vc_json_t *v = calloc(1, sizeof *v);
  if (v != NULL)
    v->type = type;
  return v;
}

static int hex4(struct reader *r, unsigned *out) {
  if (r->len - r->pos < 4)
    return bad(r, "short \\u escape");
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    char c = r->s[r->pos++];
    v <<= 4;
    if (c >= '0' && c <= '9')
      v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f')
      v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F')
      v |= (unsigned)(c - 'A' + 10);
    else
      return bad(r, "bad \\u escape");
  }
  *out = v;
  return 0;
}

static size_t put_utf8(char *out, unsigned cp) {
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (char)(0xE0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = (char)(0xF0 | (cp >> 18));
  out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  out[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* Length of the valid UTF-8 sequence at p (n bytes left), 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t n) {
  if (p[0] < 0x80)
    return 1;
  size_t len;
  unsigned min;
  unsigned cp;
  if ((p[0] & 0xE0) == 0xC0) {
    len = 2, min = 0x80, cp = p[0] & 0x1F;
  } else if ((p[0] & 0xF0) == 0xE0) {
    len = 3, min = 0x800, cp = p[0] & 0x0F;
  } else if ((p[0] & 0xF8) == 0xF0) {
    len = 4, min = 0x10000, cp = p[0] & 0x07;
  } else {
    return 0;
  }
  if (n < len)
    return 0;
  for (size_t i = 1; i < len; i++) {
    if ((p[i] & 0xC0) != 0x80)
      return 0;
    cp = (cp << 6) | (p[i] & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return len;
}

/* A string starting after its opening quote; *out is NUL-terminated. */
static int string(struct reader *r, char **out, size_t *outlen) {
  /* The decoded string is never longer than its source. */
  size_t start = r->pos, end = start;
  while (end < r->len && r->s[end] != '"')
    end += r->s[end] == '\\' ? 2 : 1;
  cleanup_free char *buf = malloc(end - start + 1);
  if (buf == NULL)
    return vc_error(r->err, ENOMEM, "json");
  size_t n = 0;
  for (;;) {
    if (r->pos >= r->len)
      return bad(r, "unterminated string");
    unsigned char c = (unsigned char)r->s[r->pos];
    if (c == '"') {
      r->pos++;
      break;
    }
    if (c < 0x20)
      return bad(r, "control character in string");
    if (c != '\\') {
      size_t k = utf8_len((const unsigned char *)r->s + r->pos,
                          r->len - r->pos);
      if (k == 0)
        return bad(r, "invalid UTF-8 in string");
      memcpy(buf + n, r->s + r->pos, k);
      n += k;
      r->pos += k;
      continue;
    }
    r->pos++;
    if (r->pos >= r->len)
      return bad(r, "unterminated escape");
    char e = r->s[r->pos++];
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    const char *hit = e != '\0' ? strchr(from, e) : NULL;
    if (hit != NULL) {
      buf[n++] = to[hit - from];
      continue;
    }
    if (e != 'u')
      return bad(r, "bad escape");
    unsigned cp;
    if (hex4(r, &cp) < 0)
      return -1;
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      unsigned lo;
      if (r->len - r->pos < 2 || r->s[r->pos] != '\\' ||
          r->s[r->pos + 1] != 'u')
        return bad(r, "lone surrogate");
      r->pos += 2;
      if (hex4(r, &lo) < 0)
        return -1;
      if (lo < 0xDC00 || lo > 0xDFFF)
        return bad(r, "bad surrogate pair");
      cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
      return bad(r, "lone surrogate");
    }
    if (cp == 0)
      return bad(r, "\\u0000 in string");
    n += put_utf8(buf + n, cp);
  }
  buf[n] = '\0';
  *out = vc_steal_ptr(buf);
  *outlen = n;
  return 0;
}

static int number(struct reader *r, double *out) {
  size_t start = r->pos;
  if (r->pos < r->len && r->s[r->pos] == '-')
    r->pos++;
  if (r->pos >= r->len || r->s[r->pos] < '0' || r->s[r->pos] > '9')
    return bad(r, "invalid number");
  if (r->s[r->pos] == '0')
    r->pos++;
  else
    while (r->pos < r->len && r->s[r->pos] >= '0' && r->s[r->pos] <= '9')
      r->pos++;
  if (r->pos < r->len && r->s[r->pos] == '.') {
    r->pos++;
    if (r->pos >= r->len || r->s[r->pos] < '0' || r->s[r->pos] > '9')
      return bad(r, "invalid number");
    while (r->pos < r->len && r->s[r->pos] >= '0' && r->s[r->pos] <= '9')
      r->pos++;
  }
  if (r->pos < r->len && (r->s[r->pos] == 'e' || r->s[r->pos] == 'E')) {
    r->pos++;
    if (r->pos < r->len && (r->s[r->pos] == '+' || r->s[r->pos] == '-'))
      r->pos++;
    if (r->pos >= r->len || r->s[r->pos] < '0' || r->s[r->pos] > '9')
      return bad(r, "invalid number");
    while (r->pos < r->len && r->s[r->pos] >= '0' && r->s[r->pos] <= '9')
      r->pos++;
  }
  char tmp[64];
  size_t n = r->pos - start;
  if (n >= sizeof tmp)
    return bad(r, "number too long");
  memcpy(tmp, r->s + start, n);
  tmp[n] = '\0';
  *out = strtod(tmp, NULL);
  if (!isfinite(*out))
    return bad(r, "number out of range");
  return 0;
}

static int value(struct reader *r, int depth, vc_json_t **out);

/* Append v (and key) to a container, growing its arrays. */
static int push(struct reader *r, vc_json_t *c, char *key, vc_json_t *v) {
  if ((c->n & (c->n - 1)) == 0) { /* n is 0 or a power of two: grow */
    size_t cap = c->n == 0 ? 4 : c->n * 2;
    vc_json_t **items = realloc(c->items, cap * sizeof *items);
    if (items == NULL)
      return vc_error(r->err, ENOMEM, "json");
    c->items = items;
    if (c->type == VC_JSON_OBJECT) {
      char **keys = realloc(c->keys, cap * sizeof *keys);
      if (keys == NULL)
        return vc_error(r->err, ENOMEM, "json");
      c->keys = keys;
    }
  }
  if (c->type == VC_JSON_OBJECT)
    c->keys[c->n] = key;
  c->items[c->n++] = v;
  return 0;
}

static int container(struct reader *r, int depth, vc_json_t *c, char close) {
  skip_ws(r);
  if (r->pos < r->len && r->s[r->pos] == close) {
    r->pos++;
    return 0;
  }
  for (;;) {
    cleanup_free char *key = NULL;
    size_t keylen;
    if (c->type == VC_JSON_OBJECT) {
      skip_ws(r);
      if (r->pos >= r->len || r->s[r->pos] != '"')
        return bad(r, "expected a string key");
      r->pos++;
      if (string(r, &key, &keylen) < 0)
        return -1;
      skip_ws(r);
      if (r->pos >= r->len || r->s[r->pos] != ':')
        return bad(r, "expected ':'");
      r->pos++;
    }
    vc_json_t *v = NULL;
    if (value(r, depth + 1, &v) < 0)
      return -1;
    if (push(r, c, key, v) < 0) {
      vc_json_free(v);
      return -1;
    }
    key = NULL; /* owned by c now */
    skip_ws(r);
    if (r->pos < r->len && r->s[r->pos] == ',') {
      r->pos++;
      continue;
    }
    if (r->pos < r->len && r->s[r->pos] == close) {
      r->pos++;
      return 0;
    }
    return bad(r, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
  }
}

static int value(struct reader *r, int depth, vc_json_t **out) {
  if (depth > VC_JSON_DEPTH)
    return bad(r, "nested too deep");
  skip_ws(r);
  if (r->pos >= r->len)
    return bad(r, "expected a value");
  char c = r->s[r->pos];
  vc_json_type_t type = c == '{'   ? VC_JSON_OBJECT
                        : c == '[' ? VC_JSON_ARRAY
                        : c == '"' ? VC_JSON_STRING
                        : c == 't' || c == 'f' ? VC_JSON_BOOL
                        : c == 'n' ? VC_JSON_NULL
                                   : VC_JSON_NUMBER;
  vc_json_t *v = node(type);
  if (v == NULL)
    return vc_error(r->err, ENOMEM, "json");
  int ret;
  switch (type) {
  case VC_JSON_OBJECT:
  case VC_JSON_ARRAY:
    r->pos++;
    ret = container(r, depth, v, type == VC_JSON_OBJECT ? '}' : ']');
    break;
  case VC_JSON_STRING:
    r->pos++;
    ret = string(r, &v->string, &v->len);
    break;
  case VC_JSON_BOOL:
    v->boolean = c == 't';
    ret = literal(r, v->boolean ? "true" : "false");
    break;
  case VC_JSON_NULL:
    ret = literal(r, "null");
    break;
  default:
    ret = number(r, &v->number);
    break;
  }
  if (ret < 0) {
    vc_json_free(v);
    return -1;
  }
  *out = v;
  return 0;
}

int vc_json_parse(const char *text, size_t len, vc_json_t **out,
                  vc_err_t *err) {
  struct reader r = {text, len, 0, err};
  vc_json_t *v = NULL;
  if (value(&r, 0, &v) < 0)
    return -1;
  skip_ws(&r);
  if (r.pos != len) {
    vc_json_free(v);
    return bad(&r, "trailing characters");
  }
  *out = v;
  return 0;
}

void vc_json_free(vc_json_t *v) {
  if (v == NULL)
    return;
  for (size_t i = 0; i < v->n; i++) {
    vc_json_free(v->items[i]);
    if (v->keys != NULL)
      free(v->keys[i]);
  }
  free(v->items);
  free(v->keys);
  free(v->string);
  free(v);
}

const vc_json_t *vc_json_get(const vc_json_t *v, const char *key) {
  if (v == NULL || v->type != VC_JSON_OBJECT)
    return NULL;
  /* The last of duplicate keys wins, as in most readers. */
  for (size_t i = v->n; i-- > 0;)
    if (strcmp(v->keys[i], key) == 0)
      return v->items[i];
  return NULL;
}

const char *vc_json_get_string(const vc_json_t *v, const char *key) {
  const vc_json_t *m = vc_json_get(v, key);
  return m != NULL && m->type == VC_JSON_STRING ? m->string : NULL;
}

int vc_json_get_int(const vc_json_t *v, const char *key, long long *out) {
  const vc_json_t *m = vc_json_get(v, key);
  if (m == NULL || m->type != VC_JSON_NUMBER || m->number != floor(m->number) ||
      m->number < -9007199254740992.0 || m->number > 9007199254740992.0)
    return -1;
  *out = (long long)m->number;
  return 0;
}

bool vc_json_get_bool(const vc_json_t *v, const char *key, bool def) {
  const vc_json_t *m = vc_json_get(v, key);
  return m != NULL && m->type == VC_JSON_BOOL ? m->boolean : def;
}

/* Writing ---------------------------------------------------------------- */

void vc_jw_init(vc_jw_t *w) {
  memset(w, 0, sizeof *w);
}

void vc_jw_free(vc_jw_t *w) {
  free(w->buf);
  memset(w, 0, sizeof *w);
}

static void put(vc_jw_t *w, const char *s, size_t n) {
  if (w->failed)
    return;
  if (w->len + n + 1 > w->cap) {
    size_t cap = w->cap == 0 ? 256 : w->cap;
    while (w->len + n + 1 > cap)
      cap *= 2;
    char *b = realloc(w->buf, cap);
    if (b == NULL) {
      w->failed = ENOMEM;
      return;
    }
    w->buf = b;
    w->cap = cap;
  }
  memcpy(w->buf + w->len, s, n);
  w->len += n;
  w->buf[w->len] = '\0';
}

/* The separator before a value: a comma unless first, nothing after a key. */
static void before_value(vc_jw_t *w) {
  if (w->after_key) {
    w->after_key = false;
    return;
  }
  if (w->depth > 0 && w->count[w->depth]++ > 0)
    put(w, ",", 1);
  if (w->count[w->depth] == 0) /* wrapped: keep it non-zero */
    w->count[w->depth] = 1;
}

void vc_jw_object(vc_jw_t *w) {
  before_value(w);
  if (w->depth >= VC_JSON_DEPTH) {
    w->failed = EINVAL;
    return;
  }
  put(w, "{", 1);
  w->count[++w->depth] = 0;
}

void vc_jw_array(vc_jw_t *w) {
  before_value(w);
  if (w->depth >= VC_JSON_DEPTH) {
    w->failed = EINVAL;
    return;
  }
  put(w, "[", 1);
  w->count[++w->depth] = 0;
}

void vc_jw_end(vc_jw_t *w, char close) {
  if (w->depth == 0 || w->after_key) {
    w->failed = EINVAL;
    return;
  }
  w->depth--;
  put(w, &close, 1);
}

static void put_string(vc_jw_t *w, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  put(w, "\"", 1);
  size_t run = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c != '"' && c != '\\')
      continue;
    put(w, s + run, i - run);
    run = i + 1;
    char esc[7] = {'\\', 0, 0, 0, 0, 0, 0};
    size_t len = 2;
    switch (c) {
    case '"': esc[1] = '"'; break;
    case '\\': esc[1] = '\\'; break;
    case '\n': esc[1] = 'n'; break;
    case '\r': esc[1] = 'r'; break;
    case '\t': esc[1] = 't'; break;
    default:
      memcpy(esc + 1, "u00", 3);
      esc[4] = hex[c >> 4];
      esc[5] = hex[c & 15];
      len = 6;
    }
    put(w, esc, len);
  }
  put(w, s + run, n - run);
  put(w, "\"", 1);
}

void vc_jw_key(vc_jw_t *w, const char *key) {
  before_value(w);
  put_string(w, key, strlen(key));
  put(w, ":", 1);
  w->after_key = true;
}

void vc_jw_stringn(vc_jw_t *w, const char *s, size_t n) {
  before_value(w);
  put_string(w, s, n);
}

void vc_jw_string(vc_jw_t *w, const char *s) {
  vc_jw_stringn(w, s, strlen(s));
}

void vc_jw_int(vc_jw_t *w, long long v) {
  char num[32];
  before_value(w);
  put(w, num, (size_t)snprintf(num, sizeof num, "%lld", v));
}

void vc_jw_bool(vc_jw_t *w, bool b) {
  before_value(w);
  put(w, b ? "true" : "false", b ? 4 : 5);
}

void vc_jw_null(vc_jw_t *w) {
  before_value(w);
  put(w, "null", 4);
}

void vc_jw_raw(vc_jw_t *w, const char *json, size_t n) {
  before_value(w);
  put(w, json, n);
}

void vc_jw_base64(vc_jw_t *w, const void *data, size_t n) {
  static const char tab[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const unsigned char *p = data;
  before_value(w);
  put(w, "\"", 1);
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16;
    if (i + 1 < n)
      v |= (uint32_t)p[i + 1] << 8;
    if (i + 2 < n)
      v |= p[i + 2];
    char q[4] = {tab[v >> 18], tab[(v >> 12) & 63],
                 i + 1 < n ? tab[(v >> 6) & 63] : '=',
                 i + 2 < n ? tab[v & 63] : '='};
    put(w, q, 4);
  }
  put(w, "\"", 1);
}

int vc_jw_finish(vc_jw_t *w, const char **text, size_t *len, vc_err_t *err) {
  if (w->failed)
    return vc_error(err, w->failed, "json: write");
  if (w->depth != 0 || w->after_key || w->buf == NULL)
    return vc_fail(err, EINVAL, "json: write: unbalanced value");
  *text = w->buf;
  *len = w->len;
  return 0;
}

int vc_base64_decode(const char *in, size_t len, char **out, size_t *outlen,
                     vc_err_t *err) {
  while (len > 0 && in[len - 1] == '=')
    len--;
  if (len % 4 == 1)
    return vc_fail(err, EINVAL, "base64: bad length");
  cleanup_free char *buf = malloc(len / 4 * 3 + 3);
  if (buf == NULL)
    return vc_error(err, ENOMEM, "base64");
  size_t n = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < len; i++) {
    char c = in[i];
    int v = c >= 'A' && c <= 'Z'   ? c - 'A'
            : c >= 'a' && c <= 'z' ? c - 'a' + 26
            : c >= '0' && c <= '9' ? c - '0' + 52
            : c == '+'             ? 62
            : c == '/'             ? 63
                                   : -1;
    if (v < 0)
      return vc_fail(err, EINVAL, "base64: bad character at %zu", i);
    acc = (acc << 6) | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      buf[n++] = (char)(acc >> bits);
      acc &= (1u << bits) - 1;
    }
  }
  buf[n] = '\0';
  *out = vc_steal_ptr(buf);
  *outlen = n;
  return 0;
}
