/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "backup/backup.h"
#include "backup/files-cache.h"
#include "folders.h"
#include "instance/octoconfig.h"

/* What goes into a backup (opbackupd(8), ARCHIVE FORMAT, the entries under basedir/), found by walking the
 * instance's folders with directory fds: one entry per file, in archive order, with the path to read it from
 * later. Nothing is kept open.
 *
 * Ownership: a file belongs to the folder id whose configured location is the deepest one holding it
 * (timelapse/tmp belongs to timelapse_tmp, not timelapse); an excluded id's files are left out however
 * they are reached. Symlinks are followed only when their target resolves inside basedir or a folder
 * id's location (and not inside an excluded one or the backup folder). */

#define PLAN_ENTRIES_MAX 1000000U      /* what a restore accepts (opbackupd(8), RESTORE) */
#define PLAN_NAME_MAX 4096U            /* longest entry name a restore accepts */
#define PLAN_DEPTH_MAX 128U

typedef struct PlanEntry {
        char *name;                    /* entry name: "basedir/..." */
        char *path;                    /* absolute path without symlinks to read the data from */
        uint64_t size;                 /* at scan time; at most this much is stored */
        int64_t mtime;
        mode_t mode;                   /* st_mode as scanned: type and permission bits */
        FileStamp stamp;               /* device, inode, size, mtime, ctime as scanned (the files cache) */
} PlanEntry;

typedef struct Plan {
        PlanEntry *entries;
        size_t n_entries, n_allocated;
        uint64_t total_size;
        size_t names_size;             /* sum of the entry name lengths, for the space estimate */
} Plan;

typedef struct PlanRequest {
        const char *basedir;
        const char *config_file;
        const char *backup_folder;     /* must exist */
        char *const *locations;        /* _FOLDER_MAX absolute configured locations (plan_folder_locations) */
        const bool *excluded;          /* _FOLDER_MAX: caller's excludes, timelapse_tmp, always-excluded */
        char *const *additional_excludes;   /* "data/<plugin>[/<path>]" */
} PlanRequest;

/* Each folder id's configured location as an absolute path: the config.yaml override (relative ones are
 * taken relative to basedir, "~/" is the worker user's home) or basedir/<default relpath>. */
int plan_folder_locations(const char *basedir, const OctoConfig *octo, char *ret[_FOLDER_MAX]);

/* Walks the tree. Problems with single files are logged (warnings) and skip the file; what makes a
 * backup impossible (config file unreadable, too many files, cancel, out of memory) fails with a
 * message in *ret_error. */
int plan_build(const PlanRequest *r, const BackupCallbacks *cb, Plan *ret, char **ret_error);
void plan_done(Plan *p);

/* Opens a path that must contain no symlink (openat2 RESOLVE_NO_SYMLINKS where available, else
 * O_NOFOLLOW and a check of /proc/self/fd) read-only, non-blocking, close-on-exec. Returns an fd or a
 * negative errno (-ELOOP when a symlink was found). */
int open_no_symlinks(const char *path, int flags);

/* Whether an entry name component can be stored: valid UTF-8, no control character or backslash. */
bool plan_name_component_ok(const char *name);
