/* SPDX-License-Identifier: GPL-2.0-or-later */

/* The central directory of a zip, read from the file itself (zip-directory.h). Layouts from PKWARE's
 * APPNOTE.TXT: end of central directory record (4.3.16), ZIP64 end record and locator (4.3.14-15),
 * central directory file header (4.3.12), ZIP64 extended information extra field (4.5.3). */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util.h"
#include "zip-directory.h"

#define EOCD_SIGNATURE 0x06054b50U
#define EOCD_SIZE 22U
#define EOCD_COMMENT_MAX 65535U
#define ZIP64_LOCATOR_SIGNATURE 0x07064b50U
#define ZIP64_LOCATOR_SIZE 20U
#define ZIP64_EOCD_SIGNATURE 0x06064b50U
#define ZIP64_EOCD_SIZE 56U
#define CDH_SIGNATURE 0x02014b50U
#define CDH_SIZE 46U
#define CDH_MAX (CDH_SIZE + 3U * 65535U)
#define BUFFER_SIZE (256U * 1024U)

static uint16_t le16(const uint8_t *p) {
        return (uint16_t) (p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p) {
        return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

static uint64_t le64(const uint8_t *p) {
        return (uint64_t) le32(p) | (uint64_t) le32(p + 4) << 32;
}

static int read_exact(int fd, void *buf, size_t n, uint64_t offset) {
        ssize_t k = pread_full(fd, buf, n, offset);

        if (k < 0)
                return (int) k;
        return (size_t) k == n ? 0 : -EBADMSG;
}

/* The ZIP64 end record the locator before the classic one points to. */
static int find_zip64(int fd, uint64_t eocd_offset, ZipDirectory *d) {
        uint8_t loc[ZIP64_LOCATOR_SIZE], rec[ZIP64_EOCD_SIZE];
        uint64_t rec_offset;
        int r;

        if (eocd_offset < ZIP64_LOCATOR_SIZE)
                return -EBADMSG;
        r = read_exact(fd, loc, sizeof(loc), eocd_offset - ZIP64_LOCATOR_SIZE);
        if (r < 0)
                return r;
        if (le32(loc) != ZIP64_LOCATOR_SIGNATURE || le32(loc + 4) != 0 || le32(loc + 16) > 1)
                return -EBADMSG;
        rec_offset = le64(loc + 8);
        if (rec_offset > eocd_offset - ZIP64_LOCATOR_SIZE - ZIP64_EOCD_SIZE)
                return -EBADMSG;
        r = read_exact(fd, rec, sizeof(rec), rec_offset);
        if (r < 0)
                return r;
        if (le32(rec) != ZIP64_EOCD_SIGNATURE || le32(rec + 16) != 0 || le32(rec + 20) != 0 ||
            le64(rec + 24) != le64(rec + 32))
                return -EBADMSG;
        d->n_entries = le64(rec + 32);
        d->size = le64(rec + 40);
        d->offset = le64(rec + 48);
        d->zip64 = true;
        /* The directory ends where the ZIP64 record starts. */
        if (d->offset > rec_offset || d->size > rec_offset - d->offset)
                return -EBADMSG;
        return 0;
}

int zip_directory_find(int fd, ZipDirectory *ret) {
        _cleanup_free_ uint8_t *tail = NULL;
        size_t tail_size;
        struct stat st;
        uint64_t start;
        ssize_t k;

        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode) || (uint64_t) st.st_size < EOCD_SIZE)
                return -EBADMSG;
        tail_size = (uint64_t) st.st_size < EOCD_SIZE + EOCD_COMMENT_MAX ? (size_t) st.st_size :
                EOCD_SIZE + EOCD_COMMENT_MAX;
        start = (uint64_t) st.st_size - tail_size;
        tail = malloc(tail_size);
        if (!tail)
                return -ENOMEM;
        k = pread_full(fd, tail, tail_size, start);
        if (k < 0)
                return (int) k;
        if ((size_t) k != tail_size)
                return -EBADMSG;        /* the file shrank under us */

        /* The last record whose comment ends exactly at the end of the file: a signature inside a comment
         * cannot pass for the record. */
        for (size_t i = tail_size - EOCD_SIZE + 1; i-- > 0;) {
                const uint8_t *p = tail + i;
                ZipDirectory d = {};

                if (le32(p) != EOCD_SIGNATURE || i + EOCD_SIZE + le16(p + 20) != tail_size)
                        continue;
                /* One disk only: split archives are not backups. */
                if (le16(p + 4) != 0 || le16(p + 6) != 0 || le16(p + 8) != le16(p + 10))
                        return -EBADMSG;
                d.end_offset = start + i;
                d.n_entries = le16(p + 10);
                d.size = le32(p + 12);
                d.offset = le32(p + 16);
                if (d.n_entries == 0xffff || d.size == 0xffffffff || d.offset == 0xffffffff) {
                        int r = find_zip64(fd, d.end_offset, &d);
                        if (r < 0)
                                return r;
                } else if (d.offset > d.end_offset || d.size > d.end_offset - d.offset)
                        return -EBADMSG;
                *ret = d;
                return 0;
        }
        return -EBADMSG;
}

/* The sizes a ZIP64 extra field replaces: those the header sets to 0xffffffff, in the field's order. */
static int apply_zip64_extra(const uint8_t *extra, size_t len, ZipDirectoryEntry *e, bool need_size,
                             bool need_csize) {
        while (len >= 4) {
                uint16_t id = le16(extra), n = le16(extra + 2);
                const uint8_t *p = extra + 4;

                if ((size_t) n > len - 4)
                        return -EBADMSG;
                if (id == 0x0001) {
                        size_t need = 8U * (need_size + need_csize);

                        if (n < need)
                                return -EBADMSG;
                        if (need_size) {
                                e->size = le64(p);
                                p += 8;
                        }
                        if (need_csize)
                                e->compressed_size = le64(p);
                        return 0;
                }
                extra += 4 + n;
                len -= 4 + (size_t) n;
        }
        return need_size || need_csize ? -EBADMSG : 0;
}

int zip_directory_foreach(int fd, const ZipDirectory *d, zip_directory_entry_fn fn, void *userdata) {
        _cleanup_free_ uint8_t *buf = malloc(BUFFER_SIZE);
        uint64_t pos = d->offset, end = d->offset + d->size, index = 0;
        size_t have = 0, used = 0;

        if (!buf)
                return -ENOMEM;
        for (;;) {
                ZipDirectoryEntry e;
                const uint8_t *h;
                size_t rec;
                int r;

                /* Keep at least one whole header in the buffer, or what is left of the directory. */
                if (have - used < CDH_MAX && pos < end) {
                        size_t want, room;
                        ssize_t k;

                        memmove(buf, buf + used, have - used);
                        have -= used;
                        used = 0;
                        room = BUFFER_SIZE - have;
                        want = end - pos < room ? (size_t) (end - pos) : room;
                        k = pread_full(fd, buf + have, want, pos);
                        if (k < 0)
                                return (int) k;
                        if ((size_t) k != want)
                                return -EBADMSG;
                        have += want;
                        pos += want;
                }
                if (used == have)
                        break;
                if (index >= d->n_entries || have - used < CDH_SIZE)
                        return -EBADMSG;
                h = buf + used;
                if (le32(h) != CDH_SIGNATURE)
                        return -EBADMSG;
                rec = CDH_SIZE + (size_t) le16(h + 28) + le16(h + 30) + le16(h + 32);
                if (rec > have - used)
                        return -EBADMSG;
                e = (ZipDirectoryEntry) {
                        .index = index,
                        .name = (const char *) h + CDH_SIZE,
                        .name_len = le16(h + 28),
                        .flags = le16(h + 8),
                        .method = le16(h + 10),
                        .compressed_size = le32(h + 20),
                        .size = le32(h + 24),
                };
                r = apply_zip64_extra(h + CDH_SIZE + e.name_len, le16(h + 30), &e, e.size == 0xffffffff,
                                      e.compressed_size == 0xffffffff);
                if (r < 0)
                        return r;
                r = fn(&e, userdata);
                if (r < 0)
                        return r;
                used += rec;
                index++;
        }
        return index == d->n_entries ? 0 : -EBADMSG;
}
