/* SPDX-License-Identifier: GPL-2.0-or-later */

/* The part of a restore that runs in a worker as the instance user (opbackupd(8), RESTORE, steps 3-5):
 * validate the whole archive, extract it into staging, reinstall plugins. Nothing of the instance changes
 * here; the daemon swaps only when the worker reports "ready". */

#include <fcntl.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>

#include "daemon/job.h"
#include "daemon/polkit.h"
#include "errors.h"
#include "folder/backup-folder.h"
#include "folder/backup-manage.h"
#include "folders.h"
#include "instance/instance.h"
#include "log.h"
#include "names.h"
#include "plugins/plugins.h"
#include "restore/restore-extract.h"
#include "restore/restore-job.h"
#include "restore/restore-pip.h"
#include "restore/restore-swap.h"
#include "archive-validate.h"
#include "restore/rm-rf.h"
#include "util.h"
#include "version.h"
#include "worker/privs.h"
#include "worker/worker-pipe.h"
#include "worker/zip-dlopen.h"


#include "restore/restore-finish.h"
#include "restore/restore-worker.h"

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

/* The folder for downloads and pip's temporary files, inside staging (which is the user's): under
 * opbackupd.service, /tmp is the daemon's own (PrivateTmp=yes), invisible to pip's transient unit. A
 * random name cannot be one the backup brought. */
static int make_work_dir(int staging_fd, char **ret_name) {
        for (unsigned attempt = 0;; attempt++) {
                uint64_t rnd = 0;
                char name[64];

                if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
                        rnd = (uint64_t) getpid() << 16 ^ attempt;
                snprintf(name, sizeof(name), PIP_WORK_PREFIX "%016llx", (unsigned long long) rnd);
                if (mkdirat(staging_fd, name, 0700) >= 0)
                        return (*ret_name = strdup(name)) ? 0 : -ENOMEM;
                if (errno != EEXIST || attempt >= 16)
                        return -errno;
        }
}

static int restore_plugins(Job *j, int fd, const ArchiveSummary *summary, const BackupCallbacks *cb,
                           json_object *result, char **ret_error) {
        _cleanup_(plugin_outcome_done) PluginOutcome outcome = {};
        Instance *i = j->instance;
        RestoreJobData *d = j->data;
        _cleanup_free_ char *work = NULL, *work_name = NULL, *err = NULL;
        _cleanup_close_ int folder_fd = -1;
        RestorePipClient pip = { .send_fd = fd, .reply_fd = d->pip_worker_fd, .staging = d->plan.staging };
        PluginRequest req = {
                .plugins = summary->plugins,
                .n_plugins = summary->n_plugins,
                .repository_url = i->config->plugin_repository ?: i->octo.plugin_repository,
                .venv = i->venv,
                .octoprint_version = i->octoprint_version,
                .fetch_fd = d->fetch_fd,
                .no_pip = !i->has_pip,
                .pip_run = restore_pip_run,
                .pip_userdata = &pip,
        };
        int r;

        if (summary->n_plugins == 0)
                return 0;
        if (d->options.skip_plugins) {
                backup_log(cb, LOG_INFO, "Skipping the reinstallation of %zu plugins (skip-plugins).",
                           summary->n_plugins);
                return 0;
        }
        r = make_work_dir(d->staging_fd, &work_name);
        if (r < 0)
                return asprintf(ret_error, "Cannot create a folder for plugin downloads in %s: %s", d->plan.staging,
                                strerror(-r)) < 0 ? -ENOMEM : r;
        if (asprintf(&work, "%s/%s", d->plan.staging, work_name) < 0)
                return -ENOMEM;
        req.work_dir = work;
        r = plugins_reinstall(&req, cb, &outcome, &err);
        /* Not to be swapped in with the restored basedir. */
        (void) rm_rf_at(d->staging_fd, work_name);
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

static void quiet(int level, const char *line, void *userdata) {
}

/* Without pip no plugin can be reinstalled. Which ones a restore would install (missing from the venv,
 * known to the repository and compatible) only the repository tells: asked now, before the archive is
 * unpacked, a restore that would fail for want of pip fails at once. With ignore-plugin-errors it goes on
 * and reports them failed; plugins that are installed already or unknown need no pip either way. */
static int check_pip(Job *j, const ArchiveSummary *summary, const BackupCallbacks *cb, char **ret_error) {
        _cleanup_(plugin_outcome_done) PluginOutcome outcome = {};
        _cleanup_free_ char *err = NULL;
        Instance *i = j->instance;
        RestoreJobData *d = j->data;
        BackupCallbacks silent = { .log = quiet, .progress = cb->progress, .userdata = cb->userdata };
        PluginRequest req = {
                .plugins = summary->plugins,
                .n_plugins = summary->n_plugins,
                .repository_url = i->config->plugin_repository ?: i->octo.plugin_repository,
                .venv = i->venv,
                .octoprint_version = i->octoprint_version,
                .fetch_fd = d->fetch_fd,
                .dry_run = true,
        };
        char list[512] = "";
        int r;

        if (i->has_pip || summary->n_plugins == 0 || d->options.skip_plugins || d->options.ignore_plugin_errors)
                return 0;
        /* The real step logs what it decides; this one only looks. */
        r = plugins_reinstall(&req, &silent, &outcome, &err);
        if (r < 0) {
                *ret_error = TAKE_PTR(err);
                return r;
        }
        if (outcome.n_installed == 0)
                return 0;
        for (size_t k = 0; k < outcome.n_installed; k++) {
                _cleanup_free_ char *key = plugin_log_string(outcome.installed[k].key);

                if (!key)
                        return -ENOMEM;
                snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", k > 0 ? ", " : "", key);
        }
        return asprintf(ret_error, "Not restored: the backup lists %zu plugin%s to reinstall (%s), but there is no "
                        "pip in the instance's Python environment %s (no %s/bin/pip); nothing was changed. Install "
                        "pip into it (%s -m ensurepip) and restore again, or restore with skip-plugins "
                        "(--skip-plugins) and install them yourself, or with ignore-plugin-errors "
                        "(--ignore-plugin-errors) to restore without them.", outcome.n_installed,
                        outcome.n_installed == 1 ? "" : "s", list, i->venv, i->venv,
                        strempty(i->config->python)) < 0 ? -ENOMEM : -ENOPKG;
}

int restore_worker_main(int fd, void *userdata) {
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

        r = zip_dlopen(&err);
        if (r < 0)
                return rw_fail(fd, NULL, err ?: strerror(-r));
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
        r = check_pip(j, &summary, &cb, &err);
        if (r < 0)
                return rw_fail(fd, NULL, err ?: strerror(-r));

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
        r = restore_plugins(j, fd, &summary, &cb, result, &err);
        if (r < 0) {
                json_object_put(result);
                return rw_fail(fd, NULL, err ?: strerror(-r));
        }
        test_pause_point("after-plugins");
        json_object_object_add(result, "ready", json_object_new_boolean(true));
        return worker_send(fd, result) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
