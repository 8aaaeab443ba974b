/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* HTTP GETs where the privilege is lowest.
 *
 * opbackupd.service has no network of its own (PrivateNetwork=yes): what needs one (asking OctoPrint whether
 * it prints; a restore's plugin repository and archives) is done by opbackup-fetch, a helper started by
 * systemd for each connection to its socket (opbackup-fetch.socket, root only) as a dynamic user that can
 * do nothing but talk HTTP. The daemon connects before it forks a worker and hands the connection down;
 * the worker, already the instance user, sends requests over it. Without the helper's socket (no systemd, a
 * daemon started by hand, tests) the worker starts opbackup-fetch itself, as the instance user, on one end of
 * a socketpair (its standard input), and talks the same protocol with it: libcurl and the libraries it
 * pulls in are loaded only by opbackup-fetch, never by opbackupd or its workers. fetch-frame.h has the
 * protocol. */

#define FETCH_HELPER_SOCKET "/run/opbackup/fetch.socket"
#define FETCH_URL_MAX 4096U
#define FETCH_HEADERS_MAX 16U
#define FETCH_HEADER_MAX 1024U
#define FETCH_SIZE_MAX (1024ULL * 1024ULL * 1024ULL)
#define FETCH_TIMEOUT_SEC_MAX 3600U

/* Bytes of the body so far, and the length the server announced (0: unknown). Called as data comes and
 * at least every second while it does not; a negative return stops the transfer (-ECANCELED). */
typedef int (*fetch_progress_fn)(uint64_t done, uint64_t total, void *userdata);

typedef struct FetchRequest {
        const char *url;                /* http:// or https:// only, also after redirects */
        char *const *headers;           /* "Name: value", or NULL; a request with headers follows no
                                         * redirect, so they (API keys) go nowhere else */
        uint64_t max_size;              /* of the body; larger is an error */
        unsigned timeout_sec;           /* of the whole transfer */
        fetch_progress_fn progress;     /* may be NULL */
        void *userdata;
} FetchRequest;

typedef struct FetchResponse {
        long status;                    /* HTTP status; 0 if there was no answer */
        char *body;                     /* NUL-terminated (may contain NULs: use size); NULL when the
                                         * body went to a file descriptor */
        uint64_t size;
        char *effective_url;            /* after redirects */
        char *error;                    /* set when there is no complete answer: why, for a person */
} FetchResponse;

void fetch_response_done(FetchResponse *r);

/* Checks a request the way the helper does: 0, or -EINVAL with *ret_error saying what is wrong. */
int fetch_request_check(const FetchRequest *req, char **ret_error);

/* Does the request through the helper connected to helper_fd, or, when helper_fd < 0, through an
 * opbackup-fetch started for it as a child of this process (fetch_helper_binary_path(); the errno of the exec
 * and "Cannot start the fetch helper ..." when that fails). Same results as fetch_perform(); -EPIPE/-EPROTO
 * when the helper breaks off. A failure
 * other than one the helper reported (ret->error from the transfer itself: -EFBIG, -ETIMEDOUT, -EIO) leaves
 * part of an answer unread: the connection is then shut down, and every later request over it fails with
 * -EPIPE. Writes to the helper never raise SIGPIPE. */
int fetch_get(int helper_fd, const FetchRequest *req, int out_fd, FetchResponse *ret);

/* Connects to the helper's socket (socket_path NULL: $OPBACKUP_FETCH_SOCKET, else FETCH_HELPER_SOCKET).
 * -ENOENT/-ECONNREFUSED when no helper listens there: then the caller fetches itself. */
int fetch_helper_connect(const char *socket_path, int *ret_fd);
const char *fetch_helper_socket_path(void);
/* The helper to start when there is no socket: $OPBACKUP_FETCH, else the installed one. */
const char *fetch_helper_binary_path(void);
/* Starts opbackup-fetch as a child of this process (so as its user) on one end of a socketpair; *ret_fd: the
 * other end. The caller kills it if it must stop it early, and reaps it. */
int fetch_helper_spawn(int *ret_fd, pid_t *ret_pid, char **ret_error);
