/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <json-c/json.h>
#include <sys/types.h>

/* Short tasks on an instance's files, done by a child that has become the instance user (opbackupd(8),
 * DESCRIPTION): listing backup metadata, deleting, importing, opening a backup for a client. The child
 * answers with JSON and, optionally, one file descriptor. */

typedef struct WorkerReply {
        json_object *json;      /* what the task returned; never NULL on success */
        int fd;                 /* -1 if none */
} WorkerReply;

/* In the child: ret_json is the answer; *ret_fd (initially -1) may be set to a descriptor to pass. */
typedef int (*worker_task_fn)(void *userdata, json_object **ret_json, int *ret_fd);

/* Runs task as uid/gid in a child at idle priority, waits for it (at most timeout_sec) and returns its
 * answer. keep_fd (or -1) stays open in the child; every other descriptor of the daemon is closed. A task that fails returns {"error": "..."} in its JSON rather than failing, so the message
 * reaches the caller; a negative return means the child could not run or answer at all. */
int worker_run_sync(uid_t uid, gid_t gid, const char *name, unsigned timeout_sec, worker_task_fn task,
                    void *userdata, int keep_fd, WorkerReply *ret);

void worker_reply_done(WorkerReply *r);

/* For tasks: {"error": "<formatted>"} */
json_object *worker_error(const char *format, ...) __attribute__((format(printf, 1, 2)));
