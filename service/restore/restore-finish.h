/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <json-c/json.h>

typedef struct Job Job;

/* In the daemon, as messages from the worker arrive and when it exits. */
void on_restore_message(json_object *msg, void *userdata);
void on_restore_exit(int si_code, int status, void *userdata);

/* Ends the job as failed, removing staging (nothing was swapped). */
void restore_fail(Job *j, const char *message);
