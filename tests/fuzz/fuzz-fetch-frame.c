/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The fetch helper's protocol (service/fetch/fetch-frame.c) from both ends. The first byte picks:
 *   even: the helper's side: frames read until the stream ends or breaks, each request frame parsed as
 *         fetch-serve.c does and checked with fetch_request_check() (no transfer is made);
 *   odd:  the client's side: fetch_get() over a socketpair whose far end holds the input as the helper's
 *         answer (head, body pieces, end). */

#include <json-c/json.h>
#include <sys/socket.h>

#include "fetch/fetch-client.h"
#include "fetch/fetch-frame.h"
#include "fuzz-util.h"

/* As fetch-serve.c: the longest request it takes. */
#define FETCH_REQUEST_MAX (64U * 1024U)

/* What a socketpair takes without a reader (the default buffer is larger). */
#define ANSWER_MAX (64U * 1024U)

/* serve_one()'s reading of a request (fetch-serve.c), up to the transfer. */
static void check_request(const char *text) {
        _cleanup_strv_free_ char **headers = NULL;
        _cleanup_free_ char *error = NULL;
        json_object *q = json_tokener_parse(text), *v;
        FetchRequest req = {};

        if (!q || !json_object_is_type(q, json_type_object)) {
                json_object_put(q);
                return;
        }
        if (json_object_object_get_ex(q, "url", &v))
                req.url = json_object_get_string(v);
        if (json_object_object_get_ex(q, "headers", &v) && json_object_is_type(v, json_type_array)) {
                for (size_t k = 0; k < json_object_array_length(v) && k <= FETCH_HEADERS_MAX; k++) {
                        json_object *e = json_object_array_get_idx(v, k);
                        if (json_object_is_type(e, json_type_string) &&
                            strv_extend(&headers, json_object_get_string(e)) < 0)
                                abort();
                }
        }
        if (json_object_object_get_ex(q, "max_size", &v))
                req.max_size = json_object_get_uint64(v);
        if (json_object_object_get_ex(q, "timeout_sec", &v))
                req.timeout_sec = (unsigned) json_object_get_uint64(v);
        req.headers = headers;
        if (fetch_request_check(&req, &error) < 0 && !error)
                abort();
        json_object_put(q);
}

static void serve_side(const uint8_t *data, size_t size) {
        _cleanup_close_ int fd = fuzz_memfd(data, size);

        if (fd < 0)
                abort();
        for (;;) {
                _cleanup_free_ char *frame = NULL;
                size_t n;
                char type;

                if (fetch_frame_read(fd, 1000, &type, &frame, &n) < 0)
                        return;
                if (frame[n] != 0)
                        abort();        /* promised: NUL-terminated */
                if (type != 'Q' || n > FETCH_REQUEST_MAX || strlen(frame) != n)
                        return;
                check_request(frame);
        }
}

static void client_side(const uint8_t *data, size_t size) {
        static char *const headers[] = { (char *) "X-Api-Key: 0123", NULL };
        FetchRequest req = {
                .url = "https://plugins.octoprint.org/plugins.json",
                .headers = headers,
                .max_size = 4096,
                .timeout_sec = 1,
        };
        FetchResponse resp = {};
        int sv[2];

        if (size > ANSWER_MAX)
                return;
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                abort();
        if (write_all(sv[1], data, size) < 0 || shutdown(sv[1], SHUT_WR) < 0)
                abort();
        if (fetch_get(sv[0], &req, -1, &resp) >= 0 && (!resp.body || resp.size > req.max_size))
                abort();
        fetch_response_done(&resp);
        close(sv[0]);
        close(sv[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size == 0)
                return 0;
        if (data[0] & 1)
                client_side(data + 1, size - 1);
        else
                serve_side(data + 1, size - 1);
        return 0;
}
