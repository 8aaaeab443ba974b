/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The frames of the fetch helper's protocol (fetch.h): a type byte, a 32-bit big-endian length, the data. */

#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#include "fetch/fetch-client.h"
#include "fetch/fetch-frame.h"
#include "util.h"

/* Like write_all(), but a peer that is gone is an error to report (-EPIPE), not a SIGPIPE: workers run with
 * its default action, and a helper stopped mid-restore must not kill the restore's worker with it. */
static int send_all(int fd, const void *data, size_t size) {
        const char *p = data;

        while (size > 0) {
                ssize_t k = send(fd, p, size, MSG_NOSIGNAL);

                if (k < 0 && errno == ENOTSOCK)
                        return write_all(fd, p, size);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                p += k;
                size -= (size_t) k;
        }
        return 0;
}

int fetch_frame_write(int fd, char type, const void *data, size_t size) {
        uint8_t head[5];
        uint32_t n;
        int r;

        if (size > FETCH_FRAME_MAX)
                return -EMSGSIZE;
        n = htonl((uint32_t) size);
        head[0] = (uint8_t) type;
        memcpy(head + 1, &n, sizeof(n));
        r = send_all(fd, head, sizeof(head));
        if (r < 0 || size == 0)
                return r;
        return send_all(fd, data, size);
}

static int64_t now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int fetch_frame_write_fd(int fd, char type, const void *data, size_t size, int pass_fd) {
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int))];
        } control = {};
        uint8_t head[5];
        struct iovec iov = { .iov_base = head, .iov_len = sizeof(head) };
        struct msghdr mh = {
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = &control,
                .msg_controllen = sizeof(control),
        };
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        uint32_t n;
        ssize_t k;

        if (size > FETCH_FRAME_MAX)
                return -EMSGSIZE;
        n = htonl((uint32_t) size);
        head[0] = (uint8_t) type;
        memcpy(head + 1, &n, sizeof(n));
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
        /* The descriptor rides on the first bytes of the head; the rest goes as usual. */
        do
                k = sendmsg(fd, &mh, MSG_NOSIGNAL);
        while (k < 0 && errno == EINTR);
        if (k < 0)
                return -errno;
        k = send_all(fd, head + k, sizeof(head) - (size_t) k);
        if (k < 0 || size == 0)
                return (int) k;
        return send_all(fd, data, size);
}

/* read(), or recvmsg() taking a passed descriptor into *ret_fd (the first one; any later one is closed: a
 * frame carries one at most). */
static ssize_t read_some(int fd, void *buf, size_t size, int *ret_fd) {
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int) * 4)];
        } control;
        struct iovec iov = { .iov_base = buf, .iov_len = size };
        struct msghdr mh = {
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = &control,
                .msg_controllen = sizeof(control),
        };
        ssize_t k;

        if (!ret_fd)
                return read(fd, buf, size);
        k = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
        if (k < 0)
                return k;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
                size_t nfds;

                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                        continue;
                nfds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < nfds; i++) {
                        int passed;

                        memcpy(&passed, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                        if (*ret_fd < 0)
                                *ret_fd = passed;
                        else
                                close(passed);
                }
        }
        return k;
}

/* Reads exactly size bytes before the deadline. -EPIPE if the stream ends before the first byte and
 * eof_ok, -EPROTO if it ends later. */
static int read_exact_fd(int fd, void *buf, size_t size, int64_t deadline, bool eof_ok, int *ret_fd);
static int read_exact(int fd, void *buf, size_t size, int64_t deadline, bool eof_ok) {
        return read_exact_fd(fd, buf, size, deadline, eof_ok, NULL);
}

static int read_exact_fd(int fd, void *buf, size_t size, int64_t deadline, bool eof_ok, int *ret_fd) {
        size_t done = 0;

        while (done < size) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                int64_t left = deadline - now_ms();
                ssize_t k;
                int r;

                if (left <= 0)
                        return -ETIMEDOUT;
                r = poll(&p, 1, left > INT32_MAX ? INT32_MAX : (int) left);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return -errno;
                if (r == 0)
                        continue;
                k = read_some(fd, (char *) buf + done, size - done, ret_fd);
                if (k < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        return done == 0 && eof_ok ? -EPIPE : -EPROTO;
                done += (size_t) k;
        }
        return 0;
}

int fetch_frame_read(int fd, int timeout_ms, char *ret_type, char **ret_data, size_t *ret_size) {
        return fetch_frame_read_fd(fd, timeout_ms, ret_type, ret_data, ret_size, NULL);
}

int fetch_frame_read_fd(int fd, int timeout_ms, char *ret_type, char **ret_data, size_t *ret_size, int *ret_fd) {
        int64_t deadline = now_ms() + timeout_ms;
        _cleanup_free_ char *data = NULL;
        _cleanup_close_ int passed = -1;
        uint8_t head[5];
        uint32_t n;
        int r;

        r = read_exact_fd(fd, head, sizeof(head), deadline, true, ret_fd ? &passed : NULL);
        if (r < 0)
                return r;
        memcpy(&n, head + 1, sizeof(n));
        n = ntohl(n);
        if (n > FETCH_FRAME_MAX)
                return -EPROTO;
        data = malloc((size_t) n + 1);
        if (!data)
                return -ENOMEM;
        r = read_exact(fd, data, n, deadline, false);
        if (r < 0)
                return r == -EPIPE ? -EPROTO : r;
        data[n] = 0;
        *ret_type = (char) head[0];
        *ret_size = n;
        *ret_data = TAKE_PTR(data);
        if (ret_fd)
                *ret_fd = TAKE_FD(passed);
        return 0;
}

int fetch_frame_wait(int fd, int timeout_ms, int (*progress)(uint64_t done, uint64_t total, void *userdata),
                     void *userdata, uint64_t done, uint64_t total) {
        for (int waited = 0;; waited += 1000) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                int r;

                if (progress && progress(done, total, userdata) < 0)
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
