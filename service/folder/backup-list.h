/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

typedef struct Instance Instance;

/* What ListBackups knows of one file in the backup folder, cached by name and lstat() (size, mtime, ctime,
 * inode, device) so that a folder of thousands of backups is not re-read on every call, nor, through the
 * file of backup-list-cache.h, after the daemon restarts. */
typedef struct BackupEntry {
        char *name;
        uint64_t size;
        int64_t mtime_usec;             /* what the bus says: mtime_nsec rounded down */
        int64_t mtime_nsec, ctime_nsec;
        uint64_t ino, dev;
        bool valid;                     /* a zip with a readable metadata.json */
        char *version;
        char **excludes;
        uint64_t uncompressed;
} BackupEntry;

typedef struct BackupCache {
        BackupEntry *entries;           /* newest first */
        size_t n;
        BackupEntry **by_name;          /* the same entries sorted by name, for lookups */
        uint64_t generation;            /* changes with every change to the above */
} BackupCache;

void backup_entry_done(BackupEntry *e);
static inline int64_t backup_entry_usec(int64_t nsec) {
        return nsec >= 0 ? nsec / 1000 : -((-nsec + 999) / 1000);
}
void backup_cache_done(BackupCache *c);

/* Lists the backup folder through a worker (as the instance user) and refreshes the cache (entries newest
 * first), without waiting for it: done() is called when the cache is fresh (r >= 0), or with r < 0 and,
 * when there is one, a message for the caller. Returns 0 when started; done is not called otherwise. */
typedef void (*backup_list_done_fn)(Instance *i, int r, const char *error, void *userdata);
int backup_list_refresh_start(Instance *i, backup_list_done_fn done, void *userdata);

/* An instance's refreshes: the one running and those waiting for the next. */
typedef struct BackupRefresh BackupRefresh;
BackupRefresh *backup_refresh_free(BackupRefresh *f);

/* The ListBackups method, after authorization. */
int method_list_backups_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error);

/* Forgets what is cached for name (after a delete). */
void backup_cache_forget(BackupCache *c, const char *name);
