/* SPDX-License-Identifier: GPL-2.0-or-later */

/* RestoreBackup and RestoreBackupFromFile (opbackupd(8), RESTORE). A worker, as the instance user, validates
 * the whole archive, extracts it into a staging folder next to basedir and reinstalls plugins; only then does
 * the daemon stop the unit, swap basedir under a journal (restore-swap.c), restart and clean up. Any refusal
 * before the swap leaves the instance exactly as it was. */

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>

#include "daemon/job.h"
#include "daemon/polkit.h"
#include "errors.h"
#include "fetch/fetch-client.h"
#include "folder/backup-folder.h"
#include "folder/backup-import.h"
#include "folder/backup-manage.h"
#include "folders.h"
#include "instance/instance.h"
#include "log.h"
#include "names.h"
#include "plugins/plugins.h"
#include "remote/remote-fetch.h"
#include "remote/remote-task.h"
#include "restore/restore-finish.h"
#include "restore/restore-job.h"
#include "restore/restore-pip.h"
#include "restore/restore-swap.h"
#include "archive-validate.h"
#include "restore/restore-worker.h"
#include "restore/rm-rf.h"
#include "util.h"
#include "version.h"
#include "worker/privs.h"
#include "worker/worker-pipe.h"


static void restore_job_data_free(void *p) {
        RestoreJobData *r = p;

        if (!r)
                return;
        worker_pipe_free(r->worker);
        restore_pip_free(r->pip);
        if (r->pip_fd >= 0)
                close(r->pip_fd);
        if (r->pip_worker_fd >= 0)
                close(r->pip_worker_fd);
        unit_job_free(r->unit_job);
        instance_probe_free(r->probe);
        command_free(r->restart);
        free(r->fail_message);
        worker_pipe_free(r->cleanup);
        free(r->cleanup_error);
        remote_fetch_free(r->fetch);
        free(r->fetched_name);
        free(r->options.remote);
        if (r->staging_fd >= 0)
                close(r->staging_fd);
        if (r->fetch_fd >= 0)
                close(r->fetch_fd);
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
                if (!known && streq(key, "remote")) {
                        const char *remote;
                        r = sd_bus_message_read(m, "v", "s", &remote);
                        if (r < 0 || !instance_name_is_valid(remote))
                                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                         "The option 'remote' must be the name of a remote.");
                        if (free_and_strdup(&o->remote, remote) < 0)
                                return -ENOMEM;
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
        {
                _cleanup_free_ char *old = NULL;
                struct stat st;

                _cleanup_free_ char *old_in_place = NULL;

                if (asprintf(&old, "%s.opbackup-old", i->config->basedir) < 0 ||
                    asprintf(&old_in_place, "%s/.opbackup-old", i->config->basedir) < 0)
                        return -ENOMEM;
                if (lstat(old_in_place, &st) == 0)
                        free(old), old = TAKE_PTR(old_in_place);
                if (lstat(old, &st) == 0)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_FILE_EXISTS,
                                                 "%s exists, kept by an earlier restore (keep-previous): move it away "
                                                 "or remove it, then restore again.", old);
        }
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
        unsigned bmaj, bmin, imaj, imin;

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

        data = calloc(1, sizeof(*data));
        if (!data)
                return -ENOMEM;
        data->staging_fd = -1;
        data->fetch_fd = -1;
        data->pip_fd = data->pip_worker_fd = -1;
        data->options = *options;
        *options = (RestoreOptions) {};
        return job_new_and_reply(&(JobDescription) {
                .instance = i,
                .operation = JOB_RESTORE,
                .action = ACTION_RESTORE,
                .request = m,
                .name = name,
                .start = restore_job_start,
                .cancel = restore_job_cancel,
                .data = data,
                .free_data = restore_job_data_free,
        });
}

/* A restore asked for, while the backup folder is listed (and the passed file's copy, if any, is removed
 * again after a refusal). */
typedef struct RestoreRequest {
        sd_bus_message *request;
        char *name;
        RestoreOptions options;
        sd_bus_error error;             /* the refusal, while the copy is removed */
        int r;
} RestoreRequest;

static void restore_request_free(RestoreRequest *q) {
        sd_bus_message_unref(q->request);
        free(q->name);
        free(q->options.name);
        sd_bus_error_free(&q->error);
        free(q);
}

static void restore_request_reply_error(RestoreRequest *q) {
        int r;

        if (sd_bus_error_is_set(&q->error))
                r = sd_bus_reply_method_error(q->request, &q->error);
        else
                r = sd_bus_reply_method_errno(q->request, q->r, NULL);
        if (r < 0)
                log_debug("Failed to reply to %s(): %d", strempty(sd_bus_message_get_member(q->request)), r);
        restore_request_free(q);
}

static void on_refused_copy_removed(Instance *i, int r, char **deleted, const sd_bus_error *error, void *userdata) {
        restore_request_reply_error(userdata);
}

/* Refuses q with what q->r and q->error say; a passed file copied in for it is removed first. */
static void restore_request_refuse(Instance *i, RestoreRequest *q) {
        if (q->options.imported) {
                char *names[] = { q->name, NULL };

                if (backup_delete_start(i, names, on_refused_copy_removed, q) >= 0)
                        return;
        }
        restore_request_reply_error(q);
}

static void on_restore_listed(Instance *i, int r, const char *err, void *userdata) {
        RestoreRequest *q = userdata;

        if (r < 0 && err)
                r = sd_bus_error_set(&q->error, SD_BUS_ERROR_FAILED, err);
        else if (r >= 0) {
                /* The situation may have changed while the folder was listed. */
                r = check_restore_possible(i, &q->error);
                if (r >= 0)
                        r = check_backup_listed(i, q->name, &q->error);
                if (r >= 0)
                        r = create_restore_job(q->request, i, q->name, &q->options);
                if (r >= 0) {
                        restore_request_free(q);
                        return;
                }
        }
        q->r = r;
        restore_request_refuse(i, q);
}

/* Takes options; name is copied. Returns 1 when the folder is being listed, else an error (and q is
 * gone). */
static int restore_request_start(Instance *i, sd_bus_message *m, const char *name, RestoreOptions *options) {
        RestoreRequest *q;
        int r;

        q = calloc(1, sizeof(*q));
        if (!q) {
                free(options->name);
                return -ENOMEM;
        }
        q->request = sd_bus_message_ref(m);
        q->options = *options;
        *options = (RestoreOptions) {};
        q->name = strdup(name);
        if (!q->name) {
                restore_request_free(q);
                return -ENOMEM;
        }
        r = backup_list_refresh_start(i, on_restore_listed, q);
        if (r < 0) {
                restore_request_free(q);
                return r;
        }
        return 1;
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
        /* From a remote: "latest" is the newest there; what it holds is checked once it is fetched. */
        if (r >= 0 && options.remote) {
                const RemoteConfig *rc = remote_lookup(i, options.remote);

                if (!rc)
                        r = sd_bus_error_setf(error, BUS_ERROR_NO_SUCH_REMOTE, "No remote named '%s' (see "
                                              "'opbackupctl remotes').", options.remote);
                else if (rc->error)
                        r = sd_bus_error_setf(error, BUS_ERROR_REMOTE_FAILED, "Remote %s cannot be used: %s",
                                              rc->name, rc->error);
        }
        if (r >= 0 && !(options.remote && streq(name_copy, "latest")))
                r = check_backup_name(name_copy, error);
        if (r >= 0)
                r = check_restore_possible(i, error);
        /* From a remote, the backup is not in the folder yet: the job fetches it first. */
        if (r >= 0 && options.remote)
                r = create_restore_job(m, i, name_copy, &options);
        else if (r >= 0)
                return restore_request_start(i, m, name_copy, &options);
        free(options.name);
        free(options.remote);
        return r;
}

static void restore_after_import(Instance *i, sd_bus_message *m, const char *stored, const sd_bus_error *error,
                                 void *userdata) {
        RestoreOptions *options = userdata;
        RestoreRequest *q;

        if (error) {
                (void) sd_bus_reply_method_error(m, error);
                goto finish;
        }
        options->imported = true;
        q = calloc(1, sizeof(*q));
        if (!q || !(q->name = strdup(stored))) {
                free(q);
                (void) sd_bus_reply_method_errno(m, -ENOMEM, NULL);
                goto finish;
        }
        q->request = sd_bus_message_ref(m);
        q->options = *options;
        *options = (RestoreOptions) {};
        /* The situation may have changed during the copy. */
        q->r = check_restore_possible(i, &q->error);
        if (q->r >= 0)
                q->r = backup_list_refresh_start(i, on_restore_listed, q);
        if (q->r < 0)
                restore_request_refuse(i, q);
finish:
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

static int prepare_staging(Job *j, char **ret_error) {
        RestoreJobData *d = j->data;
        Instance *i = j->instance;
        _cleanup_free_ char *msg = NULL;
        struct stat st, pst;
        int r, fd;

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
        /* A basedir that is a mount point (a Docker volume, say) cannot be renamed: its contents are
         * swapped in place instead, with staging and the safety copy inside it. */
        if (st.st_dev != pst.st_dev) {
                r = swap_plan_init_in_place(&d->plan, i->config->basedir);
                if (r >= 0)
                        job_log(j, LOG_INFO, "Basedir is a mount point: restoring its contents in place");
        } else
                r = swap_plan_init(&d->plan, i->config->basedir);
        if (r < 0)
                return r;

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

static int restore_job_start(Job *j);

static void on_fetched_copy_removed(Instance *i, int r, char **deleted, const sd_bus_error *error, void *userdata) {
        if (r < 0 || error)
                log_warning("Instance %s: cannot remove the copy a canceled restore fetched: %s", i->name,
                            error ? error->message : strerror(-r));
}

/* The copy a restore from a remote fetched, when the restore does not go on (the worker removes it after
 * a refusal): from the event loop, as the instance user. */
static void remove_fetched_copy(Instance *i, const char *stored) {
        char *names[] = { (char *) stored, NULL };

        (void) backup_delete_start(i, names, on_fetched_copy_removed, NULL);
}

/* Option "remote": the backup is in the backup folder now (as any import: checked, a free name); the
 * restore goes on with it as if it had been named, and a refusal removes the copy. */
static void on_remote_fetched(Job *j, const char *stored, const char *error, void *userdata) {
        RestoreJobData *d = j->data;
        Instance *i = j->instance;
        int r;

        if (!stored) {
                _cleanup_free_ char *msg = NULL;

                if (asprintf(&msg, "Cannot fetch %s from remote %s: %s", j->name, d->options.remote,
                             strempty(error)) < 0)
                        msg = NULL;
                job_finish(j, j->cancel_requested ? "canceled" : "failed", msg ?: error, NULL, NULL);
                instance_start_next_job(i);
                return;
        }
        /* The import checked it is an OctoPrint backup; what depends on the instance (its version, free
         * space) the worker checks as for any restore, and a refusal then removes the copy. */
        d->options.imported = true;
        if (j->cancel_requested) {
                remove_fetched_copy(i, stored);
                job_finish(j, "canceled", "Canceled.", NULL, NULL);
                instance_start_next_job(i);
                return;
        }
        r = free_and_strdup(&j->name, stored);
        if (r >= 0)
                r = free_and_strdup(&d->fetched_name, stored);
        if (r < 0) {
                remove_fetched_copy(i, stored);
                job_finish(j, "failed", strerror(-r), NULL, NULL);
                instance_start_next_job(i);
                return;
        }
        free(d->options.remote);
        d->options.remote = NULL;
        (void) restore_job_start(j);
}

static int restore_job_start(Job *j) {
        _cleanup_free_ char *err = NULL;
        RestoreJobData *d = j->data;
        Instance *i = j->instance;
        char line[1024];
        int r;

        j->state = JOB_RUNNING;
        if (d->options.remote) {
                snprintf(line, sizeof(line), "Fetching %s from remote %s", j->name, d->options.remote);
                job_log(j, LOG_INFO, line);
                r = remote_fetch_start(i, j, d->options.remote, j->name, on_remote_fetched, NULL, &d->fetch);
                if (r < 0) {
                        job_finish(j, "failed", "Cannot start the download from the remote.", NULL, NULL);
                        instance_start_next_job(i);
                }
                return r;
        }
        snprintf(line, sizeof(line), "Restoring %s into %s", j->name, i->config->basedir);
        job_log(j, LOG_INFO, line);
        job_set_progress(j, "preparing", 0, 0);
        r = prepare_staging(j, &err);
        if (r < 0) {
                restore_fail(j, err ?: strerror(-r));
                return r;
        }
        if (!d->options.skip_plugins) {
                /* opbackupd has no network: the worker downloads plugins through the helper, which only
                 * root can connect to. Without one (a daemon started by hand) the worker fetches itself. */
                r = fetch_helper_connect(NULL, &d->fetch_fd);
                if (r == -ENOENT || r == -ECONNREFUSED)
                        log_debug("No fetch helper at %s: a restore's plugin downloads are made by its worker.",
                                  fetch_helper_socket_path());
                else if (r < 0)
                        log_warning("Cannot connect to the fetch helper at %s (%s): plugin downloads are made by "
                                    "the restore's worker, which has no network under opbackupd.service.",
                                    fetch_helper_socket_path(), strerror(-r));
        }
        /* Under systemd, pip runs as a transient unit with the network, asked for by the worker
         * (restore-pip.c). */
        if (!d->options.skip_plugins && restore_pip_setup(j) < 0)
                log_warning("Cannot make a socket for the restore's worker: it runs pip itself, without network "
                            "under opbackupd.service.");
        {
                int keep[3] = { d->staging_fd }, n = 1;

                if (d->fetch_fd >= 0)
                        keep[n++] = d->fetch_fd;
                if (d->pip_worker_fd >= 0)
                        keep[n++] = d->pip_worker_fd;
                r = worker_pipe_start(i->daemon->event, i->uid, i->gid, "opbackup-restore", restore_worker_main, j,
                                      keep, n, on_restore_message, on_restore_exit, j, &d->worker);
        }
        /* The worker has its copies: the helper must see the connection end when the worker does, and the
         * worker the daemon's end of the answers when the daemon goes. */
        if (d->fetch_fd >= 0) {
                close(d->fetch_fd);
                d->fetch_fd = -1;
        }
        if (d->pip_worker_fd >= 0) {
                close(d->pip_worker_fd);
                d->pip_worker_fd = -1;
        }
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
        if (d->fetch && d->options.remote) {
                remote_fetch_cancel(d->fetch);
                return;
        }
        /* Only the worker's part can be canceled; the swap is short and must not be interrupted. */
        worker_pipe_kill(d->worker, SIGTERM);
        restore_pip_cancel(j);
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
