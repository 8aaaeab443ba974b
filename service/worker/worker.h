/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <json-c/json.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

/* Short tasks on an instance's files, done by a child that has become the instance user (opbackupd(8),
 * DESCRIPTION): listing backup metadata, deleting, importing, opening a backup for a client. The child
 * answers with JSON and, optionally, one file descriptor. The daemon never waits for it: the child, its answer and its
 * time limit are event sources of the daemon's loop, which meanwhile serves other callers. */

typedef struct WorkerReply {
        json_object *json;      /* what the task returned; never NULL on success */
        int fd;                 /* -1 if none */
} WorkerReply;

typedef struct Worker Worker;

/* In the child: ret_json is the answer; *ret_fd (initially -1) may be set to a descriptor to pass. */
typedef int (*worker_task_fn)(void *userdata, json_object **ret_json, int *ret_fd);

/* Called once, when the child is gone and its answer read: r is 0 and reply holds the answer, or r is
 * negative when the child could not run or answer at all (-ETIMEDOUT: it was killed at the time limit).
 * done may take reply->json and reply->fd (setting them to NULL and -1) and may free the worker. */
typedef void (*worker_done_fn)(int r, WorkerReply *reply, void *userdata);

/* Forks a child that becomes uid/gid at idle priority and runs task (which sees the daemon's memory as it
 * was at this call: task_userdata need not outlive the call). keep_fd (or -1) stays open in the child;
 * every other descriptor of the daemon is closed. A task that fails returns {"error": "..."} in its JSON
 * rather than failing, so the message reaches the caller. The child is killed after timeout_sec. */
int worker_start(sd_event *e, uid_t uid, gid_t gid, const char *name, unsigned timeout_sec, worker_task_fn task,
                 void *task_userdata, int keep_fd, worker_done_fn done, void *userdata, Worker **ret);
/* Tasks whose answer may be large send it in frames, each a JSON value of at most 4 MiB, as they go; the
 * daemon hands each to frame() as it arrives (with userdata of worker_start()), so neither side holds the
 * whole. frame() must not free the worker; a negative return stops the worker (done() gets it). Each
 * frame gives the worker its time limit anew. The task's own answer still comes last, to done(), and is
 * held to the same 4 MiB when frames are expected; a task that sent frames passes no fd. Set right after worker_start(), before the event loop runs again. */
typedef int (*worker_frame_fn)(json_object *frame, void *userdata);
void worker_set_frame_handler(Worker *w, worker_frame_fn frame);
/* In the child: sends one frame. */
int worker_send_frame(json_object *frame);

/* Kills a child still running; done is not called then. */
Worker *worker_free(Worker *w);
static inline void worker_freep(Worker **w) {
        worker_free(*w);
}

/* How many workers run: an idle daemon has none. */
unsigned worker_running(void);

/* The same, waited for: only for the start-up, before the daemon serves anyone. */
int worker_run_sync(uid_t uid, gid_t gid, const char *name, unsigned timeout_sec, worker_task_fn task,
                    void *userdata, int keep_fd, WorkerReply *ret);

void worker_reply_done(WorkerReply *r);

/* For tasks: {"error": "<formatted>"} */
json_object *worker_error(const char *format, ...) __attribute__((format(printf, 1, 2)));
