/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backup/backup-log.h"
#include "instance/distinfo.h"
#include "plugins/plugins-repo.h"

/* Reinstalling a backup's plugins from OctoPrint's plugin repository (opbackupd(8), RESTORE, step 5). Runs
 * inside a worker that is already the instance user: pip runs with that user's privileges only, and the
 * repository and the archives are fetched through the fetch helper (fetch.h: opbackupd has no network of its
 * own), or as that user when there is no helper. */

#define UNKNOWN_PLUGINS_FILE "unknown_plugins_from_restore.json"

typedef struct PluginOutcome {
        PluginInfo *installed;  size_t n_installed;    /* newly installed (dry run: would be installed) */
        PluginInfo *already;    size_t n_already;      /* were installed already: skipped */
        PluginInfo *unknown;    size_t n_unknown;      /* not in the repository, incompatible, or repository unreachable */
        PluginInfo *failed;     size_t n_failed;       /* download or install failed */
} PluginOutcome;

/* How pip ran when something else ran it (PluginRequest.pip_run). */
typedef struct PipRun {
        int status;                     /* a wait status: W_EXITCODE(code, 0), or the signal that killed it */
        bool timed_out;
        char *output;                   /* the tail of its output, whole lines; may be NULL */
        bool logged;                    /* its output went into the job's log already, line by line */
} PipRun;

/* Runs <venv>/bin/python -m pip install ... file (inside work_dir) somewhere else than in this process.
 * 0: it ran, *ret says how; -EOPNOTSUPP: it could not be run there (said in the log when it matters), pip
 * runs here instead; -ECANCELED: cb's progress() asked to stop; other negative errno: it could not run. */
typedef int (*plugin_pip_run_fn)(const char *work_dir, const char *file, uint64_t timeout_usec,
                                 const BackupCallbacks *cb, PipRun *ret, void *userdata);

typedef struct PluginRequest {
        const PluginInfo *plugins; size_t n_plugins;   /* from the backup's plugin_list.json */
        const char *repository_url;                    /* NULL/"" = PLUGIN_REPOSITORY_DEFAULT */
        const char *venv;                              /* <venv>/bin/python -m pip install ... FILE */
        const char *octoprint_version;                 /* for compatibility.octoprint */
        const char *work_dir;                          /* private folder for downloads and pip's temp files */
        int fetch_fd;                                  /* connection to the fetch helper (fetch.h), or -1:
                                                        * fetch in this process. 0 is a descriptor: set it */
        bool dry_run;                                  /* decide only (validation pass): no download, no pip */
        bool no_pip;                                   /* the venv has no pip: what would be installed is
                                                        * reported failed, without a download */
        plugin_pip_run_fn pip_run;                     /* runs pip elsewhere (a restore: a transient unit of
                                                        * systemd, restore-pip.c); NULL: plugin_pip_install() */
        void *pip_userdata;

        /* Limits; 0 = the defaults below. Tests lower them. */
        uint64_t max_repository_size;                  /* 32 MiB */
        uint64_t max_archive_size;                     /* 256 MiB */
        uint64_t pip_timeout_usec;                     /* 10 min per plugin */
} PluginRequest;

#define PLUGIN_REPOSITORY_MAX (32ULL * 1024 * 1024)
#define PLUGIN_ARCHIVE_MAX (256ULL * 1024 * 1024)
#define PLUGIN_PIP_TIMEOUT_USEC (10ULL * 60 * 1000000)

/* For every plugin of the list, in order (duplicate keys once): already installed in the venv → skipped;
 * else in the repository and compatible → downloaded into work_dir and installed with pip; else unknown.
 * When the repository cannot be fetched or parsed, every plugin not installed is unknown and the call
 * still succeeds (a log line says why). Failed installs are reported in ret->failed, not as an error:
 * whether they fail the restore is the caller's decision. Progress stage "plugins": done/total plugins.
 * Downloads (stage "downloading": bytes) follow the rules of fetch_perform() (fetch.h); an answer other
 * than 2xx is a failed download. Returns 0, or a negative errno with *ret_error: -ECANCELED (progress()
 * asked to stop), -ENOENT (the venv has no site-packages), -ENOMEM, other I/O errors on work_dir, -EBADF
 * when fetch_fd is not a socket. *ret is filled only on success. */
int plugins_reinstall(const PluginRequest *req, const BackupCallbacks *cb, PluginOutcome *ret, char **ret_error);
void plugin_outcome_done(PluginOutcome *o);

/* Writes UNKNOWN_PLUGINS_FILE into dir_fd (the backup folder): the JSON array OctoPrint writes
 * ([{"key": ..., "name": ..., "url": ...}, ...]), through a hidden temp file, fsync and rename. Like
 * OctoPrint, nothing is written (and an older file is left alone) when n is 0. ret_error may be NULL. */
int plugins_write_unknown(int dir_fd, const PluginInfo *p, size_t n, char **ret_error);

/* A copy of s fit for a log line: control characters and bytes of invalid UTF-8 become '?'. */
char *plugin_log_string(const char *s);
