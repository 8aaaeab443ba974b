/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* What several commands print the same way (output.c): JSON documents and streams, times. */

#include <stddef.h>
#include <stdint.h>

struct json_object;

/* Pretty, for documents; slashes unescaped ("/home/pi", not "\/home\/pi"). */
void ctl_json_print(struct json_object *o);
/* One line, flushed: for streams (monitor). */
void ctl_json_print_line(struct json_object *o);

/* A string vector as a JSON array of strings (NULL: empty). */
struct json_object *strv_to_json(char *const *l);
/* A string, or null for NULL or "". */
struct json_object *json_string_or_null(const char *s);

const char *format_timestamp(char *buf, size_t size, int64_t usec);      /* local "YYYY-mm-dd HH:MM:SS" */
const char *format_timestamp_iso(char *buf, size_t size, int64_t usec);  /* local ISO 8601 with offset */
