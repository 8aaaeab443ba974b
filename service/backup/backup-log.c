/* SPDX-License-Identifier: GPL-2.0-or-later */

/* Job log lines and progress reports from the engines (backup-log.h). */

#include <stdarg.h>
#include <stdio.h>

#include "backup/backup-log.h"
#include "log.h"

void backup_log(const BackupCallbacks *cb, int level, const char *format, ...) {
        char buf[2048];
        va_list ap;

        va_start(ap, format);
        vsnprintf(buf, sizeof(buf), format, ap);
        va_end(ap);
        if (cb && cb->log)
                cb->log(level, buf, cb->userdata);
        else
                log_full(level, "%s", buf);
}

int backup_progress(const BackupCallbacks *cb, const char *stage, uint64_t done, uint64_t total) {
        if (!cb || !cb->progress)
                return 0;
        return cb->progress(stage, done, total, cb->userdata) < 0 ? -ECANCELED : 0;
}
