/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <systemd/sd-bus.h>

#include "restore/restore-swap.h"
#include "worker/worker-pipe.h"

typedef struct Daemon Daemon;

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
        struct RemoteFetch *fetch;      /* option "remote": the download before the restore proper */
        char *fetched_name;             /* ... and the name it got in the backup folder */
        bool prepared;                  /* staging + journal exist */
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
