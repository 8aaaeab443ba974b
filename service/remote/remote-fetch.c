/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A remote backup into the backup folder (remote-fetch.h): LIST (for "latest"), GET, then the import. */

#include <fcntl.h>
#include <fnmatch.h>

#include "daemon/job.h"
#include "folder/backup-import.h"
#include "instance/instance.h"
#include "log.h"
#include "remote/remote-fetch.h"
#include "remote/remote-task.h"
#include "util.h"

struct RemoteFetch {
        Instance *instance;
        Job *job;
        char *remote;
        char *name;                     /* "latest" until the listing says which */
        int fd;
        RemoteTask *task;
        bool canceled, importing;
        remote_fetch_done_fn done;
        void *userdata;
};

RemoteFetch *remote_fetch_free(RemoteFetch *f) {
        if (!f)
                return NULL;
        remote_task_free(f->task);
        if (f->fd >= 0)
                close(f->fd);
        free(f->remote);
        free(f->name);
        free(f);
        return NULL;
}

void remote_fetch_cancel(RemoteFetch *f) {
        f->canceled = true;
        if (f->task)
                remote_task_cancel(f->task);
}

static void finish(RemoteFetch *f, const char *stored, const char *error) {
        f->done(f->job, stored, error, f->userdata);
}

static void on_imported(Instance *i, sd_bus_message *m, const char *stored, const sd_bus_error *error,
                        void *userdata) {
        RemoteFetch *f = userdata;

        f->importing = false;
        if (stored)
                log_info("Instance %s: %s fetched from remote %s as %s.", i->name, f->name, f->remote, stored);
        finish(f, stored, error ? error->message : NULL);
}

static void on_downloaded(RemoteTask *t, void *userdata) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        RemoteFetch *f = userdata;
        int r;

        f->task = NULL;
        if (f->canceled || t->n_outcomes < 1 || !streq(t->outcomes[0].result, "done")) {
                _cleanup_free_ char *msg = strdup(f->canceled ? "Canceled." : t->n_outcomes ? t->outcomes[0].error :
                                                  "The transfer worker failed.");
                remote_task_free(t);
                finish(f, NULL, msg ?: "Out of memory.");
                return;
        }
        remote_task_free(t);
        f->importing = true;
        r = backup_import_start(f->instance, NULL, f->fd, f->name, on_imported, f, &error);
        if (r < 0) {
                _cleanup_free_ char *msg = NULL;

                f->importing = false;
                if (asprintf(&msg, "Cannot store the download: %s", error.message ?: strerror(-r)) < 0)
                        msg = NULL;
                finish(f, NULL, msg ?: "Cannot store the download.");
        }
}

static int start_download(RemoteFetch *f) {
        char *remotes[] = { f->remote, NULL };
        int fd;

        if (f->job)
                job_set_progress(f->job, "fetching", 0, 0);
        /* Unnamed, mode 0600: nothing is left behind whatever happens, and only this daemon reaches it. */
        f->fd = open("/var/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (f->fd < 0)
                return -errno;
        fd = fcntl(f->fd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return -errno;
        return remote_task_start(f->instance, f->job, REMOTE_OP_GET, remotes, f->name, fd, on_downloaded, f, &f->task);
}

static int entry_newer(const RemoteEntry *a, const RemoteEntry *b) {
        int c = strcmp(a->name, b->name);
        return c != 0 ? c > 0 : a->mtime_usec > b->mtime_usec;
}

static void on_listed(RemoteTask *t, void *userdata) {
        RemoteFetch *f = userdata;
        const RemoteEntry *best = NULL;
        int r;

        f->task = NULL;
        if (f->canceled || t->n_outcomes < 1 || !streq(t->outcomes[0].result, "done")) {
                _cleanup_free_ char *msg = strdup(f->canceled ? "Canceled." : t->n_outcomes ? t->outcomes[0].error :
                                                  "The transfer worker failed.");
                remote_task_free(t);
                finish(f, NULL, msg ?: "Out of memory.");
                return;
        }
        /* Newest by the date in generated names, then by the server's time. */
        for (size_t k = 0; k < t->n_entries; k++)
                if (!best || entry_newer(&t->entries[k], best))
                        best = &t->entries[k];
        if (!best) {
                _cleanup_free_ char *msg = NULL;

                if (asprintf(&msg, "Remote %s has no backups of instance %s.", f->remote, f->instance->name) < 0)
                        msg = NULL;
                remote_task_free(t);
                finish(f, NULL, msg ?: "The remote has no backups.");
                return;
        }
        r = free_and_strdup(&f->name, best->name);
        remote_task_free(t);
        if (r >= 0)
                r = start_download(f);
        if (r < 0)
                finish(f, NULL, "Cannot start the download.");
}

int remote_fetch_start(Instance *i, Job *job, const char *remote, const char *name, remote_fetch_done_fn done,
                       void *userdata, RemoteFetch **ret) {
        RemoteFetch *f;
        int r;

        f = calloc(1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        *f = (RemoteFetch) { .instance = i, .job = job, .fd = -1, .done = done, .userdata = userdata };
        f->remote = strdup(remote);
        f->name = strdup(name);
        if (!f->remote || !f->name) {
                remote_fetch_free(f);
                return -ENOMEM;
        }
        if (streq(name, "latest")) {
                char *remotes[] = { f->remote, NULL };

                if (job)
                        job_set_progress(job, "fetching", 0, 0);
                r = remote_task_start(i, job, REMOTE_OP_LIST, remotes, NULL, -1, on_listed, f, &f->task);
        } else
                r = start_download(f);
        if (r < 0) {
                remote_fetch_free(f);
                return r;
        }
        *ret = f;
        return 0;
}
