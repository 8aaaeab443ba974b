/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Tables of text (list, jobs): columns as wide as their widest cell, a header line unless --no-legend
 * (table.c). */

#include <stdbool.h>
#include <stddef.h>

typedef struct Table Table;

/* n_columns headers; a header starting with '>' makes its column right-aligned (the '>' is not shown). */
Table *table_new(const char *const *headers, size_t n_columns);
Table *table_free(Table *t);
static inline void table_freep(Table **t) {
        table_free(*t);
}

/* Appends a row of n_columns cells (copied; NULL is shown as "-"). 0 or -ENOMEM. */
int table_add_row(Table *t, const char *const *cells);
size_t table_rows(const Table *t);

/* On stdout; the last column is not padded. */
void table_print(const Table *t, bool legend);
