/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The parallel compressor of backups: chunks deflated on their own and joined (deflate-join.c) must
 * inflate, with zlib (what CPython's zipfile uses), to exactly the file; the pool (deflate-pool.c) must
 * hand the chunks back in order, with the right CRC, whatever the file sizes and threads. */

#include <fcntl.h>
#include <libdeflate.h>
#include <sys/param.h>
#include <sys/stat.h>
#include <zlib.h>

#include "backup/deflate-join.h"
#include "backup/deflate-pool.h"
#include "test-util.h"

static uint64_t rng = 88172645463325252ULL;

static uint32_t next_random(void) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return (uint32_t) rng;
}

typedef enum Kind { GCODE, RANDOM, ZEROS, MIXED } Kind;

/* G-code-like text (compresses ~3x), random bytes (does not), zeros (very long matches), or runs of each. */
static uint8_t *make_data(Kind kind, size_t n) {
        uint8_t *d = malloc(n + 64);
        size_t i = 0;

        ASSERT_NOT_NULL(d);
        while (i < n) {
                Kind k = kind == MIXED ? (Kind) ((i / 70000) % 3) : kind;

                if (k == GCODE)
                        i += (size_t) sprintf((char *) d + i, "G1 X%u.%03u Y%u.%03u E%u.%05u\n",
                                              next_random() % 220, next_random() % 1000, next_random() % 220,
                                              next_random() % 1000, next_random() % 9, next_random() % 100000);
                else if (k == RANDOM)
                        d[i++] = (uint8_t) next_random();
                else
                        d[i++] = 0;
        }
        return d;
}

/* All of `stream` inflates to exactly data[0..n): one stream, nothing before its end, nothing after. */
static void check_inflates(const uint8_t *stream, size_t len, const uint8_t *data, size_t n) {
        _cleanup_free_ uint8_t *back = malloc(n + 1);
        z_stream z = {};

        ASSERT_NOT_NULL(back);
        ASSERT_EQ(inflateInit2(&z, -15), Z_OK);
        z.next_in = (uint8_t *) stream;
        z.avail_in = (uInt) len;
        z.next_out = back;
        z.avail_out = (uInt) n + 1;
        ASSERT_EQ(inflate(&z, Z_FINISH), Z_STREAM_END);
        ASSERT_EQ(z.total_in, len);
        ASSERT_EQ(z.total_out, n);
        ASSERT_TRUE(n == 0 || memcmp(back, data, n) == 0);
        inflateEnd(&z);
}

/* Compresses data in chunks of `chunk` bytes at `level`, joins them, checks the result inflates. */
static void join_roundtrip(Kind kind, size_t n, size_t chunk, int level) {
        struct libdeflate_compressor *c = libdeflate_alloc_compressor(level);
        _cleanup_free_ uint8_t *data = make_data(kind, n), *all = NULL;
        size_t cap = libdeflate_deflate_compress_bound(c, chunk) + DEFLATE_JOIN_SLACK, total = 0;

        ASSERT_NOT_NULL(c);
        all = malloc((n / chunk + 1) * cap);
        ASSERT_NOT_NULL(all);
        for (size_t off = 0;; off += chunk) {
                size_t k = MIN(chunk, n - off);
                size_t out = libdeflate_deflate_compress(c, data + off, k, all + total, cap - DEFLATE_JOIN_SLACK);

                ASSERT_TRUE(out > 0);
                if (off + k < n) {
                        int64_t j = deflate_join_prepare(all + total, out);

                        if (j < 0)
                                fprintf(stderr, "join failed: kind %d, n %zu, chunk %zu, level %d, at %zu\n",
                                        kind, n, chunk, level, off);
                        ASSERT_TRUE(j > (int64_t) out);
                        ASSERT_TRUE(j <= (int64_t) (out + DEFLATE_JOIN_SLACK));
                        out = (size_t) j;
                }
                total += out;
                if (off + k >= n)
                        break;
        }
        check_inflates(all, total, data, n);
        libdeflate_free_compressor(c);
}

static void test_join(void) {
        static const Kind kinds[] = { GCODE, RANDOM, ZEROS, MIXED };
        static const int levels[] = { 1, 4, 6, 9, 12 };
        static const size_t chunks[] = { 1, 7, 1000, 65536, 65537, 300000 };

        for (size_t k = 0; k < ELEMENTSOF(kinds); k++)
                for (size_t l = 0; l < ELEMENTSOF(levels); l++)
                        for (size_t c = 0; c < ELEMENTSOF(chunks); c++) {
                                size_t n = chunks[c] < 100 ? 3000 : 700000;

                                join_roundtrip(kinds[k], n, chunks[c], levels[l]);
                        }
}

/* What is not one complete deflate stream is refused, never read past its end. */
static void test_join_refuses(void) {
        struct libdeflate_compressor *c = libdeflate_alloc_compressor(6);
        _cleanup_free_ uint8_t *data = make_data(GCODE, 200000), *out = malloc(300000), *copy = malloc(300000);
        size_t n = libdeflate_deflate_compress(c, data, 200000, out, 300000);

        ASSERT_TRUE(n > 0);
        /* Truncated: every length from 1 to n-1 (each an allocation of exactly that size, for valgrind). */
        for (size_t len = 1; len < n; len += len < 64 ? 1 : 997) {
                uint8_t *t = malloc(len + DEFLATE_JOIN_SLACK);

                memcpy(t, out, len);
                ASSERT_EQ(deflate_join_prepare(t, len), -EBADMSG);
                free(t);
        }
        /* Data after the final block. */
        memcpy(copy, out, n);
        copy[n] = 0x55;
        ASSERT_EQ(deflate_join_prepare(copy, n + 1), -EBADMSG);
        /* Garbage: refused or accepted, but no crash and never more than the slack added. */
        for (unsigned i = 0; i < 2000; i++) {
                size_t len = 1 + next_random() % 200;
                int64_t r;

                for (size_t j = 0; j < len; j++)
                        copy[j] = (uint8_t) next_random();
                r = deflate_join_prepare(copy, len);
                ASSERT_TRUE(r == -EBADMSG || (r > (int64_t) len && r <= (int64_t) (len + DEFLATE_JOIN_SLACK)));
        }
        libdeflate_free_compressor(c);
}

/* ---- the pool ---- */

typedef struct TestFile {
        char *path;
        uint8_t *data;
        size_t n;               /* what is on disk */
        uint64_t claimed;       /* what the pool is told */
        bool store;
        PoolStatus want;
} TestFile;

static void write_data(const char *path, const uint8_t *d, size_t n) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

        ASSERT_TRUE(fd >= 0);
        ASSERT_EQ(write(fd, d, n), (ssize_t) n);
}

static void run_pool(unsigned threads, int level) {
        char dir[] = "/tmp/test-deflate-XXXXXX";
        const size_t C = DEFLATE_POOL_CHUNK;
        struct {
                Kind kind;
                size_t n;
                int64_t claim_delta;
                bool store, missing;
                PoolStatus want;
        } spec[] = {
                { GCODE, 0, 0, false, false, POOL_OK },
                { GCODE, 1, 0, false, false, POOL_OK },
                { GCODE, C - 1, 0, false, false, POOL_OK },
                { GCODE, C, 0, false, false, POOL_OK },
                { MIXED, C + 1, 0, false, false, POOL_OK },
                { GCODE, 3 * C + 5, 0, false, false, POOL_OK },
                { RANDOM, 2 * C + 77, 0, false, false, POOL_OK },       /* deflated as stored blocks */
                { RANDOM, 2 * C + 77, 0, true, false, POOL_OK },        /* stored */
                { GCODE, 5000, 0, false, true, POOL_VANISHED },
                { GCODE, 2 * C, 1000, false, false, POOL_SHRANK },      /* ends on a chunk boundary */
                { GCODE, C + 10, 7, false, false, POOL_SHRANK },
                { GCODE, 100, -50, true, false, POOL_OK },              /* grew: only the scanned part */
                { ZEROS, 3 * C, 0, false, false, POOL_OK },
        };
        TestFile files[ELEMENTSOF(spec)];
        PoolFile pf[ELEMENTSOF(spec)];
        DeflatePool *p;

        ASSERT_NOT_NULL(mkdtemp(dir));
        for (size_t i = 0; i < ELEMENTSOF(spec); i++) {
                TestFile *f = &files[i];

                *f = (TestFile) { .n = spec[i].n, .store = spec[i].store, .want = spec[i].want };
                ASSERT_TRUE(asprintf(&f->path, "%s/f%zu", dir, i) >= 0);
                f->data = make_data(spec[i].kind, f->n);
                f->claimed = (uint64_t) ((int64_t) f->n + spec[i].claim_delta);
                if (!spec[i].missing)
                        write_data(f->path, f->data, f->n);
                pf[i] = (PoolFile) { .path = f->path, .size = f->claimed, .store = f->store };
        }

        ASSERT_EQ(deflate_pool_new(level, threads, &p), 0);
        ASSERT_EQ(deflate_pool_start(p, pf, ELEMENTSOF(pf), NULL), 0);
        for (size_t i = 0; i < ELEMENTSOF(spec); i++) {
                TestFile *f = &files[i];
                size_t expect = (size_t) MIN((uint64_t) f->n, f->claimed), got = 0, len = 0;
                _cleanup_free_ uint8_t *all = malloc(2 * expect + 64);
                uint32_t crc = 0;
                bool last = false;

                if (f->want == POOL_VANISHED)
                        expect = 0;
                while (!last) {
                        const PoolChunk *c;

                        ASSERT_EQ(deflate_pool_next(p, &c), 0);
                        ASSERT_EQ(c->file, i);
                        ASSERT_TRUE(c->in_size <= DEFLATE_POOL_CHUNK);
                        memcpy(all + len, c->data, c->size);
                        len += c->size;
                        got += c->in_size;
                        crc = (uint32_t) crc32_combine(crc, c->crc, (z_off_t) c->in_size);
                        last = c->last;
                        if (last)
                                ASSERT_EQ(c->status, f->want);
                        else
                                ASSERT_EQ(c->status, POOL_OK);
                        deflate_pool_release(p);
                }
                ASSERT_EQ(got, expect);
                if (f->store) {
                        ASSERT_EQ(len, expect);
                        ASSERT_TRUE(expect == 0 || memcmp(all, f->data, expect) == 0);
                } else {
                        check_inflates(all, len, f->data, expect);
                        ASSERT_EQ(crc, (uint32_t) crc32(0, f->data, (uInt) expect));
                }
        }
        {
                const PoolChunk *c;
                ASSERT_EQ(deflate_pool_next(p, &c), -ENODATA);
        }
        ASSERT_EQ(deflate_pool_join_fallbacks(p), 0);
        deflate_pool_free(p);

        for (size_t i = 0; i < ELEMENTSOF(spec); i++) {
                (void) unlink(files[i].path);
                free(files[i].path);
                free(files[i].data);
        }
        ASSERT_EQ(rmdir(dir), 0);
}

static void test_pool(void) {
        run_pool(1, 6);
        run_pool(2, 1);
        run_pool(4, 9);
}

/* Freed while its threads work and the ring is full: they stop, nothing leaks or hangs. */
static void test_pool_stop_early(void) {
        char path[] = "/tmp/test-deflate-stop-XXXXXX";
        _cleanup_free_ uint8_t *d = make_data(GCODE, 8 * DEFLATE_POOL_CHUNK);
        PoolFile f[3];
        DeflatePool *p;
        const PoolChunk *c;
        int fd = mkstemp(path);

        ASSERT_TRUE(fd >= 0);
        close(fd);
        write_data(path, d, 8 * DEFLATE_POOL_CHUNK);
        for (size_t i = 0; i < ELEMENTSOF(f); i++)
                f[i] = (PoolFile) { .path = path, .size = 8 * DEFLATE_POOL_CHUNK };
        ASSERT_EQ(deflate_pool_new(6, 2, &p), 0);
        ASSERT_EQ(deflate_pool_start(p, f, ELEMENTSOF(f), NULL), 0);
        ASSERT_EQ(deflate_pool_next(p, &c), 0);
        deflate_pool_free(p);           /* holding a chunk, others in flight */
        ASSERT_EQ(deflate_pool_new(6, 2, &p), 0);
        deflate_pool_free(p);           /* never started */
        ASSERT_EQ(unlink(path), 0);
}

static void test_sample(void) {
        _cleanup_free_ uint8_t *text = make_data(GCODE, 32768), *noise = make_data(RANDOM, 32768);
        DeflatePool *p;

        ASSERT_EQ(deflate_pool_new(6, 1, &p), 0);
        ASSERT_EQ(deflate_pool_sample_incompressible(p, text, 32768), 0);
        ASSERT_EQ(deflate_pool_sample_incompressible(p, noise, 32768), 1);
        ASSERT_EQ(deflate_pool_sample_incompressible(p, noise, 10), 0);      /* too little to say */
        deflate_pool_free(p);
}

int main(void) {
        RUN(test_join);
        RUN(test_join_refuses);
        RUN(test_pool);
        RUN(test_pool_stop_early);
        RUN(test_sample);
        return 0;
}
