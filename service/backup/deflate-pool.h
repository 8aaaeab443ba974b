/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backup/backup-reuse.h"
#include "backup/files-cache.h"

/* The files of a backup, read and deflated ahead of the archive writer on all cores (opbackupd(8),
 * DESCRIPTION: memory stays bounded whatever the size of the data).
 *
 * One reader thread reads the files in archive order, in chunks of DEFLATE_POOL_CHUNK bytes, into a ring
 * of 2 × threads + 2 slots; compressor threads (one a CPU, at most DEFLATE_POOL_MAX_THREADS) deflate
 * the chunks with libdeflate, each chunk on its own, and join them into one deflate stream a file
 * (deflate-join.h); the caller takes the chunks back in the same order. So a file of any size takes at
 * most the ring's memory, and small files are compressed side by side.
 *
 * A chunk whose sample does not compress is written as stored deflate blocks instead of being
 * compressed (media inside an unknown container, say). Files marked `store` are not deflated at all:
 * their chunks carry the file's bytes as they are. Files with a `reuse` entry may take their deflate data
 * from the previous backup (backup-reuse.h): the reader checks the file against it and hands out its
 * compressed bytes as they are, in chunks whose last one carries the file's size and CRC. Files with a
 * `cached` entry take their data from the backup the files cache refers to (files-cache.h) without being
 * read: the reader checks the entry's local header and copies its data, checking the CRC-32 of what it
 * copied at the end (a mismatch fails the file with -ESTALE: its data is in the archive already). */

#define DEFLATE_POOL_CHUNK (1024U * 1024U)
#define DEFLATE_POOL_MAX_THREADS 4U

typedef struct DeflatePool DeflatePool;

typedef struct PoolFile {
        const char *path;       /* opened with open_no_symlinks() when its turn comes; kept by the caller */
        uint64_t size;          /* read at most this much: the size the scan saw */
        bool store;             /* copy as is instead of deflating */
        ReuseEntry reuse;       /* index -1: none (read only when the pool has a ReuseSource) */
        const char *name;       /* entry name: checked against a cached entry's local header */
        FileStamp stamp;        /* as scanned */
        bool cached;            /* copy `cache` from the files cache's backup (deflate_pool_set_files_cache) */
        FilesCacheEntry cache;
} PoolFile;

typedef enum PoolStatus {
        POOL_OK,
        POOL_VANISHED,          /* gone or no longer a regular file: stored empty */
        POOL_SHRANK,            /* ended before `size`: what there was is stored */
        POOL_FAILED,            /* reading failed: `error` says why */
} PoolStatus;

typedef struct PoolChunk {
        size_t file;            /* index into the files given to deflate_pool_start() */
        const uint8_t *data;    /* deflate data (joined with the file's other chunks), or the bytes as
                                 * they are for a stored file */
        size_t size;
        size_t in_size;         /* bytes of the file this chunk holds (reused data: 0, and the file's size
                                 * on the last chunk) */
        uint32_t crc;           /* their CRC-32 (0 for a stored file: libzip computes it); reused: the
                                 * file's on the last chunk */
        bool last;              /* the file's last chunk; status, error and unchanged are set on it */
        bool unchanged;         /* the data is what the file held when it was scanned (same stamp) */
        PoolStatus status;
        int error;              /* POOL_FAILED: negative errno */
} PoolChunk;

/* level: libdeflate compression level, 1..12. threads: compressor threads, 0 = one a CPU this process
 * may run on (at most DEFLATE_POOL_MAX_THREADS). */
int deflate_pool_new(int level, unsigned threads, DeflatePool **ret);

/* The backup the files' `cached` entries are in (kept by the caller, read with pread()). Before
 * deflate_pool_start(). */
void deflate_pool_set_files_cache(DeflatePool *p, int backup_fd);

/* Starts reading and compressing files[0..n-1] (kept by the caller until deflate_pool_free()). Once.
 * reuse: the previous backup the files' `reuse` entries refer to, or NULL; used by the reader thread
 * until deflate_pool_free(). */
int deflate_pool_start(DeflatePool *p, const PoolFile *files, size_t n, ReuseSource *reuse);

/* The next chunk, in order: chunks of files[0] first, up to its last one, then files[1] ... Waits for it.
 * The chunk stays valid until deflate_pool_release(). Returns -ENODATA after the last file. */
int deflate_pool_next(DeflatePool *p, const PoolChunk **ret);
void deflate_pool_release(DeflatePool *p);

/* Stops the threads (whatever they are doing) and frees everything. Accepts NULL. */
DeflatePool *deflate_pool_free(DeflatePool *p);

/* Whether data does not compress: a quick deflate (libdeflate level 1) of a sample of it saves less than
 * 2%. Used on the first block of a file before the archive is written, to choose between deflating and
 * storing. Not thread-safe (one compressor a pool); returns -ENOMEM or 0/1. */
int deflate_pool_sample_incompressible(DeflatePool *p, const void *data, size_t n);

/* What was reused: files and their bytes, and candidates that did not match after all. */
void deflate_pool_reuse_stats(DeflatePool *p, size_t *ret_files, uint64_t *ret_bytes, size_t *ret_rejected);

/* Files copied through the files cache, and their bytes (uncompressed). */
void deflate_pool_cache_stats(DeflatePool *p, size_t *ret_files, uint64_t *ret_bytes);

/* The compressor threads deflate_pool_new() would start for threads = 0. */
unsigned deflate_pool_default_threads(void);

/* How many non-final chunks the join could not handle (deflate-join.h) and were stored instead; for a
 * debug message. Zero unless something is wrong. */
unsigned deflate_pool_join_fallbacks(DeflatePool *p);
