/* SPDX-License-Identifier: GPL-2.0-or-later */

/* opbackupctl jobs: Manager.ListJobs, with each job's stage and progress. */

#include <getopt.h>
#include <json-c/json.h>

#include "ctl.h"
#include "util.h"

typedef struct JobInfo {
        uint32_t id;
        char *operation, *instance, *name, *path;
        char *stage;
        double progress;
        uint64_t bytes_done, bytes_total;
        uint64_t items_done, items_total;
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

static void help(void) {
        printf("Usage: opbackupctl [OPTIONS] jobs [--json]\n\n"
               "List the running and queued backup and restore jobs.\n\n"
               "     --json   Machine-readable output\n"
               "  -h --help   Show this help\n");
}

static int parse_args(Ctl *ctl, int argc, char *argv[]) {
        return ctl_parse_json_only(ctl, argc, argv, help, 0, NULL);
}

/* Stage and progress; a job that ended since ListJobs simply has none. */
static void get_job_props(Ctl *ctl, JobInfo *j) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *key, *contents, *s;
        int r;

        if (sd_bus_call_method(ctl->bus, BUS_NAME, j->path, "org.freedesktop.DBus.Properties", "GetAll",
                               NULL, &reply, "s", JOB_INTERFACE) < 0)
                return;
        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        while (r >= 0 && (r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                r = sd_bus_message_read(reply, "s", &key);
                if (r >= 0)
                        r = sd_bus_message_peek_type(reply, NULL, &contents);
                if (r < 0)
                        break;
                if (streq(key, "Stage") && streq(contents, "s")) {
                        r = sd_bus_message_read(reply, "v", "s", &s);
                        if (r >= 0)
                                (void) free_and_strdup(&j->stage, s);
                } else if (streq(key, "Progress") && streq(contents, "d"))
                        r = sd_bus_message_read(reply, "v", "d", &j->progress);
                else if (streq(key, "BytesDone") && streq(contents, "t"))
                        r = sd_bus_message_read(reply, "v", "t", &j->bytes_done);
                else if (streq(key, "BytesTotal") && streq(contents, "t"))
                        r = sd_bus_message_read(reply, "v", "t", &j->bytes_total);
                else if (streq(key, "ItemsDone") && streq(contents, "t"))
                        r = sd_bus_message_read(reply, "v", "t", &j->items_done);
                else if (streq(key, "ItemsTotal") && streq(contents, "t"))
                        r = sd_bus_message_read(reply, "v", "t", &j->items_total);
                else if (streq(key, "StartedByUID") && streq(contents, "u"))
                        r = sd_bus_message_read(reply, "v", "u", &j->started_by);
                else
                        r = sd_bus_message_skip(reply, "v");
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
        }
        j->have_props = r >= 0;
}

static json_object *job_json(const JobInfo *j) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "id", json_object_new_int64(j->id));
        json_object_object_add(o, "operation", json_object_new_string(j->operation));
        json_object_object_add(o, "instance", json_object_new_string(j->instance));
        json_object_object_add(o, "name", json_object_new_string(j->name));
        json_object_object_add(o, "object", json_object_new_string(j->path));
        json_object_object_add(o, "stage", j->stage ? json_object_new_string(j->stage) : NULL);
        json_object_object_add(o, "progress", j->have_props ? json_object_new_double(j->progress) : NULL);
        json_object_object_add(o, "bytes_done", json_object_new_uint64(j->bytes_done));
        json_object_object_add(o, "bytes_total", json_object_new_uint64(j->bytes_total));
        json_object_object_add(o, "items_done", json_object_new_uint64(j->items_done));
        json_object_object_add(o, "items_total", json_object_new_uint64(j->items_total));
        if (j->have_props)
                json_object_object_add(o, "started_by_uid", json_object_new_int64(j->started_by));
        return o;
}

static void print_jobs(const JobInfo *jobs, size_t n) {
        size_t w_op = strlen("OPERATION"), w_inst = strlen("INSTANCE"), w_name = strlen("NAME"), w_stage = strlen("STAGE");

        for (size_t k = 0; k < n; k++) {
                if (strlen(jobs[k].operation) > w_op)
                        w_op = strlen(jobs[k].operation);
                if (strlen(jobs[k].instance) > w_inst)
                        w_inst = strlen(jobs[k].instance);
                if (strlen(jobs[k].name) > w_name)
                        w_name = strlen(jobs[k].name);
                if (jobs[k].stage && strlen(jobs[k].stage) > w_stage)
                        w_stage = strlen(jobs[k].stage);
        }
        printf("%5s  %-*s  %-*s  %-*s  %-*s  %s\n", "ID", (int) w_op, "OPERATION", (int) w_inst, "INSTANCE",
               (int) w_name, "NAME", (int) w_stage, "STAGE", "PROGRESS");
        for (size_t k = 0; k < n; k++) {
                const JobInfo *j = &jobs[k];
                char progress[16] = "-";

                if (j->have_props && (j->bytes_total > 0 || j->items_total > 0))
                        snprintf(progress, sizeof(progress), "%u%%", (unsigned) (j->progress * 100));
                printf("%5u  %-*s  %-*s  %-*s  %-*s  %s\n", j->id, (int) w_op, j->operation, (int) w_inst,
                       j->instance, (int) w_name, j->name, (int) w_stage, j->stage ?: "-", progress);
        }
}

int cmd_jobs(Ctl *ctl, int argc, char *argv[]) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *op, *inst, *name, *path;
        JobInfo *jobs = NULL;
        size_t n = 0;
        uint32_t id;
        int r;

        r = parse_args(ctl, argc, argv);
        if (r <= 0)
                return -r;
        r = ctl_call(ctl, OBJECT_ROOT, MANAGER_INTERFACE, "ListJobs", &reply, NULL);
        if (r != 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', "(ussso)");
        while (r >= 0 && (r = sd_bus_message_read(reply, "(ussso)", &id, &op, &inst, &name, &path)) > 0) {
                JobInfo *a = realloc(jobs, (n + 1) * sizeof(JobInfo));

                if (!a) {
                        r = -ENOMEM;
                        break;
                }
                jobs = a;
                jobs[n++] = (JobInfo) {
                        .id = id,
                        .operation = strdup(op),
                        .instance = strdup(inst),
                        .name = strdup(name),
                        .path = strdup(path),
                };
                if (!jobs[n - 1].operation || !jobs[n - 1].instance || !jobs[n - 1].name || !jobs[n - 1].path) {
                        r = -ENOMEM;
                        break;
                }
        }
        if (r < 0) {
                jobs_free(jobs, n);
                return ctl_report_error("ListJobs", NULL, r);
        }
        /* The service lists the newest first; oldest first reads like a queue. */
        for (size_t k = 0; k < n / 2; k++) {
                JobInfo t = jobs[k];
                jobs[k] = jobs[n - 1 - k];
                jobs[n - 1 - k] = t;
        }
        for (size_t k = 0; k < n; k++)
                get_job_props(ctl, &jobs[k]);

        if (ctl->json) {
                json_object *a = json_object_new_array();
                for (size_t k = 0; k < n; k++)
                        json_object_array_add(a, job_json(&jobs[k]));
                ctl_json_print(a);
                json_object_put(a);
        } else if (n == 0)
                printf("No jobs.\n");
        else
                print_jobs(jobs, n);
        jobs_free(jobs, n);
        return 0;
}
