/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <libdeflate.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <strings.h>
#include <sys/param.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <zip.h>
#include <zlib.h>

#include "backup/archive-write.h"
#include "backup/deflate-pool.h"
#include "log.h"

#define OUT_BUFFER_SIZE (1024U * 1024U)
#define WRITEBACK_INTERVAL (8U * 1024U * 1024U)
#define PROGRESS_INTERVAL_USEC 100000ULL
#define TRIAL_MIN_SIZE (64U * 1024U)         /* smaller files: stored or not by their name alone */
#define TRIAL_SIZE (32U * 1024U)

struct ArchiveWriter {
        zip_t *zip;
        int dirfd;
        char *dir_path, *name, *temp_name;
        int level;
        const BackupCallbacks *cb;

        /* File entries are read and deflated by the pool, in the order libzip writes them. */
        DeflatePool *pool;
        ReuseSource *reuse;              /* the previous backup, or NULL */
        bool reuse_tried;                /* opened when the first file needs it */
        FilesCache *cache;               /* borrowed, or NULL */
        PoolFile *files;
        ArchiveFileResult *results;      /* one a file, filled as libzip takes its last chunk */
        size_t n_files, n_files_allocated, n_results_allocated;
        uint8_t *trial_buf;

        uint64_t done, total, last_progress;
        int64_t mtime_min, mtime_max;

        /* The archive being written: ".<name>". */
        int fd;
        bool temp_exists;
        uint64_t pos, end;               /* logical write position; highest offset written */
        uint8_t *buf;
        size_t buf_len;
        uint64_t buf_off;                /* file offset of buf[0] */
        /* A thread writes each full buffer while the next one fills: the copy into the page cache is
         * not on the consumer's time, which is what the backup waits for while it copies stored files. */
        pthread_t out_thread;
        bool out_started, out_stop;
        pthread_mutex_t out_lock;
        pthread_cond_t out_cond;
        uint8_t *spare;                  /* the buffer not being filled: the thread's while out_len > 0 */
        size_t out_len;
        uint64_t out_off;
        int out_errno;                   /* the thread's first failure (positive errno) */
        uint64_t written_end, writeback; /* highest offset written; written back (asked to be) up to here */
        zip_error_t out_error;

        /* Errors of the file sources (one is open at a time). */
        zip_error_t in_error;
        int failure;                     /* first failure worth telling apart: -ENOSPC, -ECANCELED, ... */
        char *failure_path;
};

typedef struct FileSource {
        ArchiveWriter *w;
        const PlanEntry *e;
        size_t index;                    /* in w->files */
        bool deflated;                   /* the pool deflates it (else: stored, libzip adds the CRC) */

        const PoolChunk *chunk;          /* being copied out, or NULL */
        size_t chunk_pos;
        bool eof;
        bool damaged;                    /* vanished, shrank: not what the scan saw */
        uint64_t size, comp_size;        /* what was read, what it became */
        uint32_t crc;
        uint32_t raw_crc;                /* of the data handed to libzip */
} FileSource;

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

static void set_failure(ArchiveWriter *w, int error) {
        if (w->failure == 0)
                w->failure = -abs(error);
}

/* What a DOS time can hold, in local time. mktime() reads the time zone each time: computed once a
 * writer, not once an entry. */
static void dos_time_bounds(int64_t *ret_min, int64_t *ret_max) {
        struct tm lo = { .tm_year = 80, .tm_mon = 0, .tm_mday = 1, .tm_isdst = -1 };
        struct tm hi = { .tm_year = 207, .tm_mon = 11, .tm_mday = 31, .tm_hour = 23, .tm_min = 59,
                         .tm_sec = 58, .tm_isdst = -1 };
        time_t min = mktime(&lo), max = mktime(&hi);

        *ret_min = min == (time_t) -1 ? INT64_MIN : min;
        *ret_max = max == (time_t) -1 ? INT64_MAX : max;
}

static int64_t clamp(int64_t t, int64_t min, int64_t max) {
        return t < min ? min : t > max ? max : t;
}

int64_t archive_clamp_mtime(int64_t t) {
        int64_t min, max;

        dos_time_bounds(&min, &max);
        return clamp(t, min, max);
}

/* ---- the archive file ---- */

static int out_write_all(ArchiveWriter *w, const uint8_t *data, size_t len, uint64_t off) {
        size_t done = 0;

        while (done < len) {
                ssize_t k = pwrite(w->fd, data + done, len - done, (off_t) (off + done));

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                done += (size_t) k;
        }
        w->written_end = MAX(w->written_end, off + len);
        /* Start writing back now, so that the fsync at the end does not wait for the whole archive. */
        if (w->written_end >= w->writeback + WRITEBACK_INTERVAL) {
                (void) sync_file_range(w->fd, (off_t) w->writeback, (off_t) (w->written_end - w->writeback),
                                       SYNC_FILE_RANGE_WRITE);
                w->writeback = w->written_end;
        }
        return 0;
}

static void *out_thread_main(void *userdata) {
        ArchiveWriter *w = userdata;

        pthread_mutex_lock(&w->out_lock);
        for (;;) {
                int k;

                while (!w->out_stop && w->out_len == 0)
                        pthread_cond_wait(&w->out_cond, &w->out_lock);
                if (w->out_len == 0)
                        break;
                pthread_mutex_unlock(&w->out_lock);
                k = out_write_all(w, w->spare, w->out_len, w->out_off);
                pthread_mutex_lock(&w->out_lock);
                if (k < 0 && w->out_errno == 0)
                        w->out_errno = -k;
                w->out_len = 0;
                pthread_cond_broadcast(&w->out_cond);
        }
        pthread_mutex_unlock(&w->out_lock);
        return NULL;
}

/* Waits until the thread wrote what it has; its first failure, if any. */
static int out_wait(ArchiveWriter *w) {
        int k;

        if (!w->out_started)
                return 0;
        pthread_mutex_lock(&w->out_lock);
        while (w->out_len > 0)
                pthread_cond_wait(&w->out_cond, &w->out_lock);
        k = -w->out_errno;
        pthread_mutex_unlock(&w->out_lock);
        return k;
}

/* Hands the buffer to the thread (written directly without one) and starts an empty one. */
static int out_flush(ArchiveWriter *w) {
        uint8_t *full = w->buf;
        int k;

        if (w->buf_len == 0)
                return 0;
        if (!w->out_started) {
                k = out_write_all(w, w->buf, w->buf_len, w->buf_off);
                w->buf_len = 0;
                return k;
        }
        k = out_wait(w);
        if (k < 0)
                return k;
        pthread_mutex_lock(&w->out_lock);
        w->buf = w->spare;
        w->spare = full;
        w->out_len = w->buf_len;
        w->out_off = w->buf_off;
        pthread_cond_broadcast(&w->out_cond);
        pthread_mutex_unlock(&w->out_lock);
        w->buf_len = 0;
        return 0;
}

static void out_thread_stop(ArchiveWriter *w) {
        if (!w->out_started)
                return;
        pthread_mutex_lock(&w->out_lock);
        w->out_stop = true;
        pthread_cond_broadcast(&w->out_cond);
        pthread_mutex_unlock(&w->out_lock);
        pthread_join(w->out_thread, NULL);
        w->out_started = false;
}

static void out_thread_start(ArchiveWriter *w) {
        sigset_t all, saved;

        if (!w->spare)
                return;         /* no second buffer: written as it fills */
        w->out_stop = false;
        w->out_len = 0;
        w->out_errno = 0;
        /* Signals (SIGTERM: cancel) are for the thread that runs libzip. */
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &saved);
        w->out_started = pthread_create(&w->out_thread, NULL, out_thread_main, w) == 0;
        pthread_sigmask(SIG_SETMASK, &saved, NULL);
}

static zip_int64_t out_fail(ArchiveWriter *w, int ze, int error) {
        if (error == ENOSPC || error == EDQUOT || error == EFBIG)
                set_failure(w, error);
        zip_error_set(&w->out_error, ze, error);
        return -1;
}

static zip_int64_t out_begin(ArchiveWriter *w) {
        for (unsigned attempt = 0;; attempt++) {
                w->fd = openat(w->dirfd, w->temp_name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (w->fd >= 0)
                        break;
                /* A hidden file of this name is what a crashed backup left: jobs are one at a time per instance. */
                if (errno != EEXIST || attempt > 0 || unlinkat(w->dirfd, w->temp_name, 0) < 0)
                        return out_fail(w, ZIP_ER_TMPOPEN, errno);
        }
        w->temp_exists = true;
        w->pos = w->end = w->buf_off = w->writeback = w->written_end = 0;
        w->buf_len = 0;
        out_thread_start(w);
        return 0;
}

static zip_int64_t out_write(ArchiveWriter *w, const void *data, zip_uint64_t len) {
        const uint8_t *p = data;
        zip_uint64_t left = len;

        /* libzip rewrites each entry's local header once its data is written: while the header is still
         * buffered, it is changed there instead of costing two writes an entry. */
        if (w->buf_len > 0 && w->pos >= w->buf_off && w->pos + len <= w->buf_off + w->buf_len) {
                memcpy(w->buf + (w->pos - w->buf_off), data, len);
                w->pos += len;
                return (zip_int64_t) len;
        }
        while (left > 0) {
                size_t n;

                if (w->buf_len > 0 && w->buf_off + w->buf_len != w->pos) {
                        int k = out_flush(w);
                        if (k < 0)
                                return out_fail(w, ZIP_ER_WRITE, -k);
                }
                if (w->buf_len == 0)
                        w->buf_off = w->pos;
                n = OUT_BUFFER_SIZE - w->buf_len;
                if (n > left)
                        n = (size_t) left;
                memcpy(w->buf + w->buf_len, p, n);
                w->buf_len += n;
                w->pos += n;
                p += n;
                left -= n;
                if (w->pos > w->end)
                        w->end = w->pos;
                if (w->buf_len == OUT_BUFFER_SIZE) {
                        int k = out_flush(w);
                        if (k < 0)
                                return out_fail(w, ZIP_ER_WRITE, -k);
                }
        }
        return (zip_int64_t) len;
}

static zip_int64_t out_seek(ArchiveWriter *w, void *data, zip_uint64_t len) {
        zip_source_args_seek_t *a = ZIP_SOURCE_GET_ARGS(zip_source_args_seek_t, data, len, &w->out_error);
        int64_t base, np;

        if (!a)
                return -1;
        base = a->whence == SEEK_SET ? 0 : a->whence == SEEK_CUR ? (int64_t) w->pos : (int64_t) w->end;
        np = base + a->offset;
        if (np < 0) {
                zip_error_set(&w->out_error, ZIP_ER_INVAL, 0);
                return -1;
        }
        w->pos = (uint64_t) np;
        return 0;
}

static void out_remove(ArchiveWriter *w) {
        out_thread_stop(w);
        if (w->fd >= 0) {
                close(w->fd);
                w->fd = -1;
        }
        if (w->temp_exists) {
                (void) unlinkat(w->dirfd, w->temp_name, 0);
                w->temp_exists = false;
        }
}

static zip_int64_t out_callback(void *userdata, void *data, zip_uint64_t len, zip_source_cmd_t cmd) {
        ArchiveWriter *w = userdata;
        int k;

        switch (cmd) {
        case ZIP_SOURCE_SUPPORTS:
                return zip_source_make_command_bitmap(ZIP_SOURCE_OPEN, ZIP_SOURCE_READ, ZIP_SOURCE_CLOSE,
                                                      ZIP_SOURCE_STAT, ZIP_SOURCE_ERROR, ZIP_SOURCE_FREE,
                                                      ZIP_SOURCE_SEEK, ZIP_SOURCE_TELL, ZIP_SOURCE_SUPPORTS,
                                                      ZIP_SOURCE_BEGIN_WRITE, ZIP_SOURCE_COMMIT_WRITE,
                                                      ZIP_SOURCE_ROLLBACK_WRITE, ZIP_SOURCE_WRITE,
                                                      ZIP_SOURCE_SEEK_WRITE, ZIP_SOURCE_TELL_WRITE,
                                                      ZIP_SOURCE_REMOVE, -1);
        case ZIP_SOURCE_STAT:
                /* There is no archive yet: libzip then starts an empty one. */
                zip_error_set(&w->out_error, ZIP_ER_READ, ENOENT);
                return -1;
        case ZIP_SOURCE_ERROR:
                return zip_error_to_data(&w->out_error, data, len);
        case ZIP_SOURCE_FREE:
                return 0;     /* the writer owns the state */
        case ZIP_SOURCE_BEGIN_WRITE:
                return out_begin(w);
        case ZIP_SOURCE_WRITE:
                return out_write(w, data, len);
        case ZIP_SOURCE_SEEK_WRITE:
                return out_seek(w, data, len);
        case ZIP_SOURCE_TELL_WRITE:
                return (zip_int64_t) w->pos;
        case ZIP_SOURCE_COMMIT_WRITE:
                if (backup_progress(w->cb, "syncing", w->done, w->total) < 0) {
                        set_failure(w, ECANCELED);
                        zip_error_set(&w->out_error, ZIP_ER_CANCELLED, 0);
                        return -1;
                }
                k = out_flush(w);
                if (k >= 0)
                        k = out_wait(w);
                out_thread_stop(w);
                if (k >= 0 && fsync(w->fd) < 0)
                        k = -errno;
                if (k < 0)
                        return out_fail(w, ZIP_ER_WRITE, -k);
                return 0;
        case ZIP_SOURCE_ROLLBACK_WRITE:
        case ZIP_SOURCE_REMOVE:
                out_remove(w);
                return 0;
        default:
                /* Reading the archive back (OPEN, READ, SEEK ...) never happens for a new one. */
                zip_error_set(&w->out_error, ZIP_ER_OPNOTSUPP, 0);
                return -1;
        }
}

/* ---- file entries ---- */

static int report(ArchiveWriter *w, bool force) {
        uint64_t now = now_usec();

        if (!force && now - w->last_progress < PROGRESS_INTERVAL_USEC)
                return 0;
        w->last_progress = now;
        return backup_progress(w->cb, "writing", w->done, w->total);
}

static zip_int64_t in_fail(FileSource *s, int ze, int error) {
        set_failure(s->w, error);
        if (!s->w->failure_path)
                s->w->failure_path = strdup(s->e->path);
        zip_error_set(&s->w->in_error, ze, error);
        return -1;
}

static void in_release(FileSource *s) {
        if (!s->chunk)
                return;
        deflate_pool_release(s->w->pool);
        s->chunk = NULL;
}

/* The next chunk of this file from the pool, with what happened to the file said once. */
static zip_int64_t in_next_chunk(FileSource *s) {
        ArchiveWriter *w = s->w;
        const PoolChunk *c;
        int k;

        k = deflate_pool_next(w->pool, &c);
        if (k < 0 || c->file != s->index)      /* libzip asks for the entries in the order they were added */
                return in_fail(s, ZIP_ER_INTERNAL, k < 0 ? -k : EIO);
        s->chunk = c;
        s->chunk_pos = 0;
        if (c->status == POOL_FAILED)
                return in_fail(s, ZIP_ER_READ, -c->error);
        if (c->status == POOL_VANISHED)
                /* libzip cannot drop an entry any more: keep the archive valid and say what happened. */
                backup_log(w->cb, LOG_WARNING, "%s changed or disappeared while the backup was written: "
                           "stored as an empty file", s->e->path);
        else if (c->status == POOL_SHRANK)
                backup_log(w->cb, LOG_WARNING, "%s shrank while the backup was written: stored what was left",
                           s->e->path);
        return 0;
}

static zip_int64_t in_read(FileSource *s, uint8_t *data, zip_uint64_t len) {
        ArchiveWriter *w = s->w;
        zip_uint64_t done = 0;

        while (done < len && !s->eof) {
                const PoolChunk *c;
                size_t n;

                if (!s->chunk && in_next_chunk(s) < 0)
                        return -1;
                c = s->chunk;
                n = (size_t) MIN((zip_uint64_t) (c->size - s->chunk_pos), len - done);
                memcpy(data + done, c->data + s->chunk_pos, n);
                s->raw_crc = (uint32_t) libdeflate_crc32(s->raw_crc, data + done, n);
                s->chunk_pos += n;
                done += n;
                if (s->chunk_pos < c->size)
                        continue;

                s->crc = (uint32_t) crc32_combine(s->crc, c->crc, (z_off_t) c->in_size);
                s->size += c->in_size;
                s->comp_size += c->size;
                s->eof = c->last;
                if (c->status != POOL_OK)
                        s->damaged = true;
                if (c->last)
                        w->results[s->index] = (ArchiveFileResult) {
                                .done = true,
                                .unchanged = c->unchanged && !s->damaged,
                                .deflated = s->deflated,
                                .size = s->size,
                                .comp_size = s->comp_size,
                                .crc = s->deflated ? s->crc : s->raw_crc,
                                .raw_crc = s->raw_crc,
                        };
                w->done += c->in_size;
                in_release(s);
                if (report(w, false) < 0)
                        return in_fail(s, ZIP_ER_CANCELLED, ECANCELED);
        }
        return (zip_int64_t) done;
}

static zip_int64_t in_stat(FileSource *s, void *data, zip_uint64_t len) {
        zip_stat_t *st = ZIP_SOURCE_GET_ARGS(zip_stat_t, data, len, &s->w->in_error);

        if (!st)
                return -1;
        zip_stat_init(st);
        /* Known sizes keep libzip from adding ZIP64 extras to small entries. */
        st->valid = ZIP_STAT_SIZE | ZIP_STAT_MTIME;
        st->size = s->e->size;
        st->mtime = (time_t) clamp(s->e->mtime, s->w->mtime_min, s->w->mtime_max);
        if (s->deflated) {
                /* Deflated already: libzip copies the data as it is. Once it is read, the CRC and the
                 * sizes are known too. */
                st->valid |= ZIP_STAT_COMP_METHOD;
                st->comp_method = ZIP_CM_DEFLATE;
                if (s->eof) {
                        st->valid |= ZIP_STAT_CRC | ZIP_STAT_COMP_SIZE;
                        st->size = s->size;
                        st->comp_size = s->comp_size;
                        st->crc = s->crc;
                }
        }
        return sizeof(*st);
}

static zip_int64_t in_callback(void *userdata, void *data, zip_uint64_t len, zip_source_cmd_t cmd) {
        FileSource *s = userdata;

        switch (cmd) {
        case ZIP_SOURCE_SUPPORTS:
                return zip_source_make_command_bitmap(ZIP_SOURCE_OPEN, ZIP_SOURCE_READ, ZIP_SOURCE_CLOSE,
                                                      ZIP_SOURCE_STAT, ZIP_SOURCE_ERROR, ZIP_SOURCE_FREE,
                                                      ZIP_SOURCE_SUPPORTS, -1);
        case ZIP_SOURCE_STAT:
                return in_stat(s, data, len);
        case ZIP_SOURCE_OPEN:
                if (s->eof || s->size > 0)
                        return in_fail(s, ZIP_ER_INTERNAL, EIO);     /* the pool hands each file out once */
                s->crc = 0;
                return 0;
        case ZIP_SOURCE_READ:
                return in_read(s, data, len);
        case ZIP_SOURCE_CLOSE:
                in_release(s);
                return 0;
        case ZIP_SOURCE_ERROR:
                return zip_error_to_data(&s->w->in_error, data, len);
        case ZIP_SOURCE_FREE:
                free(s);        /* a chunk still held goes with the pool */
                return 0;
        default:
                zip_error_set(&s->w->in_error, ZIP_ER_OPNOTSUPP, 0);
                return -1;
        }
}

/* ---- the writer ---- */

bool archive_name_is_compressed(const char *name) {
        static const char *const suffixes[] = {
                ".mp4", ".mkv", ".avi", ".mov", ".webm", ".mpg", ".mpeg", ".h264",
                ".jpg", ".jpeg", ".png", ".gif", ".webp",
                ".zip", ".gz", ".tgz", ".bz2", ".xz", ".zst", ".7z", ".whl",
        };
        const char *dot = strrchr(name, '.');

        if (!dot || strchr(dot, '/'))
                return false;
        for (size_t i = 0; i < ELEMENTSOF(suffixes); i++)
                if (strcasecmp(dot, suffixes[i]) == 0)
                        return true;
        return false;
}

static int set_entry_attributes(ArchiveWriter *w, zip_int64_t idx, int64_t mtime, mode_t mode, bool store) {
        zip_uint64_t i = (zip_uint64_t) idx;

        if (zip_file_set_external_attributes(w->zip, i, 0, ZIP_OPSYS_UNIX, ((zip_uint32_t) mode & 0xffffU) << 16) < 0 ||
            zip_file_set_mtime(w->zip, i, (time_t) clamp(mtime, w->mtime_min, w->mtime_max), 0) < 0 ||
            zip_set_file_compression(w->zip, i, store ? ZIP_CM_STORE : ZIP_CM_DEFLATE,
                                     (zip_uint32_t) (store ? 0 : w->level)) < 0)
                return -ENOMEM;
        return 0;
}

/* Deflating what is compressed already costs most of the time and saves nothing: such data is stored, as
 * the zip format (and OctoPrint's reader) allows. Small files are judged by their name; larger ones by
 * deflating their first block, whatever their name says. */
static bool should_store(ArchiveWriter *w, const PlanEntry *e) {
        _cleanup_close_ int fd = -1;
        ssize_t n;

        if (w->level == 0)
                return true;
        if (e->size < TRIAL_MIN_SIZE)
                return archive_name_is_compressed(e->name);
        fd = open_no_symlinks(e->path, 0);
        if (fd < 0)
                return false;           /* what is wrong with it is found (and said) when it is read */
        do
                n = pread(fd, w->trial_buf, TRIAL_SIZE, 0);
        while (n < 0 && errno == EINTR);
        if (n <= 0)
                return false;
        return deflate_pool_sample_incompressible(w->pool, w->trial_buf, (size_t) n) > 0;
}

int archive_writer_add_buffer(ArchiveWriter *w, const char *name, const void *data, size_t size, int64_t mtime,
                              mode_t mode) {
        zip_source_t *src;
        zip_int64_t idx;
        void *copy;

        copy = malloc(size ?: 1);
        if (!copy)
                return -ENOMEM;
        memcpy(copy, data, size);
        src = zip_source_buffer(w->zip, copy, size, 1);
        if (!src) {
                free(copy);
                return -ENOMEM;
        }
        idx = zip_file_add(w->zip, name, src, ZIP_FL_ENC_UTF_8);
        if (idx < 0) {
                zip_source_free(src);
                return -EEXIST;
        }
        /* libzip deflates these itself: they are small. */
        return set_entry_attributes(w, idx, mtime, mode, w->level == 0);
}

void archive_writer_set_files_cache(ArchiveWriter *w, FilesCache *c) {
        w->cache = c;
        deflate_pool_set_files_cache(w->pool, files_cache_backup_fd(c));
}

/* The previous backup, for reusing what the files cache does not cover: opened only when needed. */
static ReuseSource *reuse_source(ArchiveWriter *w) {
        if (!w->reuse_tried && w->level > 0) {
                w->reuse_tried = true;
                if (reuse_source_open(w->dirfd, w->name, &w->reuse) < 0)
                        w->reuse = NULL;
        }
        return w->reuse;
}

int archive_writer_add_entry(ArchiveWriter *w, const PlanEntry *e) {
        ReuseEntry reuse = { .index = -1 };
        FilesCacheEntry cached;
        bool store, in_cache;
        zip_source_t *src;
        zip_int64_t idx;
        FileSource *s;

        if (ARRAY_RESERVE(w->files, w->n_files_allocated, w->n_files + 1) < 0 ||
            ARRAY_RESERVE(w->results, w->n_results_allocated, w->n_files + 1) < 0)
                return -ENOMEM;
        w->results[w->n_files] = (ArchiveFileResult) {};
        /* Unchanged since the files cache saw it: its data as it is in that backup, stored or deflated. */
        in_cache = files_cache_lookup(w->cache, e->name, &e->stamp, &cached) && (w->level > 0 || cached.method == 0);
        /* What the previous backup deflated is not stored now: its data is likely what this file holds. */
        if (in_cache || w->level == 0 || e->size < REUSE_MIN_SIZE ||
            !reuse_source_find(reuse_source(w), e->name, e->size, &reuse))
                reuse.index = -1;
        store = in_cache ? cached.method == 0 : reuse.index < 0 && should_store(w, e);
        s = calloc(1, sizeof(FileSource));
        if (!s)
                return -ENOMEM;
        *s = (FileSource) { .w = w, .e = e, .index = w->n_files, .deflated = !store };
        src = zip_source_function(w->zip, in_callback, s);
        if (!src) {
                free(s);
                return -ENOMEM;
        }
        idx = zip_file_add(w->zip, e->name, src, ZIP_FL_ENC_UTF_8);
        if (idx < 0) {
                int ze = zip_error_code_zip(zip_get_error(w->zip));

                zip_source_free(src);
                if (ze == ZIP_ER_EXISTS) {
                        backup_log(w->cb, LOG_WARNING, "Skipping %s: %s is in the backup already", e->path, e->name);
                        return 0;
                }
                return -ENOMEM;
        }
        w->files[w->n_files++] = (PoolFile) { .path = e->path, .size = e->size, .store = store, .reuse = reuse,
                                              .name = e->name, .stamp = e->stamp, .cached = in_cache,
                                              .cache = in_cache ? cached : (FilesCacheEntry) {} };
        return set_entry_attributes(w, idx, e->mtime, e->mode, store);
}

int archive_writer_new(int dirfd, const char *dir_path, const char *name, int level, uint64_t total,
                       const BackupCallbacks *cb, ArchiveWriter **ret, char **ret_error) {
        ArchiveWriter *w;
        zip_source_t *src;
        zip_error_t error;
        struct stat st;

        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) >= 0) {
                if (ret_error)
                        (void) asprintf(ret_error, "A backup named %s already exists in %s", name, dir_path);
                return -EEXIST;
        }

        w = calloc(1, sizeof(ArchiveWriter));
        if (!w)
                return -ENOMEM;
        *w = (ArchiveWriter) {
                .dirfd = dirfd,
                .fd = -1,
                .level = level < 0 ? 0 : level > 9 ? 9 : level,
                .cb = cb,
                .total = total,
                .dir_path = strdup(dir_path),
                .name = strdup(name),
                .buf = malloc(OUT_BUFFER_SIZE),
                .spare = malloc(OUT_BUFFER_SIZE),
                .trial_buf = malloc(TRIAL_SIZE),
        };
        pthread_mutex_init(&w->out_lock, NULL);
        pthread_cond_init(&w->out_cond, NULL);
        zip_error_init(&w->out_error);
        zip_error_init(&w->in_error);
        dos_time_bounds(&w->mtime_min, &w->mtime_max);
        if (!w->dir_path || !w->name || !w->buf || !w->trial_buf || asprintf(&w->temp_name, ".%s", name) < 0 ||
            deflate_pool_new(w->level > 0 ? w->level : 1, w->level > 0 ? 0 : 1, &w->pool) < 0) {
                archive_writer_free(w);
                return -ENOMEM;
        }

        zip_error_init(&error);
        src = zip_source_function_create(out_callback, w, &error);
        if (src)
                w->zip = zip_open_from_source(src, ZIP_CREATE | ZIP_TRUNCATE, &error);
        if (!w->zip) {
                if (ret_error)
                        (void) asprintf(ret_error, "Cannot start the backup archive in %s: %s", dir_path,
                                        zip_error_strerror(&error));
                if (src)
                        zip_source_free(src);
                zip_error_fini(&error);
                archive_writer_free(w);
                return -EIO;
        }
        zip_error_fini(&error);
        *ret = w;
        return 0;
}

ArchiveWriter *archive_writer_free(ArchiveWriter *w) {
        if (!w)
                return NULL;
        if (w->zip)
                zip_discard(w->zip);
        deflate_pool_free(w->pool);      /* after the sources that take chunks from it */
        reuse_source_free(w->reuse);     /* after the pool's reader */
        free(w->files);
        free(w->results);
        free(w->trial_buf);
        out_remove(w);
        zip_error_fini(&w->out_error);
        zip_error_fini(&w->in_error);
        free(w->buf);
        free(w->spare);
        pthread_cond_destroy(&w->out_cond);
        pthread_mutex_destroy(&w->out_lock);
        free(w->dir_path);
        free(w->name);
        free(w->temp_name);
        free(w->failure_path);
        free(w);
        return NULL;
}

static uint64_t free_bytes(ArchiveWriter *w) {
        uint64_t b = 0;

        if (w->cb && w->cb->free_space) {
                if (w->cb->free_space(w->dirfd, &b, w->cb->userdata) < 0)
                        return 0;
        } else {
                struct statvfs sv;

                if (fstatvfs(w->dirfd, &sv) < 0)
                        return 0;
                b = (uint64_t) sv.f_bavail * sv.f_frsize;
        }
        return b;
}

static char *close_error_message(ArchiveWriter *w, int failure, const char *zip_message) {
        char *m = NULL;
        int k = -1;

        switch (failure) {
        case -ECANCELED:
                k = asprintf(&m, "Canceled");
                break;
        case -ENOSPC:
        case -EDQUOT:
                k = asprintf(&m, "Not enough space in %s while writing the backup%s: only %llu MiB are free. "
                             "Free some space or exclude folders, then try again", w->dir_path,
                             failure == -EDQUOT ? " (disk quota reached)" : "",
                             (unsigned long long) (free_bytes(w) / (1024 * 1024)));
                break;
        default:
                if (w->failure_path)
                        k = asprintf(&m, "Reading %s for the backup failed: %s", w->failure_path,
                                     strerror(-failure));
                else
                        k = asprintf(&m, "Writing the backup to %s failed: %s", w->dir_path, zip_message);
        }
        return k < 0 ? NULL : m;
}

static void log_reuse(ArchiveWriter *w) {
        size_t files, rejected;
        uint64_t bytes;
        char sbuf[16];

        if (w->cache) {
                deflate_pool_cache_stats(w->pool, &files, &bytes);
                backup_log(w->cb, LOG_INFO, "%zu unchanged file%s (%s) not read: copied from %s (files cache)", files,
                           files == 1 ? "" : "s", format_bytes(sbuf, sizeof(sbuf), bytes),
                           files_cache_backup_name(w->cache));
        }
        if (!w->reuse)
                return;
        deflate_pool_reuse_stats(w->pool, &files, &bytes, &rejected);
        if (files > 0)
                backup_log(w->cb, LOG_INFO, "Reused the compressed data of %zu unchanged file%s (%s) from %s", files,
                           files == 1 ? "" : "s", format_bytes(sbuf, sizeof(sbuf), bytes), reuse_source_name(w->reuse));
        if (rejected > 0)
                log_debug("%zu files differ from their entries in %s: compressed again", rejected,
                          reuse_source_name(w->reuse));
}

size_t archive_writer_results(ArchiveWriter *w, const PoolFile **ret_files, const ArchiveFileResult **ret_results) {
        *ret_files = w->files;
        *ret_results = w->results;
        return w->n_files;
}

int archive_writer_finish(ArchiveWriter *w, uint64_t *ret_size, char **ret_error) {
        struct stat st;
        int k;

        if (report(w, true) < 0) {
                if (ret_error)
                        *ret_error = strdup("Canceled");
                return -ECANCELED;
        }
        k = deflate_pool_start(w->pool, w->files, w->n_files, w->reuse);
        if (k < 0) {
                if (ret_error)
                        (void) asprintf(ret_error, "Cannot start the threads that compress the backup: %s",
                                        strerror(-k));
                return k;
        }
        if (zip_close(w->zip) < 0) {
                zip_error_t *ze = zip_get_error(w->zip);
                _cleanup_free_ char *message = strdup(zip_error_strerror(ze));
                int failure = w->failure;

                /* The error lives in the archive: take what is needed before discarding it. */
                if (failure == 0)
                        failure = zip_error_code_system(ze) > 0 && zip_error_system_type(ze) == ZIP_ET_SYS ?
                                  -zip_error_code_system(ze) : -EIO;
                if (failure == -EFBIG)     /* a file size limit: as good as a full disk here */
                        failure = -ENOSPC;
                zip_discard(w->zip);
                w->zip = NULL;
                out_remove(w);
                if (ret_error)
                        *ret_error = close_error_message(w, failure, strempty(message));
                return failure;
        }
        w->zip = NULL;     /* zip_close() freed it */
        log_reuse(w);
        if (deflate_pool_join_fallbacks(w->pool) > 0)
                log_debug("%u chunks of %s could not be joined after deflating: stored instead",
                          deflate_pool_join_fallbacks(w->pool), w->name);
        w->pool = deflate_pool_free(w->pool);

        if (fstat(w->fd, &st) < 0) {
                k = -errno;
                out_remove(w);
                if (ret_error)
                        (void) asprintf(ret_error, "Writing the backup to %s failed: %s", w->dir_path, strerror(-k));
                return k;
        }
        /* Without replacing a backup that appeared meanwhile. */
        k = rename_noreplace(w->dirfd, w->temp_name, w->name);
        if (k < 0) {
                out_remove(w);
                if (ret_error && k == -EEXIST)
                        (void) asprintf(ret_error, "A backup named %s appeared in %s meanwhile", w->name, w->dir_path);
                else if (ret_error)
                        (void) asprintf(ret_error, "Cannot rename the finished backup to %s in %s: %s", w->name,
                                        w->dir_path, strerror(-k));
                return k;
        }
        w->temp_exists = false;
        close(w->fd);
        w->fd = -1;
        /* The rename must survive a crash too. */
        if (fsync(w->dirfd) < 0)
                backup_log(w->cb, LOG_WARNING, "Cannot sync %s: %m", w->dir_path);
        if (ret_size)
                *ret_size = (uint64_t) st.st_size;
        return 0;
}
