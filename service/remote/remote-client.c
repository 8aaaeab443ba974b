/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The client side of transfers to remotes (remote-client.h): one request frame with the archive's descriptor,
 * then progress, listings and the end from the helper. */

#include <json-c/json.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "fetch/fetch-client.h"
#include "fetch/fetch-frame.h"
#include "names.h"
#include "remote/remote-client.h"
#include "util.h"

/* The helper sends progress at least once a second while it transfers; a listing or a server that takes its
 * time between two requests of one operation gets this long (the helper's own limits are shorter). */
#define REMOTE_FRAME_TIMEOUT_MS (10 * 60 * 1000)
#define CANCEL_GRACE_MS (25 * 1000)     /* longer than the helper's CLEANUP_TIMEOUT_S */

static const char *const op_names[_REMOTE_OP_MAX] = {
        [REMOTE_OP_PUT] = "put",
        [REMOTE_OP_LIST] = "list",
        [REMOTE_OP_GET] = "get",
        [REMOTE_OP_DELETE] = "delete",
};

const char *remote_op_to_string(RemoteOp op) {
        return op >= 0 && op < _REMOTE_OP_MAX ? op_names[op] : NULL;
}

RemoteOp remote_op_from_string(const char *s) {
        for (int i = 0; i < _REMOTE_OP_MAX; i++)
                if (streq_ptr(s, op_names[i]))
                        return (RemoteOp) i;
        return _REMOTE_OP_MAX;
}

void remote_result_done(RemoteResult *r) {
        free(r->url);
        for (size_t i = 0; i < r->n_entries; i++)
                free(r->entries[i].name);
        free(r->entries);
        free(r->error);
        free(r->kind);
        *r = (RemoteResult) {};
}

int remote_kind_to_errno(const char *kind) {
        if (streq_ptr(kind, "notfound"))
                return -ENOENT;
        if (streq_ptr(kind, "auth") || streq_ptr(kind, "hostkey"))
                return -EACCES;
        if (streq_ptr(kind, "quota"))
                return -ENOSPC;
        if (streq_ptr(kind, "timeout"))
                return -ETIMEDOUT;
        if (streq_ptr(kind, "canceled"))
                return -ECANCELED;
        return -EIO;
}

static int fail(RemoteResult *ret, int r, const char *kind, const char *error) {
        if (!ret->error && free_and_strdup(&ret->error, error) < 0)
                return -ENOMEM;
        if (!ret->kind && free_and_strdup(&ret->kind, kind) < 0)
                return -ENOMEM;
        return r;
}

static json_object *request_json(const RemoteRequest *req) {
        const RemoteConfig *rc = req->remote;
        json_object *o = json_object_new_object();

#define ADD_STR(k, v) do { if (v) json_object_object_add(o, k, json_object_new_string(v)); } while (0)
        ADD_STR("op", remote_op_to_string(req->op));
        ADD_STR("remote", rc->name);
        ADD_STR("type", remote_type_to_string(rc->type));
        ADD_STR("url", rc->url);
        ADD_STR("region", rc->region);
        ADD_STR("host_key", rc->host_key_sha256);
        ADD_STR("instance", req->instance);
        ADD_STR("name", req->name);
        ADD_STR("ca", req->ca_pem);
        ADD_STR("verify", rc->verify == REMOTE_VERIFY_FULL ? "full" : "size");
        if (req->credentials) {
                ADD_STR("user", req->credentials->user);
                if (req->credentials->secret)
                        json_object_object_add(o, "secret",
                                               json_object_new_string_len(req->credentials->secret,
                                                                          (int) req->credentials->secret_size));
        }
#undef ADD_STR
        if (rc->timeout_s > 0)
                json_object_object_add(o, "timeout", json_object_new_uint64(rc->timeout_s));
        if (rc->part_size > 0)
                json_object_object_add(o, "part_size", json_object_new_uint64(rc->part_size));
        if (rc->multipart_threshold > 0)
                json_object_object_add(o, "multipart_threshold", json_object_new_uint64(rc->multipart_threshold));
        if (req->max_size > 0)
                json_object_object_add(o, "max_size", json_object_new_uint64(req->max_size));
        return o;
}

static int send_request(int helper_fd, const RemoteRequest *req) {
        json_object *o = request_json(req), *secret;
        const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
        size_t n = strlen(s);
        int r;

        if (req->fd >= 0)
                r = fetch_frame_write_fd(helper_fd, 'R', s, n, req->fd);
        else
                r = fetch_frame_write(helper_fd, 'R', s, n);
        /* The text holds the secret: gone from this process's memory as soon as it is sent; so does json-c's
         * copy of it in the object. */
        explicit_bzero((char *) s, n);
        if (json_object_object_get_ex(o, "secret", &secret))
                explicit_bzero((char *) json_object_get_string(secret), (size_t) json_object_get_string_len(secret));
        json_object_put(o);
        return r;
}

static int64_t json_int(json_object *o, const char *key) {
        json_object *v;

        return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_int) ?
                json_object_get_int64(v) : -1;
}

static int64_t nonneg(int64_t v) {
        return v > 0 ? v : 0;
}

static const char *json_str(json_object *o, const char *key) {
        json_object *v;

        return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string) ?
                json_object_get_string(v) : NULL;
}

static int take_entries(RemoteResult *ret, json_object *a, size_t *allocated) {
        if (!json_object_is_type(a, json_type_array))
                return -EPROTO;
        for (size_t i = 0; i < json_object_array_length(a); i++) {
                json_object *e = json_object_array_get_idx(a, i);
                const char *name = json_str(e, "name");
                char *copy;

                /* The helper lists what the server says: only backup names get through. */
                if (!name || !backup_name_is_valid(name))
                        continue;
                if (ret->n_entries >= REMOTE_LIST_MAX)
                        return -E2BIG;
                if (ARRAY_RESERVE(ret->entries, *allocated, ret->n_entries + 1) < 0 || !(copy = strdup(name)))
                        return -ENOMEM;
                ret->entries[ret->n_entries++] = (RemoteEntry) {
                        .name = copy,
                        .size = (uint64_t) nonneg(json_int(e, "size")),
                        .mtime_usec = nonneg(json_int(e, "mtime")),
                };
        }
        return 0;
}

static int receive(int helper_fd, const RemoteRequest *req, RemoteResult *ret) {
        uint64_t done = 0, total = 0;
        size_t allocated = 0;

        for (;;) {
                _cleanup_free_ char *data = NULL;
                json_object *o;
                size_t size;
                char type;
                int r;

                r = fetch_frame_wait(helper_fd, REMOTE_FRAME_TIMEOUT_MS, req->progress, req->userdata, done, total);
                if (r == -ECANCELED)
                        return fail(ret, r, "canceled", "Canceled");
                if (r >= 0)
                        r = fetch_frame_read(helper_fd, REMOTE_FRAME_TIMEOUT_MS, &type, &data, &size);
                if (r < 0)
                        return fail(ret, r == -EPIPE ? -EPROTO : r, "local",
                                    "The transfer helper (opbackup-fetch) stopped answering");
                o = json_tokener_parse(data);
                if (!o)
                        return fail(ret, -EPROTO, "local", "The transfer helper sent something broken");
                switch (type) {
                case 'P':
                        done = (uint64_t) nonneg(json_int(o, "done"));
                        total = (uint64_t) nonneg(json_int(o, "total"));
                        break;
                case 'L':
                        r = take_entries(ret, o, &allocated);
                        if (r < 0) {
                                json_object_put(o);
                                return fail(ret, r, "protocol", r == -E2BIG ? "The remote lists too many backups" :
                                            "The transfer helper sent a broken listing");
                        }
                        break;
                case 'E':
                        if (json_str(o, "error")) {
                                r = fail(ret, remote_kind_to_errno(json_str(o, "kind")), json_str(o, "kind") ?: "protocol",
                                         json_str(o, "error"));
                                json_object_put(o);
                                return r;
                        }
                        ret->size = (uint64_t) nonneg(json_int(o, "size"));
                        r = free_and_strdup(&ret->url, json_str(o, "url"));
                        json_object_put(o);
                        return r;
                default:
                        json_object_put(o);
                        return fail(ret, -EPROTO, "local", "The transfer helper sent an unknown frame");
                }
                json_object_put(o);
        }
}

int remote_transfer(int helper_fd, const RemoteRequest *req, RemoteResult *ret) {
        _cleanup_free_ char *spawn_error = NULL;
        _cleanup_close_ int own_fd = -1;
        pid_t pid = -1;
        int r;

        *ret = (RemoteResult) {};
        if (req->remote->error)
                return fail(ret, -EINVAL, "local", req->remote->error);
        if (helper_fd < 0) {
                r = fetch_helper_spawn(&own_fd, &pid, &spawn_error);
                if (r < 0)
                        return fail(ret, r, "local", spawn_error ?: "Cannot start the transfer helper");
                helper_fd = own_fd;
        }
        r = send_request(helper_fd, req);
        if (r < 0)
                r = fail(ret, r, "local", "Cannot send the request to the transfer helper (opbackup-fetch)");
        else
                r = receive(helper_fd, req, ret);
        if (r < 0 && !streq_ptr(ret->kind, "protocol") && ret->kind && !ret->error)
                (void) fail(ret, r, ret->kind, strerror(-r));
        /* Broken off: whatever the helper still sends must not be read as the answer to another request. */
        if (r < 0 && (streq_ptr(ret->kind, "local") || streq_ptr(ret->kind, "canceled")))
                (void) shutdown(helper_fd, SHUT_RDWR);
        if (pid > 0) {
                close(TAKE_FD(own_fd));
                /* Canceled: the helper, seeing its client gone, removes the temporary upload (or aborts the
                 * multipart upload, whose parts would stay stored and billed) within its own time limit. */
                if (streq_ptr(ret->kind, "canceled"))
                        for (int i = 0; i < CANCEL_GRACE_MS / 50; i++) {
                                pid_t k = waitpid(pid, NULL, WNOHANG);

                                if (k == pid || (k < 0 && errno != EINTR)) {
                                        pid = -1;
                                        break;
                                }
                                (void) usleep(50 * 1000);
                        }
                if (pid > 0 && r < 0)
                        (void) kill(pid, SIGKILL);
                while (pid > 0 && waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                        ;
        }
        return r;
}
