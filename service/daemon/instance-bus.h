/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

typedef struct Daemon Daemon;

/* Registers the instance objects (org.opbackup.backup1.Instance, one per instance). */
int bus_instance_vtable_add(Daemon *d);
