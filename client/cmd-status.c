/* SPDX-License-Identifier: GPL-2.0-or-later */

/* opbackupctl status: instances, versions, restore support, running jobs. */

#include <json-c/json.h>

#include "build-config.h"
#include "bus-client.h"
#include "cmd-status.h"
#include "output.h"
#include "pager.h"
#include "util.h"

typedef struct InstanceProps {
        char *name, *basedir, *backup_folder, *user, *octoprint_version, *unusable_reason,
                *restore_unsupported_reason;
        int usable, restore_supported;
        uint64_t free_space;
        char **remotes;                 /* CopyTo= */
        json_object *remote_status;     /* RemoteStatus, as the JSON array of status --json */
} InstanceProps;

static void instance_props_done(InstanceProps *p) {
        free(p->name);
        free(p->basedir);
        free(p->backup_folder);
        free(p->user);
        free(p->octoprint_version);
        free(p->unusable_reason);
        free(p->restore_unsupported_reason);
        strv_free(p->remotes);
        json_object_put(p->remote_status);
}

static int read_remote_status(sd_bus_message *m, InstanceProps *p) {
        const char *remote, *name, *result, *error;
        uint64_t usec;
        int r;

        json_object_put(p->remote_status);
        p->remote_status = json_object_new_array();
        if (!p->remote_status)
                return -ENOMEM;
        r = sd_bus_message_enter_container(m, 'v', "a(sstss)");
        if (r >= 0)
                r = sd_bus_message_enter_container(m, 'a', "(sstss)");
        while (r >= 0 && (r = sd_bus_message_read(m, "(sstss)", &remote, &name, &usec, &result, &error)) > 0) {
                json_object *e = json_object_new_object();
                char buf[64];

                json_object_object_add(e, "remote", json_object_new_string(remote));
                json_object_object_add(e, "backup", json_object_new_string(name));
                json_object_object_add(e, "time", json_object_new_string(format_timestamp_iso(buf, sizeof(buf),
                                                                                              (int64_t) usec)));
                json_object_object_add(e, "result", json_object_new_string(result));
                json_object_object_add(e, "error", json_object_new_string(error));
                json_object_array_add(p->remote_status, e);
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(m);
        if (r >= 0)
                r = sd_bus_message_exit_container(m);
        return r < 0 ? r : 1;
}

static const char *json_str(json_object *o, const char *key) {
        json_object *v;
        return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : "";
}

static int instance_prop(sd_bus_message *m, const char *key, const char *contents, void *userdata) {
        InstanceProps *p = userdata;
        const struct {
                const char *name;
                char **target;
        } strings[] = {
                { "Name", &p->name },
                { "Basedir", &p->basedir },
                { "BackupFolder", &p->backup_folder },
                { "User", &p->user },
                { "OctoPrintVersion", &p->octoprint_version },
                { "UnusableReason", &p->unusable_reason },
                { "RestoreUnsupportedReason", &p->restore_unsupported_reason },
        };
        const char *s;
        int r;

        for (size_t k = 0; k < ELEMENTSOF(strings); k++)
                if (streq(key, strings[k].name) && streq(contents, "s")) {
                        r = sd_bus_message_read(m, "v", "s", &s);
                        return r < 0 ? r : free_and_strdup(strings[k].target, s) < 0 ? -ENOMEM : 1;
                }
        if (streq(key, "Usable") && streq(contents, "b"))
                return sd_bus_message_read(m, "v", "b", &p->usable);
        if (streq(key, "RestoreSupported") && streq(contents, "b"))
                return sd_bus_message_read(m, "v", "b", &p->restore_supported);
        if (streq(key, "FreeSpace") && streq(contents, "t"))
                return sd_bus_message_read(m, "v", "t", &p->free_space);
        if (streq(key, "Remotes") && streq(contents, "as")) {
                r = sd_bus_message_enter_container(m, 'v', "as");
                if (r >= 0)
                        r = sd_bus_message_read_strv(m, &p->remotes);
                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
                return r < 0 ? r : 1;
        }
        if (streq(key, "RemoteStatus") && streq(contents, "a(sstss)"))
                return read_remote_status(m, p);
        return 0;
}

static int read_props(sd_bus_message *reply, InstanceProps *p) {
        return ctl_read_dict(reply, instance_prop, p);
}

static int get_instance_props(Ctl *ctl, const char *path, InstanceProps *p) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_call_method(ctl->bus, BUS_NAME, path, "org.freedesktop.DBus.Properties", "GetAll",
                               &error, &reply, "s", INSTANCE_INTERFACE);
        if (r < 0)
                return ctl_report_error(ctl, "GetAll", &error, r);
        r = read_props(reply, p);
        if (r < 0)
                return ctl_report_error(ctl, NULL, NULL, r);
        return 0;
}

static void print_instance(const char *path, const InstanceProps *p) {
        char buf[32];

        printf("%s\n", p->name);
        printf("  Object:         %s\n", path);
        printf("  Status:         %s%s\n", p->usable ? "usable" : "UNUSABLE: ", p->usable ? "" : strempty(p->unusable_reason));
        printf("  Basedir:        %s\n", strempty(p->basedir));
        printf("  Backup folder:  %s (%s free)\n", strempty(p->backup_folder),
               format_bytes(buf, sizeof(buf), p->free_space));
        printf("  User:           %s\n", isempty(p->user) ? "-" : p->user);
        printf("  OctoPrint:      %s\n", isempty(p->octoprint_version) ? "unknown" : p->octoprint_version);
        if (p->restore_supported)
                printf("  Restore:        supported\n");
        else
                printf("  Restore:        not supported: %s\n", strempty(p->restore_unsupported_reason));
        printf("  Copies to:      %s", p->remotes ? "" : "-");
        STRV_FOREACH(r, p->remotes)
                printf("%s%s", r == p->remotes ? "" : ", ", *r);
        printf("\n");
        for (size_t k = 0; p->remote_status && k < json_object_array_length(p->remote_status); k++) {
                json_object *e = json_object_array_get_idx(p->remote_status, k);
                bool done = streq(json_str(e, "result"), "done");

                printf("  %s %-12s %s: %s %s%s%s\n", k == 0 ? "Last uploads:" : "             ", json_str(e, "remote"),
                       json_str(e, "time"), json_str(e, "backup"), done ? "uploaded" : "FAILED",
                       done ? "" : ": ", done ? "" : json_str(e, "error"));
        }
}

static json_object *instance_json(const char *path, const InstanceProps *p) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "name", json_object_new_string(strempty(p->name)));
        json_object_object_add(o, "object", json_object_new_string(path));
        json_object_object_add(o, "basedir", json_object_new_string(strempty(p->basedir)));
        json_object_object_add(o, "backup_folder", json_object_new_string(strempty(p->backup_folder)));
        json_object_object_add(o, "user", json_object_new_string(strempty(p->user)));
        json_object_object_add(o, "octoprint_version", json_object_new_string(strempty(p->octoprint_version)));
        json_object_object_add(o, "usable", json_object_new_boolean(p->usable));
        json_object_object_add(o, "unusable_reason", json_object_new_string(strempty(p->unusable_reason)));
        json_object_object_add(o, "restore_supported", json_object_new_boolean(p->restore_supported));
        json_object_object_add(o, "restore_unsupported_reason",
                               json_object_new_string(strempty(p->restore_unsupported_reason)));
        json_object_object_add(o, "free_space", json_object_new_uint64(p->free_space));
        json_object_object_add(o, "remotes", strv_to_json(p->remotes));
        json_object_object_add(o, "remote_status", p->remote_status ? json_object_get(p->remote_status) :
                               json_object_new_array());
        return o;
}

/* The jobs, of the -i instance only if one is given: in the JSON, or printed. */
static int status_jobs(Ctl *ctl, json_object *jobs) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *op, *inst, *name, *path;
        uint32_t id;
        unsigned n = 0;
        int r;

        r = ctl_call(ctl, OBJECT_ROOT, MANAGER_INTERFACE, "ListJobs", &reply, NULL);
        if (r != 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', "(ussso)");
        while (r >= 0 && (r = sd_bus_message_read(reply, "(ussso)", &id, &op, &inst, &name, &path)) > 0) {
                if (ctl->instance && !streq(ctl->instance, inst))
                        continue;
                if (jobs) {
                        json_object *o = json_object_new_object();
                        json_object_object_add(o, "id", json_object_new_int64(id));
                        json_object_object_add(o, "operation", json_object_new_string(op));
                        json_object_object_add(o, "instance", json_object_new_string(inst));
                        json_object_object_add(o, "name", json_object_new_string(name));
                        json_object_object_add(o, "object", json_object_new_string(path));
                        json_object_array_add(jobs, o);
                } else {
                        if (n++ == 0)
                                printf("\nJobs:\n");
                        printf("  %u  %-8s %-16s %s\n", id, op, inst, name);
                }
        }
        if (r < 0)
                return ctl_report_error(ctl, NULL, NULL, r);
        return 0;
}

/* The instances to show: all, or the one given with -i. */
static int list_instances(Ctl *ctl, char ***ret_names, char ***ret_paths) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_strv_free_ char **names = NULL, **paths = NULL;
        const char *name, *path;
        int r;

        r = ctl_call(ctl, OBJECT_ROOT, MANAGER_INTERFACE, "ListInstances", &reply, NULL);
        if (r != 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', "(so)");
        while (r >= 0 && (r = sd_bus_message_read(reply, "(so)", &name, &path)) > 0) {
                if (ctl->instance && !streq(ctl->instance, name))
                        continue;
                if (strv_extend(&names, name) < 0 || strv_extend(&paths, path) < 0)
                        r = -ENOMEM;
        }
        if (r < 0)
                return ctl_report_error(ctl, NULL, NULL, r);
        if (ctl->instance && !names) {
                fprintf(stderr, "Cannot %s: no instance named '%s' (see 'opbackupctl status').\n", ctl->doing,
                        ctl->instance);
                return EXIT_NOT_FOUND;
        }
        *ret_names = TAKE_PTR(names);
        *ret_paths = TAKE_PTR(paths);
        return 0;
}

int cmd_status(Ctl *ctl, int argc, char *argv[]) {
        _cleanup_strv_free_ char **names = NULL, **paths = NULL;
        json_object *root = NULL, *instances = NULL, *jobs = NULL;
        size_t n;
        int r;

        r = list_instances(ctl, &names, &paths);
        if (r != 0)
                return r;
        n = strv_length(names);
        if (ctl->json) {
                root = json_object_new_object();
                instances = json_object_new_array();
                jobs = json_object_new_array();
                json_object_object_add(root, "version", json_object_new_string(PACKAGE_VERSION));
                json_object_object_add(root, "instances", instances);
                json_object_object_add(root, "jobs", jobs);
        }
        pager_open(ctl->pager);

        for (size_t k = 0; k < n; k++) {
                InstanceProps p = {};

                r = get_instance_props(ctl, paths[k], &p);
                if (r != 0) {
                        instance_props_done(&p);
                        json_object_put(root);
                        return r;
                }
                if (root)
                        json_object_array_add(instances, instance_json(paths[k], &p));
                else {
                        if (k > 0)
                                printf("\n");
                        print_instance(paths[k], &p);
                }
                instance_props_done(&p);
        }
        if (!root && n == 0)
                printf("No OctoPrint instance is configured or found.\n");

        r = status_jobs(ctl, jobs);
        if (r == 0 && root)
                ctl_json_print(root);
        json_object_put(root);
        return r;
}
