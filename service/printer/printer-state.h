/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* What OctoPrint's GET /api/job says about the printer, for print-aware backups: plain logic, unit-tested. */

typedef enum PrinterActivity {
        PRINTER_IDLE,           /* not printing: back up now */
        PRINTER_BUSY,           /* printing, paused, or on the way into or out of a print: wait */
        PRINTER_UNKNOWN,        /* no usable answer */
} PrinterActivity;

/* OctoPrint's state strings ("Printing", "Paused", "Printing from SD", "Operational", "Offline after
 * error", ...): is a print going on, or about to, or paused? */
bool printer_state_is_busy(const char *state);

/* Classifies an answer (HTTP status and body). *ret_what is the state string as OctoPrint sent it (made
 * safe to log: printable ASCII, at most 64 characters) for IDLE and BUSY, or why the answer is of no use
 * for UNKNOWN. Returns the activity, or -ENOMEM. */
int printer_activity_from_answer(long status, const char *body, size_t size, char **ret_what);
