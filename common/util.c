/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdarg.h>
#include <ctype.h>
#include <stdint.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <strings.h>

#include "build-config.h"
#include "util.h"

bool endswith(const char *s, const char *suffix) {
        size_t ls = strlen(s), lx = strlen(suffix);
        return ls >= lx && memcmp(s + ls - lx, suffix, lx) == 0;
}

int free_and_strdup(char **p, const char *s) {
        char *t = NULL;

        if (s) {
                t = strdup(s);
                if (!t)
                        return -ENOMEM;
        }
        free(*p);
        *p = t;
        return 0;
}

char **strv_free(char **l) {
        if (!l)
                return NULL;
        for (char **i = l; *i; i++)
                free(*i);
        free(l);
        return NULL;
}

size_t strv_length(char *const *l) {
        size_t n = 0;
        while (l && l[n])
                n++;
        return n;
}

bool strv_contains(char *const *l, const char *s) {
        STRV_FOREACH(i, l)
                if (streq(*i, s))
                        return true;
        return false;
}

int strv_consume(char ***l, char *s) {
        size_t n = strv_length(*l);
        char **t;

        if (!s)
                return -ENOMEM;
        t = reallocarray(*l, n + 2, sizeof(char *));
        if (!t) {
                free(s);
                return -ENOMEM;
        }
        t[n] = s;
        t[n + 1] = NULL;
        *l = t;
        return 0;
}

int strv_extend(char ***l, const char *s) {
        return strv_consume(l, strdup(s));
}

char **strv_copy(char *const *l) {
        _cleanup_strv_free_ char **c = calloc(1, sizeof(char *));

        if (!c)
                return NULL;
        STRV_FOREACH(i, l)
                if (strv_extend(&c, *i) < 0)
                        return NULL;
        return TAKE_PTR(c);
}

int strv_split_words(const char *s, char ***ret) {
        _cleanup_strv_free_ char **l = calloc(1, sizeof(char *));

        if (!l)
                return -ENOMEM;
        while (s && *s) {
                size_t n;

                s += strspn(s, " \t\n");
                n = strcspn(s, " \t\n");
                if (n == 0)
                        break;
                if (strv_consume(&l, strndup(s, n)) < 0)
                        return -ENOMEM;
                s += n;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

int read_full_fd(int fd, size_t max, char **ret, size_t *ret_size) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 0, allocated = 0;

        for (;;) {
                ssize_t k;

                if (allocated - size < 4096) {
                        size_t na = allocated ? allocated * 2 : 16384;
                        char *t;

                        if (na > max + 2)
                                na = max + 2;
                        if (na <= size + 1)
                                return -EFBIG;
                        t = realloc(buf, na);
                        if (!t)
                                return -ENOMEM;
                        buf = t;
                        allocated = na;
                }
                k = read(fd, buf + size, allocated - size - 1);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                size += k;
                if (size > max)
                        return -EFBIG;
        }
        if (!buf) {
                buf = malloc(1);
                if (!buf)
                        return -ENOMEM;
        }
        buf[size] = 0;
        *ret = TAKE_PTR(buf);
        if (ret_size)
                *ret_size = size;
        return 0;
}

ssize_t pread_full(int fd, void *buf, size_t n, uint64_t offset) {
        size_t done = 0;

        while (done < n) {
                ssize_t k = pread(fd, (uint8_t *) buf + done, n - done, (off_t) (offset + done));

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                done += (size_t) k;
        }
        return (ssize_t) done;
}

int write_all(int fd, const void *buf, size_t size) {
        const char *p = buf;

        while (size > 0) {
                ssize_t k = write(fd, p, size);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += k;
                size -= k;
        }
        return 0;
}

int rename_noreplace(int dirfd, const char *from, const char *to) {
        if (renameat2(dirfd, from, dirfd, to, RENAME_NOREPLACE) >= 0)
                return 0;
        if (errno != EINVAL && errno != ENOSYS)
                return -errno;
        if (linkat(dirfd, from, dirfd, to, 0) < 0)
                return -errno;
        (void) unlinkat(dirfd, from, 0);
        return 0;
}

int parse_boolean(const char *s) {
        static const char *const yes[] = { "1", "yes", "y", "true", "t", "on" };
        static const char *const no[] = { "0", "no", "n", "false", "f", "off" };

        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                if (strcasecmp(s, yes[i]) == 0)
                        return 1;
        for (size_t i = 0; i < ELEMENTSOF(no); i++)
                if (strcasecmp(s, no[i]) == 0)
                        return 0;
        return -EINVAL;
}

const char *format_bytes(char *buf, size_t size, unsigned long long bytes) {
        static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
        double v = bytes;
        size_t u = 0;

        while (v >= 1024 && u + 1 < ELEMENTSOF(units)) {
                v /= 1024;
                u++;
        }
        if (u == 0)
                snprintf(buf, size, "%llu B", bytes);
        else
                snprintf(buf, size, "%.1f %s", v, units[u]);
        return buf;
}

int opendir_fd(int dirfd, DIR **ret) {
        DIR *d;
        int fd, r;

        fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return -errno;
        d = fdopendir(fd);
        if (!d) {
                r = -errno;
                close(fd);
                return r;
        }
        rewinddir(d);
        *ret = d;
        return 0;
}

int array_reserve_bytes(void **array, size_t *allocated, size_t need, size_t size) {
        size_t n;
        void *t;

        if (need <= *allocated)
                return 0;
        n = *allocated > SIZE_MAX / 2 ? need : *allocated * 2;
        if (n < need)
                n = need;
        if (n < 16)
                n = 16;
        t = reallocarray(*array, n, size);
        if (!t)
                return -ENOMEM;
        *array = t;
        *allocated = n;
        return 0;
}

int set_first_error(char **error, const char *format, ...) {
        va_list ap;
        int r;

        if (*error)
                return 0;
        va_start(ap, format);
        r = vasprintf(error, format, ap);
        va_end(ap);
        if (r < 0) {
                *error = NULL;
                return -ENOMEM;
        }
        return 0;
}

const char *state_directory(void) {
        static char dir[4096];
        const char *e = getenv("STATE_DIRECTORY");

        /* systemd: one absolute path per StateDirectory= entry, separated by ':'; ours is the first. */
        if (!isempty(e) && e[0] == '/' && strcspn(e, ":") < sizeof(dir)) {
                snprintf(dir, sizeof(dir), "%.*s", (int) strcspn(e, ":"), e);
                return dir;
        }
        return OPBACKUP_STATE_DIR;
}
