/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#include "log.h"
#include "util.h"
#include "worker/privs.h"
#include "worker/worker-pipe.h"
#include "worker/worker.h"

#define WORKER_REPLY_MAX (64U * 1024U * 1024U)

void worker_reply_done(WorkerReply *r) {
        json_object_put(r->json);
        r->json = NULL;
        if (r->fd >= 0)
                close(r->fd);
        r->fd = -1;
}

json_object *worker_error(const char *format, ...) {
        json_object *o = json_object_new_object();
        char buf[1024];
        va_list ap;

        va_start(ap, format);
        vsnprintf(buf, sizeof(buf), format, ap);
        va_end(ap);
        json_object_object_add(o, "error", json_object_new_string(buf));
        return o;
}

/* First message: one byte, with the fd attached if there is one. Then the JSON text until EOF. */
static int send_reply(int sock, json_object *json, int fd) {
        char byte = fd >= 0 ? 'F' : 'N';
        struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int))];
        } control = {};
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
        const char *text;

        if (fd >= 0) {
                struct cmsghdr *c;
                mh.msg_control = &control;
                mh.msg_controllen = sizeof(control);
                c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(c), &fd, sizeof(int));
        }
        if (sendmsg(sock, &mh, MSG_NOSIGNAL) != 1)
                return -errno;
        text = json_object_to_json_string_ext(json, JSON_C_TO_STRING_PLAIN);
        return write_all(sock, text, strlen(text));
}

static long elapsed_ms(const struct timespec *start) {
        struct timespec now;

        clock_gettime(CLOCK_MONOTONIC, &now);
        return (now.tv_sec - start->tv_sec) * 1000 + (now.tv_nsec - start->tv_nsec) / 1000000;
}

static int wait_readable(int fd, const struct timespec *start, unsigned timeout_sec) {
        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                long left = (long) timeout_sec * 1000 - elapsed_ms(start);
                int r;

                if (left <= 0)
                        return -ETIMEDOUT;
                r = poll(&p, 1, (int) left);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return -errno;
                if (r > 0)
                        return 0;
        }
}

static int receive_reply(int sock, unsigned timeout_sec, WorkerReply *ret) {
        _cleanup_free_ char *text = NULL;
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int))];
        } control = {};
        char byte;
        struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control,
                             .msg_controllen = sizeof(control) };
        struct timespec start;
        size_t size = 0, allocated = 0;
        int fd = -1, r;

        clock_gettime(CLOCK_MONOTONIC, &start);
        r = wait_readable(sock, &start, timeout_sec);
        if (r < 0)
                return r;
        if (recvmsg(sock, &mh, MSG_CMSG_CLOEXEC) != 1)
                return -EPROTO;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
                        memcpy(&fd, CMSG_DATA(c), sizeof(int));

        for (;;) {
                ssize_t k;

                if (allocated - size < 65536) {
                        char *t;
                        allocated = allocated ? allocated * 2 : 262144;
                        if (allocated > WORKER_REPLY_MAX + 1) {
                                r = -EFBIG;
                                goto fail;
                        }
                        t = realloc(text, allocated);
                        if (!t) {
                                r = -ENOMEM;
                                goto fail;
                        }
                        text = t;
                }
                r = wait_readable(sock, &start, timeout_sec);
                if (r < 0)
                        goto fail;
                k = read(sock, text + size, allocated - size - 1);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        r = -errno;
                        goto fail;
                }
                if (k == 0)
                        break;
                size += k;
        }
        if (!text) {
                r = -EPROTO;
                goto fail;
        }
        text[size] = 0;
        ret->json = json_tokener_parse(text);
        if (!ret->json) {
                r = -EBADMSG;
                goto fail;
        }
        ret->fd = fd;
        return 0;
fail:
        if (fd >= 0)
                close(fd);
        return r;
}

int worker_run_sync(uid_t uid, gid_t gid, const char *name, unsigned timeout_sec, worker_task_fn task,
                    void *userdata, int keep_fd, WorkerReply *ret) {
        int sv[2], r, status;
        pid_t pid;

        *ret = (WorkerReply) { .fd = -1 };
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                return -errno;
        r = fork_worker(name, &pid);
        if (r < 0) {
                close(sv[0]);
                close(sv[1]);
                return r;
        }
        if (r == 0) {
                json_object *json = NULL;
                int fd = -1;

                int keep[2] = { sv[1], keep_fd };

                close_all_fds_except(keep, keep_fd >= 0 ? 2 : 1);
                if (drop_privileges(uid, gid) < 0)
                        _exit(EXIT_FAILURE);
                become_idle_priority();
                r = task(userdata, &json, &fd);
                if (r < 0 && !json)
                        json = worker_error("%s", strerror(-r));
                if (!json || send_reply(sv[1], json, fd) < 0)
                        _exit(EXIT_FAILURE);
                _exit(EXIT_SUCCESS);
        }

        close(sv[1]);
        r = receive_reply(sv[0], timeout_sec, ret);
        close(sv[0]);
        if (r < 0)
                kill(pid, SIGKILL);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        if (r < 0)
                return log_warning_errno(r, "Worker %s failed: %m", name);
        return 0;
}
