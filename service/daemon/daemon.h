/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>

#include "daemon/daemon-state.h"

/* The daemon: loads the configuration, connects to the bus, serves, exits when idle. */

int daemon_new(const char *config_dir, bool exit_on_idle, Daemon **ret);
Daemon *daemon_free(Daemon *d);
int daemon_run(Daemon *d);

static inline void daemon_freep(Daemon **d) {
        daemon_free(*d);
}
