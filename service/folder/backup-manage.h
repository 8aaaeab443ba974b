/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "worker/worker-method.h"
#include "worker/worker.h"

typedef struct Instance Instance;

int check_backup_name(const char *name, sd_bus_error *error);
int check_instance_usable(Instance *i, sd_bus_error *error);

/* Deletes names (all valid) through a worker, with BackupDeleted for each one gone, without waiting for
 * it: done() gets what was deleted (also when it stopped at a name it could not delete, and then error is
 * set) or r < 0. Returns 0 when started; done is not called otherwise. */
typedef void (*backup_delete_done_fn)(Instance *i, int r, char **deleted, const sd_bus_error *error,
                                      void *userdata);
int backup_delete_start(Instance *i, char *const *names, backup_delete_done_fn done, void *userdata);

int method_delete_backup_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_open_backup_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_prune_backups_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error);
