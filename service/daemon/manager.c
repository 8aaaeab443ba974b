/* SPDX-License-Identifier: GPL-2.0-or-later */

/* The org.opbackup.backup1.Manager interface on /org/opbackup/backup1. */

#include "build-config.h"
#include "daemon/job.h"
#include "daemon/manager.h"
#include "daemon/polkit.h"
#include "daemon/subscription.h"
#include "remote/remote-bus.h"
#include "errors.h"
#include "instance/instance.h"
#include "log.h"
#include "util.h"

static int list_instances_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Daemon *d = userdata;
        int r;

        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(so)");
        if (r < 0)
                return r;
        for (size_t k = 0; k < d->n_instances; k++) {
                r = sd_bus_message_append(reply, "(so)", d->instances[k]->name, d->instances[k]->object_path);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_list_instances(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Daemon *d = userdata;

        daemon_note_activity(d);
        return polkit_check(d, m, ACTION_ACCESS, NULL, list_instances_authorized, d, error);
}

static int get_instance_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Instance *i = userdata;

        return sd_bus_reply_method_return(m, "o", i->object_path);
}

/* "" means the only instance; with several, the caller must say which. */
int manager_lookup_instance(Daemon *d, const char *name, Instance **ret, sd_bus_error *error) {
        Instance *i;

        if (isempty(name)) {
                if (d->n_instances == 1) {
                        *ret = d->instances[0];
                        return 0;
                }
                if (d->n_instances == 0)
                        return sd_bus_error_set(error, BUS_ERROR_NO_SUCH_INSTANCE,
                                                "No OctoPrint instance is configured or found: add one in "
                                                "/etc/opbackup/instances.d/NAME.conf.");
                return sd_bus_error_setf(error, BUS_ERROR_NO_SUCH_INSTANCE,
                                         "%zu instances are configured: name one (see 'opbackupctl status').",
                                         d->n_instances);
        }
        i = daemon_find_instance(d, name);
        if (!i)
                return sd_bus_error_setf(error, BUS_ERROR_NO_SUCH_INSTANCE,
                                         "No instance named '%s' (see 'opbackupctl status').", name);
        *ret = i;
        return 0;
}

static int method_get_instance(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Daemon *d = userdata;
        Instance *i;
        const char *name;
        int r;

        daemon_note_activity(d);
        r = sd_bus_message_read(m, "s", &name);
        if (r < 0)
                return r;
        /* Answering NoSuchInstance before the check would let anyone probe instance names; that is
         * harmless (they are in the world-readable tree of object paths anyway). */
        r = manager_lookup_instance(d, name, &i, error);
        if (r < 0)
                return r;
        return polkit_check(d, m, ACTION_ACCESS, i->name, get_instance_authorized, i, error);
}

static int list_jobs_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return manager_reply_jobs(m, userdata);
}

static int method_list_jobs(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Daemon *d = userdata;

        daemon_note_activity(d);
        return polkit_check(d, m, ACTION_ACCESS, NULL, list_jobs_authorized, d, error);
}

static int subscribe_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return subscription_start(userdata, m, true, error);
}

static int method_subscribe(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Daemon *d = userdata;

        daemon_note_activity(d);
        return polkit_check(d, m, ACTION_ACCESS, NULL, subscribe_authorized, d, error);
}

static int watch_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return subscription_start(userdata, m, false, error);
}

static int method_watch(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Daemon *d = userdata;

        daemon_note_activity(d);
        return polkit_check(d, m, ACTION_ACCESS, NULL, watch_authorized, d, error);
}

static int method_unsubscribe(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Daemon *d = userdata;

        /* Dropping one's own subscription needs no authorization. */
        daemon_note_activity(d);
        subscription_drop(d, sd_bus_message_get_sender(m));
        return sd_bus_reply_method_return(m, "");
}

static int method_list_remotes(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Daemon *d = userdata;

        daemon_note_activity(d);
        return polkit_check(d, m, ACTION_ACCESS, NULL, method_list_remotes_authorized, d, error);
}

static int property_get_version(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", PACKAGE_VERSION);
}

int manager_reply_jobs(sd_bus_message *m, Daemon *d) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(ussso)");
        if (r < 0)
                return r;
        for (Job *j = d->jobs; j; j = j->next) {
                r = sd_bus_message_append(reply, "(ussso)", j->id, job_operation_to_string(j->operation),
                                          j->instance->name, strempty(j->name), j->object_path);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_NAMES("ListInstances", "", , "a(so)", SD_BUS_PARAM(instances),
                                 method_list_instances, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("GetInstance", "s", SD_BUS_PARAM(name), "o", SD_BUS_PARAM(instance),
                                 method_get_instance, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ListJobs", "", , "a(ussso)", SD_BUS_PARAM(jobs),
                                 method_list_jobs, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ListRemotes", "", , "a(sss)", SD_BUS_PARAM(remotes),
                                 method_list_remotes, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("Subscribe", "", "", method_subscribe, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("Watch", "", "", method_watch, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("Unsubscribe", "", "", method_unsubscribe, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_PROPERTY("Version", "s", property_get_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_SIGNAL_WITH_NAMES("BackupCreated", "sssas",
                                 SD_BUS_PARAM(instance) SD_BUS_PARAM(name) SD_BUS_PARAM(path)
                                 SD_BUS_PARAM(excludes), 0),
        SD_BUS_SIGNAL_WITH_NAMES("BackupDeleted", "ss", SD_BUS_PARAM(instance) SD_BUS_PARAM(name), 0),
        SD_BUS_SIGNAL_WITH_NAMES("BackupUploaded", "ssss", SD_BUS_PARAM(instance) SD_BUS_PARAM(name)
                                 SD_BUS_PARAM(remote) SD_BUS_PARAM(url), 0),
        SD_BUS_SIGNAL_WITH_NAMES("JobNew", "uo", SD_BUS_PARAM(id) SD_BUS_PARAM(path), 0),
        SD_BUS_SIGNAL_WITH_NAMES("JobRemoved", "uossa{sv}",
                                 SD_BUS_PARAM(id) SD_BUS_PARAM(path) SD_BUS_PARAM(result)
                                 SD_BUS_PARAM(error) SD_BUS_PARAM(details), 0),
        SD_BUS_VTABLE_END,
};

int bus_manager_vtable_add(Daemon *d) {
        return sd_bus_add_object_vtable(d->bus, NULL, OBJECT_ROOT, MANAGER_INTERFACE, manager_vtable, d);
}
