/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdint.h>

/* Whether a file can be a zip at all, judged from its last bytes, before anything reads or copies the rest:
 * the end of central directory record must be in its last 64 KiB + 22 bytes (with the ZIP64 end record
 * where it says so), on one disk, and describe a non-empty central directory that lies inside the file,
 * large enough for the entries it claims, and starting with a central directory header. A few pread()s,
 * whatever the size. What passes may still be no backup (libzip and metadata.json decide that); what
 * fails is no zip libzip or CPython's zipfile would open.
 *
 * fd: open for reading; size: its size (st_size). Returns 0, -EBADMSG with *ret_error saying why it is no
 * zip ("not a zip file: ..."), or another negative errno when it cannot be read (*ret_error too). */
int zip_eocd_check(int fd, uint64_t size, char **ret_error);
