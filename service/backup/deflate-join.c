/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "backup/deflate-join.h"

/* The walk decodes every Huffman code of the stream but writes nothing: a table lookup of TABLE_BITS
 * resolves a code together with its extra bits; the rare longer codes are decoded bit by bit (as zlib's
 * puff.c does). The data comes from libdeflate, but it is checked as if it did not: a malformed stream is
 * an error, never a read out of bounds. */

#define TABLE_BITS 10U
#define TABLE_SIZE (1U << TABLE_BITS)
#define MAX_CODE_BITS 15U

enum {
        KIND_LITERAL,
        KIND_LENGTH,           /* a distance code follows */
        KIND_END,              /* end of block */
};

/* Table entries: bits to consume (code and extra bits) in bits 0-4, kind (or symbol, for the code length
 * code) from bit 5 on. */
#define ENTRY_INVALID 0xfffeU
#define ENTRY_LONG 0xffffU     /* a code longer than TABLE_BITS: decode bit by bit */

/* The walk looks up RUN_BITS at a time in a table of the literal/length code where a literal stands for
 * all the literals that follow it within those bits: most of the stream is literals, so one lookup then
 * skips two or three of them. */
#define RUN_BITS 12U
#define RUN_SIZE (1U << RUN_BITS)

typedef enum HuffKind {
        HUFF_LITLEN,
        HUFF_DIST,
        HUFF_CODELEN,
} HuffKind;

typedef struct Huff {
        HuffKind kind;
        uint16_t table[TABLE_SIZE];
        uint16_t count[MAX_CODE_BITS + 1];
        uint16_t symbol[288];  /* symbols ordered by code */
} Huff;

typedef struct BitReader {
        const uint8_t *start, *p, *end;
        uint64_t buf;
        unsigned n;            /* valid bits in buf */
        size_t overrun;        /* zero bytes supplied after the end */
} BitReader;

static const uint8_t length_extra[29] = {
        0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
};
static const uint8_t dist_extra[30] = {
        0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13,
};

/* Tops the buffer up to at least 56 bits. With 8 bytes left it loads them at once and counts only the
 * whole bytes that fit (libdeflate's trick): the bits above n are the next input bits either way. */
static inline void refill(BitReader *r) {
        if (r->end - r->p >= 8) {
                uint64_t v;

                memcpy(&v, r->p, sizeof(v));
                r->buf |= le64toh(v) << r->n;
                r->p += (63U - r->n) >> 3;
                r->n |= 56U;
                return;
        }
        while (r->n <= 56U) {
                if (r->p < r->end)
                        r->buf |= (uint64_t) *r->p++ << r->n;
                else
                        r->overrun++;
                r->n += 8U;
        }
}

/* At most n bits: the caller refilled. */
static inline uint32_t take(BitReader *r, unsigned k) {
        uint32_t v = (uint32_t) (r->buf & ((1ULL << k) - 1U));

        r->buf >>= k;
        r->n -= k;
        return v;
}

static inline uint64_t bit_position(const BitReader *r) {
        return ((uint64_t) (r->p - r->start) + r->overrun) * 8U - r->n;
}

static uint16_t entry_for(HuffKind kind, unsigned sym, unsigned len) {
        switch (kind) {
        case HUFF_LITLEN:
                if (sym < 256)
                        return (uint16_t) (len | KIND_LITERAL << 5);
                if (sym == 256)
                        return (uint16_t) (len | KIND_END << 5);
                if (sym < 286)
                        return (uint16_t) ((len + length_extra[sym - 257]) | KIND_LENGTH << 5);
                return ENTRY_INVALID;
        case HUFF_DIST:
                return sym < 30 ? (uint16_t) (len + dist_extra[sym]) : ENTRY_INVALID;
        case HUFF_CODELEN:
                return (uint16_t) (len | sym << 5);
        }
        return ENTRY_INVALID;
}

static unsigned reverse_bits(unsigned code, unsigned len) {
        unsigned r = 0;

        for (unsigned i = 0; i < len; i++, code >>= 1)
                r = r << 1 | (code & 1U);
        return r;
}

/* Canonical Huffman code from code lengths (RFC 1951 3.2.2). Incomplete codes are accepted (the unused
 * codes stay invalid); over-subscribed ones are not. */
static int huff_build(Huff *h, HuffKind kind, const uint8_t *lengths, unsigned n) {
        uint16_t offs[MAX_CODE_BITS + 2], next[MAX_CODE_BITS + 1];
        unsigned code = 0;
        int left = 1;

        h->kind = kind;
        memset(h->count, 0, sizeof(h->count));
        for (unsigned i = 0; i < n; i++)
                h->count[lengths[i]]++;
        for (unsigned len = 1; len <= MAX_CODE_BITS; len++) {
                left = left * 2 - h->count[len];
                if (left < 0)
                        return -EBADMSG;
        }
        offs[1] = 0;
        for (unsigned len = 1; len <= MAX_CODE_BITS; len++)
                offs[len + 1] = (uint16_t) (offs[len] + h->count[len]);
        for (unsigned sym = 0; sym < n; sym++)
                if (lengths[sym] != 0)
                        h->symbol[offs[lengths[sym]]++] = (uint16_t) sym;

        for (unsigned i = 0; i < TABLE_SIZE; i++)
                h->table[i] = ENTRY_INVALID;
        for (unsigned len = 1; len <= MAX_CODE_BITS; len++) {
                code = (code + (len > 1 ? h->count[len - 1] : 0U)) << 1;
                next[len] = (uint16_t) code;
        }
        for (unsigned sym = 0; sym < n; sym++) {
                unsigned len = lengths[sym], rev;

                if (len == 0)
                        continue;
                rev = reverse_bits(next[len]++, len);
                if (len > TABLE_BITS) {
                        h->table[rev & (TABLE_SIZE - 1U)] = ENTRY_LONG;
                        continue;
                }
                for (unsigned k = rev; k < TABLE_SIZE; k += 1U << len)
                        h->table[k] = entry_for(kind, sym, len);
        }
        return 0;
}

/* A code longer than TABLE_BITS, bit by bit (puff.c's decode()). Returns the symbol or -1. */
static int huff_decode_slow(BitReader *r, const Huff *h) {
        int code = 0, first = 0, index = 0;

        for (unsigned len = 1; len <= MAX_CODE_BITS; len++) {
                int count = h->count[len];

                code |= (int) take(r, 1);
                if (code - count < first)
                        return h->symbol[index + (code - first)];
                index += count;
                first = (first + count) << 1;
                code <<= 1;
        }
        return -1;
}

/* Consumes one code and its extra bits; returns the entry's upper part (kind or symbol) or -1. At most
 * 28 bits: the caller makes sure that many are buffered. */
static inline int decode(BitReader *r, const Huff *h) {
        uint16_t e = h->table[r->buf & (TABLE_SIZE - 1U)];
        int sym;

        if (e < ENTRY_INVALID) {
                take(r, e & 31U);
                return e >> 5;
        }
        if (e == ENTRY_INVALID)
                return -1;
        sym = huff_decode_slow(r, h);
        if (sym < 0)
                return -1;
        e = entry_for(h->kind, (unsigned) sym, 0);      /* the extra bits alone */
        if (e == ENTRY_INVALID)
                return -1;
        take(r, e & 31U);
        return h->kind == HUFF_CODELEN ? sym : e >> 5;
}

static int read_dynamic_tables(BitReader *r, Huff *lit, Huff *dist) {
        static const uint8_t order[19] = { 16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15 };
        uint8_t lengths[286 + 30] = {}, cl[19] = {};
        unsigned hlit, hdist, hclen, i = 0;
        Huff codelen;

        refill(r);
        hlit = take(r, 5) + 257U;
        hdist = take(r, 5) + 1U;
        hclen = take(r, 4) + 4U;
        if (hlit > 286U || hdist > 30U)
                return -EBADMSG;
        for (unsigned k = 0; k < hclen; k++) {
                refill(r);
                cl[order[k]] = (uint8_t) take(r, 3);
        }
        if (huff_build(&codelen, HUFF_CODELEN, cl, 19) < 0)
                return -EBADMSG;
        while (i < hlit + hdist) {
                unsigned rep;
                uint8_t value = 0;
                int sym;

                refill(r);
                sym = decode(r, &codelen);
                if (sym < 0)
                        return -EBADMSG;
                if (sym < 16) {
                        lengths[i++] = (uint8_t) sym;
                        continue;
                }
                if (sym == 16) {
                        if (i == 0)
                                return -EBADMSG;
                        value = lengths[i - 1];
                        rep = 3U + take(r, 2);
                } else if (sym == 17)
                        rep = 3U + take(r, 3);
                else
                        rep = 11U + take(r, 7);
                if (i + rep > hlit + hdist)
                        return -EBADMSG;
                memset(lengths + i, value, rep);
                i += rep;
        }
        if (lengths[256] == 0)
                return -EBADMSG;      /* no end-of-block code */
        if (huff_build(lit, HUFF_LITLEN, lengths, hlit) < 0 ||
            huff_build(dist, HUFF_DIST, lengths + hlit, hdist) < 0)
                return -EBADMSG;
        return 0;
}

static void fixed_tables(Huff *lit, Huff *dist) {
        uint8_t l[288], d[30];

        memset(l, 8, 144);
        memset(l + 144, 9, 112);
        memset(l + 256, 7, 24);
        memset(l + 280, 8, 8);
        memset(d, 5, sizeof(d));
        (void) huff_build(lit, HUFF_LITLEN, l, 288);
        (void) huff_build(dist, HUFF_DIST, d, 30);
}

/* The run table of a literal/length code: entries as in its table, except that a literal's bits include
 * those of the literals after it that fit in RUN_BITS. A code is known from its first bits whatever
 * follows, so a literal found with the unknown bits above RUN_BITS taken as zero counts only if it ends
 * within RUN_BITS. */
static void build_runs(const Huff *lit, uint16_t runs[RUN_SIZE]) {
        for (unsigned i = 0; i < RUN_SIZE; i++) {
                uint16_t e = lit->table[i & (TABLE_SIZE - 1U)];
                unsigned used;

                if (e >= ENTRY_INVALID || e >> 5 != KIND_LITERAL) {
                        runs[i] = e;
                        continue;
                }
                used = e & 31U;
                for (;;) {
                        uint16_t next = lit->table[(i >> used) & (TABLE_SIZE - 1U)];

                        if (next >= ENTRY_INVALID || used + (next & 31U) > RUN_BITS) {
                                e = KIND_LITERAL << 5;
                                break;
                        }
                        used += next & 31U;
                        e = next & ~31U;
                        if (next >> 5 != KIND_LITERAL)
                                break;          /* a length (with its extra bits) or the end ends the run */
                }
                runs[i] = (uint16_t) (used | e);
        }
}

/* The codes of one block up to its end-of-block code. This loop is what the join costs, so it keeps the
 * bit reader in registers (a local copy: the input bytes could alias it otherwise) and avoids the
 * unpredictable branch "literal or length": the distance code after each code is looked up whether or
 * not there is one, and its bits are consumed only after a length. Rare cases (codes longer than
 * TABLE_BITS, invalid codes) go through decode() on the caller's reader. */
static int skip_codes(BitReader *reader, const Huff *lit, const uint16_t *runs, const Huff *dist) {
        BitReader r = *reader;
        int k = 0;

        for (;;) {
                uint16_t e, d;
                unsigned kind, is_length;

                refill(&r);
                if (r.overrun > 8) {
                        k = -EBADMSG;           /* ran off the end: not a complete stream */
                        break;
                }
                e = runs[r.buf & (RUN_SIZE - 1U)];
                if (__builtin_expect(e >= ENTRY_INVALID, 0)) {
                        *reader = r;
                        k = decode(reader, lit);                /* <= 20 bits */
                        if (k >= 0 && k == KIND_LENGTH)
                                k = decode(reader, dist) < 0 ? -1 : KIND_LENGTH;   /* <= 28 more bits */
                        r = *reader;
                        if (k < 0 || k == KIND_END)
                                break;
                        continue;
                }
                take(&r, e & 31U);              /* <= 20 bits */
                kind = e >> 5;
                if (__builtin_expect(kind == KIND_END, 0))
                        break;
                is_length = kind == KIND_LENGTH;
                d = dist->table[r.buf & (TABLE_SIZE - 1U)];
                if (__builtin_expect(is_length & (d >= ENTRY_INVALID), 0)) {
                        *reader = r;
                        k = decode(reader, dist);
                        r = *reader;
                        if (k < 0)
                                break;
                        continue;
                }
                take(&r, (d & 31U) & -is_length);       /* <= 23 bits */
        }
        *reader = r;
        return k < 0 ? -EBADMSG : 0;
}

static int skip_stored(BitReader *r) {
        uint64_t pos = (bit_position(r) + 7U) / 8U;       /* the block's data is byte-aligned */
        size_t len = (size_t) (r->end - r->start);
        unsigned n, nn;

        if (pos + 4U > len)
                return -EBADMSG;
        n = r->start[pos] | (unsigned) r->start[pos + 1] << 8;
        nn = r->start[pos + 2] | (unsigned) r->start[pos + 3] << 8;
        if ((n ^ nn) != 0xffffU || pos + 4U + n > len)
                return -EBADMSG;
        r->p = r->start + pos + 4U + n;
        r->buf = 0;
        r->n = 0;
        r->overrun = 0;
        return 0;
}

int64_t deflate_join_prepare(uint8_t *buf, size_t len) {
        BitReader r = { .start = buf, .p = buf, .end = buf + len };
        uint64_t final_header = 0, end;
        bool fixed_built = false;
        Huff lit, dist, fixed_lit, fixed_dist;
        uint16_t runs[RUN_SIZE], fixed_runs[RUN_SIZE];
        unsigned used;

        if (len == 0 || len > INT64_MAX - DEFLATE_JOIN_SLACK)
                return -EBADMSG;
        for (bool final = false; !final;) {
                unsigned type;
                int k;

                final_header = bit_position(&r);
                refill(&r);
                final = take(&r, 1);
                type = take(&r, 2);
                switch (type) {
                case 0:
                        k = skip_stored(&r);
                        break;
                case 1:
                        if (!fixed_built) {
                                fixed_tables(&fixed_lit, &fixed_dist);
                                build_runs(&fixed_lit, fixed_runs);
                                fixed_built = true;
                        }
                        k = skip_codes(&r, &fixed_lit, fixed_runs, &fixed_dist);
                        break;
                case 2:
                        k = read_dynamic_tables(&r, &lit, &dist);
                        if (k >= 0) {
                                build_runs(&lit, runs);
                                k = skip_codes(&r, &lit, runs, &dist);
                        }
                        break;
                default:
                        k = -EBADMSG;
                }
                if (k < 0)
                        return k;
                if (bit_position(&r) > (uint64_t) len * 8U)
                        return -EBADMSG;
        }
        end = bit_position(&r);
        if ((end + 7U) / 8U != len)
                return -EBADMSG;       /* more data after the final block, or a truncated one */

        /* The final block becomes an ordinary one ... */
        buf[final_header / 8U] &= (uint8_t) ~(1U << (final_header % 8U));
        /* ... followed by an empty stored block: 3 header bits (all zero), padding to the byte boundary,
         * LEN 0, NLEN 0xffff. Bits after the end are made zero; when fewer than 3 are left in the last
         * byte, the header takes one more. */
        used = (unsigned) (end % 8U);
        if (used != 0)
                buf[len - 1] &= (uint8_t) ((1U << used) - 1U);
        if (used == 0 || used > 5)
                buf[len++] = 0;
        memcpy(buf + len, "\x00\x00\xff\xff", 4);
        return (int64_t) len + 4;
}
