/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <signal.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Runs a helper program (an additional-excludes hook) as the current user with a time limit: input on
 * stdin, stdout and stderr captured up to limits. The program gets its own process group, default signal
 * dispositions, an empty signal mask, no other fds, "/" as working directory and only the environment
 * given. When it outlives the limit or prints too much, its whole process group is killed. */

typedef struct HookResult {
        char *out, *err;                 /* NUL-terminated; err is cut at HOOK_STDERR_MAX */
        size_t out_size, err_size;
        int status;                      /* as from waitpid() */
        bool timed_out, too_large;
} HookResult;

#define HOOK_STDERR_MAX (16U * 1024U)

/* Returns 0 when the program ran (whatever its outcome, see *ret) or a negative errno when it could not
 * be started. SIGPIPE is ignored and SIGCHLD default while it runs, then restored. */
/* Set (from a signal handler) to stop waiting for a running hook and kill it. */
extern volatile sig_atomic_t hook_run_abort;

int hook_run(const char *path, char **env, const char *input, uint64_t timeout_usec, size_t max_output,
             HookResult *ret);
void hook_result_done(HookResult *h);
