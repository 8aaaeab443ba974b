/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "backup/backup-log.h"

/* Extracts the entries under basedir/ into staging_fd (an empty directory; "basedir/" stripped), as the
 * current user. The entry checks of restore_archive_validate() run again first (the fd could be another
 * file), so a hostile archive is refused here too before anything is written. Directories get their
 * mode plus u+rwx (0755 when the archive has none), files their mode minus setuid/setgid/sticky (0644
 * when none); mtimes come from the archive. Everything is created relative to directory fds with
 * O_NOFOLLOW (and O_EXCL for files). Duplicate names: the last one wins. An entry that inflates beyond
 * its declared size, a CRC mismatch or damaged data stops the extraction (-EBADMSG). Progress goes to
 * cb->progress("extracting", done, total) in uncompressed bytes, then "syncing"; a negative return
 * cancels (-ECANCELED). The data is read and inflated by threads ahead of the writer (restore-inflate.h),
 * which also write files of 1 MiB and more, with O_DIRECT. Durability: the file system is synced (syncfs)
 * at the end, which covers the files and the directories. Returns -ENOSPC/-EDQUOT when space ran out. On
 * failure the caller removes the staging directory. cb may be NULL. */
int restore_archive_extract(int zip_fd, int staging_fd, const BackupCallbacks *cb, char **ret_error);
