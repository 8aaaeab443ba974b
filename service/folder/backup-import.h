/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <systemd/sd-bus.h>

typedef struct Instance Instance;

/* ImportBackup: a zip passed as a descriptor, copied into the backup folder. */

/* Copies the zip behind fd into the backup folder (as .NAME, checked, then renamed to a free NAME or
 * NAME.N.zip; name NULL or "" = a generated one), in a worker, without blocking the daemon. done() gets
 * the stored name, or the error; it must reply to m. Returns 1 when started, or an error (then done() is
 * not called). */
typedef void (*import_done_fn)(Instance *i, sd_bus_message *m, const char *stored, const sd_bus_error *error,
                               void *userdata);
int backup_import_start(Instance *i, sd_bus_message *m, int fd, const char *name, import_done_fn done,
                        void *userdata, sd_bus_error *error);
int method_import_backup_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error);
