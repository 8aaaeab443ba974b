/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdarg.h>

#include "log.h"

static int max_level = LOG_INFO;
static const char *line_prefix;

void log_set_max_level(int level) {
        max_level = level;
}

void log_set_prefix(const char *prefix) {
        line_prefix = prefix;
}

int log_full_errno(int level, int error, const char *format, ...) {
        char buf[2048];
        va_list ap;
        int saved = errno;

        if (error < 0)
                error = -error;
        if (level > max_level)
                return -error;

        /* %m must describe the error passed in, not whatever errno happens to be. */
        errno = error;
        va_start(ap, format);
        vsnprintf(buf, sizeof(buf), format, ap);
        va_end(ap);

        if (getenv("JOURNAL_STREAM"))
                fprintf(stderr, "<%d>%s%s\n", level, strempty(line_prefix), buf);
        else
                fprintf(stderr, "%s%s\n", strempty(line_prefix), buf);
        errno = saved;
        return -error;
}
