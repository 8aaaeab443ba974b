/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "daemon/daemon.h"

int bus_manager_vtable_add(Daemon *d);
int manager_lookup_instance(Daemon *d, const char *name, Instance **ret, sd_bus_error *error);

/* Replies to m with the ListJobs array. */
int manager_reply_jobs(sd_bus_message *m, Daemon *d);
