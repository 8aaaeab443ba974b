/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ListRemotes, ListRemoteBackups, UploadBackup, DeleteRemoteBackup (remote-bus.h). The transfers run in
 * workers (remote-task.h); the daemon keeps serving meanwhile. */

#include <fcntl.h>
#include <fnmatch.h>

#include "daemon/daemon-state.h"
#include "daemon/job.h"
#include "daemon/polkit.h"
#include "errors.h"
#include "folder/backup-import.h"
#include "folder/backup-list.h"
#include "folder/backup-manage.h"
#include "instance/instance.h"
#include "log.h"
#include "names.h"
#include "remote/remote-bus.h"
#include "remote/remote-fetch.h"
#include "remote/remote-task.h"
#include "util.h"

int property_get_remotes(sd_bus *bus, const char *path, const char *interface, const char *property,
                         sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Instance *i = userdata;
        return sd_bus_message_append_strv(reply, i->config->copy_to);
}

int property_get_remote_status(sd_bus *bus, const char *path, const char *interface, const char *property,
                               sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Instance *i = userdata;
        int r;

        r = sd_bus_message_open_container(reply, 'a', "(sstss)");
        for (size_t k = 0; r >= 0 && k < i->n_remote_status; k++) {
                const InstanceRemoteStatus *s = &i->remote_status[k];
                r = sd_bus_message_append(reply, "(sstss)", s->remote, s->name, s->time_usec, s->result, s->error);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return r;
}

int method_list_remotes_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Daemon *d = userdata;
        int r;

        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(sss)");
        for (size_t k = 0; r >= 0 && k < d->config.n_remotes; k++) {
                const RemoteConfig *rc = d->config.remotes[k];
                /* The URL never holds a password (remote-config.c refuses one). */
                r = sd_bus_message_append(reply, "(sss)", rc->name, remote_type_to_string(rc->type), strempty(rc->url));
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

/* A remote the instance may use: configured and usable. */
static int check_remote(Instance *i, const char *name, sd_bus_error *error) {
        const RemoteConfig *rc = instance_name_is_valid(name) ? remote_lookup(i, name) : NULL;

        if (!rc)
                return sd_bus_error_setf(error, BUS_ERROR_NO_SUCH_REMOTE, "No remote named '%.64s' (see 'opbackupctl "
                                         "remotes'; remotes are configured in %s/remotes.d/NAME.conf).", name,
                                         i->daemon->config_dir);
        if (rc->error)
                return sd_bus_error_setf(error, BUS_ERROR_REMOTE_FAILED, "Remote %s cannot be used: %s", name, rc->error);
        return 0;
}

/* ---- ListRemoteBackups, DeleteRemoteBackup: a worker, then the reply ---- */

typedef struct Pending {
        Daemon *daemon;
        sd_bus_message *request;
} Pending;

static void pending_finish(RemoteTask *t, Pending *p, sd_bus_message *reply, const sd_bus_error *error) {
        if (reply)
                (void) sd_bus_send(NULL, reply, NULL);
        else
                (void) sd_bus_reply_method_error(p->request, error);
        sd_bus_message_unref(p->request);
        p->daemon->n_pending_remote--;
        daemon_note_activity(p->daemon);
        free(p);
        remote_task_free(t);
}

static void on_list_done(RemoteTask *t, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        Pending *p = userdata;
        int r;

        if (t->n_outcomes < 1 || !streq(t->outcomes[0].result, "done")) {
                if (t->n_outcomes > 0)
                        (void) remote_outcome_to_bus_error(&t->outcomes[0], &error);
                else
                        sd_bus_error_set(&error, BUS_ERROR_REMOTE_FAILED, "The transfer worker failed.");
                pending_finish(t, p, NULL, &error);
                return;
        }
        r = sd_bus_message_new_method_return(p->request, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(stx)");
        for (size_t k = 0; r >= 0 && k < t->n_entries; k++)
                r = sd_bus_message_append(reply, "(stx)", t->entries[k].name, t->entries[k].size,
                                          t->entries[k].mtime_usec);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0) {
                sd_bus_error_set_errno(&error, r);
                pending_finish(t, p, NULL, &error);
                return;
        }
        pending_finish(t, p, reply, NULL);
}

static void on_delete_done(RemoteTask *t, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        Pending *p = userdata;

        if (t->n_outcomes < 1 || !streq(t->outcomes[0].result, "done")) {
                if (t->n_outcomes > 0)
                        (void) remote_outcome_to_bus_error(&t->outcomes[0], &error);
                else
                        sd_bus_error_set(&error, BUS_ERROR_REMOTE_FAILED, "The transfer worker failed.");
                pending_finish(t, p, NULL, &error);
                return;
        }
        log_info("Instance %s: %s deleted on remote %s.", t->instance->name, t->name, t->remotes[0]);
        if (sd_bus_message_new_method_return(p->request, &reply) < 0) {
                sd_bus_error_set_errno(&error, -ENOMEM);
                pending_finish(t, p, NULL, &error);
                return;
        }
        pending_finish(t, p, reply, NULL);
}

static int start_pending(Instance *i, sd_bus_message *m, RemoteOp op, const char *remote, const char *name,
                         remote_task_done_fn done) {
        char *remotes[] = { (char *) remote, NULL };
        RemoteTask *t;
        Pending *p;
        int r;

        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->daemon = i->daemon;
        p->request = sd_bus_message_ref(m);
        r = remote_task_start(i, NULL, op, remotes, name, -1, done, p, &t);
        if (r < 0) {
                sd_bus_message_unref(p->request);
                free(p);
                return r;
        }
        i->daemon->n_pending_remote++;
        return 1;
}

int method_list_remote_backups_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Instance *i = userdata;
        const char *remote;
        int r;

        r = sd_bus_message_read(m, "s", &remote);
        if (r < 0)
                return r;
        r = check_remote(i, remote, error);
        if (r < 0)
                return r;
        return start_pending(i, m, REMOTE_OP_LIST, remote, NULL, on_list_done);
}

int method_delete_remote_backup_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Instance *i = userdata;
        const char *remote, *name;
        int r;

        r = sd_bus_message_read(m, "ss", &remote, &name);
        if (r < 0)
                return r;
        r = check_remote(i, remote, error);
        if (r < 0)
                return r;
        r = check_backup_name(name, error);
        if (r < 0)
                return r;
        return start_pending(i, m, REMOTE_OP_DELETE, remote, name, on_delete_done);
}

/* ---- UploadBackup: a job ---- */

typedef struct UploadJobData {
        char **remotes;
        RemoteTask *task;
} UploadJobData;

static void upload_job_data_free(void *p) {
        UploadJobData *u = p;

        if (!u)
                return;
        strv_free(u->remotes);
        remote_task_free(u->task);
        free(u);
}

static int append_upload_details(sd_bus_message *m, void *userdata) {
        Job *j = userdata;
        UploadJobData *u = j->data;
        int r;

        r = sd_bus_message_append(m, "{sv}", "name", "s", j->name);
        if (r >= 0 && u->task)
                r = remote_task_append_uploads(m, u->task);
        return r;
}

static void on_upload_done(RemoteTask *t, void *userdata) {
        _cleanup_free_ char *msg = NULL;
        Job *j = userdata;
        Instance *i = j->instance;
        size_t failed = 0;

        for (size_t k = 0; k < t->n_outcomes; k++)
                if (!streq(t->outcomes[k].result, "done")) {
                        failed++;
                        if (!msg && asprintf(&msg, "Upload to %s failed: %s", t->outcomes[k].remote,
                                             t->outcomes[k].error) < 0)
                                msg = NULL;
                }
        job_finish(j, j->cancel_requested ? "canceled" : failed ? "failed" : "done",
                   j->cancel_requested ? "Canceled." : msg, append_upload_details, j);
        instance_start_next_job(i);
}

static int upload_job_start(Job *j) {
        UploadJobData *u = j->data;
        Instance *i = j->instance;
        int r;

        j->state = JOB_RUNNING;
        job_set_progress(j, "uploading", 0, 0);
        r = remote_task_start(i, j, REMOTE_OP_PUT, u->remotes, j->name, -1, on_upload_done, j, &u->task);
        if (r < 0) {
                job_finish(j, "failed", "Cannot start the upload worker.", NULL, NULL);
                instance_start_next_job(i);
        }
        return r;
}

static void upload_job_cancel(Job *j) {
        UploadJobData *u = j->data;

        if (j->state == JOB_QUEUED || !u->task) {
                job_finish(j, "canceled", "Canceled before it started.", NULL, NULL);
                return;
        }
        remote_task_cancel(u->task);
}

/* What UploadBackup was asked, while the backup folder is listed. */
typedef struct UploadRequest {
        sd_bus_message *request;
        char *name;
        char **remotes;
} UploadRequest;

static void upload_request_free(UploadRequest *q) {
        sd_bus_message_unref(q->request);
        free(q->name);
        strv_free(q->remotes);
        free(q);
}

/* The checks that need the folder's listing, then the job. */
static int create_upload_job(Instance *i, UploadRequest *q, sd_bus_error *error) {
        UploadJobData *u;
        bool found = false;

        for (size_t k = 0; k < i->backup_cache.n; k++)
                found = found || streq(i->backup_cache.entries[k].name, q->name);
        if (!found)
                return sd_bus_error_setf(error, BUS_ERROR_NO_SUCH_BACKUP, "No backup named %s in %s (see "
                                         "'opbackupctl list').", q->name, i->backup_folder);
        u = calloc(1, sizeof(*u));
        if (!u)
                return -ENOMEM;
        u->remotes = TAKE_PTR(q->remotes);
        return job_new_and_reply(&(JobDescription) {
                .instance = i,
                .operation = JOB_UPLOAD,
                .action = ACTION_CREATE,
                .request = q->request,
                .name = q->name,
                .start = upload_job_start,
                .cancel = upload_job_cancel,
                .data = u,
                .free_data = upload_job_data_free,
        });
}

static void on_upload_listed(Instance *i, int r, const char *err, void *userdata) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        UploadRequest *q = userdata;

        if (r < 0 && err)
                r = sd_bus_error_set(&error, SD_BUS_ERROR_FAILED, err);
        else if (r >= 0)
                r = create_upload_job(i, q, &error);
        if (sd_bus_error_is_set(&error))
                r = sd_bus_reply_method_error(q->request, &error);
        else if (r < 0)
                r = sd_bus_reply_method_errno(q->request, r, NULL);
        if (r < 0)
                log_debug("Failed to reply to UploadBackup(): %d", r);
        upload_request_free(q);
}

int method_upload_backup_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_strv_free_ char **remotes = NULL;
        Instance *i = userdata;
        UploadRequest *q;
        const char *name;
        int r;

        r = sd_bus_message_read(m, "s", &name);
        if (r >= 0)
                r = sd_bus_message_read_strv(m, &remotes);
        if (r < 0)
                return r;
        r = check_backup_name(name, error);
        if (r >= 0)
                r = check_instance_usable(i, error);
        if (r < 0)
                return r;
        /* None named: the instance's own. */
        if (strv_length(remotes) == 0) {
                strv_free(remotes);
                remotes = strv_copy(i->config->copy_to ?: (char *[]) { NULL });
                if (!remotes)
                        return -ENOMEM;
                if (!remotes[0])
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "No remote given, and instance %s "
                                                 "has none in CopyTo=.", i->name);
        }
        if (strv_length(remotes) > REMOTES_PER_BACKUP_MAX)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "At most %u remotes at once.",
                                         REMOTES_PER_BACKUP_MAX);
        STRV_FOREACH(rn, remotes) {
                r = check_remote(i, *rn, error);
                if (r < 0)
                        return r;
        }
        /* Whether the backup is there: look before answering, without waiting in the loop. */
        q = calloc(1, sizeof(*q));
        if (!q)
                return -ENOMEM;
        q->request = sd_bus_message_ref(m);
        q->remotes = TAKE_PTR(remotes);
        q->name = strdup(name);
        if (!q->name) {
                upload_request_free(q);
                return -ENOMEM;
        }
        r = backup_list_refresh_start(i, on_upload_listed, q);
        if (r < 0) {
                upload_request_free(q);
                return r;
        }
        return 1;
}

/* ---- FetchRemoteBackup: a job; the download goes to a file of the daemon's own, then through ImportBackup's
 * code (folder/backup-import.h) into the backup folder: checked like any import, never a second writer ---- */

typedef struct FetchJobData {
        char *remote;
        RemoteFetch *fetch;
        char *stored;
} FetchJobData;

static void fetch_job_data_free(void *p) {
        FetchJobData *f = p;

        if (!f)
                return;
        free(f->remote);
        remote_fetch_free(f->fetch);
        free(f->stored);
        free(f);
}

static int append_fetch_details(sd_bus_message *m, void *userdata) {
        Job *j = userdata;
        FetchJobData *f = j->data;

        return sd_bus_message_append(m, "{sv}{sv}{sv}", "name", "s", strempty(f->stored), "remote", "s", f->remote,
                                     "remote-name", "s", j->name);
}

static void on_fetched(Job *j, const char *stored, const char *error, void *userdata) {
        FetchJobData *f = j->data;
        Instance *i = j->instance;

        if (stored && free_and_strdup(&f->stored, stored) >= 0)
                job_finish(j, "done", NULL, append_fetch_details, j);
        else
                job_finish(j, j->cancel_requested ? "canceled" : "failed", error ?: "Out of memory.", NULL, NULL);
        instance_start_next_job(i);
}

static int fetch_job_start(Job *j) {
        FetchJobData *f = j->data;
        Instance *i = j->instance;
        int r;

        j->state = JOB_RUNNING;
        r = remote_fetch_start(i, j, f->remote, j->name, on_fetched, NULL, &f->fetch);
        if (r < 0) {
                job_finish(j, "failed", "Cannot start the download from the remote.", NULL, NULL);
                instance_start_next_job(i);
        }
        return r;
}

static void fetch_job_cancel(Job *j) {
        FetchJobData *f = j->data;

        if (j->state == JOB_QUEUED || !f->fetch) {
                job_finish(j, "canceled", "Canceled before it started.", NULL, NULL);
                return;
        }
        remote_fetch_cancel(f->fetch);
}

int method_fetch_remote_backup_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Instance *i = userdata;
        const char *remote, *name;
        FetchJobData *f;
        int r;

        r = sd_bus_message_read(m, "ss", &remote, &name);
        if (r < 0)
                return r;
        r = check_remote(i, remote, error);
        /* "latest": the newest backup there. */
        if (r >= 0 && !streq(name, "latest"))
                r = check_backup_name(name, error);
        if (r >= 0)
                r = check_instance_usable(i, error);
        if (r < 0)
                return r;
        f = calloc(1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        f->remote = strdup(remote);
        if (!f->remote) {
                free(f);
                return -ENOMEM;
        }
        return job_new_and_reply(&(JobDescription) {
                .instance = i,
                .operation = JOB_FETCH,
                .action = ACTION_CREATE,
                .request = m,
                .name = name,
                .start = fetch_job_start,
                .cancel = fetch_job_cancel,
                .data = f,
                .free_data = fetch_job_data_free,
        });
}

/* ---- PruneRemoteBackups: the remote's Keep=, applied to the schedule's backups (BACKUP_SCHEDULED_GLOB), as
 * scheduled runs do locally: what a person made stays ---- */

typedef struct PruneOp {
        Instance *instance;
        sd_bus_message *request;
        char *remote;
        unsigned keep;
        char **victims;
        size_t next;
        char **deleted;
        char *error;
} PruneOp;

static void prune_op_finish(PruneOp *p) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;

        /* What was deleted before a failure is said too: in the reply when nothing failed, in the log. */
        if (p->error)
                (void) sd_bus_reply_method_errorf(p->request, BUS_ERROR_REMOTE_FAILED, "%s", p->error);
        else if (sd_bus_message_new_method_return(p->request, &reply) >= 0 &&
                 sd_bus_message_append_strv(reply, p->deleted) >= 0)
                (void) sd_bus_send(NULL, reply, NULL);
        STRV_FOREACH(d, p->deleted)
                log_info("Instance %s: %s deleted on remote %s (Keep=%u).", p->instance->name, *d, p->remote,
                         p->keep);
        p->instance->daemon->n_pending_remote--;
        daemon_note_activity(p->instance->daemon);
        sd_bus_message_unref(p->request);
        free(p->remote);
        strv_free(p->victims);
        strv_free(p->deleted);
        free(p->error);
        free(p);
}

static void prune_next(PruneOp *p);

static void on_prune_deleted(RemoteTask *t, void *userdata) {
        PruneOp *p = userdata;

        if (t->n_outcomes > 0 && streq(t->outcomes[0].result, "done"))
                (void) strv_extend(&p->deleted, t->name);
        else if (t->n_outcomes > 0 && !streq(t->outcomes[0].kind, "notfound"))
                (void) free_and_strdup(&p->error, t->outcomes[0].error);
        remote_task_free(t);
        if (p->error)
                prune_op_finish(p);
        else
                prune_next(p);
}

static void prune_next(PruneOp *p) {
        char *remotes[] = { p->remote, NULL };
        RemoteTask *t;
        int r;

        if (!p->victims || !p->victims[p->next]) {
                prune_op_finish(p);
                return;
        }
        r = remote_task_start(p->instance, NULL, REMOTE_OP_DELETE, remotes, p->victims[p->next++], -1,
                              on_prune_deleted, p, &t);
        if (r < 0) {
                (void) free_and_strdup(&p->error, "Cannot start the transfer worker.");
                prune_op_finish(p);
        }
}

static int entry_newest_first(const void *a, const void *b) {
        const RemoteEntry *x = a, *y = b;
        int c = strcmp(y->name, x->name);

        /* Generated names hold the date: by name, then (same second) by the server's time. */
        return c != 0 ? c : (y->mtime_usec > x->mtime_usec) - (y->mtime_usec < x->mtime_usec);
}

static void on_prune_listed(RemoteTask *t, void *userdata) {
        PruneOp *p = userdata;
        unsigned kept = 0;

        if (t->n_outcomes < 1 || !streq(t->outcomes[0].result, "done")) {
                (void) free_and_strdup(&p->error, t->n_outcomes ? t->outcomes[0].error : "The transfer worker failed.");
                remote_task_free(t);
                prune_op_finish(p);
                return;
        }
        if (t->n_entries > 1)
                qsort(t->entries, t->n_entries, sizeof(RemoteEntry), entry_newest_first);
        for (size_t k = 0; k < t->n_entries; k++) {
                if (fnmatch(BACKUP_SCHEDULED_GLOB, t->entries[k].name, 0) != 0)
                        continue;
                if (kept < p->keep) {
                        kept++;
                        continue;
                }
                (void) strv_extend(&p->victims, t->entries[k].name);
        }
        remote_task_free(t);
        prune_next(p);
}

int method_prune_remote_backups_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Instance *i = userdata;
        const RemoteConfig *rc;
        const char *remote;
        char *remotes[2] = {};
        RemoteTask *t;
        PruneOp *p;
        int r;

        r = sd_bus_message_read(m, "s", &remote);
        if (r < 0)
                return r;
        r = check_remote(i, remote, error);
        if (r < 0)
                return r;
        rc = remote_lookup(i, remote);
        if (rc->keep == 0)
                return sd_bus_reply_method_return(m, "as", 0);
        p = calloc(1, sizeof(*p));
        if (!p || !(p->remote = strdup(remote))) {
                free(p);
                return -ENOMEM;
        }
        p->instance = i;
        p->keep = rc->keep;
        p->request = sd_bus_message_ref(m);
        remotes[0] = p->remote;
        i->daemon->n_pending_remote++;
        r = remote_task_start(i, NULL, REMOTE_OP_LIST, remotes, NULL, -1, on_prune_listed, p, &t);
        if (r < 0) {
                i->daemon->n_pending_remote--;
                sd_bus_message_unref(p->request);
                free(p->remote);
                free(p);
                return r;
        }
        return 1;
}
