/* SPDX-License-Identifier: GPL-2.0-or-later */

/* Tables of text for list and jobs: cells kept as copies, widths measured when printed. */

#include "table.h"
#include "util.h"

struct Table {
        size_t n_columns;
        char **headers;                 /* without the '>' */
        bool *right;
        char **cells;                   /* n_rows * n_columns */
        size_t n_rows, allocated;
};

Table *table_new(const char *const *headers, size_t n_columns) {
        Table *t = calloc(1, sizeof(*t));

        if (!t)
                return NULL;
        t->n_columns = n_columns;
        t->headers = calloc(n_columns, sizeof(char *));
        t->right = calloc(n_columns, sizeof(bool));
        if (!t->headers || !t->right)
                return table_free(t);
        for (size_t c = 0; c < n_columns; c++) {
                t->right[c] = headers[c][0] == '>';
                t->headers[c] = strdup(headers[c] + t->right[c]);
                if (!t->headers[c])
                        return table_free(t);
        }
        return t;
}

Table *table_free(Table *t) {
        if (!t)
                return NULL;
        for (size_t c = 0; t->headers && c < t->n_columns; c++)
                free(t->headers[c]);
        for (size_t k = 0; k < t->n_rows * t->n_columns; k++)
                free(t->cells[k]);
        free(t->headers);
        free(t->right);
        free(t->cells);
        free(t);
        return NULL;
}

int table_add_row(Table *t, const char *const *cells) {
        size_t base = t->n_rows * t->n_columns;

        if (ARRAY_RESERVE(t->cells, t->allocated, base + t->n_columns) < 0)
                return -ENOMEM;
        for (size_t c = 0; c < t->n_columns; c++) {
                t->cells[base + c] = strdup(cells[c] ?: "-");
                if (!t->cells[base + c]) {
                        while (c > 0)
                                free(t->cells[base + --c]);
                        return -ENOMEM;
                }
        }
        t->n_rows++;
        return 0;
}

size_t table_rows(const Table *t) {
        return t->n_rows;
}

static void print_row(const Table *t, char *const *cells, const size_t *widths) {
        for (size_t c = 0; c < t->n_columns; c++) {
                bool last = c + 1 == t->n_columns;

                if (c > 0)
                        fputs("  ", stdout);
                if (t->right[c])
                        printf("%*s", (int) widths[c], cells[c]);
                else if (last)
                        fputs(cells[c], stdout);
                else
                        printf("%-*s", (int) widths[c], cells[c]);
        }
        putchar('\n');
}

void table_print(const Table *t, bool legend) {
        _cleanup_free_ size_t *widths = calloc(t->n_columns, sizeof(size_t));

        if (!widths)
                return;
        for (size_t c = 0; c < t->n_columns; c++) {
                widths[c] = legend ? strlen(t->headers[c]) : 0;
                for (size_t k = 0; k < t->n_rows; k++)
                        if (strlen(t->cells[k * t->n_columns + c]) > widths[c])
                                widths[c] = strlen(t->cells[k * t->n_columns + c]);
        }
        if (legend)
                print_row(t, t->headers, widths);
        for (size_t k = 0; k < t->n_rows; k++)
                print_row(t, t->cells + k * t->n_columns, widths);
}
