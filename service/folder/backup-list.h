/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

typedef struct Instance Instance;

/* What ListBackups knows of one file in the backup folder, cached by name + size + mtime so that a
 * folder of thousands of backups is not re-read on every call. */
typedef struct BackupEntry {
        char *name;
        uint64_t size;
        int64_t mtime_usec;
        bool valid;                     /* a zip with a readable metadata.json */
        char *version;
        char **excludes;
        uint64_t uncompressed;
} BackupEntry;

typedef struct BackupCache {
        BackupEntry *entries;           /* newest first */
        size_t n;
        BackupEntry **by_name;          /* the same entries sorted by name, for lookups */
} BackupCache;

void backup_cache_done(BackupCache *c);

/* Lists the backup folder through a worker (as the instance user) and refreshes the cache. The
 * entries come newest first. */
int backup_list_refresh(Instance *i, char **ret_error);

/* The ListBackups method, after authorization. */
int method_list_backups_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error);

/* Forgets what is cached for name (after a delete). */
void backup_cache_forget(BackupCache *c, const char *name);
