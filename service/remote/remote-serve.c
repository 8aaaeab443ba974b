/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Transfers to remotes in opbackup-fetch (remote-serve.h): the request, libcurl calls shared by the three
 * protocols, errors in words a person can act on, progress and listings back to the client. */

#include <fcntl.h>
#include <openssl/rand.h>
#include <poll.h>
#include <stdarg.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>

#include "build-config.h"
#include "fetch/fetch-frame.h"
#include "names.h"
#include "remote/remote-serve.h"

#define RESP_MAX (4U * 1024U * 1024U)          /* XML answers: a page of a listing is far smaller */
#define ENTRIES_PER_FRAME 500
#define PROGRESS_INTERVAL_MS 200
#define CLEANUP_TIMEOUT_S 20            /* for a request that removes what a failed upload left */

static int64_t now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int remote_fail(RemoteJob *j, int r, const char *kind, const char *format, ...) {
        va_list ap;

        if (j->error)           /* the first problem is the one to report */
                return r;
        va_start(ap, format);
        if (vasprintf(&j->error, format, ap) < 0)
                j->error = NULL;
        va_end(ap);
        free(j->kind);
        j->kind = strdup(kind);
        return r;
}

const char *remote_host(const RemoteJob *j, char *buf, size_t size) {
        const char *s = strstr(j->url, "://"), *at, *end;

        s = s ? s + 3 : j->url;
        end = s + strcspn(s, "/");
        at = memchr(s, '@', end - s);
        if (at)
                s = at + 1;
        snprintf(buf, size, "%.*s", (int) (end - s), s);
        return buf;
}

int remote_send_progress(RemoteJob *j, uint64_t done, bool force) {
        int64_t now = now_ms();
        json_object *o;
        const char *s;
        int r;

        if (!force && now - j->last_progress_ms < PROGRESS_INTERVAL_MS)
                return 0;
        j->last_progress_ms = now;
        o = json_object_new_object();
        json_object_object_add(o, "done", json_object_new_uint64(done));
        json_object_object_add(o, "total", json_object_new_uint64(j->progress_total));
        s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
        r = fetch_frame_write(j->conn, 'P', s, strlen(s));
        json_object_put(o);
        if (r < 0)
                j->client_gone = true;
        return r;
}

static int flush_entries(RemoteJob *j) {
        const char *s;
        int r;

        if (!j->pending || json_object_array_length(j->pending) == 0)
                return 0;
        s = json_object_to_json_string_ext(j->pending, JSON_C_TO_STRING_PLAIN);
        r = fetch_frame_write(j->conn, 'L', s, strlen(s));
        json_object_put(j->pending);
        j->pending = NULL;
        return r;
}

int remote_add_entry(RemoteJob *j, const char *name, uint64_t size, int64_t mtime_usec) {
        json_object *e;

        if (!j->pending && !(j->pending = json_object_new_array()))
                return -ENOMEM;
        e = json_object_new_object();
        json_object_object_add(e, "name", json_object_new_string(name));
        json_object_object_add(e, "size", json_object_new_uint64(size));
        json_object_object_add(e, "mtime", json_object_new_int64(mtime_usec));
        json_object_array_add(j->pending, e);
        if (json_object_array_length(j->pending) >= ENTRIES_PER_FRAME)
                return flush_entries(j);
        return 0;
}

char *remote_base64(const unsigned char *data, size_t size) {
        char *s = malloc(4 * ((size + 2) / 3) + 1);

        if (s)
                EVP_EncodeBlock((unsigned char *) s, data, (int) size);
        return s;
}

char *remote_hex(const unsigned char *data, size_t size) {
        char *s = malloc(size * 2 + 1);

        if (s)
                for (size_t i = 0; i < size; i++)
                        sprintf(s + 2 * i, "%02x", data[i]);
        return s;
}

int remote_temp_name(const char *name, char **ret) {
        unsigned char r[6];
        _cleanup_free_ char *hex = NULL;

        if (RAND_bytes(r, sizeof(r)) != 1)
                return -EIO;
        hex = remote_hex(r, sizeof(r));
        if (!hex)
                return -ENOMEM;
        /* Hidden and with a suffix no backup name has: no listing shows it as a backup. */
        return asprintf(ret, ".%s.part-%s", name, hex) < 0 ? -ENOMEM : 0;
}

int remote_digest_range(int fd, const EVP_MD *md, uint64_t offset, uint64_t length, unsigned char *ret,
                        unsigned *ret_size) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        _cleanup_free_ char *buf = malloc(1024 * 1024);
        int r = 0;

        if (!ctx || !buf || EVP_DigestInit_ex(ctx, md, NULL) != 1) {
                EVP_MD_CTX_free(ctx);
                return -ENOMEM;
        }
        while (length > 0) {
                ssize_t n = pread_full(fd, buf, length < 1024 * 1024 ? length : 1024 * 1024, offset);

                if (n <= 0) {
                        r = n < 0 ? (int) n : -EIO;
                        break;
                }
                EVP_DigestUpdate(ctx, buf, (size_t) n);
                offset += (uint64_t) n;
                length -= (uint64_t) n;
        }
        if (r >= 0 && EVP_DigestFinal_ex(ctx, ret, ret_size) != 1)
                r = -EIO;
        EVP_MD_CTX_free(ctx);
        return r;
}

int remote_digest_fd(RemoteJob *j, const EVP_MD *md, uint64_t offset, uint64_t length, unsigned char *ret,
                     unsigned *ret_size) {
        int r = remote_digest_range(j->fd, md, offset, length, ret, ret_size);

        if (r < 0)
                return remote_fail(j, r, "local", "Cannot read the backup: %s", strerror(-r));
        return 0;
}

void remote_call_done(RemoteCall *c) {
        free(c->resp);
        free(c->etag);
        curl_slist_free_all(c->headers);
        curl_slist_free_all(c->quote);
        c->resp = c->etag = NULL;
        c->headers = c->quote = NULL;
}

typedef struct CallState {
        RemoteJob *j;
        RemoteCall *c;
        uint64_t pos;                   /* of the upload, from c->offset */
        int write_error;
        bool too_large;
} CallState;

static size_t on_read(char *buf, size_t size, size_t nitems, void *userdata) {
        CallState *st = userdata;
        RemoteCall *c = st->c;
        size_t n = size * nitems;
        ssize_t k;

        if (c->body) {
                if (n > c->body_size - st->pos)
                        n = c->body_size - st->pos;
                memcpy(buf, c->body + st->pos, n);
                st->pos += n;
                return n;
        }
        if (n > c->length - st->pos)
                n = c->length - st->pos;
        if (n == 0)
                return 0;
        k = pread_full(st->j->fd, buf, n, c->offset + st->pos);
        /* A file that shrank under us: stop rather than send a short archive under its size. */
        if (k <= 0)
                return CURL_READFUNC_ABORT;
        st->pos += (size_t) k;
        return (size_t) k;
}

/* curl rewinds the body when it must send it again (an authentication round, a redirect). */
static int on_seek(void *userdata, curl_off_t offset, int origin) {
        CallState *st = userdata;
        uint64_t limit = st->c->body ? st->c->body_size : st->c->length;

        if (origin != SEEK_SET || offset < 0 || (uint64_t) offset > limit)
                return CURL_SEEKFUNC_CANTSEEK;
        st->pos = (uint64_t) offset;
        return CURL_SEEKFUNC_OK;
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *userdata) {
        CallState *st = userdata;
        RemoteCall *c = st->c;
        size_t n = size * nmemb;
        int r;

        /* A server that sends more than there is room for (or than it announced a listing ago). */
        if (c->max_out > 0 && n > c->max_out - c->written) {
                st->too_large = true;
                return 0;
        }
        if (c->out_hash)
                EVP_DigestUpdate(c->out_hash, data, n);
        if (c->out_fd >= 0) {
                r = write_all(c->out_fd, data, n);
                if (r < 0) {
                        st->write_error = r;
                        return 0;
                }
        }
        if (c->collect) {
                char *b;

                if (n > RESP_MAX - c->resp_size) {
                        st->too_large = true;
                        return 0;
                }
                b = realloc(c->resp, c->resp_size + n + 1);
                if (!b) {
                        st->write_error = -ENOMEM;
                        return 0;
                }
                memcpy(b + c->resp_size, data, n);
                c->resp_size += n;
                b[c->resp_size] = 0;
                c->resp = b;
        }
        c->written += n;
        return n;
}

static size_t on_header(char *data, size_t size, size_t nitems, void *userdata) {
        CallState *st = userdata;
        size_t n = size * nitems;

        if (n > 5 && strncasecmp(data, "etag:", 5) == 0) {
                const char *v = data + 5 + strspn(data + 5, " \t");
                size_t k = n - (size_t) (v - data);

                while (k > 0 && strchr(" \t\r\n", v[k - 1]))
                        k--;
                free(st->c->etag);
                st->c->etag = strndup(v, k);
        }
        return n;
}

/* At least once a second: the place to report progress and to notice a client that went away. */
static int on_xferinfo(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
        CallState *st = userdata;
        RemoteJob *j = st->j;
        struct pollfd p = { .fd = j->conn, .events = POLLRDHUP };

        if (poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
                j->client_gone = true;
        if (!j->client_gone && st->c->progress)
                (void) remote_send_progress(j, j->progress_base + (uint64_t) (st->c->upload ? ulnow : dlnow), false);
        /* A canceled upload still removes its temporary file or aborts its multipart upload. */
        return j->client_gone && !j->cleaning ? 1 : 0;
}

static int call_setup(RemoteJob *j, RemoteCall *c, CallState *st) {
#define SET(opt, val)                                                           \
        do {                                                                    \
                if (curl_easy_setopt(j->curl, opt, val) != CURLE_OK)            \
                        return -EIO;                                            \
        } while (0)
        curl_easy_reset(j->curl);
        SET(CURLOPT_URL, c->url);
        SET(CURLOPT_ERRORBUFFER, j->errbuf);
        SET(CURLOPT_NOSIGNAL, 1L);
        SET(CURLOPT_USERAGENT, "opbackup/" PACKAGE_VERSION);
        SET(CURLOPT_PROTOCOLS_STR, j->type == REMOTE_TYPE_SFTP ? "sftp" : "http,https");
        /* Credentials go to the configured server only. */
        SET(CURLOPT_FOLLOWLOCATION, 0L);
        SET(CURLOPT_SSL_VERIFYPEER, 1L);
        SET(CURLOPT_SSL_VERIFYHOST, 2L);
        SET(CURLOPT_CONNECTTIMEOUT, 20L);
        /* No limit on the whole transfer (an archive may be large, a line slow), but one that stalls — a
         * server gone, a cable pulled — ends after Timeout= (a minute). */
        SET(CURLOPT_LOW_SPEED_LIMIT, 1L);
        SET(CURLOPT_LOW_SPEED_TIME, (long) j->timeout_s);
        SET(CURLOPT_TCP_KEEPALIVE, 1L);
        if (j->cleaning)
                SET(CURLOPT_TIMEOUT, (long) CLEANUP_TIMEOUT_S);
        if (j->ca) {
                struct curl_blob blob = { .data = j->ca, .len = strlen(j->ca), .flags = CURL_BLOB_COPY };
                SET(CURLOPT_CAINFO_BLOB, &blob);
        }
        switch (j->type) {
        case REMOTE_TYPE_S3: {
                _cleanup_free_ char *sig = NULL;

                if (asprintf(&sig, "aws:amz:%s:s3", j->region ?: "us-east-1") < 0)
                        return -ENOMEM;
                SET(CURLOPT_AWS_SIGV4, sig);
                SET(CURLOPT_USERNAME, j->user);
                SET(CURLOPT_PASSWORD, j->secret);
                break;
        }
        case REMOTE_TYPE_WEBDAV:
                if (j->user) {
                        SET(CURLOPT_HTTPAUTH, (long) CURLAUTH_BASIC);
                        SET(CURLOPT_USERNAME, j->user);
                        SET(CURLOPT_PASSWORD, j->secret);
                }
                break;
        case REMOTE_TYPE_SFTP:
                SET(CURLOPT_SSH_AUTH_TYPES, (long) CURLSSH_AUTH_PUBLICKEY);
                SET(CURLOPT_SSH_PRIVATE_KEYFILE, j->key_path);
                /* "": libssh2 derives the public key from the private one. */
                SET(CURLOPT_SSH_PUBLIC_KEYFILE, "");
                SET(CURLOPT_SSH_HOST_PUBLIC_KEY_SHA256, j->host_key);
                SET(CURLOPT_NEW_FILE_PERMS, 0600L);
                SET(CURLOPT_NEW_DIRECTORY_PERMS, 0700L);
                if (c->create_dirs)
                        SET(CURLOPT_FTP_CREATE_MISSING_DIRS, (long) CURLFTP_CREATE_DIR_RETRY);
                if (c->quote)
                        SET(CURLOPT_QUOTE, c->quote);
                if (c->dirlist)
                        SET(CURLOPT_DIRLISTONLY, 1L);
                break;
        default:
                return -EINVAL;
        }
        if (c->filetime)
                SET(CURLOPT_FILETIME, 1L);
        if (c->range)
                SET(CURLOPT_RANGE, c->range);
        if (c->headers)
                SET(CURLOPT_HTTPHEADER, c->headers);
        if (c->upload || c->body) {
                if (c->method && !streq(c->method, "PUT")) {
                        SET(CURLOPT_POST, 1L);
                        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) (c->body ? c->body_size : c->length));
                        SET(CURLOPT_CUSTOMREQUEST, c->method);
                } else {
                        SET(CURLOPT_UPLOAD, 1L);
                        SET(CURLOPT_INFILESIZE_LARGE, (curl_off_t) (c->body ? c->body_size : c->length));
                }
                SET(CURLOPT_READFUNCTION, on_read);
                SET(CURLOPT_READDATA, st);
                SET(CURLOPT_SEEKFUNCTION, on_seek);
                SET(CURLOPT_SEEKDATA, st);
        } else if (c->method && streq(c->method, "HEAD"))
                SET(CURLOPT_NOBODY, 1L);
        else if (c->method)
                SET(CURLOPT_CUSTOMREQUEST, c->method);
        if (c->nobody)
                SET(CURLOPT_NOBODY, 1L);
        SET(CURLOPT_WRITEFUNCTION, on_write);
        SET(CURLOPT_WRITEDATA, st);
        SET(CURLOPT_HEADERFUNCTION, on_header);
        SET(CURLOPT_HEADERDATA, st);
        SET(CURLOPT_XFERINFOFUNCTION, on_xferinfo);
        SET(CURLOPT_XFERINFODATA, st);
        SET(CURLOPT_NOPROGRESS, 0L);
#undef SET
        return 0;
}

/* A failed transfer, in words: what happened, on which server, what to check. */
static int fail_curl(RemoteJob *j, CURLcode code, const char *what) {
        const char *detail = !isempty(j->errbuf) ? j->errbuf : curl_easy_strerror(code);
        char host[256];

        remote_host(j, host, sizeof(host));
        switch (code) {
        case CURLE_COULDNT_RESOLVE_HOST:
                return remote_fail(j, -EIO, "network", "%s failed: cannot find the server %s (name resolution "
                                   "failed): check URL= of remote %s and the network", what, host, j->remote);
        case CURLE_COULDNT_CONNECT:
                return remote_fail(j, -EIO, "network", "%s failed: cannot connect to %s (%s): is the server "
                                   "running, the port in URL= of remote %s right, the network up?", what, host,
                                   detail, j->remote);
        case CURLE_OPERATION_TIMEDOUT:
                return remote_fail(j, -ETIMEDOUT, "timeout", "%s failed: %s stopped answering (nothing moved for %u "
                                   "seconds, Timeout= of remote %s): is the server overloaded or hung, the network "
                                   "down?", what, host, j->timeout_s, j->remote);
        case CURLE_PEER_FAILED_VERIFICATION:
                if (j->type == REMOTE_TYPE_SFTP)
                        return remote_fail(j, -EACCES, "hostkey", "%s failed: the host key of %s does not match "
                                           "HostKeySHA256= of remote %s. Either the server was reinstalled or this "
                                           "is not your server: compare with ssh-keygen -lf -E sha256 on the server "
                                           "before changing the setting", what, host, j->remote);
                __attribute__((fallthrough));
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CIPHER:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_ISSUER_ERROR:
                return remote_fail(j, -EIO, "tls", "%s failed: TLS with %s failed (%s): a certificate not signed "
                                   "by a known CA needs CAFile= in remote %s", what, host, detail, j->remote);
        case CURLE_LOGIN_DENIED:
        case CURLE_AUTH_ERROR:
                return remote_fail(j, -EACCES, "auth", "%s failed: %s refused the login%s%s: check CredentialsFile= "
                                   "of remote %s%s", what, host, j->user ? " of " : "", strempty(j->user),
                                   j->remote, j->type == REMOTE_TYPE_SFTP ?
                                   " and the server's authorized_keys" : "");
        case CURLE_REMOTE_DISK_FULL:
                return remote_fail(j, -ENOSPC, "quota", "%s failed: %s is full (or the quota is used up)", what, host);
        case CURLE_REMOTE_FILE_NOT_FOUND:
                return remote_fail(j, -ENOENT, "notfound", "%s failed: not found on %s", what, host);
        case CURLE_REMOTE_ACCESS_DENIED:
                return remote_fail(j, -EACCES, "auth", "%s failed: %s denied access (%s): check the permissions of "
                                   "the folder in URL= of remote %s", what, host, detail, j->remote);
        case CURLE_ABORTED_BY_CALLBACK:
                if (j->client_gone)
                        return remote_fail(j, -ECANCELED, "canceled", "Canceled");
                __attribute__((fallthrough));
        default:
                return remote_fail(j, -EIO, "network", "%s failed: the transfer with %s broke off (%s)", what, host,
                                   detail);
        }
}

int remote_call(RemoteJob *j, RemoteCall *c, const char *what) {
        CallState st = { .j = j, .c = c };
        curl_off_t v;
        int r;

        c->status = 0;
        c->written = 0;
        c->length_got = c->filetime_got = -1;
        j->errbuf[0] = 0;
        r = call_setup(j, c, &st);
        if (r < 0)
                return remote_fail(j, r, "local", "Cannot set up the transfer (libcurl too old?)");
        c->code = curl_easy_perform(j->curl);
        (void) curl_easy_getinfo(j->curl, CURLINFO_RESPONSE_CODE, &c->status);
        if (curl_easy_getinfo(j->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &v) == CURLE_OK)
                c->length_got = v;
        if (curl_easy_getinfo(j->curl, CURLINFO_FILETIME_T, &v) == CURLE_OK)
                c->filetime_got = v;
        if (st.write_error < 0)
                return remote_fail(j, st.write_error, "local", "%s failed: cannot store what came: %s", what,
                                   strerror(-st.write_error));
        if (st.too_large && c->max_out > 0)
                return remote_fail(j, -EFBIG, "quota", "%s failed: it is larger than the %llu bytes free for it",
                                   what, (unsigned long long) c->max_out);
        if (st.too_large)
                return remote_fail(j, -EFBIG, "protocol", "%s failed: the answer is too large", what);
        if (c->code != CURLE_OK)
                return fail_curl(j, c->code, what);
        /* The last report may have been held back by the interval: the client sees the end. */
        if (c->progress)
                (void) remote_send_progress(j, j->progress_base + (c->upload ? c->length : c->written), true);
        return 0;
}

int remote_fail_status(RemoteJob *j, const RemoteCall *c, const char *what) {
        char host[256];

        remote_host(j, host, sizeof(host));
        if (c->status == 401 || c->status == 403)
                return remote_fail(j, -EACCES, "auth", "%s failed: %s refused the credentials (HTTP %ld): check "
                                   "CredentialsFile= of remote %s", what, host, c->status, j->remote);
        if (c->status == 404)
                return remote_fail(j, -ENOENT, "notfound", "%s failed: not found on %s (HTTP 404)", what, host);
        if (c->status == 507 || c->status == 413 || (c->resp && (strstr(c->resp, "QuotaExceeded") ||
                                                                 strstr(c->resp, "EntityTooLarge"))))
                return remote_fail(j, -ENOSPC, "quota", "%s failed: %s has no room for it (HTTP %ld: storage full "
                                   "or quota used up)", what, host, c->status);
        if (c->status >= 500)
                return remote_fail(j, -EIO, "network", "%s failed: %s had an internal error (HTTP %ld); try again "
                                   "later", what, host, c->status);
        return remote_fail(j, -EIO, "protocol", "%s failed: %s answered HTTP %ld", what, host, c->status);
}

/* ---- The request ---- */

static void job_done(RemoteJob *j) {
        if (j->secret)
                explicit_bzero(j->secret, j->secret_size);
        free(j->remote);
        free(j->url);
        free(j->region);
        free(j->user);
        free(j->secret);
        free(j->host_key);
        free(j->ca);
        free(j->instance);
        free(j->name);
        free(j->result_url);
        free(j->error);
        free(j->kind);
        if (j->curl)
                curl_easy_cleanup(j->curl);
        if (j->fd >= 0)
                close(j->fd);
        if (j->key_fd >= 0)
                close(j->key_fd);
        json_object_put(j->pending);
}

static int take_string(json_object *q, const char *key, char **ret) {
        json_object *v;

        if (!json_object_object_get_ex(q, key, &v) || !json_object_is_type(v, json_type_string))
                return 0;
        *ret = strndup(json_object_get_string(v), (size_t) json_object_get_string_len(v));
        return *ret ? 0 : -ENOMEM;
}

/* The private key in a memfd, for libssh2, which reads keys from files only: never on a disk. */
static int key_to_memfd(RemoteJob *j) {
        j->key_fd = memfd_create("opbackup-key", MFD_CLOEXEC);
        if (j->key_fd < 0)
                return remote_fail(j, -errno, "local", "Cannot hold the key: %s", strerror(errno));
        if (write_all(j->key_fd, j->secret, j->secret_size) < 0)
                return remote_fail(j, -EIO, "local", "Cannot hold the key");
        snprintf(j->key_path, sizeof(j->key_path), "/proc/self/fd/%d", j->key_fd);
        return 0;
}

static int job_parse(RemoteJob *j, const char *text) {
        _cleanup_free_ char *op = NULL, *type = NULL, *verify = NULL;
        json_tokener *tok = json_tokener_new();
        json_object *q = tok ? json_tokener_parse_ex(tok, text, -1) : NULL;
        int r = 0;

        /* The tokener keeps the last strings it read (the secret among them) in its buffer: wiped before it
         * is freed. json-c has no call for it; the field is public in its header. */
        if (tok) {
                if (tok->pb && tok->pb->buf)
                        explicit_bzero(tok->pb->buf, (size_t) tok->pb->size);
                json_tokener_free(tok);
        }

        if (!q || !json_object_is_type(q, json_type_object)) {
                json_object_put(q);
                return -EPROTO;
        }
        if (take_string(q, "op", &op) < 0 || take_string(q, "type", &type) < 0 || take_string(q, "verify", &verify) < 0 ||
            take_string(q, "remote", &j->remote) < 0 || take_string(q, "url", &j->url) < 0 ||
            take_string(q, "region", &j->region) < 0 || take_string(q, "user", &j->user) < 0 ||
            take_string(q, "host_key", &j->host_key) < 0 || take_string(q, "ca", &j->ca) < 0 ||
            take_string(q, "instance", &j->instance) < 0 || take_string(q, "name", &j->name) < 0)
                r = -ENOMEM;
        if (r >= 0) {
                json_object *v;

                if (json_object_object_get_ex(q, "secret", &v) && json_object_is_type(v, json_type_string)) {
                        j->secret_size = (size_t) json_object_get_string_len(v);
                        j->secret = malloc(j->secret_size + 1);
                        if (!j->secret)
                                r = -ENOMEM;
                        else {
                                memcpy(j->secret, json_object_get_string(v), j->secret_size + 1);
                                /* json-c's copy is freed with q; wipe it first. */
                                explicit_bzero((char *) json_object_get_string(v), j->secret_size);
                        }
                }
        }
        if (r >= 0) {
                json_object *v;

                if (json_object_object_get_ex(q, "max_size", &v) && json_object_is_type(v, json_type_int))
                        j->max_size = json_object_get_uint64(v);
                if (json_object_object_get_ex(q, "timeout", &v) && json_object_is_type(v, json_type_int))
                        j->timeout_s = (unsigned) MIN(json_object_get_uint64(v), (uint64_t) REMOTE_TIMEOUT_MAX_S);
                if (json_object_object_get_ex(q, "part_size", &v) && json_object_is_type(v, json_type_int))
                        j->part_size = json_object_get_uint64(v);
                if (json_object_object_get_ex(q, "multipart_threshold", &v) && json_object_is_type(v, json_type_int))
                        j->multipart_threshold = json_object_get_uint64(v);
        }
        /* The tokener's copy of the request text is the caller's to wipe. */
        json_object_put(q);
        if (r < 0)
                return r;
        j->op = remote_op_from_string(op);
        j->type = type ? remote_type_from_string(type) : REMOTE_TYPE_INVALID;
        j->verify_full = streq_ptr(verify, "full");
        if (j->timeout_s == 0)
                j->timeout_s = REMOTE_TIMEOUT_DEFAULT_S;
        if (j->part_size < REMOTE_S3_PART_MIN || j->part_size > REMOTE_S3_PUT_MAX)
                j->part_size = REMOTE_S3_PART_SIZE_DEFAULT;
        if (j->multipart_threshold < REMOTE_S3_PART_MIN || j->multipart_threshold > REMOTE_S3_PUT_MAX)
                j->multipart_threshold = REMOTE_S3_THRESHOLD_DEFAULT;
        if (j->op == _REMOTE_OP_MAX || j->type == REMOTE_TYPE_INVALID || !j->url || !j->instance || !j->remote ||
            !instance_name_is_valid(j->instance) || (j->op != REMOTE_OP_LIST && (!j->name || !backup_name_is_valid(j->name))))
                return remote_fail(j, -EINVAL, "local", "The transfer request is incomplete or invalid");
        if ((j->op == REMOTE_OP_PUT || j->op == REMOTE_OP_GET) && j->fd < 0)
                return remote_fail(j, -EINVAL, "local", "The transfer request came without the file");
        if (j->type == REMOTE_TYPE_S3 && (!j->user || !j->secret))
                return remote_fail(j, -EINVAL, "local", "An s3 remote needs its credentials");
        if (j->type == REMOTE_TYPE_SFTP) {
                if (!j->secret || !j->host_key)
                        return remote_fail(j, -EINVAL, "local", "An sftp remote needs its key and HostKeySHA256=");
                r = key_to_memfd(j);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int send_end(RemoteJob *j) {
        json_object *o = json_object_new_object();
        const char *s;
        int r;

        if (j->error) {
                json_object_object_add(o, "error", json_object_new_string(j->error));
                json_object_object_add(o, "kind", json_object_new_string(j->kind ?: "protocol"));
        } else {
                json_object_object_add(o, "size", json_object_new_uint64(j->result_size));
                if (j->result_url)
                        json_object_object_add(o, "url", json_object_new_string(j->result_url));
        }
        s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
        r = fetch_frame_write(j->conn, 'E', s, strlen(s));
        json_object_put(o);
        return r;
}

int remote_serve_one(int conn, const char *text, int passed_fd) {
        RemoteJob j = { .conn = conn, .fd = passed_fd, .key_fd = -1 };
        struct stat st;
        int r;

        r = job_parse(&j, text);
        if (r == -EPROTO || r == -ENOMEM) {
                job_done(&j);
                return r;
        }
        if (r >= 0 && j.op == REMOTE_OP_PUT) {
                if (fstat(j.fd, &st) < 0 || !S_ISREG(st.st_mode))
                        r = remote_fail(&j, -EBADF, "local", "The backup to upload is not a regular file");
                j.size = j.progress_total = (uint64_t) st.st_size;
        }
        if (r >= 0 && !(j.curl = curl_easy_init()))
                r = remote_fail(&j, -ENOMEM, "local", "Cannot initialize libcurl");
        if (r >= 0) {
                switch (j.type) {
                case REMOTE_TYPE_S3:
                        r = remote_s3_run(&j);
                        break;
                case REMOTE_TYPE_WEBDAV:
                        r = remote_webdav_run(&j);
                        break;
                default:
                        r = remote_sftp_run(&j);
                        break;
                }
        }
        if (r >= 0)
                r = flush_entries(&j);
        if (r < 0 && !j.error)
                (void) remote_fail(&j, r, "protocol", "The transfer failed: %s", strerror(-r));
        if (j.client_gone)
                r = -EPIPE;
        else
                r = send_end(&j);
        job_done(&j);
        return r;
}

int remote_read_back(RemoteJob *j, const char *url, bool http) {
        unsigned char local[EVP_MAX_MD_SIZE], remote[EVP_MAX_MD_SIZE];
        unsigned nl, nr;
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        RemoteCall c = { .url = url, .out_fd = -1, .out_hash = ctx };
        int r;

        if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
                EVP_MD_CTX_free(ctx);
                return -ENOMEM;
        }
        r = remote_digest_fd(j, EVP_sha256(), 0, j->size, local, &nl);
        if (r >= 0)
                r = remote_call(j, &c, "Reading the upload back");
        if (r >= 0 && http && c.status != 200)
                r = remote_fail_status(j, &c, "Reading the upload back");
        if (r >= 0 && (EVP_DigestFinal_ex(ctx, remote, &nr) != 1 || nr != nl || memcmp(local, remote, nl) != 0))
                r = remote_fail(j, -EIO, "verify", "The copy on the remote differs from the backup (SHA-256 read "
                                "back): the server or the connection corrupted it");
        EVP_MD_CTX_free(ctx);
        remote_call_done(&c);
        return r;
}
