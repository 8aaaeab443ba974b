/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "folder/backup-list.h"

/* What ListBackups read from the backups of an instance, kept in the service's state directory
 * ($STATE_DIRECTORY, which systemd sets from StateDirectory=; else /var/lib/opbackup if it exists) as
 * "list-INSTANCE.cache", root's, mode 0600, so that the first listing after the daemon starts (it exits
 * when idle) need not open every backup again. The file only saves reads: every entry is checked against
 * the file it describes (lstat: size, mtime, ctime, inode, device) before it is used, and a file that is
 * damaged, cut short or of another format version (magic, version, sizes and a CRC-32 of the whole) is
 * ignored, so the listing reads the backups again. */

/* Loads the entries (in the file's order) into *ret. -ENOENT: no file (or no state directory);
 * -EBADMSG: damaged, ignored. */
int backup_list_cache_load(const char *instance, size_t max_entries, BackupEntry **ret, size_t *ret_n);

/* Replaces the file with the entries of c, atomically (a new file renamed over the old one). */
int backup_list_cache_save(const char *instance, const BackupCache *c);
