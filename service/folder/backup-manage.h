/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "worker/worker.h"

typedef struct Instance Instance;

int check_backup_name(const char *name, sd_bus_error *error);
int check_instance_usable(Instance *i, sd_bus_error *error);
int worker_reply_error(const WorkerReply *reply, sd_bus_error *error);

/* Deletes one backup (a valid name) through a worker, with BackupDeleted. */
int backup_delete(Instance *i, const char *name);
int method_delete_backup_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_open_backup_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_prune_backups_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error);
