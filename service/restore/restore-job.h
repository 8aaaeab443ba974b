/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <systemd/sd-bus.h>

#include "daemon/systemd-unit.h"
#include "instance/instance.h"
#include "restore/restore-swap.h"
#include "worker/command.h"
#include "worker/worker-pipe.h"

typedef struct Daemon Daemon;
typedef struct Job Job;
typedef struct RestorePip RestorePip;

/* A restore in three files: restore-job.c (the methods, the job, staging), restore-worker.c (validation,
 * extraction and plugins as the instance user), restore-finish.c (the swap and after). What they share
 * is the job's data: */

typedef struct RestoreOptions {
        bool skip_plugins;
        bool ignore_plugin_errors;
        bool keep_previous;
        bool restart;
        char *name;                     /* RestoreBackupFromFile: the name to store the file under */
        bool imported;                  /* the backup was copied in for this restore: a refusal removes it */
        char *remote;                   /* RestoreBackup's "remote": fetch the backup from there first */
} RestoreOptions;

typedef struct RestoreJobData {
        RestoreOptions options;
        SwapPlan plan;
        int staging_fd;
        int fetch_fd;                   /* to the fetch helper, for the worker's plugin downloads; -1: none */
        WorkerPipe *worker;
        int pip_fd, pip_worker_fd;      /* answers to the worker's requests for pip (restore-pip.c); -1: none,
                                         * the worker runs pip itself */
        RestorePip *pip;                /* pip running as a transient unit of systemd */
        struct RemoteFetch *fetch;      /* option "remote": the download before the restore proper */
        char *fetched_name;             /* ... and the name it got in the backup folder */
        bool prepared;                  /* staging + journal exist */
        /* after the worker, one at a time (restore-finish.c) */
        UnitJob *unit_job;              /* systemd stopping or starting Unit= */
        InstanceProbe *probe;           /* reading the restored config.yaml */
        Command *restart;               /* config.yaml's serverRestartCommand */
        char *fail_message;             /* why it failed, while the unit restarts or the passed copy goes */
        WorkerPipe *cleanup;            /* removing staging or the old basedir */
        bool cleanup_abort;             /* staging */
        void (*cleanup_done)(Job *j, const char *error);
        char *cleanup_error;
        /* from the worker */
        char **excludes;
        char *unknown_json;             /* a(sss) as JSON: [[key, name, url], ...] */
        char **installed, **failed;
        bool ready;
        char *error;
        char *error_name;
} RestoreJobData;

int method_restore_backup_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_restore_backup_from_file_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error);

/* At start-up: finish or roll back restores a killed daemon left half done. */
int restores_recover(Daemon *d);
