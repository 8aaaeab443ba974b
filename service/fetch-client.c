/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The client side of the fetch helper (fetch.h): connecting to its socket, and a GET through it. */

#include <json-c/json.h>
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
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
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
static void read_frame_json(const char *data, const char *key, long *ret_num, char **ret_str) {
        json_object *o = json_tokener_parse(data), *v;

        if (o && json_object_object_get_ex(o, key, &v)) {
                if (ret_num && json_object_is_type(v, json_type_int))
                        *ret_num = (long) json_object_get_int64(v);
                if (ret_str && json_object_is_type(v, json_type_string))
                        (void) free_and_strdup(ret_str, json_object_get_string(v));
        }
        json_object_put(o);
}

static int receive_response(int fd, const FetchRequest *req, FetchResponse *ret) {
        int timeout_ms = (int) req->timeout_sec * 1000 + FETCH_SLACK_MS;

        for (;;) {
                _cleanup_free_ char *data = NULL;
                size_t size;
                char type;
                int r;

                r = fetch_frame_read(fd, timeout_ms, &type, &data, &size);
                if (r < 0)
                        return r == -EPIPE ? -EPROTO : r;
                switch (type) {
                case 'H':
                        read_frame_json(data, "status", &ret->status, NULL);
                        break;
                case 'D': {
                        char *b;

                        /* The helper enforces the limit too; a helper that does not is broken. */
                        if (size > req->max_size - ret->size)
                                return -EPROTO;
                        b = realloc(ret->body, ret->size + size + 1);
                        if (!b)
                                return -ENOMEM;
                        memcpy(b + ret->size, data, size);
                        ret->size += size;
                        b[ret->size] = 0;
                        ret->body = b;
                        break;
                }
                case 'E':
                        read_frame_json(data, "error", NULL, &ret->error);
                        return ret->error ? -EIO : 0;
                default:
                        return -EPROTO;
                }
        }
}

int fetch_get(int helper_fd, const FetchRequest *req, FetchResponse *ret) {
        int r;

        if (helper_fd < 0)
                return fetch_perform(req, ret);

        *ret = (FetchResponse) {};
        r = fetch_request_check(req, &ret->error);
        if (r < 0)
                return r;
        r = send_request(helper_fd, req);
        if (r >= 0)
                r = receive_response(helper_fd, req, ret);
        if (r < 0) {
                free(ret->body);
                ret->body = NULL;
                ret->size = 0;
                ret->status = 0;
                if (!ret->error && asprintf(&ret->error, "The fetch helper broke off: %s", strerror(-r)) < 0)
                        ret->error = NULL;
                return r;
        }
        if (!ret->body)
                ret->body = strdup("");
        return ret->body ? 0 : -ENOMEM;
}
