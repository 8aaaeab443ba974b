/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* What a print-aware backup does when it cannot wait any longer or cannot learn the printer's state. */
typedef enum PrintAction {
        PRINT_ACTION_DEFAULT,         /* not configured: instance_config_finish() picks */
        PRINT_ACTION_BACKUP,
        PRINT_ACTION_SKIP,
} PrintAction;

#define PRINT_POLL_SEC_DEFAULT 60U
#define PRINT_WAIT_MAX_SEC_DEFAULT (6U * 3600U)

/* The daemon's own configuration (opbackupd.conf(5)): <dir>/opbackupd.conf holds defaults for every section,
 * <dir>/instances.d/<name>.conf one instance each (the file name without ".conf" is the instance name).
 * Parsed with inih. */

typedef struct InstanceConfig {
        char *name;
        char *source;                 /* the file it came from, or "autodetect" */

        /* [OctoPrint] */
        char *basedir;
        char *config_file;            /* default: basedir/config.yaml */
        char *python;                 /* the venv's python; the venv is dirname(dirname(python)) */
        char *user;                   /* default: owner of basedir */
        char *unit;
        char *api_url;                /* OctoPrint's URL, for print-aware backups ("when-idle") */
        char *api_key_file;           /* its API key, in a file only root may read */

        /* [Backup] */
        char *backup_folder;          /* default: plugins.backup.path, else basedir/data/backup */
        unsigned keep;                /* 0 = keep all */
        int compression_level;        /* 0..9, default 5 */
        int files_cache;              /* FilesCache=: 1 yes (default), 0 no; -1 not set */
        char **copy_to;               /* CopyTo=: remotes (remotes.d/<name>.conf) every backup is copied to */

        /* [Restore] */
        bool restore_unsupported;
        char *plugin_repository;
        char **bundled_plugins;       /* default: file_check firmware_check pi_support */

        /* [Schedule]: scheduled backups, and every backup asked for "when-idle" */
        char **schedule_excludes;     /* folder ids left out of scheduled backups */
        unsigned print_poll_sec;      /* how often OctoPrint is asked while it prints; default 60 */
        unsigned print_wait_max_sec;  /* how long to wait at most; default 6 h */
        PrintAction on_still_printing;   /* after print_wait_max_sec; default skip */
        PrintAction on_printer_unknown;  /* OctoPrint cannot be asked; default backup */

        /* Set when the file cannot be used: the reason, for the Instance's Usable/UnusableReason. */
        char *error;
} InstanceConfig;

typedef struct DaemonConfig {
        unsigned idle_timeout_sec;    /* [Daemon] IdleTimeoutSec=, 0 = never exit */
        InstanceConfig defaults;      /* the [OctoPrint]/[Backup]/[Restore] sections of opbackupd.conf */
        InstanceConfig **instances;   /* sorted by name */
        size_t n_instances;
        struct RemoteConfig **remotes;   /* remotes.d/\*.conf (remote/remote-config.h), sorted by name */
        size_t n_remotes;
} DaemonConfig;

/* Loads dir/opbackupd.conf (optional), dir/instances.d/\*.conf and dir/remotes.d/\*.conf. A missing dir is an empty config.
 * A broken instance file does not fail the load: the instance is kept with ->error set, so that it
 * shows up as unusable with its reason. Only out-of-memory fails. */
int daemon_config_load(const char *dir, unsigned default_idle_timeout_sec, DaemonConfig *ret);

/* When no instance is configured: each <home_root>/\*\/.octoprint/config.yaml becomes an instance named
 * after the home folder (home_root is "/home" except in tests). Venv guessed as ~/oprint (OctoPi) or
 * ~/OctoPrint/venv. Does nothing if c already has instances, so it can be called unconditionally.
 * Returns the number of instances added, or a negative errno (-ENOMEM). */
int daemon_config_autodetect(DaemonConfig *c, const char *home_root);

/* Parses one instance file on top of the defaults (NULL: none). Never fails except on OOM; problems go
 * to ->error. Call instance_config_finish() afterwards (daemon_config_load() does). */
int instance_config_load(const char *path, const char *name, const InstanceConfig *defaults,
                         InstanceConfig **ret);

/* Fills in what was not given: config_file from basedir, etc. Sets ->error if required keys are missing.
 * Idempotent. Returns 0, or -ENOMEM. */
int instance_config_finish(InstanceConfig *ic);

InstanceConfig *instance_config_free(InstanceConfig *ic);
void daemon_config_done(DaemonConfig *c);
