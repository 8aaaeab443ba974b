/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Small helpers in the style of systemd: cleanup attributes, TAKE_*, string vectors. */

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

#define TAKE_PTR(p)                             \
        ({                                      \
                typeof(p) _p_ = (p);            \
                (p) = NULL;                     \
                _p_;                            \
        })

#define TAKE_FD(fd)                             \
        ({                                      \
                int _fd_ = (fd);                \
                (fd) = -1;                      \
                _fd_;                           \
        })

static inline void freep(void *p) {
        free(*(void **) p);
}

static inline void closep(int *fd) {
        if (*fd >= 0) {
                int saved = errno;
                close(*fd);
                errno = saved;
        }
}

static inline void fclosep(FILE **f) {
        if (*f)
                fclose(*f);
}

#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_fclose_ _cleanup_(fclosep)

static inline bool streq(const char *a, const char *b) {
        return strcmp(a, b) == 0;
}

static inline bool streq_ptr(const char *a, const char *b) {
        if (!a || !b)
                return a == b;
        return streq(a, b);
}

static inline const char *strempty(const char *s) {
        return s ?: "";
}

static inline bool isempty(const char *s) {
        return !s || !*s;
}

/* Returns the rest of s after prefix, or NULL. */
static inline const char *startswith(const char *s, const char *prefix) {
        size_t l = strlen(prefix);
        return strncmp(s, prefix, l) == 0 ? s + l : NULL;
}

bool endswith(const char *s, const char *suffix);

/* Replaces *p with a copy of s (NULL allowed). Returns 0 or -ENOMEM. */
int free_and_strdup(char **p, const char *s);

/* NULL-terminated string vectors. */
char **strv_free(char **l);
static inline void strv_freep(char ***l) {
        strv_free(*l);
}
#define _cleanup_strv_free_ _cleanup_(strv_freep)
size_t strv_length(char *const *l);
bool strv_contains(char *const *l, const char *s);
int strv_extend(char ***l, const char *s);          /* appends a copy */
int strv_consume(char ***l, char *s);               /* appends s itself; frees it on failure */
char **strv_copy(char *const *l);
/* Splits on spaces and tabs, skipping empty words. */
int strv_split_words(const char *s, char ***ret);

#define STRV_FOREACH(s, l) for (char *const *s = (l); s && *s; s++)

/* Reads at most max bytes from fd into a NUL-terminated buffer. -EFBIG if there is more. */
int read_full_fd(int fd, size_t max, char **ret, size_t *ret_size);

/* Reads n bytes at offset, retrying short reads and EINTR: the bytes read (fewer only at the end of the
 * file), or negative errno. */
ssize_t pread_full(int fd, void *buf, size_t n, uint64_t offset);

/* A DIR listing the folder dirfd refers to, from its start; dirfd stays open and the caller's. (The DIR
 * reads through a duplicate of dirfd, so dirfd's own position moves with it.) */
int opendir_fd(int dirfd, DIR **ret);

/* Makes room for `need` elements in `array` (`allocated` of them so far), at least doubling, so that
 * appending one at a time stays linear. 0, or -ENOMEM with array and allocated unchanged. */
int array_reserve_bytes(void **array, size_t *allocated, size_t need, size_t size);
#define ARRAY_RESERVE(array, allocated, need)                                                   \
        ({                                                                                      \
                void *_a = (array);                                                             \
                int _r = array_reserve_bytes(&_a, &(allocated), (need), sizeof(*(array)));      \
                if (_r >= 0)                                                                    \
                        (array) = _a;                                                           \
                _r;                                                                             \
        })
int write_all(int fd, const void *buf, size_t size);

/* Renames dirfd/from to dirfd/to unless `to` exists (-EEXIST then): RENAME_NOREPLACE, or on file systems
 * without it a hard link and an unlink, which fails on an existing name too. */
int rename_noreplace(int dirfd, const char *from, const char *to);

/* Parses "yes/no/true/false/1/0/on/off/y/n" in any case. Returns 1, 0 or -EINVAL. */
int parse_boolean(const char *s);

/* "1.5 GiB" style; buf must hold at least 16 bytes. */
const char *format_bytes(char *buf, size_t size, unsigned long long bytes);

/* Sets *error to the formatted message unless it holds one already: the first problem found is the one
 * to fix first, and later ones often follow from it. 0, or -ENOMEM. */
int set_first_error(char **error, const char *format, ...) _printf_(2, 3);

/* The service's state directory (root's: saved listings, files caches, the last uploads to remotes): the
 * first entry of systemd's $STATE_DIRECTORY (StateDirectory=opbackup) when it is an absolute path, else
 * OPBACKUP_STATE_DIR (/var/lib/opbackup). The folder may not exist. */
const char *state_directory(void);
