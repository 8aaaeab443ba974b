/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Transfers to and from remotes in a worker (remote-task.h). */

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "daemon/job.h"
#include "errors.h"
#include "fetch/fetch-client.h"
#include "folder/backup-folder.h"
#include "instance/instance.h"
#include "log.h"
#include "names.h"
#include "remote/remote-status.h"
#include "remote/remote-task.h"
#include "util.h"
#include "worker/worker-pipe.h"

#define CA_FILE_MAX (1024U * 1024U)

const RemoteConfig *remote_lookup(Instance *i, const char *name) {
        return remote_config_find(i->daemon->config.remotes, i->daemon->config.n_remotes, name);
}

static void outcome_done(RemoteOutcome *o) {
        free(o->remote);
        free(o->result);
        free(o->error);
        free(o->kind);
        free(o->url);
}

/* The credentials and connections only the daemon can get, dropped as soon as the worker has its copy. */
static void task_forget_secrets(RemoteTask *t) {
        for (size_t k = 0; k < t->n; k++) {
                if (t->credentials)
                        remote_credentials_done(&t->credentials[k]);
                if (t->helper_fds && t->helper_fds[k] >= 0) {
                        close(t->helper_fds[k]);
                        t->helper_fds[k] = -1;
                }
        }
}

RemoteTask *remote_task_free(RemoteTask *t) {
        if (!t)
                return NULL;
        task_forget_secrets(t);
        worker_pipe_free(t->worker);
        strv_free(t->remotes);
        free(t->name);
        if (t->fd >= 0)
                close(t->fd);
        free(t->credentials);
        strv_free(t->ca);
        free(t->helper_fds);
        strv_free(t->prepare_errors);
        for (size_t k = 0; k < t->n_outcomes; k++)
                outcome_done(&t->outcomes[k]);
        free(t->outcomes);
        for (size_t k = 0; k < t->n_entries; k++)
                free(t->entries[k].name);
        free(t->entries);
        free(t);
        return NULL;
}

void remote_task_cancel(RemoteTask *t) {
        t->canceled = true;
        /* The worker's progress callback returns -ECANCELED from now on: the transfer stops, the helper
         * removes its temporary upload. */
        worker_pipe_kill(t->worker, SIGTERM);
}

/* ---- In the worker, as the instance user ---- */

typedef struct Progress {
        WorkerReporter *rep;
        const char *stage;
        uint64_t base, total;
} Progress;

static int on_progress(uint64_t done, uint64_t total, void *userdata) {
        Progress *p = userdata;

        if (p->total == 0 && total > 0)
                p->total = total;
        return worker_report_progress(p->stage, p->base + done, p->total, p->rep);
}

static void send_outcome(int fd, const char *remote, int r, const RemoteResult *res) {
        json_object *o = json_object_new_object(), *e = json_object_new_object();

        json_object_object_add(e, "remote", json_object_new_string(remote));
        json_object_object_add(e, "result", json_object_new_string(r >= 0 ? "done" : "failed"));
        json_object_object_add(e, "error", json_object_new_string(r >= 0 ? "" : res->error ?: strerror(-r)));
        json_object_object_add(e, "kind", json_object_new_string(r >= 0 ? "" : res->kind ?: "local"));
        json_object_object_add(e, "url", json_object_new_string(strempty(res->url)));
        json_object_object_add(o, "outcome", e);
        (void) worker_send(fd, o);
}

static void send_entries(int fd, const RemoteResult *res) {
        json_object *o = json_object_new_object(), *a = json_object_new_array();

        for (size_t k = 0; k < res->n_entries; k++) {
                json_object *e = json_object_new_object();

                json_object_object_add(e, "name", json_object_new_string(res->entries[k].name));
                json_object_object_add(e, "size", json_object_new_uint64(res->entries[k].size));
                json_object_object_add(e, "mtime", json_object_new_int64(res->entries[k].mtime_usec));
                json_object_array_add(a, e);
        }
        json_object_object_add(o, "entries", a);
        (void) worker_send(fd, o);
}

static int task_worker_main(int fd, void *userdata) {
        RemoteTask *t = userdata;       /* the daemon's memory, as fork() copied it */
        Instance *i = t->instance;
        WorkerReporter rep = { .fd = fd };
        Progress p = { .rep = &rep, .stage = t->op == REMOTE_OP_PUT ? "uploading" : "fetching" };
        _cleanup_close_ int dir_fd = -1, backup_fd = -1;
        struct stat st = {};
        bool failed = false;
        int r;

        if (t->op == REMOTE_OP_PUT) {
                r = backup_folder_open(i->backup_folder, &dir_fd);
                if (r >= 0)
                        r = backup_open_at_stat(dir_fd, t->name, &backup_fd, &st);
                if (r < 0) {
                        RemoteResult res = {};
                        _cleanup_free_ char *msg = NULL;

                        if (asprintf(&msg, "Cannot open the backup %s in %s: %s", t->name, i->backup_folder,
                                     strerror(-r)) >= 0)
                                res.error = msg;
                        for (size_t k = 0; k < t->n; k++)
                                send_outcome(fd, t->remotes[k], r, &res);
                        return EXIT_FAILURE;
                }
                p.total = (uint64_t) st.st_size * t->n;
        }
        for (size_t k = 0; k < t->n; k++) {
                RemoteResult res = {};
                RemoteRequest req = {
                        .op = t->op,
                        .remote = remote_lookup(i, t->remotes[k]),
                        .credentials = &t->credentials[k],
                        .ca_pem = t->ca[k],
                        .instance = i->name,
                        .name = t->name,
                        .fd = t->op == REMOTE_OP_PUT ? backup_fd : t->fd,
                        .max_size = t->max_size,
                        .progress = on_progress,
                        .userdata = &p,
                };

                if (t->prepare_errors[k]) {
                        res.error = t->prepare_errors[k];
                        send_outcome(fd, t->remotes[k], -EINVAL, &res);
                        failed = true;
                        continue;
                }
                r = remote_transfer(t->helper_fds[k], &req, &res);
                /* Forget the secret as soon as it went to the helper. */
                remote_credentials_done(&t->credentials[k]);
                if (r >= 0 && t->op == REMOTE_OP_LIST)
                        send_entries(fd, &res);
                send_outcome(fd, t->remotes[k], r, &res);
                failed = failed || r < 0;
                remote_result_done(&res);
                p.base += (uint64_t) st.st_size;
                if (r == -ECANCELED)
                        break;
        }
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* ---- In the daemon ---- */

static int append_uploaded(sd_bus_message *m, void *userdata) {
        RemoteTask *t = userdata;
        const RemoteOutcome *o = &t->outcomes[t->n_outcomes - 1];

        return sd_bus_message_append(m, "ssss", t->instance->name, t->name, o->remote, o->url);
}

static void on_message(json_object *msg, void *userdata) {
        RemoteTask *t = userdata;
        json_object *o, *v;

        if (t->job && job_apply_worker_message(t->job, msg))
                return;
        if (json_object_object_get_ex(msg, "entries", &o) && json_object_is_type(o, json_type_array)) {
                for (size_t k = 0; k < json_object_array_length(o) && k < REMOTE_LIST_MAX; k++) {
                        json_object *e = json_object_array_get_idx(o, k);
                        const char *name = json_object_object_get_ex(e, "name", &v) ? json_object_get_string(v) : NULL;
                        char *copy;

                        if (!name || !backup_name_is_valid(name))
                                continue;
                        if (ARRAY_RESERVE(t->entries, t->n_entries_allocated, t->n_entries + 1) < 0 ||
                            !(copy = strdup(name)))
                                return;
                        t->entries[t->n_entries++] = (RemoteEntry) {
                                .name = copy,
                                .size = json_object_object_get_ex(e, "size", &v) ? json_object_get_uint64(v) : 0,
                                .mtime_usec = json_object_object_get_ex(e, "mtime", &v) ? json_object_get_int64(v) : 0,
                        };
                }
                return;
        }
        if (json_object_object_get_ex(msg, "outcome", &o)) {
                RemoteOutcome *n, *x;
                const char *fields[] = { "remote", "result", "error", "kind", "url" };
                char **dst[5];

                n = reallocarray(t->outcomes, t->n_outcomes + 1, sizeof(RemoteOutcome));
                if (!n)
                        return;
                t->outcomes = n;
                x = &t->outcomes[t->n_outcomes];
                *x = (RemoteOutcome) {};
                dst[0] = &x->remote, dst[1] = &x->result, dst[2] = &x->error, dst[3] = &x->kind, dst[4] = &x->url;
                for (size_t k = 0; k < ELEMENTSOF(fields); k++)
                        *dst[k] = strdup(json_object_object_get_ex(o, fields[k], &v) ?
                                         strempty(json_object_get_string(v)) : "");
                if (!x->remote || !x->result || !x->error || !x->kind || !x->url) {
                        outcome_done(x);
                        return;
                }
                t->n_outcomes++;
                if (t->op == REMOTE_OP_PUT && streq(x->result, "done")) {
                        log_info("Instance %s: backup %s uploaded to remote %s (%s).", t->instance->name, t->name,
                                 x->remote, x->url);
                        (void) daemon_emit_signal(t->instance->daemon, t->instance, OBJECT_ROOT, MANAGER_INTERFACE,
                                                  "BackupUploaded", NULL, append_uploaded, t);
                } else if (t->op == REMOTE_OP_PUT)
                        log_warning("Instance %s: upload of %s to remote %s failed: %s", t->instance->name,
                                    t->name, x->remote, x->error);
                if (t->job && t->op == REMOTE_OP_PUT)
                        job_log(t->job, streq(x->result, "done") ? LOG_INFO : LOG_WARNING,
                                streq(x->result, "done") ? x->url : x->error);
        }
}

static void on_exit_cb(int si_code, int status, void *userdata) {
        RemoteTask *t = userdata;

        /* A worker killed before it said how each transfer went: those failed, and say why. */
        for (size_t k = t->n_outcomes; k < t->n; k++) {
                RemoteOutcome *n = reallocarray(t->outcomes, t->n_outcomes + 1, sizeof(RemoteOutcome));
                char *msg = NULL;

                if (!n)
                        break;
                t->outcomes = n;
                if (t->canceled)
                        msg = strdup("Canceled");
                else if (asprintf(&msg, "The transfer worker %s %d before finishing",
                                  si_code == CLD_EXITED ? "exited with status" : "was killed by signal", status) < 0)
                        msg = NULL;
                t->outcomes[t->n_outcomes] = (RemoteOutcome) {
                        .remote = strdup(t->remotes[k]), .result = strdup("failed"), .error = msg,
                        .kind = strdup(t->canceled ? "canceled" : "local"), .url = strdup(""),
                };
                if (!t->outcomes[t->n_outcomes].remote || !msg) {
                        outcome_done(&t->outcomes[t->n_outcomes]);
                        break;
                }
                t->n_outcomes++;
        }
        if (t->op == REMOTE_OP_PUT) {
                struct timespec ts;
                uint64_t now;

                (void) clock_gettime(CLOCK_REALTIME, &ts);
                now = (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
                for (size_t k = 0; k < t->n_outcomes; k++)
                        if (instance_set_remote_status(t->instance, t->outcomes[k].remote, t->name, now,
                                                       t->outcomes[k].result, t->outcomes[k].error) < 0)
                                log_oom();
                remote_status_save(t->instance->daemon);
        }
        t->done(t, t->userdata);
}

/* What the worker needs that only root has: credentials, the CA file, a connection to the helper. A problem
 * becomes that remote's failure, with the reason. */
static int prepare_one(RemoteTask *t, size_t k) {
        const RemoteConfig *rc = remote_lookup(t->instance, t->remotes[k]);
        _cleanup_free_ char *why = NULL;
        int r;

        if (!rc)
                return asprintf(&t->prepare_errors[k], "There is no remote %s (no %s/remotes.d/%s.conf)", t->remotes[k],
                                t->instance->daemon->config_dir, t->remotes[k]) < 0 ? -ENOMEM : 0;
        if (rc->error)
                return free_and_strdup(&t->prepare_errors[k], rc->error);
        r = remote_credentials_read(rc, 0, &t->credentials[k], &why);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                t->prepare_errors[k] = TAKE_PTR(why);
                return t->prepare_errors[k] ? 0 : -ENOMEM;
        }
        if (rc->ca_file) {
                _cleanup_close_ int fd = open(rc->ca_file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                size_t size;

                r = fd < 0 ? -errno : read_full_fd(fd, CA_FILE_MAX, &t->ca[k], &size);
                if (r < 0)
                        return asprintf(&t->prepare_errors[k], "Cannot read CAFile=%s of remote %s: %s", rc->ca_file,
                                        rc->name, strerror(-r)) < 0 ? -ENOMEM : 0;
        }
        /* Without the helper's socket (no systemd), the worker starts the helper itself. */
        if (fetch_helper_connect(NULL, &t->helper_fds[k]) < 0)
                t->helper_fds[k] = -1;
        return 0;
}

int remote_task_start(Instance *i, Job *job, RemoteOp op, char *const *remotes, const char *name, int fd,
                      remote_task_done_fn done, void *userdata, RemoteTask **ret) {
        _cleanup_free_ int *keep = NULL;
        size_t n_keep = 0;
        RemoteTask *t;
        int r;

        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->fd = fd;
        t->instance = i;
        t->job = job;
        t->op = op;
        t->done = done;
        t->userdata = userdata;
        t->n = op == REMOTE_OP_PUT ? strv_length(remotes) : 1;
        t->remotes = strv_copy(remotes);
        t->name = name ? strdup(name) : NULL;
        t->credentials = calloc(t->n, sizeof(RemoteCredentials));
        t->ca = calloc(t->n + 1, sizeof(char *));
        t->prepare_errors = calloc(t->n + 1, sizeof(char *));
        t->helper_fds = calloc(t->n, sizeof(int));
        keep = calloc(t->n + 1, sizeof(int));
        if (!t->remotes || strv_length(t->remotes) < t->n || (name && !t->name) || !t->credentials || !t->ca ||
            !t->prepare_errors || !t->helper_fds || !keep) {
                t->fd = -1;
                remote_task_free(t);
                return -ENOMEM;
        }
        for (size_t k = 0; k < t->n; k++)
                t->helper_fds[k] = -1;
        /* A download lands in the daemon's /var/tmp, then is copied into the backup folder: one larger than
         * the folder has room for could never be imported, and a hostile server could fill the disk. */
        if (op == REMOTE_OP_GET && (instance_free_space(i, &t->max_size) < 0 || t->max_size == 0))
                t->max_size = 0;
        for (size_t k = 0; k < t->n; k++) {
                r = prepare_one(t, k);
                if (r < 0) {
                        t->fd = -1;
                        remote_task_free(t);
                        return r;
                }
                if (t->helper_fds[k] >= 0)
                        keep[n_keep++] = t->helper_fds[k];
        }
        if (fd >= 0)
                keep[n_keep++] = fd;
        r = worker_pipe_start(i->daemon->event, i->uid, i->gid, "opbackup-remote", task_worker_main, t, keep, n_keep,
                              on_message, on_exit_cb, t, (WorkerPipe **) &t->worker);
        /* The worker has its copy: the daemon keeps no secret longer than it must. */
        task_forget_secrets(t);
        if (r < 0) {
                t->fd = -1;
                remote_task_free(t);
                return r;
        }
        *ret = t;
        return 0;
}

int remote_task_append_uploads(sd_bus_message *m, const RemoteTask *t) {
        int r;

        r = sd_bus_message_open_container(m, 'e', "sv");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", "uploads");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'v', "a(sss)");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "(sss)");
        for (size_t k = 0; r >= 0 && k < t->n_outcomes; k++)
                r = sd_bus_message_append(m, "(sss)", t->outcomes[k].remote, t->outcomes[k].result,
                                          t->outcomes[k].error);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r;
}

int remote_outcome_to_bus_error(const RemoteOutcome *o, sd_bus_error *error) {
        if (streq(o->kind, "notfound"))
                return sd_bus_error_set(error, BUS_ERROR_NO_SUCH_BACKUP, o->error);
        return sd_bus_error_set(error, BUS_ERROR_REMOTE_FAILED, o->error);
}
