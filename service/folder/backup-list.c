/* SPDX-License-Identifier: GPL-2.0-or-later */

/* ListBackups: the valid backups in an instance's backup folder.
 *
 * A worker, as the instance user, lists the folder, lstat()s the names the daemon's cache knows and reads
 * only the backups it does not know by name, size, mtime, ctime, inode and device (backup-metadata.h: the
 * central directory and metadata.json, without libzip). It sends what it finds in frames of at most
 * FRAME_ROWS rows (worker.h), so neither it nor the daemon holds the whole answer as text, whatever the
 * number of backups, and the daemon answers other callers between frames. A frame is
 * {"rows": TEXT, "read": [...]}: one line per backup, "NAME SIZE MTIME CTIME INODE DEVICE READ", where READ
 * is "-" for a backup the cache knows, or the index of what was read in the frame's "read" (null: not an
 * OctoPrint backup; else [uncompressed size, version, [excludes]]). The answer at the end is {"rows": N},
 * or {"unchanged": true} when the worker found exactly the backups of the cache, unchanged, and sent
 * nothing. The cache starts from the file of backup-list-cache.h and goes back to it when it changed.
 *
 * What the worker says of the user's files is only what the user could have put in them anyway; the
 * daemon still checks every row it parses (names, numbers, indices), and bounds their number and size. */

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>

#include "errors.h"
#include "folder/backup-folder.h"
#include "folder/backup-list-cache.h"
#include "folder/backup-list.h"
#include "folder/backup-metadata.h"
#include "instance/instance.h"
#include "log.h"
#include "names.h"
#include "util.h"
#include "worker/worker.h"

#define BACKUPS_MAX 100000U             /* files of the folder considered (opbackupd(8)) */
#define LIST_TIMEOUT_SEC 120U           /* without a frame: each one gives the worker this again */
#define FRAME_ROWS 1000U
#define VERSION_LISTED_MAX 64U          /* longer: not an OctoPrint backup */
#define EXCLUDES_LISTED_MAX 256U        /* bytes of all excludes together, the same */
#define REPLY_MAX (24U * 1024U * 1024U) /* the bus carries 32 MiB at most */

void backup_entry_done(BackupEntry *e) {
        free(e->name);
        free(e->version);
        strv_free(e->excludes);
        *e = (BackupEntry) {};
}

void backup_cache_done(BackupCache *c) {
        uint64_t generation = c->generation;

        for (size_t k = 0; k < c->n; k++)
                backup_entry_done(&c->entries[k]);
        free(c->entries);
        free(c->by_name);
        *c = (BackupCache) { .generation = generation + 1 };
}

/* The entry named name, or NULL: a binary search in by_name, so a listing is O(n log n), not O(n²). */
static BackupEntry *cache_find_name(const BackupCache *c, const char *name) {
        size_t lo = 0, hi = c->by_name ? c->n : 0;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int d = strcmp(name, c->by_name[mid]->name);

                if (d == 0)
                        return c->by_name[mid];
                if (d < 0)
                        hi = mid;
                else
                        lo = mid + 1;
        }
        return NULL;
}

typedef struct Key {
        uint64_t size;
        int64_t mtime_nsec, ctime_nsec;
        uint64_t ino, dev;
} Key;

static Key key_of_stat(const struct stat *st) {
        return (Key) {
                .size = (uint64_t) st->st_size,
                .mtime_nsec = (int64_t) st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec,
                .ctime_nsec = (int64_t) st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec,
                .ino = (uint64_t) st->st_ino,
                .dev = (uint64_t) st->st_dev,
        };
}

static bool entry_has_key(const BackupEntry *e, const Key *k) {
        return e->size == k->size && e->mtime_nsec == k->mtime_nsec && e->ctime_nsec == k->ctime_nsec &&
               e->ino == k->ino && e->dev == k->dev;
}

static BackupEntry *cache_find(const BackupCache *c, const char *name, const Key *k) {
        BackupEntry *e = cache_find_name(c, name);

        return e && entry_has_key(e, k) ? e : NULL;
}

void backup_cache_forget(BackupCache *c, const char *name) {
        BackupEntry *e = cache_find_name(c, name);

        if (e)
                e->size = UINT64_MAX;   /* never matches again */
        c->generation++;
}

static int compare_by_name(const void *a, const void *b) {
        return strcmp((*(BackupEntry *const *) a)->name, (*(BackupEntry *const *) b)->name);
}

static int compare_newest_first(const void *a, const void *b) {
        const BackupEntry *x = a, *y = b;

        if (x->mtime_nsec != y->mtime_nsec)
                return x->mtime_nsec < y->mtime_nsec ? 1 : -1;
        return strcmp(y->name, x->name);
}

/* Sorts the entries newest first and indexes them by name; two entries of one name are a damaged cache. */
static int cache_index(BackupCache *c) {
        qsort(c->entries, c->n, sizeof(BackupEntry), compare_newest_first);
        free(c->by_name);
        c->by_name = malloc((c->n ?: 1) * sizeof(BackupEntry *));
        if (!c->by_name)
                return -ENOMEM;
        for (size_t k = 0; k < c->n; k++)
                c->by_name[k] = &c->entries[k];
        qsort(c->by_name, c->n, sizeof(BackupEntry *), compare_by_name);
        for (size_t k = 1; k < c->n; k++)
                if (streq(c->by_name[k - 1]->name, c->by_name[k]->name))
                        return -EBADMSG;
        return 0;
}

/* ---- In the worker, as the instance user. The cache it consults is the daemon's, copied by fork(). ---- */

typedef struct ListTask {
        Instance *instance;
        const BackupCache *cache;
        int dir_fd;
        unsigned n_rows;
        bool *seen;                     /* cache entries found unchanged */
        unsigned n_seen;
        bool sent;                      /* frames went out */
        /* the frame being made */
        char *text;
        size_t text_size;
        FILE *rows;
        unsigned frame_rows;
        json_object *read;              /* what was read from backups the cache does not know */
} ListTask;

static int frame_open(ListTask *t) {
        t->rows = open_memstream(&t->text, &t->text_size);
        t->read = json_object_new_array();
        t->frame_rows = 0;
        return t->rows && t->read ? 0 : -ENOMEM;
}

static void frame_close(ListTask *t) {
        if (t->rows)
                fclose(t->rows);
        t->rows = NULL;
        free(t->text);
        t->text = NULL;
        json_object_put(t->read);
        t->read = NULL;
}

static int frame_send(ListTask *t) {
        json_object *o;
        int r;

        if (fclose(t->rows) != 0) {
                t->rows = NULL;
                return -ENOMEM;
        }
        t->rows = NULL;
        o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "rows", json_object_new_string_len(strempty(t->text), t->text_size));
        json_object_object_add(o, "read", TAKE_PTR(t->read));
        r = worker_send_frame(o);
        json_object_put(o);
        frame_close(t);
        if (r < 0)
                return r;
        t->sent = true;
        return frame_open(t);
}

static int row_add(ListTask *t, const char *name, const Key *k, long read) {
        fprintf(t->rows, "%s %" PRIu64 " %" PRId64 " %" PRId64 " %" PRIu64 " %" PRIu64, name, k->size,
                k->mtime_nsec, k->ctime_nsec, k->ino, k->dev);
        if (read < 0)
                fputs(" -\n", t->rows);
        else
                fprintf(t->rows, " %ld\n", read);
        return ++t->frame_rows >= FRAME_ROWS ? frame_send(t) : 0;
}

/* What the listing shows of info, or NULL when it is more than any OctoPrint backup has. */
static json_object *info_json(const BackupInfo *info) {
        json_object *o, *ex;
        size_t total = 0;

        if (strlen(info->version) > VERSION_LISTED_MAX)
                return NULL;
        STRV_FOREACH(e, info->excludes)
                total += strlen(*e) + 1;
        if (total > EXCLUDES_LISTED_MAX)
                return NULL;
        o = json_object_new_array_ext(3);
        ex = json_object_new_array_ext(strv_length(info->excludes));
        STRV_FOREACH(e, info->excludes)
                json_object_array_add(ex, json_object_new_string(*e));
        json_object_array_add(o, json_object_new_uint64(info->uncompressed));
        json_object_array_add(o, json_object_new_string(info->version));
        json_object_array_add(o, ex);
        return o;
}

/* A backup the cache does not know: opened (not following symlinks) and read. One that cannot be opened
 * is listed as no backup if it is a regular file, and skipped if it is not one. */
static int list_read(ListTask *t, const char *name) {
        _cleanup_(backup_info_done) BackupInfo info = {};
        _cleanup_free_ char *why = NULL;
        _cleanup_close_ int fd = -1;
        json_object *o = NULL;
        struct stat st;
        Key k;
        int r;

        r = backup_open_at_stat(t->dir_fd, name, &fd, &st);
        if (r < 0 && (fstatat(t->dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode)))
                return 0;
        if (r >= 0) {
                r = backup_metadata_read(fd, st.st_size, &info, &why);
                if (r == -ENOMEM)
                        return r;
                if (r >= 0)
                        o = info_json(&info);
        }
        k = key_of_stat(&st);
        json_object_array_add(t->read, o);
        t->n_rows++;
        return row_add(t, name, &k, (long) json_object_array_length(t->read) - 1);
}

static int list_entry(ListTask *t, const char *name) {
        const BackupEntry *c;
        struct stat st;
        Key k;
        size_t i;

        /* A name the cache does not know is read at once, without a stat of its own. */
        c = cache_find_name(t->cache, name);
        if (!c)
                return 1;
        if (fstatat(t->dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
                return 0;
        k = key_of_stat(&st);
        if (!entry_has_key(c, &k))
                return 1;
        i = c - t->cache->entries;
        if (t->seen[i])         /* readdir() may return a name twice while the folder changes */
                return 0;
        t->seen[i] = true;     /* its row is sent at the end, if one is needed at all */
        t->n_seen++;
        t->n_rows++;
        return 0;
}

static int list_folder(ListTask *t, DIR *dir) {
        struct dirent *de;
        int r;

        while ((de = readdir(dir)) && t->n_rows < BACKUPS_MAX) {
                if (!backup_name_is_valid(de->d_name))   /* hidden files, temp files, other files */
                        continue;
                if (de->d_type != DT_REG && de->d_type != DT_UNKNOWN)
                        continue;
                r = list_entry(t, de->d_name);
                if (r > 0)
                        r = list_read(t, de->d_name);
                if (r < 0)
                        return r;
        }
        return 0;
}

static void list_task_done(ListTask *t) {
        frame_close(t);
        free(t->seen);
}

static int list_task(void *userdata, json_object **ret_json, int *ret_fd) {
        _cleanup_(list_task_done) ListTask t = { .instance = userdata };
        _cleanup_close_ int dir_fd = -1;
        json_object *o;
        DIR *dir;
        int r;

        t.cache = &t.instance->backup_cache;
        t.seen = calloc(t.cache->n ?: 1, sizeof(bool));
        if (!t.seen || frame_open(&t) < 0)
                return -ENOMEM;

        r = backup_folder_open(t.instance->backup_folder, &dir_fd);
        if (r < 0 && r != -ENOENT) {
                *ret_json = worker_error("Cannot open the backup folder %s: %s", t.instance->backup_folder,
                                         strerror(-r));
                return 0;
        }
        if (dir_fd >= 0) {
                t.dir_fd = dir_fd;
                r = opendir_fd(dir_fd, &dir);
                if (r < 0)
                        return r;
                r = list_folder(&t, dir);
                closedir(dir);
                if (r < 0)
                        return r;
        }
        o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        if (!t.sent && t.frame_rows == 0 && t.n_seen == t.cache->n) {
                /* What a listing mostly finds: the backups of the cache, unchanged. */
                json_object_object_add(o, "unchanged", json_object_new_boolean(true));
                *ret_json = o;
                return 0;
        }
        for (size_t k = 0; k < t.cache->n && r >= 0; k++)
                if (t.seen[k]) {
                        const BackupEntry *e = &t.cache->entries[k];
                        Key key = { e->size, e->mtime_nsec, e->ctime_nsec, e->ino, e->dev };

                        r = row_add(&t, e->name, &key, -1);
                }
        if (r >= 0 && t.frame_rows > 0)
                r = frame_send(&t);
        if (r < 0) {
                json_object_put(o);
                return r;
        }
        json_object_object_add(o, "rows", json_object_new_uint64(t.n_rows));
        *ret_json = o;
        return 0;
}

/* ---- In the daemon: the worker's frames make the new cache. ---- */

typedef struct Row {
        char name[BACKUP_NAME_MAX + 1];
        Key key;
        long read;                      /* index in the "read" array, or -1: the cache knows it */
} Row;

static int parse_number(const char **p, bool is_signed, uint64_t *ret) {
        const char *s = *p;
        char *end;

        errno = 0;
        if (is_signed)
                *ret = (uint64_t) strtoll(s, &end, 10);
        else
                *ret = strtoull(s, &end, 10);
        if (errno != 0 || *end != ' ' || end == s || (!is_signed && !(*s >= '0' && *s <= '9')))
                return -EBADMSG;
        *p = end + 1;
        return 0;
}

/* Parses the row "NAME SIZE MTIME CTIME INODE DEVICE READ\n" at *p and moves *p past it. */
static int row_parse(const char **p, Row *ret) {
        const char *s = *p, *space = strchr(s, ' ');
        uint64_t mtime, ctime;
        char *end;

        if (!space || (size_t) (space - s) > BACKUP_NAME_MAX)
                return -EBADMSG;
        memcpy(ret->name, s, space - s);
        ret->name[space - s] = 0;
        if (!backup_name_is_valid(ret->name))
                return -EBADMSG;
        s = space + 1;
        if (parse_number(&s, false, &ret->key.size) < 0 || parse_number(&s, true, &mtime) < 0 ||
            parse_number(&s, true, &ctime) < 0 || parse_number(&s, false, &ret->key.ino) < 0 ||
            parse_number(&s, false, &ret->key.dev) < 0)
                return -EBADMSG;
        ret->key.mtime_nsec = (int64_t) mtime;
        ret->key.ctime_nsec = (int64_t) ctime;
        if (s[0] == '-' && s[1] == '\n') {
                ret->read = -1;
                end = (char *) s + 1;
        } else {
                errno = 0;
                ret->read = strtol(s, &end, 10);
                if (errno != 0 || *end != '\n' || !(*s >= '0' && *s <= '9'))
                        return -EBADMSG;
        }
        *p = end + 1;
        return 0;
}

/* A backup the cache knows takes a copy of its metadata from the cache (which stays as it is until the
 * listing ends: callers may use it meanwhile). -ESTALE: the cache changed under the worker. */
static int entry_from_row(const Row *row, json_object *read, const BackupCache *old, BackupEntry *e) {
        json_object *info, *ex;
        const BackupEntry *c;

        e->name = strdup(row->name);
        if (!e->name)
                return -ENOMEM;
        e->size = row->key.size;
        e->mtime_nsec = row->key.mtime_nsec;
        e->ctime_nsec = row->key.ctime_nsec;
        e->mtime_usec = backup_entry_usec(e->mtime_nsec);
        e->ino = row->key.ino;
        e->dev = row->key.dev;

        if (row->read < 0) {
                c = cache_find(old, row->name, &row->key);
                if (!c || !c->excludes)
                        return -ESTALE;
                e->valid = c->valid;
                e->uncompressed = c->uncompressed;
                e->version = c->version ? strdup(c->version) : NULL;
                e->excludes = strv_copy(c->excludes);
                return (c->version && !e->version) || !e->excludes ? -ENOMEM : 0;
        }

        if ((size_t) row->read >= json_object_array_length(read))
                return -EBADMSG;
        info = json_object_array_get_idx(read, row->read);
        e->valid = info != NULL;
        e->excludes = calloc(1, sizeof(char *));
        if (!e->excludes)
                return -ENOMEM;
        if (!e->valid)
                return 0;
        if (!json_object_is_type(info, json_type_array) || json_object_array_length(info) != 3)
                return -EBADMSG;
        ex = json_object_array_get_idx(info, 2);
        if (!json_object_is_type(ex, json_type_array) ||
            !json_object_is_type(json_object_array_get_idx(info, 1), json_type_string) ||
            json_object_get_string_len(json_object_array_get_idx(info, 1)) > (int) VERSION_LISTED_MAX)
                return -EBADMSG;
        e->uncompressed = json_object_get_uint64(json_object_array_get_idx(info, 0));
        e->version = strdup(json_object_get_string(json_object_array_get_idx(info, 1)));
        if (!e->version)
                return -ENOMEM;
        for (size_t j = 0, total = 0; j < json_object_array_length(ex); j++) {
                const char *x = json_object_get_string(json_object_array_get_idx(ex, j)) ?: "";

                total += strlen(x) + 1;
                if (total > EXCLUDES_LISTED_MAX)
                        return -EBADMSG;
                if (strv_extend(&e->excludes, x) < 0)
                        return -ENOMEM;
        }
        return 0;
}

/* Refreshes are made one at a time per instance: a worker's rows refer to the cache as it was when it
 * started, so two at once could not both apply. Callers that come while one runs wait for the next one
 * (started when it ends), not for the running one, which may have listed the folder before their call. */
typedef struct RefreshWaiter {
        struct RefreshWaiter *next;
        backup_list_done_fn done;
        void *userdata;
} RefreshWaiter;

struct BackupRefresh {
        Worker *worker;
        uint64_t generation;            /* of the cache when the worker started */
        RefreshWaiter *running;         /* waiting for the worker that runs */
        RefreshWaiter *queued;          /* waiting for the next one */
        BackupCache fresh;              /* made from the worker's frames */
        size_t allocated;               /* of fresh.entries */
        int error;                      /* the first problem with its frames */
        size_t n_read;                  /* backups the worker read (not known to the cache) */
        bool loaded;                    /* the file of backup-list-cache.h was read */
};

static void waiters_free(RefreshWaiter *w) {
        while (w) {
                RefreshWaiter *n = w->next;
                free(w);
                w = n;
        }
}

BackupRefresh *backup_refresh_free(BackupRefresh *f) {
        if (!f)
                return NULL;
        worker_free(f->worker);
        waiters_free(f->running);
        waiters_free(f->queued);
        backup_cache_done(&f->fresh);
        free(f);
        return NULL;
}

static int on_list_frame(json_object *frame, void *userdata) {
        Instance *i = userdata;
        BackupRefresh *f = i->refresh;
        json_object *v, *read;
        const char *rows;
        Row row;
        int r;

        if (f->error < 0)
                return 0;       /* the rest is read and dropped; done() says what went wrong */
        if (!json_object_object_get_ex(frame, "rows", &v) || !json_object_is_type(v, json_type_string) ||
            !json_object_object_get_ex(frame, "read", &read) || !json_object_is_type(read, json_type_array))
                return -EBADMSG;
        rows = json_object_get_string(v);
        if (strlen(rows) != (size_t) json_object_get_string_len(v) || (*rows && !endswith(rows, "\n")))
                return -EBADMSG;
        while (*rows) {
                if (f->fresh.n >= BACKUPS_MAX)
                        return -EBADMSG;
                if (f->fresh.n == f->allocated) {
                        size_t n = f->allocated ? f->allocated * 2 : 256;
                        BackupEntry *e = reallocarray(f->fresh.entries, n, sizeof(BackupEntry));

                        if (!e)
                                return -ENOMEM;
                        f->fresh.entries = e;
                        f->allocated = n;
                }
                r = row_parse(&rows, &row);
                if (r < 0)
                        return r;
                f->fresh.entries[f->fresh.n] = (BackupEntry) {};
                f->n_read += row.read >= 0;
                r = entry_from_row(&row, read, &i->backup_cache, &f->fresh.entries[f->fresh.n++]);
                if (r < 0) {
                        /* Stale: a delete changed the cache; the generation says so at the end. */
                        f->error = r;
                        return r == -ESTALE ? 0 : r;
                }
        }
        return 0;
}

/* The worker's answer, with the frames before it, becomes the new cache. *ret_error: a message for the
 * caller, if there is one. */
static int cache_apply(Instance *i, int r, const WorkerReply *reply, char **ret_error) {
        BackupRefresh *f = i->refresh;
        uint64_t generation = i->backup_cache.generation;
        json_object *v;

        *ret_error = NULL;
        if (r < 0)
                return asprintf(ret_error, "Cannot list %s as user %s: %s", i->backup_folder, i->user,
                                strerror(-r)) < 0 ? -ENOMEM : -EIO;
        if (json_object_object_get_ex(reply->json, "error", &v))
                return (*ret_error = strdup(json_object_get_string(v))) ? -EIO : -ENOMEM;
        if (json_object_object_get_ex(reply->json, "unchanged", &v) && json_object_get_boolean(v)) {
                log_debug("Listed %s: %zu files, unchanged.", i->backup_folder, i->backup_cache.n);
                return f->fresh.n == 0 ? 0 : -EBADMSG;
        }
        if (f->error < 0)
                return f->error == -ESTALE ? -EBADMSG : f->error;
        if (!json_object_object_get_ex(reply->json, "rows", &v) || !json_object_is_type(v, json_type_int) ||
            json_object_get_uint64(v) != f->fresh.n)
                return -EBADMSG;
        r = cache_index(&f->fresh);
        if (r < 0)
                return r;
        backup_cache_done(&i->backup_cache);
        i->backup_cache = f->fresh;
        i->backup_cache.generation = generation + 1;
        f->fresh = (BackupCache) {};
        f->allocated = 0;
        log_debug("Listed %s: %zu files, %zu of them read.", i->backup_folder, i->backup_cache.n, f->n_read);
        r = backup_list_cache_save(i->name, &i->backup_cache);
        if (r < 0 && r != -ENOENT)
                log_warning_errno(r, "Cannot keep what was read from the backups of %s: %m", i->name);
        return 0;
}

static int refresh_launch(Instance *i);

static void on_list_done(int r, WorkerReply *reply, void *userdata) {
        _cleanup_free_ char *err = NULL;
        Instance *i = userdata;
        BackupRefresh *f = i->refresh;
        RefreshWaiter *waiters;

        f->worker = worker_free(f->worker);
        if (f->generation != i->backup_cache.generation) {
                /* The cache changed under the worker (a delete, a restore): its rows no longer apply. Its
                 * waiters go first in the next round. */
                RefreshWaiter **tail = &f->running;
                while (*tail)
                        tail = &(*tail)->next;
                *tail = f->queued;
                f->queued = TAKE_PTR(f->running);
                r = refresh_launch(i);
                if (r >= 0)
                        return;
                /* Cannot start again: those waiting hear why. */
                f->running = TAKE_PTR(f->queued);
        } else
                r = cache_apply(i, r, reply, &err);
        backup_cache_done(&f->fresh);
        f->allocated = 0;

        /* A waiter may ask for another refresh: it is queued, and started below. */
        waiters = TAKE_PTR(f->running);
        while (waiters) {
                RefreshWaiter *w = waiters;
                waiters = w->next;
                w->done(i, r, err, w->userdata);
                free(w);
        }
        if (f->queued && !f->worker && refresh_launch(i) < 0) {
                waiters = TAKE_PTR(f->queued);
                while (waiters) {
                        RefreshWaiter *w = waiters;
                        waiters = w->next;
                        w->done(i, -ENOMEM, NULL, w->userdata);
                        free(w);
                }
        }
}

/* The first listing after the daemon started begins from what the last one read. */
static void cache_load(Instance *i) {
        BackupCache c = { .generation = i->backup_cache.generation + 1 };
        int r;

        i->refresh->loaded = true;
        if (i->backup_cache.n > 0)
                return;
        r = backup_list_cache_load(i->name, BACKUPS_MAX, &c.entries, &c.n);
        if (r >= 0)
                r = cache_index(&c);
        if (r < 0) {
                if (r != -ENOENT)
                        (void) log_full_errno(LOG_DEBUG, r, "Not using the saved listing of %s: %m", i->name);
                backup_cache_done(&c);
                return;
        }
        backup_cache_done(&i->backup_cache);
        i->backup_cache = c;
}

static int refresh_launch(Instance *i) {
        BackupRefresh *f = i->refresh;
        int r;

        if (!f->loaded)
                cache_load(i);
        backup_cache_done(&f->fresh);
        f->allocated = 0;
        f->error = 0;
        f->n_read = 0;
        r = worker_start(i->daemon->event, i->uid, i->gid, "opbackup-list", LIST_TIMEOUT_SEC, list_task, i, -1,
                         on_list_done, i, &f->worker);
        if (r < 0)
                return log_warning_errno(r, "Cannot start a worker to list %s: %m", i->backup_folder);
        worker_set_frame_handler(f->worker, on_list_frame);
        f->generation = i->backup_cache.generation;
        f->running = TAKE_PTR(f->queued);
        return 0;
}

int backup_list_refresh_start(Instance *i, backup_list_done_fn done, void *userdata) {
        RefreshWaiter *w, **tail;
        int r;

        if (!i->refresh) {
                i->refresh = calloc(1, sizeof(BackupRefresh));
                if (!i->refresh)
                        return -ENOMEM;
        }
        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        *w = (RefreshWaiter) { .done = done, .userdata = userdata };
        for (tail = &i->refresh->queued; *tail; tail = &(*tail)->next)
                ;
        *tail = w;
        if (i->refresh->worker)
                return 0;
        r = refresh_launch(i);
        if (r < 0) {
                *tail = NULL;
                free(w);
        }
        return r;
}

static int reply_backups(sd_bus_message *m, const BackupCache *c) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(sttxsas)");
        if (r < 0)
                return r;
        for (size_t k = 0, bytes = 0; k < c->n; k++) {
                const BackupEntry *e = &c->entries[k];

                if (!e->valid)
                        continue;
                bytes += 64 + strlen(e->name) + strlen(strempty(e->version));
                STRV_FOREACH(x, e->excludes)
                        bytes += 8 + strlen(*x);
                if (bytes > REPLY_MAX)
                        return -E2BIG;
                r = sd_bus_message_open_container(reply, 'r', "sttxsas");
                if (r >= 0)
                        r = sd_bus_message_append(reply, "sttxs", e->name, e->size, e->uncompressed,
                                                  e->mtime_usec, strempty(e->version));
                if (r >= 0)
                        r = sd_bus_message_append_strv(reply, e->excludes);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static void on_listed(Instance *i, int r, const char *error, void *userdata) {
        sd_bus_message *m = userdata;

        if (r < 0 && error)
                r = sd_bus_reply_method_errorf(m, SD_BUS_ERROR_FAILED, "%s", error);
        else if (r < 0)
                r = sd_bus_reply_method_errno(m, r, NULL);
        else {
                r = reply_backups(m, &i->backup_cache);
                if (r == -E2BIG)
                        r = sd_bus_reply_method_errorf(m, SD_BUS_ERROR_FAILED, "The %zu backups in %s do not "
                                                       "fit in one message: delete or prune some.",
                                                       i->backup_cache.n, i->backup_folder);
        }
        if (r < 0)
                log_debug("Failed to reply to ListBackups(): %d", r);
        sd_bus_message_unref(m);
}

int method_list_backups_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Instance *i = userdata;
        int r;

        if (i->unusable_reason)
                return sd_bus_error_setf(error, BUS_ERROR_INSTANCE_UNUSABLE, "Instance %s is unusable: %s",
                                         i->name, i->unusable_reason);
        r = backup_list_refresh_start(i, on_listed, sd_bus_message_ref(m));
        if (r < 0) {
                sd_bus_message_unref(m);
                return r;
        }
        return 1;
}
