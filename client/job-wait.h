/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Waiting for a job to end (job-wait.c). job_watch_new() subscribes and watches the signals before the
 * caller starts the job; job_watch_wait() waits for the job's JobRemoved while showing progress and log
 * lines (warnings and errors; info lines too with log_info), handles Ctrl-C (ask, or cancel) and the
 * service going away. It returns an exit code; on success *ret_removed is the JobRemoved message, read up
 * to its details a{sv} — or NULL if the user chose to leave the job running. Failed and canceled jobs are
 * reported as "<What> failed: ..." / "<What> canceled." (what: "backup", "restore"); a backup
 * skipped by its "when-idle" check is reported as "Backup skipped: ..." with EXIT_BUSY. */

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

#include "ctl.h"

typedef struct JobWatch JobWatch;

int job_watch_new(Ctl *ctl, const char *what, bool log_info, JobWatch **ret);
int job_watch_wait(JobWatch *w, uint32_t id, const char *path, sd_bus_message **ret_removed);
/* Whether a signal comes from the service the watch subscribed at (for the caller's own matches). */
bool job_watch_from_service(JobWatch *w, sd_bus_message *m);
JobWatch *job_watch_free(JobWatch *w);
static inline void job_watch_freep(JobWatch **w) {
        job_watch_free(*w);
}
