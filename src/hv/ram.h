/* ram.h - a template's guest RAM, shared copy-on-write between the VMs
 * that start from it (ram.c). */
#ifndef VC_RAM_H
#define VC_RAM_H

#include <stdbool.h>
#include <stddef.h>

#include "sys/error.h"

/* A sealed memfd of bytes holding template RAM file ram_file's pages: the
 * one a running VM of that template maps (*shared = true), or a new one
 * filled from the file.  The caller owns the descriptor (O_CLOEXEC). */
int vc_ram_open(const char *ram_file, size_t bytes, bool *shared, vc_err_t *err);

/* Turn the zero pages of template RAM file ram_file into holes: a guest
 * leaves much of its RAM zeroed, which then takes no room on disk, and
 * vc_ram_open reads only the rest. */
int vc_ram_sparsify(const char *ram_file, vc_err_t *err);

#endif
