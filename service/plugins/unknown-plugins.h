/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <systemd/sd-bus.h>

/* The file OctoPrint writes into the backup folder after a restore (same name, same format). */
#define UNKNOWN_PLUGINS_FILE "unknown_plugins_from_restore.json"

int method_get_unknown_plugins_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_clear_unknown_plugins_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error);
