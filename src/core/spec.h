/* spec.h - plain C descriptions handed to the backends: a pod's VM and a
 * container (its process, rootfs, annotations).  The Lua layer validates
 * configs; lspec.c copies them into these structs; backends only read them.
 * All strings and arrays are owned by the struct and released by the
 * matching *_free function, which also accepts a zeroed struct. */
#ifndef VC_SPEC_H
#define VC_SPEC_H

#include <stdbool.h>
#include <stddef.h>

struct vc_kv {
  char *key;
  char *value;
};

struct vc_volume {
  char *tag;
  char *host_path;
  bool read_only;
};

/* A pod volume seen inside a container. */
struct vc_mount {
  char *volume;         /* the pod volume's tag, or NULL: */
  char *source;         /* a folder the agent sees (a host folder shared
                           for this container), or NULL: a tmpfs */
  char *path;           /* where the container sees it */
  bool read_only;
  unsigned tmpfs_size_mib;  /* a tmpfs's size (0: the kernel's default) */
  unsigned tmpfs_mode;      /* ... its root's mode (0: 01777) */
};

/* Limits through cgroups; 0 means none. */
struct vc_resources {
  unsigned memory_mib;
  unsigned pids;
  unsigned cpu_quota_pct;
};

/* What confines a container's processes, as the Lua layer computed it
 * (lua/vc/security.lua): the agent applies exactly this. */
struct vc_rlimit {
  char *type;           /* "RLIMIT_NOFILE", ... */
  long long soft, hard; /* -1: unlimited */
};

struct vc_seccomp_arg {
  unsigned index;
  unsigned long long value, value_two;
  char *op;             /* "SCMP_CMP_EQ", ... */
};

struct vc_seccomp_rule {
  char **names;         /* syscalls */
  char *action;         /* "SCMP_ACT_ERRNO", ... */
  int errno_ret;        /* -1: the profile's default */
  struct vc_seccomp_arg *args;
  size_t n_args;
};

/* An OCI linux.seccomp profile. */
struct vc_seccomp {
  char *default_action;
  int default_errno;    /* -1: none given */
  char **architectures;
  struct vc_seccomp_rule *rules;
  size_t n_rules;
};

struct vc_security {
  bool privileged;
  bool no_new_privileges;
  bool read_only_rootfs;
  char **capabilities;  /* "CAP_CHOWN", ...: bounding, effective, permitted */
  /* Given (an OCI bundle's): exactly these sets, whatever the user; else
   * root has the above as effective and permitted, another user none, and
   * the inheritable and ambient sets are empty. */
  bool cap_sets;
  char **cap_effective, **cap_permitted, **cap_inheritable, **cap_ambient;
  char **masked_paths;
  char **readonly_paths;
  struct vc_rlimit *rlimits;
  size_t n_rlimits;
  struct vc_seccomp *seccomp; /* NULL: no filter */
};

typedef struct vc_process {
  char **argv;          /* NULL-terminated, argv[0] set */
  char **env;           /* NULL-terminated "K=V" strings */
  char *cwd;            /* absolute path */
  char *user;           /* "uid[:gid]" or "name[:group]"; NULL: root */
  char **groups;        /* more supplementary groups (gids or names) */
  bool terminal;        /* a container's first process: a terminal as stdio */
  bool has_oom_score_adj;
  int oom_score_adj;    /* -1000..1000, when has_oom_score_adj */
  bool stdin;           /* ... its stdin a pipe kept for attach */
} vc_process_t;

typedef struct vc_container_spec {
  char *id;
  char *rootfs;
  vc_process_t process;
  struct vc_mount *mounts;
  size_t n_mounts;
  struct vc_resources resources;
  struct vc_security security;
  struct vc_kv *annotations;
  size_t n_annotations;
  char *namespaces_of;  /* a container whose UTS and IPC namespaces it
                           joins (its pod's sandbox), or NULL */
  struct vc_kv *sysctls;  /* "net.ipv4.ip_forward" = "1": namespaced ones */
  size_t n_sysctls;
} vc_container_spec_t;

typedef struct vc_vm_spec {
  char *pod_id;
  char *run_dir;        /* ROOT/run/pods/POD: sockets, console, backend files */
  unsigned cpus;
  unsigned memory_mib;
  char *kernel;         /* NULL: the backend's default */
  char *initrd;
  char *kernel_params;
  unsigned tcg_cache_mib; /* qemu under TCG: the translation cache; 0: the
                           backend's default */
  char *share;          /* how volumes reach the agent: "bind" or "9p" */
  struct vc_volume *volumes;
  size_t n_volumes;
  struct vc_kv *annotations;
  size_t n_annotations;
  char *netns;          /* the pod's network namespace (a path), or NULL */
  char **taps;          /* qemu: a NIC per entry, on that tap device in netns
                           ("": none, a template's); NULL-terminated or NULL */
  char *network;        /* create_pod's "network", as JSON, or NULL */
  size_t network_len;
  char *incoming;       /* qemu: start from this saved VM state (a template) */
  char *ram_file;       /* qemu: guest RAM in this file: with incoming, the
                           template's (mapped copy-on-write), else written
                           through (a template being made) */
  bool foreground;      /* qemu: a child of this process, killed with it */
} vc_vm_spec_t;

void vc_strv_free(char **v);
void vc_process_free(vc_process_t *p);
void vc_security_free(struct vc_security *s);
void vc_container_spec_free(vc_container_spec_t *c);
void vc_vm_spec_free(vc_vm_spec_t *vm);

/* The value of an annotation, or NULL. */
const char *vc_kv_get(const struct vc_kv *kv, size_t n, const char *key);

#endif
