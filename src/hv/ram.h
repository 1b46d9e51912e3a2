/* ram.h - a template's guest RAM, shared copy-on-write between the VMs
 * that start from it (ram.c). */
#ifndef VC_RAM_H
#define VC_RAM_H

#include <stddef.h>

#include "sys/error.h"

/* A sealed memfd of bytes holding template RAM file ram_file's pages: the
 * one a running VM of that very template maps (the template whose device
 * state is open on state_fd), or a new one filled from the file.  *lock is
 * set to a descriptor holding an exclusive flock on ram_file (or -1): the
 * caller keeps it until the VM that maps the memfd runs, so that pods
 * that start together fill one memfd, not one each.  The caller owns both
 * descriptors (O_CLOEXEC). */
int vc_ram_open(const char *ram_file, int state_fd, size_t bytes, int *lock,
                vc_err_t *err);

/* Turn the zero pages of template RAM file ram_file into holes: a guest
 * leaves much of its RAM zeroed, which then takes no room on disk, and
 * vc_ram_open reads only the rest. */
int vc_ram_sparsify(const char *ram_file, vc_err_t *err);

#endif
