/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <syslog.h>

#include "util.h"

/* Logging to stderr. Under systemd (JOURNAL_STREAM set) each line gets a "<N>" priority prefix
 * that journald understands; otherwise plain lines. */

void log_set_max_level(int level);
void log_set_prefix(const char *prefix);     /* e.g. "worker[1234]: ", NULL for none */

/* Logs and returns -abs(error) (or 0 if error is 0), so callers can write
 * "return log_error_errno(r, "...: %m");" — %m expands to strerror(abs(error)). */
int log_full_errno(int level, int error, const char *format, ...) _printf_(3, 4);

#define log_full(level, ...) (void) log_full_errno((level), 0, __VA_ARGS__)
#define log_debug(...) log_full(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...) log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_full(LOG_ERR, __VA_ARGS__)
#define log_error_errno(e, ...) log_full_errno(LOG_ERR, (e), __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, (e), __VA_ARGS__)
#define log_oom() log_full_errno(LOG_ERR, ENOMEM, "Out of memory.")
