/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <time.h>

/* Backup file names (opbackupd(8), ARCHIVE FORMAT, "File name"). */

#define BACKUP_NAME_MAX 205   /* 1 + 200 + ".zip" */

/* ^[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.zip$ */
bool backup_name_is_valid(const char *name);

/* appearance.name → file name prefix: ASCII letters, digits, '-', '_', '.' kept, every other run of
 * characters becomes one '-'; "octoprint" when the result is empty. Never NULL unless out of memory. */
char *backup_prefix_from_appearance(const char *appearance_name);

/* "{prefix}-backup-{YYYYmmdd-HHMMSS}.zip" in local time; a backup the schedule makes ends in
 * "-scheduled.zip" instead, so that scheduled pruning (Keep=) can tell the backups it may delete from those
 * a person made (opbackupd.conf(5), Keep=). */
#define BACKUP_SCHEDULED_SUFFIX "-scheduled"
/* The names of the schedule's backups: what Keep= counts and prunes, locally and on remotes. */
#define BACKUP_SCHEDULED_GLOB "*-backup-[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]-[0-9][0-9][0-9][0-9][0-9][0-9]" \
        BACKUP_SCHEDULED_SUFFIX ".zip"
char *backup_filename(const char *prefix, time_t when, bool scheduled);

/* Where a copied-in backup goes when its name is taken (ImportBackup, RestoreBackupFromFile): "name.zip",
 * then "name.1.zip" up to "name.999.zip". backup_name_variant() makes the n-th (0: base itself; NULL when
 * out of memory); backup_name_is_variant() says whether name is one of them. */
#define BACKUP_NAME_VARIANTS_MAX 999U
char *backup_name_variant(const char *base, unsigned n);
bool backup_name_is_variant(const char *name, const char *base);

/* Instance names as used in config files and object paths: [A-Za-z0-9_.-]{1,64}, not starting with '.'. */
bool instance_name_is_valid(const char *name);
