/* SPDX-License-Identifier: GPL-2.0-or-later */

/* ListBackups: the valid backups in an instance's backup folder.
 *
 * A worker, as the instance user, lists the folder and opens only the backups the daemon's cache does not
 * know by name, size and mtime. It answers one line of text per backup, "NAME SIZE MTIME READ", where
 * READ is "-" for a backup the cache knows, or the index of what it read in the array "read" (null: not
 * an OctoPrint backup; else [uncompressed size, version, [excludes]]). A JSON object per backup would
 * cost more to build, send and parse than the listing itself when nearly everything is cached. When the
 * worker finds exactly the backups of the cache, unchanged, it answers just {"unchanged": true}.
 *
 * What the worker says of the user's files is only what the user could have put in them anyway; the
 * daemon still checks every row it parses (names, numbers, indices), and bounds their number. */

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>

#include "errors.h"
#include "folder/backup-folder.h"
#include "folder/backup-list.h"
#include "instance/instance.h"
#include "log.h"
#include "names.h"
#include "util.h"
#include "worker/worker.h"
#include "worker/zip-dlopen.h"

#define BACKUPS_MAX 100000U
#define LIST_TIMEOUT_SEC 120U

static void backup_entry_done(BackupEntry *e) {
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

static BackupEntry *cache_find(const BackupCache *c, const char *name, uint64_t size, int64_t mtime) {
        BackupEntry *e = cache_find_name(c, name);

        return e && e->size == size && e->mtime_usec == mtime ? e : NULL;
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

static int cache_index(BackupCache *c) {
        free(c->by_name);
        c->by_name = malloc((c->n ?: 1) * sizeof(BackupEntry *));
        if (!c->by_name)
                return -ENOMEM;
        for (size_t k = 0; k < c->n; k++)
                c->by_name[k] = &c->entries[k];
        qsort(c->by_name, c->n, sizeof(BackupEntry *), compare_by_name);
        return 0;
}

/* ---- In the worker, as the instance user. The cache it consults is the daemon's, copied by fork(). ---- */

typedef struct ListTask {
        Instance *instance;
        const BackupCache *cache;
        int dir_fd;
        FILE *rows;
        unsigned n_rows;
        bool *seen;                     /* cache entries found unchanged */
        unsigned n_seen;
        json_object *read;              /* what was read from backups the cache does not know */
        bool zip_loaded;
} ListTask;

static int64_t mtime_usec(const struct stat *st) {
        return (int64_t) st->st_mtim.tv_sec * 1000000 + st->st_mtim.tv_nsec / 1000;
}

static int load_zip(ListTask *t, json_object **ret_error) {
        _cleanup_free_ char *why = NULL;
        int r;

        if (t->zip_loaded)
                return 0;
        r = zip_dlopen(&why);
        if (r < 0) {    /* or every backup would look invalid */
                *ret_error = worker_error("Cannot read the backups in %s: %s", t->instance->backup_folder,
                                          why ?: strerror(-r));
                return r;
        }
        t->zip_loaded = true;
        return 0;
}

static json_object *info_json(const BackupInfo *info) {
        json_object *o = json_object_new_array_ext(3), *ex;

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
static int list_read(ListTask *t, const char *name, json_object **ret_error) {
        _cleanup_(backup_info_done) BackupInfo info = {};
        _cleanup_free_ char *why = NULL;
        _cleanup_close_ int fd = -1;
        struct stat st;
        bool valid;
        int r;

        r = backup_open_at_stat(t->dir_fd, name, &fd, &st);
        if (r < 0) {
                if (fstatat(t->dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
                        return 0;
                valid = false;
        } else {
                r = load_zip(t, ret_error);
                if (r < 0)
                        return r;
                valid = backup_info_read_sized(fd, st.st_size, &info, &why) >= 0;
        }
        json_object_array_add(t->read, valid ? info_json(&info) : NULL);
        fprintf(t->rows, "%s %" PRIu64 " %" PRId64 " %zu\n", name, (uint64_t) st.st_size, mtime_usec(&st),
                json_object_array_length(t->read) - 1);
        t->n_rows++;
        return 0;
}

static int list_entry(ListTask *t, const char *name) {
        const BackupEntry *c;
        struct stat st;
        size_t k;

        /* A name the cache does not know is read at once, without a stat of its own. */
        c = cache_find_name(t->cache, name);
        if (!c)
                return 1;
        if (fstatat(t->dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
                return 0;
        if (c->size != (uint64_t) st.st_size || c->mtime_usec != mtime_usec(&st))
                return 1;
        k = c - t->cache->entries;
        if (t->seen[k])         /* readdir() may return a name twice while the folder changes */
                return 0;
        t->seen[k] = true;     /* its row is written at the end, if one is needed at all */
        t->n_seen++;
        t->n_rows++;
        return 0;
}

static int list_folder(ListTask *t, DIR *dir, json_object **ret_error) {
        struct dirent *de;
        int r;

        while ((de = readdir(dir)) && t->n_rows < BACKUPS_MAX) {
                if (!backup_name_is_valid(de->d_name))   /* hidden files, temp files, other files */
                        continue;
                if (de->d_type != DT_REG && de->d_type != DT_UNKNOWN)
                        continue;
                r = list_entry(t, de->d_name);
                if (r > 0)
                        r = list_read(t, de->d_name, ret_error);
                if (r < 0)
                        return r;
        }
        return 0;
}

static void list_task_done(ListTask *t) {
        if (t->rows)
                fclose(t->rows);
        free(t->seen);
        json_object_put(t->read);
}

static int list_task(void *userdata, json_object **ret_json, int *ret_fd) {
        _cleanup_free_ char *text = NULL;      /* before t: closing t.rows sets it */
        size_t size = 0;
        _cleanup_(list_task_done) ListTask t = { .instance = userdata };
        _cleanup_close_ int dir_fd = -1;
        json_object *o;
        DIR *dir;
        int r;

        t.cache = &t.instance->backup_cache;
        t.seen = calloc(t.cache->n ?: 1, sizeof(bool));
        t.rows = open_memstream(&text, &size);
        t.read = json_object_new_array();
        if (!t.seen || !t.rows || !t.read)
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
                r = list_folder(&t, dir, ret_json);
                closedir(dir);
                if (r < 0)
                        return *ret_json ? 0 : r;
        }
        o = json_object_new_object();
        if (t.n_rows == t.n_seen && t.n_seen == t.cache->n) {
                /* What a listing mostly finds: the backups of the cache, unchanged. */
                json_object_object_add(o, "unchanged", json_object_new_boolean(true));
                *ret_json = o;
                return 0;
        }
        for (size_t k = 0; k < t.cache->n; k++)
                if (t.seen[k]) {
                        const BackupEntry *e = &t.cache->entries[k];
                        fprintf(t.rows, "%s %" PRIu64 " %" PRId64 " -\n", e->name, e->size, e->mtime_usec);
                }
        if (fclose(TAKE_PTR(t.rows)) != 0) {
                json_object_put(o);
                return -ENOMEM;
        }
        json_object_object_add(o, "rows", json_object_new_string_len(strempty(text), size));
        json_object_object_add(o, "read", TAKE_PTR(t.read));
        *ret_json = o;
        return 0;
}

/* ---- In the daemon: the worker's answer becomes the new cache. ---- */

typedef struct Row {
        char name[BACKUP_NAME_MAX + 1];
        uint64_t size;
        int64_t mtime_usec;
        long read;                      /* index in the "read" array, or -1: the cache knows it */
} Row;

/* Parses the row "NAME SIZE MTIME READ\n" at *p and moves *p past it. */
static int row_parse(const char **p, Row *ret) {
        const char *s = *p, *space = strchr(s, ' ');
        char *end;

        if (!space || (size_t) (space - s) > BACKUP_NAME_MAX)
                return -EBADMSG;
        memcpy(ret->name, s, space - s);
        ret->name[space - s] = 0;
        if (!backup_name_is_valid(ret->name))
                return -EBADMSG;
        s = space + 1;
        errno = 0;
        ret->size = strtoull(s, &end, 10);
        if (errno != 0 || *end != ' ' || !(*s >= '0' && *s <= '9'))
                return -EBADMSG;
        s = end + 1;
        ret->mtime_usec = strtoll(s, &end, 10);
        if (errno != 0 || *end != ' ' || end == s)
                return -EBADMSG;
        s = end + 1;
        if (s[0] == '-' && s[1] == '\n') {
                ret->read = -1;
                end = (char *) s + 1;
        } else {
                ret->read = strtol(s, &end, 10);
                if (errno != 0 || *end != '\n' || !(*s >= '0' && *s <= '9'))
                        return -EBADMSG;
        }
        *p = end + 1;
        return 0;
}

/* A backup the cache knows takes its metadata from the old cache, which is dropped afterwards; the old
 * entry is marked so that a second row with the same name cannot take it again. */
static int entry_from_row(const Row *row, json_object *read, BackupCache *old, BackupEntry *e) {
        json_object *info, *ex;
        BackupEntry *c;

        e->name = strdup(row->name);
        if (!e->name)
                return -ENOMEM;
        e->size = row->size;
        e->mtime_usec = row->mtime_usec;

        if (row->read < 0) {
                c = cache_find(old, row->name, row->size, row->mtime_usec);
                if (!c || !c->excludes)
                        return -EBADMSG;
                e->valid = c->valid;
                e->uncompressed = c->uncompressed;
                e->version = TAKE_PTR(c->version);
                e->excludes = TAKE_PTR(c->excludes);
                c->size = UINT64_MAX;
                return 0;
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
        if (!json_object_is_type(ex, json_type_array))
                return -EBADMSG;
        e->uncompressed = json_object_get_uint64(json_object_array_get_idx(info, 0));
        e->version = strdup(json_object_get_string(json_object_array_get_idx(info, 1)) ?: "");
        if (!e->version)
                return -ENOMEM;
        for (size_t j = 0; j < json_object_array_length(ex); j++)
                if (strv_extend(&e->excludes, json_object_get_string(json_object_array_get_idx(ex, j)) ?: "") < 0)
                        return -ENOMEM;
        return 0;
}

static int compare_newest_first(const void *a, const void *b) {
        const BackupEntry *x = a, *y = b;

        if (x->mtime_usec != y->mtime_usec)
                return x->mtime_usec < y->mtime_usec ? 1 : -1;
        return strcmp(y->name, x->name);
}

static int cache_from_rows(const char *rows, size_t n_rows, json_object *read, BackupCache *old,
                           BackupCache *ret) {
        BackupCache fresh = {};
        Row row;
        int r;

        fresh.entries = calloc(n_rows ?: 1, sizeof(BackupEntry));
        if (!fresh.entries)
                return -ENOMEM;
        while (fresh.n < n_rows) {
                r = row_parse(&rows, &row);
                if (r < 0)
                        goto fail;
                r = entry_from_row(&row, read, old, &fresh.entries[fresh.n++]);
                if (r < 0)
                        goto fail;
        }
        qsort(fresh.entries, fresh.n, sizeof(BackupEntry), compare_newest_first);
        r = cache_index(&fresh);
        if (r < 0)
                goto fail;
        *ret = fresh;
        return 0;
fail:
        backup_cache_done(&fresh);
        return r;
}

/* The worker's answer becomes the new cache. *ret_error: a message for the caller, if there is one. */
static int cache_apply(Instance *i, int r, const WorkerReply *reply, char **ret_error) {
        BackupCache fresh;
        json_object *v, *read;
        const char *rows;
        size_t n_rows = 0;
        uint64_t generation = i->backup_cache.generation;

        *ret_error = NULL;
        if (r < 0)
                return asprintf(ret_error, "Cannot list %s as user %s: %s", i->backup_folder, i->user,
                                strerror(-r)) < 0 ? -ENOMEM : -EIO;
        if (json_object_object_get_ex(reply->json, "error", &v))
                return (*ret_error = strdup(json_object_get_string(v))) ? -EIO : -ENOMEM;
        if (json_object_object_get_ex(reply->json, "unchanged", &v) && json_object_get_boolean(v))
                return 0;
        if (!json_object_object_get_ex(reply->json, "rows", &v) || !json_object_is_type(v, json_type_string) ||
            !json_object_object_get_ex(reply->json, "read", &read) || !json_object_is_type(read, json_type_array))
                return -EBADMSG;
        rows = json_object_get_string(v);
        if (strlen(rows) != (size_t) json_object_get_string_len(v) || (*rows && !endswith(rows, "\n")))
                return -EBADMSG;
        for (const char *p = rows; (p = strchr(p, '\n')); p++)
                n_rows++;
        if (n_rows > BACKUPS_MAX)
                return -EBADMSG;

        /* The old cache gives its metadata to the new one, so it is dropped whatever happens. */
        r = cache_from_rows(rows, n_rows, read, &i->backup_cache, &fresh);
        backup_cache_done(&i->backup_cache);
        if (r < 0)
                return r;
        i->backup_cache = fresh;
        i->backup_cache.generation = generation + 1;
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
        free(f);
        return NULL;
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

static int refresh_launch(Instance *i) {
        BackupRefresh *f = i->refresh;
        int r;

        r = worker_start(i->daemon->event, i->uid, i->gid, "opbackup-list", LIST_TIMEOUT_SEC, list_task, i, -1,
                         on_list_done, i, &f->worker);
        if (r < 0)
                return log_warning_errno(r, "Cannot start a worker to list %s: %m", i->backup_folder);
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
        for (size_t k = 0; k < c->n; k++) {
                const BackupEntry *e = &c->entries[k];

                if (!e->valid)
                        continue;
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
        else
                r = reply_backups(m, &i->backup_cache);
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
