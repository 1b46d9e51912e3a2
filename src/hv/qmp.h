/* qmp.h - a minimal QEMU Machine Protocol client: connect (greeting and
 * capabilities negotiation), execute a command, read its return. */
#ifndef VC_QMP_H
#define VC_QMP_H

#include "proto/json.h"
#include "sys/error.h"

/* Connect to the QMP socket at path; *fd is ready for vc_qmp_execute. */
int vc_qmp_connect(const char *path, int timeout_ms, int *fd, vc_err_t *err);

/* Execute cmd (no arguments); *ret (may be NULL) gets the "return" value's
 * whole reply, freed by the caller.  Events met on the way are skipped. */
int vc_qmp_execute(int fd, const char *cmd, int timeout_ms, vc_json_t **ret,
                   vc_err_t *err);

/* The same for a whole command line, {"execute": ..., "arguments": ...}. */
int vc_qmp_execute_line(int fd, const char *line, int timeout_ms,
                        vc_json_t **ret, vc_err_t *err);

/* vc_qmp_execute_line, with descriptor passfd attached (SCM_RIGHTS), for
 * QMP's getfd and add-fd. */
int vc_qmp_execute_fd(int fd, const char *line, int passfd, int timeout_ms,
                      vc_json_t **ret, vc_err_t *err);

#endif
