/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <libdeflate.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <zlib.h>

#include "backup/deflate-pool.h"
#include "restore/restore-inflate.h"
#include "util.h"

/* inflate_piece() knows opbackup's pieces by their size. */
_Static_assert(ENTRY_READER_CHUNK == DEFLATE_POOL_CHUNK, "a backup's pieces are a restore's chunks");

/* Compressed input: a whole small entry (deflate adds at most 5 bytes a 64 KiB block to data it cannot
 * compress), or at least a piece of a large one's stream (inflate_piece()). */
#define IN_SIZE (ENTRY_READER_CHUNK + 64U * 1024U)
#define IN_SLACK 8U                     /* after IN_SIZE: room to close a piece (inflate_piece()) */
#define WINDOW_SIZE (32U * 1024U)       /* deflate's */

typedef struct Slot {
        uint8_t *data;                  /* ENTRY_READER_CHUNK bytes */
        size_t size;
        const ArchiveItem *item;
        bool first, last;
        bool open;                      /* the writer is to create the file for the lane */
        int fd;                         /* on the last piece of a file the lane wrote: the file */
        int error;                      /* < 0: the lane stopped here, message says why */
        char *message;                  /* NULL if writing failed */
} Slot;

typedef struct Lane {
        EntryReader *r;
        unsigned id;
        zip_t *zip;                     /* lanes but the first open their own when they start */
        bool own_zip;
        pthread_t thread;
        bool started, exited;
        pthread_cond_t emptied;         /* to the lane: the writer gave a slot back, or stop */
        pthread_cond_t attached;        /* to the lane: the writer created the file it asked for, or stop */
        Slot slots[ENTRY_READER_SLOTS];
        size_t tail, count;             /* published slots: [tail, tail + count), under the reader's lock */

        /* The thread's own. */
        struct libdeflate_decompressor *decompressor;
        z_stream z;
        bool z_ready;
        uint8_t *in;                    /* IN_SIZE + IN_SLACK bytes */
        uint8_t *window;                /* the last WINDOW_SIZE bytes of the previous piece */
        uint32_t crc;
        int fd;                         /* the file the lane writes itself, or -1 */
        bool direct;                    /* fd is O_DIRECT */
        int write_error;
} Lane;

struct EntryReader {
        const ArchiveItem *const *items;
        size_t n_items;
        int zip_fd;                     /* the caller's, for the lanes to open again */
        zip_int64_t n_entries;

        pthread_mutex_t lock;
        pthread_cond_t filled;          /* to the writer: a lane published a slot, or exited */
        size_t next_item;               /* the next entry a lane takes */
        size_t n_given;                 /* entries whose last piece the writer took */
        uint64_t written;               /* bytes the lanes wrote themselves (atomic) */
        bool stop, failed;
        Lane lanes[ENTRY_READER_LANES_MAX];
        unsigned n_lanes;
        Lane *held;                     /* the lane whose tail slot the writer holds */
        unsigned turn;                  /* the lane the writer looks at first */
};

/* ---- in a lane's thread ---- */

/* The lane's next free slot, emptied, or NULL when told to stop. */
static Slot *acquire(Lane *l, const ArchiveItem *it) {
        EntryReader *r = l->r;
        Slot *s;

        pthread_mutex_lock(&r->lock);
        while (l->count == ENTRY_READER_SLOTS && !r->stop)
                pthread_cond_wait(&l->emptied, &r->lock);
        s = r->stop ? NULL : &l->slots[(l->tail + l->count) % ENTRY_READER_SLOTS];
        pthread_mutex_unlock(&r->lock);
        if (s) {
                free(s->message);
                *s = (Slot) { .data = s->data, .item = it, .fd = -1 };
        }
        return s;
}

static void publish(Lane *l) {
        EntryReader *r = l->r;

        pthread_mutex_lock(&r->lock);
        l->count++;
        pthread_cond_signal(&r->filled);
        pthread_mutex_unlock(&r->lock);
}

/* Writes to the file the lane writes itself: whole aligned pieces with O_DIRECT (if the file is), the
 * tail of the last one through the page cache. A failure is the writer's to report (write_error). */
static int lane_write(Lane *l, const uint8_t *data, size_t size) {
        size_t n = size, aligned = l->direct ? n & ~(size_t) (ENTRY_READER_ALIGN - 1) : 0;

        while (aligned > 0) {
                ssize_t k = write(l->fd, data, aligned);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0 && errno != EINVAL)
                        return l->write_error = -errno;
                if (k <= 0 || (size_t) k % ENTRY_READER_ALIGN != 0) {
                        /* Not for O_DIRECT after all (an alignment this file system wants bigger). */
                        if (k > 0) {
                                data += k;
                                n -= (size_t) k;
                        }
                        break;
                }
                data += k;
                n -= (size_t) k;
                aligned -= (size_t) k;
        }
        if (n > 0 && l->direct) {
                int fl = fcntl(l->fd, F_GETFL);

                if (fl < 0 || fcntl(l->fd, F_SETFL, fl & ~O_DIRECT) < 0)
                        return l->write_error = -errno;
                l->direct = false;
        }
        if (write_all(l->fd, data, n) < 0)
                return l->write_error = -errno;
        __atomic_add_fetch(&l->r->written, (uint64_t) size, __ATOMIC_RELAXED);
        return 0;
}

/* A full slot: to the writer, or to the file if the lane writes it itself; *sp is then a slot to fill. */
static int pass_on(Lane *l, const ArchiveItem *it, Slot **sp) {
        if (l->fd >= 0) {
                int r = lane_write(l, (*sp)->data, (*sp)->size);

                (*sp)->size = 0;
                return r;
        }
        publish(l);
        *sp = acquire(l, it);
        return *sp ? 0 : -ECANCELED;
}

/* Asks the writer to create the file (the slot becomes the request) and waits for it: the lane writes
 * the data itself, so that large files go to the disk while the writer creates the small ones. *sp is
 * then a slot to fill. */
static int request_file(Lane *l, const ArchiveItem *it, Slot **sp) {
        EntryReader *r = l->r;

        (*sp)->open = true;
        publish(l);
        pthread_mutex_lock(&r->lock);
        while (l->fd < 0 && !r->stop)
                pthread_cond_wait(&l->attached, &r->lock);
        pthread_mutex_unlock(&r->lock);
        if (l->fd < 0)
                return -ECANCELED;
        *sp = acquire(l, it);
        return *sp ? 0 : -ECANCELED;
}

static int beyond(const ArchiveItem *it, char **ret_error) {
        char m[160];

        snprintf(m, sizeof(m), "inflates beyond its declared size of %llu bytes (the backup is damaged or hostile)",
                 (unsigned long long) it->size);
        return archive_refuse_entry(ret_error, it->name, m);
}

static int damaged(const ArchiveItem *it, const char *why, char **ret_error) {
        char m[200];

        snprintf(m, sizeof(m), "is damaged (%s)", why);
        return archive_refuse_entry(ret_error, it->name, m);
}

/* The checks at the end of an entry, as libzip makes them. */
static int check_end(Lane *l, const ArchiveItem *it, uint64_t total, char **ret_error) {
        if (total != it->size)
                return archive_refuse_entry(ret_error, it->name, "is shorter than its declared size (the backup is "
                                            "damaged)");
        if (l->crc != it->crc)
                return archive_refuse_entry(ret_error, it->name, "fails its CRC check (the backup is damaged)");
        return 0;
}

/* Reads up to n bytes (fewer only at the end of the entry's data). */
static int64_t read_full(zip_file_t *f, const ArchiveItem *it, uint8_t *buf, size_t n, char **ret_error) {
        size_t got = 0;

        while (got < n) {
                zip_int64_t k = zip_fread(f, buf + got, n - got);

                if (k < 0)
                        return archive_stream_error(ret_error, it, zip_file_get_error(f));
                if (k == 0)
                        break;
                got += (size_t) k;
        }
        return (int64_t) got;
}

/* A stored entry, copied in slot-sized pieces. libzip checks the CRC of data it reads as stored (its
 * CRC layer is there whenever the data read is the file's), and fails the read that reaches the end. */
static int read_stored(Lane *l, const ArchiveItem *it, zip_file_t *f, Slot **sp, char **ret_error) {
        Slot *s = *sp;
        uint64_t total = 0;

        for (;;) {
                int64_t n;

                if (s->size == ENTRY_READER_CHUNK) {
                        int r = pass_on(l, it, sp);

                        if (r < 0)
                                return r;
                        s = *sp;
                }
                n = read_full(f, it, s->data + s->size, ENTRY_READER_CHUNK - s->size, ret_error);
                if (n < 0)
                        return (int) n;
                if (n == 0)
                        break;
                if ((uint64_t) n > it->size - total)
                        return beyond(it, ret_error);
                s->size += (size_t) n;
                total += (uint64_t) n;
        }
        l->crc = it->crc;
        return check_end(l, it, total, ret_error);
}

/* The compressed input of a streamed entry is l->in[*pos, *end): moved to the front and topped up. */
static int refill(Lane *l, zip_file_t *f, const ArchiveItem *it, size_t *pos, size_t *end, bool *eof,
                  char **ret_error) {
        int64_t n;

        if (*pos > 0) {
                memmove(l->in, l->in + *pos, *end - *pos);
                *end -= *pos;
                *pos = 0;
        }
        if (*eof || *end == IN_SIZE)
                return 0;
        n = read_full(f, it, l->in + *end, IN_SIZE - *end, ret_error);
        if (n < 0)
                return (int) n;
        *eof = (size_t) n < IN_SIZE - *end;
        *end += (size_t) n;
        return 0;
}

/* The entries opbackup writes are pieces of ENTRY_READER_CHUNK bytes deflated each on its own
 * (deflate-pool.h), every piece but the last ending in an empty stored block (00 00 ff ff) on a byte
 * boundary. Such a piece followed by a final empty stored block is a complete stream, which libdeflate
 * inflates in one call, faster than zlib. Where a piece ends is guessed from the bytes, and the guess is
 * taken only if libdeflate makes exactly a piece's size from exactly those bytes: how the bits parse
 * does not depend on earlier output, so a continuous inflate reads the very same blocks, and a
 * back-reference to before the piece fails libdeflate. Returns 1 with the piece in s and *ret_used, or
 * 0: zlib goes on from here (archives from other tools, whose streams are one piece). */
static int inflate_piece(Lane *l, size_t pos, size_t end, bool eof, uint64_t remaining, Slot *s, size_t *ret_used) {
        static const uint8_t empty_final[5] = { 0x01, 0x00, 0x00, 0xff, 0xff };
        enum libdeflate_result res;
        size_t out = 0, used = 0;

        /* The last piece: the rest of the stream, which ends with its own final block. */
        if (remaining <= ENTRY_READER_CHUNK) {
                if (!eof)
                        return 0;
                res = libdeflate_deflate_decompress_ex(l->decompressor, l->in + pos, end - pos, s->data,
                                                       (size_t) remaining, &used, &out);
                if (res != LIBDEFLATE_SUCCESS || out != remaining)
                        return 0;
                s->size = out;
                *ret_used = end - pos;
                return 1;
        }
        /* A few guesses (stored data may hold the pattern), in the bytes at hand. */
        for (size_t guess = 0, from = pos; guess < 4; guess++) {
                const uint8_t *hit = memmem(l->in + from, end - from, "\0\0\xff\xff", 4);
                uint8_t saved[sizeof(empty_final)];
                size_t c;

                if (!hit)
                        return 0;
                c = (size_t) (hit - l->in) + 4;         /* where the piece ends */
                from = c - 3;
                /* A final empty block after it, in the slack after the buffer if need be. */
                memcpy(saved, l->in + c, sizeof(saved));
                memcpy(l->in + c, empty_final, sizeof(empty_final));
                res = libdeflate_deflate_decompress_ex(l->decompressor, l->in + pos, c + sizeof(empty_final) - pos,
                                                       s->data, ENTRY_READER_CHUNK, &used, &out);
                memcpy(l->in + c, saved, sizeof(saved));
                if (res == LIBDEFLATE_SUCCESS && out == ENTRY_READER_CHUNK && used == c + sizeof(empty_final) - pos) {
                        s->size = out;
                        *ret_used = c - pos;
                        return 1;
                }
        }
        return 0;
}

/* A deflated entry of any size, in slot-sized pieces: opbackup's pieces with libdeflate while they come,
 * the rest through zlib. Output is capped at the declared size: one byte more is a refusal, wherever the
 * stream stands. */
static int read_deflated_stream(Lane *l, const ArchiveItem *it, zip_file_t *f, Slot **sp, char **ret_error) {
        Slot *s = *sp;
        uint64_t total = 0;
        size_t pos = 0, end = 0;
        bool eof = false;
        int ret;

        for (;;) {
                size_t used;

                ret = refill(l, f, it, &pos, &end, &eof, ret_error);
                if (ret < 0)
                        return ret;
                if (s->size == ENTRY_READER_CHUNK) {
                        /* zlib's dictionary, should it have to take over after this piece. */
                        memcpy(l->window, s->data + ENTRY_READER_CHUNK - WINDOW_SIZE, WINDOW_SIZE);
                        ret = pass_on(l, it, sp);
                        if (ret < 0)
                                return ret;
                        s = *sp;
                }
                if (inflate_piece(l, pos, end, eof, it->size - total, s, &used) <= 0)
                        break;
                l->crc = (uint32_t) libdeflate_crc32(l->crc, s->data, s->size);
                total += s->size;
                pos += used;
                if (total == it->size)
                        return check_end(l, it, total, ret_error);
        }

        /* zlib, from the start or from the end of the last piece (a block boundary on a byte boundary). */
        if (!l->z_ready) {
                if (inflateInit2(&l->z, -MAX_WBITS) != Z_OK)
                        return -ENOMEM;
                l->z_ready = true;
        } else if (inflateReset(&l->z) != Z_OK)
                return -ENOMEM;
        if (total > 0 && inflateSetDictionary(&l->z, l->window, WINDOW_SIZE) != Z_OK)
                return -ENOMEM;
        l->z.next_in = l->in + pos;
        l->z.avail_in = (uInt) (end - pos);

        for (;;) {
                uint64_t allowed = it->size - total;
                uint8_t extra;
                size_t room, made;

                if (l->z.avail_in == 0 && !eof) {
                        pos = end = 0;
                        ret = refill(l, f, it, &pos, &end, &eof, ret_error);
                        if (ret < 0)
                                return ret;
                        l->z.next_in = l->in;
                        l->z.avail_in = (uInt) end;
                }
                if (s->size == ENTRY_READER_CHUNK) {
                        ret = pass_on(l, it, sp);
                        if (ret < 0)
                                return ret;
                        s = *sp;
                }
                /* At the declared size: one byte of room, to see whether the stream ends there. */
                room = ENTRY_READER_CHUNK - s->size;
                if (allowed < room)
                        room = (size_t) allowed;
                l->z.next_out = room > 0 ? s->data + s->size : &extra;
                l->z.avail_out = room > 0 ? (uInt) room : 1;
                ret = inflate(&l->z, Z_NO_FLUSH);
                made = (room > 0 ? room : 1) - l->z.avail_out;
                if (room == 0 && made > 0)
                        return beyond(it, ret_error);
                l->crc = (uint32_t) libdeflate_crc32(l->crc, s->data + s->size, made);
                s->size += made;
                total += made;
                if (ret == Z_STREAM_END)
                        break;
                if (ret == Z_BUF_ERROR && eof && l->z.avail_in == 0)
                        return damaged(it, "the compressed data ends early", ret_error);
                if (ret != Z_OK && ret != Z_BUF_ERROR) {
                        char why[80];

                        if (ret == Z_MEM_ERROR)
                                return -ENOMEM;
                        /* libzip's words, so that the message does not depend on the path taken. */
                        snprintf(why, sizeof(why), "Zlib error: %s", zError(ret));
                        return damaged(it, why, ret_error);
                }
        }
        return check_end(l, it, total, ret_error);
}

/* A deflated entry that fits a slot: read whole and inflated in one call. Data libdeflate refuses goes
 * through zlib again from the start, so that the message says what zlib sees (and what zlib accepts,
 * as it always did, is accepted). */
static int read_deflated_small(Lane *l, const ArchiveItem *it, Slot **sp, char **ret_error) {
        enum libdeflate_result res;
        zip_file_t *f;
        size_t out = 0;
        int64_t n;
        int ret;

        f = zip_fopen_index(l->zip, it->index, ZIP_FL_COMPRESSED);
        if (!f)
                return archive_stream_error(ret_error, it, zip_get_error(l->zip));
        n = read_full(f, it, l->in, (size_t) it->comp_size, ret_error);
        zip_fclose(f);
        if (n < 0)
                return (int) n;
        res = libdeflate_deflate_decompress_ex(l->decompressor, l->in, (size_t) n, (*sp)->data, (size_t) it->size,
                                               NULL, &out);
        if (res == LIBDEFLATE_INSUFFICIENT_SPACE)
                return beyond(it, ret_error);
        if (res != LIBDEFLATE_SUCCESS) {
                f = zip_fopen_index(l->zip, it->index, ZIP_FL_COMPRESSED);
                if (!f)
                        return archive_stream_error(ret_error, it, zip_get_error(l->zip));
                (*sp)->size = 0;
                l->crc = 0;
                ret = read_deflated_stream(l, it, f, sp, ret_error);
                zip_fclose(f);
                return ret;
        }
        (*sp)->size = out;
        l->crc = (uint32_t) libdeflate_crc32(0, (*sp)->data, out);
        return check_end(l, it, out, ret_error);
}

static int read_item(Lane *l, const ArchiveItem *it, Slot **sp, char **ret_error) {
        zip_file_t *f;
        int ret;

        l->crc = 0;
        if (it->size >= ENTRY_READER_DIRECT_MIN) {
                ret = request_file(l, it, sp);
                if (ret < 0)
                        return ret;
        }
        if (it->deflated && it->size <= ENTRY_READER_CHUNK && it->comp_size <= IN_SIZE)
                return read_deflated_small(l, it, sp, ret_error);
        f = zip_fopen_index(l->zip, it->index, ZIP_FL_COMPRESSED);
        if (!f)
                return archive_stream_error(ret_error, it, zip_get_error(l->zip));
        ret = it->deflated ? read_deflated_stream(l, it, f, sp, ret_error) : read_stored(l, it, f, sp, ret_error);
        zip_fclose(f);
        return ret;
}

/* Takes the next entry not taken yet, or NULL. */
static const ArchiveItem *take_item(EntryReader *r) {
        const ArchiveItem *it = NULL;

        pthread_mutex_lock(&r->lock);
        if (!r->stop && !r->failed && r->next_item < r->n_items)
                it = r->items[r->next_item++];
        pthread_mutex_unlock(&r->lock);
        return it;
}

/* The archive again, on a file description of its own (not a dup(), which would share the offset libzip
 * seeks). The entries are the plan's only if it is the same file with as many entries; what a lane
 * reads is checked against the plan's sizes and CRCs anyway. */
static int reopen_zip(int zip_fd, zip_int64_t n_entries, zip_t **ret) {
        char path[64];
        struct stat a, b;
        zip_t *z;
        int fd, zerr = 0;

        snprintf(path, sizeof(path), "/proc/self/fd/%d", zip_fd);
        fd = open(path, O_RDONLY | O_NOCTTY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fstat(zip_fd, &a) < 0 || fstat(fd, &b) < 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
                close(fd);
                return -ESTALE;
        }
        z = zip_fdopen(fd, ZIP_RDONLY, &zerr);
        if (!z) {
                close(fd);
                return -EIO;
        }
        if (zip_get_num_entries(z, 0) != n_entries) {
                zip_discard(z);
                return -ESTALE;
        }
        *ret = z;
        return 0;
}

/* Takes entries and hands out their pieces until there are no more, or one fails, or stop. */
static void lane_run(Lane *l) {
        EntryReader *r = l->r;

        for (;;) {
                const ArchiveItem *it;
                char *message = NULL;
                Slot *s;
                int ret;

                /* A free slot before the entry: an entry is taken only when it can be started. */
                s = acquire(l, NULL);
                if (!s)
                        return;
                it = take_item(r);
                if (!it)
                        return;
                s->item = it;
                s->first = true;
                ret = read_item(l, it, &s, &message);
                /* A file the lane wrote: the rest of it, and the file back to the writer. */
                if (ret >= 0 && l->fd >= 0)
                        ret = lane_write(l, s->data, s->size);
                if (ret == -ECANCELED && !l->write_error) {
                        free(message);
                        return;
                }
                if (ret < 0) {
                        if (!s) {
                                free(message);
                                return;
                        }
                        s->error = l->write_error ?: ret;
                        s->message = message;
                        pthread_mutex_lock(&r->lock);
                        r->failed = true;
                        pthread_mutex_unlock(&r->lock);
                        publish(l);
                        return;
                }
                if (l->fd >= 0) {
                        s->size = 0;
                        s->fd = TAKE_FD(l->fd);
                }
                s->last = true;
                publish(l);
        }
}

static void *lane_thread(void *userdata) {
        Lane *l = userdata;
        EntryReader *r = l->r;

        /* Where the archive cannot be opened again, the other lanes take everything. */
        if (!l->zip && reopen_zip(r->zip_fd, r->n_entries, &l->zip) >= 0)
                l->own_zip = true;
        if (l->zip)
                lane_run(l);
        pthread_mutex_lock(&r->lock);
        l->exited = true;
        pthread_cond_signal(&r->filled);
        pthread_mutex_unlock(&r->lock);
        return NULL;
}

/* ---- in the writer ---- */

static unsigned cpus(void) {
        cpu_set_t set;
        int n;

        if (sched_getaffinity(0, sizeof(set), &set) < 0)
                return 1;
        n = CPU_COUNT(&set);
        return n < 1 ? 1 : (unsigned) n;
}

static int lane_init(EntryReader *r, unsigned id, zip_t *zip) {
        Lane *l = &r->lanes[id];

        *l = (Lane) { .r = r, .id = id, .zip = zip, .fd = -1 };
        pthread_cond_init(&l->emptied, NULL);
        pthread_cond_init(&l->attached, NULL);
        r->n_lanes++;
        l->decompressor = libdeflate_alloc_decompressor();
        l->in = calloc(1, IN_SIZE + IN_SLACK);
        l->window = malloc(WINDOW_SIZE);
        if (!l->decompressor || !l->in || !l->window)
                return -ENOMEM;
        for (size_t i = 0; i < ENTRY_READER_SLOTS; i++)
                l->slots[i].fd = -1;
        for (size_t i = 0; i < ENTRY_READER_SLOTS; i++)
                /* Aligned for O_DIRECT writes. */
                if (posix_memalign((void **) &l->slots[i].data, ENTRY_READER_ALIGN, ENTRY_READER_CHUNK) != 0) {
                        l->slots[i].data = NULL;
                        return -ENOMEM;
                }
        return 0;
}

int entry_reader_start(zip_t *zip, int zip_fd, const ArchiveItem *const *items, size_t n, EntryReader **ret) {
        unsigned want = cpus();
        sigset_t all, saved;
        EntryReader *r;
        int k = 0;

        r = calloc(1, sizeof(EntryReader));
        if (!r)
                return -ENOMEM;
        *r = (EntryReader) {
                .items = items,
                .n_items = n,
                .zip_fd = zip_fd,
                .n_entries = zip_get_num_entries(zip, 0),
        };
        pthread_mutex_init(&r->lock, NULL);
        {
                pthread_condattr_t a;

                pthread_condattr_init(&a);
                pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
                pthread_cond_init(&r->filled, &a);
                pthread_condattr_destroy(&a);
        }
        if (want > ENTRY_READER_LANES_MAX)
                want = ENTRY_READER_LANES_MAX;
        /* More lanes than entries would only open the archive for nothing. */
        if (want > n)
                want = n > 0 ? (unsigned) n : 1;
        for (unsigned id = 0; k >= 0 && id < want; id++)
                k = lane_init(r, id, id == 0 ? zip : NULL);
        if (k < 0) {
                entry_reader_free(r);
                return k;
        }

        /* Signals are the main thread's business (a worker is canceled with SIGTERM). */
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &saved);
        for (unsigned id = 0; id < r->n_lanes; id++) {
                k = pthread_create(&r->lanes[id].thread, NULL, lane_thread, &r->lanes[id]);
                if (k != 0)
                        break;
                r->lanes[id].started = true;
        }
        pthread_sigmask(SIG_SETMASK, &saved, NULL);
        if (!r->lanes[0].started) {
                entry_reader_free(r);
                return -k;
        }
        /* A lane whose thread did not start takes nothing; the others take everything. */
        pthread_mutex_lock(&r->lock);
        for (unsigned id = 0; id < r->n_lanes; id++)
                if (!r->lanes[id].started)
                        r->lanes[id].exited = true;
        pthread_mutex_unlock(&r->lock);
        *ret = r;
        return 0;
}

int entry_reader_next(EntryReader *r, EntryPiece *ret, char **ret_error) {
        struct timespec deadline;
        Lane *l = NULL;
        Slot *s;

        *ret = (EntryPiece) { .fd = -1 };
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_nsec += ENTRY_READER_TICK_USEC * 1000L;
        if (deadline.tv_nsec >= 1000000000L) {
                deadline.tv_sec++;
                deadline.tv_nsec -= 1000000000L;
        }

        pthread_mutex_lock(&r->lock);
        if (r->held) {
                Lane *h = r->held;

                if (h->slots[h->tail].last)
                        r->n_given++;
                h->tail = (h->tail + 1) % ENTRY_READER_SLOTS;
                h->count--;
                r->held = NULL;
                pthread_cond_signal(&h->emptied);
        }
        for (;;) {
                bool running = false;

                if (r->n_given == r->n_items) {
                        pthread_mutex_unlock(&r->lock);
                        return 0;
                }
                for (unsigned k = 0; k < r->n_lanes && !l; k++) {
                        Lane *c = &r->lanes[(r->turn + k) % r->n_lanes];

                        if (c->count > 0)
                                l = c;
                        running = running || !c->exited;
                }
                if (l)
                        break;
                if (!running) {
                        /* Cannot happen: every entry taken is finished or fails. */
                        pthread_mutex_unlock(&r->lock);
                        *ret_error = strdup("Extracting the backup failed: its reader threads stopped early");
                        return *ret_error ? -EPROTO : -ENOMEM;
                }
                if (pthread_cond_timedwait(&r->filled, &r->lock, &deadline) == ETIMEDOUT) {
                        pthread_mutex_unlock(&r->lock);
                        return 2;
                }
        }
        s = &l->slots[l->tail];
        r->held = l;
        r->turn = (l->id + 1) % r->n_lanes;
        pthread_mutex_unlock(&r->lock);

        *ret = (EntryPiece) {
                .lane = l->id,
                .item = s->item,
                .data = s->data,
                .size = s->size,
                .first = s->first,
                .last = s->last,
                .open = s->open,
                .fd = TAKE_FD(s->fd),
        };
        if (s->error < 0) {
                *ret_error = TAKE_PTR(s->message);
                return s->error;
        }
        return 1;
}

uint64_t entry_reader_written(EntryReader *r) {
        return __atomic_load_n(&r->written, __ATOMIC_RELAXED);
}

void entry_reader_attach(EntryReader *r, const EntryPiece *piece, int fd, bool direct) {
        Lane *l = &r->lanes[piece->lane];

        pthread_mutex_lock(&r->lock);
        l->fd = fd;
        l->direct = direct;
        pthread_cond_signal(&l->attached);
        pthread_mutex_unlock(&r->lock);
}

void entry_reader_free(EntryReader *r) {
        if (!r)
                return;
        pthread_mutex_lock(&r->lock);
        r->stop = true;
        for (unsigned id = 0; id < r->n_lanes; id++) {
                pthread_cond_broadcast(&r->lanes[id].emptied);
                pthread_cond_broadcast(&r->lanes[id].attached);
        }
        pthread_mutex_unlock(&r->lock);
        for (unsigned id = 0; id < r->n_lanes; id++) {
                Lane *l = &r->lanes[id];

                if (l->started)
                        (void) pthread_join(l->thread, NULL);
                for (size_t i = 0; i < ENTRY_READER_SLOTS; i++) {
                        free(l->slots[i].data);
                        free(l->slots[i].message);
                        /* A file finished but not taken back. */
                        if (l->slots[i].fd >= 0)
                                close(l->slots[i].fd);
                }
                if (l->fd >= 0)
                        close(l->fd);
                if (l->z_ready)
                        inflateEnd(&l->z);
                if (l->decompressor)
                        libdeflate_free_decompressor(l->decompressor);
                free(l->in);
                free(l->window);
                if (l->own_zip)
                        zip_discard(l->zip);
                pthread_cond_destroy(&l->emptied);
                pthread_cond_destroy(&l->attached);
        }
        pthread_cond_destroy(&r->filled);
        pthread_mutex_destroy(&r->lock);
        free(r);
}
