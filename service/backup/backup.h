/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdint.h>

#include "backup/backup-log.h"
#include "instance/octoconfig.h"

/* The backup engine (opbackupd(8), ARCHIVE FORMAT). Runs inside a worker process that has already dropped to
 * the instance user; everything it reads and writes, it reads and writes as that user. */

typedef struct BackupRequest {
        const char *instance;
        const OctoConfig *octo;            /* parsed config.yaml (folder overrides); may be NULL */
        const char *basedir, *config_file, *backup_folder;
        const char *venv;                  /* may be NULL: then no plugin_list.json */
        char *const *bundled_plugins;
        char *const *excludes;             /* caller's folder ids, already validated as excludable */
        const char *name;                  /* final file name, already validated */
        const char *octoprint_version;
        const char *config_dir;            /* daemon config dir: excludes.d/ and hooks/additional-excludes.d/;
                                            * NULL = no admin drop-ins and no hooks */
        int compression_level;             /* 0..9; 0 stores without compression */
        uint64_t hook_timeout_usec;        /* 0 = 10 s; tests use less */
        /* The files cache (files-cache.h), or NULL: [0] the current one to read (-1: none yet), [1] an empty
         * file to write the next one into (-1: none). *files_cache_written says whether it was. */
        const int *files_cache_fds;
        bool *files_cache_written;
} BackupRequest;

/* Stages passed to progress(): "preparing" (excludes, hooks), "scanning" (done = files found,
 * total = 0), "writing" (bytes read from the sources out of the total), "syncing". */

/* Runs the whole backup. On success the zip is at backup_folder/name (written as .name, mode 0600, fsynced,
 * renamed without replacing anything, folder fsynced); *ret_path is that path, *ret_size its size, *ret_metadata_excludes the "excludes" of
 * its metadata.json (the caller's ids, plus timelapse_tmp when timelapse is excluded). On failure nothing
 * is left behind, *ret_error says what happened in words a user can act on, and the return value is a
 * negative errno: -ENOSPC (not enough space), -ECANCELED (progress() asked to stop), -EEXIST (name
 * taken), others for I/O problems. Every ret_* may be NULL. */
int backup_execute(const BackupRequest *req, const BackupCallbacks *cb, char **ret_path, uint64_t *ret_size,
                   char ***ret_metadata_excludes, char **ret_error);

/* The "excludes" of metadata.json: the caller's ids in their order, plus "timelapse_tmp" right after
 * them when "timelapse" is among them (OctoPrint appends it). */
int backup_metadata_excludes(char *const *excludes, char ***ret);
