/* SPDX-License-Identifier: GPL-2.0-or-later */
/* zip_directory_find() (common/zip-directory.c): what an import refuses before copying anything, and the
 * directory every archive check starts from. Zips built byte by byte (APPNOTE.TXT),
 * then broken one field at a time; large ones are sparse memfds, so gigabytes cost nothing. */

#include <sys/mman.h>

#include "zip-directory.h"
#include "test-util.h"

#define GIB (1024ULL * 1024ULL * 1024ULL)

typedef struct Buf {
        uint8_t data[4096];
        size_t n;
} Buf;

static void put(Buf *b, const void *p, size_t n) {
        ASSERT_TRUE(b->n + n <= sizeof(b->data));
        memcpy(b->data + b->n, p, n);
        b->n += n;
}

static void u16(Buf *b, uint64_t v) {
        uint8_t x[2] = { (uint8_t) v, (uint8_t) (v >> 8) };
        put(b, x, 2);
}

static void u32(Buf *b, uint64_t v) {
        u16(b, v & 0xFFFF);
        u16(b, (v >> 16) & 0xFFFF);
}

static void u64(Buf *b, uint64_t v) {
        u32(b, v & 0xFFFFFFFF);
        u32(b, v >> 32);
}

static void set32(Buf *b, size_t at, uint32_t v) {
        for (int i = 0; i < 4; i++)
                b->data[at + i] = (uint8_t) (v >> (8 * i));
}

#define NAME "metadata.json"
#define DATA "{\"version\": \"1.11.8\", \"excludes\": []}"

/* Local header and data of one stored entry (CRC left 0: nothing here reads the data). */
static void local_entry(Buf *b) {
        u32(b, 0x04034b50);
        u16(b, 20); u16(b, 0); u16(b, 0); u16(b, 0); u16(b, 0);
        u32(b, 0); u32(b, strlen(DATA)); u32(b, strlen(DATA));
        u16(b, strlen(NAME)); u16(b, 0);
        put(b, NAME, strlen(NAME));
        put(b, DATA, strlen(DATA));
}

static void central_header(Buf *b, uint64_t local_offset) {
        u32(b, 0x02014b50);
        u16(b, 0x031e); u16(b, 20); u16(b, 0); u16(b, 0); u16(b, 0); u16(b, 0);
        u32(b, 0); u32(b, strlen(DATA)); u32(b, strlen(DATA));
        u16(b, strlen(NAME)); u16(b, 0); u16(b, 0); u16(b, 0); u16(b, 0);
        u32(b, 0100600U << 16);
        u32(b, local_offset);
        put(b, NAME, strlen(NAME));
}

static void end_record(Buf *b, uint64_t entries, uint64_t cd_size, uint64_t cd_offset, const char *comment) {
        u32(b, 0x06054b50);
        u16(b, 0); u16(b, 0);
        u16(b, entries); u16(b, entries);
        u32(b, cd_size); u32(b, cd_offset);
        u16(b, strlen(comment));
        put(b, comment, strlen(comment));
}

/* A one-entry zip; *ret_eocd: where its end record starts. */
static void small_zip(Buf *b, const char *comment, size_t *ret_eocd) {
        size_t cd;

        *b = (Buf) {};
        local_entry(b);
        cd = b->n;
        central_header(b, 0);
        *ret_eocd = b->n;
        end_record(b, 1, b->n - cd, cd, comment);
}

static int memfd_of(const void *p, size_t n, uint64_t at, uint64_t size) {
        int fd = memfd_create("zip", MFD_CLOEXEC);

        ASSERT_TRUE(fd >= 0);
        ASSERT_EQ(ftruncate(fd, (off_t) size), 0);
        ASSERT_EQ(pwrite(fd, p, n, (off_t) at), (ssize_t) n);
        return fd;
}

static int count_entry(const ZipDirectoryEntry *e, void *userdata) {
        ASSERT_EQ(e->name_len, strlen(NAME));
        ASSERT_TRUE(memcmp(e->name, NAME, e->name_len) == 0);
        return 0;
}

/* Checks b (at offset `at` of a file of `size` bytes, 0 = b's own length): NULL wants success, else a
 * refusal whose message contains `why`. */
static void check(const Buf *b, uint64_t at, uint64_t size, const char *why) {
        _cleanup_free_ char *error = NULL;
        _cleanup_close_ int fd = -1;
        int r;

        size = size ?: at + b->n;
        fd = memfd_of(b->data, b->n, at, size);
        ZipDirectory d;

        r = zip_directory_find(fd, &d, &error);
        fprintf(stderr, "   %s\n", error ?: "accepted");
        if (!why) {
                ASSERT_EQ(r, 0);
                ASSERT_NULL(error);
                /* The one entry is there, with its name as stored. */
                ASSERT_EQ(zip_directory_foreach(fd, &d, count_entry, NULL), 0);
                return;
        }
        ASSERT_EQ(r, -EBADMSG);
        ASSERT_CONTAINS(error, "not a zip file");
        ASSERT_CONTAINS(error, why);
}

static void test_not_zips(void) {
        Buf b = {};

        check(&b, 0, 0, "too short");
        put(&b, "PK\x05\x06 and then too little", 21);
        check(&b, 0, 0, "too short");
        b = (Buf) {};
        for (int i = 0; i < 100; i++)
                put(&b, "This is not a zip file.\n", 24);
        check(&b, 0, 0, "no end of central directory record");
        /* 2 GiB of zeros: only the end is read. */
        b = (Buf) {};
        check(&b, 0, 2 * GIB, "no end of central directory record");
}

static void test_small_zip(void) {
        char comment[400];
        size_t eocd;
        Buf b;

        small_zip(&b, "", &eocd);
        check(&b, 0, 0, NULL);
        /* A comment may hold what looks like another end record: the one that fits decides. */
        memset(comment, 'c', sizeof(comment) - 1);
        comment[sizeof(comment) - 1] = 0;
        memcpy(comment + 100, "PK\x05\x06", 4);
        small_zip(&b, comment, &eocd);
        check(&b, 0, 0, NULL);
}

static void test_broken_end_records(void) {
        size_t eocd;
        Buf b;

        small_zip(&b, "", &eocd);
        b.data[eocd + 8] = b.data[eocd + 10] = 0;
        check(&b, 0, 0, "empty zip");

        small_zip(&b, "", &eocd);
        set32(&b, eocd + 16, 3 * GIB);
        check(&b, 0, 0, "outside the file");

        small_zip(&b, "", &eocd);
        set32(&b, eocd + 12, 1000);
        check(&b, 0, 0, "outside the file");

        small_zip(&b, "", &eocd);
        b.data[eocd + 8] = b.data[eocd + 10] = 200;
        check(&b, 0, 0, "cannot hold the 200 entries");

        small_zip(&b, "", &eocd);
        b.data[eocd + 4] = 1;
        check(&b, 0, 0, "several files");

        small_zip(&b, "", &eocd);
        set32(&b, eocd + 16, 4);
        check(&b, 0, 0, "no central directory where");
}

/* The central directory beyond 4 GiB: the end record says 0xFFFFFFFF, the ZIP64 one the offset. */
static void zip64_tail(Buf *b, uint64_t cd_offset, bool locator, uint64_t z64_pointer) {
        size_t cd_size;

        *b = (Buf) {};
        central_header(b, 0);
        cd_size = b->n;
        /* ZIP64 end record */
        u32(b, 0x06064b50); u64(b, 44); u16(b, 45); u16(b, 45); u32(b, 0); u32(b, 0);
        u64(b, 1); u64(b, 1); u64(b, cd_size); u64(b, cd_offset);
        if (locator) {
                u32(b, 0x07064b50); u32(b, 0); u64(b, z64_pointer); u32(b, 1);
        }
        end_record(b, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, "");
}

static void test_zip64(void) {
        uint64_t at = 5 * GIB, cd_size = 46 + strlen(NAME);
        Buf b;

        zip64_tail(&b, at, true, at + cd_size);
        check(&b, at, 0, NULL);
        zip64_tail(&b, at, false, 0);
        check(&b, at, 0, "ZIP64 end record that is not there");
        zip64_tail(&b, at, true, 7 * GIB);
        check(&b, at, 0, "ZIP64 end record would lie outside");
        zip64_tail(&b, at, true, at);
        check(&b, at, 0, "no ZIP64 end record where");
        zip64_tail(&b, at + 100, true, at + cd_size);
        check(&b, at, 0, "outside the file");
}

int main(void) {
        RUN(test_not_zips);
        RUN(test_small_zip);
        RUN(test_broken_end_records);
        RUN(test_zip64);
        return 0;
}
