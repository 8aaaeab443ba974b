/* SPDX-License-Identifier: GPL-2.0-or-later */

/* ImportBackup: copies a zip from the caller's file descriptor into the backup folder. The daemon never
 * opens a path a client names; it reads the descriptor the client opened. The copy is made by a worker
 * as the instance user, checked to be an OctoPrint backup, and only then given its name. */

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>

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
#include <sys/wait.h>

#define NAME_COUNTER_MAX 999

typedef struct ImportArgs {
        const char *folder;
        const char *name;
        int source_fd;
        uint64_t size;
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

/* "name.zip" is taken: "name.1.zip", "name.2.zip", ... */
static int link_free_name(int dir_fd, const char *tmp, const char *name, char **ret) {
        for (int n = 0; n <= NAME_COUNTER_MAX; n++) {
                _cleanup_free_ char *candidate = NULL;

                if (n == 0)
                        candidate = strdup(name);
                else if (asprintf(&candidate, "%.*s.%d.zip", (int) (strlen(name) - 4), name, n) < 0)
                        candidate = NULL;
                if (!candidate)
                        return -ENOMEM;
                if (!backup_name_is_valid(candidate))
                        return -ENAMETOOLONG;
                if (renameat2(dir_fd, tmp, dir_fd, candidate, RENAME_NOREPLACE) == 0) {
                        *ret = TAKE_PTR(candidate);
                        return 0;
                }
                if (errno != EEXIST)
                        return -errno;
        }
        return -EEXIST;
}

static int import_task(void *userdata, json_object **ret_json, int *ret_fd) {
        ImportArgs *a = userdata;
        _cleanup_free_ char *tmp = NULL, *stored = NULL, *why = NULL;
        _cleanup_(backup_info_done) BackupInfo info = {};
        _cleanup_close_ int dir_fd = -1, fd = -1;
        struct statvfs sv;
        int r;

        r = zip_dlopen(&why);
        if (r < 0) {
                *ret_json = worker_error("Cannot check the backup: %s", why ?: strerror(-r));
                return 0;
        }
        (void) mkdir(a->folder, 0755);
        r = backup_folder_open(a->folder, &dir_fd);
        if (r < 0) {
                *ret_json = worker_error("Cannot open the backup folder %s: %s", a->folder, strerror(-r));
                return 0;
        }
        if (fstatvfs(dir_fd, &sv) == 0 && (uint64_t) sv.f_bavail * sv.f_frsize < a->size) {
                char need[32], have[32];
                *ret_json = named_error(BUS_ERROR_NOT_ENOUGH_SPACE,
                                        "Not enough free space in the backup folder: the backup needs %s, %s free.",
                                        format_bytes(need, sizeof(need), a->size),
                                        format_bytes(have, sizeof(have), (uint64_t) sv.f_bavail * sv.f_frsize));
                return 0;
        }
        if (asprintf(&tmp, ".%s", a->name) < 0)
                return -ENOMEM;
        fd = openat(dir_fd, tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0) {
                *ret_json = worker_error("Cannot create %s/%s: %s", a->folder, tmp, strerror(errno));
                return 0;
        }
        r = copy_fd(a->source_fd, fd, a->size);
        if (r < 0) {
                (void) unlinkat(dir_fd, tmp, 0);
                *ret_json = r == -ENOSPC ? named_error(BUS_ERROR_NOT_ENOUGH_SPACE, "The backup folder %s is full.",
                                                       a->folder)
                                         : worker_error("Cannot copy the backup: %s", strerror(-r));
                return 0;
        }
        r = backup_info_read(fd, &info, &why);
        if (r < 0) {
                (void) unlinkat(dir_fd, tmp, 0);
                *ret_json = named_error(BUS_ERROR_INVALID_BACKUP, "Not imported: %s", why ?: strerror(-r));
                return 0;
        }
        r = link_free_name(dir_fd, tmp, a->name, &stored);
        if (r < 0) {
                (void) unlinkat(dir_fd, tmp, 0);
                *ret_json = worker_error("Cannot name the imported backup %s: %s", a->name, strerror(-r));
                return 0;
        }
        (void) fsync(dir_fd);
        *ret_json = json_object_new_object();
        json_object_object_add(*ret_json, "name", json_object_new_string(stored));
        return 0;
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

/* ---- Asynchronous: the copy may take minutes; the daemon serves others meanwhile ---- */

typedef struct ImportOp {
        Instance *instance;
        sd_bus_message *request;
        ImportArgs args;
        char *name;
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
        free(op->name);
        free(op);
        return NULL;
}

static int import_worker_main(int fd, void *userdata) {
        ImportOp *op = userdata;
        json_object *json = NULL;
        int unused = -1;

        (void) import_task(&op->args, &json, &unused);
        if (!json)
                json = worker_error("The import failed.");
        return worker_send(fd, json) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

static void on_import_message(json_object *msg, void *userdata) {
        ImportOp *op = userdata;

        json_object_put(op->result);
        op->result = json_object_get(msg);
}

static void on_import_exit(int si_code, int status, void *userdata) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        ImportOp *op = userdata;
        Daemon *d = op->instance->daemon;
        WorkerReply reply = { .json = op->result, .fd = -1 };
        json_object *v;

        d->n_pending_imports--;
        daemon_note_activity(d);
        if (!op->result)
                (void) sd_bus_error_setf(&error, SD_BUS_ERROR_FAILED, "The import worker %s %d.",
                                         si_code == CLD_EXITED ? "exited with status" : "was killed by signal", status);
        else if (worker_reply_error(&reply, &error) >= 0 && !json_object_object_get_ex(op->result, "name", &v))
                (void) sd_bus_error_set(&error, SD_BUS_ERROR_FAILED, "The import worker gave no answer.");

        if (sd_bus_error_is_set(&error))
                op->done(op->instance, op->request, NULL, &error, op->userdata);
        else {
                log_info("Instance %s: imported backup %s", op->instance->name, json_object_get_string(v));
                op->done(op->instance, op->request, json_object_get_string(v), NULL, op->userdata);
        }
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
        op->name = isempty(name) ? backup_filename("imported", time(NULL)) : strdup(name);
        if (!op->name) {
                free(op);
                return -ENOMEM;
        }
        r = check_backup_name(op->name, error);
        if (r >= 0)
                r = check_source_fd(fd, &op->args.size, error);
        if (r < 0) {
                import_op_free(op);
                return r;
        }
        op->instance = i;
        op->request = sd_bus_message_ref(m);
        op->args = (ImportArgs) { .folder = i->backup_folder, .name = op->name, .source_fd = fd,
                                  .size = op->args.size };
        op->done = done;
        op->userdata = userdata;
        r = worker_pipe_start(i->daemon->event, i->uid, i->gid, "opbackup-import", import_worker_main, op, &fd, 1,
                              on_import_message, on_import_exit, op, &op->worker);
        if (r < 0) {
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
