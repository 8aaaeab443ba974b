/* SPDX-License-Identifier: GPL-2.0-or-later */

/* ImportBackup: copies a zip from the caller's file descriptor into the backup folder. The daemon never
 * opens a path a client names; it reads the descriptor the client opened. The copy is made by a worker
 * as the instance user, checked to be an OctoPrint backup, and only then given its name.
 *
 * Backups and other imports write into the same folder meanwhile. So the copy has no name while it is made
 * (O_TMPFILE: nothing else can see, take or remove it, and it is gone if the worker dies), and the name it
 * then gets is one no other writer will create: the names of the instance's jobs and of the other imports
 * in flight are passed over, and backups are not given the name of an import in flight
 * (backup_import_may_take()). Linking never replaces a file. */

#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>

#include "daemon/job.h"
#include "errors.h"
#include "folder/backup-folder.h"
#include "folder/backup-import.h"
#include "folder/backup-manage.h"
#include "instance/instance.h"
#include "log.h"
#include "names.h"
#include "util.h"
#include "worker/worker-pipe.h"
#include "worker/worker.h"
#include "worker/zip-dlopen.h"
#include "zip-directory.h"

#define CLEANUP_TIMEOUT_SEC 60U

typedef struct ImportArgs {
        const char *folder;
        const char *name;
        int source_fd;
        uint64_t size;
        char *const *reserved;          /* names other writers are about to create: never taken */
} ImportArgs;

static json_object *named_error(const char *name, const char *format, ...) _printf_(2, 3);
static json_object *named_error(const char *name, const char *format, ...) {
        char msg[1024];
        json_object *o;
        va_list ap;

        va_start(ap, format);
        vsnprintf(msg, sizeof(msg), format, ap);
        va_end(ap);
        o = worker_error("%s", msg);
        json_object_object_add(o, "error_name", json_object_new_string(name));
        return o;
}

static int copy_fd(int from, int to, uint64_t size) {
        static char buf[1 << 17];
        uint64_t done = 0;

        /* Read up to the size seen at the start: a file that grows meanwhile cannot make us fill
         * the disk. */
        while (done < size) {
                size_t want = size - done < sizeof(buf) ? size - done : sizeof(buf);
                ssize_t k = pread(from, buf, want, (off_t) done);
                int r;

                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        return -EPIPE;     /* shrank under us */
                r = write_all(to, buf, k);
                if (r < 0)
                        return r;
                done += k;
        }
        return fsync(to) < 0 ? -errno : 0;
}

/* The file the copy goes to: unnamed (O_TMPFILE), named later through /proc/self/fd. Where the file system
 * cannot make one, or /proc is missing, a new name no backup has (IMPORT_TEMP_PREFIX), which the daemon
 * removes should this worker die (and backups_recover() at start). Mode 0600, as created backups: a backup
 * holds users.yaml's password hashes. *ret_temp: that name, or NULL for an unnamed file. */
static int open_copy(int dir_fd, int *ret_fd, char **ret_temp) {
        /* The test suite takes the fallback's way on file systems that have O_TMPFILE. */
        bool unnamed = !getenv("OPBACKUP_TEST_NO_TMPFILE");
        char proc[64];
        int fd;

        if (unnamed) {
                fd = openat(dir_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
                if (fd >= 0) {
                        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
                        if (access(proc, F_OK) == 0) {
                                *ret_fd = fd;
                                *ret_temp = NULL;
                                return 0;
                        }
                        close(fd);
                } else if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
                        return -errno;
        }
        for (unsigned attempt = 0; attempt < 16; attempt++) {
                uint64_t rnd = 0;
                char *name;

                if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
                        rnd = (uint64_t) getpid() << 32 ^ (uint64_t) time(NULL) << 8 ^ attempt;
                if (asprintf(&name, IMPORT_TEMP_PREFIX "%016" PRIx64 IMPORT_TEMP_SUFFIX, rnd) < 0)
                        return -ENOMEM;
                fd = openat(dir_fd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (fd >= 0) {
                        *ret_fd = fd;
                        *ret_temp = name;
                        return 0;
                }
                free(name);
                if (errno != EEXIST)
                        return -errno;
        }
        return -EEXIST;
}

/* Gives the checked copy the first of name, name.1.zip, name.2.zip ... that is free and no other writer
 * reserved. Never replaces a file: a name that appeared meanwhile is passed over. */
static int name_copy(int dir_fd, int fd, const char *temp, const char *name, char *const *reserved, char **ret) {
        char proc[64];

        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
        for (unsigned n = 0; n <= BACKUP_NAME_VARIANTS_MAX; n++) {
                _cleanup_free_ char *candidate = backup_name_variant(name, n);
                int r;

                if (!candidate)
                        return -ENOMEM;
                if (!backup_name_is_valid(candidate))
                        return -ENAMETOOLONG;
                if (strv_contains(reserved, candidate))
                        continue;
                if (temp)
                        r = rename_noreplace(dir_fd, temp, candidate);
                else
                        r = linkat(AT_FDCWD, proc, dir_fd, candidate, AT_SYMLINK_FOLLOW) < 0 ? -errno : 0;
                if (r >= 0) {
                        *ret = TAKE_PTR(candidate);
                        return 0;
                }
                if (r != -EEXIST)
                        return r;
        }
        return -EEXIST;
}

/* Before anything is created or copied: is it a zip at all (from its end, a few reads whatever its size),
 * and a backup (metadata.json, through the central directory)? The copy is checked again: the file may
 * change while it is copied. */
static json_object *check_source(const ImportArgs *a) {
        _cleanup_(backup_info_done) BackupInfo info = {};
        _cleanup_free_ char *why = NULL;
        int r;

        r = zip_directory_find(a->source_fd, &(ZipDirectory) {}, &why);
        if (r == -EBADMSG)
                return named_error(BUS_ERROR_INVALID_BACKUP, "Not imported: %s. Pass an OctoPrint backup (a zip).",
                                   why);
        if (r < 0)
                return worker_error("Cannot read the file to import: %s", why ?: strerror(-r));
        free(why);
        why = NULL;
        r = backup_info_read_sized(a->source_fd, a->size, &info, &why);
        if (r == -EBADMSG)
                return named_error(BUS_ERROR_INVALID_BACKUP, "Not imported: %s", why ?: strerror(-r));
        if (r < 0)
                return worker_error("Cannot read the file to import: %s", why ?: strerror(-r));
        return NULL;
}

/* A failure once the copy exists: a named one goes again. (An unnamed one goes when fd is closed.) */
static json_object *undo(int dir_fd, const char *temp, json_object *error) {
        if (temp)
                (void) unlinkat(dir_fd, temp, 0);
        return error;
}

/* Free bytes where the copy would go: the backup folder, or where it would be made. */
static int free_bytes(const char *folder, uint64_t *ret) {
        _cleanup_free_ char *parent = strdup(folder);
        struct statvfs sv;
        char *slash;

        if (!parent)
                return -ENOMEM;
        if (statvfs(folder, &sv) < 0) {
                if (errno != ENOENT || !(slash = strrchr(parent, '/')))
                        return -errno;
                *(slash == parent ? slash + 1 : slash) = 0;
                if (statvfs(parent, &sv) < 0)
                        return -errno;
        }
        *ret = (uint64_t) sv.f_bavail * sv.f_frsize;
        return 0;
}

static json_object *import_run(const ImportArgs *a, int report_fd) {
        _cleanup_free_ char *temp = NULL, *stored = NULL, *why = NULL;
        _cleanup_(backup_info_done) BackupInfo info = {};
        _cleanup_close_ int dir_fd = -1, fd = -1;
        uint64_t avail = UINT64_MAX;
        json_object *o;
        int r;

        r = zip_dlopen(&why);
        if (r < 0)
                return worker_error("Cannot check the backup: %s", why ?: strerror(-r));
        /* Refusals come before anything is made, the backup folder included. */
        o = check_source(a);
        if (o)
                return o;
        if (free_bytes(a->folder, &avail) >= 0 && avail < a->size) {
                char need[32], have[32];
                return named_error(BUS_ERROR_NOT_ENOUGH_SPACE,
                                   "Not enough free space in the backup folder: the backup needs %s, %s free.",
                                   format_bytes(need, sizeof(need), a->size), format_bytes(have, sizeof(have), avail));
        }

        (void) mkdir(a->folder, 0755);
        r = backup_folder_open(a->folder, &dir_fd);
        if (r < 0)
                return worker_error("Cannot open the backup folder %s: %s", a->folder, strerror(-r));
        r = open_copy(dir_fd, &fd, &temp);
        if (r < 0)
                return worker_error("Cannot create the copy in %s: %s", a->folder, strerror(-r));
        if (temp) {
                o = json_object_new_object();
                json_object_object_add(o, "temp", json_object_new_string(temp));
                if (worker_send(report_fd, o) < 0)
                        return undo(dir_fd, temp, NULL);
        }
        r = copy_fd(a->source_fd, fd, a->size);
        if (r < 0)
                return undo(dir_fd, temp, r == -ENOSPC ?
                            named_error(BUS_ERROR_NOT_ENOUGH_SPACE, "The backup folder %s is full.", a->folder) :
                            worker_error("Cannot copy the backup: %s", strerror(-r)));
        free(why);
        why = NULL;
        r = backup_info_read(fd, &info, &why);
        if (r < 0)
                return undo(dir_fd, temp, named_error(BUS_ERROR_INVALID_BACKUP,
                            "Not imported: %s (did it change while it was copied?)", why ?: strerror(-r)));
        r = name_copy(dir_fd, fd, temp, a->name, a->reserved, &stored);
        if (r < 0)
                return undo(dir_fd, temp, worker_error("Cannot name the imported backup %s: %s", a->name,
                                                       strerror(-r)));
        (void) fsync(dir_fd);
        o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(stored));
        return o;
}

/* The checks on the descriptor that need no worker. */
static int check_source_fd(int fd, uint64_t *ret_size, sd_bus_error *error) {
        struct stat st;
        int flags;

        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Import needs a regular file, not %s: pass a zip file opened for reading.",
                                         S_ISDIR(st.st_mode) ? "a directory" :
                                         S_ISFIFO(st.st_mode) ? "a pipe" :
                                         S_ISSOCK(st.st_mode) ? "a socket" : "a device");
        flags = fcntl(fd, F_GETFL);
        if (flags < 0 || (flags & O_ACCMODE) == O_WRONLY || (flags & O_PATH))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "The file descriptor is not open for reading.");
        *ret_size = st.st_size;
        return 0;
}

/* ---- Names being imported ---- */

bool backup_import_may_take(Instance *i, const char *name) {
        STRV_FOREACH(n, i->importing)
                if (backup_name_is_variant(name, *n))
                        return true;
        return false;
}

static void importing_remove(Instance *i, const char *name) {
        size_t n = strv_length(i->importing);

        for (size_t k = 0; k < n; k++)
                if (streq(i->importing[k], name)) {
                        free(i->importing[k]);
                        memmove(i->importing + k, i->importing + k + 1, (n - k) * sizeof(char *));
                        return;
                }
}

/* What the worker must not name its copy: the names of the instance's backup jobs (a backup queued or
 * running will create its own; the names of other jobs, a restore's, an upload's, a fetch's, are of backups
 * that are there or that this very import stores) and those other imports in flight asked for. */
static int reserved_names(Instance *i, char ***ret) {
        _cleanup_strv_free_ char **l = calloc(1, sizeof(char *));

        if (!l)
                return -ENOMEM;
        for (Job *j = i->daemon->jobs; j; j = j->next)
                if (j->instance == i && j->operation == JOB_BACKUP && j->name && strv_extend(&l, j->name) < 0)
                        return -ENOMEM;
        STRV_FOREACH(n, i->importing)
                if (strv_extend(&l, *n) < 0)
                        return -ENOMEM;
        *ret = TAKE_PTR(l);
        return 0;
}

/* ---- Asynchronous: the copy may take minutes; the daemon serves others meanwhile ---- */

typedef struct ImportOp {
        Instance *instance;
        sd_bus_message *request;
        ImportArgs args;
        char *name;
        char **reserved;
        char *temp;                     /* the fallback's named copy, as the worker said */
        WorkerPipe *worker;
        json_object *result;
        import_done_fn done;
        void *userdata;
} ImportOp;

static ImportOp *import_op_free(ImportOp *op) {
        if (!op)
                return NULL;
        worker_pipe_free(op->worker);
        sd_bus_message_unref(op->request);
        json_object_put(op->result);
        strv_free(op->reserved);
        free(op->temp);
        free(op->name);
        free(op);
        return NULL;
}

static int import_worker_main(int fd, void *userdata) {
        ImportOp *op = userdata;
        json_object *json;

        json = import_run(&op->args, fd);
        if (!json)
                json = worker_error("The import failed.");
        return worker_send(fd, json) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

static void on_import_message(json_object *msg, void *userdata) {
        ImportOp *op = userdata;
        json_object *v;

        if (json_object_object_get_ex(msg, "temp", &v)) {
                (void) free_and_strdup(&op->temp, json_object_get_string(v));
                return;
        }
        json_object_put(op->result);
        op->result = json_object_get(msg);
}

/* Removing the named copy a dead import worker left: as the instance user, from the event loop, before the
 * caller hears of the failure (so that what it then sees in the folder is as it was). */
typedef struct TempCleanup {
        ImportOp *op;
        sd_bus_error error;
        Worker *worker;
} TempCleanup;

static int remove_temp_task(void *userdata, json_object **ret_json, int *ret_fd) {
        TempCleanup *c = userdata;
        _cleanup_close_ int dir_fd = -1;

        *ret_json = json_object_new_object();
        if (backup_folder_open(c->op->args.folder, &dir_fd) >= 0 && unlinkat(dir_fd, c->op->temp, 0) >= 0)
                (void) fsync(dir_fd);
        return 0;
}

static void import_failed(ImportOp *op, const sd_bus_error *error) {
        op->done(op->instance, op->request, NULL, error, op->userdata);
        import_op_free(op);
}

static void on_temp_removed(int r, WorkerReply *reply, void *userdata) {
        TempCleanup *c = userdata;
        ImportOp *op = c->op;

        if (r >= 0)
                log_notice("Instance %s: removed %s/%s, left by an import that did not finish.", op->instance->name,
                           op->args.folder, op->temp);
        else
                log_warning_errno(r, "Instance %s: cannot remove %s/%s, left by an import that did not finish "
                                  "(the next start of the daemon does): %m", op->instance->name, op->args.folder,
                                  op->temp);
        import_failed(op, &c->error);
        worker_free(c->worker);
        sd_bus_error_free(&c->error);
        free(c);
}

/* A worker that died did not remove its named copy (an unnamed one went with it): remove it, then report
 * the error. Takes op. */
static void import_fail_and_clean_up(ImportOp *op, const sd_bus_error *error) {
        Instance *i = op->instance;
        TempCleanup *c;
        int r;

        if (!op->temp || !import_is_temp_name(op->temp))
                return import_failed(op, error);
        c = calloc(1, sizeof(*c));
        /* sd_bus_error_copy() returns the error's errno, not whether it copied. */
        if (c)
                (void) sd_bus_error_copy(&c->error, error);
        if (!c || !sd_bus_error_is_set(&c->error)) {
                free(c);
                log_oom();
                return import_failed(op, error);
        }
        c->op = op;
        r = worker_start(i->daemon->event, i->uid, i->gid, "opbackup-cleanup", CLEANUP_TIMEOUT_SEC,
                         remove_temp_task, c, -1, on_temp_removed, c, &c->worker);
        if (r < 0) {
                log_warning_errno(r, "Instance %s: cannot start removing %s/%s: %m", i->name, op->args.folder,
                                  op->temp);
                sd_bus_error_free(&c->error);
                free(c);
                import_failed(op, error);
        }
}

static void on_import_exit(int si_code, int status, void *userdata) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        ImportOp *op = userdata;
        Daemon *d = op->instance->daemon;
        WorkerReply reply = { .json = op->result, .fd = -1 };
        json_object *v = NULL;

        d->n_pending_imports--;
        importing_remove(op->instance, op->name);
        daemon_note_activity(d);
        if (!op->result)
                (void) sd_bus_error_setf(&error, SD_BUS_ERROR_FAILED, "The import worker %s %d.",
                                         si_code == CLD_EXITED ? "exited with status" : "was killed by signal", status);
        else if (worker_reply_error(&reply, &error) >= 0 && !json_object_object_get_ex(op->result, "name", &v))
                (void) sd_bus_error_set(&error, SD_BUS_ERROR_FAILED, "The import worker gave no answer.");

        if (sd_bus_error_is_set(&error))
                return import_fail_and_clean_up(op, &error);
        log_info("Instance %s: imported backup %s", op->instance->name, json_object_get_string(v));
        op->done(op->instance, op->request, json_object_get_string(v), NULL, op->userdata);
        import_op_free(op);
}

int backup_import_start(Instance *i, sd_bus_message *m, int fd, const char *name, import_done_fn done,
                        void *userdata, sd_bus_error *error) {
        ImportOp *op;
        int r;

        r = check_instance_usable(i, error);
        if (r < 0)
                return r;
        op = calloc(1, sizeof(*op));
        if (!op)
                return -ENOMEM;
        op->name = isempty(name) ? backup_filename("imported", time(NULL), false) : strdup(name);
        if (!op->name) {
                free(op);
                return -ENOMEM;
        }
        r = check_backup_name(op->name, error);
        if (r >= 0)
                r = check_source_fd(fd, &op->args.size, error);
        if (r >= 0)
                r = reserved_names(i, &op->reserved);
        if (r >= 0)
                r = strv_extend(&i->importing, op->name);
        if (r < 0) {
                import_op_free(op);
                return r;
        }
        op->instance = i;
        op->request = sd_bus_message_ref(m);
        op->args = (ImportArgs) { .folder = i->backup_folder, .name = op->name, .source_fd = fd,
                                  .size = op->args.size, .reserved = op->reserved };
        op->done = done;
        op->userdata = userdata;
        r = worker_pipe_start(i->daemon->event, i->uid, i->gid, "opbackup-import", import_worker_main, op, &fd, 1,
                              on_import_message, on_import_exit, op, &op->worker);
        if (r < 0) {
                importing_remove(i, op->name);
                import_op_free(op);
                return r;
        }
        i->daemon->n_pending_imports++;
        return 1;
}

static void import_reply(Instance *i, sd_bus_message *m, const char *stored, const sd_bus_error *error,
                         void *userdata) {
        if (error)
                (void) sd_bus_reply_method_error(m, error);
        else
                (void) sd_bus_reply_method_return(m, "s", stored);
}

int method_import_backup_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const char *name;
        int fd, r;

        r = sd_bus_message_read(m, "hs", &fd, &name);
        if (r < 0)
                return r;
        return backup_import_start(userdata, m, fd, name, import_reply, NULL, error);
}
