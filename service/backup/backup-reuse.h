/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Reusing the deflate data of unchanged files from the previous backup.
 *
 * Most of what a backup holds does not change from one backup to the next (G-code, timelapses), and
 * deflating it is nearly all of a backup's time. So each file entry of the previous backup (the newest
 * zip in the backup folder) that is deflated and holds as many bytes as the file has now is a candidate:
 * the file is read once to compute its CRC-32; when that matches the entry's, the entry's data is
 * inflated to check that it yields exactly the file's size and CRC (a damaged previous backup must not
 * spread into the next one), and only then are its compressed bytes copied into the new archive as they
 * are. Anything that does not match is deflated as usual. The result is the same archive a fresh backup
 * would give, up to the compression level the previous one used.
 *
 * The previous backup was written by the instance user, like everything in the folder: it is read like
 * any untrusted zip (by libzip, in the worker, as that user), with inflated sizes bounded by the entry's.
 *
 * A ReuseSource is used by one thread at a time (reuse_source_find() while the archive's entries are
 * added, then its own reader); each other thread that reads entries has a ReuseReader of its own:
 * another handle on the same file. */

typedef struct ReuseSource ReuseSource;
typedef struct ReuseReader ReuseReader;

typedef struct ReuseEntry {
        int64_t index;          /* in the previous backup; -1: none */
        uint64_t size, comp_size;
        uint32_t crc;
} ReuseEntry;

/* Smaller files are deflated again: the extra reads would cost more than deflating saves. */
#define REUSE_MIN_SIZE (256U * 1024U)

/* Opens the newest backup in the folder dirfd refers to (by modification time; valid backup names only,
 * never `skip_name`). Returns 0 with *ret = NULL when there is none or it cannot be read as a zip. */
int reuse_source_open(int dirfd, const char *skip_name, ReuseSource **ret);
ReuseSource *reuse_source_free(ReuseSource *r);
const char *reuse_source_name(const ReuseSource *r);

/* The deflated, unencrypted entry `name` of `size` bytes: true and *ret filled, or false. */
bool reuse_source_find(ReuseSource *r, const char *name, uint64_t size, ReuseEntry *ret);

/* Entries of the previous backup: each handle on it holds its central directory (some 250 bytes an
 * entry), which bounds how many are opened. */
uint64_t reuse_source_entries(const ReuseSource *r);

/* The ReuseSource's own handle, for the one thread that uses it once reuse_source_find() is done with. */
ReuseReader *reuse_source_reader(ReuseSource *r);

/* Another handle on the same file (the same inode, even if it was renamed meanwhile). */
int reuse_reader_new(ReuseSource *r, ReuseReader **ret);
ReuseReader *reuse_reader_free(ReuseReader *rr);

/* Inflates the entry: 1 if it yields e->size bytes with CRC e->crc from exactly e->comp_size compressed
 * bytes (*ret_raw_crc: the CRC-32 of those bytes, to check the copy against), 0 if not, negative errno
 * when reading failed, -ECANCELED as soon as *stop is true. buf/n: scratch space (at least 64 KiB). */
int reuse_reader_verify(ReuseReader *rr, const ReuseEntry *e, uint8_t *buf, size_t n, const bool *stop,
                        uint32_t *ret_raw_crc);

/* The entry's compressed bytes, read in order. One entry at a time. */
int reuse_reader_open_raw(ReuseReader *rr, const ReuseEntry *e);
ssize_t reuse_reader_read_raw(ReuseReader *rr, void *buf, size_t n);
void reuse_reader_close_raw(ReuseReader *rr);
