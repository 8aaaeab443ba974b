/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdint.h>

#include "folder/backup-folder.h"

/* What ListBackups shows of a backup, read straight from the zip without libzip: the end of central
 * directory record, one pass over the central directory (the sum of the uncompressed sizes, and where
 * metadata.json is: the first entry of that name, as libzip finds it), then metadata.json's local header
 * and data, inflated and checked against its CRC. A backup of 20,000 files costs one read of its central
 * directory and a few small reads, where libzip would build an index of all its entries.
 * 0 on success; -EBADMSG with *ret_error saying why the file is no OctoPrint backup; another negative
 * errno when it cannot be read. */
int backup_metadata_read(int fd, uint64_t size, BackupInfo *ret, char **ret_error);
