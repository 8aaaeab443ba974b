/* SPDX-License-Identifier: GPL-2.0-or-later */
/* HTTP GETs in this process (fetch_perform), through the fetch helper's protocol (fetch.h) to a helper on a
 * socket, and through an opbackup-fetch that fetch_get() starts itself when there is no socket
 * ($OPBACKUP_FETCH), against a small HTTP server on 127.0.0.1 run by a child, with the same results each
 * way: statuses, bodies, the size limit, headers, redirects (followed only without headers, so an API key
 * never leaves for another host), and requests the helper refuses. */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "fetch/fetch-client.h"
#include "fetch/fetch-serve.h"
#include "test-util.h"

static int port;
static pid_t server_pid;
/* helper_fd -1: fetch_perform() in this process if set, else fetch_get() with the helper it starts. */
static bool in_process;

static int do_get(int helper_fd, const FetchRequest *req, int out_fd, FetchResponse *ret) {
        return helper_fd < 0 && in_process ? fetch_perform(req, out_fd, ret) : fetch_get(helper_fd, req, out_fd, ret);
}

static void answer(int c, const char *request) {
        char head[512];
        const char *body = "";
        const char *status = "200 OK", *extra = "";

        if (strncmp(request, "GET /key ", 9) == 0) {
                if (!strstr(request, "\r\nX-Api-Key: secret\r\n")) {
                        status = "401 Unauthorized";
                        body = "{\"error\": \"Invalid API key\"}";
                } else
                        body = "{\"state\": \"Printing\"}";
        } else if (strncmp(request, "GET /redirect ", 14) == 0) {
                status = "302 Found";
                extra = "Location: /ok\r\n";
        } else if (strncmp(request, "GET /big ", 9) == 0) {
                /* No Content-Length: the limit must stop the body as it comes. */
                static char chunk[65536];
                memset(chunk, 'x', sizeof(chunk));
                dprintf(c, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
                for (int k = 0; k < 32; k++)
                        if (write(c, chunk, sizeof(chunk)) < 0)
                                break;
                return;
        } else if (strncmp(request, "GET /ok ", 8) == 0)
                body = "hello";
        else {
                status = "404 Not Found";
                body = "no such thing";
        }
        snprintf(head, sizeof(head), "HTTP/1.1 %s\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n", status,
                 strlen(body), extra);
        if (write(c, head, strlen(head)) < 0 || write(c, body, strlen(body)) < 0)
                return;
}

static void start_server(void) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(sa);
        int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        ASSERT_TRUE(s >= 0);
        ASSERT_EQ(bind(s, (struct sockaddr *) &sa, sizeof(sa)), 0);
        ASSERT_EQ(listen(s, 16), 0);
        ASSERT_EQ(getsockname(s, (struct sockaddr *) &sa, &len), 0);
        port = ntohs(sa.sin_port);
        server_pid = fork();
        ASSERT_TRUE(server_pid >= 0);
        if (server_pid > 0) {
                close(s);
                return;
        }
        signal(SIGPIPE, SIG_IGN);
        for (;;) {
                char req[8192];
                size_t n = 0;
                int c = accept(s, NULL, NULL);

                if (c < 0)
                        continue;
                while (n < sizeof(req) - 1) {
                        ssize_t k = read(c, req + n, sizeof(req) - 1 - n);
                        if (k <= 0)
                                break;
                        n += (size_t) k;
                        req[n] = 0;
                        if (strstr(req, "\r\n\r\n"))
                                break;
                }
                req[n] = 0;
                answer(c, req);
                close(c);
        }
}

static char *url(const char *path) {
        char *u;

        ASSERT_TRUE(asprintf(&u, "http://127.0.0.1:%d%s", port, path) > 0);
        return u;
}

static void get(int helper_fd, const char *path, char *const *headers, uint64_t max_size, int want_r,
                long want_status, const char *want_body_or_error) {
        _cleanup_free_ char *u = url(path);
        _cleanup_(fetch_response_done) FetchResponse resp = {};
        FetchRequest req = { .url = u, .headers = headers, .max_size = max_size, .timeout_sec = 10 };
        int r = do_get(helper_fd, &req, -1, &resp);

        /* The same errno in this process and through the helper. */
        if (r != want_r)
                fprintf(stderr, "%s (helper %d): r=%d error=%s\n", path, helper_fd, r, strempty(resp.error));
        ASSERT_EQ(r, want_r);
        if (r < 0) {
                ASSERT_CONTAINS(resp.error, want_body_or_error);
                ASSERT_NULL(resp.body);
                return;
        }
        ASSERT_EQ(resp.status, want_status);
        ASSERT_STREQ(resp.body, want_body_or_error);
        ASSERT_EQ(resp.size, strlen(want_body_or_error));
}

static void requests(int helper_fd) {
        char *const key[] = { (char *) "X-Api-Key: secret", NULL };
        char *const wrong_key[] = { (char *) "X-Api-Key: guess", NULL };

        get(helper_fd, "/ok", NULL, 1024, 0, 200, "hello");
        get(helper_fd, "/key", key, 1024, 0, 200, "{\"state\": \"Printing\"}");
        get(helper_fd, "/key", wrong_key, 1024, 0, 401, "{\"error\": \"Invalid API key\"}");
        get(helper_fd, "/nope", NULL, 1024, 0, 404, "no such thing");
        get(helper_fd, "/big", NULL, 1024 * 1024, -EFBIG, 0, "larger than 1048576 bytes");
        get(helper_fd, "/ok", NULL, 3, -EFBIG, 0, "larger than 3 bytes");
        /* Followed without headers; with an API key, the redirect is the answer. */
        get(helper_fd, "/redirect", NULL, 1024, 0, 200, "hello");
        get(helper_fd, "/redirect", key, 1024, 0, 302, "");
}

/* Into a file, with the URL after redirects; and a transfer stopped by its progress callback. */
static int stop_at_once(uint64_t done, uint64_t total, void *userdata) {
        (*(unsigned *) userdata)++;
        return -ECANCELED;
}

static void streamed(int helper_fd) {
        _cleanup_free_ char *u = url("/redirect"), *big = url("/big");
        _cleanup_(fetch_response_done) FetchResponse resp = {}, canceled = {};
        char path[] = "/tmp/opbackup-fetch-XXXXXX", buf[16] = "";
        FetchRequest req = { .url = u, .max_size = 1024, .timeout_sec = 10 };
        unsigned calls = 0;
        int fd = mkstemp(path);

        ASSERT_TRUE(fd >= 0);
        unlink(path);
        ASSERT_EQ(do_get(helper_fd, &req, fd, &resp), 0);
        ASSERT_EQ(resp.status, 200);
        ASSERT_NULL(resp.body);
        ASSERT_EQ(resp.size, 5);
        ASSERT_TRUE(endswith(resp.effective_url, "/ok"));
        ASSERT_EQ(pread(fd, buf, sizeof(buf) - 1, 0), 5);
        ASSERT_STREQ(buf, "hello");
        close(fd);

        req = (FetchRequest) { .url = big, .max_size = 64 * 1024 * 1024, .timeout_sec = 10,
                               .progress = stop_at_once, .userdata = &calls };
        ASSERT_EQ(do_get(helper_fd, &req, -1, &canceled), -ECANCELED);
        ASSERT_STREQ(canceled.error, "Canceled");
        ASSERT_TRUE(calls >= 1);
}

static void test_in_process(void) {
        in_process = true;
        requests(-1);
        streamed(-1);
        in_process = false;
}

/* No helper socket: fetch_get() starts opbackup-fetch for each request, and the answers are the same. */
static void test_self_started_helper(void) {
        _cleanup_(fetch_response_done) FetchResponse resp = {};
        FetchRequest req = { .url = "http://127.0.0.1:1/", .max_size = 10, .timeout_sec = 5 };
        const char *helper = getenv("OPBACKUP_FETCH");
        _cleanup_free_ char *saved = NULL;

        if (!helper) {
                fprintf(stderr, "OPBACKUP_FETCH is not set: not testing the self-started helper\n");
                return;
        }
        requests(-1);
        streamed(-1);
        /* No child is left behind, also after a canceled transfer. */
        ASSERT_TRUE(waitpid(-1, NULL, WNOHANG) <= 0);

        /* A helper that cannot be started: its errno, and a word saying which. */
        ASSERT_NOT_NULL(saved = strdup(helper));
        ASSERT_EQ(setenv("OPBACKUP_FETCH", "/nonexistent/opbackup-fetch", 1), 0);
        ASSERT_EQ(fetch_get(-1, &req, -1, &resp), -ENOENT);
        ASSERT_CONTAINS(resp.error, "Cannot start the fetch helper /nonexistent/opbackup-fetch");
        ASSERT_NULL(resp.body);
        ASSERT_EQ(setenv("OPBACKUP_FETCH", saved, 1), 0);
}

static void test_through_helper(void) {
        int sv[2], status;
        pid_t pid;

        ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        pid = fork();
        ASSERT_TRUE(pid >= 0);
        if (pid == 0) {
                close(sv[0]);
                signal(SIGPIPE, SIG_IGN);
                int r = fetch_serve(sv[1]);
                /* As opbackup-fetch: a client that went away mid-answer is no failure of the helper. */
                _exit(r < 0 && r != -EPIPE && r != -ECONNRESET ? 1 : 0);
        }
        close(sv[1]);
        /* All on one connection, as a worker does; a canceled transfer ends it (the last one). */
        requests(sv[0]);
        streamed(sv[0]);
        /* What the canceled transfer left unread is never taken for another answer: the connection is shut,
         * and a request over it fails at once, with no SIGPIPE (this process has its default action). */
        get(sv[0], "/ok", NULL, 1024, -EPIPE, 0, "connection to the fetch helper is closed");
        close(sv[0]);
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_refused(void) {
        _cleanup_free_ char *error = NULL;
        char *const smuggle[] = { (char *) "X-Api-Key: a\r\nHost: evil", NULL };
        char *const bad[] = { (char *) "no colon", NULL };
        FetchRequest req = { .url = "http://127.0.0.1/", .max_size = 10, .timeout_sec = 10 };

        ASSERT_EQ(fetch_request_check(&req, &error), 0);
        req.url = "file:///etc/passwd";
        ASSERT_EQ(fetch_request_check(&req, &error), -EINVAL);
        ASSERT_CONTAINS(error, "only http:// and https://");
        free(error);
        req.url = "http://127.0.0.1/ x";
        ASSERT_EQ(fetch_request_check(&req, &error), -EINVAL);
        free(error);
        req.url = "http://127.0.0.1/";
        req.headers = smuggle;
        ASSERT_EQ(fetch_request_check(&req, &error), -EINVAL);
        ASSERT_CONTAINS(error, "header");
        free(error);
        req.headers = bad;
        ASSERT_EQ(fetch_request_check(&req, &error), -EINVAL);
        free(error);
        req.headers = NULL;
        req.max_size = 0;
        ASSERT_EQ(fetch_request_check(&req, &error), -EINVAL);
        free(error);
        req.max_size = 10;
        req.timeout_sec = FETCH_TIMEOUT_SEC_MAX + 1;
        ASSERT_EQ(fetch_request_check(&req, &error), -EINVAL);
        free(error);
        error = NULL;
}

static void test_unreachable(void) {
        _cleanup_(fetch_response_done) FetchResponse resp = {};
        FetchRequest req = { .url = "http://127.0.0.1:1/api/job", .max_size = 10, .timeout_sec = 5 };
        int fd = -1;

        ASSERT_TRUE(fetch_get(-1, &req, -1, &resp) < 0);
        ASSERT_NOT_NULL(resp.error);
        ASSERT_EQ(resp.status, 0);
        ASSERT_EQ(fetch_helper_connect("/nonexistent/opbackup-fetch.socket", &fd), -ENOENT);
}

int main(void) {
        start_server();
        RUN(test_in_process);
        RUN(test_self_started_helper);
        RUN(test_through_helper);
        RUN(test_refused);
        RUN(test_unreachable);
        kill(server_pid, SIGKILL);
        (void) waitpid(server_pid, NULL, 0);
        return 0;
}
