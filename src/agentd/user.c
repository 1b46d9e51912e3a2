/* user.c - "uid[:gid]" or "name[:group]" to ids, from the container's own
 * /etc/passwd and /etc/group.  The agent is static: no NSS, so the files
 * are parsed here (the usual colon-separated format). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentd.h"
#include "sys/cleanup.h"

#define FIELDS 7

/* Split a line at ':' into at most FIELDS fields; returns their number. */
static size_t split(char *line, char *field[FIELDS]) {
  line[strcspn(line, "\n")] = '\0';
  size_t n = 0;
  for (char *p = line; n < FIELDS; p++) {
    field[n++] = p;
    p = strchr(p, ':');
    if (p == NULL)
      break;
    *p = '\0';
  }
  return n;
}

static bool number(const char *s, unsigned long *v) {
  if (*s < '0' || *s > '9')
    return false;
  char *end;
  errno = 0;
  *v = strtoul(s, &end, 10);
  return *end == '\0' && errno == 0 && *v < UINT_MAX;
}

typedef struct pwent {
  bool found;
  char name[256], home[PATH_MAX];
  unsigned long uid, gid;
} pwent_t;

/* The passwd entry whose name is `name`, or whose uid is `uid`. */
static void find_passwd(const char *name, unsigned long uid, pwent_t *pw) {
  cleanup_file FILE *f = fopen("/etc/passwd", "re");
  char line[4096], *field[FIELDS];
  while (f != NULL && fgets(line, sizeof line, f) != NULL) {
    unsigned long u, g;
    size_t n = split(line, field);
    if (n < 4 || !number(field[2], &u) || !number(field[3], &g))
      continue;
    if (name != NULL ? strcmp(field[0], name) == 0 : u == uid) {
      pw->found = true;
      snprintf(pw->name, sizeof pw->name, "%s", field[0]);
      snprintf(pw->home, sizeof pw->home, "%s", n >= 6 ? field[5] : "/");
      pw->uid = u;
      pw->gid = g;
      return;
    }
  }
}

/* Add gid to groups[*n] (at most max) unless it is there. */
static int add_group(gid_t gid, gid_t *groups, size_t *n, size_t max) {
  for (size_t i = 0; i < *n; i++)
    if (groups[i] == gid)
      return 0;
  if (*n >= max)
    return -1;
  groups[(*n)++] = gid;
  return 0;
}

int user_resolve(const char *spec, const char *const *extra, uid_t *uid,
                 gid_t *gid, gid_t *groups, size_t *ngroups, char *home,
                 size_t home_size, vc_err_t *err) {
  char user[256];
  snprintf(user, sizeof user, "%s", spec == NULL || *spec == '\0' ? "0" : spec);
  char *group = strchr(user, ':');
  if (group != NULL)
    *group++ = '\0';

  pwent_t pw = {0};
  unsigned long u, g = 0;
  if (number(user, &u)) {
    find_passwd(NULL, u, &pw);
  } else {
    find_passwd(user, 0, &pw);
    if (!pw.found)
      return vc_fail(err, ENOENT, "user \"%s\": no such user in /etc/passwd",
                     spec);
    u = pw.uid;
  }
  if (pw.found)
    g = pw.gid;
  snprintf(home, home_size, "%s", pw.found ? pw.home : "/");

  /* One pass over /etc/group: the named group, and the supplementary
   * groups that list the user. */
  bool group_found = group == NULL || number(group, &g);
  size_t max = *ngroups, n_extra = 0;
  *ngroups = 0;
  bool found[MAX_GROUPS] = {false};
  for (; extra != NULL && extra[n_extra] != NULL; n_extra++) {
    unsigned long id;
    if (n_extra >= MAX_GROUPS || n_extra >= max)
      return vc_fail(err, E2BIG, "user \"%s\": too many groups", spec);
    if ((found[n_extra] = number(extra[n_extra], &id)))
      add_group((gid_t)id, groups, ngroups, max);
  }
  cleanup_file FILE *f = fopen("/etc/group", "re");
  char line[8192], *field[FIELDS];
  while (f != NULL && fgets(line, sizeof line, f) != NULL) {
    unsigned long id;
    if (split(line, field) < 4 || !number(field[2], &id))
      continue;
    if (!group_found && strcmp(field[0], group) == 0) {
      g = id;
      group_found = true;
    }
    for (size_t i = 0; i < n_extra; i++)
      if (!found[i] && strcmp(extra[i], field[0]) == 0) {
        found[i] = true;
        if (add_group((gid_t)id, groups, ngroups, max) < 0)
          return vc_fail(err, E2BIG, "user \"%s\": too many groups", spec);
      }
    if (!pw.found || *ngroups >= max)
      continue;
    char *save;
    for (char *m = strtok_r(field[3], ",", &save); m != NULL;
         m = strtok_r(NULL, ",", &save))
      if (strcmp(m, pw.name) == 0) {
        add_group((gid_t)id, groups, ngroups, max);
        break;
      }
  }
  if (!group_found)
    return vc_fail(err, ENOENT, "user \"%s\": no such group in /etc/group",
                   spec);
  for (size_t i = 0; i < n_extra; i++)
    if (!found[i])
      return vc_fail(err, ENOENT, "group \"%s\": no such group in /etc/group",
                     extra[i]);
  *uid = (uid_t)u;
  *gid = (gid_t)g;
  return 0;
}
