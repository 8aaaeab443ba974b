/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <systemd/sd-bus.h>

typedef struct Instance Instance;

/* ImportBackup: a zip passed as a descriptor, copied into the backup folder. */

/* Copies the zip behind fd into the backup folder, in a worker, without blocking the daemon: refused at once
 * if it is no zip or no backup; else copied into an unnamed file (mode 0600), checked, then linked to the
 * first free name of NAME, NAME.1.zip, ... that no job or other import of the instance is about to create
 * (name NULL or "" = a generated one). done() gets the stored name, or the error; it must reply to m.
 * Returns 1 when started, or an error (then done() is not called). */
typedef void (*import_done_fn)(Instance *i, sd_bus_message *m, const char *stored, const sd_bus_error *error,
                               void *userdata);
int backup_import_start(Instance *i, sd_bus_message *m, int fd, const char *name, import_done_fn done,
                        void *userdata, sd_bus_error *error);
/* Whether an import in flight may store its copy under name (the name it asked for or one of its ".N"
 * variants): CreateBackup does not take such a name. */
bool backup_import_may_take(Instance *i, const char *name);

int method_import_backup_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error);
