/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <libdeflate.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/param.h>
#include <sys/stat.h>

#include "backup/backup-plan.h"
#include "backup/deflate-join.h"
#include "backup/deflate-pool.h"
#include "little-endian.h"
#include "util.h"

#define SAMPLE_SIZE (16U * 1024U)      /* what a chunk's trial compresses */
#define FADVISE_MIN_SIZE (256U * 1024U)
#define STORED_BLOCK_MAX 65535U

typedef enum SlotState {
        SLOT_FREE,
        SLOT_READY,             /* read, waiting for a compressor */
        SLOT_BUSY,              /* being compressed */
        SLOT_DONE,              /* ready for the consumer */
} SlotState;

typedef struct Slot {
        SlotState state;
        PoolChunk chunk;
        uint8_t *in, *out;
} Slot;

typedef struct Compressor {
        DeflatePool *pool;
        pthread_t thread;
        bool started;
        struct libdeflate_compressor *main, *trial;
} Compressor;

typedef enum CheckState {
        CHECK_PENDING,
        CHECK_REUSE,
        CHECK_REJECTED,
} CheckState;

typedef struct ReuseCheck {
        CheckState state;
        uint32_t crc, raw_crc;  /* the file's, and its compressed data's */
} ReuseCheck;

typedef struct Verifier {
        DeflatePool *pool;
        pthread_t thread;
        bool started;
        ReuseReader *reader;
        uint8_t *buf;
} Verifier;

struct DeflatePool {
        int level;
        unsigned n_threads, n_slots;
        size_t out_capacity;
        Slot *slots;
        Compressor *compressors;
        struct libdeflate_compressor *sampler;     /* for deflate_pool_sample_incompressible() */

        const PoolFile *files;
        size_t n_files;
        /* Reusing the previous backup's data: verifier threads check the candidates ahead of the reader
         * (checks[], next_check), which then copies the data of those that passed. */
        ReuseSource *reuse;
        ReuseCheck *checks;
        size_t next_check;
        Verifier *verifiers;
        unsigned n_verifiers;   /* set up (each with a reader, unless that failed) */
        ReuseReader *copier;    /* the ReuseSource's own handle, used by the reader thread */
        size_t reused_files, reuse_rejected;
        uint64_t reused_bytes;
        int cache_fd;           /* the files cache's backup, or -1 */
        size_t cached_files;
        uint64_t cached_bytes;
        pthread_t reader;
        bool reader_started;

        pthread_mutex_t lock;
        pthread_cond_t have_work, have_done, have_free, have_check;
        /* Slot sequence numbers: slots[i % n_slots]. tail <= work <= head <= tail + n_slots. */
        uint64_t head;          /* next to fill (reader) */
        uint64_t work;          /* next to compress */
        uint64_t tail;          /* next to hand out (consumer) */
        bool reader_done, stop;
        unsigned join_fallbacks;
};

unsigned deflate_pool_default_threads(void) {
        cpu_set_t set;
        long n;

        if (sched_getaffinity(0, sizeof(set), &set) >= 0)
                n = CPU_COUNT(&set);
        else
                n = sysconf(_SC_NPROCESSORS_ONLN);
        if (n < 1)
                n = 1;
        return (unsigned) MIN(n, (long) DEFLATE_POOL_MAX_THREADS);
}

static bool compresses(struct libdeflate_compressor *c, const void *data, size_t n, void *scratch, size_t cap) {
        size_t out;

        if (n < 64)
                return true;       /* too little to judge: deflate it */
        out = libdeflate_deflate_compress(c, data, n, scratch, cap);
        /* 0: did not fit in n bytes, so it does not compress at all */
        return out != 0 && out < n - n / 50;
}

int deflate_pool_sample_incompressible(DeflatePool *p, const void *data, size_t n) {
        _cleanup_free_ void *scratch = NULL;

        if (!p->sampler) {
                p->sampler = libdeflate_alloc_compressor(1);
                if (!p->sampler)
                        return -ENOMEM;
        }
        scratch = malloc(n ?: 1);
        if (!scratch)
                return -ENOMEM;
        return !compresses(p->sampler, data, n, scratch, n);
}

/* ---- compressor threads ---- */

/* Deflate stored blocks holding data as it is: for chunks that do not compress. Byte-aligned like every
 * chunk's start, so a non-final run needs no join. */
static size_t stored_blocks(const uint8_t *in, size_t n, bool last, uint8_t *out) {
        size_t o = 0;

        do {
                size_t k = MIN(n, (size_t) STORED_BLOCK_MAX);

                out[o++] = last && k == n ? 1 : 0;          /* BFINAL, BTYPE 00, padding */
                out[o++] = (uint8_t) (k & 0xffU);
                out[o++] = (uint8_t) (k >> 8);
                out[o++] = (uint8_t) (~k & 0xffU);
                out[o++] = (uint8_t) ((~k >> 8) & 0xffU);
                memcpy(out + o, in, k);
                o += k;
                in += k;
                n -= k;
        } while (n > 0);
        return o;
}

static void compress_chunk(Compressor *c, Slot *s) {
        DeflatePool *p = c->pool;
        PoolChunk *ch = &s->chunk;
        size_t n = ch->in_size, out = 0;
        int64_t joined;

        ch->crc = (uint32_t) libdeflate_crc32(0, s->in, n);
        /* A trial on the chunk's start saves deflating a large chunk that does not compress; small ones are
         * deflated at once (libdeflate stores what does not compress anyway). */
        if (n < 4 * SAMPLE_SIZE || compresses(c->trial, s->in, SAMPLE_SIZE, s->out, p->out_capacity))
                out = libdeflate_deflate_compress(c->main, s->in, n, s->out, p->out_capacity - DEFLATE_JOIN_SLACK);
        if (out == 0) {
                ch->data = s->out;
                ch->size = stored_blocks(s->in, n, ch->last, s->out);
                return;
        }
        if (!ch->last) {
                joined = deflate_join_prepare(s->out, out);
                if (joined < 0) {
                        __atomic_add_fetch(&p->join_fallbacks, 1, __ATOMIC_RELAXED);
                        out = stored_blocks(s->in, n, false, s->out);
                } else
                        out = (size_t) joined;
        }
        ch->data = s->out;
        ch->size = out;
}

static void *compressor_main(void *userdata) {
        Compressor *c = userdata;
        DeflatePool *p = c->pool;

        pthread_mutex_lock(&p->lock);
        for (;;) {
                Slot *s;

                if (p->work < p->tail)
                        p->work = p->tail;     /* stored chunks the consumer took already */
                while (!p->stop && p->work < p->head && p->slots[p->work % p->n_slots].state != SLOT_READY)
                        p->work++;      /* stored chunks are done already */
                if (p->stop)
                        break;
                if (p->work == p->head) {
                        pthread_cond_wait(&p->have_work, &p->lock);
                        continue;
                }
                s = &p->slots[p->work++ % p->n_slots];
                s->state = SLOT_BUSY;
                pthread_mutex_unlock(&p->lock);

                compress_chunk(c, s);

                pthread_mutex_lock(&p->lock);
                s->state = SLOT_DONE;
                pthread_cond_broadcast(&p->have_done);
        }
        pthread_mutex_unlock(&p->lock);
        return NULL;
}

static Slot *slot_acquire(DeflatePool *p) {
        Slot *s = NULL;

        pthread_mutex_lock(&p->lock);
        while (!p->stop && p->head - p->tail >= p->n_slots)
                pthread_cond_wait(&p->have_free, &p->lock);
        if (!p->stop)
                s = &p->slots[p->head % p->n_slots];
        pthread_mutex_unlock(&p->lock);
        return s;
}

static void slot_publish(DeflatePool *p, Slot *s, bool store) {
        pthread_mutex_lock(&p->lock);
        s->state = store ? SLOT_DONE : SLOT_READY;
        p->head++;
        pthread_cond_signal(store ? &p->have_done : &p->have_work);
        pthread_mutex_unlock(&p->lock);
}

/* ---- reusing the previous backup's data ---- */

#define VERIFY_BUFFER_SIZE (512U * 1024U)

static bool is_candidate(const DeflatePool *p, size_t index) {
        return p->reuse && p->files[index].reuse.index >= 0 && !p->files[index].store;
}

/* The CRC-32 of the whole file, if it is still a regular file of the expected size. */
static bool file_crc(const PoolFile *f, uint8_t *buf, size_t n, uint32_t *ret) {
        _cleanup_close_ int fd = -1;
        uint64_t offset = 0;
        uint32_t crc = 0;
        struct stat st;

        fd = open_no_symlinks(f->path, 0);
        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t) st.st_size != f->size)
                return false;
        while (offset < f->size) {
                size_t want = (size_t) MIN(f->size - offset, (uint64_t) n);
                ssize_t got = pread_full(fd, buf, want, offset);

                if (got != (ssize_t) want)
                        return false;
                crc = (uint32_t) libdeflate_crc32(crc, buf, want);
                offset += want;
        }
        if (f->size >= FADVISE_MIN_SIZE)
                (void) posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        *ret = crc;
        return true;
}

static void *verifier_main(void *userdata) {
        Verifier *v = userdata;
        DeflatePool *p = v->pool;

        for (;;) {
                ReuseCheck c = { .state = CHECK_REJECTED };
                const PoolFile *f;
                size_t i;

                pthread_mutex_lock(&p->lock);
                while (p->next_check < p->n_files && !is_candidate(p, p->next_check))
                        p->next_check++;
                if (p->stop || p->next_check >= p->n_files) {
                        pthread_mutex_unlock(&p->lock);
                        break;
                }
                i = p->next_check++;
                pthread_mutex_unlock(&p->lock);

                f = &p->files[i];
                if (file_crc(f, v->buf, VERIFY_BUFFER_SIZE, &c.crc) && c.crc == f->reuse.crc &&
                    reuse_reader_verify(v->reader, &f->reuse, v->buf, VERIFY_BUFFER_SIZE, &p->stop, &c.raw_crc) > 0)
                        c.state = CHECK_REUSE;

                pthread_mutex_lock(&p->lock);
                p->checks[i] = c;
                if (c.state == CHECK_REJECTED)
                        p->reuse_rejected++;
                pthread_cond_broadcast(&p->have_check);
                pthread_mutex_unlock(&p->lock);
        }
        return NULL;
}

/* The verdict on files[index], once a verifier has it; -1 when the pool is stopping. */
static int wait_check(DeflatePool *p, size_t index, ReuseCheck *ret) {
        int r = 0;

        pthread_mutex_lock(&p->lock);
        while (!p->stop && p->checks[index].state == CHECK_PENDING)
                pthread_cond_wait(&p->have_check, &p->lock);
        if (p->stop)
                r = -1;
        else
                *ret = p->checks[index];
        pthread_mutex_unlock(&p->lock);
        return r;
}

/* Hands out the previous backup's deflate data for a file that passed its check. Returns false when the
 * pool is stopping. */
/* One more file whose data was copied from the previous backup. Counted before its last chunk is handed
 * out: the consumer reads the counts after it. */
static void count_copied(DeflatePool *p, size_t *files, uint64_t *bytes, uint64_t size) {
        pthread_mutex_lock(&p->lock);
        (*files)++;
        *bytes += size;
        pthread_mutex_unlock(&p->lock);
}

static bool copy_reused(DeflatePool *p, size_t index, const ReuseCheck *c) {
        const PoolFile *f = &p->files[index];
        const ReuseEntry *e = &f->reuse;
        uint64_t copied = 0;
        uint32_t copy_crc = 0;
        bool last;
        int k;

        k = reuse_reader_open_raw(p->copier, e);
        do {
                Slot *s = slot_acquire(p);
                PoolStatus status = POOL_OK;
                ssize_t got = k;
                int error = 0;

                if (!s) {
                        reuse_reader_close_raw(p->copier);
                        return false;
                }
                if (k >= 0)
                        got = reuse_reader_read_raw(p->copier, s->in,
                                                    (size_t) MIN(e->comp_size - copied, (uint64_t) DEFLATE_POOL_CHUNK));
                if (got > 0) {
                        copy_crc = (uint32_t) libdeflate_crc32(copy_crc, s->in, (size_t) got);
                        copied += (uint64_t) got;
                }
                last = got <= 0 || copied == e->comp_size;
                /* The previous backup changed since it was checked: fail rather than write what was not. */
                if (got <= 0 || (last && copy_crc != c->raw_crc)) {
                        status = POOL_FAILED;
                        error = got < 0 ? (int) got : -EIO;
                        got = 0;
                }
                s->chunk = (PoolChunk) {
                        .file = index,
                        .data = s->in,
                        .size = (size_t) got,
                        .in_size = last ? f->size : 0,
                        .crc = last ? c->crc : 0,
                        .last = last,
                        .status = status,
                        .error = error,
                        .unchanged = last,
                };
                if (last && status == POOL_OK)
                        count_copied(p, &p->reused_files, &p->reused_bytes, f->size);
                slot_publish(p, s, true);
        } while (!last);
        reuse_reader_close_raw(p->copier);
        return true;
}

/* ---- copying through the files cache ---- */

#define LOCAL_HEADER_SIZE 30U
#define SIG_LOCAL_HEADER 0x04034b50U

/* Where the entry's data starts, if its local header is the one the cache describes; 0 if not. */
static uint64_t cached_data_offset(DeflatePool *p, const PoolFile *f, uint8_t *buf) {
        const FilesCacheEntry *e = &f->cache;
        size_t name_len = strlen(f->name);
        uint16_t flags;
        uint32_t csize;

        if (name_len > DEFLATE_POOL_CHUNK - LOCAL_HEADER_SIZE ||
            pread_full(p->cache_fd, buf, LOCAL_HEADER_SIZE + name_len, e->offset) !=
            (ssize_t) (LOCAL_HEADER_SIZE + name_len))
                return 0;
        flags = le16(buf + 6);
        csize = le32(buf + 18);
        if (le32(buf) != SIG_LOCAL_HEADER || (flags & 1) || le16(buf + 8) != e->method ||
            le16(buf + 26) != name_len || memcmp(buf + LOCAL_HEADER_SIZE, f->name, name_len) != 0)
                return 0;
        /* Without a data descriptor the header holds the CRC and the sizes too (ZIP64: all ones). */
        if (!(flags & 8) && (le32(buf + 14) != e->crc || (csize != 0xffffffffU && csize != e->comp_size)))
                return 0;
        return e->offset + LOCAL_HEADER_SIZE + name_len + le16(buf + 28);
}

/* Hands out the cached entry's data. 1: done; 0: its local header is not what the cache says, read the
 * file instead (nothing was handed out); -1: the pool is stopping. */
static int copy_cached(DeflatePool *p, size_t index) {
        const PoolFile *f = &p->files[index];
        const FilesCacheEntry *e = &f->cache;
        uint64_t copied = 0, data;
        uint32_t crc = 0;
        bool deflated = e->method == 8, last;
        Slot *s;

        s = slot_acquire(p);
        if (!s)
                return -1;
        data = cached_data_offset(p, f, s->in);
        if (data == 0)
                return 0;
        for (;;) {
                size_t want = (size_t) MIN(e->comp_size - copied, (uint64_t) DEFLATE_POOL_CHUNK);
                ssize_t got = pread_full(p->cache_fd, s->in, want, data + copied);
                PoolStatus status = POOL_OK;
                int error = 0;

                if (got > 0) {
                        crc = (uint32_t) libdeflate_crc32(crc, s->in, (size_t) got);
                        copied += (uint64_t) got;
                }
                last = got != (ssize_t) want || copied == e->comp_size;
                /* Its data is in the archive already: only the whole backup can start again. */
                if (got != (ssize_t) want || (last && crc != e->raw_crc)) {
                        status = POOL_FAILED;
                        error = -ESTALE;
                        got = 0;
                }
                s->chunk = (PoolChunk) {
                        .file = index,
                        .data = s->in,
                        .size = (size_t) got,
                        .in_size = deflated ? (last ? f->size : 0) : (size_t) got,
                        .crc = deflated && last ? e->crc : 0,
                        .last = last,
                        .status = status,
                        .error = error,
                        .unchanged = last,
                };
                if (last && status == POOL_OK)
                        count_copied(p, &p->cached_files, &p->cached_bytes, f->size);
                slot_publish(p, s, true);
                if (last)
                        break;
                s = slot_acquire(p);
                if (!s)
                        return -1;
        }
        /* Backups run beside a print: leave the page cache to OctoPrint. */
        if (e->comp_size >= FADVISE_MIN_SIZE)
                (void) posix_fadvise(p->cache_fd, (off_t) data, (off_t) e->comp_size, POSIX_FADV_DONTNEED);
        return 1;
}

/* ---- the reader thread ---- */

/* Returns false when the pool is stopping. */
static bool read_file(DeflatePool *p, size_t index) {
        const PoolFile *f = &p->files[index];
        _cleanup_close_ int fd = -1;
        PoolStatus status = POOL_OK;
        struct stat st;
        uint64_t offset = 0;
        int error = 0;
        bool last, unchanged = false;

        fd = open_no_symlinks(f->path, 0);
        if (fd == -ENOMEM || fd == -EMFILE || fd == -ENFILE) {
                status = POOL_FAILED;
                error = fd;
        } else if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                status = POOL_VANISHED;
        else {
                FileStamp now = file_stamp_from_stat(&st);

                /* What is read now is what the scan saw: the files cache may say so next time. */
                unchanged = file_stamp_eq(&now, &f->stamp);
                if (f->size >= FADVISE_MIN_SIZE)
                        (void) posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
        }

        do {
                Slot *s = slot_acquire(p);
                size_t want = 0;
                ssize_t got = 0;

                if (!s)
                        return false;
                if (status == POOL_OK) {
                        want = (size_t) MIN(f->size - offset, (uint64_t) DEFLATE_POOL_CHUNK);
                        got = pread_full(fd, s->in, want, offset);
                        if (got < 0) {
                                status = POOL_FAILED;
                                error = (int) got;
                                got = 0;
                        } else if ((size_t) got < want)
                                status = POOL_SHRANK;
                }
                offset += (uint64_t) got;
                last = status != POOL_OK || offset == f->size;
                s->chunk = (PoolChunk) {
                        .file = index,
                        .data = s->in,
                        .size = (size_t) got,
                        .in_size = (size_t) got,
                        .last = last,
                        .status = last ? status : POOL_OK,
                        .error = error,
                        .unchanged = last && unchanged,
                };
                /* Even an empty deflated file needs its (empty) deflate stream. */
                slot_publish(p, s, f->store || status == POOL_FAILED);
        } while (!last);

        /* Backups run beside a print: leave the page cache to OctoPrint. */
        if (fd >= 0 && f->size >= FADVISE_MIN_SIZE)
                (void) posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        return true;
}

static void *reader_main(void *userdata) {
        DeflatePool *p = userdata;

        for (size_t i = 0; i < p->n_files; i++) {
                ReuseCheck c;

                if (p->files[i].cached && p->cache_fd >= 0) {
                        int k = copy_cached(p, i);

                        if (k < 0)
                                break;
                        if (k > 0)
                                continue;
                }
                if (is_candidate(p, i)) {
                        if (wait_check(p, i, &c) < 0)
                                break;
                        if (c.state == CHECK_REUSE) {
                                if (!copy_reused(p, i, &c))
                                        break;
                                continue;
                        }
                }
                if (!read_file(p, i))
                        break;
        }
        pthread_mutex_lock(&p->lock);
        p->reader_done = true;
        pthread_cond_broadcast(&p->have_done);
        pthread_mutex_unlock(&p->lock);
        return NULL;
}

/* ---- the consumer ---- */

int deflate_pool_next(DeflatePool *p, const PoolChunk **ret) {
        Slot *s;

        pthread_mutex_lock(&p->lock);
        for (;;) {
                s = &p->slots[p->tail % p->n_slots];
                if (p->tail < p->head && s->state == SLOT_DONE)
                        break;
                if (p->tail == p->head && p->reader_done) {
                        pthread_mutex_unlock(&p->lock);
                        return -ENODATA;
                }
                pthread_cond_wait(&p->have_done, &p->lock);
        }
        pthread_mutex_unlock(&p->lock);
        *ret = &s->chunk;
        return 0;
}

void deflate_pool_release(DeflatePool *p) {
        pthread_mutex_lock(&p->lock);
        p->slots[p->tail % p->n_slots].state = SLOT_FREE;
        p->tail++;
        pthread_cond_signal(&p->have_free);
        pthread_mutex_unlock(&p->lock);
}

/* ---- set-up ---- */

int deflate_pool_new(int level, unsigned threads, DeflatePool **ret) {
        DeflatePool *p;

        if (level < 1 || level > 12)
                return -EINVAL;
        if (threads == 0)
                threads = deflate_pool_default_threads();
        threads = MIN(threads, DEFLATE_POOL_MAX_THREADS);

        p = calloc(1, sizeof(DeflatePool));
        if (!p)
                return -ENOMEM;
        p->level = level;
        p->cache_fd = -1;
        p->n_threads = threads;
        p->n_slots = 2 * threads + 2;
        pthread_mutex_init(&p->lock, NULL);
        pthread_cond_init(&p->have_work, NULL);
        pthread_cond_init(&p->have_done, NULL);
        pthread_cond_init(&p->have_free, NULL);
        pthread_cond_init(&p->have_check, NULL);
        p->slots = calloc(p->n_slots, sizeof(Slot));
        p->compressors = calloc(threads, sizeof(Compressor));
        if (!p->slots || !p->compressors)
                goto oom;
        for (unsigned i = 0; i < threads; i++) {
                Compressor *c = &p->compressors[i];

                c->pool = p;
                c->main = libdeflate_alloc_compressor(level);
                c->trial = libdeflate_alloc_compressor(1);
                if (!c->main || !c->trial)
                        goto oom;
                if (i == 0)
                        p->out_capacity = libdeflate_deflate_compress_bound(c->main, DEFLATE_POOL_CHUNK) +
                                          DEFLATE_JOIN_SLACK;
        }
        /* Stored blocks take 5 bytes per 64 KiB. */
        p->out_capacity = MAX(p->out_capacity, DEFLATE_POOL_CHUNK + 5 * (DEFLATE_POOL_CHUNK / STORED_BLOCK_MAX + 1));
        /* Untouched pages cost nothing: only the part of a buffer a chunk fills counts. */
        for (unsigned i = 0; i < p->n_slots; i++) {
                p->slots[i].in = malloc(DEFLATE_POOL_CHUNK);
                p->slots[i].out = malloc(p->out_capacity);
                if (!p->slots[i].in || !p->slots[i].out)
                        goto oom;
        }
        *ret = p;
        return 0;
oom:
        deflate_pool_free(p);
        return -ENOMEM;
}

/* One verifier a compressor thread, each with its own handle on the previous backup, as far as
 * REUSE_HANDLES_MEMORY allows: an archive of very many files gets fewer, or none (then nothing is reused).
 * The reader copies through the ReuseSource's own handle. If the previous backup cannot be opened again
 * (gone meanwhile), nothing is reused either. */
#define REUSE_HANDLES_MEMORY (32U * 1024U * 1024U)
#define REUSE_ENTRY_MEMORY 256U

static int reuse_start(DeflatePool *p, ReuseSource *reuse) {
        uint64_t per_handle = MAX(reuse_source_entries(reuse), (uint64_t) 1) * REUSE_ENTRY_MEMORY;
        unsigned n = (unsigned) MIN((uint64_t) p->n_threads, REUSE_HANDLES_MEMORY / per_handle);
        int k = 0;

        if (n == 0)
                return 0;
        p->checks = calloc(p->n_files ?: 1, sizeof(ReuseCheck));
        p->verifiers = calloc(n, sizeof(Verifier));
        if (!p->checks || !p->verifiers)
                return -ENOMEM;
        p->n_verifiers = n;
        p->copier = reuse_source_reader(reuse);
        for (unsigned i = 0; k >= 0 && i < n; i++) {
                Verifier *v = &p->verifiers[i];

                v->pool = p;
                v->buf = malloc(VERIFY_BUFFER_SIZE);
                k = v->buf ? reuse_reader_new(reuse, &v->reader) : -ENOMEM;
        }
        if (k == -ENOMEM)
                return k;
        if (k >= 0)
                p->reuse = reuse;
        return 0;
}

int deflate_pool_start(DeflatePool *p, const PoolFile *files, size_t n, ReuseSource *reuse) {
        sigset_t all, saved;
        int r = 0;

        if (p->reader_started)
                return -EBUSY;
        p->files = files;
        p->n_files = n;
        if (reuse) {
                r = reuse_start(p, reuse);
                if (r < 0)
                        return r;
        }
        /* Signals (SIGTERM: cancel) are for the thread that asks for chunks. */
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &saved);
        for (unsigned i = 0; i < p->n_threads && r == 0; i++) {
                r = -pthread_create(&p->compressors[i].thread, NULL, compressor_main, &p->compressors[i]);
                p->compressors[i].started = r == 0;
        }
        for (unsigned i = 0; p->reuse && i < p->n_verifiers && r == 0; i++) {
                r = -pthread_create(&p->verifiers[i].thread, NULL, verifier_main, &p->verifiers[i]);
                p->verifiers[i].started = r == 0;
        }
        if (r == 0) {
                r = -pthread_create(&p->reader, NULL, reader_main, p);
                p->reader_started = r == 0;
        }
        pthread_sigmask(SIG_SETMASK, &saved, NULL);
        return r;
}

void deflate_pool_reuse_stats(DeflatePool *p, size_t *ret_files, uint64_t *ret_bytes, size_t *ret_rejected) {
        /* Read once the consumer took the last chunk: the reader counted before handing it out. */
        pthread_mutex_lock(&p->lock);
        *ret_files = p->reused_files;
        *ret_bytes = p->reused_bytes;
        *ret_rejected = p->reuse_rejected;
        pthread_mutex_unlock(&p->lock);
}

void deflate_pool_set_files_cache(DeflatePool *p, int backup_fd) {
        p->cache_fd = backup_fd;
        /* Entries are copied in the order they lie in it: a long readahead. */
        if (backup_fd >= 0)
                (void) posix_fadvise(backup_fd, 0, 0, POSIX_FADV_SEQUENTIAL);
}

void deflate_pool_cache_stats(DeflatePool *p, size_t *ret_files, uint64_t *ret_bytes) {
        pthread_mutex_lock(&p->lock);
        *ret_files = p->cached_files;
        *ret_bytes = p->cached_bytes;
        pthread_mutex_unlock(&p->lock);
}

unsigned deflate_pool_join_fallbacks(DeflatePool *p) {
        return __atomic_load_n(&p->join_fallbacks, __ATOMIC_RELAXED);
}

DeflatePool *deflate_pool_free(DeflatePool *p) {
        if (!p)
                return NULL;
        pthread_mutex_lock(&p->lock);
        __atomic_store_n(&p->stop, true, __ATOMIC_RELAXED);    /* verifiers read it while inflating */
        pthread_cond_broadcast(&p->have_work);
        pthread_cond_broadcast(&p->have_free);
        pthread_cond_broadcast(&p->have_check);
        pthread_mutex_unlock(&p->lock);
        if (p->reader_started)
                pthread_join(p->reader, NULL);
        for (unsigned i = 0; i < p->n_verifiers; i++) {
                Verifier *v = &p->verifiers[i];

                if (v->started)
                        pthread_join(v->thread, NULL);
                reuse_reader_free(v->reader);
                free(v->buf);
        }
        free(p->verifiers);
        free(p->checks);
        for (unsigned i = 0; p->compressors && i < p->n_threads; i++) {
                Compressor *c = &p->compressors[i];

                if (c->started)
                        pthread_join(c->thread, NULL);
                libdeflate_free_compressor(c->main);
                libdeflate_free_compressor(c->trial);
        }
        for (unsigned i = 0; p->slots && i < p->n_slots; i++) {
                free(p->slots[i].in);
                free(p->slots[i].out);
        }
        libdeflate_free_compressor(p->sampler);
        pthread_cond_destroy(&p->have_work);
        pthread_cond_destroy(&p->have_done);
        pthread_cond_destroy(&p->have_free);
        pthread_cond_destroy(&p->have_check);
        pthread_mutex_destroy(&p->lock);
        free(p->slots);
        free(p->compressors);
        free(p);
        return NULL;
}
