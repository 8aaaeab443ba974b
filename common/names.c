/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "names.h"
#include "util.h"

static bool is_alnum_ascii(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool backup_name_is_valid(const char *name) {
        size_t n;

        if (!name)
                return false;
        n = strlen(name);
        /* One leading character, 0..200 middle characters, then ".zip". */
        if (n < 5 || n > BACKUP_NAME_MAX || !endswith(name, ".zip"))
                return false;
        if (!is_alnum_ascii(name[0]))
                return false;
        for (size_t i = 1; i < n - 4; i++)
                if (!is_alnum_ascii(name[i]) && !strchr("._-", name[i]))
                        return false;
        return true;
}

char *backup_prefix_from_appearance(const char *appearance_name) {
        const char *s = strempty(appearance_name);
        char *p = malloc(strlen(s) + 1), *q = p;
        bool in_run = false;

        if (!p)
                return NULL;
        for (; *s; s++) {
                if (is_alnum_ascii(*s) || strchr("-_.", *s)) {
                        *q++ = *s;
                        in_run = false;
                } else if (!in_run) {
                        *q++ = '-';
                        in_run = true;
                }
        }
        *q = 0;
        /* Beyond opbackupd(8), ARCHIVE FORMAT: the generated name must itself pass backup_name_is_valid(), or
         * the backup could not be deleted or opened by name. So drop leading non-alphanumerics
         * ("  My Printer" → "My-Printer", not "-My-Printer") and cap the length. */
        s = p;
        while (*s && !is_alnum_ascii(*s))
                s++;
        memmove(p, s, strlen(s) + 1);
        if (strlen(p) > 150)
                p[150] = 0;
        if (!*p) {
                free(p);
                return strdup("octoprint");
        }
        return p;
}

char *backup_filename(const char *prefix, time_t when, bool scheduled) {
        struct tm tm;
        char stamp[32];
        char *s;

        if (!localtime_r(&when, &tm))
                return NULL;
        strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
        if (asprintf(&s, "%s-backup-%s%s.zip", prefix, stamp, scheduled ? BACKUP_SCHEDULED_SUFFIX : "") < 0)
                return NULL;
        return s;
}

char *backup_name_variant(const char *base, unsigned n) {
        char *s;

        if (n == 0)
                return strdup(base);
        if (asprintf(&s, "%.*s.%u.zip", (int) (strlen(base) - strlen(".zip")), base, n) < 0)
                return NULL;
        return s;
}

bool backup_name_is_variant(const char *name, const char *base) {
        size_t stem = strlen(base) - strlen(".zip");
        const char *p = name + stem + 1;
        unsigned n = 0;

        if (streq(name, base))
                return true;
        if (!endswith(base, ".zip") || strncmp(name, base, stem) != 0 || name[stem] != '.')
                return false;
        /* ".N.zip", N from 1 without leading zeros, as backup_name_variant() writes it */
        if (*p < '1' || *p > '9')
                return false;
        for (; *p >= '0' && *p <= '9'; p++)
                if ((n = n * 10 + (unsigned) (*p - '0')) > BACKUP_NAME_VARIANTS_MAX)
                        return false;
        return streq(p, ".zip");
}

bool instance_name_is_valid(const char *name) {
        size_t n;

        if (!name)
                return false;
        n = strlen(name);
        if (n == 0 || n > 64 || name[0] == '.')
                return false;
        for (size_t i = 0; i < n; i++)
                if (!is_alnum_ascii(name[i]) && !strchr("._-", name[i]))
                        return false;
        return true;
}
