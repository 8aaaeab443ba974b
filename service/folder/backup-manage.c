/* SPDX-License-Identifier: GPL-2.0-or-later */

/* DeleteBackup, OpenBackup and PruneBackups. Every file operation happens in a worker that is the
 * instance user, on names that passed backup_name_is_valid(), relative to the backup folder's fd, never
 * following symlinks: nothing outside the backup folder can be read or removed. */

#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>

#include "errors.h"
#include "folder/backup-folder.h"
#include "folder/backup-manage.h"
#include "instance/instance.h"
#include "log.h"
#include "names.h"
#include "util.h"
#include "worker/worker-method.h"
#include "worker/worker.h"

#define MANAGE_TIMEOUT_SEC 60U
#define PRUNE_GLOB_MAX 256U

int check_backup_name(const char *name, sd_bus_error *error) {
        if (backup_name_is_valid(name))
                return 0;
        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                 "Invalid backup name '%.64s%s': a backup name is a letter or digit, then "
                                 "letters, digits, '.', '_' or '-', ending in .zip (at most %d characters).",
                                 name, strlen(name) > 64 ? "…" : "", BACKUP_NAME_MAX);
}

int check_instance_usable(Instance *i, sd_bus_error *error) {
        if (!i->unusable_reason)
                return 0;
        return sd_bus_error_setf(error, BUS_ERROR_INSTANCE_UNUSABLE, "Instance %s is unusable: %s", i->name,
                                 i->unusable_reason);
}

static json_object *named_error(const char *name, const char *message) {
        json_object *o = worker_error("%s", message);
        json_object_object_add(o, "error_name", json_object_new_string(name));
        return o;
}

typedef struct DeleteArgs {
        const char *folder;
        char *const *names;
} DeleteArgs;

static int delete_one(int dir_fd, const char *folder, const char *name, json_object **ret_error) {
        _cleanup_free_ char *msg = NULL;
        struct stat st;

        if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                if (asprintf(&msg, "No backup %s in %s.", name, folder) >= 0)
                        *ret_error = named_error(BUS_ERROR_NO_SUCH_BACKUP, msg);
                return -ENOENT;
        }
        if (!S_ISREG(st.st_mode)) {
                if (asprintf(&msg, "%s in %s is not a backup (%s); remove it by hand if it is unwanted.", name,
                             folder, S_ISLNK(st.st_mode) ? "a symbolic link" : "not a regular file") >= 0)
                        *ret_error = named_error(BUS_ERROR_NO_SUCH_BACKUP, msg);
                return -EBADF;
        }
        if (unlinkat(dir_fd, name, 0) < 0) {
                if (asprintf(&msg, "Cannot delete %s in %s: %s", name, folder, strerror(errno)) >= 0)
                        *ret_error = worker_error("%s", msg);
                return -errno;
        }
        return 0;
}

static int delete_task(void *userdata, json_object **ret_json, int *ret_fd) {
        DeleteArgs *a = userdata;
        _cleanup_close_ int dir_fd = -1;
        json_object *deleted = json_object_new_array(), *err = NULL;
        int r;

        r = backup_folder_open(a->folder, &dir_fd);
        if (r < 0) {
                json_object_put(deleted);
                *ret_json = r == -ENOENT ? named_error(BUS_ERROR_NO_SUCH_BACKUP, "The backup folder does not exist.")
                                         : worker_error("Cannot open %s: %s", a->folder, strerror(-r));
                return 0;
        }
        STRV_FOREACH(n, a->names) {
                if (delete_one(dir_fd, a->folder, *n, &err) < 0)
                        break;
                json_object_array_add(deleted, json_object_new_string(*n));
        }
        (void) fsync(dir_fd);
        *ret_json = err ?: json_object_new_object();
        json_object_object_add(*ret_json, "deleted", deleted);
        return 0;
}

static int append_backup_deleted(sd_bus_message *m, void *userdata) {
        const char **args = userdata;
        return sd_bus_message_append(m, "ss", args[0], args[1]);
}

typedef struct DeleteOp {
        Instance *instance;
        Worker *worker;
        backup_delete_done_fn done;
        void *userdata;
} DeleteOp;

/* Every backup the worker removed is forgotten and announced (BackupDeleted), even when it then stopped
 * at a name it could not delete. */
static int deleted_from_reply(Instance *i, const WorkerReply *reply, char ***ret) {
        _cleanup_strv_free_ char **deleted = calloc(1, sizeof(char *));
        json_object *list;

        if (!deleted)
                return -ENOMEM;
        if (json_object_object_get_ex(reply->json, "deleted", &list))
                for (size_t k = 0; k < json_object_array_length(list); k++) {
                        const char *name = json_object_get_string(json_object_array_get_idx(list, k));
                        const char *args[2] = { i->name, name };

                        if (!backup_name_is_valid(strempty(name)))
                                continue;
                        log_info("Instance %s: deleted backup %s", i->name, name);
                        backup_cache_forget(&i->backup_cache, name);
                        (void) daemon_emit_signal(i->daemon, i, OBJECT_ROOT, MANAGER_INTERFACE, "BackupDeleted",
                                                  NULL, append_backup_deleted, args);
                        if (strv_extend(&deleted, name) < 0)
                                return -ENOMEM;
                }
        *ret = TAKE_PTR(deleted);
        return 0;
}

static void on_delete_done(int r, WorkerReply *reply, void *userdata) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_strv_free_ char **deleted = NULL;
        DeleteOp *op = userdata;
        Instance *i = op->instance;

        if (r < 0)
                r = sd_bus_error_setf(&error, SD_BUS_ERROR_FAILED, "Cannot delete as user %s: %s", i->user,
                                      strerror(-r));
        else {
                r = deleted_from_reply(i, reply, &deleted);
                if (r >= 0)
                        r = worker_reply_error(reply, &error);
        }
        op->done(i, r < 0 ? r : 0, deleted, sd_bus_error_is_set(&error) ? &error : NULL, op->userdata);
        worker_free(op->worker);
        free(op);
}

int backup_delete_start(Instance *i, char *const *names, backup_delete_done_fn done, void *userdata) {
        DeleteArgs a = { .folder = i->backup_folder, .names = names };
        DeleteOp *op;
        int r;

        op = calloc(1, sizeof(*op));
        if (!op)
                return -ENOMEM;
        *op = (DeleteOp) { .instance = i, .done = done, .userdata = userdata };
        r = worker_start(i->daemon->event, i->uid, i->gid, "opbackup-delete", MANAGE_TIMEOUT_SEC, delete_task, &a,
                         -1, on_delete_done, op, &op->worker);
        if (r < 0) {
                free(op);
                return log_warning_errno(r, "Cannot start a worker to delete backups of %s: %m", i->name);
        }
        return 0;
}

static void reply_deleted(Instance *i, int r, char **deleted, const sd_bus_error *error, void *userdata) {
        sd_bus_message *m = userdata;

        if (error)
                r = sd_bus_reply_method_error(m, error);
        else if (r < 0)
                r = sd_bus_reply_method_errno(m, r, NULL);
        else
                r = sd_bus_reply_method_return(m, "");
        if (r < 0)
                log_debug("Failed to reply to DeleteBackup(): %d", r);
        sd_bus_message_unref(m);
}

int method_delete_backup_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Instance *i = userdata;
        const char *name;
        int r;

        r = sd_bus_message_read(m, "s", &name);
        if (r < 0)
                return r;
        r = check_backup_name(name, error);
        if (r < 0)
                return r;
        r = check_instance_usable(i, error);
        if (r < 0)
                return r;
        {
                char *names[] = { (char *) name, NULL };
                r = backup_delete_start(i, names, reply_deleted, sd_bus_message_ref(m));
        }
        if (r < 0) {
                sd_bus_message_unref(m);
                return r;
        }
        return 1;
}

static int open_task(void *userdata, json_object **ret_json, int *ret_fd) {
        const char **a = userdata;   /* folder, name */
        _cleanup_free_ char *msg = NULL;
        _cleanup_close_ int dir_fd = -1;
        int r;

        r = backup_folder_open(a[0], &dir_fd);
        if (r >= 0)
                r = backup_open_at(dir_fd, a[1], ret_fd);
        if (r == -ENOENT) {
                if (asprintf(&msg, "No backup %s in %s.", a[1], a[0]) >= 0)
                        *ret_json = named_error(BUS_ERROR_NO_SUCH_BACKUP, msg);
        } else if (r == -ELOOP || r == -EBADF) {
                if (asprintf(&msg, "%s in %s is not a backup (a symbolic link or not a regular file).", a[1], a[0]) >= 0)
                        *ret_json = named_error(BUS_ERROR_NO_SUCH_BACKUP, msg);
        } else if (r < 0)
                *ret_json = worker_error("Cannot open %s in %s: %s", a[1], a[0], strerror(-r));
        else
                *ret_json = json_object_new_object();
        return 0;
}

static int reply_opened(sd_bus_message *m, int r, WorkerReply *reply, void *userdata, sd_bus_error *error) {
        if (r < 0)
                return r;
        r = worker_reply_error(reply, error);
        if (r < 0)
                return r;
        if (reply->fd < 0)
                return -EIO;
        return sd_bus_reply_method_return(m, "h", reply->fd);
}

int method_open_backup_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Instance *i = userdata;
        const char *name, *a[2];
        int r;

        r = sd_bus_message_read(m, "s", &name);
        if (r < 0)
                return r;
        r = check_backup_name(name, error);
        if (r < 0)
                return r;
        r = check_instance_usable(i, error);
        if (r < 0)
                return r;
        a[0] = i->backup_folder;
        a[1] = name;
        return worker_method_start(m, i->uid, i->gid, "opbackup-open", MANAGE_TIMEOUT_SEC, open_task, a,
                                   reply_opened, NULL, NULL);
}

/* PruneBackups: list (the cache is sorted newest first), pick, delete, answer; each step when the one
 * before is done. */
typedef struct PruneOp {
        sd_bus_message *request;
        uint32_t keep;
        char *glob;
        char **victims;
} PruneOp;

static void prune_op_free(PruneOp *op) {
        sd_bus_message_unref(op->request);
        free(op->glob);
        strv_free(op->victims);
        free(op);
}

static int reply_pruned(sd_bus_message *m, char *const *deleted) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_append_strv(reply, (char **) deleted);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static void on_pruned(Instance *i, int r, char **deleted, const sd_bus_error *error, void *userdata) {
        PruneOp *op = userdata;

        if (error)
                r = sd_bus_reply_method_error(op->request, error);
        else if (r < 0)
                r = sd_bus_reply_method_errno(op->request, r, NULL);
        else
                r = reply_pruned(op->request, deleted ?: op->victims);
        if (r < 0)
                log_debug("Failed to reply to PruneBackups(): %d", r);
        prune_op_free(op);
}

static int prune_pick(Instance *i, PruneOp *op) {
        uint32_t kept = 0;

        op->victims = calloc(1, sizeof(char *));
        if (!op->victims)
                return -ENOMEM;
        for (size_t k = 0; k < i->backup_cache.n; k++) {
                const BackupEntry *e = &i->backup_cache.entries[k];

                if (!e->valid || fnmatch(isempty(op->glob) ? "*" : op->glob, e->name, 0) != 0)
                        continue;
                if (kept < op->keep) {
                        kept++;
                        continue;
                }
                if (strv_extend(&op->victims, e->name) < 0)
                        return -ENOMEM;
        }
        return 0;
}

static void on_prune_listed(Instance *i, int r, const char *error, void *userdata) {
        PruneOp *op = userdata;

        if (r >= 0)
                r = prune_pick(i, op);
        if (r >= 0 && op->victims[0]) {
                r = backup_delete_start(i, op->victims, on_pruned, op);
                if (r >= 0)
                        return;
        }
        if (r < 0 && error)
                r = sd_bus_reply_method_errorf(op->request, SD_BUS_ERROR_FAILED, "%s", error);
        else if (r < 0)
                r = sd_bus_reply_method_errno(op->request, r, NULL);
        else
                r = reply_pruned(op->request, op->victims);
        if (r < 0)
                log_debug("Failed to reply to PruneBackups(): %d", r);
        prune_op_free(op);
}

int method_prune_backups_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Instance *i = userdata;
        const char *glob;
        PruneOp *op;
        uint32_t keep;
        int r;

        r = sd_bus_message_read(m, "us", &keep, &glob);
        if (r < 0)
                return r;
        if (strlen(glob) > PRUNE_GLOB_MAX)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "The pattern is longer than %u characters.",
                                         PRUNE_GLOB_MAX);
        r = check_instance_usable(i, error);
        if (r < 0)
                return r;
        op = calloc(1, sizeof(*op));
        if (!op)
                return -ENOMEM;
        op->keep = keep;
        op->glob = strdup(glob);
        if (!op->glob) {
                free(op);
                return -ENOMEM;
        }
        op->request = sd_bus_message_ref(m);
        r = backup_list_refresh_start(i, on_prune_listed, op);
        if (r < 0) {
                prune_op_free(op);
                return r;
        }
        return 1;
}
