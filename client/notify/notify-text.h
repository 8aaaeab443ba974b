/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* What opbackup-notify shows: the summary, body, urgency and icon of a desktop notification for the end of a
 * job (JobRemoved) or an upload to a remote (BackupUploaded). Plain data in, plain data out; no bus. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum Urgency {
        URGENCY_LOW = 0,
        URGENCY_NORMAL = 1,
        URGENCY_CRITICAL = 2,           /* stays until the person closes it: failures */
} Urgency;

typedef struct UploadOutcome {
        const char *remote;
        const char *result;             /* "done" or "failed" */
        const char *error;
} UploadOutcome;

/* A job's end, from JobRemoved's arguments and details (org.opbackup.backup1(5)). Strings may be NULL. */
typedef struct JobOutcome {
        const char *operation;          /* "backup", "restore", "upload", "fetch" */
        const char *instance;
        const char *result;             /* "done", "failed", "canceled" */
        const char *error;
        const char *name;               /* the backup's name, when the details have one */
        uint64_t size;                  /* bytes, when has_size */
        bool has_size;
        bool skipped;                   /* a scheduled backup skipped by its when-idle check */
        const UploadOutcome *uploads;
        size_t n_uploads;
        size_t n_plugins_missing;       /* a restore's plugins that could not be reinstalled */
} JobOutcome;

typedef struct Notification {
        char *summary;
        char *body;                     /* markup of the Desktop Notifications spec: & < > escaped */
        Urgency urgency;
        const char *icon;               /* a freedesktop icon name */
        const char *category;           /* a freedesktop notification category */
} Notification;

/* 1 and *ret filled when the job's end is worth telling, 0 when not (a fetch that worked, an upload whose
 * remotes each get a BackupUploaded), -ENOMEM. */
int notification_for_job(const JobOutcome *o, Notification *ret);

/* A backup copied to a remote (BackupUploaded). 0, or -ENOMEM. */
int notification_for_upload(const char *instance, const char *name, const char *remote, Notification *ret);

void notification_done(Notification *n);

/* s with &, < and > as entities: names and error messages are text, not markup. NULL on ENOMEM. */
char *markup_escape(const char *s);
