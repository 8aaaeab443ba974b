/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* The protocol between a client (fetch-client.c) and opbackup-fetch (fetch-serve.c).
 *
 * Over the connection: frames of one type byte, a 32-bit big-endian length and that many bytes.
 *   'Q' {"url": s, "headers": [s], "max_size": n, "timeout_sec": n}     request (client → helper)
 *   'H' {"status": n, "length": n}                                      response head (length -1: unknown)
 *   'D' <bytes>                                                         body, in pieces
 *   'E' {"size": n, "url": s} or {"error": s, "errno": n}               end (url: after redirects)
 * Several requests may follow each other on one connection.
 *
 * Remotes (remote/remote-client.h): a request 'R' {...} carries the archive as a descriptor (SCM_RIGHTS) with
 * its first bytes; the helper answers with 'P' {"done": n, "total": n} (progress), 'L' [{"name": s,
 * "size": n, "mtime": n}, ...] (a piece of a listing) and ends with 'E' {"url": s, "size": n} or
 * {"error": s, "kind": s}. */

/* Reading waits at most timeout_ms for each frame (-ETIMEDOUT), returns -EPIPE
 * at a clean end of the stream before a frame, -EPROTO for a broken one; *ret_data is NUL-terminated. */
#define FETCH_FRAME_MAX (1024U * 1024U)
int fetch_frame_write(int fd, char type, const void *data, size_t size);
/* Waits until the other side has sent something (0), at most timeout_ms (-ETIMEDOUT), asking progress
 * (may be NULL) every second, with done and total, whether to go on (-ECANCELED when it says no). */
int fetch_frame_wait(int fd, int timeout_ms, int (*progress)(uint64_t done, uint64_t total, void *userdata),
                     void *userdata, uint64_t done, uint64_t total);
int fetch_frame_read(int fd, int timeout_ms, char *ret_type, char **ret_data, size_t *ret_size);
/* The same with a descriptor passed along with the frame: *ret_fd, or -1 when none came. */
int fetch_frame_read_fd(int fd, int timeout_ms, char *ret_type, char **ret_data, size_t *ret_size, int *ret_fd);
int fetch_frame_write_fd(int fd, char type, const void *data, size_t size, int pass_fd);
