/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "remote/remote-client.h"

typedef struct Instance Instance;
typedef struct Job Job;
typedef struct RemoteTask RemoteTask;

/* Transfers between an instance's backup folder and its remotes, without blocking the daemon: the daemon
 * (root) reads each remote's credentials and connects to opbackup-fetch's socket, then a worker — the
 * instance user, not dumpable — opens the backup and runs the transfers (remote-client.h), reporting
 * progress (stage "uploading"/"fetching" of the job, if any) and one outcome per remote. */

typedef struct RemoteOutcome {
        char *remote;
        char *result;                   /* "done" or "failed" */
        char *error;                    /* "" when done */
        char *kind;
        char *url;
} RemoteOutcome;

typedef void (*remote_task_done_fn)(RemoteTask *t, void *userdata);

struct RemoteTask {
        Instance *instance;
        Job *job;
        RemoteOp op;
        char **remotes;
        char *name;
        int fd;                         /* GET: where the download goes */
        uint64_t max_size;              /* GET: at most this much (the room in the backup folder) */
        void *worker;                   /* WorkerPipe */
        /* prepared by the daemon for the worker; wiped once it runs */
        RemoteCredentials *credentials;
        char **ca;
        int *helper_fds;
        char **prepare_errors;
        size_t n;
        /* what came back */
        RemoteOutcome *outcomes;
        size_t n_outcomes;
        RemoteEntry *entries;
        size_t n_entries, n_entries_allocated;
        bool canceled;
        remote_task_done_fn done;
        void *userdata;
};

/* Starts op on the instance's remotes (PUT: each of remotes, in order; the others: remotes[0]). done() is
 * called once, when the worker is gone, with an outcome per remote. Returns 0, or a negative errno (then done()
 * is not called). */
int remote_task_start(Instance *i, Job *job, RemoteOp op, char *const *remotes, const char *name, int fd,
                      remote_task_done_fn done, void *userdata, RemoteTask **ret);
void remote_task_cancel(RemoteTask *t);
RemoteTask *remote_task_free(RemoteTask *t);

/* The "uploads" entry of JobRemoved's details: a(sss) remote, result, error. */
int remote_task_append_uploads(sd_bus_message *m, const RemoteTask *t);
/* A failed outcome as a D-Bus error (NoSuchBackup for a backup the remote does not have). */
int remote_outcome_to_bus_error(const RemoteOutcome *o, sd_bus_error *error);
/* The remotes of the daemon's configuration by name; NULL if none. */
const RemoteConfig *remote_lookup(Instance *i, const char *name);
