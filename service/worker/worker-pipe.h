/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <json-c/json.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

/* Long-running workers (backups, restores): a child that has become the instance user, runs at idle
 * priority and sends JSON messages, one per line, to the daemon's event loop. */

typedef struct WorkerPipe WorkerPipe;

/* In the child. fd is where to send messages (worker_send). The return value is the exit status. */
typedef int (*worker_main_fn)(int fd, void *userdata);
typedef void (*worker_message_fn)(json_object *msg, void *userdata);
/* After the child is gone and every message it sent was delivered. si_code is CLD_EXITED (status = exit
 * code) or CLD_KILLED/CLD_DUMPED (status = signal). */
typedef void (*worker_exit_fn)(int si_code, int status, void *userdata);

int worker_pipe_start(sd_event *e, uid_t uid, gid_t gid, const char *name, worker_main_fn main_fn,
                      void *main_userdata, const int *keep_fds, size_t n_keep_fds, worker_message_fn on_message,
                      worker_exit_fn on_exit, void *userdata, WorkerPipe **ret);
void worker_pipe_kill(WorkerPipe *w, int sig);
pid_t worker_pipe_pid(WorkerPipe *w);
WorkerPipe *worker_pipe_free(WorkerPipe *w);

/* Child side. */
int worker_send(int fd, json_object *msg);    /* consumes msg */
extern volatile sig_atomic_t worker_cancel_requested;   /* set by SIGTERM in the child */

/* Callbacks for the engines (BackupCallbacks' log and progress), sending {"log", "level"} and
 * {"stage", "done", "total"} messages; userdata is a WorkerReporter. Progress is sent at most every
 * 50 ms (and always when the stage changes or ends); it returns -ECANCELED once SIGTERM arrived. */
typedef struct WorkerReporter {
        int fd;
        uint64_t last_progress_ns;
        char *last_stage;               /* a new stage is always reported at once */
} WorkerReporter;
void worker_report_log(int level, const char *line, void *userdata);
int worker_report_progress(const char *stage, uint64_t done, uint64_t total, void *userdata);

/* Closes every descriptor but 0, 1, 2 and keep[]: a worker must not hold the daemon's bus connection. */
void close_all_fds_except(const int *keep, size_t n_keep);
