/* SPDX-License-Identifier: GPL-2.0-or-later */

/* CreateBackup: validation at call time, a queue per instance, and the worker that runs the backup
 * engine (backup.c) as the instance user, reporting log lines and progress over a pipe as JSON lines. */

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "backup/backup-job.h"
#include "backup/backup.h"
#include "backup/files-cache.h"
#include "daemon/job.h"
#include "daemon/polkit.h"
#include "errors.h"
#include "folder/backup-folder.h"
#include "folder/backup-import.h"
#include "folder/backup-manage.h"
#include "folders.h"
#include "instance/instance.h"
#include "log.h"
#include "names.h"
#include "printer/printer-wait.h"
#include "remote/remote-task.h"
#include "util.h"
#include "worker/privs.h"
#include "worker/worker-pipe.h"
#include "worker/zip-dlopen.h"

#define BACKUP_QUEUE_MAX 8U
#define EXCLUDES_MAX 32U

typedef struct BackupJobData {
        char **excludes;                /* as the caller gave them, validated */
        bool name_generated;
        bool when_idle;                 /* wait while the printer prints (printer-wait.c) */
        PrinterWait *waiter;
        WorkerPipe *worker;
        RemoteTask *uploads;            /* the "uploading" stage: copies to CopyTo= remotes */
        /* what the worker reported */
        char *path;
        uint64_t size;
        char **metadata_excludes;
        char *error;
        bool canceled;
        /* The files cache: <state>/files-cache/<instance> (read), .<instance>.new (written by the worker,
         * renamed over it when the backup is made). */
        int cache_dir_fd, cache_fds[2];
        bool cache_written;
} BackupJobData;

static int safe_close(int fd) {
        if (fd >= 0)
                close(fd);
        return -1;
}

static void backup_job_data_free(void *p) {
        BackupJobData *b = p;

        if (!b)
                return;
        strv_free(b->excludes);
        printer_wait_free(b->waiter);
        worker_pipe_free(b->worker);
        remote_task_free(b->uploads);
        free(b->path);
        strv_free(b->metadata_excludes);
        free(b->error);
        safe_close(b->cache_dir_fd);
        safe_close(b->cache_fds[0]);
        safe_close(b->cache_fds[1]);
        free(b);
}

/* "uploads", "timelapse", ...: known and excludable, each once. */
static int read_excludes(sd_bus_message *m, char ***ret, sd_bus_error *error) {
        _cleanup_strv_free_ char **l = NULL;
        int r;

        r = sd_bus_message_read_strv(m, &l);
        if (r < 0)
                return r;
        if (strv_length(l) > EXCLUDES_MAX)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Too many excludes.");
        STRV_FOREACH(e, l) {
                FolderId id = folder_id_from_string(*e);

                if ((int) id < 0 || !folder_excludable(id)) {
                        char list[256] = "";
                        for (int f = 0; f < _FOLDER_MAX; f++)
                                if (folder_excludable(f)) {
                                        if (*list)
                                                strncat(list, ", ", sizeof(list) - strlen(list) - 1);
                                        strncat(list, folder_id_to_string(f), sizeof(list) - strlen(list) - 1);
                                }
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "Cannot exclude '%.64s'%s: the folders that can be excluded are %s.",
                                                 *e, (int) id >= 0 ? " (it is never in a backup)" : "", list);
                }
                for (char *const *f = l; f < e; f++)
                        if (streq(*f, *e))
                                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                         "'%s' is excluded twice.", *e);
        }
        *ret = TAKE_PTR(l);
        return 0;
}

static int read_options(sd_bus_message *m, char **ret_name, bool *ret_when_idle, bool *ret_scheduled,
                        sd_bus_error *error) {
        const char *key;
        int r;

        *ret_name = NULL;
        *ret_when_idle = false;
        *ret_scheduled = false;
        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                r = sd_bus_message_read(m, "s", &key);
                if (r < 0)
                        return r;
                if (streq(key, "name")) {
                        const char *name;

                        r = sd_bus_message_read(m, "v", "s", &name);
                        if (r < 0)
                                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                         "The option 'name' must be a string.");
                        r = check_backup_name(name, error);
                        if (r < 0)
                                return r;
                        if (free_and_strdup(ret_name, name) < 0)
                                return -ENOMEM;
                } else if (streq(key, "when-idle")) {
                        int b;

                        r = sd_bus_message_read(m, "v", "b", &b);
                        if (r < 0)
                                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                         "The option 'when-idle' must be a boolean.");
                        *ret_when_idle = b;
                } else if (streq(key, "scheduled")) {
                        int b;

                        r = sd_bus_message_read(m, "v", "b", &b);
                        if (r < 0)
                                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                         "The option 'scheduled' must be a boolean.");
                        *ret_scheduled = b;
                } else
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Unknown option '%.64s'.", key);
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

/* Taken: a backup of the folder, a job's, or one an import in flight may store its copy under. */
static bool name_in_use(Instance *i, const char *name) {
        if (backup_import_may_take(i, name))
                return true;
        for (Job *j = i->daemon->jobs; j; j = j->next)
                if (j->instance == i && streq_ptr(j->name, name))
                        return true;
        for (size_t k = 0; k < i->backup_cache.n; k++)
                if (streq(i->backup_cache.entries[k].name, name))
                        return true;
        return false;
}

/* {prefix}-backup-{now}.zip (-scheduled.zip for the schedule's); two backups asked for in the same second
 * get the next free second rather than one overwriting the other. */
static int generate_name(Instance *i, bool scheduled, char **ret) {
        _cleanup_free_ char *prefix = backup_prefix_from_appearance(i->octo.appearance_name);
        time_t t = time(NULL);

        if (!prefix)
                return -ENOMEM;
        for (int n = 0; n < 3600; n++, t++) {
                char *name = backup_filename(prefix, t, scheduled);
                if (!name)
                        return -ENOMEM;
                if (!name_in_use(i, name)) {
                        *ret = name;
                        return 0;
                }
                free(name);
        }
        return -EBUSY;
}

static unsigned count_jobs(Instance *i, JobOperation op, bool *ret_restore_running) {
        unsigned n = 0;

        *ret_restore_running = false;
        for (Job *j = i->daemon->jobs; j; j = j->next)
                if (j->instance == i) {
                        if (j->operation == JOB_RESTORE)
                                *ret_restore_running = true;
                        if (j->operation == op)
                                n++;
                }
        return n;
}

static int backup_job_start(Job *j);

/* What CreateBackup was asked, while the backup folder is listed. */
typedef struct CreateRequest {
        sd_bus_message *request;
        char **excludes;
        char *name;
        bool when_idle;
        bool scheduled;
} CreateRequest;

static void create_request_free(CreateRequest *c) {
        sd_bus_message_unref(c->request);
        strv_free(c->excludes);
        free(c->name);
        free(c);
}

/* The checks that need the folder's listing, then the job. */
static int create_backup_job(Instance *i, CreateRequest *c, sd_bus_error *error) {
        sd_bus_message *m = c->request;
        BackupJobData *data;
        bool restore_running;
        int r;

        if (count_jobs(i, JOB_BACKUP, &restore_running) >= BACKUP_QUEUE_MAX + 1)
                return sd_bus_error_setf(error, BUS_ERROR_BUSY, "%u backups of %s are queued already; try again "
                                         "when they are done.", BACKUP_QUEUE_MAX, i->name);
        if (restore_running)
                return sd_bus_error_setf(error, BUS_ERROR_BUSY, "A restore of %s is running; back up after it.",
                                         i->name);
        if (c->name && name_in_use(i, c->name))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "A backup named %s exists already, is being made or may be the name of "
                                         "a backup being imported: choose another name.", c->name);
        if (!c->name) {
                r = generate_name(i, c->scheduled, &c->name);
                if (r < 0)
                        return r;
        }

        data = calloc(1, sizeof(*data));
        if (!data)
                return -ENOMEM;
        data->cache_dir_fd = data->cache_fds[0] = data->cache_fds[1] = -1;
        data->excludes = TAKE_PTR(c->excludes);
        data->when_idle = c->when_idle;
        return job_new_and_reply(&(JobDescription) {
                .instance = i,
                .operation = JOB_BACKUP,
                .action = ACTION_CREATE,
                .request = m,
                .name = c->name,
                .start = backup_job_start,
                .cancel = backup_job_cancel,
                .data = data,
                .free_data = backup_job_data_free,
        });
}

static void on_create_listed(Instance *i, int r, const char *err, void *userdata) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        CreateRequest *c = userdata;

        if (r < 0 && err)
                r = sd_bus_error_set(&error, SD_BUS_ERROR_FAILED, err);
        else if (r >= 0)
                r = create_backup_job(i, c, &error);
        if (sd_bus_error_is_set(&error))
                r = sd_bus_reply_method_error(c->request, &error);
        else if (r < 0)
                r = sd_bus_reply_method_errno(c->request, r, NULL);
        if (r < 0)
                log_debug("Failed to reply to CreateBackup(): %d", r);
        create_request_free(c);
}

int method_create_backup_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_strv_free_ char **excludes = NULL;
        _cleanup_free_ char *name = NULL;
        Instance *i = userdata;
        CreateRequest *c;
        bool when_idle, scheduled;
        int r;

        r = read_excludes(m, &excludes, error);
        if (r < 0)
                return r;
        r = read_options(m, &name, &when_idle, &scheduled, error);
        if (r < 0)
                return r;
        r = check_instance_usable(i, error);
        if (r < 0)
                return r;

        /* Names already in the folder count as taken: look before answering. */
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        *c = (CreateRequest) {
                .request = sd_bus_message_ref(m),
                .excludes = TAKE_PTR(excludes),
                .name = TAKE_PTR(name),
                .when_idle = when_idle,
                .scheduled = scheduled,
        };
        r = backup_list_refresh_start(i, on_create_listed, c);
        if (r < 0) {
                create_request_free(c);
                return r;
        }
        return 1;
}

/* ---- In the worker, as the instance user ---- */

static int backup_worker_main(int fd, void *userdata) {
        Job *j = userdata;       /* the daemon's memory, as fork() copied it */
        Instance *i = j->instance;
        BackupJobData *b = j->data;
        WorkerReporter reporter = { .fd = fd };
        BackupCallbacks cb = { .log = worker_report_log, .progress = worker_report_progress, .userdata = &reporter };
        BackupRequest req = {
                .instance = i->name,
                .octo = &i->octo,
                .basedir = i->config->basedir,
                .config_file = i->config->config_file,
                .backup_folder = i->backup_folder,
                .venv = i->venv,
                .bundled_plugins = i->config->bundled_plugins,
                .excludes = b->excludes,
                .name = j->name,
                .octoprint_version = i->octoprint_version,
                .config_dir = i->daemon->config_dir,
                .compression_level = i->config->compression_level,
                .files_cache_fds = b->cache_dir_fd >= 0 ? b->cache_fds : NULL,
                .files_cache_written = &b->cache_written,
        };
        _cleanup_strv_free_ char **metadata_excludes = NULL;
        _cleanup_free_ char *path = NULL, *error = NULL;
        json_object *o = json_object_new_object();
        uint64_t size = 0;
        int r;

        r = zip_dlopen(&error);
        if (r >= 0)
                r = backup_execute(&req, &cb, &path, &size, &metadata_excludes, &error);
        if (r < 0) {
                json_object_object_add(o, "error", json_object_new_string(error ?: strerror(-r)));
                json_object_object_add(o, "canceled", json_object_new_boolean(r == -ECANCELED));
        } else {
                json_object *ex = json_object_new_array();
                STRV_FOREACH(e, metadata_excludes)
                        json_object_array_add(ex, json_object_new_string(*e));
                json_object_object_add(o, "path", json_object_new_string(path));
                json_object_object_add(o, "size", json_object_new_uint64(size));
                json_object_object_add(o, "excludes", ex);
                json_object_object_add(o, "files_cache", json_object_new_boolean(b->cache_written));
        }
        return worker_send(fd, o) < 0 || r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* ---- In the daemon ---- */

static void on_worker_message(json_object *msg, void *userdata) {
        Job *j = userdata;
        BackupJobData *b = j->data;
        json_object *v, *w;

        if (job_apply_worker_message(j, msg))
                return;
        if (json_object_object_get_ex(msg, "error", &v)) {
                (void) free_and_strdup(&b->error, json_object_get_string(v));
                b->canceled = json_object_object_get_ex(msg, "canceled", &w) && json_object_get_boolean(w);
        } else if (json_object_object_get_ex(msg, "path", &v)) {
                (void) free_and_strdup(&b->path, json_object_get_string(v));
                if (json_object_object_get_ex(msg, "size", &w))
                        b->size = json_object_get_uint64(w);
                b->cache_written = json_object_object_get_ex(msg, "files_cache", &w) && json_object_get_boolean(w);
                strv_free(b->metadata_excludes);
                b->metadata_excludes = calloc(1, sizeof(char *));
                if (json_object_object_get_ex(msg, "excludes", &w) && b->metadata_excludes)
                        for (size_t k = 0; k < json_object_array_length(w); k++)
                                (void) strv_extend(&b->metadata_excludes,
                                                   json_object_get_string(json_object_array_get_idx(w, k)) ?: "");
        }
}

static int append_backup_created(sd_bus_message *m, void *userdata) {
        Job *j = userdata;
        BackupJobData *b = j->data;
        int r;

        r = sd_bus_message_append(m, "sss", j->instance->name, j->name, b->path);
        if (r < 0)
                return r;
        return sd_bus_message_append_strv(m, b->metadata_excludes);
}

static int append_details(sd_bus_message *m, void *userdata) {
        Job *j = userdata;
        BackupJobData *b = j->data;
        int r;

        r = sd_bus_message_append(m, "{sv}{sv}{sv}", "name", "s", j->name, "path", "s", b->path,
                                  "size", "t", b->size);
        if (r >= 0 && b->uploads)
                r = remote_task_append_uploads(m, b->uploads);
        return r;
}

/* The backup is made whatever the uploads did: a failed upload is in the details, and the next scheduled
 * run copies what a remote lacks. */
static void on_uploads_done(RemoteTask *t, void *userdata) {
        _cleanup_free_ char *msg = NULL;
        Job *j = userdata;
        Instance *i = j->instance;

        if (j->cancel_requested && asprintf(&msg, "Canceled during the upload; the backup %s is kept.", j->name) < 0)
                msg = NULL;
        job_finish(j, j->cancel_requested ? "canceled" : "done", msg, append_details, j);
        instance_start_next_job(i);
}

/* 1 when the uploads run (they finish the job), 0 when there are none. */
static int start_uploads(Job *j) {
        BackupJobData *b = j->data;
        Instance *i = j->instance;
        int r;

        if (strv_length(i->config->copy_to) == 0)
                return 0;
        job_set_progress(j, "uploading", 0, b->size * strv_length(i->config->copy_to));
        r = remote_task_start(i, j, REMOTE_OP_PUT, i->config->copy_to, j->name, -1, on_uploads_done, j, &b->uploads);
        if (r < 0) {
                log_warning_errno(r, "Instance %s: cannot start the upload of %s: %m", i->name, j->name);
                return 0;
        }
        return 1;
}

static void cleanup_temp_files(Instance *i, bool imports);

/* ---- The files cache, in the daemon's state directory ---- */

static int new_cache_name(Instance *i, char **ret) {
        return asprintf(ret, ".%s.new", i->name) < 0 ? -ENOMEM : 0;
}

/* Opens <state>/files-cache (made, like <state>, 0700 as needed) and in it the instance's cache and an empty file for
 * the next one; or, with FilesCache=no, removes the instance's cache. Without them the backup reads
 * every file: nothing here fails the job. */
static void files_cache_open(Instance *i, BackupJobData *b) {
        _cleanup_free_ char *next = NULL;
        _cleanup_close_ int state = -1, dir = -1;

        state = open(i->daemon->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (state < 0 && errno == ENOENT && i->config->files_cache) {
                if (mkdir(i->daemon->state_dir, 0700) < 0 && errno != EEXIST)
                        log_debug("Cannot create %s: %m", i->daemon->state_dir);
                state = open(i->daemon->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        }
        if (state < 0) {
                if (i->config->files_cache)
                        log_warning_errno(errno, "Instance %s: cannot open the state directory %s (%m): backing up "
                                          "without the files cache", i->name, i->daemon->state_dir);
                return;
        }
        if (mkdirat(state, "files-cache", 0700) < 0 && errno != EEXIST)
                goto fail;
        dir = openat(state, "files-cache", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dir < 0)
                goto fail;
        if (!i->config->files_cache) {
                if (unlinkat(dir, i->name, 0) < 0 && errno != ENOENT)
                        log_warning_errno(errno, "Instance %s: cannot remove its files cache: %m", i->name);
                return;
        }
        if (new_cache_name(i, &next) < 0)
                return;
        b->cache_fds[0] = openat(dir, i->name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (b->cache_fds[0] < 0 && errno != ENOENT)
                log_warning_errno(errno, "Instance %s: cannot open its files cache: %m", i->name);
        b->cache_fds[1] = openat(dir, next, O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
        if (b->cache_fds[1] < 0)
                goto fail;
        /* The worker writes it as the instance's user: the file is that user's too, so that what it writes
         * counts against the user's quota, not root's (the folder, root's and 0700, is out of its reach). */
        if (fchown(b->cache_fds[1], i->uid, i->gid) < 0)
                goto fail;
        b->cache_dir_fd = TAKE_FD(dir);
        return;
fail:
        log_warning_errno(errno, "Instance %s: cannot use %s/files-cache (%m): backing up without the files cache",
                          i->name, i->daemon->state_dir);
        b->cache_fds[0] = safe_close(b->cache_fds[0]);
}

/* After the worker: the next cache replaces the current one if the backup was made and the cache
 * written; else it is dropped (the current one still describes a backup that is there). */
static void files_cache_finish(Instance *i, BackupJobData *b, bool made) {
        _cleanup_free_ char *next = NULL;
        struct stat st;

        if (b->cache_dir_fd < 0 || new_cache_name(i, &next) < 0)
                return;
        if (made && b->cache_written && fstat(b->cache_fds[1], &st) == 0 &&
            (uint64_t) st.st_size > FILES_CACHE_MAX_SIZE) {
                log_warning("Instance %s: its new files cache is larger than %llu MiB: dropped (the next backup "
                            "reads every file).", i->name, FILES_CACHE_MAX_SIZE >> 20);
                (void) unlinkat(b->cache_dir_fd, next, 0);
        } else if (made && b->cache_written) {
                if (renameat(b->cache_dir_fd, next, b->cache_dir_fd, i->name) < 0)
                        log_warning_errno(errno, "Instance %s: cannot store its files cache: %m", i->name);
                else
                        (void) fsync(b->cache_dir_fd);
        } else
                (void) unlinkat(b->cache_dir_fd, next, 0);
        b->cache_fds[0] = safe_close(b->cache_fds[0]);
        b->cache_fds[1] = safe_close(b->cache_fds[1]);
        b->cache_dir_fd = safe_close(b->cache_dir_fd);
}

static void on_worker_exit(int si_code, int status, void *userdata) {
        _cleanup_free_ char *why = NULL;
        Job *j = userdata;
        BackupJobData *b = j->data;
        Instance *i = j->instance;

        files_cache_finish(i, b, b->path && !b->error && si_code == CLD_EXITED && status == 0);
        if (b->path && !b->error && si_code == CLD_EXITED && status == 0) {
                log_info("Instance %s: backup %s created (%" PRIu64 " bytes).", i->name, b->path, b->size);
                (void) daemon_emit_signal(i->daemon, i, OBJECT_ROOT, MANAGER_INTERFACE, "BackupCreated", NULL,
                                          append_backup_created, j);
                b->worker = worker_pipe_free(b->worker);
                if (!j->cancel_requested && start_uploads(j) > 0)
                        return;
                job_finish(j, "done", NULL, append_details, j);
        } else {
                if (!b->error) {
                        /* Killed or crashed: it had no chance to clean up after itself. Imports may be
                         * copying meanwhile: their files stay. */
                        cleanup_temp_files(i, false);
                        if (asprintf(&why, "The backup worker %s %d before finishing.",
                                     si_code == CLD_EXITED ? "exited with status" : "was killed by signal",
                                     status) < 0)
                                why = NULL;
                }
                job_finish(j, b->canceled || j->cancel_requested ? "canceled" : "failed",
                           b->error ?: why ?: "The backup failed.", NULL, NULL);
        }
        instance_start_next_job(i);
}

static int backup_job_run_worker(Job *j) {
        BackupJobData *b = j->data;
        Instance *i = j->instance;
        int r;

        job_set_progress(j, "starting", 0, 0);
        files_cache_open(i, b);
        r = worker_pipe_start(i->daemon->event, i->uid, i->gid, "opbackup-backup", backup_worker_main, j,
                              b->cache_fds[0] >= 0 ? b->cache_fds : b->cache_fds + 1, b->cache_fds[1] < 0 ? 0 :
                              b->cache_fds[0] >= 0 ? 2 : 1, on_worker_message, on_worker_exit, j, &b->worker);
        if (r < 0) {
                files_cache_finish(i, b, false);
                _cleanup_free_ char *msg = NULL;
                if (asprintf(&msg, "Cannot start the backup worker: %s", strerror(-r)) < 0)
                        msg = NULL;
                job_finish(j, "failed", msg ?: "Cannot start the backup worker.", NULL, NULL);
                return r;
        }
        log_info("Instance %s: backup %s started (job %u, worker %d).", i->name, j->name, j->id,
                 (int) worker_pipe_pid(b->worker));
        return 0;
}

static int append_skipped(sd_bus_message *m, void *userdata) {
        return sd_bus_message_append(m, "{sv}", "skipped", "b", 1);
}

static void on_printer_verdict(Job *j, PrinterVerdict verdict, const char *reason) {
        BackupJobData *b = j->data;
        Instance *i = j->instance;

        switch (verdict) {
        case PRINTER_VERDICT_BACKUP:
                b->waiter = printer_wait_free(b->waiter);
                if (backup_job_run_worker(j) >= 0)
                        return;
                break;          /* the job is over: start the next one */
        case PRINTER_VERDICT_SKIP:
                /* Nothing failed: the backup is not wanted now. "skipped" tells clients apart from a
                 * person's Cancel. */
                job_finish(j, "canceled", reason, append_skipped, j);
                break;
        case PRINTER_VERDICT_CANCELED:
                job_finish(j, "canceled", reason, NULL, NULL);
                break;
        }
        instance_start_next_job(i);
}

static int backup_job_start(Job *j) {
        _cleanup_free_ char *skip = NULL;
        BackupJobData *b = j->data;
        Instance *i = j->instance;
        int r;

        j->state = JOB_RUNNING;
        if (!b->when_idle)
                return backup_job_run_worker(j);
        r = printer_wait_start(j, on_printer_verdict, &b->waiter, &skip);
        if (r > 0)
                return 0;
        if (r == 0 && !skip)
                return backup_job_run_worker(j);
        if (r < 0)
                job_finish(j, "failed", "Cannot start the printer check.", NULL, NULL);
        else
                job_finish(j, "canceled", skip, append_skipped, j);
        instance_start_next_job(i);
        return r;
}

void backup_job_cancel(Job *j) {
        BackupJobData *b = j->data;

        if (j->state == JOB_QUEUED) {
                job_finish(j, "canceled", "Canceled before it started.", NULL, NULL);
                return;
        }
        if (b->waiter) {
                printer_wait_cancel(b->waiter);
                return;
        }
        if (b->uploads) {
                remote_task_cancel(b->uploads);
                return;
        }
        /* SIGTERM: the engine notices at its next progress report and removes its temp file. */
        worker_pipe_kill(b->worker, SIGTERM);
}

/* ---- Start-up: what a killed daemon or worker left behind ---- */

typedef struct CleanupArgs {
        Instance *instance;
        bool imports;           /* the fallback copies of imports too: only when none can be in flight */
} CleanupArgs;

static int cleanup_task(void *userdata, json_object **ret_json, int *ret_fd) {
        CleanupArgs *a = userdata;
        _cleanup_close_ int dir_fd = -1;
        json_object *removed = json_object_new_array();
        struct dirent *de;
        DIR *d;

        *ret_json = json_object_new_object();
        json_object_object_add(*ret_json, "removed", removed);
        if (backup_folder_open(a->instance->backup_folder, &dir_fd) < 0)
                return 0;
        if (opendir_fd(dir_fd, &d) < 0)
                return 0;
        while ((de = readdir(d))) {
                struct stat st;

                if (!backup_is_temp_name(de->d_name) && !(a->imports && import_is_temp_name(de->d_name)))
                        continue;
                if (fstatat(dir_fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
                        continue;
                if (unlinkat(dir_fd, de->d_name, 0) == 0)
                        json_object_array_add(removed, json_object_new_string(de->d_name));
        }
        closedir(d);
        (void) fsync(dir_fd);
        return 0;
}

static void log_removed(Instance *i, const WorkerReply *reply) {
        json_object *list;

        if (json_object_object_get_ex(reply->json, "removed", &list))
                for (size_t k = 0; k < json_object_array_length(list); k++) {
                        const char *name = json_object_get_string(json_object_array_get_idx(list, k));

                        log_notice("Instance %s: removed %s, left by an interrupted %s.", i->name, name,
                                   import_is_temp_name(name) ? "import" : "backup");
                }
}

/* At start-up, before the daemon serves anyone: waited for. */
static void cleanup_temp_files_now(Instance *i) {
        _cleanup_(worker_reply_done) WorkerReply reply = { .fd = -1 };
        CleanupArgs args = { .instance = i, .imports = true };

        if (i->unusable_reason || !i->backup_folder)
                return;
        if (worker_run_sync(i->uid, i->gid, "opbackup-cleanup", 60, cleanup_task, &args, -1, &reply) >= 0)
                log_removed(i, &reply);
}

typedef struct CleanupOp {
        CleanupArgs args;
        Worker *worker;
} CleanupOp;

static void on_cleaned_up(int r, WorkerReply *reply, void *userdata) {
        CleanupOp *op = userdata;

        if (r >= 0)
                log_removed(op->args.instance, reply);
        worker_free(op->worker);
        free(op);
}

/* After a backup worker died: from the event loop, which goes on serving meanwhile. */
static void cleanup_temp_files(Instance *i, bool imports) {
        CleanupOp *op;
        int r;

        if (i->unusable_reason || !i->backup_folder)
                return;
        op = calloc(1, sizeof(*op));
        if (!op) {
                log_oom();
                return;
        }
        op->args = (CleanupArgs) { .instance = i, .imports = imports };
        r = worker_start(i->daemon->event, i->uid, i->gid, "opbackup-cleanup", 60, cleanup_task, &op->args, -1,
                         on_cleaned_up, op, &op->worker);
        if (r < 0) {
                log_warning_errno(r, "Instance %s: cannot start removing what the backup left: %m", i->name);
                free(op);
        }
}

int backups_recover(Daemon *d) {
        for (size_t k = 0; k < d->n_instances; k++)
                cleanup_temp_files_now(d->instances[k]);
        return 0;
}
