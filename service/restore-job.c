/* SPDX-License-Identifier: GPL-2.0-or-later */

/* RestoreBackup and RestoreBackupFromFile (SPEC §3). A worker, as the instance user, validates the whole
 * archive, extracts it into a staging folder next to basedir and reinstalls plugins; only then does the
 * daemon stop the unit, swap basedir under a journal (restore-swap.c), restart and clean up. Any refusal
 * before the swap leaves the instance exactly as it was. */

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>

#include "backup-folder.h"
#include "backup-job.h"
#include "backup-manage.h"
#include "errors.h"
#include "folders.h"
#include "instance.h"
#include "job.h"
#include "log.h"
#include "names.h"
#include "plugins.h"
#include "polkit.h"
#include "privs.h"
#include "restore-archive.h"
#include "restore-job.h"
#include "restore-swap.h"
#include "util.h"
#include "version.h"
#include "worker-pipe.h"

#define RESTART_TIMEOUT_SEC 60

typedef struct RestoreOptions {
        bool skip_plugins;
        bool ignore_plugin_errors;
        bool keep_previous;
        bool restart;
        char *name;                     /* RestoreBackupFromFile: the name to store the file under */
} RestoreOptions;

typedef struct RestoreJobData {
        RestoreOptions options;
        SwapPlan plan;
        int staging_fd;
        WorkerPipe *worker;
        bool prepared;                  /* staging + journal exist */
        /* from the worker */
        char **excludes;
        char *unknown_json;             /* a(sss) as JSON: [[key, name, url], ...] */
        char **installed, **failed;
        bool ready;
        char *error;
        char *error_name;
} RestoreJobData;

static void restore_job_data_free(void *p) {
        RestoreJobData *r = p;

        if (!r)
                return;
        worker_pipe_free(r->worker);
        if (r->staging_fd >= 0)
                close(r->staging_fd);
        free(r->options.name);
        swap_plan_done(&r->plan);
        strv_free(r->excludes);
        free(r->unknown_json);
        strv_free(r->installed);
        strv_free(r->failed);
        free(r->error);
        free(r->error_name);
        free(r);
}

static int read_restore_options(sd_bus_message *m, RestoreOptions *o, sd_bus_error *error) {
        static const char *const flags[] = { "skip-plugins", "ignore-plugin-errors", "keep-previous", "restart" };
        bool *targets[] = { &o->skip_plugins, &o->ignore_plugin_errors, &o->keep_previous, &o->restart };
        const char *key;
        int r;

        *o = (RestoreOptions) { .restart = true };
        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                bool known = false;

                r = sd_bus_message_read(m, "s", &key);
                if (r < 0)
                        return r;
                for (size_t k = 0; k < ELEMENTSOF(flags); k++)
                        if (streq(key, flags[k])) {
                                int b;
                                r = sd_bus_message_read(m, "v", "b", &b);
                                if (r < 0)
                                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                                 "The option '%s' must be a boolean.", key);
                                *targets[k] = b;
                                known = true;
                        }
                if (!known && streq(key, "name")) {
                        const char *name;
                        r = sd_bus_message_read(m, "v", "s", &name);
                        if (r < 0)
                                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                         "The option 'name' must be a string.");
                        if (free_and_strdup(&o->name, name) < 0)
                                return -ENOMEM;
                        known = true;
                }
                if (!known)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Unknown option '%.64s'.", key);
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

static int check_restore_possible(Instance *i, sd_bus_error *error) {
        int r;

        r = check_instance_usable(i, error);
        if (r < 0)
                return r;
        if (i->restore_unsupported_reason)
                return sd_bus_error_setf(error, BUS_ERROR_RESTORE_UNSUPPORTED, "%s.", i->restore_unsupported_reason);
        for (Job *j = i->daemon->jobs; j; j = j->next)
                if (j->instance == i)
                        return sd_bus_error_setf(error, BUS_ERROR_BUSY,
                                                 "A %s of %s is %s: restore when it is done.",
                                                 job_operation_to_string(j->operation), i->name,
                                                 j->state == JOB_RUNNING ? "running" : "queued");
        return 0;
}

/* What can be known at once about the backup, from the listing: that it exists, is a backup, and is not
 * from a newer OctoPrint. The worker validates everything again, and deeper. */
static int check_backup_listed(Instance *i, const char *name, sd_bus_error *error) {
        _cleanup_free_ char *err = NULL;
        unsigned bmaj, bmin, imaj, imin;
        int r;

        r = backup_list_refresh(i, &err);
        if (r < 0)
                return err ? sd_bus_error_set(error, SD_BUS_ERROR_FAILED, err) : r;
        for (size_t k = 0; k < i->backup_cache.n; k++) {
                const BackupEntry *e = &i->backup_cache.entries[k];

                if (!streq(e->name, name))
                        continue;
                if (!e->valid)
                        return sd_bus_error_setf(error, BUS_ERROR_INVALID_BACKUP,
                                                 "%s is not an OctoPrint backup (no readable metadata.json).", name);
                if (version_major_minor(e->version, &bmaj, &bmin) >= 0 &&
                    version_major_minor(i->octoprint_version, &imaj, &imin) >= 0 &&
                    (bmaj > imaj || (bmaj == imaj && bmin > imin)))
                        return sd_bus_error_setf(error, BUS_ERROR_INCOMPATIBLE_VERSION,
                                                 "Backup is from a newer version of OctoPrint and cannot be applied, "
                                                 "you need at least OctoPrint %u.%u.0 to restore this backup", bmaj, bmin);
                return 0;
        }
        return sd_bus_error_setf(error, BUS_ERROR_NO_SUCH_BACKUP, "No backup %s in %s (see 'opbackupctl list').",
                                 name, i->backup_folder);
}

static int restore_job_start(Job *j);
static void restore_job_cancel(Job *j);

static int create_restore_job(sd_bus_message *m, Instance *i, const char *name, RestoreOptions *options) {
        RestoreJobData *data;
        uid_t uid = 0;
        Job *j;
        int r;

        data = calloc(1, sizeof(*data));
        if (!data)
                return -ENOMEM;
        data->staging_fd = -1;
        data->options = *options;
        *options = (RestoreOptions) {};
        (void) bus_sender_uid(m, &uid);
        r = job_new(i->daemon, i, JOB_RESTORE, ACTION_RESTORE, uid, sd_bus_message_get_sender(m), &j);
        if (r < 0) {
                restore_job_data_free(data);
                return r;
        }
        j->data = data;
        j->free_data = restore_job_data_free;
        j->name = strdup(name);
        j->start = restore_job_start;
        j->cancel = restore_job_cancel;
        r = sd_bus_reply_method_return(m, "uo", j->id, j->object_path);
        instance_start_next_job(i);
        return r;
}

int method_restore_backup_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *name_copy = NULL;
        RestoreOptions options = {};
        Instance *i = userdata;
        const char *name;
        int r;

        r = sd_bus_message_read(m, "s", &name);
        if (r < 0)
                return r;
        name_copy = strdup(name);
        if (!name_copy)
                return -ENOMEM;
        r = read_restore_options(m, &options, error);
        if (r >= 0)
                r = check_backup_name(name_copy, error);
        if (r >= 0)
                r = check_restore_possible(i, error);
        if (r >= 0)
                r = check_backup_listed(i, name_copy, error);
        if (r >= 0)
                r = create_restore_job(m, i, name_copy, &options);
        free(options.name);
        return r;
}

static void restore_after_import(Instance *i, sd_bus_message *m, const char *stored, const sd_bus_error *error,
                                 void *userdata) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        RestoreOptions *options = userdata;
        int r;

        if (error)
                (void) sd_bus_reply_method_error(m, error);
        else {
                /* The situation may have changed during the copy. */
                r = check_restore_possible(i, &e);
                if (r >= 0)
                        r = check_backup_listed(i, stored, &e);
                if (r >= 0)
                        r = create_restore_job(m, i, stored, options);
                if (r < 0) {
                        if (sd_bus_error_is_set(&e))
                                (void) sd_bus_reply_method_error(m, &e);
                        else
                                (void) sd_bus_reply_method_errno(m, r, NULL);
                }
        }
        free(options->name);
        free(options);
}

int method_restore_backup_from_file_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        RestoreOptions *options;
        Instance *i = userdata;
        int fd, r;

        r = sd_bus_message_read(m, "h", &fd);
        if (r < 0)
                return r;
        options = calloc(1, sizeof(*options));
        if (!options)
                return -ENOMEM;
        r = read_restore_options(m, options, error);
        if (r >= 0 && options->name)
                r = check_backup_name(options->name, error);
        if (r >= 0)
                r = check_restore_possible(i, error);
        /* The file is copied into the backup folder first, so it cannot change under the restore. */
        if (r >= 0)
                r = backup_import_start(i, m, fd, options->name, restore_after_import, options, error);
        if (r < 0) {
                free(options->name);
                free(options);
        }
        return r;
}

/* ---- In the worker, as the instance user ---- */

static int rw_fail(int fd, const char *error_name, const char *message) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "error", json_object_new_string(message));
        if (error_name)
                json_object_object_add(o, "error_name", json_object_new_string(error_name));
        (void) worker_send(fd, o);
        return EXIT_FAILURE;
}

static json_object *plugin_names(const PluginInfo *p, size_t n) {
        json_object *a = json_object_new_array();

        for (size_t k = 0; k < n; k++)
                json_object_array_add(a, json_object_new_string(p[k].key));
        return a;
}

static json_object *plugin_triples(const PluginInfo *p, size_t n) {
        json_object *a = json_object_new_array();

        for (size_t k = 0; k < n; k++) {
                json_object *t = json_object_new_array();
                json_object_array_add(t, json_object_new_string(p[k].key));
                json_object_array_add(t, json_object_new_string(strempty(p[k].name)));
                json_object_array_add(t, json_object_new_string(strempty(p[k].url)));
                json_object_array_add(a, t);
        }
        return a;
}

static int restore_plugins(Job *j, const ArchiveSummary *summary, const BackupCallbacks *cb, json_object *result,
                           char **ret_error) {
        _cleanup_(plugin_outcome_done) PluginOutcome outcome = {};
        Instance *i = j->instance;
        RestoreJobData *d = j->data;
        _cleanup_free_ char *work = NULL, *err = NULL;
        _cleanup_close_ int folder_fd = -1;
        PluginRequest req = {
                .plugins = summary->plugins,
                .n_plugins = summary->n_plugins,
                .repository_url = i->config->plugin_repository ?: i->octo.plugin_repository,
                .venv = i->venv,
                .octoprint_version = i->octoprint_version,
        };
        int r;

        if (summary->n_plugins == 0)
                return 0;
        if (d->options.skip_plugins) {
                backup_log(cb, LOG_INFO, "Skipping the reinstallation of %zu plugins (skip-plugins).",
                           summary->n_plugins);
                return 0;
        }
        work = strdup("/tmp/opbackup-plugins-XXXXXX");
        if (!work || !mkdtemp(work))
                return -errno;
        req.work_dir = work;
        r = plugins_reinstall(&req, cb, &outcome, &err);
        {
                _cleanup_close_ int wfd = open(work, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (wfd >= 0) {
                        char *base = strrchr(work, '/') + 1;
                        _cleanup_close_ int tfd = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                        if (tfd >= 0)
                                (void) rm_rf_at(tfd, base);
                }
        }
        if (r < 0) {
                *ret_error = TAKE_PTR(err);
                return r;
        }
        json_object_object_add(result, "installed", plugin_names(outcome.installed, outcome.n_installed));
        json_object_object_add(result, "failed", plugin_names(outcome.failed, outcome.n_failed));
        json_object_object_add(result, "unknown", plugin_triples(outcome.unknown, outcome.n_unknown));
        if (outcome.n_unknown > 0) {
                _cleanup_free_ char *werr = NULL;

                if (backup_folder_open(i->backup_folder, &folder_fd) < 0 ||
                    plugins_write_unknown(folder_fd, outcome.unknown, outcome.n_unknown, &werr) < 0)
                        backup_log(cb, LOG_WARNING, "Cannot record the unknown plugins in %s: %s", i->backup_folder,
                                   werr ?: "cannot open the folder");
        }
        if (outcome.n_failed > 0 && !d->options.ignore_plugin_errors)
                return asprintf(ret_error, "%zu plugin(s) failed to install (see the log above); nothing was "
                                "changed. Retry, or restore with ignore-plugin-errors (--ignore-plugin-errors) or "
                                "skip-plugins.", outcome.n_failed) < 0 ? -ENOMEM : -EIO;
        return 0;
}

static int restore_worker_main(int fd, void *userdata) {
        _cleanup_(archive_summary_done) ArchiveSummary summary = {};
        _cleanup_free_ char *err = NULL;
        _cleanup_close_ int dir_fd = -1, zip_fd = -1;
        Job *j = userdata;
        Instance *i = j->instance;
        RestoreJobData *d = j->data;
        WorkerReporter reporter = { .fd = fd };
        BackupCallbacks cb = { .log = worker_report_log, .progress = worker_report_progress, .userdata = &reporter };
        json_object *result, *ex;
        struct statvfs sv;
        int r;

        r = backup_folder_open(i->backup_folder, &dir_fd);
        if (r >= 0)
                r = backup_open_at(dir_fd, j->name, &zip_fd);
        if (r < 0)
                return rw_fail(fd, BUS_ERROR_NO_SUCH_BACKUP, "The backup cannot be opened any more.");

        backup_log(&cb, LOG_INFO, "Validating %s", j->name);
        (void) worker_report_progress("validating", 0, 0, &reporter);
        if (fstatvfs(d->staging_fd, &sv) < 0)
                return rw_fail(fd, NULL, "Cannot measure the free space next to basedir.");
        r = restore_archive_validate(zip_fd, i->octoprint_version, (uint64_t) sv.f_bavail * sv.f_frsize, &summary, &err);
        if (r < 0)
                return rw_fail(fd, r == -EPROTONOSUPPORT ? BUS_ERROR_INCOMPATIBLE_VERSION :
                                   r == -ENOSPC ? BUS_ERROR_NOT_ENOUGH_SPACE :
                                   r == -EINVAL ? NULL /* our own version unknown */ : BUS_ERROR_INVALID_BACKUP,
                               err ?: strerror(-r));
        backup_log(&cb, LOG_INFO, "Backup of OctoPrint %s with %" PRIu64 " entries, %" PRIu64 " bytes to unpack",
                   summary.version, summary.n_entries, summary.total_size);
        STRV_FOREACH(w, summary.warnings)
                backup_log(&cb, LOG_WARNING, "%s", *w);

        backup_log(&cb, LOG_INFO, "Unpacking the backup into %s", d->plan.staging);
        r = restore_archive_extract(zip_fd, d->staging_fd, &cb, &err);
        if (r < 0)
                return rw_fail(fd, NULL, err ?: strerror(-r));
        test_pause_point("after-extract");

        result = json_object_new_object();
        ex = json_object_new_array();
        STRV_FOREACH(e, summary.excludes)
                json_object_array_add(ex, json_object_new_string(*e));
        json_object_object_add(result, "excludes", ex);
        r = restore_plugins(j, &summary, &cb, result, &err);
        if (r < 0) {
                json_object_put(result);
                return rw_fail(fd, NULL, err ?: strerror(-r));
        }
        test_pause_point("after-plugins");
        json_object_object_add(result, "ready", json_object_new_boolean(true));
        return worker_send(fd, result) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* ---- In the daemon ---- */

static void on_restore_message(json_object *msg, void *userdata) {
        Job *j = userdata;
        RestoreJobData *d = j->data;
        json_object *v, *w;

        if (job_apply_worker_message(j, msg))
                return;
        if (json_object_object_get_ex(msg, "error", &v)) {
                (void) free_and_strdup(&d->error, json_object_get_string(v));
                if (json_object_object_get_ex(msg, "error_name", &w))
                        (void) free_and_strdup(&d->error_name, json_object_get_string(w));
        } else if (json_object_object_get_ex(msg, "ready", &v)) {
                d->ready = json_object_get_boolean(v);
                strv_free(d->excludes);
                strv_free(d->installed);
                strv_free(d->failed);
                d->excludes = calloc(1, sizeof(char *));
                d->installed = calloc(1, sizeof(char *));
                d->failed = calloc(1, sizeof(char *));
                if (json_object_object_get_ex(msg, "excludes", &w))
                        for (size_t k = 0; k < json_object_array_length(w); k++)
                                (void) strv_extend(&d->excludes, json_object_get_string(json_object_array_get_idx(w, k)) ?: "");
                if (json_object_object_get_ex(msg, "installed", &w))
                        for (size_t k = 0; k < json_object_array_length(w); k++)
                                (void) strv_extend(&d->installed, json_object_get_string(json_object_array_get_idx(w, k)) ?: "");
                if (json_object_object_get_ex(msg, "failed", &w))
                        for (size_t k = 0; k < json_object_array_length(w); k++)
                                (void) strv_extend(&d->failed, json_object_get_string(json_object_array_get_idx(w, k)) ?: "");
                if (json_object_object_get_ex(msg, "unknown", &w))
                        (void) free_and_strdup(&d->unknown_json, json_object_to_json_string_ext(w, JSON_C_TO_STRING_PLAIN));
        }
}

static int append_restore_details(sd_bus_message *m, void *userdata) {
        RestoreJobData *d = userdata;
        json_object *unknown = d->unknown_json ? json_tokener_parse(d->unknown_json) : NULL;
        char *const empty[] = { NULL };
        int r;

        r = sd_bus_message_open_container(m, 'e', "sv");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", "unknown-plugins");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'v', "a(sss)");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "(sss)");
        for (size_t k = 0; r >= 0 && unknown && k < json_object_array_length(unknown); k++) {
                json_object *t = json_object_array_get_idx(unknown, k);
                r = sd_bus_message_append(m, "(sss)", json_object_get_string(json_object_array_get_idx(t, 0)) ?: "",
                                          json_object_get_string(json_object_array_get_idx(t, 1)) ?: "",
                                          json_object_get_string(json_object_array_get_idx(t, 2)) ?: "");
        }
        json_object_put(unknown);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(m, 'e', "sv");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", "installed-plugins");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'v', "as");
        if (r >= 0)
                r = sd_bus_message_append_strv(m, d->installed ?: (char **) empty);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'e', "sv");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", "failed-plugins");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'v', "as");
        if (r >= 0)
                r = sd_bus_message_append_strv(m, d->failed ?: (char **) empty);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r;
}

/* What the restored tree must keep from the old one (SPEC §3 step 4): the backup folder, and the default
 * locations of every folder the backup left out. Folders configured outside basedir are not touched by
 * the swap at all. */
static int compute_carry(Job *j) {
        Instance *i = j->instance;
        RestoreJobData *d = j->data;
        size_t n = strlen(i->config->basedir);
        int r;

        if (strncmp(i->backup_folder, i->config->basedir, n) == 0 && i->backup_folder[n] == '/' &&
            i->backup_folder[n + 1]) {
                r = strv_extend(&d->plan.carry, i->backup_folder + n + 1);
                if (r < 0)
                        return r;
        }
        for (int f = 0; f < _FOLDER_MAX; f++) {
                const char *id = folder_id_to_string(f);

                if (!folder_always_excluded(f) && !strv_contains(d->excludes, id))
                        continue;
                if (strv_contains(d->plan.carry, folder_default_relpath(f)))
                        continue;
                r = strv_extend(&d->plan.carry, folder_default_relpath(f));
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Runs a command and waits for it, bounded. argv[0] is a path; no shell unless asked for. */
static int run_and_wait(uid_t uid, gid_t gid, char *const argv[], unsigned timeout_sec) {
        pid_t pid;
        int r, status;

        r = fork_worker("opbackup-exec", &pid);
        if (r < 0)
                return r;
        if (r == 0) {
                close_all_fds_except(NULL, 0);
                if (uid != 0 && drop_privileges(uid, gid) < 0)
                        _exit(127);
                execv(argv[0], argv);
                _exit(127);
        }
        for (unsigned t = 0; t < timeout_sec * 10; t++) {
                r = waitpid(pid, &status, WNOHANG);
                if (r == pid)
                        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
                usleep(100000);
        }
        kill(pid, SIGKILL);
        (void) waitpid(pid, &status, 0);
        return -ETIMEDOUT;
}

static int systemctl(Job *j, const char *verb) {
        char *argv[] = { (char *) "/bin/systemctl", (char *) verb, j->instance->config->unit, NULL };
        char line[512];
        int r;

        snprintf(line, sizeof(line), "Running systemctl %s %s", verb, j->instance->config->unit);
        job_log(j, LOG_INFO, line);
        r = run_and_wait(0, 0, argv, 120);
        if (r != 0) {
                snprintf(line, sizeof(line), "systemctl %s %s failed (%s %d)", verb, j->instance->config->unit,
                         r < 0 ? "error" : "exit status", r);
                job_log(j, LOG_WARNING, line);
        }
        return r == 0 ? 0 : -EIO;
}

static void restart_instance(Job *j) {
        Instance *i = j->instance;
        RestoreJobData *d = j->data;
        char line[1024];
        int r;

        if (i->config->unit) {
                (void) systemctl(j, "start");
                return;
        }
        if (!d->options.restart) {
                job_log(j, LOG_INFO, "Not restarting OctoPrint (restart disabled): restart it yourself.");
                return;
        }
        if (isempty(i->octo.restart_command)) {
                job_log(j, LOG_WARNING, "Restart OctoPrint yourself: there is no Unit= in the instance's "
                        "configuration and no server.commands.serverRestartCommand in config.yaml.");
                return;
        }
        /* config.yaml is the user's file: what it says to run, runs as the user, never as root. */
        snprintf(line, sizeof(line), "Restarting OctoPrint as %s: %s", i->user, i->octo.restart_command);
        job_log(j, LOG_INFO, line);
        {
                char *argv[] = { (char *) "/bin/sh", (char *) "-c", i->octo.restart_command, NULL };
                r = run_and_wait(i->uid, i->gid, argv, RESTART_TIMEOUT_SEC);
        }
        if (r != 0) {
                snprintf(line, sizeof(line), "The restart command failed (%s %d): restart OctoPrint yourself.",
                         r < 0 ? "error" : "exit status", r);
                job_log(j, LOG_WARNING, line);
        }
}

static void restore_fail(Job *j, const char *message) {
        RestoreJobData *d = j->data;

        if (d->prepared) {
                int r = swap_abort(&d->plan);
                if (r < 0)
                        log_warning_errno(r, "Cannot remove the staging folder %s: %m", d->plan.staging);
                d->prepared = false;
        }
        job_finish(j, j->cancel_requested ? "canceled" : "failed", message, NULL, NULL);
}

static void restore_swap_phase(Job *j) {
        _cleanup_free_ char *err = NULL;
        RestoreJobData *d = j->data;
        Instance *i = j->instance;
        char line[1024];
        bool swapped;
        int r;

        if (compute_carry(j) < 0)
                return restore_fail(j, "Out of memory.");
        d->plan.keep_previous = d->options.keep_previous;
        if (i->config->unit && systemctl(j, "stop") < 0)
                return restore_fail(j, "Cannot stop the OctoPrint unit; nothing was changed.");

        job_set_progress(j, "swapping", 0, 0);
        snprintf(line, sizeof(line), "Moving %s to %s and the restored tree into its place", i->config->basedir,
                 d->plan.old);
        job_log(j, LOG_INFO, line);
        r = swap_execute(&d->plan, &swapped, &err);
        if (r < 0 && !swapped) {
                if (i->config->unit)
                        (void) systemctl(j, "start");
                return restore_fail(j, err ?: "The swap failed; nothing was changed.");
        }
        d->prepared = false;
        if (r < 0)
                job_log(j, LOG_ERR, err);
        {
                _cleanup_free_ char *list = NULL;
                size_t len = 0;
                FILE *f = open_memstream(&list, &len);

                if (f) {
                        STRV_FOREACH(c, d->plan.carry)
                                fprintf(f, "%s%s", c == d->plan.carry ? "" : ", ", *c);
                        fclose(f);
                        snprintf(line, sizeof(line), "Kept from before the restore, where present: %s", list);
                        job_log(j, LOG_INFO, line);
                }
        }
        restart_instance(j);

        if (!d->options.keep_previous) {
                snprintf(line, sizeof(line), "Removing %s", d->plan.old);
                job_log(j, LOG_INFO, line);
        } else {
                snprintf(line, sizeof(line), "The previous basedir is kept as %s", d->plan.old);
                job_log(j, LOG_INFO, line);
        }
        free(err);
        err = NULL;
        if (swap_finish(&d->plan, &err) < 0)
                job_log(j, LOG_WARNING, err);
        backup_cache_done(&i->backup_cache);
        (void) instance_probe(i);
        job_log(j, LOG_INFO, "Restore done");
        job_finish(j, "done", NULL, append_restore_details, d);
}

static void on_restore_exit(int si_code, int status, void *userdata) {
        _cleanup_free_ char *why = NULL;
        Job *j = userdata;
        RestoreJobData *d = j->data;

        if (si_code != CLD_EXITED || status != 0 || !d->ready || d->error) {
                if (!d->error && asprintf(&why, "The restore worker %s %d before finishing; nothing was changed.",
                                          si_code == CLD_EXITED ? "exited with status" : "was killed by signal",
                                          status) < 0)
                        why = NULL;
                return restore_fail(j, d->error ?: why ?: "The restore failed; nothing was changed.");
        }
        restore_swap_phase(j);
}

static int prepare_staging(Job *j, char **ret_error) {
        RestoreJobData *d = j->data;
        Instance *i = j->instance;
        _cleanup_free_ char *msg = NULL;
        struct stat st, pst;
        int r, fd;

        r = swap_plan_init(&d->plan, i->config->basedir);
        if (r < 0)
                return r;
        if (stat(i->config->basedir, &st) < 0)
                return asprintf(ret_error, "Cannot use basedir %s: %s", i->config->basedir, strerror(errno)) < 0
                       ? -ENOMEM : -errno;
        {
                _cleanup_free_ char *parent = strndup(i->config->basedir, strrchr(i->config->basedir, '/') - i->config->basedir);
                if (!parent)
                        return -ENOMEM;
                if (stat(isempty(parent) ? "/" : parent, &pst) < 0)
                        return -errno;
        }
        if (st.st_dev != pst.st_dev)
                return asprintf(ret_error, "%s is a mount point, so it cannot be swapped by renaming; restoring into "
                                "a mounted basedir is not supported yet: restore into a basedir that is a plain "
                                "folder", i->config->basedir) < 0 ? -ENOMEM : -EXDEV;

        /* Left by a restore that died before writing its journal. */
        r = swap_recover(i->config->basedir, &msg);
        if (r > 0)
                job_log(j, LOG_NOTICE, msg);
        {
                _cleanup_close_ int pfd = -1;
                _cleanup_free_ char *name = strdup(strrchr(d->plan.staging, '/') + 1);
                _cleanup_free_ char *parent = strndup(d->plan.staging, strrchr(d->plan.staging, '/') - d->plan.staging);

                if (!name || !parent)
                        return -ENOMEM;
                pfd = open(isempty(parent) ? "/" : parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (pfd < 0)
                        return -errno;
                (void) rm_rf_at(pfd, name);
                if (mkdirat(pfd, name, 0700) < 0)
                        return asprintf(ret_error, "Cannot create the staging folder %s: %s", d->plan.staging,
                                        strerror(errno)) < 0 ? -ENOMEM : -errno;
                fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0)
                        return -errno;
                /* The restored tree is the user's: the worker fills it as the user. Mode as basedir's. */
                if (fchown(fd, i->uid, i->gid) < 0 || fchmod(fd, st.st_mode & 07777) < 0) {
                        close(fd);
                        return -errno;
                }
        }
        d->staging_fd = fd;
        r = swap_journal_prepare(&d->plan);
        if (r < 0)
                return asprintf(ret_error, "Cannot write the restore journal %s: %s", d->plan.journal,
                                strerror(-r)) < 0 ? -ENOMEM : r;
        d->prepared = true;
        return 0;
}

static int restore_job_start(Job *j) {
        _cleanup_free_ char *err = NULL;
        RestoreJobData *d = j->data;
        Instance *i = j->instance;
        char line[1024];
        int r;

        j->state = JOB_RUNNING;
        snprintf(line, sizeof(line), "Restoring %s into %s", j->name, i->config->basedir);
        job_log(j, LOG_INFO, line);
        job_set_progress(j, "preparing", 0, 0);
        r = prepare_staging(j, &err);
        if (r < 0) {
                restore_fail(j, err ?: strerror(-r));
                return r;
        }
        r = worker_pipe_start(i->daemon->event, i->uid, i->gid, "opbackup-restore", restore_worker_main, j,
                              &d->staging_fd, 1, on_restore_message, on_restore_exit, j, &d->worker);
        if (r < 0) {
                restore_fail(j, "Cannot start the restore worker.");
                return r;
        }
        return 0;
}

static void restore_job_cancel(Job *j) {
        RestoreJobData *d = j->data;

        if (j->state == JOB_QUEUED) {
                job_finish(j, "canceled", "Canceled before it started.", NULL, NULL);
                return;
        }
        /* Only the worker's part can be canceled; the swap is short and must not be interrupted. */
        worker_pipe_kill(d->worker, SIGTERM);
}

int restores_recover(Daemon *d) {
        for (size_t k = 0; k < d->n_instances; k++) {
                Instance *i = d->instances[k];
                _cleanup_free_ char *msg = NULL;
                int r;

                if (!i->config->basedir)
                        continue;
                r = swap_recover(i->config->basedir, &msg);
                if (r < 0)
                        log_error_errno(r, "Instance %s: cannot recover an interrupted restore: %m", i->name);
                else if (r > 0) {
                        log_notice("Instance %s: %s", i->name, msg);
                        (void) instance_probe(i);
                }
        }
        return 0;
}
