/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "plugins/plugins.h"

typedef struct Job Job;
typedef struct RestorePip RestorePip;

/* pip for a restore's plugins (opbackupd(8), RESTORE, step 5), run by systemd as a transient unit with the
 * network, as the instance user: the worker downloads a plugin into a folder of its own inside staging and
 * asks the daemon, over the worker pipe, to have it installed; the daemon checks that the file is where it
 * must be, asks systemd (daemon/transient-unit.c), writes pip's output into the job's log and answers on a
 * socket only the two of them hold. The daemon never runs anything as root, and pip's only argument that
 * comes from the worker is the path of that file. */

/* In the daemon, before the worker starts: the socket for the answers, when the daemon runs under systemd
 * (else the worker runs pip itself). */
int restore_pip_setup(Job *j);
/* The worker's {"pip": ...} message; false for any other. */
bool restore_pip_on_message(Job *j, json_object *msg);
/* Job.Cancel: stops a running pip unit. */
void restore_pip_cancel(Job *j);
RestorePip *restore_pip_free(RestorePip *p);

/* In the worker. */
typedef struct RestorePipClient {
        int send_fd;                    /* the worker pipe */
        int reply_fd;                   /* the answers; -1: no daemon to ask */
        const char *staging;            /* the work folder must be directly inside */
} RestorePipClient;

/* plugin_pip_run_fn, userdata a RestorePipClient. */
int restore_pip_run(const char *work_dir, const char *file, uint64_t timeout_usec, const BackupCallbacks *cb,
                    PipRun *ret, void *userdata);

/* A name for the work folder inside staging: PIP_WORK_PREFIX and 16 hex digits. */
#define PIP_WORK_PREFIX ".opbackup-pip-"
