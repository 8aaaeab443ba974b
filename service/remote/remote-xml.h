/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Just enough XML for the answers of S3 (ListObjectsV2, multipart uploads) and WebDAV (PROPFIND multistatus):
 * elements found by their local name whatever their namespace prefix, their text with entities decoded. Not a
 * validating parser: an answer it cannot read gives nothing, not a crash. */

/* The next element named local (any prefix) in [s, end): *ret_inner..*ret_inner_end is its content (empty for
 * <x/>), *ret_next where to go on. false when there is none. */
bool xml_find(const char *s, const char *end, const char *local, const char **ret_inner, const char **ret_inner_end,
              const char **ret_next);
/* The decoded text of the first element named local in [s, end); NULL if none (or out of memory). */
char *xml_text(const char *s, const char *end, const char *local);
/* Percent-decoding (a WebDAV href); NULL for a broken escape or a decoded NUL. */
char *url_unescape(const char *s, size_t n);
/* "2026-12-04T21:00:00.000Z" (S3) and "Fri, 04 Dec 2026 21:00:00 GMT" (HTTP, WebDAV) to µs; 0 if unreadable. */
int64_t time_parse_iso8601(const char *s);
int64_t time_parse_http(const char *s);
