/* SPDX-License-Identifier: GPL-2.0-or-later */

/* The part of a restore after the worker (opbackupd(8), RESTORE, steps 6-8), in the daemon: stop the unit,
 * swap basedir under the journal while carrying over what the backup does not hold, restart, clean up. */

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>

#include "daemon/job.h"
#include "daemon/polkit.h"
#include "daemon/systemd-unit.h"
#include "errors.h"
#include "folder/backup-folder.h"
#include "folder/backup-manage.h"
#include "folders.h"
#include "instance/instance.h"
#include "log.h"
#include "names.h"
#include "plugins/plugins.h"
#include "restore/restore-job.h"
#include "restore/restore-pip.h"
#include "restore/restore-swap.h"
#include "archive-validate.h"
#include "util.h"
#include "version.h"
#include "worker/command.h"
#include "worker/privs.h"
#include "worker/worker-pipe.h"
#include "restore/restore-finish.h"
#include "restore/restore-worker.h"

/* How long systemd may take to stop or start the instance's unit (its own TimeoutStopSec= is 90 s by
 * default). */
#define UNIT_TIMEOUT_SEC 120U

/* ---- In the daemon ---- */

void on_restore_message(json_object *msg, void *userdata) {
        Job *j = userdata;
        RestoreJobData *d = j->data;
        json_object *v, *w;

        if (restore_pip_on_message(j, msg) || job_apply_worker_message(j, msg))
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
        /* A backup fetched from a remote for this restore: the name it got in the backup folder. */
        if (d->fetched_name) {
                r = sd_bus_message_append(m, "{sv}", "name", "s", d->fetched_name);
                if (r < 0)
                        return r;
        }
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

/* What the restored tree must keep from the old one (opbackupd(8), RESTORE, step 6): the backup folder, and
 * the default locations of every folder the backup left out. Folders configured outside basedir are not
 * touched by the swap at all. */
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

/* ---- Stop the unit, swap, probe the restored instance, restart, clean up: each step starts when the
 * one before has ended, from the event loop, which the daemon keeps serving meanwhile. ---- */

static void restore_swap_phase(Job *j);
static void restore_restart_phase(Job *j);
static void restore_done(Job *j);

/* Removing a tree — the old basedir after a restore, staging after a failure — takes as long as the tree
 * is big (seconds for a large instance): a child does it, as root like the daemon (the swap's folders
 * are where the instance user may not write), at idle priority, while the daemon serves. */
static int cleanup_main(int fd, void *userdata) {
        Job *j = userdata;       /* the daemon's memory, as fork() copied it */
        RestoreJobData *d = j->data;
        _cleanup_free_ char *err = NULL;
        int r;

        if (d->cleanup_abort) {
                r = swap_abort(&d->plan);
                if (r < 0 && asprintf(&err, "Cannot remove the staging folder %s: %s", d->plan.staging,
                                      strerror(-r)) < 0)
                        err = NULL;
        } else
                r = swap_finish(&d->plan, &err);
        if (r < 0) {
                json_object *o = json_object_new_object();

                json_object_object_add(o, "error", json_object_new_string(err ?: strerror(-r)));
                (void) worker_send(fd, o);
        }
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

static void on_cleanup_message(json_object *msg, void *userdata) {
        Job *j = userdata;
        RestoreJobData *d = j->data;
        json_object *v;

        if (json_object_object_get_ex(msg, "error", &v))
                (void) free_and_strdup(&d->cleanup_error, json_object_get_string(v));
}

static void on_cleanup_exit(int si_code, int status, void *userdata) {
        Job *j = userdata;
        RestoreJobData *d = j->data;

        if (!d->cleanup_error && (si_code != CLD_EXITED || status != 0) &&
            asprintf(&d->cleanup_error, "Cannot remove %s: the child removing it %s %d.",
                     d->cleanup_abort ? d->plan.staging : d->plan.old,
                     si_code == CLD_EXITED ? "exited with status" : "was killed by signal", status) < 0)
                d->cleanup_error = NULL;
        d->cleanup_done(j, d->cleanup_error);
}

/* abort: staging (swap_abort()), else the old basedir and the journal (swap_finish()). done() gets an
 * error message, or NULL. */
static void cleanup_start(Job *j, bool abort, void (*done)(Job *j, const char *error)) {
        _cleanup_free_ char *err = NULL;
        RestoreJobData *d = j->data;
        int r;

        d->cleanup_abort = abort;
        d->cleanup_done = done;
        r = worker_pipe_start(j->daemon->event, 0, 0, "opbackup-remove", cleanup_main, j, NULL, 0,
                              on_cleanup_message, on_cleanup_exit, j, &d->cleanup);
        if (r >= 0)
                return;
        /* No child: do it here, waiting, as it used to be done. */
        log_warning_errno(r, "Cannot start a child to remove %s, removing it in the daemon: %m",
                          abort ? d->plan.staging : d->plan.old);
        if (abort) {
                r = swap_abort(&d->plan);
                if (r < 0 && asprintf(&err, "Cannot remove the staging folder %s: %s", d->plan.staging,
                                      strerror(-r)) < 0)
                        err = NULL;
        } else
                (void) swap_finish(&d->plan, &err);
        done(j, err);
}

static void log_unit_failure(Job *j, UnitVerb verb, const char *message) {
        char line[1024];

        if (message) {
                job_log(j, LOG_WARNING, message);
                return;
        }
        snprintf(line, sizeof(line), "Cannot %s %s.", unit_verb_to_string(verb), j->instance->config->unit);
        job_log(j, LOG_WARNING, line);
}

/* Asks systemd to stop or start the instance's unit; done() gets the outcome. */
static int restore_unit(Job *j, UnitVerb verb, unit_job_done_fn done) {
        RestoreJobData *d = j->data;
        const char *unit = j->instance->config->unit;
        char line[512];
        int r;

        snprintf(line, sizeof(line), "%s %s", verb == UNIT_STOP ? "Stopping" : "Starting", unit);
        job_log(j, LOG_INFO, line);
        r = unit_job_start(j->daemon->bus, verb, unit, UNIT_TIMEOUT_SEC * 1000000ULL, done, j, &d->unit_job);
        if (r < 0) {
                snprintf(line, sizeof(line), "Cannot ask systemd to %s %s: %s", unit_verb_to_string(verb), unit,
                         strerror(-r));
                job_log(j, LOG_WARNING, line);
        }
        return r;
}

static void on_unit_stopped(int r, const char *message, void *userdata) {
        Job *j = userdata;
        RestoreJobData *d = j->data;

        d->unit_job = unit_job_free(d->unit_job);
        if (r < 0) {
                log_unit_failure(j, UNIT_STOP, message);
                return restore_fail(j, "Cannot stop the OctoPrint unit; nothing was changed.");
        }
        restore_swap_phase(j);
}

static void restore_stop_phase(Job *j) {
        RestoreJobData *d = j->data;

        if (compute_carry(j) < 0)
                return restore_fail(j, "Out of memory.");
        d->plan.keep_previous = d->options.keep_previous;
        if (!j->instance->config->unit)
                return restore_swap_phase(j);
        if (restore_unit(j, UNIT_STOP, on_unit_stopped) < 0)
                return restore_fail(j, "Cannot stop the OctoPrint unit; nothing was changed.");
}

/* The swap failed and nothing changed: the unit, stopped for it, runs again before the job ends. */
static void on_unit_restarted_after_failure(int r, const char *message, void *userdata) {
        Job *j = userdata;
        RestoreJobData *d = j->data;

        d->unit_job = unit_job_free(d->unit_job);
        if (r < 0)
                log_unit_failure(j, UNIT_START, message);
        restore_fail(j, d->fail_message);
}

static void on_reprobed(Instance *i, void *userdata) {
        Job *j = userdata;
        RestoreJobData *d = j->data;

        d->probe = instance_probe_free(d->probe);
        restore_restart_phase(j);
}

static void restore_swap_phase(Job *j) {
        _cleanup_free_ char *err = NULL;
        RestoreJobData *d = j->data;
        Instance *i = j->instance;
        char line[1024];
        bool swapped;
        int r;

        job_set_progress(j, "swapping", 0, 0);
        snprintf(line, sizeof(line), "Moving %s to %s and the restored tree into its place", i->config->basedir,
                 d->plan.old);
        job_log(j, LOG_INFO, line);
        r = swap_execute(&d->plan, &swapped, &err);
        if (r < 0 && !swapped) {
                if (free_and_strdup(&d->fail_message, err ?: "The swap failed; nothing was changed.") < 0)
                        return restore_fail(j, "Out of memory.");
                if (i->config->unit && restore_unit(j, UNIT_START, on_unit_restarted_after_failure) >= 0)
                        return;
                return restore_fail(j, d->fail_message);
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
        /* The restart command comes from the restored config.yaml, not the replaced one. */
        r = instance_probe_start(i, on_reprobed, j, &d->probe);
        if (r > 0)
                return;
        if (r < 0)
                log_warning_errno(r, "Instance %s: cannot examine the restored instance: %m", i->name);
        restore_restart_phase(j);
}

static void on_unit_started(int r, const char *message, void *userdata) {
        Job *j = userdata;
        RestoreJobData *d = j->data;

        d->unit_job = unit_job_free(d->unit_job);
        if (r < 0)
                log_unit_failure(j, UNIT_START, message);
        restore_done(j);
}

static void on_restarted(int r, int si_code, int status, void *userdata) {
        Job *j = userdata;
        RestoreJobData *d = j->data;
        char line[512];

        d->restart = command_free(d->restart);
        if (r == -ETIMEDOUT)
                snprintf(line, sizeof(line), "The restart command did not end within %u s and was stopped: "
                         "restart OctoPrint yourself.", RESTART_TIMEOUT_SEC);
        else if (r < 0)
                snprintf(line, sizeof(line), "The restart command failed (%s): restart OctoPrint yourself.",
                         strerror(-r));
        else if (si_code != CLD_EXITED)
                snprintf(line, sizeof(line), "The restart command was killed by signal %d: restart OctoPrint "
                         "yourself.", status);
        else if (status != 0)
                snprintf(line, sizeof(line), "The restart command failed (exit status %d): restart OctoPrint "
                         "yourself.", status);
        if (r < 0 || si_code != CLD_EXITED || status != 0)
                job_log(j, LOG_WARNING, line);
        restore_done(j);
}

static void restore_restart_phase(Job *j) {
        Instance *i = j->instance;
        RestoreJobData *d = j->data;
        char line[1024];
        int r;

        /* The unit was stopped for the swap: it runs again whatever the restart option says. */
        if (i->config->unit) {
                if (restore_unit(j, UNIT_START, on_unit_started) < 0)
                        restore_done(j);
                return;
        }
        if (!d->options.restart) {
                job_log(j, LOG_INFO, "Not restarting OctoPrint (restart disabled): restart it yourself.");
                return restore_done(j);
        }
        if (isempty(i->octo.restart_command)) {
                job_log(j, LOG_WARNING, "Restart OctoPrint yourself: there is no Unit= in the instance's "
                        "configuration and no server.commands.serverRestartCommand in config.yaml.");
                return restore_done(j);
        }
        /* config.yaml is the user's file: what it says to run, runs as the user, never as root. */
        if (i->uid == 0) {
                job_log(j, LOG_WARNING, "Not running config.yaml's serverRestartCommand: the instance's user is "
                        "root, and nothing from config.yaml runs as root. Restart OctoPrint yourself, or set Unit=.");
                return restore_done(j);
        }
        snprintf(line, sizeof(line), "Restarting OctoPrint as %s: %s", i->user, i->octo.restart_command);
        job_log(j, LOG_INFO, line);
        {
                char *argv[] = { (char *) "/bin/sh", (char *) "-c", i->octo.restart_command, NULL };
                r = command_start(j->daemon->event, i->uid, i->gid, argv, RESTART_TIMEOUT_SEC, on_restarted, j,
                                  &d->restart);
        }
        if (r < 0) {
                snprintf(line, sizeof(line), "Cannot run the restart command (%s): restart OctoPrint yourself.",
                         strerror(-r));
                job_log(j, LOG_WARNING, line);
                restore_done(j);
        }
}

static void on_old_removed(Job *j, const char *error) {
        if (error)
                job_log(j, LOG_WARNING, error);
        backup_cache_done(&j->instance->backup_cache);
        job_log(j, LOG_INFO, "Restore done");
        job_finish(j, "done", NULL, append_restore_details, j->data);
}

static void restore_done(Job *j) {
        RestoreJobData *d = j->data;
        char line[1024];

        if (!d->options.keep_previous) {
                snprintf(line, sizeof(line), "Removing %s", d->plan.old);
                job_log(j, LOG_INFO, line);
        } else {
                snprintf(line, sizeof(line), "The previous basedir is kept as %s", d->plan.old);
                job_log(j, LOG_INFO, line);
        }
        cleanup_start(j, false, on_old_removed);
}

/* A refused restore ends in three steps: staging goes, then the copy of a passed file, then the job. */
static void restore_fail_finish(Job *j) {
        RestoreJobData *d = j->data;

        job_finish(j, j->cancel_requested ? "canceled" : "failed", d->fail_message, NULL, NULL);
}

static void on_failed_copy_removed(Instance *i, int r, char **deleted, const sd_bus_error *error, void *userdata) {
        Job *j = userdata;

        if (strv_length(deleted) > 0)
                job_log(j, LOG_INFO, "Removed the copy of the passed file from the backup folder.");
        restore_fail_finish(j);
}

static void restore_fail_remove_copy(Job *j) {
        RestoreJobData *d = j->data;

        /* A file passed for this restore was copied in only for it: a refused restore takes it out again. */
        if (d->options.imported) {
                char *names[] = { j->name, NULL };

                d->options.imported = false;
                if (backup_delete_start(j->instance, names, on_failed_copy_removed, j) >= 0)
                        return;
        }
        restore_fail_finish(j);
}

static void on_staging_removed(Job *j, const char *error) {
        if (error)
                log_warning("%s", error);
        restore_fail_remove_copy(j);
}

void restore_fail(Job *j, const char *message) {
        RestoreJobData *d = j->data;

        if (message != d->fail_message && free_and_strdup(&d->fail_message, message) < 0) {
                job_finish(j, j->cancel_requested ? "canceled" : "failed", message, NULL, NULL);
                return;
        }
        if (d->prepared) {
                d->prepared = false;
                return cleanup_start(j, true, on_staging_removed);
        }
        restore_fail_remove_copy(j);
}

void on_restore_exit(int si_code, int status, void *userdata) {
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
        restore_stop_phase(j);
}
