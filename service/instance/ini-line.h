/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>

/* The line reader opbackup hands inih (ini_parse_stream) for every INI file it reads: one line at a time,
 * cleaned up so that inih's build options (which differ between distributions; Debian's only knows ';'
 * inline comments and folds indented lines into the previous value) do not matter. Leading blanks and
 * comments — whole-line ones and " # ..." or " ; ..." at the end, as in the documented examples — are
 * removed, and lines are counted, since inih's handler does not get line numbers.
 *
 * Takes the next line of [*pos, end) into str (num bytes, inih's line buffer: 200 on Debian), advancing
 * *pos and *line; NULL at the end. A line longer than the buffer is handed on empty with *ret_too_long set,
 * for the caller to report with its line number. */
char *ini_line_read(const char **pos, const char *end, unsigned *line, char *str, int num, bool *ret_too_long);
