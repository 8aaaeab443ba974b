/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The client side of the fetch helper (fetch.h): connecting to its socket, and a GET through it. */

#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "fetch.h"
#include "util.h"

/* What the helper may take beyond the transfer's own time limit (its start by systemd, DNS). */
#define FETCH_SLACK_MS 15000

const char *fetch_helper_socket_path(void) {
        const char *p = getenv("OPBACKUP_FETCH_SOCKET");

        return isempty(p) ? FETCH_HELPER_SOCKET : p;
}

int fetch_helper_connect(const char *socket_path, int *ret_fd) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -1;

        if (!socket_path)
                socket_path = fetch_helper_socket_path();
        if (strlen(socket_path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, socket_path);
        /* Non-blocking: the daemon's event loop must not wait on a helper socket whose backlog is full
         * (-EAGAIN then, and the worker asks by itself). */
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return -errno;
        /* The worker uses it with blocking writes (reads wait in poll() with a time limit). */
        if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0)
                return -errno;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static int send_request(int fd, const FetchRequest *req) {
        json_object *o = json_object_new_object(), *h = json_object_new_array();
        const char *s;
        int r;

        json_object_object_add(o, "url", json_object_new_string(req->url));
        STRV_FOREACH(e, req->headers)
                json_object_array_add(h, json_object_new_string(*e));
        json_object_object_add(o, "headers", h);
        json_object_object_add(o, "max_size", json_object_new_uint64(req->max_size));
        json_object_object_add(o, "timeout_sec", json_object_new_uint64(req->timeout_sec));
        s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
        r = fetch_frame_write(fd, 'Q', s, strlen(s));
        json_object_put(o);
        return r;
}

/* Reads "key" of a JSON frame: an integer (ret_num) or a string (ret_str). */
static void read_frame_json(const char *data, const char *key, int64_t *ret_num, char **ret_str) {
        json_object *o = json_tokener_parse(data), *v;

        if (o && json_object_object_get_ex(o, key, &v)) {
                if (ret_num && json_object_is_type(v, json_type_int))
                        *ret_num = json_object_get_int64(v);
                if (ret_str && json_object_is_type(v, json_type_string))
                        (void) free_and_strdup(ret_str, json_object_get_string(v));
        }
        json_object_put(o);
}

/* Waits until the helper has sent something, asking progress() every second whether to go on. */
static int wait_for_helper(int fd, const FetchRequest *req, uint64_t done, uint64_t total, int timeout_ms) {
        for (int waited = 0;; waited += 1000) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                int r;

                if (req->progress && req->progress(done, total, req->userdata) < 0)
                        return -ECANCELED;
                if (waited >= timeout_ms)
                        return -ETIMEDOUT;
                r = poll(&p, 1, 1000);
                if (r < 0 && errno != EINTR)
                        return -errno;
                if (r > 0)
                        return 0;
        }
}

static int store_body(FetchResponse *ret, int out_fd, const char *data, size_t size) {
        char *b;

        if (out_fd >= 0) {
                ret->size += size;
                return write_all(out_fd, data, size);
        }
        b = realloc(ret->body, ret->size + size + 1);
        if (!b)
                return -ENOMEM;
        memcpy(b + ret->size, data, size);
        ret->size += size;
        b[ret->size] = 0;
        ret->body = b;
        return 0;
}

/* The errno the helper reported with an error, as far as it is one fetch_perform() returns; else -EIO. */
static int helper_errno(const char *data) {
        int64_t e = 0;

        read_frame_json(data, "errno", &e, NULL);
        return e == EFBIG || e == ETIMEDOUT || e == EINVAL ? (int) -e : -EIO;
}

/* *ret_complete: the answer was read to its end, so the connection can take the next request. */
static int receive_response(int fd, const FetchRequest *req, int out_fd, FetchResponse *ret, bool *ret_complete) {
        int timeout_ms = (int) req->timeout_sec * 1000 + FETCH_SLACK_MS;
        int64_t status = 0, length = -1;

        for (;;) {
                _cleanup_free_ char *data = NULL;
                size_t size;
                char type;
                int r;

                r = wait_for_helper(fd, req, ret->size, length > 0 ? (uint64_t) length : 0, timeout_ms);
                if (r >= 0)
                        r = fetch_frame_read(fd, timeout_ms, &type, &data, &size);
                if (r < 0)
                        return r == -EPIPE ? -EPROTO : r;
                switch (type) {
                case 'H':
                        read_frame_json(data, "status", &status, NULL);
                        read_frame_json(data, "length", &length, NULL);
                        ret->status = (long) status;
                        break;
                case 'D':
                        /* The helper enforces the limit too; a helper that does not is broken. */
                        if (size > req->max_size - ret->size)
                                return -EPROTO;
                        r = store_body(ret, out_fd, data, size);
                        if (r < 0) {
                                if (asprintf(&ret->error, "Cannot store the answer: %s", strerror(-r)) < 0)
                                        ret->error = NULL;
                                return r;
                        }
                        break;
                case 'E':
                        read_frame_json(data, "error", NULL, &ret->error);
                        read_frame_json(data, "url", NULL, &ret->effective_url);
                        *ret_complete = true;
                        return ret->error ? helper_errno(data) : 0;
                default:
                        return -EPROTO;
                }
        }
}

int fetch_get(int helper_fd, const FetchRequest *req, int out_fd, FetchResponse *ret) {
        bool complete = false;
        int r;

        if (helper_fd < 0)
                return fetch_perform(req, out_fd, ret);

        *ret = (FetchResponse) {};
        r = fetch_request_check(req, &ret->error);
        if (r < 0)
                return r;
        r = send_request(helper_fd, req);
        if (r >= 0)
                r = receive_response(helper_fd, req, out_fd, ret, &complete);
        /* Broken off mid-answer (canceled, timed out, the helper gone or confused): the rest of this answer
         * may still come, and must never be read as the answer to another request. Shut the connection, so
         * that later requests over it fail at once (-EPIPE). */
        if (!complete)
                (void) shutdown(helper_fd, SHUT_RDWR);
        if (r < 0) {
                free(ret->body);
                ret->body = NULL;
                ret->size = 0;
                ret->status = 0;
                if (!ret->error && r == -ECANCELED)
                        ret->error = strdup("Canceled");
                else if (!ret->error && r == -EPIPE)
                        ret->error = strdup("The connection to the fetch helper is closed (the helper was stopped, "
                                            "or an earlier request over it broke off)");
                else if (!ret->error && asprintf(&ret->error, "The fetch helper broke off: %s", strerror(-r)) < 0)
                        ret->error = NULL;
                return r;
        }
        if (out_fd < 0 && !ret->body && !(ret->body = strdup("")))
                return -ENOMEM;
        if (isempty(ret->effective_url) && free_and_strdup(&ret->effective_url, req->url) < 0)
                return -ENOMEM;
        return 0;
}
