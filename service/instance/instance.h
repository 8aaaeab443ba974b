/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "daemon/daemon.h"
#include "folder/backup-list.h"
#include "instance/config.h"
#include "instance/octoconfig.h"

/* The last upload of a backup of the instance to one remote (Instance.RemoteStatus); saved and loaded by
 * remote/remote-status.h. */
typedef struct InstanceRemoteStatus {
        char *remote;
        char *name;                     /* the backup */
        uint64_t time_usec;             /* CLOCK_REALTIME, when the upload finished */
        char *result;                   /* "done" or "failed" */
        char *error;                    /* "" when done */
} InstanceRemoteStatus;

/* One OctoPrint installation, as configured and as found on disk. */
struct Instance {
        Daemon *daemon;
        char *name;
        char *object_path;
        InstanceConfig *config;         /* owned */

        /* Found by instance_probe(); the files are read as the instance user. */
        uid_t uid;
        gid_t gid;
        char *user;
        OctoConfig octo;
        char *backup_folder;
        char *venv;
        char *octoprint_version;
        bool has_pip;                   /* <venv>/bin/pip: plugins can be reinstalled */

        BackupCache backup_cache;
        /* The names ImportBackup copies in flight were asked to be stored under: they and their ".N"
         * variants are not given to backups meanwhile (folder/backup-import.h). */
        char **importing;
        BackupRefresh *refresh;         /* ListBackups' worker and who waits for it */

        InstanceRemoteStatus *remote_status; /* one per remote uploaded to since the daemon started */
        size_t n_remote_status;

        char *unusable_reason;          /* NULL: usable */
        char *restore_unsupported_reason; /* NULL: restore supported */
};

int instance_new(Daemon *d, InstanceConfig *config, Instance **ret);
Instance *instance_free(Instance *i);

/* Records how the upload of backup NAME to REMOTE ended, replacing what was known of that remote. */
int instance_set_remote_status(Instance *i, const char *remote, const char *name, uint64_t time_usec,
                               const char *result, const char *error);

/* (Re)reads config.yaml, the OctoPrint version and pip from disk, as the instance user, and recomputes
 * usability and restore support. Problems are recorded in the instance, never returned: only
 * out-of-memory is an error. */
int instance_probe(Instance *i);

/* The same without waiting: the files are read by a worker, and what it finds replaces what the instance
 * knew only when it has answered, so callers meanwhile see the instance as it was. The user stays the one
 * the last probe found. Returns 1 when started (done is called then), 0 when there was nothing to read and
 * the instance is probed already (done is not called), or a negative errno. */
typedef struct InstanceProbe InstanceProbe;
typedef void (*instance_probe_done_fn)(Instance *i, void *userdata);
int instance_probe_start(Instance *i, instance_probe_done_fn done, void *userdata, InstanceProbe **ret);
InstanceProbe *instance_probe_free(InstanceProbe *p);

/* Restore support (opbackupd(8), RESTORE, step 1) from plain data, so it can be unit-tested. Returns NULL
 * when restore is supported, else the reason (static or allocated into *ret_reason). read_only_fix: when the
 * basedir's parent is on a read-only file system for the daemon, how to make it writable (appended to the
 * reason). */
int restore_support_reason(bool config_unsupported, const char *config_source, bool yaml_unsupported,
                           const char *env_octoprint, const char *env_opbackup, bool parent_writable,
                           const char *basedir_parent, const char *read_only_fix, bool has_venv,
                           char **ret_reason);

int instance_free_space(Instance *i, uint64_t *ret);

