/* SPDX-License-Identifier: GPL-2.0-or-later */

/* The central directory of a zip, read from the file itself (zip-directory.h). Layouts from PKWARE's
 * APPNOTE.TXT: end of central directory record (4.3.16), ZIP64 end record and locator (4.3.14-15),
 * central directory file header (4.3.12), ZIP64 extended information extra field (4.5.3). */

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "little-endian.h"
#include "util.h"
#include "zip-directory.h"

#define EOCD_SIZE 22U
#define EOCD_SEARCH (EOCD_SIZE + 65535U)        /* the record and the longest comment it can have */
#define EOCD_TAIL_FIRST (EOCD_SIZE + 4096U)
#define ZIP64_LOCATOR_SIZE 20U
#define ZIP64_EOCD_SIZE 56U
#define CDH_SIZE_MIN 46U                        /* a central directory header with empty name and fields */
#define CDH_MAX (CDH_SIZE_MIN + 3U * 65535U)
#define SIG_EOCD 0x06054b50U
#define SIG_ZIP64_LOCATOR 0x07064b50U
#define SIG_ZIP64_EOCD 0x06064b50U
#define SIG_CDH 0x02014b50U
#define BUFFER_SIZE (256U * 1024U)

static int no_zip(char **ret_why, const char *format, ...) _printf_(2, 3);
static int no_zip(char **ret_why, const char *format, ...) {
        va_list ap;

        free(*ret_why);
        va_start(ap, format);
        if (vasprintf(ret_why, format, ap) < 0)
                *ret_why = NULL;
        va_end(ap);
        return *ret_why ? -EBADMSG : -ENOMEM;
}

/* All n bytes at offset, or -EIO: the file is shorter than fstat() said (it changes under us). */
static int read_at(int fd, void *buf, size_t n, uint64_t offset) {
        ssize_t k = pread_full(fd, buf, n, offset);

        if (k < 0)
                return (int) k;
        return (size_t) k == n ? 0 : -EIO;
}

/* The end record at eocd (its 22 bytes in rec): 0 if it describes a central directory that can be there. */
static int check_end(int fd, uint64_t eocd, const uint8_t *rec, ZipDirectory *d, char **ret_why) {
        uint64_t disk = le16(rec + 4), cd_disk = le16(rec + 6), on_disk = le16(rec + 8), entries = le16(rec + 10),
                 cd_size = le32(rec + 12), cd_offset = le32(rec + 16), end = eocd;
        uint8_t buf[ZIP64_EOCD_SIZE];
        int r;

        /* All ones: the real value is in the ZIP64 end record, found through the locator right before. */
        if (disk == 0xFFFF || cd_disk == 0xFFFF || on_disk == 0xFFFF || entries == 0xFFFF ||
            cd_size == 0xFFFFFFFF || cd_offset == 0xFFFFFFFF) {
                uint64_t z64;

                if (eocd < ZIP64_LOCATOR_SIZE)
                        return no_zip(ret_why, "its end record refers to a ZIP64 end record that is not there");
                r = read_at(fd, buf, ZIP64_LOCATOR_SIZE, eocd - ZIP64_LOCATOR_SIZE);
                if (r < 0)
                        return r;
                if (le32(buf) != SIG_ZIP64_LOCATOR)
                        return no_zip(ret_why, "its end record refers to a ZIP64 end record that is not there");
                if (le32(buf + 4) != 0 || le32(buf + 16) > 1)
                        return no_zip(ret_why, "it spans several files (a split archive)");
                z64 = le64(buf + 8);
                if (z64 > eocd - ZIP64_LOCATOR_SIZE || eocd - ZIP64_LOCATOR_SIZE - z64 < ZIP64_EOCD_SIZE)
                        return no_zip(ret_why, "its ZIP64 end record would lie outside the file");
                r = read_at(fd, buf, ZIP64_EOCD_SIZE, z64);
                if (r < 0)
                        return r;
                if (le32(buf) != SIG_ZIP64_EOCD)
                        return no_zip(ret_why, "there is no ZIP64 end record where its locator says");
                disk = le32(buf + 16);
                cd_disk = le32(buf + 20);
                on_disk = le64(buf + 24);
                entries = le64(buf + 32);
                cd_size = le64(buf + 40);
                cd_offset = le64(buf + 48);
                end = z64;
        }
        if (disk != 0 || cd_disk != 0 || on_disk != entries)
                return no_zip(ret_why, "it spans several files (a split archive)");
        if (entries == 0)
                return no_zip(ret_why, "it is an empty zip");
        if (cd_size / CDH_SIZE_MIN < entries)
                return no_zip(ret_why, "its central directory of %" PRIu64 " bytes cannot hold the %" PRIu64
                              " entries it claims", cd_size, entries);
        if (cd_offset > end || cd_size > end - cd_offset)
                return no_zip(ret_why, "its central directory would lie outside the file");
        r = read_at(fd, buf, 4, cd_offset);
        if (r < 0)
                return r;
        if (le32(buf) != SIG_CDH)
                return no_zip(ret_why, "there is no central directory where its end record says");
        *d = (ZipDirectory) {
                .n_entries = entries,
                .offset = cd_offset,
                .size = cd_size,
                .end_offset = eocd,
                .zip64 = end != eocd,
        };
        return 0;
}

/* Looks for the end record in the last n bytes, from the end backwards: 0, -EBADMSG with *why (the first
 * reason found, or NULL), or another error with *ret_error set. */
static int scan_tail(int fd, uint64_t size, size_t n, ZipDirectory *ret, char **why, char **ret_error) {
        _cleanup_free_ uint8_t *tail = malloc(n);
        int r;

        if (!tail)
                return -ENOMEM;
        r = read_at(fd, tail, n, size - n);
        if (r < 0)
                return asprintf(ret_error, "cannot read it: %s", r == -EIO ? "it changed while being read" :
                                strerror(-r)) < 0 ? -ENOMEM : r;
        /* The last record wins, as for libzip and zipfile: a comment may hold the signature too. */
        r = -EBADMSG;
        for (size_t i = n - EOCD_SIZE + 1; i-- > 0 && r < 0;) {
                _cleanup_free_ char *w = NULL;

                if (le32(tail + i) != SIG_EOCD)
                        continue;
                r = check_end(fd, size - n + i, tail + i, ret, &w);
                if (r == -ENOMEM)
                        return r;
                if (r < 0 && r != -EBADMSG)
                        return asprintf(ret_error, "cannot read it: %s", r == -EIO ?
                                        "it changed while being read" : strerror(-r)) < 0 ? -ENOMEM : r;
                if (r < 0 && !*why)
                        *why = TAKE_PTR(w);
        }
        return r;
}

static int find(int fd, ZipDirectory *ret, char **ret_error) {
        _cleanup_free_ char *why = NULL;
        struct stat st;
        uint64_t size;
        int r;

        *ret_error = NULL;
        if (fstat(fd, &st) < 0)
                return asprintf(ret_error, "cannot read it: %m") < 0 ? -ENOMEM : -errno;
        if (!S_ISREG(st.st_mode))
                return asprintf(ret_error, "not a zip file: it is not a regular file") < 0 ? -ENOMEM : -EBADMSG;
        size = (uint64_t) st.st_size;
        if (size < EOCD_SIZE)
                r = no_zip(&why, "it is too short");
        else {
                /* Most zips have no comment: their end record is in the last few bytes, and the search
                 * reads the last 4 KiB first (a listing reads thousands of zips), then, if it is not
                 * there, the last 64 KiB: the same positions in the same order, so the same result. */
                size_t small = size < EOCD_TAIL_FIRST ? (size_t) size : EOCD_TAIL_FIRST;

                r = scan_tail(fd, size, small, ret, &why, ret_error);
                if (r == -EBADMSG && size > small) {
                        free(why);
                        why = NULL;
                        r = scan_tail(fd, size, size < EOCD_SEARCH ? (size_t) size : EOCD_SEARCH, ret, &why,
                                      ret_error);
                }
                if (r >= 0 || r != -EBADMSG || *ret_error)
                        return r;
                if (!why)
                        r = no_zip(&why, "no end of central directory record in its last 64 KiB");
        }
        if (r == -ENOMEM)
                return r;
        return asprintf(ret_error, "not a zip file: %s", why) < 0 ? -ENOMEM : -EBADMSG;
}

int zip_directory_find(int fd, ZipDirectory *ret, char **ret_error) {
        _cleanup_free_ char *error = NULL;
        ZipDirectory d = {};
        int r;

        r = find(fd, &d, &error);
        if (r >= 0)
                *ret = d;
        if (ret_error)
                *ret_error = TAKE_PTR(error);
        return r;
}

/* The values a ZIP64 extra field replaces: those the header sets to 0xffffffff, in the field's order
 * (size, compressed size, local header offset). */
static int apply_zip64_extra(const uint8_t *extra, size_t len, ZipDirectoryEntry *e, bool need_size,
                             bool need_csize, bool need_offset) {
        while (len >= 4) {
                uint16_t id = le16(extra), n = le16(extra + 2);
                const uint8_t *p = extra + 4;

                if ((size_t) n > len - 4)
                        return -EBADMSG;
                if (id == 0x0001) {
                        size_t need = 8U * (need_size + need_csize + need_offset);

                        if (n < need)
                                return -EBADMSG;
                        if (need_size) {
                                e->size = le64(p);
                                p += 8;
                        }
                        if (need_csize) {
                                e->compressed_size = le64(p);
                                p += 8;
                        }
                        if (need_offset)
                                e->local_offset = le64(p);
                        return 0;
                }
                extra += 4 + n;
                len -= 4 + (size_t) n;
        }
        return need_size || need_csize || need_offset ? -EBADMSG : 0;
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
                if (index >= d->n_entries || have - used < CDH_SIZE_MIN)
                        return -EBADMSG;
                h = buf + used;
                if (le32(h) != SIG_CDH)
                        return -EBADMSG;
                rec = CDH_SIZE_MIN + (size_t) le16(h + 28) + le16(h + 30) + le16(h + 32);
                if (rec > have - used)
                        return -EBADMSG;
                e = (ZipDirectoryEntry) {
                        .index = index,
                        .name = (const char *) h + CDH_SIZE_MIN,
                        .name_len = le16(h + 28),
                        .flags = le16(h + 8),
                        .method = le16(h + 10),
                        .crc32 = le32(h + 16),
                        .compressed_size = le32(h + 20),
                        .size = le32(h + 24),
                        .local_offset = le32(h + 42),
                };
                r = apply_zip64_extra(h + CDH_SIZE_MIN + e.name_len, le16(h + 30), &e, e.size == 0xffffffff,
                                      e.compressed_size == 0xffffffff, e.local_offset == 0xffffffff);
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
