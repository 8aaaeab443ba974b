/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdint.h>

#include "util.h"

/* How the engines that run inside a worker (backup, restore, plugin reinstall) report to their job: log
 * lines and progress, through callbacks the worker sets up (or the daemon's log when there are none). */

typedef struct BackupCallbacks {
        void (*log)(int level, const char *line, void *userdata);   /* job log lines (syslog levels) */
        int (*progress)(const char *stage, uint64_t done, uint64_t total, void *userdata); /* <0 → cancel */
        /* Bytes available to the worker in the folder dirfd refers to. NULL = fstatvfs() (f_bavail). */
        int (*free_space)(int dirfd, uint64_t *ret_bytes, void *userdata);
        void *userdata;
} BackupCallbacks;

/* Helpers the engine's parts share: a job log line (printf-style) and a progress report that says
 * whether to go on (0) or stop (-ECANCELED). Both accept cb == NULL. */
void backup_log(const BackupCallbacks *cb, int level, const char *format, ...) _printf_(3, 4);
int backup_progress(const BackupCallbacks *cb, const char *stage, uint64_t done, uint64_t total);
