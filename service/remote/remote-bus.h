/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <systemd/sd-bus.h>

/* The bus methods of remotes (org.opbackup.backup1(5), REMOTES), called once polkit allowed them:
 * Manager.ListRemotes; Instance.ListRemoteBackups, UploadBackup, FetchRemoteBackup, DeleteRemoteBackup,
 * PruneRemoteBackups, and the Remotes
 * property. */
int method_list_remotes_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_list_remote_backups_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_upload_backup_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_fetch_remote_backup_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_prune_remote_backups_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_delete_remote_backup_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error);
/* RemoteStatus a(sstss): remote, backup, time (µs), result, error of the last upload to each remote. */
int property_get_remote_status(sd_bus *bus, const char *path, const char *interface, const char *property,
                               sd_bus_message *reply, void *userdata, sd_bus_error *error);
int property_get_remotes(sd_bus *bus, const char *path, const char *interface, const char *property,
                         sd_bus_message *reply, void *userdata, sd_bus_error *error);
