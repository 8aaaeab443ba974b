/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

/* The files cache (opbackupd.conf(5), FilesCache=): for each file of the newest backup, what the file was
 * (device, inode, size, mtime and ctime in ns) and where its data sits in that backup (local header
 * offset, sizes, CRC-32, method). A file whose metadata still match is not read at all: its bytes are
 * copied from that backup, and checked as they are copied against the CRC-32 of exactly those bytes.
 *
 * The cache is root's (the daemon's state directory): the worker gets it as an fd to read, and another
 * fd to write the next one into, which the daemon renames over it once the backup is made. It is
 * checked as untrusted input all the same: a magic, a version, a CRC-32 of the whole file, bounds; the
 * backup it refers to must still be there, unchanged (name, size, mtime, ctime, inode, device), and
 * made at the same CompressionLevel=. Whatever does not pass makes the files be read as without it. */

typedef struct FileStamp {
        uint64_t dev, ino, size;
        int64_t mtime_ns, ctime_ns;
} FileStamp;

typedef struct FilesCacheEntry {
        FileStamp stamp;                /* the file, when its data was read */
        uint64_t offset;                /* of the entry's local header in the backup */
        uint64_t comp_size;
        uint32_t crc;                   /* of the file's bytes */
        uint32_t raw_crc;               /* of the entry's data as stored (the compressed bytes) */
        uint16_t method;                /* 0 stored, 8 deflated */
} FilesCacheEntry;

typedef struct FilesCache FilesCache;

/* Largest cache file read: some 100 bytes and a name per file, for the most files a backup may hold. */
#define FILES_CACHE_MAX_SIZE (512ULL * 1024ULL * 1024ULL)

FileStamp file_stamp_from_stat(const struct stat *st);
bool file_stamp_eq(const FileStamp *a, const FileStamp *b);

/* Reads the cache from fd and opens the backup it refers to in the folder dirfd. Returns 0 with *ret set,
 * or 0 with *ret = NULL and *ret_why (may be NULL) saying why it cannot be used; -ENOMEM. */
int files_cache_load(int fd, int dirfd, int level, FilesCache **ret, char **ret_why);
FilesCache *files_cache_free(FilesCache *c);

/* The entry `name` if the file is still what it was (stamp equal). */
bool files_cache_lookup(const FilesCache *c, const char *name, const FileStamp *stamp, FilesCacheEntry *ret);

/* The backup the entries are in: open, read-only; and its name. Valid until files_cache_free(). */
int files_cache_backup_fd(const FilesCache *c);
const char *files_cache_backup_name(const FilesCache *c);
size_t files_cache_size(const FilesCache *c);

/* What the next cache holds of a file entry of the backup just made (its offset is looked up in the
 * backup's central directory). */
typedef struct FilesCacheRecord {
        const char *name;
        FilesCacheEntry e;
} FilesCacheRecord;

/* Writes the cache of the backup `name` in dirfd (just made, renamed in place) to fd, from offset 0, and
 * fsyncs it. Records whose name, sizes, CRC or method do not match the backup's central directory are
 * left out. recs is reordered. Returns the number of entries written, or a negative errno. */
int files_cache_write(int fd, int dirfd, const char *name, int level, FilesCacheRecord *recs, size_t n);
