/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* opbackupctl backup (verbs.c has its arguments, options and help), and the backup that
 * scheduled-backup makes of each instance. */

#include <stdbool.h>
#include <stdint.h>

#include "ctl.h"

typedef struct BackupArgs {
        char *const *excludes;
        const char *name;
        bool no_wait;
        bool when_idle;
        bool scheduled;         /* made by the schedule: a name scheduled pruning may delete */
} BackupArgs;

/* What a finished backup is; for --no-wait, only the job. */
typedef struct BackupResult {
        uint32_t id;
        char *job;
        char *name, *path;
        uint64_t size;
        char **excludes;                /* as recorded in the backup's metadata */
        bool left_running;              /* Ctrl-C, and the person chose not to cancel */
} BackupResult;

void backup_result_done(BackupResult *b);

/* Instance.CreateBackup and, unless no_wait, waiting for the job (progress, Ctrl-C). Returns an exit
 * code: EXIT_BUSY also for a when-idle backup skipped while printing. Prints nothing on success; the
 * caller frees *ret with backup_result_done() whatever the outcome. */
int backup_instance(Ctl *ctl, const char *instance_path, const BackupArgs *args, BackupResult *ret);

/* The result as `backup` prints it: "Created backup NAME (SIZE)." (not with -q), "Backup located at PATH". */
void backup_result_print(const Ctl *ctl, const BackupResult *b);

/* The result as `backup --json` prints it. */
struct json_object *backup_result_json(const BackupResult *b, bool no_wait);

int cmd_backup(Ctl *ctl, int argc, char *argv[]);
