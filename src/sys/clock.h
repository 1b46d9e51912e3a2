/* clock.h - the monotonic clock in milliseconds, for deadlines, and the
 * wall clock, for times shown to people (logs).
 *
 * One definition for both ends of the agent protocol: the host's waits
 * (proto, unixsock, qmp, the agent client) and vc-agent's loop. */
#ifndef VC_CLOCK_H
#define VC_CLOCK_H

#include <time.h>

static inline long long vc_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds since the epoch. */
static inline long long vc_wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
