/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "daemon/daemon.h"

/* The last upload to each remote of each instance (Instance.RemoteStatus) outlives the daemon, which exits
 * when idle: kept in <state dir>/remote-status.json, root's, mode 0600. The state dir is $STATE_DIRECTORY
 * (systemd's StateDirectory=) or OPBACKUP_STATE_DIR (/var/lib/opbackup). */

/* Reads the file into the instances that exist (a remote or instance no longer configured is dropped when
 * the file is next written). A missing or broken file is no status (a broken one is logged). */
void remote_status_load(Daemon *d);

/* Writes every instance's status (a new file renamed over the old one). Failures are logged. */
void remote_status_save(Daemon *d);
