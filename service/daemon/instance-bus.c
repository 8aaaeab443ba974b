/* SPDX-License-Identifier: GPL-2.0-or-later */

/* The org.opbackup.backup1.Instance interface: properties, and each method's polkit gate. The work behind
 * each method lives in a file named for it. */

#include "backup/backup-job.h"
#include "daemon/polkit.h"
#include "errors.h"
#include "folder/backup-import.h"
#include "folder/backup-list.h"
#include "folder/backup-manage.h"
#include "folders.h"
#include "instance/instance.h"
#include "log.h"
#include "plugins/unknown-plugins.h"
#include "remote/remote-bus.h"
#include "restore/restore-job.h"
#include "util.h"

static int property_get_string(sd_bus *bus, const char *path, const char *interface, const char *property,
                               sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Instance *i = userdata;
        const char *v = NULL;

        if (streq(property, "Name"))
                v = i->name;
        else if (streq(property, "Basedir"))
                v = i->config->basedir;
        else if (streq(property, "BackupFolder"))
                v = i->backup_folder;
        else if (streq(property, "User"))
                v = i->user;
        else if (streq(property, "OctoPrintVersion"))
                v = i->octoprint_version;
        else if (streq(property, "UnusableReason"))
                v = i->unusable_reason;
        else if (streq(property, "RestoreUnsupportedReason"))
                v = i->restore_unsupported_reason;
        return sd_bus_message_append(reply, "s", strempty(v));
}

static int property_get_bool(sd_bus *bus, const char *path, const char *interface, const char *property,
                             sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Instance *i = userdata;
        int v;

        if (streq(property, "Usable"))
                v = !i->unusable_reason;
        else
                v = !i->restore_unsupported_reason;
        return sd_bus_message_append(reply, "b", v);
}

static int property_get_excludable(sd_bus *bus, const char *path, const char *interface,
                                   const char *property, sd_bus_message *reply, void *userdata,
                                   sd_bus_error *error) {
        int r;

        r = sd_bus_message_open_container(reply, 'a', "s");
        if (r < 0)
                return r;
        for (int f = 0; f < _FOLDER_MAX; f++)
                if (folder_excludable(f)) {
                        r = sd_bus_message_append(reply, "s", folder_id_to_string(f));
                        if (r < 0)
                                return r;
                }
        return sd_bus_message_close_container(reply);
}

static int property_get_keep(sd_bus *bus, const char *path, const char *interface, const char *property,
                             sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Instance *i = userdata;
        return sd_bus_message_append(reply, "u", (uint32_t) i->config->keep);
}

static int property_get_schedule_excludes(sd_bus *bus, const char *path, const char *interface,
                                          const char *property, sd_bus_message *reply, void *userdata,
                                          sd_bus_error *error) {
        Instance *i = userdata;
        return sd_bus_message_append_strv(reply, i->config->schedule_excludes);
}

static int property_get_free_space(sd_bus *bus, const char *path, const char *interface,
                                   const char *property, sd_bus_message *reply, void *userdata,
                                   sd_bus_error *error) {
        uint64_t v = 0;

        (void) instance_free_space(userdata, &v);
        return sd_bus_message_append(reply, "t", v);
}

static int gate(sd_bus_message *m, Instance *i, const char *action, polkit_authorized_fn fn,
                sd_bus_error *error) {
        daemon_note_activity(i->daemon);
        return polkit_check(i->daemon, m, action, i->name, fn, i, error);
}

#define GATED_METHOD(method, action, fn)                                                        \
        static int method_##method(sd_bus_message *m, void *userdata, sd_bus_error *error) {   \
                return gate(m, userdata, action, fn, error);                                    \
        }

GATED_METHOD(list_backups, ACTION_ACCESS, method_list_backups_authorized)
GATED_METHOD(create_backup, ACTION_CREATE, method_create_backup_authorized)
GATED_METHOD(delete_backup, ACTION_DELETE, method_delete_backup_authorized)
GATED_METHOD(open_backup, ACTION_ACCESS, method_open_backup_authorized)
GATED_METHOD(import_backup, ACTION_CREATE, method_import_backup_authorized)
GATED_METHOD(restore_backup, ACTION_RESTORE, method_restore_backup_authorized)
GATED_METHOD(restore_backup_from_file, ACTION_RESTORE, method_restore_backup_from_file_authorized)
GATED_METHOD(prune_backups, ACTION_DELETE, method_prune_backups_authorized)
GATED_METHOD(get_unknown_plugins, ACTION_ACCESS, method_get_unknown_plugins_authorized)
GATED_METHOD(clear_unknown_plugins, ACTION_DELETE, method_clear_unknown_plugins_authorized)
GATED_METHOD(list_remote_backups, ACTION_ACCESS, method_list_remote_backups_authorized)
GATED_METHOD(upload_backup, ACTION_CREATE, method_upload_backup_authorized)
GATED_METHOD(fetch_remote_backup, ACTION_CREATE, method_fetch_remote_backup_authorized)
GATED_METHOD(delete_remote_backup, ACTION_DELETE, method_delete_remote_backup_authorized)
GATED_METHOD(prune_remote_backups, ACTION_DELETE, method_prune_remote_backups_authorized)

static const sd_bus_vtable instance_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_NAMES("ListBackups", "", , "a(sttxsas)", SD_BUS_PARAM(backups),
                                 method_list_backups, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("CreateBackup", "asa{sv}", SD_BUS_PARAM(excludes) SD_BUS_PARAM(options),
                                 "uo", SD_BUS_PARAM(id) SD_BUS_PARAM(job),
                                 method_create_backup, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("DeleteBackup", "s", SD_BUS_PARAM(name), "", ,
                                 method_delete_backup, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("OpenBackup", "s", SD_BUS_PARAM(name), "h", SD_BUS_PARAM(fd),
                                 method_open_backup, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ImportBackup", "hs", SD_BUS_PARAM(fd) SD_BUS_PARAM(name),
                                 "s", SD_BUS_PARAM(stored_name),
                                 method_import_backup, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("RestoreBackup", "sa{sv}", SD_BUS_PARAM(name) SD_BUS_PARAM(options),
                                 "uo", SD_BUS_PARAM(id) SD_BUS_PARAM(job),
                                 method_restore_backup, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("RestoreBackupFromFile", "ha{sv}", SD_BUS_PARAM(fd) SD_BUS_PARAM(options),
                                 "uo", SD_BUS_PARAM(id) SD_BUS_PARAM(job),
                                 method_restore_backup_from_file, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("PruneBackups", "us", SD_BUS_PARAM(keep) SD_BUS_PARAM(glob),
                                 "as", SD_BUS_PARAM(deleted),
                                 method_prune_backups, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("GetUnknownPlugins", "", , "a(sss)", SD_BUS_PARAM(plugins),
                                 method_get_unknown_plugins, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("ClearUnknownPlugins", "", "", method_clear_unknown_plugins, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ListRemoteBackups", "s", SD_BUS_PARAM(remote), "a(stx)", SD_BUS_PARAM(backups),
                                 method_list_remote_backups, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("UploadBackup", "sas", SD_BUS_PARAM(name) SD_BUS_PARAM(remotes),
                                 "uo", SD_BUS_PARAM(id) SD_BUS_PARAM(job),
                                 method_upload_backup, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("FetchRemoteBackup", "ss", SD_BUS_PARAM(remote) SD_BUS_PARAM(name),
                                 "uo", SD_BUS_PARAM(id) SD_BUS_PARAM(job),
                                 method_fetch_remote_backup, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("DeleteRemoteBackup", "ss", SD_BUS_PARAM(remote) SD_BUS_PARAM(name), "", ,
                                 method_delete_remote_backup, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("PruneRemoteBackups", "s", SD_BUS_PARAM(remote), "as", SD_BUS_PARAM(deleted),
                                 method_prune_remote_backups, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_PROPERTY("Name", "s", property_get_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Basedir", "s", property_get_string, 0, 0),
        SD_BUS_PROPERTY("BackupFolder", "s", property_get_string, 0, 0),
        SD_BUS_PROPERTY("User", "s", property_get_string, 0, 0),
        SD_BUS_PROPERTY("OctoPrintVersion", "s", property_get_string, 0, 0),
        SD_BUS_PROPERTY("Usable", "b", property_get_bool, 0, 0),
        SD_BUS_PROPERTY("UnusableReason", "s", property_get_string, 0, 0),
        SD_BUS_PROPERTY("RestoreSupported", "b", property_get_bool, 0, 0),
        SD_BUS_PROPERTY("RestoreUnsupportedReason", "s", property_get_string, 0, 0),
        SD_BUS_PROPERTY("Excludable", "as", property_get_excludable, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("FreeSpace", "t", property_get_free_space, 0, 0),
        SD_BUS_PROPERTY("Keep", "u", property_get_keep, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("ScheduleExcludes", "as", property_get_schedule_excludes, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Remotes", "as", property_get_remotes, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("RemoteStatus", "a(sstss)", property_get_remote_status, 0, 0),
        SD_BUS_VTABLE_END,
};

int bus_instance_vtable_add(Daemon *d) {
        int r;

        for (size_t k = 0; k < d->n_instances; k++) {
                Instance *i = d->instances[k];

                r = sd_bus_add_object_vtable(d->bus, NULL, i->object_path, INSTANCE_INTERFACE,
                                             instance_vtable, i);
                if (r < 0)
                        return log_error_errno(r, "Failed to register %s: %m", i->object_path);
        }
        return 0;
}
