/* SPDX-License-Identifier: GPL-2.0-or-later */

/* opbackupctl jobs: Manager.ListJobs, with each job's stage and progress. */

#include <json-c/json.h>

#include "bus-client.h"
#include "cmd-jobs.h"
#include "output.h"
#include "pager.h"
#include "table.h"
#include "util.h"

typedef struct JobInfo {
        uint32_t id;
        char *operation, *instance, *name, *path;
        char *stage;
        double progress;
        uint64_t bytes_done, bytes_total;
        uint64_t items_done, items_total;       /* files or plugins, as the stage counts */
        uint32_t started_by;
        bool have_props;
} JobInfo;

static void jobs_free(JobInfo *jobs, size_t n) {
        for (size_t k = 0; k < n; k++) {
                free(jobs[k].operation);
                free(jobs[k].instance);
                free(jobs[k].name);
                free(jobs[k].path);
                free(jobs[k].stage);
        }
        free(jobs);
}

static int job_property(sd_bus_message *m, const char *key, const char *contents, void *userdata) {
        JobInfo *j = userdata;
        const char *s;
        int r;

        if (streq(key, "Stage") && streq(contents, "s")) {
                r = sd_bus_message_read(m, "v", "s", &s);
                return r < 0 ? r : free_and_strdup(&j->stage, s) < 0 ? -ENOMEM : 1;
        }
        if (streq(key, "Progress") && streq(contents, "d"))
                return sd_bus_message_read(m, "v", "d", &j->progress);
        if (streq(key, "BytesDone") && streq(contents, "t"))
                return sd_bus_message_read(m, "v", "t", &j->bytes_done);
        if (streq(key, "BytesTotal") && streq(contents, "t"))
                return sd_bus_message_read(m, "v", "t", &j->bytes_total);
        if (streq(key, "ItemsDone") && streq(contents, "t"))
                return sd_bus_message_read(m, "v", "t", &j->items_done);
        if (streq(key, "ItemsTotal") && streq(contents, "t"))
                return sd_bus_message_read(m, "v", "t", &j->items_total);
        if (streq(key, "StartedByUID") && streq(contents, "u"))
                return sd_bus_message_read(m, "v", "u", &j->started_by);
        return 0;
}

/* Stage and progress; a job that ended since ListJobs simply has none. */
static void get_job_props(Ctl *ctl, JobInfo *j) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;

        if (sd_bus_call_method(ctl->bus, BUS_NAME, j->path, "org.freedesktop.DBus.Properties", "GetAll",
                               NULL, &reply, "s", JOB_INTERFACE) < 0)
                return;
        j->have_props = ctl_read_dict(reply, job_property, j) >= 0;
}

static json_object *job_json(const JobInfo *j) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "id", json_object_new_int64(j->id));
        json_object_object_add(o, "operation", json_object_new_string(j->operation));
        json_object_object_add(o, "instance", json_object_new_string(j->instance));
        json_object_object_add(o, "name", json_object_new_string(j->name));
        json_object_object_add(o, "object", json_object_new_string(j->path));
        json_object_object_add(o, "stage", j->have_props ? json_string_or_null(j->stage) : NULL);
        json_object_object_add(o, "progress", j->have_props ? json_object_new_double(j->progress) : NULL);
        json_object_object_add(o, "bytes_done", json_object_new_uint64(j->bytes_done));
        json_object_object_add(o, "bytes_total", json_object_new_uint64(j->bytes_total));
        json_object_object_add(o, "items_done", json_object_new_uint64(j->items_done));
        json_object_object_add(o, "items_total", json_object_new_uint64(j->items_total));
        json_object_object_add(o, "started_by_uid", j->have_props ? json_object_new_int64(j->started_by) : NULL);
        return o;
}

static int print_jobs(const Ctl *ctl, const JobInfo *jobs, size_t n) {
        static const char *const headers[] = { ">ID", "OPERATION", "INSTANCE", "NAME", "STAGE", "PROGRESS" };
        _cleanup_(table_freep) Table *t = table_new(headers, ELEMENTSOF(headers));

        if (!t)
                return -ENOMEM;
        for (size_t k = 0; k < n; k++) {
                const JobInfo *j = &jobs[k];
                char id[16], progress[16] = "-";

                snprintf(id, sizeof(id), "%" PRIu32, j->id);
                if (j->have_props && (j->bytes_total > 0 || j->items_total > 0))
                        snprintf(progress, sizeof(progress), "%u%%", (unsigned) (j->progress * 100));
                if (table_add_row(t, (const char *const[]) {
                                id, j->operation, j->instance, j->name, j->stage, progress }) < 0)
                        return -ENOMEM;
        }
        table_print(t, ctl->legend);
        return 0;
}

/* The jobs, oldest first; of the -i instance only, if one is given. */
static int list_jobs(Ctl *ctl, JobInfo **ret, size_t *ret_n) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *op, *inst, *name, *path;
        JobInfo *jobs = NULL;
        size_t n = 0, allocated = 0;
        uint32_t id;
        int r;

        r = ctl_call(ctl, OBJECT_ROOT, MANAGER_INTERFACE, "ListJobs", &reply, NULL);
        if (r != 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', "(ussso)");
        while (r >= 0 && (r = sd_bus_message_read(reply, "(ussso)", &id, &op, &inst, &name, &path)) > 0) {
                if (ctl->instance && !streq(ctl->instance, inst))
                        continue;
                if (ARRAY_RESERVE(jobs, allocated, n + 1) < 0) {
                        r = -ENOMEM;
                        break;
                }
                jobs[n++] = (JobInfo) {
                        .id = id,
                        .operation = strdup(op),
                        .instance = strdup(inst),
                        .name = strdup(name),
                        .path = strdup(path),
                };
                if (!jobs[n - 1].operation || !jobs[n - 1].instance || !jobs[n - 1].name || !jobs[n - 1].path)
                        r = -ENOMEM;
        }
        if (r < 0) {
                jobs_free(jobs, n);
                return ctl_report_error(ctl, NULL, NULL, r);
        }
        /* The service lists the newest first; oldest first reads like a queue. */
        for (size_t k = 0; k < n / 2; k++) {
                JobInfo t = jobs[k];
                jobs[k] = jobs[n - 1 - k];
                jobs[n - 1 - k] = t;
        }
        *ret = jobs;
        *ret_n = n;
        return 0;
}

int cmd_jobs(Ctl *ctl, int argc, char *argv[]) {
        JobInfo *jobs = NULL;
        size_t n = 0;
        int r;

        r = list_jobs(ctl, &jobs, &n);
        if (r != 0)
                return r;
        for (size_t k = 0; k < n; k++)
                get_job_props(ctl, &jobs[k]);

        pager_open(ctl->pager);
        if (ctl->json) {
                json_object *a = json_object_new_array();
                for (size_t k = 0; k < n; k++)
                        json_object_array_add(a, job_json(&jobs[k]));
                ctl_json_print(a);
                json_object_put(a);
        } else if (n > 0)
                r = print_jobs(ctl, jobs, n) < 0 ? ctl_report_error(ctl, NULL, NULL, -ENOMEM) : 0;
        else if (ctl->legend)
                printf("No jobs.\n");
        jobs_free(jobs, n);
        return r;
}
