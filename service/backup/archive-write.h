/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "backup/backup-plan.h"
#include "backup/backup.h"
#include "backup/deflate-pool.h"
#include "backup/files-cache.h"

/* Writing a backup zip with libzip (opbackupd(8), ARCHIVE FORMAT, "Entries"): file entries only, deflated at
 * the requested libdeflate level or stored (at level 0, and data that does not compress), UTF-8 names, Unix
 * modes, DOS mtimes, no comment, ZIP64 only where needed.
 *
 * libzip reads every source at zip_close() time, one after the other. The file entries' data comes from
 * a DeflatePool (deflate-pool.h) started just before: it reads the files in the same order and deflates
 * them ahead on all cores, in bounded memory; the entries' sources hand libzip the deflate data with its
 * CRC and sizes, which libzip copies as it is. Whether a file is stored is decided when it is added: by
 * its name when it is small, else by deflating its first block. The archive itself goes through a
 * source of ours too: it is written as the hidden ".<name>" in the backup folder (relative to the
 * folder's fd), written back to disk as it grows, fsynced, renamed to <name> without replacing anything,
 * and the folder fsynced. Any failure or cancel removes the hidden file. */

typedef struct ArchiveWriter ArchiveWriter;

/* dirfd: the backup folder (kept, not owned; must stay open until finish/free). dir_path names it in
 * messages. total: the bytes the file entries will read, for progress. Fails with -EEXIST if `name`
 * exists already. */
int archive_writer_new(int dirfd, const char *dir_path, const char *name, int level, uint64_t total,
                       const BackupCallbacks *cb, ArchiveWriter **ret, char **ret_error);

/* An entry from memory (copied), e.g. metadata.json. Mode as CPython's writestr() sets it: 0600. */
int archive_writer_add_buffer(ArchiveWriter *w, const char *name, const void *data, size_t size, int64_t mtime,
                              mode_t mode);

/* Unchanged files (by their stamp) take their data from the backup the cache refers to, unread (borrowed:
 * kept until finish/free). Before the first archive_writer_add_entry(). */
void archive_writer_set_files_cache(ArchiveWriter *w, FilesCache *c);

/* A file entry; e must stay valid until finish/free. A duplicate name is skipped with a warning (0). */
int archive_writer_add_entry(ArchiveWriter *w, const PlanEntry *e);

/* Writes everything, commits and renames. On failure the hidden file is gone and *ret_error says why;
 * returns -ENOSPC / -EDQUOT when space ran out, -ECANCELED when progress() asked to stop. */
int archive_writer_finish(ArchiveWriter *w, uint64_t *ret_size, char **ret_error);

/* What became of each file entry, once finished: for the next files cache. */
typedef struct ArchiveFileResult {
        bool done;                      /* all of it went into the archive */
        bool unchanged;                 /* ... and it is what the scan saw (stamp), whole */
        bool deflated;
        uint64_t size, comp_size;
        uint32_t crc, raw_crc;          /* of the file's bytes; of the entry's data as stored */
} ArchiveFileResult;
size_t archive_writer_results(ArchiveWriter *w, const PoolFile **ret_files, const ArchiveFileResult **ret_results);

/* Discards an unfinished archive (removing the hidden file). Accepts NULL. */
ArchiveWriter *archive_writer_free(ArchiveWriter *w);

/* Whether a name says its data is compressed already (video, images, archives): small files with such
 * names are stored, not deflated. */
bool archive_name_is_compressed(const char *name);

/* A time as a zip (DOS) time can hold it: clamped to 1980-01-01 .. 2107-12-31 (local time). */
int64_t archive_clamp_mtime(int64_t t);
