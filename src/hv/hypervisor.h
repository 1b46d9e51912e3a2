/* src/hv/ - the sandbox backends: this interface, its registry and Lua
 * binding (hypervisor.c, vc.core.hypervisor), one file per backend
 * (qemu.c, namespace.c, mock.c) and the QMP client (qmp.c).  It may use
 * src/sys/, src/proto/ (JSON) and src/core/ (the specs); never the agent
 * client: a backend runs the sandbox, the agent speaks to what is inside.
 *
 * hypervisor.h - the interface every VM (or sandbox) backend implements.
 *
 * A backend only runs the sandbox that the agent lives in; it knows nothing
 * of containers.  Its runtime facts (vc_hv_info_t) are returned to the Lua
 * layer, which persists them in hypervisor.json and hands them back when a
 * later vc process reopens the pod.  Backends: src/hv/<name>.c. */
#ifndef VC_HYPERVISOR_H
#define VC_HYPERVISOR_H

#include <stdbool.h>
#include <sys/types.h>

#include "core/spec.h"
#include "sys/error.h"

typedef enum vc_vm_state {
  VC_VM_NONE,       /* created, never started (or destroyed) */
  VC_VM_RUNNING,
  VC_VM_PAUSED,
  VC_VM_STOPPED,    /* was started, is gone now */
} vc_vm_state_t;

typedef struct vc_hv_info {
  pid_t pid;                     /* VMM or sandbox process, 0 when none */
  unsigned long long start_time; /* its start time (/proc/PID/stat field 22),
                                    so a reused pid is never taken for it */
  char accel[16];                /* "kvm", "tcg", "none" */
  char share[8];                 /* how volumes reach the agent: "bind", "9p" */
  char agent[512];               /* agent address, "scheme:rest" */
} vc_hv_info_t;

typedef struct vc_hv vc_hv_t;

struct vc_hv_ops {
  const char *name;
  /* Start, ahead of a pod's create and even of its record, kernel work
   * that its sandbox will wait for; makes nothing.  Best effort.  NULL:
   * nothing to start. */
  void (*warm)(void);
  /* Check the spec and prepare what start needs; starts nothing. */
  int (*create)(vc_hv_t *hv, vc_err_t *err);
  /* Launch the sandbox so that it outlives this process; fill hv->info. */
  int (*start)(vc_hv_t *hv, vc_err_t *err);
  /* Power the sandbox off, forcibly after timeout_s. */
  int (*stop)(vc_hv_t *hv, double timeout_s, vc_err_t *err);
  int (*pause)(vc_hv_t *hv, vc_err_t *err);
  int (*resume)(vc_hv_t *hv, vc_err_t *err);
  int (*status)(vc_hv_t *hv, vc_vm_state_t *state, vc_err_t *err);
  /* Release everything create and start made; stops a running sandbox. */
  int (*destroy)(vc_hv_t *hv, vc_err_t *err);
  /* Make a container's rootfs, a host folder, visible to the agent; guest
   * gets the path the agent must use.  NULL: the agent sees host paths. */
  int (*share_rootfs)(vc_hv_t *hv, const char *cid, const char *host_path,
                      char *guest, size_t size, vc_err_t *err);
  int (*unshare_rootfs)(vc_hv_t *hv, const char *cid, vc_err_t *err);
  /* Pause the VM and write its whole state to path (a template that
   * spec.incoming starts a VM from).  NULL: the backend cannot. */
  int (*save)(vc_hv_t *hv, const char *path, double timeout_s, vc_err_t *err);
};

struct vc_hv {
  const struct vc_hv_ops *ops;
  vc_vm_spec_t spec;
  vc_hv_info_t info;
};

/* The backend called name, or NULL. */
const struct vc_hv_ops *vc_hv_find(const char *name);

extern const struct vc_hv_ops vc_hv_mock_ops;
extern const struct vc_hv_ops vc_hv_namespace_ops;
extern const struct vc_hv_ops vc_hv_qemu_ops;

/* The Lua binding (vc.core.hypervisor). */
struct lua_State;
int luaopen_vc_core_hypervisor(struct lua_State *L);

#endif
