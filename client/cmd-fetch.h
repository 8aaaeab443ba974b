/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "ctl.h"

int cmd_fetch(Ctl *ctl, int argc, char *argv[]);

/* FetchRemoteBackup and its job: *ret_stored is the name the backup was stored under in the backup folder.
 * "latest" is the newest backup on the remote. Returns an exit code (errors reported). */
int fetch_remote_backup(Ctl *ctl, const char *instance_path, const char *remote, const char *name,
                        char **ret_stored);
