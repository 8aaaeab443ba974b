/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <systemd/sd-bus.h>

typedef struct Daemon Daemon;

int method_restore_backup_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_restore_backup_from_file_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error);

/* At start-up: finish or roll back restores a killed daemon left half done. */
int restores_recover(Daemon *d);
