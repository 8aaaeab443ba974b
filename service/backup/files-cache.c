/* SPDX-License-Identifier: GPL-2.0-or-later */

/* The files cache (files-cache.h). The file, little-endian throughout:
 *
 *   header   "OPBKFC\r\n", u32 version, u32 level, u64 entries,
 *            the backup: u64 size, i64 mtime ns, i64 ctime ns, u64 inode, u64 device, u16 name length, name
 *   entries  sorted by name (bytes, then length): u16 name length, name, u64 device, inode, size,
 *            i64 mtime ns, ctime ns, u64 local header offset, compressed size, u32 CRC-32, data CRC-32,
 *            u16 method
 *   trailer  u32 CRC-32 of everything before it */

#include <endian.h>
#include <fcntl.h>
#include <libdeflate.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/param.h>

#include "backup/files-cache.h"
#include "little-endian.h"
#include "names.h"
#include "util.h"
#include "zip-directory.h"

#define MAGIC "OPBKFC\r\n"
#define VERSION 1U
#define HEADER_FIXED (8U + 4U + 4U + 8U + 5U * 8U + 2U)
#define ENTRY_FIXED (2U + 7U * 8U + 4U + 4U + 2U)
#define NAME_MAX_LEN 65535U
#define WRITE_BUFFER (256U * 1024U)

struct FilesCache {
        uint8_t *data;
        size_t size;
        uint32_t *index;        /* offsets of the entries in data, in name order */
        size_t n;
        int backup_fd;
        char *backup_name;
};

FileStamp file_stamp_from_stat(const struct stat *st) {
        return (FileStamp) {
                .dev = (uint64_t) st->st_dev,
                .ino = (uint64_t) st->st_ino,
                .size = (uint64_t) st->st_size,
                .mtime_ns = (int64_t) st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec,
                .ctime_ns = (int64_t) st->st_ctim.tv_sec * 1000000000LL + st->st_ctim.tv_nsec,
        };
}

bool file_stamp_eq(const FileStamp *a, const FileStamp *b) {
        return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->mtime_ns == b->mtime_ns &&
               a->ctime_ns == b->ctime_ns;
}

static int why(char **ret_why, const char *format, ...) _printf_(2, 3);
static int why(char **ret_why, const char *format, ...) {
        va_list ap;

        if (!ret_why)
                return 0;
        va_start(ap, format);
        if (vasprintf(ret_why, format, ap) < 0)
                *ret_why = NULL;
        va_end(ap);
        return *ret_why ? 0 : -ENOMEM;
}

FilesCache *files_cache_free(FilesCache *c) {
        if (!c)
                return NULL;
        free(c->data);
        free(c->index);
        free(c->backup_name);
        if (c->backup_fd >= 0)
                close(c->backup_fd);
        free(c);
        return NULL;
}

static int name_cmp(const uint8_t *a, size_t na, const uint8_t *b, size_t nb) {
        int k = memcmp(a, b, MIN(na, nb));

        if (k != 0)
                return k;
        return na < nb ? -1 : na > nb ? 1 : 0;
}

/* The entries after the header: bounds, order; fills c->index. */
static int parse_entries(FilesCache *c, size_t pos, size_t end, uint64_t n, char **ret_why) {
        const uint8_t *prev = NULL;
        size_t prev_len = 0;

        if (n > (end - pos) / ENTRY_FIXED)
                return why(ret_why, "it claims more entries than it holds");
        c->index = malloc(MAX(n, (uint64_t) 1) * sizeof(uint32_t));
        if (!c->index)
                return -ENOMEM;
        for (uint64_t i = 0; i < n; i++) {
                size_t len;

                if (end - pos < ENTRY_FIXED)
                        return why(ret_why, "it is truncated");
                len = le16(c->data + pos);
                if (end - pos - ENTRY_FIXED < len)
                        return why(ret_why, "it is truncated");
                if (prev && name_cmp(prev, prev_len, c->data + pos + 2, len) >= 0)
                        return why(ret_why, "its entries are out of order");
                prev = c->data + pos + 2;
                prev_len = len;
                c->index[i] = (uint32_t) pos;
                pos += ENTRY_FIXED + len;
        }
        if (pos != end)
                return why(ret_why, "it has bytes after its entries");
        c->n = (size_t) n;
        return 0;
}

static int load(FilesCache *c, int fd, int dirfd, int level, char **ret_why) {
        uint64_t n, size;
        int64_t mtime, ctime;
        struct stat st;
        size_t pos, name_len;
        ssize_t k;
        FileStamp want, have;

        if (fstat(fd, &st) < 0)
                return why(ret_why, "cannot read it: %m");
        if (!S_ISREG(st.st_mode) || (uint64_t) st.st_size < HEADER_FIXED + 4U ||
            (uint64_t) st.st_size > FILES_CACHE_MAX_SIZE)
                return why(ret_why, "it is too short or too large (%lld bytes)", (long long) st.st_size);
        c->size = (size_t) st.st_size;
        c->data = malloc(c->size);
        if (!c->data)
                return -ENOMEM;
        k = pread_full(fd, c->data, c->size, 0);
        if (k != (ssize_t) c->size)
                return why(ret_why, "cannot read it: %s", k < 0 ? strerror((int) -k) : "it changed while being read");
        if (memcmp(c->data, MAGIC, 8) != 0)
                return why(ret_why, "it is not a files cache");
        if (le32(c->data + 8) != VERSION)
                return why(ret_why, "it has version %u, not %u", le32(c->data + 8), VERSION);
        if ((uint32_t) libdeflate_crc32(0, c->data, c->size - 4) != le32(c->data + c->size - 4))
                return why(ret_why, "its checksum does not match: it is damaged");
        if (le32(c->data + 12) != (uint32_t) level)
                return why(ret_why, "it was made at CompressionLevel=%u, not %d", le32(c->data + 12), level);
        n = le64(c->data + 16);
        size = le64(c->data + 24);
        mtime = (int64_t) le64(c->data + 32);
        ctime = (int64_t) le64(c->data + 40);
        want = (FileStamp) { .size = size, .mtime_ns = mtime, .ctime_ns = ctime, .ino = le64(c->data + 48),
                             .dev = le64(c->data + 56) };
        name_len = le16(c->data + 64);
        pos = HEADER_FIXED + name_len;
        if (name_len == 0 || pos > c->size - 4)
                return why(ret_why, "it is truncated");
        /* Not NUL-terminated in the file: copied, not strndup()ed (which may look for the NUL). */
        c->backup_name = malloc(name_len + 1);
        if (!c->backup_name)
                return -ENOMEM;
        memcpy(c->backup_name, c->data + HEADER_FIXED, name_len);
        c->backup_name[name_len] = 0;
        if (strlen(c->backup_name) != name_len || !backup_name_is_valid(c->backup_name))
                return why(ret_why, "it names no backup");

        c->backup_fd = openat(dirfd, c->backup_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (c->backup_fd < 0)
                return why(ret_why, "its backup %s cannot be opened: %m", c->backup_name);
        if (fstat(c->backup_fd, &st) < 0 || !S_ISREG(st.st_mode))
                return why(ret_why, "its backup %s is no regular file", c->backup_name);
        have = file_stamp_from_stat(&st);
        if (!file_stamp_eq(&want, &have))
                return why(ret_why, "its backup %s changed or was replaced since", c->backup_name);
        return parse_entries(c, pos, c->size - 4, n, ret_why);
}

int files_cache_load(int fd, int dirfd, int level, FilesCache **ret, char **ret_why) {
        _cleanup_free_ char *reason = NULL;
        FilesCache *c;
        int r;

        *ret = NULL;
        if (ret_why)
                *ret_why = NULL;
        c = calloc(1, sizeof(FilesCache));
        if (!c)
                return -ENOMEM;
        c->backup_fd = -1;
        r = load(c, fd, dirfd, level, &reason);
        if (r < 0 || reason) {
                files_cache_free(c);
                if (r >= 0 && ret_why)
                        *ret_why = TAKE_PTR(reason);
                return r;
        }
        *ret = c;
        return 0;
}

bool files_cache_lookup(const FilesCache *c, const char *name, const FileStamp *stamp, FilesCacheEntry *ret) {
        size_t lo = 0, hi, len = strlen(name);

        if (!c)
                return false;
        hi = c->n;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                const uint8_t *p = c->data + c->index[mid];
                size_t n = le16(p);
                int k = name_cmp(p + 2, n, (const uint8_t *) name, len);

                if (k < 0)
                        lo = mid + 1;
                else if (k > 0)
                        hi = mid;
                else {
                        const uint8_t *q = p + 2 + n;
                        FilesCacheEntry e = {
                                .stamp = { .dev = le64(q), .ino = le64(q + 8), .size = le64(q + 16),
                                           .mtime_ns = (int64_t) le64(q + 24), .ctime_ns = (int64_t) le64(q + 32) },
                                .offset = le64(q + 40),
                                .comp_size = le64(q + 48),
                                .crc = le32(q + 56),
                                .raw_crc = le32(q + 60),
                                .method = le16(q + 64),
                        };

                        if (!file_stamp_eq(&e.stamp, stamp) || (e.method != 0 && e.method != 8) ||
                            (e.method == 0 && e.comp_size != e.stamp.size))
                                return false;
                        *ret = e;
                        return true;
                }
        }
        return false;
}

int files_cache_backup_fd(const FilesCache *c) {
        return c ? c->backup_fd : -1;
}

const char *files_cache_backup_name(const FilesCache *c) {
        return c ? c->backup_name : NULL;
}

size_t files_cache_size(const FilesCache *c) {
        return c ? c->n : 0;
}

/* ---- writing ---- */

typedef struct Writer {
        int fd;
        uint8_t *buf;
        size_t len;
        uint64_t offset;
        uint32_t crc;
        int error;
} Writer;

static void flush(Writer *w) {
        ssize_t k;

        if (w->error || w->len == 0)
                return;
        w->crc = (uint32_t) libdeflate_crc32(w->crc, w->buf, w->len);
        do
                k = pwrite(w->fd, w->buf, w->len, (off_t) w->offset);
        while (k < 0 && errno == EINTR);
        if (k != (ssize_t) w->len)
                w->error = k < 0 ? -errno : -EIO;
        w->offset += w->len;
        w->len = 0;
}

static void put(Writer *w, const void *data, size_t n) {
        const uint8_t *p = data;

        while (n > 0) {
                size_t k = MIN(n, WRITE_BUFFER - w->len);

                memcpy(w->buf + w->len, p, k);
                w->len += k;
                p += k;
                n -= k;
                if (w->len == WRITE_BUFFER)
                        flush(w);
        }
}

static void put16(Writer *w, uint16_t v) {
        uint16_t le = htole16(v);
        put(w, &le, sizeof(le));
}

static void put32(Writer *w, uint32_t v) {
        uint32_t le = htole32(v);
        put(w, &le, sizeof(le));
}

static void put64(Writer *w, uint64_t v) {
        uint64_t le = htole64(v);
        put(w, &le, sizeof(le));
}

typedef struct Match {
        FilesCacheRecord *recs;
        size_t n, next;
} Match;

/* The central directory lists the entries in the order they were added, which is the records' order;
 * metadata.json and plugin_list.json have no record. */
static int match_entry(const ZipDirectoryEntry *z, void *userdata) {
        Match *m = userdata;
        FilesCacheRecord *r;

        if (m->next >= m->n)
                return 0;
        r = &m->recs[m->next];
        if (strlen(r->name) != z->name_len || memcmp(r->name, z->name, z->name_len) != 0)
                return 0;
        m->next++;
        if (z->method == r->e.method && z->crc32 == r->e.crc && z->compressed_size == r->e.comp_size &&
            z->size == r->e.stamp.size && (z->flags & 1) == 0)
                r->e.offset = z->local_offset;
        return 0;
}

static int rec_cmp(const void *a, const void *b) {
        const FilesCacheRecord *x = a, *y = b;

        return name_cmp((const uint8_t *) x->name, strlen(x->name), (const uint8_t *) y->name, strlen(y->name));
}

int files_cache_write(int fd, int dirfd, const char *name, int level, FilesCacheRecord *recs, size_t n) {
        _cleanup_close_ int zfd = -1;
        _cleanup_free_ uint8_t *buf = NULL;
        Match m = { .recs = recs, .n = n };
        ZipDirectory d;
        Writer w = { .fd = fd };
        struct stat st;
        FileStamp zs;
        size_t count = 0, name_len = strlen(name);
        uint32_t crc;
        int r;

        if (name_len == 0 || name_len > NAME_MAX_LEN)
                return -EINVAL;
        zfd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
        if (zfd < 0)
                return -errno;
        if (fstat(zfd, &st) < 0)
                return -errno;
        zs = file_stamp_from_stat(&st);
        for (size_t i = 0; i < n; i++)
                recs[i].e.offset = UINT64_MAX;
        r = zip_directory_find(zfd, &d, NULL);
        if (r >= 0)
                r = zip_directory_foreach(zfd, &d, match_entry, &m);
        if (r < 0)
                return r;
        qsort(recs, n, sizeof(FilesCacheRecord), rec_cmp);

        buf = malloc(WRITE_BUFFER);
        if (!buf)
                return -ENOMEM;
        w.buf = buf;
        for (size_t i = 0; i < n; i++)
                if (recs[i].e.offset != UINT64_MAX && strlen(recs[i].name) <= NAME_MAX_LEN &&
                    (i == 0 || rec_cmp(&recs[i - 1], &recs[i]) != 0))
                        count++;
        put(&w, MAGIC, 8);
        put32(&w, VERSION);
        put32(&w, (uint32_t) level);
        put64(&w, count);
        put64(&w, zs.size);
        put64(&w, (uint64_t) zs.mtime_ns);
        put64(&w, (uint64_t) zs.ctime_ns);
        put64(&w, zs.ino);
        put64(&w, zs.dev);
        put16(&w, (uint16_t) name_len);
        put(&w, name, name_len);
        for (size_t i = 0; i < n; i++) {
                const FilesCacheEntry *e = &recs[i].e;
                size_t len = strlen(recs[i].name);

                if (e->offset == UINT64_MAX || len > NAME_MAX_LEN || (i > 0 && rec_cmp(&recs[i - 1], &recs[i]) == 0))
                        continue;
                put16(&w, (uint16_t) len);
                put(&w, recs[i].name, len);
                put64(&w, e->stamp.dev);
                put64(&w, e->stamp.ino);
                put64(&w, e->stamp.size);
                put64(&w, (uint64_t) e->stamp.mtime_ns);
                put64(&w, (uint64_t) e->stamp.ctime_ns);
                put64(&w, e->offset);
                put64(&w, e->comp_size);
                put32(&w, e->crc);
                put32(&w, e->raw_crc);
                put16(&w, e->method);
        }
        flush(&w);
        crc = w.crc;
        put32(&w, crc);
        flush(&w);
        if (w.error < 0)
                return w.error;
        if (ftruncate(fd, (off_t) w.offset) < 0 || fsync(fd) < 0)
                return -errno;
        return (int) MIN(count, (size_t) INT32_MAX);
}
