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

#endif
