/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <dirent.h>
#include <fcntl.h>
#include <libdeflate.h>
#include <string.h>
#include <sys/stat.h>
#include <zip.h>
#include <zlib.h>

#include "backup/backup-reuse.h"
#include "log.h"
#include "names.h"
#include "util.h"

struct ReuseReader {
        zip_t *zip;
        bool borrowed;          /* the ReuseSource's own zip_t */
        zip_file_t *raw;        /* open by reuse_reader_open_raw() */
};

struct ReuseSource {
        zip_t *zip;
        char *name;
        int dirfd;
        dev_t dev;
        ino_t ino;
        ReuseReader own;        /* reuse_source_reader() */
};

/* The zip in dirfd/name, if it is (still) the file dev/ino; ret_st: its stat. */
static int open_zip(int dirfd, const char *name, const struct stat *expect, struct stat *ret_st, zip_t **ret) {
        struct stat st;
        int fd, ze = 0;
        zip_t *zip;

        fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
            (expect && (st.st_dev != expect->st_dev || st.st_ino != expect->st_ino))) {
                close(fd);
                return -ESTALE;
        }
        zip = zip_fdopen(fd, ZIP_RDONLY, &ze);     /* takes fd on success */
        if (!zip) {
                close(fd);
                log_debug("Previous backup %s cannot be read as a zip (libzip error %d): nothing reused", name, ze);
                return -EBADMSG;
        }
        if (ret_st)
                *ret_st = st;
        *ret = zip;
        return 0;
}

/* The newest regular file with a backup's name, other than skip_name. */
static int newest_backup(int dirfd, const char *skip_name, char **ret) {
        _cleanup_free_ char *best = NULL;
        struct timespec best_time = {};
        struct dirent *de;
        DIR *d;
        int r;

        r = opendir_fd(dirfd, &d);
        if (r < 0)
                return r;
        while ((de = readdir(d))) {
                struct stat st;

                if (!backup_name_is_valid(de->d_name) || streq(de->d_name, skip_name) ||
                    fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
                        continue;
                if (best && (st.st_mtim.tv_sec < best_time.tv_sec ||
                             (st.st_mtim.tv_sec == best_time.tv_sec && st.st_mtim.tv_nsec <= best_time.tv_nsec)))
                        continue;
                free(best);
                best = strdup(de->d_name);
                if (!best) {
                        closedir(d);
                        return -ENOMEM;
                }
                best_time = st.st_mtim;
        }
        closedir(d);
        *ret = TAKE_PTR(best);
        return 0;
}

int reuse_source_open(int dirfd, const char *skip_name, ReuseSource **ret) {
        _cleanup_free_ char *name = NULL;
        ReuseSource *r;
        struct stat st;
        zip_t *zip;
        int k, fd;

        *ret = NULL;
        k = newest_backup(dirfd, skip_name, &name);
        if (k < 0 || !name)
                return k == -ENOMEM ? k : 0;
        if (open_zip(dirfd, name, NULL, &st, &zip) < 0)
                return 0;
        fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
        r = calloc(1, sizeof(ReuseSource));
        if (fd < 0 || !r) {
                zip_discard(zip);
                free(r);
                if (fd >= 0)
                        close(fd);
                return -ENOMEM;
        }
        *r = (ReuseSource) { .zip = zip, .name = TAKE_PTR(name), .dirfd = fd, .dev = st.st_dev, .ino = st.st_ino,
                             .own = { .zip = zip, .borrowed = true } };
        *ret = r;
        return 0;
}

ReuseSource *reuse_source_free(ReuseSource *r) {
        if (!r)
                return NULL;
        reuse_reader_close_raw(&r->own);
        zip_discard(r->zip);
        free(r->name);
        if (r->dirfd >= 0)
                close(r->dirfd);
        free(r);
        return NULL;
}

int reuse_reader_new(ReuseSource *r, ReuseReader **ret) {
        struct stat expect = { .st_dev = r->dev, .st_ino = r->ino };
        ReuseReader *rr;
        int k;

        rr = calloc(1, sizeof(ReuseReader));
        if (!rr)
                return -ENOMEM;
        k = open_zip(r->dirfd, r->name, &expect, NULL, &rr->zip);
        if (k < 0) {
                free(rr);
                return k;
        }
        *ret = rr;
        return 0;
}

ReuseReader *reuse_reader_free(ReuseReader *rr) {
        if (!rr || rr->borrowed)
                return NULL;
        reuse_reader_close_raw(rr);
        zip_discard(rr->zip);
        free(rr);
        return NULL;
}

const char *reuse_source_name(const ReuseSource *r) {
        return r ? r->name : NULL;
}

uint64_t reuse_source_entries(const ReuseSource *r) {
        zip_int64_t n = zip_get_num_entries(r->zip, 0);

        return n < 0 ? 0 : (uint64_t) n;
}

ReuseReader *reuse_source_reader(ReuseSource *r) {
        return &r->own;
}

bool reuse_source_find(ReuseSource *r, const char *name, uint64_t size, ReuseEntry *ret) {
        zip_int64_t idx;
        zip_stat_t st;

        if (!r)
                return false;
        idx = zip_name_locate(r->zip, name, 0);
        if (idx < 0 || zip_stat_index(r->zip, (zip_uint64_t) idx, 0, &st) < 0)
                return false;
        if ((st.valid & (ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_CRC | ZIP_STAT_COMP_METHOD |
                         ZIP_STAT_ENCRYPTION_METHOD)) != (ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_CRC |
                                                          ZIP_STAT_COMP_METHOD | ZIP_STAT_ENCRYPTION_METHOD) ||
            st.comp_method != ZIP_CM_DEFLATE || st.encryption_method != ZIP_EM_NONE || st.size != size)
                return false;
        *ret = (ReuseEntry) { .index = idx, .size = st.size, .comp_size = st.comp_size, .crc = st.crc };
        return true;
}

int reuse_reader_open_raw(ReuseReader *rr, const ReuseEntry *e) {
        reuse_reader_close_raw(rr);
        rr->raw = zip_fopen_index(rr->zip, (zip_uint64_t) e->index, ZIP_FL_COMPRESSED);
        return rr->raw ? 0 : -EIO;
}

ssize_t reuse_reader_read_raw(ReuseReader *rr, void *buf, size_t n) {
        zip_int64_t k;

        if (!rr->raw)
                return -EBADF;
        k = zip_fread(rr->raw, buf, n);
        return k < 0 ? -EIO : (ssize_t) k;
}

void reuse_reader_close_raw(ReuseReader *rr) {
        if (rr->raw) {
                zip_fclose(rr->raw);
                rr->raw = NULL;
        }
}

int reuse_reader_verify(ReuseReader *rr, const ReuseEntry *e, uint8_t *buf, size_t n, const bool *stop,
                        uint32_t *ret_raw_crc) {
        size_t half = n / 2;
        uint8_t *in = buf, *out = buf + half;
        uint64_t raw_total = 0, out_total = 0;
        uint32_t raw_crc = 0, crc = 0;
        bool ended = false;
        z_stream z = {};
        int k, result = 0;

        if (half < 32 * 1024)
                return -EINVAL;
        if (inflateInit2(&z, -MAX_WBITS) != Z_OK)
                return -ENOMEM;
        k = reuse_reader_open_raw(rr, e);
        if (k < 0) {
                inflateEnd(&z);
                return k;
        }
        for (;;) {
                ssize_t got;

                if (__atomic_load_n(stop, __ATOMIC_RELAXED)) {
                        result = -ECANCELED;
                        goto finish;
                }
                got = reuse_reader_read_raw(rr, in, half);
                if (got < 0) {
                        result = (int) got;
                        goto finish;
                }
                if (got == 0)
                        break;
                raw_total += (uint64_t) got;
                raw_crc = (uint32_t) libdeflate_crc32(raw_crc, in, (size_t) got);
                if (ended)
                        goto finish;            /* bytes after the end of the stream */
                z.next_in = in;
                z.avail_in = (uInt) got;
                do {
                        size_t made;

                        z.next_out = out;
                        z.avail_out = (uInt) half;
                        k = inflate(&z, Z_NO_FLUSH);
                        if (k != Z_OK && k != Z_STREAM_END && k != Z_BUF_ERROR)
                                goto finish;    /* not deflate data */
                        made = half - z.avail_out;
                        out_total += made;
                        if (out_total > e->size)
                                goto finish;    /* more than the entry says: stop inflating */
                        crc = (uint32_t) libdeflate_crc32(crc, out, made);
                        if (k == Z_STREAM_END) {
                                ended = true;
                                if (z.avail_in > 0)
                                        goto finish;
                                break;
                        }
                        if (k == Z_BUF_ERROR && z.avail_in == 0)
                                break;
                } while (z.avail_in > 0 || z.avail_out == 0);
        }
        result = ended && raw_total == e->comp_size && out_total == e->size && crc == e->crc;
        *ret_raw_crc = raw_crc;
finish:
        reuse_reader_close_raw(rr);
        inflateEnd(&z);
        return result;
}
