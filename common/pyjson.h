/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* JSON written byte for byte as Python's json.dumps() does with its defaults: ", " and ": "
 * separators, non-ASCII characters escaped as \uXXXX (surrogate pairs above U+FFFF), '"', '\\',
 * '\b', '\f', '\n', '\r', '\t' escaped by name, other control characters as \u00XX, no trailing
 * newline. OctoPrint compares nothing byte-wise, but a backup should be indistinguishable. */

typedef struct PyJson {
        char *buf;
        size_t len, allocated;
        int error;            /* first error (-ENOMEM, -EILSEQ for invalid UTF-8), sticky */
} PyJson;

void pyjson_raw(PyJson *j, const char *s);              /* appends s as it is: "[", ", ", ... */
void pyjson_string(PyJson *j, const char *s);           /* appends a quoted, escaped string; NULL → null */
/* Returns the NUL-terminated text and resets j, or NULL on error (then errno-style code in *ret_error). */
char *pyjson_finish(PyJson *j, int *ret_error);
void pyjson_done(PyJson *j);

/* Strict UTF-8 as Python decodes it (no overlong forms, no surrogates, nothing above U+10FFFF): what
 * pyjson_string() accepts; sd-bus also refuses strings that are not. NULL is not valid. */
bool utf8_is_valid(const char *s);

/* {"version": "<version>", "excludes": ["a", "b"]} — the metadata.json of a backup. NULL with errno set
 * (ENOMEM, EILSEQ) on failure. */
char *pyjson_metadata(const char *version, char *const *excludes);
