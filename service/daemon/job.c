/* SPDX-License-Identifier: GPL-2.0-or-later */

/* Job objects: /org/opbackup/backup1/job/<id>, their properties, Cancel, Log, and the JobNew/JobRemoved
 * signals of the manager. What a job does lives in backup-job.c and restore-job.c. */

#include <json-c/json.h>

#include "daemon/job.h"
#include "daemon/polkit.h"
#include "errors.h"
#include "instance/instance.h"
#include "log.h"
#include "util.h"

/* PropertiesChanged for progress at most ~5 times a second (org.opbackup.backup1(5), JOB OBJECTS). */
#define PROGRESS_INTERVAL_USEC (200ULL * 1000ULL)

static const char *const operation_names[] = {
        [JOB_BACKUP] = "backup",
        [JOB_RESTORE] = "restore",
        [JOB_UPLOAD] = "upload",
        [JOB_FETCH] = "fetch",
};

const char *job_operation_to_string(JobOperation op) {
        return operation_names[op];
}

static int job_object_find(sd_bus *bus, const char *path, const char *interface, void *userdata,
                           void **found, sd_bus_error *error) {
        Daemon *d = userdata;
        _cleanup_free_ char *id_str = NULL;
        unsigned long id;
        char *end;
        Job *j;

        if (sd_bus_path_decode(path, OBJECT_JOB_PREFIX, &id_str) <= 0)
                return 0;
        errno = 0;
        id = strtoul(id_str, &end, 10);
        if (errno || *end || id == 0 || id > UINT32_MAX)
                return 0;
        j = daemon_find_job(d, (uint32_t) id);
        if (!j)
                return 0;
        *found = j;
        return 1;
}

static int job_node_enumerator(sd_bus *bus, const char *path, void *userdata, char ***nodes,
                               sd_bus_error *error) {
        Daemon *d = userdata;
        _cleanup_strv_free_ char **l = calloc(1, sizeof(char *));

        if (!l)
                return -ENOMEM;
        for (Job *j = d->jobs; j; j = j->next)
                if (strv_extend(&l, j->object_path) < 0)
                        return -ENOMEM;
        *nodes = TAKE_PTR(l);
        return 1;
}

static Job *job_from_path(Daemon *d, const char *path) {
        void *found = NULL;

        if (job_object_find(NULL, path, NULL, d, &found, NULL) <= 0)
                return NULL;
        return found;
}

static int cancel_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Instance *i = userdata;
        Job *j;

        /* The job may have ended while polkit was asked: look it up again by the object path. */
        j = job_from_path(i->daemon, sd_bus_message_get_path(m));
        if (!j)
                return sd_bus_error_setf(error, BUS_ERROR_NO_SUCH_JOB, "The job %s has already ended.",
                                         sd_bus_message_get_path(m));
        job_cancel(j);
        return sd_bus_reply_method_return(m, "");
}

static int method_cancel(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Job *j = userdata;

        daemon_note_activity(j->daemon);
        /* A job may end while polkit is asked; instances live as long as the daemon, so the
         * continuation gets the instance and finds the job again. */
        return polkit_check(j->daemon, m, j->action, j->instance->name, cancel_authorized, j->instance, error);
}

static int property_get_operation(sd_bus *bus, const char *path, const char *interface, const char *property,
                                  sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Job *j = userdata;
        return sd_bus_message_append(reply, "s", job_operation_to_string(j->operation));
}

static int property_get_instance(sd_bus *bus, const char *path, const char *interface, const char *property,
                                 sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Job *j = userdata;
        return sd_bus_message_append(reply, "s", j->instance->name);
}

static int property_get_string_ptr(sd_bus *bus, const char *path, const char *interface, const char *property,
                                   sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        char **s = userdata;
        return sd_bus_message_append(reply, "s", strempty(*s));
}

static const sd_bus_vtable job_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD("Cancel", "", "", method_cancel, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_PROPERTY("Id", "u", NULL, offsetof(Job, id), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Operation", "s", property_get_operation, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Instance", "s", property_get_instance, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Name", "s", property_get_string_ptr, offsetof(Job, name), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Stage", "s", property_get_string_ptr, offsetof(Job, stage),
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Progress", "d", NULL, offsetof(Job, progress), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("BytesDone", "t", NULL, offsetof(Job, bytes_done), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("BytesTotal", "t", NULL, offsetof(Job, bytes_total), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("ItemsDone", "t", NULL, offsetof(Job, items_done), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("ItemsTotal", "t", NULL, offsetof(Job, items_total), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("StartedByUID", "u", NULL, offsetof(Job, started_by), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_SIGNAL_WITH_NAMES("Log", "ss", SD_BUS_PARAM(level) SD_BUS_PARAM(line), 0),
        SD_BUS_VTABLE_END,
};

static int job_gone_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return sd_bus_error_setf(error, BUS_ERROR_NO_SUCH_JOB,
                                 "There is no job %s: it has ended, or never was. opbackupctl jobs lists the jobs.",
                                 sd_bus_message_get_path(m));
}

/* A call on a job's interface at a path where no job is (any more) gets the API's NoSuchJob, not sd-bus's
 * UnknownObject: a client cancelling a job that just ended learns what happened. But only a caller who may
 * list the jobs (access) learns it: to anyone else the answer must not depend on whether the job exists,
 * so they get AccessDenied here as they would from the check of an existing job's Cancel. Everything else
 * on such paths (introspection of the job folder, say) goes on to sd-bus as usual. */
static int job_gone(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Daemon *d = userdata;
        uint8_t type = 0;

        if (sd_bus_message_get_type(m, &type) < 0 || type != SD_BUS_MESSAGE_METHOD_CALL ||
            !streq_ptr(sd_bus_message_get_interface(m), JOB_INTERFACE) ||
            job_from_path(d, sd_bus_message_get_path(m)))
                return 0;
        daemon_note_activity(d);
        return polkit_check(d, m, ACTION_ACCESS, NULL, job_gone_authorized, d, error);
}

int bus_job_register(Daemon *d) {
        int r;

        r = sd_bus_add_fallback(d->bus, NULL, OBJECT_JOB_PREFIX, job_gone, d);
        if (r < 0)
                return log_error_errno(r, "Failed to register the handler for ended jobs: %m");

        r = sd_bus_add_fallback_vtable(d->bus, NULL, OBJECT_JOB_PREFIX, JOB_INTERFACE, job_vtable,
                                       job_object_find, d);
        if (r < 0)
                return log_error_errno(r, "Failed to register job objects: %m");
        r = sd_bus_add_node_enumerator(d->bus, NULL, OBJECT_JOB_PREFIX, job_node_enumerator, d);
        if (r < 0)
                return log_error_errno(r, "Failed to register the job enumerator: %m");
        return 0;
}

static int append_job_new(sd_bus_message *m, void *userdata) {
        Job *j = userdata;
        return sd_bus_message_append(m, "uo", j->id, j->object_path);
}

int job_new(const JobDescription *desc, Job **ret) {
        Daemon *d = desc->instance->daemon;
        const char *sender = sd_bus_message_get_sender(desc->request);
        uid_t uid = 0;
        Job *j;

        j = calloc(1, sizeof(*j));
        if (!j) {
                if (desc->free_data)
                        desc->free_data(desc->data);
                return -ENOMEM;
        }
        /* No uid means a peer sd-bus could not ask about; 0 in StartedByUID is what such a job showed
         * before, and Cancel is decided by polkit on the caller anyway. */
        (void) bus_sender_uid(desc->request, &uid);
        *j = (Job) {
                .daemon = d,
                .instance = desc->instance,
                .operation = desc->operation,
                .state = JOB_QUEUED,
                .id = d->next_job_id++,
                .started_by = uid,
                .start = desc->start,
                .cancel = desc->cancel,
                .data = desc->data,
                .free_data = desc->free_data,
                .action = strdup(desc->action),
                .sender = sender ? strdup(sender) : NULL,
                .name = desc->name ? strdup(desc->name) : NULL,
                .stage = strdup("queued"),
        };
        if (!j->action || !j->stage || (sender && !j->sender) || (desc->name && !j->name) ||
            asprintf(&j->object_path, "%s/%" PRIu32, OBJECT_JOB_PREFIX, j->id) < 0) {
                j->object_path = NULL;
                job_free(j);
                return -ENOMEM;
        }

        j->next = d->jobs;
        d->jobs = j;
        d->n_jobs++;
        daemon_note_activity(d);
        (void) daemon_emit_signal(d, j->instance, OBJECT_ROOT, MANAGER_INTERFACE, "JobNew", j->sender,
                                  append_job_new, j);
        *ret = j;
        return 0;
}

Job *job_free(Job *j) {
        if (!j)
                return NULL;
        if (j->free_data)
                j->free_data(j->data);
        sd_event_source_unref(j->progress_timer);
        free(j->object_path);
        free(j->name);
        free(j->stage);
        free(j->action);
        free(j->sender);
        free(j);
        return NULL;
}

static void job_unlink(Job *j) {
        Daemon *d = j->daemon;

        for (Job **p = &d->jobs; *p; p = &(*p)->next)
                if (*p == j) {
                        *p = j->next;
                        d->n_jobs--;
                        break;
                }
}

typedef struct JobRemovedArgs {
        Job *job;
        const char *result;
        const char *error;
        signal_append_fn append_details;
        void *details_userdata;
} JobRemovedArgs;

static int append_job_removed(sd_bus_message *m, void *userdata) {
        JobRemovedArgs *a = userdata;
        int r;

        r = sd_bus_message_append(m, "uoss", a->job->id, a->job->object_path, a->result, strempty(a->error));
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        /* What the job was, for a client that did not see it start (a notifier that came later). */
        r = sd_bus_message_append(m, "{sv}{sv}", "operation", "s", job_operation_to_string(a->job->operation),
                                  "instance", "s", a->job->instance->name);
        if (r < 0)
                return r;
        if (a->append_details) {
                r = a->append_details(m, a->details_userdata);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(m);
}

void job_finish(Job *j, const char *result, const char *error, signal_append_fn append_details,
                void *details_userdata) {
        JobRemovedArgs a = {
                .job = j,
                .result = result,
                .error = error,
                .append_details = append_details,
                .details_userdata = details_userdata,
        };
        Daemon *d = j->daemon;

        if (error)
                log_warning("Job %u (%s of %s) %s: %s", j->id, job_operation_to_string(j->operation),
                            j->instance->name, result, error);
        else
                log_info("Job %u (%s of %s) %s.", j->id, job_operation_to_string(j->operation),
                         j->instance->name, result);
        job_unlink(j);
        (void) daemon_emit_signal(d, j->instance, OBJECT_ROOT, MANAGER_INTERFACE, "JobRemoved", j->sender,
                                  append_job_removed, &a);
        job_free(j);
        daemon_note_activity(d);
}

typedef struct LogArgs {
        const char *level;
        const char *line;
} LogArgs;

static int append_log(sd_bus_message *m, void *userdata) {
        LogArgs *a = userdata;
        return sd_bus_message_append(m, "ss", a->level, a->line);
}

void job_log(Job *j, int level, const char *line) {
        LogArgs a = {
                .level = level <= LOG_ERR ? "error" : level <= LOG_WARNING ? "warning" : "info",
                .line = line,
        };

        log_full(level, "Job %u: %s", j->id, line);
        (void) daemon_emit_signal(j->daemon, j->instance, j->object_path, JOB_INTERFACE, "Log", j->sender,
                                  append_log, &a);
}

/* ---- Stages and progress ---- */

typedef enum StageCounts {
        COUNTS_NOTHING,
        COUNTS_BYTES,                   /* BytesDone / BytesTotal */
        COUNTS_ITEMS,                   /* ItemsDone / ItemsTotal */
} StageCounts;

#define OP_BACKUP (1U << JOB_BACKUP)
#define OP_RESTORE (1U << JOB_RESTORE)
#define OP_UPLOAD (1U << JOB_UPLOAD)
#define OP_FETCH (1U << JOB_FETCH)

/* Every stage a job can be in, in the order they come, and what their done/total count. Clients show
 * bytes as sizes and items as counts: a stage must say which, or "12 files" reads as "12 B". The same
 * list, with what each stage does, is in dbus/org.opbackup.backup1.xml and org.opbackup.backup1(5); a
 * stage added here must be added there. */
static const struct {
        const char *name;
        unsigned operations;
        StageCounts counts;
        bool keeps_items;               /* a step of each item of the stage before: ItemsDone/Total stay */
} stages[] = {
        { "queued",              OP_BACKUP | OP_RESTORE | OP_UPLOAD | OP_FETCH, COUNTS_NOTHING, false },
        { "fetching",            OP_FETCH | OP_RESTORE,  COUNTS_BYTES,   false },  /* from a remote */
        { "waiting-for-printer", OP_BACKUP,              COUNTS_NOTHING, false },
        { "starting",            OP_BACKUP,              COUNTS_NOTHING, false },
        { "preparing",           OP_BACKUP | OP_RESTORE, COUNTS_NOTHING, false },
        { "scanning",            OP_BACKUP,              COUNTS_ITEMS,   false },  /* files found, no total */
        { "writing",             OP_BACKUP,              COUNTS_BYTES,   false },
        { "validating",          OP_RESTORE,             COUNTS_NOTHING, false },
        { "extracting",          OP_RESTORE,             COUNTS_BYTES,   false },
        { "syncing",             OP_BACKUP | OP_RESTORE, COUNTS_BYTES,   false },
        { "uploading",           OP_BACKUP | OP_UPLOAD,  COUNTS_BYTES,   false },  /* to every remote, in turn */
        { "plugins",             OP_RESTORE,             COUNTS_ITEMS,   false },  /* plugins of plugin_list.json */
        { "downloading",         OP_RESTORE,             COUNTS_BYTES,   true },   /* one plugin's archive */
        { "installing",          OP_RESTORE,             COUNTS_NOTHING, true },   /* pip, for that plugin */
        { "swapping",            OP_RESTORE,             COUNTS_NOTHING, false },
};

static int stage_find(const Job *j, const char *name) {
        for (size_t k = 0; k < ELEMENTSOF(stages); k++)
                if (streq(stages[k].name, name))
                        return stages[k].operations & (1U << j->operation) ? (int) k : -ENOENT;
        return -ENOENT;
}

static int append_progress_changed(sd_bus_message *m, void *userdata) {
        Job *j = userdata;
        int r;

        r = sd_bus_message_append(m, "s", JOB_INTERFACE);
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "a{sv}", 6,
                                  "Stage", "s", j->stage,
                                  "Progress", "d", j->progress,
                                  "BytesDone", "t", j->bytes_done,
                                  "BytesTotal", "t", j->bytes_total,
                                  "ItemsDone", "t", j->items_done,
                                  "ItemsTotal", "t", j->items_total);
        if (r < 0)
                return r;
        return sd_bus_message_append(m, "as", 0);
}

/* Not sd_bus_emit_properties_changed(): that broadcasts, and anyone's match rule would show them what
 * root is restoring, and how far it got. Like every job signal, PropertiesChanged goes to subscribers
 * and watchers who may access the job's instance, and to the job's starter, each its own copy. */
static void job_emit_progress(Job *j) {
        (void) daemon_emit_signal(j->daemon, j->instance, j->object_path, "org.freedesktop.DBus.Properties",
                                  "PropertiesChanged", j->sender, append_progress_changed, j);
        j->progress_dirty = false;
}

static int on_progress_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Job *j = userdata;

        if (j->progress_dirty)
                job_emit_progress(j);
        return 0;
}

static double fraction(uint64_t done, uint64_t total) {
        return total == 0 ? 0.0 : done >= total ? 1.0 : (double) done / (double) total;
}

void job_set_progress(Job *j, const char *stage, uint64_t done, uint64_t total) {
        bool stage_changed = stage && !streq_ptr(stage, j->stage);
        uint64_t now = 0;
        int k;

        k = stage_find(j, stage ?: j->stage);
        if (k < 0) {
                /* A worker runs as the instance's user: what it reports is checked, not believed. */
                log_debug("Job %u: ignoring progress in stage '%s', which a %s does not have.", j->id,
                          stage ?: "(none)", job_operation_to_string(j->operation));
                return;
        }
        if (stage_changed) {
                /* Where a stage ended (all 2,129 files found) is worth showing, even if the rate limit
                 * held it back and the next stage follows at once. */
                if (j->progress_dirty)
                        job_emit_progress(j);
                if (free_and_strdup(&j->stage, stages[k].name) < 0)
                        return;
                j->bytes_done = j->bytes_total = 0;
                if (!stages[k].keeps_items)
                        j->items_done = j->items_total = 0;
        }
        switch (stages[k].counts) {
        case COUNTS_BYTES:
                j->bytes_done = done;
                j->bytes_total = total;
                j->progress = fraction(done, total);
                break;
        case COUNTS_ITEMS:
                j->items_done = done;
                j->items_total = total;
                j->progress = fraction(done, total);
                break;
        case COUNTS_NOTHING:
                j->progress = 0.0;
                break;
        }
        j->progress_dirty = true;

        (void) sd_event_now(j->daemon->event, CLOCK_MONOTONIC, &now);
        if (stage_changed || now >= j->last_progress_usec + PROGRESS_INTERVAL_USEC) {
                j->last_progress_usec = now;
                job_emit_progress(j);
        } else if (!j->progress_timer)
                (void) sd_event_add_time(j->daemon->event, &j->progress_timer, CLOCK_MONOTONIC,
                                         j->last_progress_usec + PROGRESS_INTERVAL_USEC, 0,
                                         on_progress_timer, j);
        else {
                (void) sd_event_source_set_time(j->progress_timer, j->last_progress_usec + PROGRESS_INTERVAL_USEC);
                (void) sd_event_source_set_enabled(j->progress_timer, SD_EVENT_ONESHOT);
        }
}

bool job_apply_worker_message(Job *j, json_object *msg) {
        json_object *v, *w;

        if (json_object_object_get_ex(msg, "log", &v)) {
                int level = json_object_object_get_ex(msg, "level", &w) ? json_object_get_int(w) : LOG_INFO;
                /* A worker cannot make the daemon log at emergency levels. */
                job_log(j, level < LOG_ERR ? LOG_ERR : level, json_object_get_string(v));
                return true;
        }
        if (json_object_object_get_ex(msg, "stage", &v)) {
                uint64_t done = 0, total = 0;
                if (json_object_object_get_ex(msg, "done", &w))
                        done = json_object_get_uint64(w);
                if (json_object_object_get_ex(msg, "total", &w))
                        total = json_object_get_uint64(w);
                job_set_progress(j, json_object_get_string(v), done, total);
                return true;
        }
        return false;
}

void job_cancel(Job *j) {
        j->cancel_requested = true;
        if (j->cancel)
                j->cancel(j);
}

void jobs_free_all(Daemon *d) {
        while (d->jobs) {
                Job *j = d->jobs;
                d->jobs = j->next;
                job_free(j);
        }
        d->n_jobs = 0;
}

void instance_start_next_job(Instance *i) {
        Job *next = NULL;

        for (Job *j = i->daemon->jobs; j; j = j->next)
                if (j->instance == i) {
                        if (j->state == JOB_RUNNING)
                                return;
                        if (j->state == JOB_QUEUED)
                                next = j;      /* the list is newest first: the last one is the oldest */
                }
        if (next)
                (void) next->start(next);
}

int job_new_and_reply(const JobDescription *desc) {
        Job *j;
        int r;

        r = job_new(desc, &j);
        if (r < 0)
                return r;
        r = sd_bus_reply_method_return(desc->request, "uo", j->id, j->object_path);
        instance_start_next_job(desc->instance);
        return r;
}
