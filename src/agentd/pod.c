/* pod.c - the pod as a whole: its volumes (STATE_DIR/volumes/TAG, which
 * containers bind), and its teardown. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <linux/random.h>
#include <net/if.h>
#include <sys/socket.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agentd.h"
#include "sys/cleanup.h"

bool valid_id(const char *s) {
  if (s == NULL || !((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
                     (*s >= '0' && *s <= '9')))
    return false;
  size_t n = 1;
  for (const char *p = s + 1; *p != '\0'; p++, n++)
    if (n >= 64 || !((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                     (*p >= '0' && *p <= '9') || *p == '_' || *p == '.' ||
                     *p == '-'))
      return false;
  return true;
}

volume_t *pod_volume(agent_t *a, const char *tag) {
  for (volume_t *v = a->volumes; v != NULL; v = v->next)
    if (strcmp(v->tag, tag) == 0)
      return v;
  return NULL;
}

static void volume_free(agent_t *a, volume_t *v) {
  if (v->mounted && umount2(v->dir, MNT_DETACH) < 0)
    agent_log(a, "volume %s: umount %s: %s", v->tag, v->dir, strerror(errno));
  if (rmdir(v->dir) < 0 && errno != ENOENT)
    agent_log(a, "volume %s: rmdir %s: %s", v->tag, v->dir, strerror(errno));
  free(v->dir);
  free(v);
}

static int volume_mount(agent_t *a, const vc_json_t *spec, vc_err_t *err) {
  const char *tag = vc_json_get_string(spec, "tag");
  const char *type = vc_json_get_string(spec, "type");
  const char *source = vc_json_get_string(spec, "source");
  bool ro = vc_json_get_bool(spec, "read_only", false);
  if (!valid_id(tag))
    return vc_fail(err, EINVAL, "volume: bad or missing \"tag\"");
  if (pod_volume(a, tag) != NULL)
    return vc_fail(err, EEXIST, "volume %s: given twice", tag);
  if (source == NULL || *source == '\0')
    return vc_fail(err, EINVAL, "volume %s: no \"source\"", tag);
  bool nine_p = type != NULL && strcmp(type, "9p") == 0;
  if (!nine_p && (type == NULL || strcmp(type, "bind") != 0))
    return vc_fail(err, EINVAL, "volume %s: type \"%s\": not bind or 9p", tag,
                   type ? type : "");

  cleanup_free volume_t *v = calloc(1, sizeof *v);
  if (v == NULL || asprintf(&v->dir, "%s/volumes/%s", a->state_dir, tag) < 0)
    return vc_error(err, ENOMEM, "volume %s", tag);
  snprintf(v->tag, sizeof v->tag, "%s", tag);
  char parent[PATH_MAX];
  snprintf(parent, sizeof parent, "%s/volumes", a->state_dir);
  if ((mkdir(parent, 0750) < 0 && errno != EEXIST) ||
      (mkdir(v->dir, 0750) < 0 && errno != EEXIST)) {
    vc_error(err, errno, "volume %s: mkdir %s", tag, v->dir);
    free(v->dir);
    return -1;
  }
  unsigned long ro_flag = ro ? MS_RDONLY : 0;
  int r = nine_p ? mount(source, v->dir, "9p", ro_flag,
                         "trans=virtio,version=9p2000.L,msize=262144,"
                         "cache=loose")
                 : mount(source, v->dir, NULL, MS_BIND | MS_REC, NULL);
  if (r < 0) {
    vc_error(err, errno, "volume %s: mount %s", tag, source);
    rmdir(v->dir);
    free(v->dir);
    return -1;
  }
  v->mounted = true;
  v->nine_p = nine_p;
  v->next = a->volumes;
  a->volumes = vc_steal_ptr(v);
  /* A bind mount takes read-only only on a remount. */
  if (!nine_p && ro &&
      mount(NULL, a->volumes->dir, NULL,
            MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) < 0)
    return vc_error(err, errno, "volume %s: read-only", tag);
  return 0;
}

#define SHARE_DIR "/run/vc/shared"

/* syncfs of the file system at dir; a failure is logged: the process's
 * exit is reported all the same. */
static void flush_dir(agent_t *a, const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || syncfs(fd) < 0)
    agent_log(a, "share: write back %s: %s", dir, strerror(errno));
  if (fd >= 0)
    close(fd);
}

void pod_flush_shares(agent_t *a) {
  if (a->share_mounted)
    flush_dir(a, SHARE_DIR);
  for (volume_t *v = a->volumes; v != NULL; v = v->next)
    if (v->mounted && v->nine_p)
      flush_dir(a, v->dir);
}

/* The pod's 9p share (the host's folder where it binds each container's
 * rootfs), mounted here rather than by /init: QEMU cannot save a VM as a
 * template while a 9p share is mounted in it. */
static int share_mount(agent_t *a, const char *tag, vc_err_t *err) {
  if (!valid_id(tag))
    return vc_fail(err, EINVAL, "share: bad tag");
  if (a->share_mounted)
    return 0;
  if (mount(tag, SHARE_DIR, "9p", 0,
            "trans=virtio,version=9p2000.L,msize=262144,cache=loose") < 0)
    return vc_error(err, errno, "share %s: mount at %s", tag, SHARE_DIR);
  a->share_mounted = true;
  return 0;
}

static int hexval(char c) {
  return c >= '0' && c <= '9'   ? c - '0'
         : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                : -1;
}

/* A guest started from a template has the template's clock and the
 * template's random state, which every other pod from it shares: take
 * the host's time, and mix the host's random bytes in and reseed. */
static int fresh_guest(agent_t *a, const vc_json_t *msg, vc_err_t *err) {
  if (vc_json_get(msg, "time_sec") != NULL) {
    long long sec, nsec;
    if (vc_json_get_int(msg, "time_sec", &sec) < 0 || sec <= 0 ||
        vc_json_get_int(msg, "time_nsec", &nsec) < 0 || nsec < 0 ||
        nsec >= 1000000000)
      return vc_fail(err, EINVAL, "time_sec, time_nsec: expected seconds "
                     "since 1970 and nanoseconds under a second");
    struct timespec ts = {.tv_sec = (time_t)sec, .tv_nsec = (long)nsec};
    if (clock_settime(CLOCK_REALTIME, &ts) < 0)
      return vc_error(err, errno, "set the clock");
  }
  const char *hex = vc_json_get_string(msg, "entropy");
  if (hex == NULL)
    return 0;
  size_t n = strlen(hex) / 2;
  if (n == 0 || n > 256 || strlen(hex) % 2 != 0)
    return vc_fail(err, EINVAL, "entropy: expected 2 to 512 hex digits");
  struct {
    struct rand_pool_info info;
    unsigned char buf[256];
  } pool = {.info = {.entropy_count = (int)n * 8, .buf_size = (int)n}};
  for (size_t i = 0; i < n; i++) {
    int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
    if (hi < 0 || lo < 0)
      return vc_fail(err, EINVAL, "entropy: not hex");
    pool.buf[i] = (unsigned char)(hi * 16 + lo);
  }
  cleanup_close int fd = open("/dev/urandom", O_WRONLY | O_CLOEXEC);
  if (fd < 0 || ioctl(fd, RNDADDENTROPY, &pool.info) < 0 ||
      ioctl(fd, RNDRESEEDCRNG) < 0)
    return vc_error(err, errno, "entropy: add to /dev/urandom");
  (void)a;
  return 0;
}

int pod_guest_setup(agent_t *a, const vc_json_t *msg, vc_err_t *err) {
  /* Only in a VM's guest: an agent on the host keeps the host's clock. */
  if (a->n_ports == 0)
    return 0;
  if (fresh_guest(a, msg, err) < 0)
    return -1;
  const char *share = vc_json_get_string(msg, "share");
  return share != NULL ? share_mount(a, share, err) : 0;
}

/* The pod's network namespace (the VM's, or the namespace backend's own)
 * starts with its loopback down: bring it up, as every runtime does, so
 * that containers reach each other and themselves on 127.0.0.1. */
static int loopback_up(vc_err_t *err) {
  cleanup_close int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0)
    return vc_error(err, errno, "loopback: socket");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
  if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
    return vc_error(err, errno, "loopback: get flags");
  if (ifr.ifr_flags & IFF_UP)
    return 0;
  ifr.ifr_flags |= IFF_UP;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
    return vc_error(err, errno, "loopback: bring up");
  return 0;
}

int pod_create(agent_t *a, const char *pod_id, const vc_json_t *volumes,
               const vc_json_t *network, vc_err_t *err) {
  if (a->pod_id != NULL)
    return vc_fail(err, EEXIST, "pod %s: already created", a->pod_id);
  if (loopback_up(err) < 0)
    return -1;
  if (volumes != NULL && volumes->type != VC_JSON_ARRAY)
    return vc_fail(err, EINVAL, "\"volumes\" must be a list");
  if (net_setup(a, network, err) < 0)
    return -1;
  for (size_t i = 0; volumes != NULL && i < volumes->n; i++)
    if (volume_mount(a, volumes->items[i], err) < 0) {
      /* All or nothing. */
      net_teardown(a);
      while (a->volumes != NULL) {
        volume_t *v = a->volumes;
        a->volumes = v->next;
        volume_free(a, v);
      }
      return -1;
    }
  a->pod_id = strdup(pod_id != NULL ? pod_id : "");
  agent_log(a, "pod %s: created", a->pod_id ? a->pod_id : "?");
  return 0;
}

void pod_destroy(agent_t *a) {
  /* Kill everything first, so no process holds a volume or a cgroup. */
  for (ctr_t *c = a->ctrs; c != NULL; c = c->next)
    ctr_kill(a, c);
  while (a->ctrs != NULL)
    ctr_free(a, a->ctrs);
  while (a->volumes != NULL) {
    volume_t *v = a->volumes;
    a->volumes = v->next;
    volume_free(a, v);
  }
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s/volumes", a->state_dir);
  rmdir(dir);
  if (a->share_mounted && umount2(SHARE_DIR, MNT_DETACH) < 0)
    agent_log(a, "share: umount %s: %s", SHARE_DIR, strerror(errno));
  a->share_mounted = false;
  net_teardown(a);
  cgroup_remove_parent(a);
  free(a->pod_id);
  a->pod_id = NULL;
  a->changed = true;
}
