/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The client side of the fetch helper (fetch.h): connecting to its socket, starting it when there is none,
 * and a GET through it. No libcurl here: the daemon and its workers do not load it (fetch-serve.c is linked
 * into opbackup-fetch only). */

#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "build-config.h"
#include "fetch/fetch-client.h"
#include "fetch/fetch-frame.h"
#include "fetch/fetch-serve.h"
#include "util.h"

extern char **environ;

/* What the helper may take beyond the transfer's own time limit (its start by systemd, DNS). */
#define FETCH_SLACK_MS 15000

void fetch_response_done(FetchResponse *r) {
        free(r->body);
        free(r->effective_url);
        free(r->error);
        *r = (FetchResponse) {};
}

static bool is_http_url(const char *url) {
        return strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0;
}

static bool has_control_chars(const char *s) {
        for (; *s; s++)
                if ((unsigned char) *s < 0x20 || *s == 0x7f)
                        return true;
        return false;
}

int fetch_request_check(const FetchRequest *req, char **ret_error) {
        const char *why = NULL;

        *ret_error = NULL;
        if (!req->url || !is_http_url(req->url))
                why = "only http:// and https:// URLs can be fetched";
        else if (strlen(req->url) > FETCH_URL_MAX || has_control_chars(req->url) || strchr(req->url, ' '))
                why = "the URL is too long or contains spaces or control characters";
        else if (strv_length(req->headers) > FETCH_HEADERS_MAX)
                why = "too many headers";
        else if (req->max_size == 0 || req->max_size > FETCH_SIZE_MAX)
                why = "the size limit is out of range";
        else if (req->timeout_sec == 0 || req->timeout_sec > FETCH_TIMEOUT_SEC_MAX)
                why = "the time limit is out of range";
        STRV_FOREACH(h, req->headers) {
                const char *colon = strchr(*h, ':');

                /* A CR or LF would let a header smuggle in more of the request. */
                if (!why && (strlen(*h) > FETCH_HEADER_MAX || has_control_chars(*h) || !colon || colon == *h))
                        why = "a header is not \"Name: value\" on one line";
        }
        if (!why)
                return 0;
        *ret_error = strdup(why);
        return -EINVAL;
}

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

                r = fetch_frame_wait(fd, timeout_ms, req->progress, req->userdata, ret->size, length > 0 ? (uint64_t) length : 0);
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

/* A GET over a connection to a helper; *ret_complete: the answer was read to its end. */
static int get_through(int helper_fd, const FetchRequest *req, int out_fd, FetchResponse *ret, bool *ret_complete) {
        bool complete = false;
        int r;

        *ret_complete = false;
        *ret = (FetchResponse) {};
        r = fetch_request_check(req, &ret->error);
        if (r < 0) {
                *ret_complete = true;   /* nothing was sent */
                return r;
        }
        r = send_request(helper_fd, req);
        if (r >= 0)
                r = receive_response(helper_fd, req, out_fd, ret, &complete);
        /* Broken off mid-answer (canceled, timed out, the helper gone or confused): the rest of this answer
         * may still come, and must never be read as the answer to another request. Shut the connection, so
         * that later requests over it fail at once (-EPIPE). */
        if (!complete)
                (void) shutdown(helper_fd, SHUT_RDWR);
        *ret_complete = complete;
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

const char *fetch_helper_binary_path(void) {
        const char *p = getenv("OPBACKUP_FETCH");

        return isempty(p) ? OPBACKUP_FETCH_PATH : p;
}

/* In the child: the helper on the socket as its standard input, as systemd-less opbackup-fetch serves it.
 * Only async-signal-safe calls (the worker may have threads). An exec that fails writes its errno to
 * err_fd (close-on-exec: a successful exec closes it without a word). */
_Noreturn static void helper_child(pid_t parent, int sock, int err_fd, const char *path) {
        char *argv[] = { (char *) path, NULL };
        sigset_t none;
        int e;

        sigemptyset(&none);
        (void) sigprocmask(SIG_SETMASK, &none, NULL);
        for (int sig = 1; sig < NSIG; sig++)
                (void) signal(sig, SIG_DFL);
        /* The helper must not outlive the worker that asks (a job canceled hard). */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
                _exit(127);
        if (err_fd < 3 && (err_fd = fcntl(err_fd, F_DUPFD_CLOEXEC, 3)) < 0)
                _exit(127);
        if (dup2(sock, STDIN_FILENO) < 0) {
                e = errno;
                goto fail;
        }
        /* Nothing of the worker's but the connection and standard output and error. */
        if ((err_fd > 3 && close_range(3, (unsigned) err_fd - 1, 0) < 0) ||
            close_range((unsigned) err_fd + 1, ~0U, 0) < 0)
                for (int fd = 3; fd < 65536; fd++)
                        if (fd != err_fd)
                                (void) close(fd);
        execve(path, argv, environ);
        e = errno;
fail:
        (void) !write(err_fd, &e, sizeof(e));
        _exit(127);
}

int fetch_helper_spawn(int *ret_fd, pid_t *ret_pid, char **ret_error) {
        const char *path = fetch_helper_binary_path();
        _cleanup_close_ int sock = -1, err_r = -1;
        int sv[2], p[2], e = 0;
        pid_t parent = getpid(), pid;
        ssize_t n;

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                goto fail_errno;
        sock = sv[0];
        if (pipe2(p, O_CLOEXEC) < 0) {
                close(sv[1]);
                goto fail_errno;
        }
        err_r = p[0];
        fflush(stderr);
        pid = fork();
        if (pid < 0) {
                close(sv[1]);
                close(p[1]);
                goto fail_errno;
        }
        if (pid == 0)
                helper_child(parent, sv[1], p[1], path);
        close(sv[1]);
        close(p[1]);
        do
                n = read(err_r, &e, sizeof(e));
        while (n < 0 && errno == EINTR);
        if (n == (ssize_t) sizeof(e) && e > 0) {
                while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                        ;
                if (asprintf(ret_error, "Cannot start the fetch helper %s: %s", path, strerror(e)) < 0)
                        *ret_error = NULL;
                return -e;
        }
        *ret_fd = TAKE_FD(sock);
        *ret_pid = pid;
        return 0;

fail_errno:
        e = errno;
        if (asprintf(ret_error, "Cannot start the fetch helper %s: %s", path, strerror(e)) < 0)
                *ret_error = NULL;
        return -e;
}

int fetch_get(int helper_fd, const FetchRequest *req, int out_fd, FetchResponse *ret) {
        bool complete;
        pid_t pid = -1;
        int fd = -1, r;

        if (helper_fd >= 0)
                return get_through(helper_fd, req, out_fd, ret, &complete);

        /* No helper socket: start the helper for this request, as this process's user. libcurl is loaded
         * there, never here. */
        *ret = (FetchResponse) {};
        r = fetch_request_check(req, &ret->error);
        if (r < 0)
                return r;
        r = fetch_helper_spawn(&fd, &pid, &ret->error);
        if (r < 0)
                return r;
        r = get_through(fd, req, out_fd, ret, &complete);
        close(fd);
        /* At a complete answer the helper ends by itself at the end of its connection; else it may still be
         * busy with the transfer nobody waits for. */
        if (!complete)
                (void) kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
        return r;
}
