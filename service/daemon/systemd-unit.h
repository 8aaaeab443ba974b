/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

/* Stopping and starting an instance's unit (Unit=) around a restore, through systemd's bus API. */

typedef struct UnitJob UnitJob;

/* Called once: r is 0 when systemd's job ended with "done"; else r < 0 and message says what went
 * wrong (systemd not there, no such unit, the job failed, timeout). done may free the UnitJob. */
typedef void (*unit_job_done_fn)(int r, const char *message, void *userdata);

typedef enum UnitVerb {
        UNIT_STOP,
        UNIT_START,
} UnitVerb;

/* Asks systemd on bus (Manager.StopUnit/StartUnit, mode "replace") and waits, on bus's event loop, for
 * the JobRemoved signal of the job it queued, at most timeout_usec. */
int unit_job_start(sd_bus *bus, UnitVerb verb, const char *unit, uint64_t timeout_usec, unit_job_done_fn done,
                   void *userdata, UnitJob **ret);
UnitJob *unit_job_free(UnitJob *u);

const char *unit_verb_to_string(UnitVerb v);

/* Whether a call to systemd's manager failed because nobody owns org.freedesktop.systemd1 (no systemd as
 * PID 1, or not on this bus). */
static inline bool systemd_not_on_bus(const sd_bus_error *e) {
        return e && (sd_bus_error_has_name(e, SD_BUS_ERROR_SERVICE_UNKNOWN) ||
                     sd_bus_error_has_name(e, SD_BUS_ERROR_NAME_HAS_NO_OWNER));
}    /* "stop", "start" */
