/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "backup.h"
#include "distinfo.h"
#include "rm-rf.h"

/* The archive half of a restore (SPEC §3 steps 2 and 3), run inside a worker that is the instance user
 * already. The archive is untrusted: everything is checked before anything is changed, and extraction
 * never writes outside the staging directory it is given. */

#define RESTORE_ENTRIES_MAX 1000000U
#define RESTORE_NAME_MAX 4096U
#define RESTORE_SPACE_MARGIN (50ULL * 1024ULL * 1024ULL)

typedef struct ArchiveSummary {
        char *version;              /* metadata.json "version" */
        char **excludes;            /* metadata.json "excludes": known folder ids only (others are warnings) */
        uint64_t n_entries;         /* entries in the zip, duplicates included */
        uint64_t n_files;           /* files that will be extracted (the last of each duplicate name) */
        uint64_t total_size;        /* sum of the uncompressed sizes of what will be extracted */
        PluginInfo *plugins;        /* plugin_list.json, if present (key, name, url|NULL) */
        size_t n_plugins;
        char **warnings;            /* what was accepted but ignored, for the job log (NULL-terminated) */
} ArchiveSummary;

/* Validates the whole archive before anything is changed (SPEC §3 step 2). installed_version: the
 * instance's OctoPrint version. free_bytes: free space on the basedir's filesystem (the caller measures
 * it). zip_fd is not consumed and its offset does not matter. On refusal returns a negative errno
 * (-EBADMSG invalid archive, -EPROTONOSUPPORT newer version, -ENOSPC not enough space, -EINVAL the
 * installed version is NULL or unreadable) and *ret_error is a message that names the problem and the
 * entry, e.g. "Backup entry 'basedir/../../x' leaves basedir: refusing to restore this backup". */
int restore_archive_validate(int zip_fd, const char *installed_version, uint64_t free_bytes,
                             ArchiveSummary *ret, char **ret_error);

/* The same with the entry limit as a parameter, so tests need no million-entry zip. */
int restore_archive_validate_full(int zip_fd, const char *installed_version, uint64_t free_bytes,
                                  uint64_t max_entries, ArchiveSummary *ret, char **ret_error);

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

void archive_summary_done(ArchiveSummary *s);

