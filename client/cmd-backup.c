/* SPDX-License-Identifier: GPL-2.0-or-later */

/* opbackupctl backup [--exclude ID]... [--name NAME.zip] [--when-idle] [--no-wait]: Instance.CreateBackup,
 * then (unless --no-wait) wait for the job, like OctoPrint's `octoprint plugins backup:backup`. */

#include <json-c/json.h>

#include "bus-client.h"
#include "cmd-backup.h"
#include "job-wait.h"
#include "output.h"
#include "util.h"

/* The last BackupCreated the service sent: the one for our job comes right before its JobRemoved. */
typedef struct Created {
        JobWatch *watch;
        char *path;
        char **excludes;
} Created;

static int create_backup(Ctl *ctl, const char *instance_path, const BackupArgs *a, uint32_t *ret_id,
                         char **ret_job) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        const char *job;
        int r;

        r = sd_bus_message_new_method_call(ctl->bus, &m, BUS_NAME, instance_path, INSTANCE_INTERFACE,
                                           "CreateBackup");
        if (r >= 0)
                r = sd_bus_message_append_strv(m, (char **) a->excludes);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0 && a->name)
                r = sd_bus_message_append(m, "{sv}", "name", "s", a->name);
        if (r >= 0 && a->when_idle)
                r = sd_bus_message_append(m, "{sv}", "when-idle", "b", 1);
        if (r >= 0 && a->scheduled)
                r = sd_bus_message_append(m, "{sv}", "scheduled", "b", 1);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r < 0)
                return ctl_report_error(ctl, NULL, NULL, r);
        r = ctl_call_message(ctl, m, 0, &reply);
        if (r != 0)
                return r;
        r = sd_bus_message_read(reply, "uo", ret_id, &job);
        if (r < 0)
                return ctl_report_error(ctl, NULL, NULL, r);
        *ret_job = strdup(job);
        return *ret_job ? 0 : ctl_report_error(ctl, NULL, NULL, -ENOMEM);
}

static int on_backup_created(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Created *c = userdata;
        _cleanup_strv_free_ char **excludes = NULL;
        const char *instance, *name, *path;

        if (!job_watch_from_service(c->watch, m))
                return 0;
        if (sd_bus_message_read(m, "sss", &instance, &name, &path) < 0 ||
            sd_bus_message_read_strv(m, &excludes) < 0)
                return 0;
        if (free_and_strdup(&c->path, path) < 0)
                return 0;
        strv_free(c->excludes);
        c->excludes = TAKE_PTR(excludes);
        return 0;
}

typedef struct Details {
        char *name, *path;
        uint64_t size;
} Details;

static int detail(sd_bus_message *m, const char *key, const char *contents, void *userdata) {
        Details *d = userdata;
        const char *s;
        int r;

        if ((streq(key, "name") || streq(key, "path")) && streq(contents, "s")) {
                r = sd_bus_message_read(m, "v", "s", &s);
                if (r < 0)
                        return r;
                return free_and_strdup(streq(key, "name") ? &d->name : &d->path, s) < 0 ? -ENOMEM : 1;
        }
        if (streq(key, "size") && streq(contents, "t"))
                return sd_bus_message_read(m, "v", "t", &d->size);
        return 0;
}

static int read_details(sd_bus_message *m, char **ret_name, char **ret_path, uint64_t *ret_size) {
        Details d = { .name = *ret_name, .path = *ret_path, .size = *ret_size };
        int r = ctl_read_dict(m, detail, &d);

        *ret_name = d.name;
        *ret_path = d.path;
        *ret_size = d.size;
        return r;
}

void backup_result_done(BackupResult *b) {
        free(b->job);
        free(b->name);
        free(b->path);
        strv_free(b->excludes);
        *b = (BackupResult) {};
}

json_object *backup_result_json(const BackupResult *b, bool no_wait) {
        json_object *o = json_object_new_object();

        if (no_wait) {
                json_object_object_add(o, "id", json_object_new_int64(b->id));
                json_object_object_add(o, "job", json_object_new_string(b->job));
                return o;
        }
        json_object_object_add(o, "name", json_object_new_string(strempty(b->name)));
        json_object_object_add(o, "path", json_object_new_string(strempty(b->path)));
        json_object_object_add(o, "size", json_object_new_uint64(b->size));
        json_object_object_add(o, "excludes", strv_to_json(b->excludes));
        return o;
}

void backup_result_print(const Ctl *ctl, const BackupResult *b) {
        char size[32];

        if (!ctl->quiet)
                printf("Created backup %s (%s).\n", strempty(b->name), format_bytes(size, sizeof(size), b->size));
        /* OctoPrint's CLI says exactly this; scripts may look for it. */
        printf("Backup located at %s\n", b->path);
}

/* The result from the JobRemoved details (name, path, size) and the BackupCreated before it (excludes,
 * as recorded in the backup's metadata: "timelapse" brings "timelapse_tmp"). */
static int read_result(const Ctl *ctl, sd_bus_message *removed, Created *created, const BackupArgs *a,
                       BackupResult *b) {
        int r;

        r = read_details(removed, &b->name, &b->path, &b->size);
        if (r < 0 || !b->path)
                return ctl_report_error(ctl, NULL, NULL, r < 0 ? r : -EBADMSG);
        if (created->path && streq(created->path, b->path))
                b->excludes = TAKE_PTR(created->excludes);
        else if (!(b->excludes = strv_copy(a->excludes)) && a->excludes)
                return ctl_report_error(ctl, NULL, NULL, -ENOMEM);
        return 0;
}

int backup_instance(Ctl *ctl, const char *instance_path, const BackupArgs *args, BackupResult *ret) {
        _cleanup_(job_watch_freep) JobWatch *watch = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *removed = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        Created created = {};
        int r;

        *ret = (BackupResult) {};
        if (!args->no_wait) {
                r = job_watch_new(ctl, "backup", false, &watch);
                if (r != 0)
                        return r;
                created.watch = watch;
                r = sd_bus_match_signal(ctl->bus, &slot, BUS_NAME, OBJECT_ROOT, MANAGER_INTERFACE,
                                        "BackupCreated", on_backup_created, &created);
                if (r < 0)
                        return ctl_report_error(ctl, NULL, NULL, r);
        }

        r = create_backup(ctl, instance_path, args, &ret->id, &ret->job);
        if (r == 0 && !args->no_wait) {
                r = job_watch_wait(watch, ret->id, ret->job, &removed);
                if (r == 0 && !removed)
                        ret->left_running = true;
                else if (r == 0)
                        r = read_result(ctl, removed, &created, args, ret);
        }
        free(created.path);
        strv_free(created.excludes);
        return r;
}

int cmd_backup(Ctl *ctl, int argc, char *argv[]) {
        _cleanup_(backup_result_done) BackupResult b = {};
        _cleanup_free_ char *instance_path = NULL;
        const BackupArgs a = {
                .excludes = ctl->excludes,
                .name = ctl->name,
                .no_wait = ctl->no_wait,
                .when_idle = ctl->when_idle,
        };
        int r;

        r = ctl_instance_path(ctl, &instance_path);
        if (r != 0)
                return r;
        r = backup_instance(ctl, instance_path, &a, &b);
        if (r != 0 || b.left_running)
                return r;

        if (ctl->json) {
                json_object *o = backup_result_json(&b, a.no_wait);
                ctl_json_print(o);
                json_object_put(o);
        } else if (a.no_wait && ctl->quiet)
                printf("%" PRIu32 "\n", b.id);
        else if (a.no_wait)
                printf("Started backup job %" PRIu32 " (%s).\n", b.id, b.job);
        else
                backup_result_print(ctl, &b);
        return EXIT_OK;
}
