/* SPDX-License-Identifier: GPL-2.0-or-later */

/* Laying out --help: words (a bracketed group such as "[--exclude ID]..." is one word) filled into lines
 * of the terminal's width, continuation lines indented. */

#include <sys/ioctl.h>

#include "help.h"
#include "util.h"

#define SUMMARY_COLUMN 28U              /* where command summaries and option descriptions start */
#define USAGE_PREFIX "opbackupctl [OPTIONS...] "

size_t help_columns(void) {
        static size_t cached;
        struct winsize ws = {};
        const char *e = getenv("COLUMNS");
        unsigned long n = 0;

        if (cached > 0)
                return cached;
        if (e)
                n = strtoul(e, NULL, 10);
        if (n == 0 && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) >= 0)
                n = ws.ws_col;
        if (n == 0)
                n = 80;
        cached = n < 60 ? 60 : n > 120 ? 120 : n;
        return cached;
}

/* The length of the word at s: up to a space outside brackets. */
static size_t word_length(const char *s) {
        int depth = 0;
        size_t k;

        for (k = 0; s[k]; k++) {
                if (s[k] == '[')
                        depth++;
                else if (s[k] == ']' && depth > 0)
                        depth--;
                else if (s[k] == ' ' && depth == 0)
                        break;
        }
        return k;
}

/* Prints text's words from column `column` on, wrapping before `width`; continuation lines start at
 * `indent`. Returns the column after the last word; *ret_wrapped (if not NULL) says whether it took more
 * than one line. */
static size_t fill_wrapped(const char *text, size_t column, size_t indent, size_t width, bool *ret_wrapped) {
        bool first = true, wrapped = false;

        for (const char *s = text; *s;) {
                size_t n;

                s += strspn(s, " ");
                if (!*s)
                        break;
                n = word_length(s);
                if (!first && column + 1 + n > width) {
                        printf("\n%*s", (int) indent, "");
                        column = indent;
                        wrapped = true;
                } else if (!first) {
                        putchar(' ');
                        column++;
                }
                printf("%.*s", (int) n, s);
                column += n;
                first = false;
                s += n;
        }
        if (ret_wrapped)
                *ret_wrapped = wrapped;
        return column;
}

static size_t fill(const char *text, size_t column, size_t indent, size_t width) {
        return fill_wrapped(text, column, indent, width, NULL);
}

static void print_columns(const char *left, const char *right) {
        size_t width = help_columns(), column, pad = strspn(left, " ");
        bool wrapped;

        /* Leading spaces are kept: they align long options under those with a short one. */
        printf("  %*s", (int) pad, "");
        left += pad;
        column = fill_wrapped(left, 2 + pad, 2 + pad + word_length(left) + 1, width, &wrapped);
        if (wrapped || column + 2 > SUMMARY_COLUMN) {
                putchar('\n');
                column = 0;
        }
        printf("%*s", (int) (SUMMARY_COLUMN - column), "");
        fill(right, SUMMARY_COLUMN, SUMMARY_COLUMN, width);
        putchar('\n');
}

void help_print_command(const char *synopsis, const char *summary) {
        print_columns(synopsis, summary);
}

void help_print_option(const char *option, const char *description) {
        print_columns(option, description);
}

void help_print_usage(const char *synopsis) {
        size_t indent = strlen(USAGE_PREFIX) + word_length(synopsis) + 1;

        printf("%s", USAGE_PREFIX);
        fill(synopsis, strlen(USAGE_PREFIX), indent, help_columns());
        putchar('\n');
}

void help_print_text(const char *text) {
        fill(text, 0, 0, help_columns());
        putchar('\n');
}
