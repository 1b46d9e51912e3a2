/* net.c - the pod's network as its containers see it: the hostname and
 * the files /etc/resolv.conf, /etc/hosts and /etc/hostname, which every
 * container binds from STATE_DIR/etc (create_pod's "network",
 * docs/agent-protocol.md).  The host made the network itself (CNI); in a
 * VM, the guest's interfaces are configured here too (net_guest). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <net/route.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agentd.h"
#include "sys/cleanup.h"

const char *const net_files[NET_FILES] = {"resolv.conf", "hosts", "hostname"};
static const char *const net_keys[NET_FILES] = {"resolv_conf", "hosts",
                                                "hostname_file"};

#define NET_FILE_MAX (64 * 1024)

static int write_file(const char *path, const char *data, size_t len,
                      vc_err_t *err) {
  cleanup_close int fd =
      open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0)
    return vc_error(err, errno, "%s", path);
  while (len > 0) {
    ssize_t n = write(fd, data, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return vc_error(err, errno, "write %s", path);
    data += n;
    len -= (size_t)n;
  }
  return 0;
}

/* A hostname as sethostname and RFC 1123 take it (and '_', as engines'
 * names have it). */
static bool valid_hostname(const char *s) {
  size_t n = s != NULL ? strlen(s) : 0;
  if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
    return false;
  for (const char *p = s; *p != '\0'; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
          (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_'))
      return false;
  return true;
}

void net_teardown(agent_t *a) {
  for (int i = 0; i < NET_FILES; i++) {
    if (!a->net_file[i])
      continue;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/etc/%s", a->state_dir, net_files[i]);
    if (unlink(path) < 0 && errno != ENOENT)
      agent_log(a, "network: unlink %s: %s", path, strerror(errno));
    a->net_file[i] = false;
  }
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s/etc", a->state_dir);
  rmdir(dir);
  free(a->hostname);
  a->hostname = NULL;
}

int net_setup(agent_t *a, const vc_json_t *net, vc_err_t *err) {
  if (net == NULL || net->type == VC_JSON_NULL)
    return 0;
  if (net->type != VC_JSON_OBJECT)
    return vc_fail(err, EINVAL, "\"network\" must be an object");
  const char *host = vc_json_get_string(net, "hostname");
  if (host != NULL && !valid_hostname(host))
    return vc_fail(err, EINVAL, "network: bad hostname \"%s\"", host);
  for (int i = 0; i < NET_FILES; i++) {
    const vc_json_t *v = vc_json_get(net, net_keys[i]);
    if (v != NULL && (v->type != VC_JSON_STRING || v->len > NET_FILE_MAX))
      return vc_fail(err, EINVAL, "network: \"%s\" must be a string of at "
                     "most %d bytes", net_keys[i], NET_FILE_MAX);
  }
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s/etc", a->state_dir);
  if (mkdir(dir, 0755) < 0 && errno != EEXIST)
    return vc_error(err, errno, "network: mkdir %s", dir);
  for (int i = 0; i < NET_FILES; i++) {
    const vc_json_t *v = vc_json_get(net, net_keys[i]);
    if (v == NULL)
      continue;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/etc/%s", a->state_dir, net_files[i]);
    if (write_file(path, v->string, v->len, err) < 0) {
      net_teardown(a);
      return vc_error_prefix(err, "network");
    }
    a->net_file[i] = true;
  }
  if (host != NULL && (a->hostname = strdup(host)) == NULL) {
    net_teardown(a);
    return vc_fail(err, ENOMEM, "network");
  }
  if (net_guest(a, vc_json_get(net, "interfaces"), vc_json_get(net, "routes"),
                err) < 0) {
    net_teardown(a);
    return -1;
  }
  return 0;
}

/* --- a VM's interfaces (ioctl: IPv4 addresses and routes) ------------- */

static int parse_mac(const char *s, unsigned char mac[6]) {
  unsigned v[6];
  char end;
  if (s == NULL || sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2],
                          &v[3], &v[4], &v[5], &end) != 6)
    return -1;
  for (int i = 0; i < 6; i++)
    mac[i] = (unsigned char)v[i];
  return 0;
}

/* "A.B.C.D/N" (N optional: 32) into an address and a prefix length. */
static int parse_cidr(const char *s, struct in_addr *addr, int *prefix) {
  char buf[32];
  if (s == NULL || strlen(s) >= sizeof buf)
    return -1;
  snprintf(buf, sizeof buf, "%s", s);
  char *slash = strchr(buf, '/');
  *prefix = 32;
  if (slash != NULL) {
    char *end;
    long n = strtol(slash + 1, &end, 10);
    if (*end != '\0' || end == slash + 1 || n < 0 || n > 32)
      return -1;
    *prefix = (int)n;
    *slash = '\0';
  }
  return inet_pton(AF_INET, buf, addr) == 1 ? 0 : -1;
}

static void set_sin(struct sockaddr *sa, struct in_addr a) {
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr = a};
  memcpy(sa, &sin, sizeof sin);
}

static struct in_addr mask_of(int prefix) {
  struct in_addr m = {
      .s_addr = prefix == 0 ? 0 : htonl(0xffffffffu << (32 - prefix))};
  return m;
}

static int iface_up(int s, const vc_json_t *ifc, vc_err_t *err) {
  const char *name = vc_json_get_string(ifc, "name");
  if (name == NULL || strlen(name) >= IFNAMSIZ || strchr(name, '/') != NULL)
    return vc_fail(err, EINVAL, "network: interface: bad or missing \"name\"");
  struct ifreq ifr = {0};
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", name);
  const char *mac = vc_json_get_string(ifc, "mac");
  if (mac != NULL) {
    unsigned char hw[6];
    if (parse_mac(mac, hw) < 0)
      return vc_fail(err, EINVAL, "network: %s: bad mac \"%s\"", name, mac);
    ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
    memcpy(ifr.ifr_hwaddr.sa_data, hw, sizeof hw);
    if (ioctl(s, SIOCSIFHWADDR, &ifr) < 0)
      return vc_error(err, errno, "network: %s: set mac %s", name, mac);
  }
  long long mtu;
  if (vc_json_get_int(ifc, "mtu", &mtu) == 0) {
    if (mtu < 68 || mtu > 65535)
      return vc_fail(err, EINVAL, "network: %s: bad mtu %lld", name, mtu);
    ifr.ifr_mtu = (int)mtu;
    if (ioctl(s, SIOCSIFMTU, &ifr) < 0)
      return vc_error(err, errno, "network: %s: set mtu", name);
  }
  const vc_json_t *addrs = vc_json_get(ifc, "addresses");
  if (addrs != NULL && addrs->type != VC_JSON_ARRAY)
    return vc_fail(err, EINVAL, "network: %s: \"addresses\" must be a list",
                   name);
  /* ioctl sets one IPv4 address per interface: the first. */
  for (size_t i = 0; addrs != NULL && i < addrs->n && i < 1; i++) {
    struct in_addr in;
    int prefix;
    const char *cidr = addrs->items[i]->type == VC_JSON_STRING
                           ? addrs->items[i]->string : NULL;
    if (parse_cidr(cidr, &in, &prefix) < 0)
      return vc_fail(err, EINVAL, "network: %s: bad address \"%s\"", name,
                     cidr ? cidr : "");
    set_sin(&ifr.ifr_addr, in);
    if (ioctl(s, SIOCSIFADDR, &ifr) < 0)
      return vc_error(err, errno, "network: %s: address %s", name, cidr);
    set_sin(&ifr.ifr_netmask, mask_of(prefix));
    if (ioctl(s, SIOCSIFNETMASK, &ifr) < 0)
      return vc_error(err, errno, "network: %s: netmask of %s", name, cidr);
  }
  if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
    return vc_error(err, errno, "network: interface %s", name);
  ifr.ifr_flags |= IFF_UP;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
    return vc_error(err, errno, "network: %s: up", name);
  return 0;
}

static int route_add(int s, const vc_json_t *r, vc_err_t *err) {
  const char *dst = vc_json_get_string(r, "dst");
  const char *gw = vc_json_get_string(r, "gw");
  struct in_addr d, g = {0};
  int prefix;
  if (parse_cidr(dst, &d, &prefix) < 0)
    return vc_fail(err, EINVAL, "network: route: bad \"dst\" \"%s\"",
                   dst ? dst : "");
  if (gw != NULL && inet_pton(AF_INET, gw, &g) != 1)
    return vc_fail(err, EINVAL, "network: route to %s: bad \"gw\" \"%s\"", dst,
                   gw);
  struct rtentry rt = {0};
  set_sin(&rt.rt_dst, d);
  set_sin(&rt.rt_genmask, mask_of(prefix));
  rt.rt_flags = RTF_UP;
  if (gw != NULL) {
    set_sin(&rt.rt_gateway, g);
    rt.rt_flags |= RTF_GATEWAY;
  }
  if (ioctl(s, SIOCADDRT, &rt) < 0 && errno != EEXIST)
    return vc_error(err, errno, "network: route to %s", dst);
  return 0;
}

int net_guest(agent_t *a, const vc_json_t *ifaces, const vc_json_t *routes,
              vc_err_t *err) {
  (void)a;
  if (ifaces == NULL && routes == NULL)
    return 0;
  if ((ifaces != NULL && ifaces->type != VC_JSON_ARRAY) ||
      (routes != NULL && routes->type != VC_JSON_ARRAY))
    return vc_fail(err, EINVAL,
                   "network: \"interfaces\" and \"routes\" must be lists");
  cleanup_close int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0)
    return vc_error(err, errno, "network: socket");
  for (size_t i = 0; ifaces != NULL && i < ifaces->n; i++)
    if (iface_up(s, ifaces->items[i], err) < 0)
      return -1;
  for (size_t i = 0; routes != NULL && i < routes->n; i++)
    if (route_add(s, routes->items[i], err) < 0)
      return -1;
  return 0;
}
