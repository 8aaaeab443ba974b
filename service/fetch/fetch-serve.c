/* SPDX-License-Identifier: GPL-2.0-or-later */
/* One HTTP GET with libcurl (fetch_perform), and the helper's loop that does them for the daemon's
 * workers (fetch_serve). Every resource the other side controls is limited: size, time, redirects,
 * protocols. See fetch.h. */

#include <curl/curl.h>
#include <json-c/json.h>
#include <stdarg.h>

#include "build-config.h"
#include "fetch/fetch-client.h"
#include "fetch/fetch-frame.h"
#include "fetch/fetch-serve.h"
#include "remote/remote-serve.h"
#include "util.h"

#define FETCH_CHUNK_MAX (64U * 1024U)
/* A request frame is small; a client sending more is broken. */
#define FETCH_REQUEST_MAX (64U * 1024U)
/* How long the helper waits for the next request before it gives up on a client. A print-aware backup
 * asks every PrintPollSec= for up to PrintWaitMaxSec= (at most a week) on one connection, and the client
 * closes it when done: this only ends a client that neither asks nor closes. */
#define FETCH_IDLE_MS (8 * 24 * 3600 * 1000)

typedef struct Transfer Transfer;
/* A piece of the body; t->status and t->length are known by then. */
typedef int (*fetch_body_fn)(Transfer *t, const char *data, size_t size);

struct Transfer {
        CURL *curl;
        const FetchRequest *req;
        long status;
        int64_t length;                 /* announced; -1 unknown */
        uint64_t size;
        bool too_large;
        bool canceled;
        int body_error;                 /* negative errno from on_body */
        fetch_body_fn on_body;
        void *userdata;
};

static size_t on_write(char *data, size_t size, size_t nmemb, void *userdata) {
        Transfer *t = userdata;
        size_t n = size * nmemb;
        curl_off_t length = -1;
        int r;

        /* Content-Length is checked by CURLOPT_MAXFILESIZE before the body starts; a body without one
         * is stopped here. */
        if (n > t->req->max_size - t->size) {
                t->too_large = true;
                return 0;
        }
        (void) curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &t->status);
        if (curl_easy_getinfo(t->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length) == CURLE_OK)
                t->length = length;
        r = t->on_body(t, data, n);
        if (r < 0) {
                t->body_error = r;
                return 0;
        }
        t->size += n;
        return n;
}

/* curl calls this at least once a second, also while nothing arrives: the place to ask whether to go on. */
static int on_xferinfo(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
        Transfer *t = userdata;

        if (t->req->progress &&
            t->req->progress((uint64_t) dlnow, dltotal > 0 ? (uint64_t) dltotal : 0, t->req->userdata) < 0) {
                t->canceled = true;
                return 1;
        }
        return 0;
}

static int transfer_setup(Transfer *t, struct curl_slist *headers, char *errbuf) {
        const FetchRequest *req = t->req;
#define SET(opt, val)                                                           \
        do {                                                                    \
                if (curl_easy_setopt(t->curl, opt, val) != CURLE_OK)            \
                        return -EIO;                                            \
        } while (0)

        SET(CURLOPT_URL, req->url);
        SET(CURLOPT_ERRORBUFFER, errbuf);
        SET(CURLOPT_NOSIGNAL, 1L);
        SET(CURLOPT_USERAGENT, "opbackup/" PACKAGE_VERSION);
        SET(CURLOPT_PROTOCOLS_STR, "http,https");
        SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
        /* curl sends custom headers to wherever a redirect leads: a request carrying an API key follows
         * none, so the key only ever goes to the URL it was configured for. */
        SET(CURLOPT_FOLLOWLOCATION, headers ? 0L : 1L);
        SET(CURLOPT_MAXREDIRS, 5L);
        SET(CURLOPT_SSL_VERIFYPEER, 1L);
        SET(CURLOPT_SSL_VERIFYHOST, 2L);
        SET(CURLOPT_CONNECTTIMEOUT, (long) (req->timeout_sec < 10 ? req->timeout_sec : 10));
        SET(CURLOPT_TIMEOUT, (long) req->timeout_sec);
        /* Give up on a transfer that stalls (below 1 KiB/s for 30 s) long before the total limit. */
        SET(CURLOPT_LOW_SPEED_LIMIT, 1024L);
        SET(CURLOPT_LOW_SPEED_TIME, 30L);
        SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) req->max_size);
        /* Whatever curl can decode (a plugin repository is JSON of some MiB); the size limit applies to the
         * decoded body too (on_write), so a small compressed answer cannot unpack into a large one. */
        SET(CURLOPT_ACCEPT_ENCODING, "");
        SET(CURLOPT_HTTPHEADER, headers);
        SET(CURLOPT_WRITEFUNCTION, on_write);
        SET(CURLOPT_WRITEDATA, t);
        SET(CURLOPT_XFERINFOFUNCTION, on_xferinfo);
        SET(CURLOPT_XFERINFODATA, t);
        SET(CURLOPT_NOPROGRESS, 0L);
#undef SET
        return 0;
}

static void set_error(char **ret_error, const char *format, ...) _printf_(2, 3);
static void set_error(char **ret_error, const char *format, ...) {
        va_list ap;

        free(*ret_error);
        va_start(ap, format);
        if (vasprintf(ret_error, format, ap) < 0)
                *ret_error = NULL;
        va_end(ap);
}

/* Runs the request, handing the body to on_body piece by piece. 0 when an answer came: t->status, and
 * *ret_effective_url (may be NULL). */
static int fetch_run(Transfer *t, char **ret_effective_url, char **ret_error) {
        const FetchRequest *req = t->req;
        char errbuf[CURL_ERROR_SIZE] = "";
        struct curl_slist *headers = NULL;
        CURLcode code;
        int r;

        t->length = -1;
        r = fetch_request_check(req, ret_error);
        if (r < 0)
                return r;
        STRV_FOREACH(h, req->headers) {
                struct curl_slist *l = curl_slist_append(headers, *h);
                if (!l) {
                        curl_slist_free_all(headers);
                        return -ENOMEM;
                }
                headers = l;
        }
        t->curl = curl_easy_init();
        if (!t->curl) {
                curl_slist_free_all(headers);
                set_error(ret_error, "Cannot initialize libcurl");
                return -ENOMEM;
        }
        r = transfer_setup(t, headers, errbuf);
        if (r < 0)
                set_error(ret_error, "Cannot set up the request to %s (libcurl too old?)", req->url);
        else {
                code = curl_easy_perform(t->curl);
                if (t->canceled) {
                        set_error(ret_error, "Canceled");
                        r = -ECANCELED;
                } else if (t->body_error < 0) {
                        set_error(ret_error, "Cannot store the answer: %s", strerror(-t->body_error));
                        r = t->body_error;
                } else if (t->too_large || code == CURLE_FILESIZE_EXCEEDED) {
                        set_error(ret_error, "The answer is larger than %llu bytes",
                                  (unsigned long long) req->max_size);
                        r = -EFBIG;
                } else if (code != CURLE_OK) {
                        set_error(ret_error, "%s", !isempty(errbuf) ? errbuf : curl_easy_strerror(code));
                        r = code == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -EIO;
                } else {
                        char *eff = NULL;

                        (void) curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &t->status);
                        if (ret_effective_url &&
                            curl_easy_getinfo(t->curl, CURLINFO_EFFECTIVE_URL, &eff) == CURLE_OK &&
                            free_and_strdup(ret_effective_url, eff ?: req->url) < 0)
                                r = -ENOMEM;
                }
        }
        curl_easy_cleanup(t->curl);
        curl_slist_free_all(headers);
        return r;
}

/* ---- In this process ---- */

typedef struct Collect {
        FetchResponse *resp;
        int out_fd;
} Collect;

static int collect_body(Transfer *t, const char *data, size_t size) {
        Collect *c = t->userdata;
        FetchResponse *resp = c->resp;
        char *b;

        if (c->out_fd >= 0)
                return write_all(c->out_fd, data, size);
        b = realloc(resp->body, resp->size + size + 1);
        if (!b)
                return -ENOMEM;
        memcpy(b + resp->size, data, size);
        resp->size += size;
        b[resp->size] = 0;
        resp->body = b;
        return 0;
}

int fetch_perform(const FetchRequest *req, int out_fd, FetchResponse *ret) {
        Collect c = { .resp = ret, .out_fd = out_fd };
        Transfer t = { .req = req, .on_body = collect_body, .userdata = &c };
        int r;

        *ret = (FetchResponse) {};
        r = fetch_run(&t, &ret->effective_url, &ret->error);
        if (r < 0) {
                free(ret->body);
                ret->body = NULL;
                ret->size = 0;
                if (!ret->error)
                        set_error(&ret->error, "%s", strerror(-r));
                return r;
        }
        ret->status = t.status;
        if (out_fd >= 0)
                ret->size = t.size;
        else if (!ret->body && !(ret->body = strdup("")))
                return -ENOMEM;
        return 0;
}

/* ---- The helper: requests from a connection ---- */

typedef struct Served {
        int fd;
        bool head_sent;
} Served;

static int send_json(int fd, char type, json_object *o) {
        const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
        int r = fetch_frame_write(fd, type, s, strlen(s));

        json_object_put(o);
        return r;
}

static int send_head(Served *s, const Transfer *t) {
        json_object *o = json_object_new_object();

        s->head_sent = true;
        json_object_object_add(o, "status", json_object_new_int64(t->status));
        json_object_object_add(o, "length", json_object_new_int64(t->length));
        return send_json(s->fd, 'H', o);
}

static int forward_body(Transfer *t, const char *data, size_t size) {
        Served *s = t->userdata;
        int r;

        if (!s->head_sent) {
                r = send_head(s, t);
                if (r < 0)
                        return r;
        }
        while (size > 0) {
                size_t n = size < FETCH_CHUNK_MAX ? size : FETCH_CHUNK_MAX;

                r = fetch_frame_write(s->fd, 'D', data, n);
                if (r < 0)
                        return r;
                data += n;
                size -= n;
        }
        return 0;
}

static char **json_strv(json_object *a) {
        char **l = calloc(1, sizeof(char *));

        if (!l || !json_object_is_type(a, json_type_array))
                return l;
        for (size_t k = 0; k < json_object_array_length(a) && k <= FETCH_HEADERS_MAX; k++) {
                json_object *e = json_object_array_get_idx(a, k);
                if (!json_object_is_type(e, json_type_string) || strv_extend(&l, json_object_get_string(e)) < 0)
                        return strv_free(l);
        }
        return l;
}

static int serve_one(int fd, const char *text) {
        _cleanup_strv_free_ char **headers = NULL;
        _cleanup_free_ char *error = NULL, *effective = NULL;
        json_object *q = json_tokener_parse(text), *v, *end;
        FetchRequest req = {};
        Served s = { .fd = fd };
        Transfer t = { .req = &req, .on_body = forward_body, .userdata = &s };
        int r;

        if (!q || !json_object_is_type(q, json_type_object)) {
                json_object_put(q);
                return -EPROTO;
        }
        if (json_object_object_get_ex(q, "url", &v))
                req.url = json_object_get_string(v);
        if (json_object_object_get_ex(q, "headers", &v))
                headers = json_strv(v);
        if (json_object_object_get_ex(q, "max_size", &v))
                req.max_size = json_object_get_uint64(v);
        if (json_object_object_get_ex(q, "timeout_sec", &v))
                req.timeout_sec = (unsigned) json_object_get_uint64(v);
        req.headers = headers;

        r = fetch_run(&t, &effective, &error);
        json_object_put(q);
        if (r >= 0 && !s.head_sent)
                r = send_head(&s, &t);
        if (r == -EPIPE || r == -ECONNRESET)
                return r;       /* the client is gone: nobody to tell */
        end = json_object_new_object();
        if (r < 0) {
                json_object_object_add(end, "error", json_object_new_string(error ?: strerror(-r)));
                /* So that the client returns what fetch_perform() would have (-EFBIG, -ETIMEDOUT ...). */
                json_object_object_add(end, "errno", json_object_new_int(-r));
        } else {
                json_object_object_add(end, "size", json_object_new_uint64(t.size));
                json_object_object_add(end, "url", json_object_new_string(effective ?: ""));
        }
        return send_json(fd, 'E', end);
}

int fetch_serve(int fd) {
        for (;;) {
                _cleanup_free_ char *data = NULL;
                int passed = -1;
                size_t size;
                char type;
                int r;

                r = fetch_frame_read_fd(fd, FETCH_IDLE_MS, &type, &data, &size, &passed);
                if (r == -EPIPE)
                        return 0;
                if (r < 0)
                        return r;
                if (type == 'R' && strlen(data) == size) {
                        /* A transfer to or from a remote (remote/remote-serve.h): takes the descriptor. The
                         * request holds credentials: wiped once read. */
                        r = remote_serve_one(fd, data, passed);
                        explicit_bzero(data, size);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (passed >= 0)
                        close(passed);
                if (type != 'Q' || size > FETCH_REQUEST_MAX || strlen(data) != size)
                        return -EPROTO;
                r = serve_one(fd, data);
                if (r < 0)
                        return r;
        }
}
