/* storage.h - the pod store: where pods and containers keep their records.
 *
 * Two trees, one for configuration and one for runtime state:
 *     LIB/pods/POD/config.json             LIB/pods/POD/CTR/config.json
 *     RUN/pods/POD/{state,network,hypervisor,agent}.json, RUN/pods/POD/lock
 *     RUN/pods/POD/CTR/{state,process,mounts,devices}.json
 * (LIB = ROOT/lib and RUN = ROOT/run when the store is opened on one root.)
 * Folders are 0750 and files 0640 whatever the umask.  Records are replaced
 * crash-atomically: a reader sees the old or the new bytes, never a mix.
 * A pod is locked with flock on RUN/pods/POD/lock; listing never locks. */
#ifndef VC_STORAGE_H
#define VC_STORAGE_H

#include <stddef.h>

#include "sys/error.h"

#define VC_ID_MAX 64                    /* bytes in a pod or container ID */
#define VC_STORE_DIR_MAX 1024           /* bytes in a tree's folder, NUL included */
#define VC_STORE_RECORD_MAX (16u << 20) /* bytes in one record */

typedef struct vc_store {
  char root[VC_STORE_DIR_MAX];  /* "" when opened on two folders */
  char lib[VC_STORE_DIR_MAX];   /* holds pods/POD/config.json */
  char run[VC_STORE_DIR_MAX];   /* holds pods/POD/state.json and the lock */
} vc_store_t;

/* A list of names owned by the list; vc_names_free accepts a zeroed one. */
typedef struct vc_names {
  char **v;
  size_t n, cap;
} vc_names_t;

void vc_names_free(vc_names_t *names);

/* Whether id is a valid ID of kind "pod" or "container":
 * [A-Za-z0-9][A-Za-z0-9_.-]{0,63}, and for a container not one of the names
 * a pod folder holds (lock, state.json...).  Reads id only up to its NUL
 * and never more than VC_ID_MAX + 1 bytes.  EINVAL, naming the ID. */
int vc_id_check(const char *kind, const char *id, vc_err_t *err);

/* Set up s; touches nothing on disk.  With run NULL, root holds both trees
 * (root/lib, root/run); otherwise root is the LIB folder and run the RUN
 * folder.  Both must be absolute paths. */
int vc_store_init(vc_store_t *s, const char *root, const char *run,
                  vc_err_t *err);

/* The pod's (or the container's, ctr not NULL) folders, in buffers of
 * at least PATH_MAX bytes. */
int vc_store_paths(const vc_store_t *s, const char *pod, const char *ctr,
                   char *config_dir, char *run_dir, vc_err_t *err);

/* Create the pod's two folders and its lock file; *lock_fd gets the lock,
 * held exclusively, so nobody acts on the pod before the creator is done.
 * EEXIST when the pod exists. */
int vc_store_create_pod(const vc_store_t *s, const char *pod, int *lock_fd,
                        vc_err_t *err);

/* Lock the pod (exclusive or shared), polling until timeout_s (0: try once,
 * INFINITY: forever); *lock_fd gets the lock, released by closing it.
 * EWOULDBLOCK on timeout, ENOENT when the pod does not exist.  Recreates
 * the run folder and lock file of a pod that lost them. */
int vc_store_lock(const vc_store_t *s, const char *pod, int exclusive,
                  double timeout_s, int *lock_fd, vc_err_t *err);

int vc_store_create_container(const vc_store_t *s, const char *pod,
                              const char *ctr, vc_err_t *err);

/* Whether a record name (without .json) exists at the pod level (ctr false)
 * or the container level. */
int vc_store_record_check(int ctr, const char *name, vc_err_t *err);

/* Replace the record NAME.json of the pod (ctr NULL) or the container. */
int vc_store_write(const vc_store_t *s, const char *pod, const char *ctr,
                   const char *name, const void *data, size_t len,
                   vc_err_t *err);

/* Read a whole record into *data (NUL-terminated, freed by the caller).
 * ENOENT when missing, EFBIG beyond VC_STORE_RECORD_MAX. */
int vc_store_read(const vc_store_t *s, const char *pod, const char *ctr,
                  const char *name, char **data, size_t *len, vc_err_t *err);

/* Sorted IDs found in either tree; an empty list when there are none. */
int vc_store_pods(const vc_store_t *s, vc_names_t *out, vc_err_t *err);
int vc_store_containers(const vc_store_t *s, const char *pod,
                        vc_names_t *out, vc_err_t *err);
/* What a status reads of a pod, in one pass and without a lock (each
 * record is replaced whole): its config.json, state.json and
 * hypervisor.json (NULL when missing), the containers that have a RUN
 * folder (every container whose creation completed: its state.json is
 * there), sorted, and the state.json of each (NULL when missing). */
typedef struct vc_snapshot {
  char *config, *state, *hypervisor;
  size_t config_len, state_len, hypervisor_len;
  vc_names_t containers;
  char **ctr_states;       /* one per container */
  size_t *ctr_state_lens;
} vc_snapshot_t;

/* out is zeroed first, and freed with vc_snapshot_free whatever the result
 * (it accepts a zeroed one). */
int vc_store_snapshot(const vc_store_t *s, const char *pod,
                      vc_snapshot_t *out, vc_err_t *err);
void vc_snapshot_free(vc_snapshot_t *snap);
/* The snapshots of the n pods named in pods, in parallel threads: for
 * each i whose failed[i] is 0 on entry, snaps[i] as vc_store_snapshot
 * gives it, or failed[i] set and errs[i] why (snaps[i] zeroed on entry,
 * to free either way). */
void vc_store_snapshots(const vc_store_t *s, const char *const *pods,
                        size_t n, vc_snapshot_t *snaps, vc_err_t *errs,
                        int *failed);

/* 1 when the pod (or container) has a folder in either tree, 0 when not. */
int vc_store_exists(const vc_store_t *s, const char *pod, const char *ctr,
                    vc_err_t *err);

/* Remove both trees, whatever parts are there (never following symlinks);
 * ENOENT when there was nothing at all. */
int vc_store_delete_pod(const vc_store_t *s, const char *pod, vc_err_t *err);
int vc_store_delete_container(const vc_store_t *s, const char *pod,
                              const char *ctr, vc_err_t *err);

#endif
