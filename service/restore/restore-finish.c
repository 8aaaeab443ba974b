/* SPDX-License-Identifier: GPL-2.0-or-later */

/* The part of a restore after the worker (opbackupd(8), RESTORE, steps 6-8), in the daemon: stop the unit,
 * swap basedir under the journal while carrying over what the backup does not hold, restart, clean up. */

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>

#include "backup/backup-job.h"
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
#include "restore/restore-job.h"
#include "restore/restore-swap.h"
#include "archive-validate.h"
#include "util.h"
#include "version.h"
#include "worker/privs.h"
#include "worker/worker-pipe.h"


#include "restore/restore-finish.h"
#include "restore/restore-worker.h"

/* ---- In the daemon ---- */

void on_restore_message(json_object *msg, void *userdata) {
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

void restore_fail(Job *j, const char *message) {
        RestoreJobData *d = j->data;

        if (d->prepared) {
                int r = swap_abort(&d->plan);
                if (r < 0)
                        log_warning_errno(r, "Cannot remove the staging folder %s: %m", d->plan.staging);
                d->prepared = false;
        }
        /* A file passed for this restore was copied in only for it: a refused restore takes it out again. */
        if (d->options.imported && backup_delete(j->instance, j->name) >= 0)
                job_log(j, LOG_INFO, "Removed the copy of the passed file from the backup folder.");
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
        /* The restart command comes from the restored config.yaml, not the replaced one. */
        (void) instance_probe(i);
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
        job_log(j, LOG_INFO, "Restore done");
        job_finish(j, "done", NULL, append_restore_details, d);
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
        restore_swap_phase(j);
}
