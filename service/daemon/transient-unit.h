/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

/* Running a command as a transient service of systemd (Manager.StartTransientUnit), as systemd-run --wait
 * does: a sandboxed oneshot service that has what opbackupd.service lacks on purpose (the network), and
 * nothing of root. Its output comes back through a pipe, line by line. */

typedef struct TransientService TransientService;

typedef struct TransientServiceSpec {
        const char *unit;               /* "NAME.service", not in use */
        const char *description;
        char **argv;                    /* argv[0]: an absolute path */
        const char *user, *group;       /* names or numeric ids; never root */
        const char *working_directory;
        char **environment;             /* NAME=VALUE */
        char **read_write_paths;        /* all else is read-only (ProtectSystem=strict, ProtectHome=read-only) */
        uint64_t timeout_usec;          /* TimeoutStartSec= of the oneshot: its whole run */
} TransientServiceSpec;

typedef struct TransientServiceResult {
        const char *result;             /* the service's Result: "success", "exit-code", "signal", "timeout", ... */
        int exit_code;                  /* ExecMainCode: CLD_EXITED, CLD_KILLED, CLD_DUMPED, or 0 (never ran) */
        int exit_status;                /* ExecMainStatus: the exit status, or the signal */
} TransientServiceResult;

/* A line of the command's output (stdout and stderr together), without its newline; an overlong one in
 * pieces. */
typedef void (*transient_line_fn)(const char *line, void *userdata);
/* Called once, after the last line: r is 0 when the service ran (res says how it ended, the result
 * "success" being exit status 0), else r < 0 and message says why systemd could not run it (not on the
 * bus: -EHOSTDOWN; refused; the answer overdue). done may free the TransientService. */
typedef void (*transient_done_fn)(int r, const TransientServiceResult *res, const char *message, void *userdata);

/* Whether this daemon runs as a unit of systemd ($INVOCATION_ID), the condition for asking it to run
 * transient services: a daemon started by hand (or a test's, on a private bus) runs commands itself. */
bool transient_units_possible(void);

int transient_service_start(sd_bus *bus, const TransientServiceSpec *spec, transient_line_fn on_line,
                            transient_done_fn done, void *userdata, TransientService **ret);
/* Asks systemd to stop the service (Manager.StopUnit); done follows, with the result systemd reports. */
void transient_service_stop(TransientService *t);
/* Stops a service still running, without waiting for it; no callback after this. */
TransientService *transient_service_free(TransientService *t);
