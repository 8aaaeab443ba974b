/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* What is in a backup zip, read with libzip: plain data out, no bus. Used by `opbackupctl inspect` and
 * unit-tested on generated archives. */

#include <stdbool.h>
#include <stdint.h>
#include <zip.h>

#define INSPECT_JSON_MAX (1024U * 1024U)        /* metadata.json, plugin_list.json */
#define INSPECT_ENTRIES_MAX 1000000U            /* opbackupd(8), RESTORE: a restore refuses more */
#define INSPECT_NAME_MAX 4096U
#define INSPECT_FOLDERS_MAX 256U                /* more top-level folders are summed as one */
#define INSPECT_PLUGINS_MAX 10000U
#define INSPECT_PROBLEMS_MAX 20U

typedef struct InspectPlugin {
        char *key, *name, *url;                 /* url NULL when the list says null */
} InspectPlugin;

typedef struct InspectFolder {
        char *name;                             /* "uploads", ...; "" for the files right in basedir/ */
        uint64_t entries, size, compressed_size;
} InspectFolder;

typedef struct BackupInspection {
        bool has_metadata, has_config, has_users, has_plugin_list;
        char *version;                          /* metadata.json "version", NULL if missing */
        char **excludes;                        /* metadata.json "excludes" (never NULL after success) */
        InspectPlugin *plugins;
        size_t n_plugins;
        uint64_t entries, compressed_size, uncompressed_size;
        InspectFolder *folders;                 /* top-level folders under basedir/, in order of appearance */
        size_t n_folders;
        char **problems;                        /* why it is not a valid backup; none: valid */
        size_t n_problems_omitted;              /* problems beyond INSPECT_PROBLEMS_MAX */
} BackupInspection;

/* Whether a zip entry name is one a restore accepts (opbackupd(8), RESTORE, step 3): relative, no "..", no
 * empty component (but a trailing "/" for a directory), no backslash or control character, no drive letter,
 * within basedir/ or one of metadata.json, plugin_list.json, at most INSPECT_NAME_MAX bytes. */
bool inspect_entry_name_is_safe(const char *name);

/* Reads the archive's directory and its two JSON files. Returns 0 (then look at problems) or a negative
 * errno when the archive cannot be read at all. */
int backup_inspect(zip_t *z, BackupInspection *ret);
void backup_inspection_done(BackupInspection *b);

static inline bool backup_inspection_valid(const BackupInspection *b) {
        return !b->problems || !b->problems[0];
}
