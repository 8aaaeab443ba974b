/* SPDX-License-Identifier: GPL-2.0-or-later */

/* The file (backup-list-cache.h), all integers little-endian:
 *   header: "OPBLIST\n", u32 version, u32 entries, u64 payload bytes, u32 CRC-32 of the payload, u32 0
 *   payload, per entry: u64 size, i64 mtime (ns), i64 ctime (ns), u64 inode, u64 device,
 *           u64 uncompressed, u8 valid, u8 excludes, u16 name bytes, u16 version bytes,
 *           then the name, the version and each exclude as u16 bytes + the bytes. */

#include <endian.h>
#include <fcntl.h>
#include <libdeflate.h>
#include <stdio.h>
#include <sys/stat.h>

#include "build-config.h"
#include "folder/backup-list-cache.h"
#include "log.h"
#include "names.h"
#include "util.h"

#define CACHE_MAGIC "OPBLIST\n"
#define CACHE_VERSION 1U
#define HEADER_SIZE 32U
#define ENTRY_FIXED 54U
#define CACHE_FILE_MAX (64U * 1024U * 1024U)

static int cache_path(const char *instance, const char *suffix, char **ret) {
        return asprintf(ret, "%s/list-%s.cache%s", state_directory(), instance, suffix) < 0 ? -ENOMEM : 0;
}

/* ---- Writing ---- */

typedef struct Out {
        uint8_t *buf;
        size_t size, allocated;
} Out;

static int out_put(Out *o, const void *p, size_t n) {
        if (o->allocated - o->size < n) {
                size_t a = o->allocated * 2 > o->size + n + 4096 ? o->allocated * 2 : o->size + n + 4096;
                uint8_t *b = realloc(o->buf, a);

                if (!b)
                        return -ENOMEM;
                o->buf = b;
                o->allocated = a;
        }
        memcpy(o->buf + o->size, p, n);
        o->size += n;
        return 0;
}

static int out_u64(Out *o, uint64_t v) {
        v = htole64(v);
        return out_put(o, &v, 8);
}

static int out_u16(Out *o, uint16_t v) {
        v = htole16(v);
        return out_put(o, &v, 2);
}

static int out_string(Out *o, const char *s, bool with_length) {
        size_t n = strlen(strempty(s));

        if (n > UINT16_MAX)
                return -E2BIG;
        if (with_length && out_u16(o, (uint16_t) n) < 0)
                return -ENOMEM;
        return out_put(o, strempty(s), n);
}

static int out_entry(Out *o, const BackupEntry *e) {
        size_t n_excludes = strv_length(e->excludes);
        uint8_t small[2] = { e->valid, (uint8_t) n_excludes };
        size_t name_len = strlen(e->name), version_len = strlen(strempty(e->version));
        int r = 0;

        if (n_excludes > UINT8_MAX || name_len > UINT16_MAX || version_len > UINT16_MAX)
                return -E2BIG;
        r = r ?: out_u64(o, e->size);
        r = r ?: out_u64(o, (uint64_t) e->mtime_nsec);
        r = r ?: out_u64(o, (uint64_t) e->ctime_nsec);
        r = r ?: out_u64(o, e->ino);
        r = r ?: out_u64(o, e->dev);
        r = r ?: out_u64(o, e->uncompressed);
        r = r ?: out_put(o, small, 2);
        r = r ?: out_u16(o, (uint16_t) name_len);
        r = r ?: out_u16(o, (uint16_t) version_len);
        r = r ?: out_string(o, e->name, false);
        r = r ?: out_string(o, e->version, false);
        STRV_FOREACH(x, e->excludes)
                r = r ?: out_string(o, *x, true);
        return r;
}

int backup_list_cache_save(const char *instance, const BackupCache *c) {
        _cleanup_free_ char *path = NULL, *tmp = NULL;
        _cleanup_close_ int fd = -1;
        Out o = {};
        uint8_t header[HEADER_SIZE] = {};
        uint32_t v;
        uint64_t payload;
        size_t n = 0;
        int r;

        r = cache_path(instance, "", &path);
        if (r < 0)
                return r;
        r = cache_path(instance, ".tmp", &tmp);
        if (r < 0)
                return r;
        r = out_put(&o, header, HEADER_SIZE);
        for (size_t k = 0; k < c->n && r >= 0; k++)
                if (c->entries[k].size != UINT64_MAX) {      /* forgotten ones are not kept */
                        r = out_entry(&o, &c->entries[k]);
                        n++;
                }
        if (r < 0)
                goto finish;
        payload = o.size - HEADER_SIZE;
        memcpy(o.buf, CACHE_MAGIC, 8);
        v = htole32(CACHE_VERSION);
        memcpy(o.buf + 8, &v, 4);
        v = htole32((uint32_t) n);
        memcpy(o.buf + 12, &v, 4);
        payload = htole64(payload);
        memcpy(o.buf + 16, &payload, 8);
        v = htole32(libdeflate_crc32(0, o.buf + HEADER_SIZE, o.size - HEADER_SIZE));
        memcpy(o.buf + 24, &v, 4);

        /* No fsync: a file lost or cut short by a crash is detected and only costs a re-read. */
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) {
                r = -errno;
                goto finish;
        }
        r = write_all(fd, o.buf, o.size);
        if (r >= 0 && fchmod(fd, 0600) < 0)
                r = -errno;
        if (r >= 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0)
                (void) unlink(tmp);
finish:
        free(o.buf);
        return r;
}

/* ---- Reading ---- */

typedef struct In {
        const uint8_t *p, *end;
} In;

static bool in_take(In *in, void *dst, size_t n) {
        if ((size_t) (in->end - in->p) < n)
                return false;
        memcpy(dst, in->p, n);
        in->p += n;
        return true;
}

static bool in_u64(In *in, uint64_t *ret) {
        uint64_t v;

        if (!in_take(in, &v, 8))
                return false;
        *ret = le64toh(v);
        return true;
}

static bool in_u16(In *in, uint16_t *ret) {
        uint16_t v;

        if (!in_take(in, &v, 2))
                return false;
        *ret = le16toh(v);
        return true;
}

static char *in_string(In *in, size_t n) {
        char *s;

        if ((size_t) (in->end - in->p) < n || memchr(in->p, 0, n))
                return NULL;
        s = strndup((const char *) in->p, n);
        if (s)
                in->p += n;
        return s;
}

static int in_entry(In *in, BackupEntry *e) {
        uint64_t mtime, ctime;
        uint8_t small[2];
        uint16_t name_len, version_len;

        if (!in_u64(in, &e->size) || !in_u64(in, &mtime) || !in_u64(in, &ctime) || !in_u64(in, &e->ino) ||
            !in_u64(in, &e->dev) || !in_u64(in, &e->uncompressed) || !in_take(in, small, 2) ||
            !in_u16(in, &name_len) || !in_u16(in, &version_len) || small[0] > 1)
                return -EBADMSG;
        e->valid = small[0];
        e->mtime_nsec = (int64_t) mtime;
        e->ctime_nsec = (int64_t) ctime;
        e->mtime_usec = backup_entry_usec(e->mtime_nsec);
        e->name = in_string(in, name_len);
        if (!e->name || !backup_name_is_valid(e->name))
                return -EBADMSG;
        e->version = in_string(in, version_len);
        e->excludes = calloc(1, sizeof(char *));
        if (!e->version || !e->excludes)
                return -EBADMSG;
        for (unsigned k = 0; k < small[1]; k++) {
                uint16_t n;
                char *x;

                if (!in_u16(in, &n) || !(x = in_string(in, n)))
                        return -EBADMSG;
                if (strv_consume(&e->excludes, x) < 0)
                        return -ENOMEM;
        }
        return 0;
}

static int decode(const uint8_t *data, size_t size, size_t max_entries, BackupEntry **ret, size_t *ret_n) {
        BackupEntry *entries = NULL;
        uint32_t version, n, crc;
        uint64_t payload;
        In in = { data + HEADER_SIZE, data + size };
        size_t k = 0;
        int r = -EBADMSG;

        if (size < HEADER_SIZE || memcmp(data, CACHE_MAGIC, 8) != 0)
                return -EBADMSG;
        memcpy(&version, data + 8, 4);
        memcpy(&n, data + 12, 4);
        memcpy(&payload, data + 16, 8);
        memcpy(&crc, data + 24, 4);
        if (le32toh(version) != CACHE_VERSION || le64toh(payload) != size - HEADER_SIZE ||
            le32toh(n) > max_entries || libdeflate_crc32(0, data + HEADER_SIZE, size - HEADER_SIZE) != le32toh(crc))
                return -EBADMSG;
        n = le32toh(n);
        entries = calloc(n ?: 1, sizeof(BackupEntry));
        if (!entries)
                return -ENOMEM;
        for (k = 0; k < n; k++) {
                r = in_entry(&in, &entries[k]);
                if (r < 0) {
                        k++;
                        goto fail;
                }
        }
        if (in.p != in.end) {
                r = -EBADMSG;
                goto fail;
        }
        *ret = entries;
        *ret_n = n;
        return 0;
fail:
        for (size_t j = 0; j < k; j++)
                backup_entry_done(&entries[j]);
        free(entries);
        return r;
}

int backup_list_cache_load(const char *instance, size_t max_entries, BackupEntry **ret, size_t *ret_n) {
        _cleanup_free_ char *path = NULL, *data = NULL;
        _cleanup_close_ int fd = -1;
        size_t size;
        int r;

        r = cache_path(instance, "", &path);
        if (r < 0)
                return r;
        fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = read_full_fd(fd, CACHE_FILE_MAX, &data, &size);
        if (r < 0)
                return r == -EFBIG ? -EBADMSG : r;
        r = decode((const uint8_t *) data, size, max_entries, ret, ret_n);
        if (r == -EBADMSG)
                log_info("Ignoring %s: damaged or of another version; the backups are read again.", path);
        return r;
}
