/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "worker/worker.h"

/* A bus method answered by a worker, without blocking the daemon: the handler starts the worker and
 * returns 1 without replying; the reply is sent when the worker has answered. The method call is kept
 * (referenced) until then. */

/* Builds and sends the reply to m from the worker's answer (r < 0: the worker could not run or answer).
 * A negative return or an error set in error is sent as the reply instead. */
typedef int (*worker_method_reply_fn)(sd_bus_message *m, int r, WorkerReply *reply, void *userdata,
                                      sd_bus_error *error);

/* Runs task (see worker_start()) for the method call m and returns 1, or a negative errno when the worker
 * cannot start. userdata belongs to the call from here on: free_userdata (if not NULL) frees it after
 * reply, or at once when the worker cannot start. */
int worker_method_start(sd_bus_message *m, uid_t uid, gid_t gid, const char *name, unsigned timeout_sec,
                        worker_task_fn task, void *task_userdata, worker_method_reply_fn reply, void *userdata,
                        void (*free_userdata)(void *));

/* A worker's {"error": ..., "error_name": ...} as a D-Bus error; 0 if there was none. */
int worker_reply_error(const WorkerReply *reply, sd_bus_error *error);
