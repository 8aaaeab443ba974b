/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The names of the service on the bus, shared by opbackupd and opbackupctl (org.opbackup.backup1(5)). */

#define BUS_NAME "org.opbackup.backup1"

#define OBJECT_ROOT "/org/opbackup/backup1"
#define OBJECT_INSTANCE_PREFIX "/org/opbackup/backup1/instance"
#define OBJECT_JOB_PREFIX "/org/opbackup/backup1/job"

#define MANAGER_INTERFACE "org.opbackup.backup1.Manager"
#define INSTANCE_INTERFACE "org.opbackup.backup1.Instance"
#define JOB_INTERFACE "org.opbackup.backup1.Job"

/* How long the restart command of a restored instance (config.yaml's serverRestartCommand, run as the
 * instance user) may take before the restore reports it as hanging. */
#define RESTART_TIMEOUT_SEC 60
