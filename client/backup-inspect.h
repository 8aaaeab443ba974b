/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* What is in a backup zip: plain data out, no bus. Used by `opbackupctl inspect` and unit-tested on
 * generated archives. Whether it is valid is decided by the restore's own checker (archive-validate.h). */

#include <stdbool.h>
#include <stdint.h>

#include "archive-validate.h"

#define INSPECT_ENTRIES_MAX RESTORE_ENTRIES_MAX   /* a restore refuses more */
#define INSPECT_FOLDERS_MAX 256U                  /* more top-level folders are summed as one */

typedef PluginInfo InspectPlugin;

typedef struct InspectFolder {
        char *name;                             /* "uploads", ...; "" for the files right in basedir/ */
        uint64_t entries, size, compressed_size;
} InspectFolder;

typedef struct BackupInspection {
        bool has_metadata, has_config, has_users, has_plugin_list;
        char *version;                          /* metadata.json "version"; NULL unless valid */
        char **excludes;                        /* metadata.json "excludes" (never NULL after success) */
        InspectPlugin *plugins;                 /* plugin_list.json; none unless valid */
        size_t n_plugins;
        uint64_t entries, compressed_size, uncompressed_size;
        InspectFolder *folders;                 /* top-level folders under basedir/, in order of appearance */
        size_t n_folders;
        char **problems;                        /* why a restore would refuse it (the first reason); none: valid */
        char **warnings;                        /* what a restore would accept but ignore */
} BackupInspection;

/* Validates the archive behind fd (not consumed, offset irrelevant) and describes it. Returns 0 (then look
 * at problems) or a negative errno when it cannot be read at all. */
int backup_inspect(int fd, BackupInspection *ret);
void backup_inspection_done(BackupInspection *b);

static inline bool backup_inspection_valid(const BackupInspection *b) {
        return !b->problems || !b->problems[0];
}
