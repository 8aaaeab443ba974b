/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Minimal assertions for the unit tests: print where and what failed, exit 1. Not assert(), so
 * they stay active whatever NDEBUG says. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define ASSERT_TRUE(expr)                                                               \
        do {                                                                            \
                if (!(expr)) {                                                          \
                        fprintf(stderr, "%s:%d: assertion failed: %s\n",                \
                                __FILE__, __LINE__, #expr);                             \
                        exit(EXIT_FAILURE);                                             \
                }                                                                       \
        } while (0)

#define ASSERT_FALSE(expr) ASSERT_TRUE(!(expr))

#define ASSERT_EQ(a, b)                                                                 \
        do {                                                                            \
                long long _a = (long long) (a), _b = (long long) (b);                   \
                if (_a != _b) {                                                         \
                        fprintf(stderr, "%s:%d: assertion failed: %s == %s (%lld != %lld)\n", \
                                __FILE__, __LINE__, #a, #b, _a, _b);                    \
                        exit(EXIT_FAILURE);                                             \
                }                                                                       \
        } while (0)

/* Both NULL is equal; prints both strings on mismatch. */
#define ASSERT_STREQ(a, b)                                                              \
        do {                                                                            \
                const char *_a = (a), *_b = (b);                                        \
                if (!streq_ptr(_a, _b)) {                                               \
                        fprintf(stderr, "%s:%d: assertion failed: %s == %s\n"           \
                                "  left:  %s%s%s\n  right: %s%s%s\n",                   \
                                __FILE__, __LINE__, #a, #b,                             \
                                _a ? "\"" : "", _a ?: "NULL", _a ? "\"" : "",           \
                                _b ? "\"" : "", _b ?: "NULL", _b ? "\"" : "");          \
                        exit(EXIT_FAILURE);                                             \
                }                                                                       \
        } while (0)

#define ASSERT_NULL(p) ASSERT_TRUE((p) == NULL)
#define ASSERT_NOT_NULL(p) ASSERT_TRUE((p) != NULL)

/* s must contain sub. */
#define ASSERT_CONTAINS(s, sub)                                                         \
        do {                                                                            \
                const char *_s = (s), *_sub = (sub);                                    \
                if (!_s || !strstr(_s, _sub)) {                                         \
                        fprintf(stderr, "%s:%d: assertion failed: %s contains \"%s\"\n" \
                                "  value: %s\n", __FILE__, __LINE__, #s, _sub,          \
                                _s ?: "NULL");                                          \
                        exit(EXIT_FAILURE);                                             \
                }                                                                       \
        } while (0)

/* Runs a test function and says which one, so a failure in the log is easy to place. */
#define RUN(test)                                                                       \
        do {                                                                            \
                fprintf(stderr, "== %s\n", #test);                                      \
                test();                                                                 \
        } while (0)

#include <ftw.h>
#include <sys/stat.h>

/* A fresh directory under $TMPDIR (or /tmp); the test removes it with rm_rf(). */
static inline char *make_tempdir(void) {
        char *t;

        if (asprintf(&t, "%s/opbackup-unit-XXXXXX", getenv("TMPDIR") ?: "/tmp") < 0)
                abort();
        if (!mkdtemp(t)) {
                perror("mkdtemp");
                exit(EXIT_FAILURE);
        }
        return t;
}

static inline int rm_rf_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path) < 0 ? -1 : 0;
}

static inline void rm_rf(const char *path) {
        if (nftw(path, rm_rf_one, 16, FTW_DEPTH | FTW_PHYS) < 0) {
                perror(path);
                exit(EXIT_FAILURE);
        }
}

/* Writes dir/relpath, creating the folders on the way; aborts the test on failure. */
static inline void write_file(const char *dir, const char *relpath, const char *content) {
        _cleanup_free_ char *path = NULL;
        FILE *f;

        if (asprintf(&path, "%s/%s", dir, relpath) < 0)
                abort();
        for (char *p = path + strlen(dir) + 1; (p = strchr(p, '/')); p++) {
                *p = 0;
                if (mkdir(path, 0755) < 0 && errno != EEXIST) {
                        perror(path);
                        exit(EXIT_FAILURE);
                }
                *p = '/';
        }
        f = fopen(path, "we");
        if (!f || fputs(content, f) < 0 || fclose(f) != 0) {
                perror(path);
                exit(EXIT_FAILURE);
        }
}

static inline void make_dir(const char *dir, const char *relpath) {
        _cleanup_free_ char *path = NULL;

        if (asprintf(&path, "%s/%s/.keep", dir, relpath) < 0)
                abort();
        write_file(dir, strchr(path + strlen(dir), '/') + 1, "");
        if (unlink(path) < 0) {
                perror(path);
                exit(EXIT_FAILURE);
        }
}

/* G-code-like text of `size` bytes in dir/rel (the folder must exist); `variant` changes every line's
 * numbers but not their length, so an edit keeps the size. */
static inline void write_gcode(const char *dir, const char *rel, size_t size, unsigned variant) {
        _cleanup_free_ char *path = NULL;
        FILE *f;

        ASSERT_TRUE(asprintf(&path, "%s/%s", dir, rel) >= 0);
        f = fopen(path, "we");
        ASSERT_NOT_NULL(f);
        for (size_t i = 0; i < size; ) {
                char line[64];
                int n = snprintf(line, sizeof(line), "G1 X%03zu.%u Y%03zu.%u E%05zu\n", i % 997, variant % 10,
                                 (i * 7) % 991, (variant + 3) % 10, i);
                size_t k = (size_t) n < size - i ? (size_t) n : size - i;

                ASSERT_EQ(fwrite(line, 1, k, f), k);
                i += k;
        }
        ASSERT_EQ(fclose(f), 0);
}

/* Whether any of the lines contains sub. */
static inline bool strv_find_substring(char **lines, const char *sub) {
        STRV_FOREACH(l, lines)
                if (strstr(*l, sub))
                        return true;
        return false;
}
