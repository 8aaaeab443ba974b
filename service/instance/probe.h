/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <sys/types.h>

#include "instance/octoconfig.h"

/* What a probe worker finds out about an instance, reading its files as the instance user. */
typedef struct ProbeResult {
        char *error;                    /* the instance is unusable: why */
        OctoConfig octo;
        char *octoprint_version;
        bool has_pip;
} ProbeResult;

/* Forks a worker that drops to uid/gid, reads config_file and the venv, and reports back. Bounded in
 * time (10 s) and in the size of what it sends. */
int probe_run(uid_t uid, gid_t gid, const char *basedir, const char *config_file, const char *venv,
              ProbeResult *ret);

void probe_result_done(ProbeResult *p);

/* The same as a task for a worker (worker.h), which the daemon does not wait for: its JSON is
 * probe_result_to_json()'s. */
typedef struct ProbeArgs {
        const char *basedir;
        const char *config_file;
        const char *venv;
} ProbeArgs;
int probe_task(void *userdata, json_object **ret_json, int *ret_fd);

/* The JSON the worker sends; separate for unit tests. */
char *probe_result_to_json(const ProbeResult *p);
int probe_result_from_json(const char *json, ProbeResult *ret);
