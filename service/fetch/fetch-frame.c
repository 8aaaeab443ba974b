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

/* Reads exactly size bytes before the deadline. -EPIPE if the stream ends before the first byte and
 * eof_ok, -EPROTO if it ends later. */
static int read_exact(int fd, void *buf, size_t size, int64_t deadline, bool eof_ok) {
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
                k = read(fd, (char *) buf + done, size - done);
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
        int64_t deadline = now_ms() + timeout_ms;
        _cleanup_free_ char *data = NULL;
        uint8_t head[5];
        uint32_t n;
        int r;

        r = read_exact(fd, head, sizeof(head), deadline, true);
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
        return 0;
}
