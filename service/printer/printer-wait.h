/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Print-aware backups (CreateBackup option "when-idle"): before the backup worker starts, a short-lived
 * worker, already the instance user, asks OctoPrint's GET /api/job (through the fetch helper, fetch.h)
 * and waits while the printer prints, within the instance's [Schedule] limits. Its findings are job log
 * lines; the job's stage is "waiting-for-printer" meanwhile, and Cancel ends the waiting. */

typedef struct Job Job;
typedef struct PrinterWait PrinterWait;

typedef enum PrinterVerdict {
        PRINTER_VERDICT_BACKUP,         /* not printing, or proceed anyway (configuration) */
        PRINTER_VERDICT_SKIP,           /* do not back up now; reason says why */
        PRINTER_VERDICT_CANCELED,       /* the job was canceled while waiting */
} PrinterVerdict;

typedef void (*printer_wait_done_fn)(Job *j, PrinterVerdict verdict, const char *reason);

/* Returns 1 when the waiting began: done() follows, unless printer_wait_free() comes first. Returns 0 when
 * there is nothing to wait for (no API configured, or a key file that must not be used): then
 * *ret_skip_reason is NULL to back up now, or why the backup is skipped. Negative errno on failure. */
int printer_wait_start(Job *j, printer_wait_done_fn done, PrinterWait **ret, char **ret_skip_reason);

/* Stops the waiting; done() follows with PRINTER_VERDICT_CANCELED. */
void printer_wait_cancel(PrinterWait *w);
PrinterWait *printer_wait_free(PrinterWait *w);

/* Reads an API key from a file that only root may read or write (owned by root, no group or other
 * permissions, a regular file, not a symlink). 0 and the key, or a negative errno and *ret_why. */
int printer_read_api_key(const char *path, char **ret_key, char **ret_why);

/* "45 s", "12 min", "2 h 5 min": for log lines. buf of at least 32 bytes. */
const char *format_duration(char *buf, size_t size, unsigned long long sec);
