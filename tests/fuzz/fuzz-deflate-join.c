/* SPDX-License-Identifier: GPL-2.0-or-later */
/* service/backup/deflate-join.c: the walk that finds a deflate stream's final block and makes the stream
 * continue into the next piece.
 *
 * The first input byte chooses what the rest is:
 *   even: two pieces of data (split where the second byte says), each compressed by libdeflate at a level
 *         the first byte picks; the first piece joined to the second must inflate to the data, whole.
 *   odd:  a deflate stream as it is, hostile or not. The walk must never read or write outside the
 *         buffer, and where both libdeflate and zlib inflate the stream exactly, to the same bytes, the
 *         walk must accept it and its result, ended by an empty final block, must inflate to them too.
 *         Both, since libdeflate alone accepts some streams RFC 1951 does not allow (the fuzzer found
 *         one that zlib refuses as "invalid literal/length code"), and the walk may refuse those. */

#include <libdeflate.h>
#include <string.h>
#include <zlib.h>

#include "backup/deflate-join.h"
#include "fuzz-util.h"

#define MAX_OUT (4U * 1024U * 1024U)

static const uint8_t final_empty_block[] = { 0x01, 0x00, 0x00, 0xff, 0xff };

/* Inflates in[0..n) into out (cap bytes); the size, or -1 unless it is one stream that fills exactly n. */
static ssize_t inflate_exact(struct libdeflate_decompressor *d, const uint8_t *in, size_t n, uint8_t *out,
                             size_t cap) {
        size_t in_used = 0, out_size = 0;

        if (libdeflate_deflate_decompress_ex(d, in, n, out, cap, &in_used, &out_size) != LIBDEFLATE_SUCCESS)
                return -1;
        return in_used == n ? (ssize_t) out_size : -1;
}

/* The same with zlib, the reference for what is valid deflate: the size, or -1. */
static ssize_t zlib_inflate_exact(const uint8_t *in, size_t n, uint8_t *out, size_t cap) {
        z_stream z = { .next_in = (Bytef *) in, .avail_in = (uInt) n, .next_out = out, .avail_out = (uInt) cap };
        int r;

        if (inflateInit2(&z, -15) != Z_OK)
                abort();
        r = inflate(&z, Z_FINISH);
        inflateEnd(&z);
        return r == Z_STREAM_END && z.avail_in == 0 ? (ssize_t) z.total_out : -1;
}

static void joined_pieces(struct libdeflate_decompressor *d, int level, const uint8_t *data, size_t size,
                          size_t split) {
        struct libdeflate_compressor *c = libdeflate_alloc_compressor(level);
        size_t cap = libdeflate_deflate_compress_bound(c, size) + DEFLATE_JOIN_SLACK;
        _cleanup_free_ uint8_t *stream = malloc(2 * cap), *back = malloc(size + 1);
        size_t first, second;
        int64_t joined;

        if (!c || !stream || !back)
                abort();
        first = libdeflate_deflate_compress(c, data, split, stream, cap);
        if (first == 0)
                abort();
        joined = deflate_join_prepare(stream, first);
        if (joined < 0 || (uint64_t) joined > first + DEFLATE_JOIN_SLACK)
                abort();        /* libdeflate's own output must always join */
        second = libdeflate_deflate_compress(c, data + split, size - split, stream + joined, cap);
        if (second == 0)
                abort();
        if (inflate_exact(d, stream, (size_t) joined + second, back, size + 1) != (ssize_t) size ||
            memcmp(back, data, size) != 0)
                abort();
        libdeflate_free_compressor(c);
}

static void raw_stream(struct libdeflate_decompressor *d, const uint8_t *data, size_t size) {
        static uint8_t want[MAX_OUT], got[MAX_OUT], reference[MAX_OUT];
        /* Exactly the room the header promises: ASan reports a write past it. */
        _cleanup_free_ uint8_t *buf = malloc(size + DEFLATE_JOIN_SLACK);
        _cleanup_free_ uint8_t *ended = NULL;
        ssize_t want_size, got_size;
        int64_t joined;

        if (!buf)
                abort();
        memcpy(buf, data, size);
        joined = deflate_join_prepare(buf, size);
        want_size = inflate_exact(d, data, size, want, MAX_OUT);
        if (want_size < 0 || zlib_inflate_exact(data, size, reference, MAX_OUT) != want_size ||
            memcmp(reference, want, (size_t) want_size) != 0)
                return;         /* not a stream both inflate exactly (or too large here): any answer */
        if (joined < 0 || (uint64_t) joined > size + DEFLATE_JOIN_SLACK)
                abort();        /* a well-formed stream refused */
        ended = malloc((size_t) joined + sizeof(final_empty_block));
        if (!ended)
                abort();
        memcpy(ended, buf, (size_t) joined);
        memcpy(ended + joined, final_empty_block, sizeof(final_empty_block));
        got_size = inflate_exact(d, ended, (size_t) joined + sizeof(final_empty_block), got, MAX_OUT);
        if (got_size != want_size || memcmp(got, want, (size_t) want_size) != 0)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct libdeflate_decompressor *d;

        if (size < 2 || size > 1024 * 1024)
                return 0;
        d = libdeflate_alloc_decompressor();
        if (!d)
                abort();
        if (data[0] & 1)
                raw_stream(d, data + 1, size - 1);
        else
                joined_pieces(d, 1 + (data[0] >> 1) % 12, data + 2, size - 2,
                              (size - 2) * data[1] / 255);
        libdeflate_free_decompressor(d);
        return 0;
}
