/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "remote/remote-config.h"

/* Transfers to and from remotes, done by opbackup-fetch (the helper with the network, fetch/fetch-client.h):
 * the caller passes the archive as an open descriptor and the credentials over the helper's socket, never on
 * a command line or in an environment. No libcurl here; the helper's side is remote/remote-serve.h. */

typedef enum RemoteOp {
        REMOTE_OP_PUT,                  /* fd (read) → <URL>/<instance>/<name>, through a temporary name */
        REMOTE_OP_LIST,                 /* the backups under <URL>/<instance>/ */
        REMOTE_OP_GET,                  /* <URL>/<instance>/<name> → fd (written from its current offset) */
        REMOTE_OP_DELETE,
        _REMOTE_OP_MAX,
} RemoteOp;

const char *remote_op_to_string(RemoteOp op);
RemoteOp remote_op_from_string(const char *s);

#define REMOTE_LIST_MAX 100000U

typedef struct RemoteEntry {
        char *name;
        uint64_t size;
        int64_t mtime_usec;             /* 0: unknown */
} RemoteEntry;

/* Bytes done and in all; a negative return cancels the transfer (-ECANCELED). Called at least once a second
 * while the transfer runs. */
typedef int (*remote_progress_fn)(uint64_t done, uint64_t total, void *userdata);

typedef struct RemoteRequest {
        RemoteOp op;
        const RemoteConfig *remote;
        const RemoteCredentials *credentials;
        const char *ca_pem;             /* the text of CAFile=, read by the caller; NULL: the system's CAs */
        const char *instance;
        const char *name;               /* PUT, GET, DELETE */
        int fd;                         /* PUT: the archive; GET: where it goes */
        uint64_t max_size;              /* GET: larger is refused (0: no limit) */
        remote_progress_fn progress;
        void *userdata;
} RemoteRequest;

typedef struct RemoteResult {
        char *url;                      /* PUT: where the copy is (without credentials) */
        uint64_t size;                  /* PUT, GET: bytes */
        RemoteEntry *entries;           /* LIST */
        size_t n_entries;
        char *error;                    /* what went wrong, for a person */
        char *kind;                     /* auth, hostkey, tls, quota, timeout, network, notfound, verify,
                                         * protocol, canceled, local */
} RemoteResult;

void remote_result_done(RemoteResult *r);

/* Runs the request through the helper connected at helper_fd, or (helper_fd < 0) through an opbackup-fetch
 * started for it as a child of this process. 0, or a negative errno with ret->error and ret->kind: -ENOENT
 * (notfound), -EACCES (auth, hostkey), -ENOSPC (quota), -ETIMEDOUT, -ECANCELED, -EIO (the rest). */
int remote_transfer(int helper_fd, const RemoteRequest *req, RemoteResult *ret);

/* The errno remote_transfer() returns for a kind. */
int remote_kind_to_errno(const char *kind);
