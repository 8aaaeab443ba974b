/* SPDX-License-Identifier: GPL-2.0-or-later */

/* ListBackups: the valid backups in an instance's backup folder. */

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "backup-folder.h"
#include "backup-list.h"
#include "errors.h"
#include "instance.h"
#include "log.h"
#include "names.h"
#include "util.h"
#include "worker.h"
#include "zip-dlopen.h"

#define BACKUPS_MAX 100000U
#define LIST_TIMEOUT_SEC 120U

static void backup_entry_done(BackupEntry *e) {
        free(e->name);
        free(e->version);
        strv_free(e->excludes);
        *e = (BackupEntry) {};
}

void backup_cache_done(BackupCache *c) {
        for (size_t k = 0; k < c->n; k++)
                backup_entry_done(&c->entries[k]);
        free(c->entries);
        *c = (BackupCache) {};
}

void backup_cache_forget(BackupCache *c, const char *name) {
        for (size_t k = 0; k < c->n; k++)
                if (streq(c->entries[k].name, name))
                        c->entries[k].size = UINT64_MAX;   /* never matches again */
}

static const BackupEntry *cache_find(const BackupCache *c, const char *name, uint64_t size, int64_t mtime) {
        for (size_t k = 0; k < c->n; k++)
                if (c->entries[k].size == size && c->entries[k].mtime_usec == mtime &&
                    streq(c->entries[k].name, name))
                        return &c->entries[k];
        return NULL;
}

static json_object *entry_json(const char *name, const struct stat *st, int64_t mtime, bool cached,
                               const BackupInfo *info) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "name", json_object_new_string(name));
        json_object_object_add(o, "size", json_object_new_uint64(st->st_size));
        json_object_object_add(o, "mtime", json_object_new_int64(mtime));
        json_object_object_add(o, "cached", json_object_new_boolean(cached));
        if (!cached) {
                json_object_object_add(o, "valid", json_object_new_boolean(info != NULL));
                if (info) {
                        json_object *ex = json_object_new_array();
                        STRV_FOREACH(e, info->excludes)
                                json_object_array_add(ex, json_object_new_string(*e));
                        json_object_object_add(o, "version", json_object_new_string(info->version));
                        json_object_object_add(o, "excludes", ex);
                        json_object_object_add(o, "uncompressed", json_object_new_uint64(info->uncompressed));
                }
        }
        return o;
}

/* In the worker, as the instance user. The cache it consults is the daemon's, copied by fork(). */
static int list_task(void *userdata, json_object **ret_json, int *ret_fd) {
        Instance *i = userdata;
        json_object *list, *o;
        _cleanup_free_ char *why = NULL;
        _cleanup_close_ int dir_fd = -1;
        DIR *dir;
        struct dirent *de;
        unsigned n = 0;
        int r;

        r = zip_dlopen(&why);
        if (r < 0) {    /* or every backup would look invalid */
                *ret_json = worker_error("Cannot read the backups in %s: %s", i->backup_folder, why ?: strerror(-r));
                return 0;
        }
        o = json_object_new_object();
        list = json_object_new_array();
        json_object_object_add(o, "backups", list);
        *ret_json = o;

        r = backup_folder_open(i->backup_folder, &dir_fd);
        if (r == -ENOENT)
                return 0;
        if (r < 0) {
                json_object_put(o);
                *ret_json = worker_error("Cannot open the backup folder %s: %s", i->backup_folder, strerror(-r));
                return 0;
        }
        dir = fdopendir(fcntl(dir_fd, F_DUPFD_CLOEXEC, 3));
        if (!dir)
                return -errno;
        while ((de = readdir(dir)) && n < BACKUPS_MAX) {
                _cleanup_(backup_info_done) BackupInfo info = {};
                _cleanup_free_ char *err = NULL;
                _cleanup_close_ int fd = -1;
                const BackupEntry *cached;
                struct stat st;
                int64_t mtime;

                if (!backup_name_is_valid(de->d_name))   /* hidden files, temp files, other files */
                        continue;
                if (fstatat(dir_fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
                        continue;
                mtime = (int64_t) st.st_mtim.tv_sec * 1000000 + st.st_mtim.tv_nsec / 1000;
                n++;
                cached = cache_find(&i->backup_cache, de->d_name, st.st_size, mtime);
                if (cached) {
                        json_object_array_add(list, entry_json(de->d_name, &st, mtime, true, NULL));
                        continue;
                }
                r = backup_open_at(dir_fd, de->d_name, &fd);
                if (r >= 0)
                        r = backup_info_read(fd, &info, &err);
                json_object_array_add(list, entry_json(de->d_name, &st, mtime, false, r >= 0 ? &info : NULL));
        }
        closedir(dir);
        return 0;
}

static int entry_from_json(json_object *o, const BackupCache *old, BackupEntry *e) {
        json_object *v;
        const BackupEntry *c;

        if (!json_object_object_get_ex(o, "name", &v))
                return -EBADMSG;
        e->name = strdup(json_object_get_string(v));
        if (!e->name)
                return -ENOMEM;
        json_object_object_get_ex(o, "size", &v);
        e->size = json_object_get_uint64(v);
        json_object_object_get_ex(o, "mtime", &v);
        e->mtime_usec = json_object_get_int64(v);

        json_object_object_get_ex(o, "cached", &v);
        if (json_object_get_boolean(v)) {
                c = cache_find(old, e->name, e->size, e->mtime_usec);
                if (!c)
                        return -EBADMSG;
                e->valid = c->valid;
                e->uncompressed = c->uncompressed;
                e->version = c->version ? strdup(c->version) : NULL;
                e->excludes = strv_copy(c->excludes);
                return (c->version && !e->version) || !e->excludes ? -ENOMEM : 0;
        }
        json_object_object_get_ex(o, "valid", &v);
        e->valid = json_object_get_boolean(v);
        e->excludes = calloc(1, sizeof(char *));
        if (!e->excludes)
                return -ENOMEM;
        if (!e->valid)
                return 0;
        json_object_object_get_ex(o, "version", &v);
        e->version = strdup(json_object_get_string(v) ?: "");
        json_object_object_get_ex(o, "uncompressed", &v);
        e->uncompressed = json_object_get_uint64(v);
        if (json_object_object_get_ex(o, "excludes", &v) && json_object_is_type(v, json_type_array))
                for (size_t k = 0; k < json_object_array_length(v); k++)
                        if (strv_extend(&e->excludes, json_object_get_string(json_object_array_get_idx(v, k)) ?: "") < 0)
                                return -ENOMEM;
        return e->version ? 0 : -ENOMEM;
}

static int compare_newest_first(const void *a, const void *b) {
        const BackupEntry *x = a, *y = b;

        if (x->mtime_usec != y->mtime_usec)
                return x->mtime_usec < y->mtime_usec ? 1 : -1;
        return strcmp(y->name, x->name);
}

int backup_list_refresh(Instance *i, char **ret_error) {
        _cleanup_(worker_reply_done) WorkerReply reply = { .fd = -1 };
        BackupCache fresh = {};
        json_object *list, *err;
        size_t n;
        int r;

        *ret_error = NULL;
        r = worker_run_sync(i->uid, i->gid, "opbackup-list", LIST_TIMEOUT_SEC, list_task, i, -1, &reply);
        if (r < 0)
                return asprintf(ret_error, "Cannot list %s as user %s: %s", i->backup_folder, i->user,
                                strerror(-r)) < 0 ? -ENOMEM : -EIO;
        if (json_object_object_get_ex(reply.json, "error", &err))
                return (*ret_error = strdup(json_object_get_string(err))) ? -EIO : -ENOMEM;
        if (!json_object_object_get_ex(reply.json, "backups", &list))
                return -EBADMSG;

        n = json_object_array_length(list);
        fresh.entries = calloc(n ?: 1, sizeof(BackupEntry));
        if (!fresh.entries)
                return -ENOMEM;
        for (size_t k = 0; k < n; k++) {
                r = entry_from_json(json_object_array_get_idx(list, k), &i->backup_cache, &fresh.entries[k]);
                fresh.n = k + 1;
                if (r < 0) {
                        backup_cache_done(&fresh);
                        return r;
                }
        }
        qsort(fresh.entries, fresh.n, sizeof(BackupEntry), compare_newest_first);
        backup_cache_done(&i->backup_cache);
        i->backup_cache = fresh;
        return 0;
}

int method_list_backups_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *err = NULL;
        Instance *i = userdata;
        int r;

        if (i->unusable_reason)
                return sd_bus_error_setf(error, BUS_ERROR_INSTANCE_UNUSABLE, "Instance %s is unusable: %s",
                                         i->name, i->unusable_reason);
        r = backup_list_refresh(i, &err);
        if (r < 0)
                return err ? sd_bus_error_set(error, SD_BUS_ERROR_FAILED, err) : r;

        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(sttxsas)");
        if (r < 0)
                return r;
        for (size_t k = 0; k < i->backup_cache.n; k++) {
                const BackupEntry *e = &i->backup_cache.entries[k];

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
