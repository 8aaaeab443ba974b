/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <inttypes.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "daemon/daemon.h"

typedef enum JobOperation {
        JOB_BACKUP,
        JOB_RESTORE,
        JOB_UPLOAD,                     /* UploadBackup: a local backup copied to remotes */
        JOB_FETCH,                      /* FetchRemoteBackup: a remote backup copied into the backup folder */
} JobOperation;

typedef enum JobState {
        JOB_QUEUED,
        JOB_RUNNING,
        JOB_FINISHED,
} JobState;

/* A long operation as a bus object (org.opbackup.backup1(5), JOB OBJECTS), as systemd-importd's transfers. */
struct Job {
        Job *next;
        Daemon *daemon;
        Instance *instance;
        uint32_t id;
        char *object_path;
        JobOperation operation;
        JobState state;
        char *name;                     /* backup file name */
        char *stage;                    /* one of the stages in job.c's table */
        double progress;                /* of the current stage: done / total of what it counts */
        uint64_t bytes_done, bytes_total;
        uint64_t items_done, items_total; /* files found, plugins: what the stage says */
        uid_t started_by;
        char *action;                   /* the polkit action that started it: Cancel needs the same */
        bool cancel_requested;
        char *sender;                   /* unique bus name of the caller that started it */

        uint64_t last_progress_usec;
        bool progress_dirty;
        sd_event_source *progress_timer;

        /* from its JobDescription */
        int (*start)(Job *j);
        void (*cancel)(Job *j);
        void *data;
        void (*free_data)(void *data);
};

const char *job_operation_to_string(JobOperation op);

/* Registers the job object tree (fallback vtable + node enumerator). */
int bus_job_register(Daemon *d);
void jobs_free_all(Daemon *d);

/* Everything a job is from its first moment. job_new() takes it whole: JobNew goes out, and the job can be
 * listed and introspected, from inside job_new(), so there must be no window in which a job exists without
 * its name, its operation's hooks or its data. */
typedef struct JobDescription {
        Instance *instance;
        JobOperation operation;
        const char *action;             /* the polkit action that allowed it: Cancel needs the same */
        sd_bus_message *request;        /* the method call that asked for it: its sender is the starter */
        const char *name;               /* backup file name (copied) */
        int (*start)(Job *j);           /* starts the job when its turn comes (instance_start_next_job()) */
        void (*cancel)(Job *j);         /* stops it, queued or running */
        void *data;                     /* operation-specific; the job owns it from job_new() on, even when
                                         * job_new() fails */
        void (*free_data)(void *data);
} JobDescription;

/* Creates the job (state JOB_QUEUED, stage "queued"), adds it to the daemon's list and announces it with
 * JobNew to subscribers and the starter. The caller replies to the request and starts the queue. */
int job_new(const JobDescription *desc, Job **ret);
/* What every job-starting method does: job_new(), the reply (u id, o path) to desc->request, and the
 * instance's queue started. */
int job_new_and_reply(const JobDescription *desc);
/* Starts the oldest queued job of the instance unless one is running. */
void instance_start_next_job(Instance *i);
Job *job_free(Job *j);
/* Ends the job: JobRemoved(result, error, details) to subscribers and the starter, then frees it. */
void job_finish(Job *j, const char *result, const char *error, signal_append_fn append_details,
                void *details_userdata);
void job_log(Job *j, int level, const char *line);
/* Moves the job to stage (NULL: stays) with done/total of what that stage counts: bytes or items, by the
 * stage table in job.c. A stage the job's operation does not have is ignored (workers report stages by
 * name). PropertiesChanged is rate-limited to ~5/s; stage changes go out at once. */
void job_set_progress(Job *j, const char *stage, uint64_t done, uint64_t total);
void job_cancel(Job *j);
/* Applies a worker's "log" or "stage" message to the job; false for other messages. */
struct json_object;
bool job_apply_worker_message(Job *j, struct json_object *msg);
