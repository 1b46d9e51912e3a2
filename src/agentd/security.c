/* security.c - what confines a container's processes: capabilities,
 * no_new_privs, the seccomp filter, rlimits, masked and read-only paths,
 * a read-only rootfs.
 *
 * The host decides (lua/vc/security.lua computes the effective set from
 * the container's config and vc's defaults); the agent only applies it, in
 * this order, in each process of the container (its init and every exec):
 *
 *   after the mounts:   mask paths (/dev/null or an empty read-only tmpfs
 *                       over them), make paths read-only, make / read-only
 *   before the user:    rlimits (raising a hard limit needs
 *                       CAP_SYS_RESOURCE, which may go next)
 *   around setuid:      the capability bounding set is cut before it
 *                       (CAP_SETPCAP is needed), the ambient set cleared,
 *                       and after it the effective, permitted and
 *                       inheritable sets set: as given (an OCI bundle's
 *                       sets, kept across setuid), or else the bounding
 *                       set for root and nothing for another user, as
 *                       the kernel leaves them; then the ambient set
 *   last, before execve: no_new_privs, then the seccomp filter, so that
 *                       nothing of the agent's own setup is filtered
 *
 * The seccomp filter is compiled once per container, when it is created,
 * by libseccomp (the OCI profile's rules, syscalls this kernel's
 * architecture does not know skipped, as runc does), and each process
 * loads the compiled BPF: an exec pays no compilation.  Without
 * no_new_privs the kernel wants CAP_SYS_ADMIN to load a filter, so the
 * filter is then loaded before the capabilities are dropped, as runc does. */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "agentd.h"
#include "sys/cleanup.h"

/* Capability names by number (linux/capability.h, kernel 5.9+). */
static const char *const cap_names[] = {
    "CAP_CHOWN",            "CAP_DAC_OVERRIDE",   "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",           "CAP_FSETID",         "CAP_KILL",
    "CAP_SETGID",           "CAP_SETUID",         "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",  "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",        "CAP_NET_RAW",        "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",        "CAP_SYS_MODULE",     "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",       "CAP_SYS_PTRACE",     "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",        "CAP_SYS_BOOT",       "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",     "CAP_SYS_TIME",       "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",            "CAP_LEASE",          "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",    "CAP_SETFCAP",        "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",        "CAP_SYSLOG",         "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",    "CAP_AUDIT_READ",     "CAP_PERFMON",
    "CAP_BPF",              "CAP_CHECKPOINT_RESTORE",
};
#define N_CAPS (sizeof cap_names / sizeof cap_names[0])

static const struct {
  const char *name;
  int resource;
} rlimit_names[] = {
    {"RLIMIT_AS", RLIMIT_AS},         {"RLIMIT_CORE", RLIMIT_CORE},
    {"RLIMIT_CPU", RLIMIT_CPU},       {"RLIMIT_DATA", RLIMIT_DATA},
    {"RLIMIT_FSIZE", RLIMIT_FSIZE},   {"RLIMIT_LOCKS", RLIMIT_LOCKS},
    {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK}, {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
    {"RLIMIT_NICE", RLIMIT_NICE},     {"RLIMIT_NOFILE", RLIMIT_NOFILE},
    {"RLIMIT_NPROC", RLIMIT_NPROC},   {"RLIMIT_RSS", RLIMIT_RSS},
    {"RLIMIT_RTPRIO", RLIMIT_RTPRIO}, {"RLIMIT_RTTIME", RLIMIT_RTTIME},
    {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING}, {"RLIMIT_STACK", RLIMIT_STACK},
};

/* --- parsing (in the agent, at create_container) ----------------------- */

static int cap_number(const char *name) {
  for (size_t i = 0; i < N_CAPS; i++)
    if (strcmp(cap_names[i], name) == 0)
      return (int)i;
  return -1;
}

/* A list of strings, copied into *out (NULL-terminated). */
static int string_list(const vc_json_t *v, const char *key, char ***out,
                       vc_err_t *err) {
  const vc_json_t *list = vc_json_get(v, key);
  if (list == NULL || list->type != VC_JSON_ARRAY)
    return vc_fail(err, EINVAL, "\"%s\" must be a list of strings", key);
  char **s = calloc(list->n + 1, sizeof *s);
  if (s == NULL)
    return vc_error(err, ENOMEM, "%s", key);
  *out = s;
  for (size_t i = 0; i < list->n; i++) {
    const vc_json_t *item = list->items[i];
    if (item->type != VC_JSON_STRING)
      return vc_fail(err, EINVAL, "\"%s\" must be a list of strings", key);
    if ((s[i] = strdup(item->string)) == NULL)
      return vc_error(err, ENOMEM, "%s", key);
  }
  return 0;
}

static int paths(const vc_json_t *v, const char *key, char ***out,
                 vc_err_t *err) {
  if (string_list(v, key, out, err) < 0)
    return -1;
  for (char **p = *out; *p != NULL; p++)
    if ((*p)[0] != '/')
      return vc_fail(err, EINVAL, "\"%s\": %s is not an absolute path", key,
                     *p);
  return 0;
}

static int parse_rlimits(const vc_json_t *v, sec_t *s, vc_err_t *err) {
  const vc_json_t *list = vc_json_get(v, "rlimits");
  if (list == NULL || list->type != VC_JSON_ARRAY)
    return vc_fail(err, EINVAL, "\"rlimits\" must be a list");
  s->rlimits = calloc(list->n + 1, sizeof *s->rlimits);
  if (s->rlimits == NULL)
    return vc_error(err, ENOMEM, "rlimits");
  for (size_t i = 0; i < list->n; i++) {
    const vc_json_t *item = list->items[i];
    const char *type = vc_json_get_string(item, "type");
    long long soft, hard;
    size_t k = 0;
    while (type != NULL && k < sizeof rlimit_names / sizeof rlimit_names[0] &&
           strcmp(rlimit_names[k].name, type) != 0)
      k++;
    if (type == NULL || k == sizeof rlimit_names / sizeof rlimit_names[0])
      return vc_fail(err, EINVAL, "rlimit %zu: unknown type \"%s\"", i + 1,
                     type != NULL ? type : "");
    /* -1 is unlimited */
    if (vc_json_get_int(item, "soft", &soft) < 0 ||
        vc_json_get_int(item, "hard", &hard) < 0 || soft < -1 || hard < -1 ||
        (hard != -1 && (soft == -1 || soft > hard)))
      return vc_fail(err, EINVAL, "rlimit %s: soft and hard must be integers "
                     "(-1: unlimited), soft at most hard", type);
    s->rlimits[s->n_rlimits++] = (struct sec_rlimit){
        .resource = rlimit_names[k].resource,
        .soft = soft < 0 ? RLIM_INFINITY : (rlim_t)soft,
        .hard = hard < 0 ? RLIM_INFINITY : (rlim_t)hard};
  }
  return 0;
}

static const char *or_empty(const char *s) { return s != NULL ? s : ""; }

static int scmp_action(const char *name, long long errno_ret, uint32_t *out) {
  if (name == NULL)
    return -1;
  static const struct {
    const char *name;
    uint32_t action;
  } actions[] = {
      {"SCMP_ACT_ALLOW", SCMP_ACT_ALLOW},
      {"SCMP_ACT_KILL", SCMP_ACT_KILL},
      {"SCMP_ACT_KILL_THREAD", SCMP_ACT_KILL_THREAD},
      {"SCMP_ACT_KILL_PROCESS", SCMP_ACT_KILL_PROCESS},
      {"SCMP_ACT_TRAP", SCMP_ACT_TRAP},
      {"SCMP_ACT_LOG", SCMP_ACT_LOG},
  };
  if (strcmp(name, "SCMP_ACT_ERRNO") == 0) {
    *out = SCMP_ACT_ERRNO((uint16_t)errno_ret);
    return 0;
  }
  if (strcmp(name, "SCMP_ACT_TRACE") == 0) {
    *out = SCMP_ACT_TRACE((uint16_t)errno_ret);
    return 0;
  }
  for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++)
    if (strcmp(actions[i].name, name) == 0) {
      *out = actions[i].action;
      return 0;
    }
  return -1;
}

static int scmp_op(const char *name, enum scmp_compare *out) {
  static const struct {
    const char *name;
    enum scmp_compare op;
  } ops[] = {
      {"SCMP_CMP_NE", SCMP_CMP_NE}, {"SCMP_CMP_LT", SCMP_CMP_LT},
      {"SCMP_CMP_LE", SCMP_CMP_LE}, {"SCMP_CMP_EQ", SCMP_CMP_EQ},
      {"SCMP_CMP_GE", SCMP_CMP_GE}, {"SCMP_CMP_GT", SCMP_CMP_GT},
      {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ},
  };
  for (size_t i = 0; name != NULL && i < sizeof ops / sizeof ops[0]; i++)
    if (strcmp(ops[i].name, name) == 0) {
      *out = ops[i].op;
      return 0;
    }
  return -1;
}

static void ctx_release(scmp_filter_ctx *ctx) {
  if (*ctx != NULL)
    seccomp_release(*ctx);
}

/* One rule of the profile, added for each of its syscalls that this
 * kernel's architectures know. */
static int add_rule(scmp_filter_ctx ctx, uint32_t def, const vc_json_t *rule,
                    long long def_errno, size_t index, vc_err_t *err) {
  long long errno_ret = def_errno;
  vc_json_get_int(rule, "errnoRet", &errno_ret);
  uint32_t action;
  if (errno_ret < 0 || errno_ret > 4095 ||
      scmp_action(vc_json_get_string(rule, "action"), errno_ret, &action) < 0)
    return vc_fail(err, EINVAL, "seccomp: syscalls[%zu]: unknown action \"%s\"",
                   index, or_empty(vc_json_get_string(rule, "action")));
  const vc_json_t *names = vc_json_get(rule, "names");
  const vc_json_t *args = vc_json_get(rule, "args");
  if (names == NULL || names->type != VC_JSON_ARRAY)
    return vc_fail(err, EINVAL, "seccomp: syscalls[%zu]: no \"names\" list",
                   index);
  struct scmp_arg_cmp cmp[6];
  unsigned n_cmp = 0;
  if (args != NULL && args->type != VC_JSON_NULL) {
    if (args->type != VC_JSON_ARRAY || args->n > 6)
      return vc_fail(err, EINVAL, "seccomp: syscalls[%zu]: \"args\" must be "
                     "a list of at most 6", index);
    for (size_t i = 0; i < args->n; i++) {
      const vc_json_t *a = args->items[i];
      long long arg, value, value_two = 0;
      enum scmp_compare op;
      if (vc_json_get_int(a, "index", &arg) < 0 || arg < 0 || arg > 5 ||
          vc_json_get_int(a, "value", &value) < 0 || value < 0 ||
          (vc_json_get(a, "valueTwo") != NULL &&
           (vc_json_get_int(a, "valueTwo", &value_two) < 0 || value_two < 0)) ||
          scmp_op(vc_json_get_string(a, "op"), &op) < 0)
        return vc_fail(err, EINVAL, "seccomp: syscalls[%zu].args[%zu]: needs "
                       "index 0-5, value, an SCMP_CMP_* op", index, i);
      cmp[n_cmp++] = (struct scmp_arg_cmp){
          .arg = (unsigned)arg, .op = op, .datum_a = (scmp_datum_t)value,
          .datum_b = (scmp_datum_t)value_two};
    }
  }
  if (action == def)
    return 0; /* as runc: a rule with the default action changes nothing */
  for (size_t i = 0; i < names->n; i++) {
    if (names->items[i]->type != VC_JSON_STRING)
      return vc_fail(err, EINVAL, "seccomp: syscalls[%zu]: names must be "
                     "strings", index);
    const char *name = names->items[i]->string;
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR)
      continue; /* not a syscall of this kernel's architectures */
    int r = seccomp_rule_add_array(ctx, action, nr, n_cmp, cmp);
    if (r < 0)
      return vc_error(err, -r, "seccomp: syscalls[%zu]: %s", index, name);
  }
  return 0;
}

/* The OCI seccomp object v, compiled to BPF in s->bpf. */
static int compile_seccomp(const vc_json_t *v, sec_t *s, vc_err_t *err) {
  long long def_errno = EPERM;
  vc_json_get_int(v, "defaultErrnoRet", &def_errno);
  uint32_t def;
  if (def_errno < 0 || def_errno > 4095 ||
      scmp_action(vc_json_get_string(v, "defaultAction"), def_errno, &def) < 0)
    return vc_fail(err, EINVAL, "seccomp: unknown defaultAction \"%s\"",
                   or_empty(vc_json_get_string(v, "defaultAction")));
  __attribute__((cleanup(ctx_release))) scmp_filter_ctx ctx = seccomp_init(def);
  if (ctx == NULL)
    return vc_error(err, ENOMEM, "seccomp");
  /* no_new_privs is ours to set (before execve), not libseccomp's. */
  if (seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0) < 0)
    return vc_fail(err, EINVAL, "seccomp: attributes");
  const vc_json_t *arches = vc_json_get(v, "architectures");
  for (size_t i = 0; arches != NULL && arches->type == VC_JSON_ARRAY &&
                     i < arches->n; i++) {
    const vc_json_t *a = arches->items[i];
    if (a->type != VC_JSON_STRING || strncmp(a->string, "SCMP_ARCH_", 10) != 0)
      return vc_fail(err, EINVAL, "seccomp: architectures must be SCMP_ARCH_*");
    char lower[32];
    size_t n = 0;
    for (const char *p = a->string + 10; *p != '\0' && n < sizeof lower - 1; p++)
      lower[n++] = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
    lower[n] = '\0';
    uint32_t arch = seccomp_arch_resolve_name(lower);
    if (arch == 0)
      continue; /* unknown to this libseccomp */
    int r = seccomp_arch_add(ctx, arch);
    if (r < 0 && r != -EEXIST)
      return vc_error(err, -r, "seccomp: architecture %s", a->string);
  }
  const vc_json_t *rules = vc_json_get(v, "syscalls");
  if (rules != NULL && rules->type != VC_JSON_ARRAY &&
      rules->type != VC_JSON_NULL)
    return vc_fail(err, EINVAL, "seccomp: \"syscalls\" must be a list");
  for (size_t i = 0; rules != NULL && rules->type == VC_JSON_ARRAY &&
                     i < rules->n; i++)
    if (add_rule(ctx, def, rules->items[i], def_errno, i + 1, err) < 0)
      return -1;
  /* The compiled program, through a memfd. */
  cleanup_close int fd = memfd_create("seccomp", MFD_CLOEXEC);
  if (fd < 0)
    return vc_error(err, errno, "seccomp: memfd");
  int r = seccomp_export_bpf(ctx, fd);
  if (r < 0)
    return vc_error(err, -r, "seccomp: export");
  off_t size = lseek(fd, 0, SEEK_END);
  if (size <= 0 || size % (off_t)sizeof(struct sock_filter) != 0 ||
      size > (off_t)(BPF_MAXINSNS * sizeof(struct sock_filter)))
    return vc_fail(err, E2BIG, "seccomp: a filter of %lld bytes",
                   (long long)size);
  s->bpf = malloc((size_t)size);
  if (s->bpf == NULL)
    return vc_error(err, ENOMEM, "seccomp");
  if (pread(fd, s->bpf, (size_t)size, 0) != (ssize_t)size)
    return vc_error(err, errno, "seccomp: read back");
  s->bpf_len = (size_t)size / sizeof(struct sock_filter);
  return 0;
}

static void strv_free(char **v) {
  for (char **p = v; p != NULL && *p != NULL; p++)
    free(*p);
  free(v);
}

static void strv_freep(char ***v) { strv_free(*v); }

/* The names in list as a bit mask. */
static int cap_mask(char *const *list, uint64_t *mask, vc_err_t *err) {
  *mask = 0;
  for (char *const *c = list; c != NULL && *c != NULL; c++) {
    int n = cap_number(*c);
    if (n < 0)
      return vc_fail(err, EINVAL, "unknown capability \"%s\"", *c);
    *mask |= 1ull << n;
  }
  return 0;
}

int security_parse(const vc_json_t *v, sec_t *s, vc_err_t *err) {
  *s = (sec_t){0};
  if (v == NULL || v->type != VC_JSON_OBJECT)
    return vc_fail(err, EINVAL, "no object \"security\"");
  s->privileged = vc_json_get_bool(v, "privileged", false);
  s->no_new_privs = vc_json_get_bool(v, "no_new_privileges", true);
  s->read_only_rootfs = vc_json_get_bool(v, "read_only_rootfs", false);
  __attribute__((cleanup(strv_freep))) char **caps = NULL;
  if (string_list(v, "capabilities", &caps, err) < 0 ||
      paths(v, "masked_paths", &s->masked, err) < 0 ||
      paths(v, "readonly_paths", &s->readonly, err) < 0 ||
      parse_rlimits(v, s, err) < 0)
    return vc_error_prefix(err, "security");
  if (cap_mask(caps, &s->caps, err) < 0)
    return vc_error_prefix(err, "security");
  const vc_json_t *sets = vc_json_get(v, "capability_sets");
  if (sets != NULL && sets->type != VC_JSON_NULL) {
    static const char *const names[] = {"effective", "permitted",
                                        "inheritable", "ambient"};
    uint64_t *masks[] = {&s->effective, &s->permitted, &s->inheritable,
                         &s->ambient};
    s->sets = true;
    for (size_t i = 0; i < 4; i++) {
      __attribute__((cleanup(strv_freep))) char **set = NULL;
      if (string_list(sets, names[i], &set, err) < 0 ||
          cap_mask(set, masks[i], err) < 0)
        return vc_error_prefix(err, "security: capability_sets");
    }
  }
  const vc_json_t *seccomp = vc_json_get(v, "seccomp");
  if (seccomp != NULL && seccomp->type == VC_JSON_OBJECT &&
      compile_seccomp(seccomp, s, err) < 0)
    return vc_error_prefix(err, "security");
  if (seccomp != NULL && seccomp->type != VC_JSON_OBJECT &&
      seccomp->type != VC_JSON_NULL)
    return vc_fail(err, EINVAL, "security: \"seccomp\" must be an object or null");
  return 0;
}

void security_free(sec_t *s) {
  strv_free(s->masked);
  strv_free(s->readonly);
  free(s->rlimits);
  free(s->bpf);
  *s = (sec_t){0};
}

/* --- applying (in the container's processes) -------------------------- */

static int mask(const char *path, vc_err_t *err) {
  struct stat st;
  if (lstat(path, &st) < 0)
    return errno == ENOENT ? 0 : vc_error(err, errno, "mask %s", path);
  int r = S_ISDIR(st.st_mode)
              ? mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV |
                                                  MS_NOEXEC, "size=0,mode=555")
              : mount("/dev/null", path, NULL, MS_BIND, NULL);
  if (r < 0)
    return vc_error(err, errno, "mask %s", path);
  return 0;
}

/* A bind of path onto itself, remounted read-only with the flags it had. */
static int read_only(const char *path, bool bind, vc_err_t *err) {
  struct stat st;
  if (lstat(path, &st) < 0)
    return errno == ENOENT ? 0 : vc_error(err, errno, "read-only %s", path);
  if (bind && mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0)
    return vc_error(err, errno, "read-only %s", path);
  /* The mount's flags, from its folder for anything else: a 9p server
   * opens what it is asked the statfs of, and a device node may not open. */
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s", path);
  if (!S_ISDIR(st.st_mode)) {
    char *slash = strrchr(dir, '/');
    if (slash != NULL)
      slash[slash == dir ? 1 : 0] = '\0';
  }
  struct statfs vfs;
  if (statfs(dir, &vfs) < 0)
    return vc_error(err, errno, "read-only %s", path);
  unsigned long keep = 0;
  static const struct {
    unsigned long vfs, ms;
  } flags[] = {{ST_NOSUID, MS_NOSUID},   {ST_NODEV, MS_NODEV},
               {ST_NOEXEC, MS_NOEXEC},   {ST_NOATIME, MS_NOATIME},
               {ST_NODIRATIME, MS_NODIRATIME}, {ST_RELATIME, MS_RELATIME}};
  for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
    if ((unsigned long)vfs.f_flags & flags[i].vfs)
      keep |= flags[i].ms;
  if (mount(NULL, path, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | keep, NULL) < 0)
    return vc_error(err, errno, "read-only %s", path);
  return 0;
}

int security_mounts(const sec_t *s, vc_err_t *err) {
  for (char **p = s->masked; p != NULL && *p != NULL; p++)
    if (mask(*p, err) < 0)
      return -1;
  for (char **p = s->readonly; p != NULL && *p != NULL; p++)
    if (read_only(*p, true, err) < 0)
      return -1;
  if (s->read_only_rootfs && read_only("/", false, err) < 0)
    return -1;
  return 0;
}

int security_rlimits(const sec_t *s, vc_err_t *err) {
  for (size_t i = 0; i < s->n_rlimits; i++) {
    struct rlimit rl = {.rlim_cur = s->rlimits[i].soft,
                        .rlim_max = s->rlimits[i].hard};
    if (setrlimit(s->rlimits[i].resource, &rl) < 0)
      return vc_error(err, errno, "setrlimit %d", s->rlimits[i].resource);
  }
  return 0;
}

static int load_seccomp(const sec_t *s, vc_err_t *err) {
  if (s->bpf == NULL)
    return 0;
  struct sock_fprog prog = {.len = (unsigned short)s->bpf_len,
                            .filter = s->bpf};
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
    return vc_error(err, errno, "seccomp");
  return 0;
}

int security_before_user(const sec_t *s, vc_err_t *err) {
  if (s->privileged)
    return 0;
  /* Without no_new_privs the filter needs CAP_SYS_ADMIN: load it while
   * the process still has it (its rules then see the rest of the setup). */
  if (!s->no_new_privs && load_seccomp(s, err) < 0)
    return -1;
  for (int cap = 0; cap < 64; cap++)
    if (!(s->caps & (1ull << cap)) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 &&
        errno != EINVAL)
      return vc_error(err, errno, "drop %s from the bounding set",
                      cap < (int)N_CAPS ? cap_names[cap] : "a capability");
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 &&
      errno != EINVAL)
    return vc_error(err, errno, "clear the ambient capabilities");
  /* Given sets survive a setuid to another user (as runc's). */
  if (s->sets && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
    return vc_error(err, errno, "keep the capabilities");
  return 0;
}

int security_after_user(const sec_t *s, vc_err_t *err) {
  if (s->privileged)
    return 0;
  /* Without given sets root keeps the bounding set; another user has
   * none left after setuid, and this takes the inheritable set away from
   * both. */
  uint64_t eff = geteuid() == 0 ? s->caps : 0, perm = eff, inh = 0;
  if (s->sets) {
    eff = s->effective & s->caps;
    perm = s->permitted & s->caps;
    inh = s->inheritable & s->caps;
  }
  struct __user_cap_header_struct head = {.version = _LINUX_CAPABILITY_VERSION_3};
  struct __user_cap_data_struct data[2] = {
      {.effective = (uint32_t)eff, .permitted = (uint32_t)perm,
       .inheritable = (uint32_t)inh},
      {.effective = (uint32_t)(eff >> 32), .permitted = (uint32_t)(perm >> 32),
       .inheritable = (uint32_t)(inh >> 32)},
  };
  if (syscall(SYS_capset, &head, data) < 0)
    return vc_error(err, errno, "set the capabilities");
  /* The ambient set: only what is permitted and inheritable (the kernel's
   * rule; the host checked it). */
  for (int cap = 0; s->sets && cap < 64; cap++)
    if ((s->ambient & perm & inh & (1ull << cap)) &&
        prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0)
      return vc_error(err, errno, "raise %s in the ambient set",
                      cap < (int)N_CAPS ? cap_names[cap] : "a capability");
  return 0;
}

int security_before_exec(const sec_t *s, vc_err_t *err) {
  if (s->privileged)
    return 0;
  if (s->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    return vc_error(err, errno, "no_new_privs");
  if (s->no_new_privs && load_seccomp(s, err) < 0)
    return -1;
  return 0;
}

/* The seccomp mode and no_new_privs of pid, and its effective set as a hex
 * string, from /proc/PID/status (as the kernel has them). */
int security_status(pid_t pid, char *cap_eff, size_t size, int *seccomp,
                    int *no_new_privs) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  cleanup_file FILE *f = fopen(path, "re");
  if (f == NULL)
    return -1;
  *seccomp = *no_new_privs = -1;
  cap_eff[0] = '\0';
  while (fgets(line, sizeof line, f) != NULL) {
    char hex[32];
    if (sscanf(line, "CapEff: %31s", hex) == 1)
      snprintf(cap_eff, size, "%s", hex);
    else if (sscanf(line, "Seccomp: %d", seccomp) == 1)
      continue;
    else if (sscanf(line, "NoNewPrivs: %d", no_new_privs) == 1)
      continue;
  }
  return cap_eff[0] != '\0' ? 0 : -1;
}
