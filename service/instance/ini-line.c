/* SPDX-License-Identifier: GPL-2.0-or-later */

/* inih's line reader for opbackup's INI files (ini-line.h). */

#include <string.h>

#include "instance/ini-line.h"

char *ini_line_read(const char **pos, const char *end, unsigned *line, char *str, int num, bool *ret_too_long) {
        const char *start = *pos, *nl, *e;
        size_t n;

        *ret_too_long = false;
        if (*pos >= end || num < 2)
                return NULL;
        nl = memchr(*pos, '\n', end - *pos);
        e = nl ?: end;
        *pos = nl ? nl + 1 : end;
        (*line)++;

        start += strspn(start, " \t");
        if (start > e || *start == '#' || *start == ';')
                start = e;
        for (const char *c = start; c < e; c++)
                if ((*c == '#' || *c == ';') && c > start && strchr(" \t", c[-1])) {
                        e = c;
                        break;
                }
        while (e > start && strchr(" \t\r", e[-1]))
                e--;

        n = e - start;
        if (n + 2 > (size_t) num) {
                *ret_too_long = true;
                n = 0;
        }
        memcpy(str, start, n);
        str[n] = '\n';
        str[n + 1] = 0;
        return str;
}
