/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <json-c/json.h>

#include "ctl.h"

int cmd_upload(Ctl *ctl, int argc, char *argv[]);

/* UploadBackup and its job. *ret_uploads: [{"remote", "result", "error"}] from the job's details, also when
 * an upload failed (NULL when the job could not run at all). Returns an exit code (errors reported). */
int upload_backup(Ctl *ctl, const char *instance_path, const char *name, char *const *remotes,
                  json_object **ret_uploads);
