/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <curl/curl.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>

#include "remote/remote-client.h"
#include "remote/remote-config.h"
#include "util.h"

/* The helper's side of transfers to remotes (remote-client.h), in opbackup-fetch: libcurl for every protocol
 * (HTTP for S3 and WebDAV, SFTP through libssh2), libcrypto for the checksums. One RemoteJob per request;
 * remote-s3.c, remote-webdav.c and remote-sftp.c do the protocols' parts with remote_call(). */

#ifndef MIN
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#endif

typedef struct RemoteJob {
        int conn;                       /* the client: progress, listings and the end go there */
        RemoteOp op;
        RemoteType type;
        char *remote;                   /* its name, for messages */
        char *url, *region, *user, *secret, *host_key, *ca, *instance, *name;
        size_t secret_size;
        bool verify_full;
        int fd;                         /* PUT: read from; GET: written to */
        uint64_t size;                  /* PUT: of the archive */
        uint64_t max_size;              /* GET: of the download; 0 no limit */
        uint64_t part_size;             /* s3 PUT: of multipart parts */
        unsigned timeout_s;             /* without progress for this long, a transfer fails */
        uint64_t multipart_threshold;   /* s3 PUT: larger archives go in parts */
        CURL *curl;                     /* one handle for the whole job: the connection is reused */
        char errbuf[CURL_ERROR_SIZE];
        char key_path[64];              /* sftp: /proc/self/fd/N, a memfd holding the private key */
        int key_fd;
        uint64_t progress_base;         /* bytes of earlier parts */
        uint64_t progress_total;
        int64_t last_progress_ms;
        bool client_gone;
        bool cleaning;                  /* removing what a failed upload left: done even for a gone client,
                                         * within CLEANUP_TIMEOUT */
        json_object *pending;           /* LIST: entries not sent yet */
        char *result_url;
        uint64_t result_size;
        char *error, *kind;
} RemoteJob;

typedef struct RemoteCall {
        const char *method;             /* NULL: GET, or PUT with upload */
        const char *url;
        struct curl_slist *headers;
        bool nobody;
        bool upload;                    /* body: [offset, offset + length) of the archive */
        uint64_t offset, length;
        const char *body;               /* or a small body from memory */
        size_t body_size;
        int out_fd;                     /* >= 0: the answer's body goes there */
        uint64_t max_out;               /* ... at most this much (0: no limit) */
        EVP_MD_CTX *out_hash;           /* and/or is hashed */
        bool collect;                   /* and/or is kept in resp (small answers: XML) */
        struct curl_slist *quote;       /* sftp: commands before the transfer */
        bool dirlist;                   /* sftp: a listing of names */
        bool filetime;
        const char *range;              /* "0-0": a stat without reading the file */
        bool create_dirs;
        bool progress;                  /* report bytes to the client */

        long status;
        char *resp;
        size_t resp_size;
        char *etag;
        int64_t length_got;             /* -1: unknown */
        int64_t filetime_got;           /* -1: unknown */
        uint64_t written;
        CURLcode code;
} RemoteCall;

void remote_call_done(RemoteCall *c);
/* Does one request with the job's handle. 0 when it completed (any HTTP status: c->status); else a negative
 * errno with j->error and j->kind saying why. what: "Uploading ..." for the message. */
int remote_call(RemoteJob *j, RemoteCall *c, const char *what);

int remote_fail(RemoteJob *j, int r, const char *kind, const char *format, ...) _printf_(4, 5);
/* An answer with an unexpected HTTP status, in words. */
int remote_fail_status(RemoteJob *j, const RemoteCall *c, const char *what);

/* A listing's entry, sent to the client in pieces. */
int remote_add_entry(RemoteJob *j, const char *name, uint64_t size, int64_t mtime_usec);
int remote_send_progress(RemoteJob *j, uint64_t done, bool force);

/* Verify=full (WebDAV, SFTP): reads the upload at url back and compares its SHA-256 with the archive's;
 * http: an answer other than 200 is a failure too. */
int remote_read_back(RemoteJob *j, const char *url, bool http);

/* The digest of [offset, offset + length) of fd (any thread; a negative errno on failure). */
int remote_digest_range(int fd, const EVP_MD *md, uint64_t offset, uint64_t length, unsigned char *ret,
                        unsigned *ret_size);
/* The same of the archive, failing the job with a message. */
int remote_digest_fd(RemoteJob *j, const EVP_MD *md, uint64_t offset, uint64_t length, unsigned char *ret,
                     unsigned *ret_size);
/* Base64 (for Content-MD5) and lowercase hex. */
char *remote_base64(const unsigned char *data, size_t size);
char *remote_hex(const unsigned char *data, size_t size);
/* Scheme and host of the URL (no user), for messages. */
const char *remote_host(const RemoteJob *j, char *buf, size_t size);
/* A random suffix for temporary names. */
int remote_temp_name(const char *name, char **ret);

int remote_s3_run(RemoteJob *j);
int remote_webdav_run(RemoteJob *j);
int remote_sftp_run(RemoteJob *j);

/* The helper's part of a request frame 'R' (fetch_serve()): takes passed_fd. */
int remote_serve_one(int conn, const char *text, int passed_fd);
