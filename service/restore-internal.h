/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* What the three parts of a restore share: restore-job.c (the methods, the job, staging), restore-worker.c
 * (validation, extraction and plugins as the instance user), restore-finish.c (the swap and after). */

#include <json-c/json.h>
#include <stdbool.h>

#include "job.h"
#include "restore-swap.h"
#include "worker-pipe.h"

typedef struct RestoreOptions {
        bool skip_plugins;
        bool ignore_plugin_errors;
        bool keep_previous;
        bool restart;
        char *name;                     /* RestoreBackupFromFile: the name to store the file under */
        bool imported;                  /* the backup was copied in for this restore: a refusal removes it */
} RestoreOptions;

typedef struct RestoreJobData {
        RestoreOptions options;
        SwapPlan plan;
        int staging_fd;
        int fetch_fd;                   /* to the fetch helper, for the worker's plugin downloads; -1: none */
        WorkerPipe *worker;
        bool prepared;                  /* staging + journal exist */
        /* from the worker */
        char **excludes;
        char *unknown_json;             /* a(sss) as JSON: [[key, name, url], ...] */
        char **installed, **failed;
        bool ready;
        char *error;
        char *error_name;
} RestoreJobData;

/* In the worker: validates, extracts into staging, reinstalls plugins; userdata is the Job. */
int restore_worker_main(int fd, void *userdata);

/* In the daemon, as messages from the worker arrive and when it exits. */
void on_restore_message(json_object *msg, void *userdata);
void on_restore_exit(int si_code, int status, void *userdata);

/* Ends the job as failed, removing staging (nothing was swapped). */
void restore_fail(Job *j, const char *message);
