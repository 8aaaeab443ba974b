/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "backup/backup.h"

/* OctoPrint's "octoprint.plugin.backup.additional_excludes" hook, done without running OctoPrint
 * (opbackupd(8), ARCHIVE FORMAT, "Plugins' excludes"): plugins name paths in their data folder that stay out
 * of a backup.
 *
 * Sources, in this order (results accumulate; later ones see earlier results):
 *   1. <config_dir>/excludes.d/<plugin>.conf           admin drop-ins, sorted by plugin
 *   2. <data>/<plugin>/.opbackup-excludes               written by the plugin itself, sorted by plugin
 *   3. <config_dir>/hooks/additional-excludes.d/<plugin> executables, sorted by plugin; run (hook-run.h)
 *      only if they, hooks/ and additional-excludes.d/ belong to root (or to the worker user itself) and
 *      are not writable by group or others; stdin: the current excludes as a JSON array, stdout: a JSON
 *      array of paths; environment: OPBACKUP_INSTANCE, OPBACKUP_BASEDIR, OPBACKUP_PLUGIN,
 *      OPBACKUP_PLUGIN_DATA_FOLDER, PATH, LANG, HOME
 * Drop-ins are INI: [Exclude] Paths=... always; [Exclude.uploads] when uploads is excluded;
 * [Exclude.uploads+timelapse] when both are. Paths are relative to data/<plugin>/, "." is the whole
 * folder, "#" starts a comment. A broken source is logged and ignored; it never fails a backup. */

/* Paths a hook or drop-in may name, paths all of them together may name, bytes of hook output read. */
#define EXCLUDES_PATHS_MAX 4096U
#define EXCLUDES_TOTAL_MAX 10000U
#define EXCLUDES_HOOK_OUTPUT_MAX (1024U * 1024U)
#define EXCLUDES_DROPIN_SIZE_MAX (64U * 1024U)
#define EXCLUDES_HOOK_TIMEOUT_USEC (10ULL * 1000000ULL)

typedef struct ExcludeRequest {
        const char *instance;
        const char *basedir;
        const char *data_dir;            /* the data folder's configured location */
        const char *config_dir;          /* NULL: no admin drop-ins and no hooks */
        char *const *folder_excludes;    /* metadata.json "excludes" */
        uint64_t hook_timeout_usec;      /* 0 = EXCLUDES_HOOK_TIMEOUT_USEC */
} ExcludeRequest;

/* Returns OctoPrint's "current excludes" minus the folder ids: "data/<plugin>" (whole folder) or
 * "data/<plugin>/<path>", each once, in the order found. Only fails on out-of-memory or when
 * progress() cancels. */
int additional_excludes_compute(const ExcludeRequest *r, const BackupCallbacks *cb, char ***ret);

/* Plugin identifiers as file names: [A-Za-z0-9_.-]{1,128}, not starting with '.'. */
bool plugin_name_is_valid(const char *s);

/* A path relative to data/<plugin>/: "." and "./" become "", "a//b/./c/" becomes "a/b/c". Empty,
 * absolute, ".."-containing or control-character paths are -EINVAL. */
int exclude_path_normalize(const char *path, char **ret);

/* Parses a drop-in's text. `source` names it in log lines. Returns the normalized paths ("" = whole
 * folder) of the sections that apply given folder_excludes; bad paths are logged and skipped; a syntax
 * error ignores the whole file (-EBADMSG, logged). */
int exclude_dropin_parse(const char *text, const char *source, char *const *folder_excludes,
                         const BackupCallbacks *cb, char ***ret_paths);

/* Parses a hook's stdout (text[size] must be NUL): a JSON array of strings (empty output = []). Returns
 * the strings as they are (not normalized). On error returns -EBADMSG and a message in *ret_error. */
int exclude_hook_output_parse(const char *text, size_t size, char ***ret_paths, char **ret_error);
