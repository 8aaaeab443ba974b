/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "worker.h"

typedef struct Instance Instance;

int check_backup_name(const char *name, sd_bus_error *error);
int check_instance_usable(Instance *i, sd_bus_error *error);
int worker_reply_error(const WorkerReply *reply, sd_bus_error *error);

/* Deletes one backup (a valid name) through a worker, with BackupDeleted. */
int backup_delete(Instance *i, const char *name);
int method_delete_backup_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_open_backup_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_prune_backups_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error);
/* Copies the zip behind fd into the backup folder (as .NAME, checked, then renamed to a free NAME or
 * NAME.N.zip; name NULL or "" = a generated one), in a worker, without blocking the daemon. done() gets
 * the stored name, or the error; it must reply to m. Returns 1 when started, or an error (then done() is
 * not called). */
typedef void (*import_done_fn)(Instance *i, sd_bus_message *m, const char *stored, const sd_bus_error *error,
                               void *userdata);
int backup_import_start(Instance *i, sd_bus_message *m, int fd, const char *name, import_done_fn done,
                        void *userdata, sd_bus_error *error);
int method_import_backup_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error);
