/* mock.h - what the test-only mock backends share.
 *
 * The mocks run nothing.  They keep a small world in files under the pod's
 * run folder, so that a later vc process sees what an earlier one did, and
 * they fail on request: the pod annotation "vc.mock.fail" lists operations
 * ("hypervisor.start,agent.create_container") that must fail. */
#ifndef VC_MOCK_H
#define VC_MOCK_H

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "spec.h"
#include "sys/error.h"

static inline bool vc_mock_should_fail(const struct vc_kv *kv, size_t n,
                                       const char *op) {
  const char *list = vc_kv_get(kv, n, "vc.mock.fail");
  size_t len = strlen(op);
  for (const char *p = list; p != NULL && *p != '\0';) {
    const char *end = strchr(p, ',');
    size_t item = end != NULL ? (size_t)(end - p) : strlen(p);
    if (item == len && strncmp(p, op, len) == 0)
      return true;
    p = end != NULL ? end + 1 : NULL;
  }
  return false;
}

static inline int vc_mock_check(const struct vc_kv *kv, size_t n,
                                const char *op, vc_err_t *err) {
  if (vc_mock_should_fail(kv, n, op))
    return vc_fail(err, EIO, "mock: %s failed (vc.mock.fail)", op);
  return 0;
}

#endif
