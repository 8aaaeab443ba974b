/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <systemd/sd-bus.h>

typedef struct Daemon Daemon;
typedef struct Instance Instance;
typedef struct Job Job;

int method_create_backup_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error);
void backup_job_cancel(Job *j);


/* On start-up: removes what backups of a previous daemon left behind (their hidden temp files). */
int backups_recover(Daemon *d);
