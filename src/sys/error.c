/* error.c - building error messages in a vc_err_t. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int vc_error(vc_err_t *err, int errnum, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
  va_end(ap);
  if (n < 0)
    err->msg[0] = '\0';
  size_t len = strlen(err->msg);
  if (errnum != 0 && len < sizeof err->msg)
    snprintf(err->msg + len, sizeof err->msg - len, ": %s", strerror(errnum));
  err->errnum = errnum;
  return -1;
}

int vc_fail(vc_err_t *err, int errnum, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
  va_end(ap);
  if (n < 0)
    err->msg[0] = '\0';
  err->errnum = errnum;
  return -1;
}

int vc_error_prefix(vc_err_t *err, const char *fmt, ...) {
  char prefix[VC_ERR_MSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  if (n < 0)
    return -1;
  char joined[2 * VC_ERR_MSG_MAX + 2];
  snprintf(joined, sizeof joined, "%s: %s", prefix, err->msg);
  snprintf(err->msg, sizeof err->msg, "%.*s", VC_ERR_MSG_MAX - 1, joined);
  return -1;
}
