/* process.h - facts about host processes that a backend launched and
 * that must be recognised later by another vc process. */
#ifndef VC_PROCESS_H
#define VC_PROCESS_H

#include <stdbool.h>
#include <sys/types.h>

#include "error.h"

/* The start time of pid (field 22 of /proc/PID/stat, clock ticks since
 * boot): with the pid, it names one process for good. */
int vc_proc_start_time(pid_t pid, unsigned long long *start, vc_err_t *err);

/* Whether pid is alive and is the process that started at start (a pid
 * reused by another process, or a zombie, is not). */
bool vc_proc_alive(pid_t pid, unsigned long long start);

/* Send sig to the process named by pid and start, then wait up to
 * timeout_s for it to be gone; true when it is. */
bool vc_proc_end(pid_t pid, unsigned long long start, int sig,
                 double timeout_s);

/* The path of a program installed next to the running one, with the same
 * suffix: "vc-agent" next to "vc", "vc-agent-asan" next to "vc-asan". */
int vc_sibling_program(const char *name, char *out, size_t size,
                       vc_err_t *err);

#endif
