/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <zip.h>

#include "plugin-info.h"

/* The archive half of a restore (opbackupd(8), RESTORE, steps 3 and 4), run inside a worker that is the
 * instance user already. The archive is untrusted: everything is checked before anything is changed, and
 * extraction never writes outside the staging directory it is given. */

#define RESTORE_ENTRIES_MAX 1000000U
#define RESTORE_NAME_MAX 4096U
#define RESTORE_SPACE_MARGIN (50ULL * 1024ULL * 1024ULL)

typedef struct ArchiveSummary {
        char *version;              /* metadata.json "version" */
        char **excludes;            /* metadata.json "excludes": known folder ids only (others are warnings) */
        uint64_t n_entries;         /* entries in the zip, duplicates included */
        uint64_t n_files;           /* files that will be extracted (the last of each duplicate name) */
        uint64_t total_size;        /* sum of the uncompressed sizes of what will be extracted */
        PluginInfo *plugins;        /* plugin_list.json, if present (key, name, url|NULL) */
        size_t n_plugins;
        char **warnings;            /* what was accepted but ignored, for the job log (NULL-terminated) */
} ArchiveSummary;

/* Whether the archive is an OctoPrint backup a restore can take, judged on the archive alone: a readable
 * zip whose entry names (as stored) are all safe, of allowed types and methods, no path both a file and a
 * folder, metadata.json a JSON object with a version number, basedir/config.yaml and basedir/users.yaml
 * present, plugin_list.json (if any) well-formed. What `opbackupctl inspect` calls valid is exactly this:
 * one checker for both. Errors as restore_archive_validate() below. */
int archive_validate(int zip_fd, uint64_t max_entries, ArchiveSummary *ret, char **ret_error);

/* Validates the whole archive before anything is changed (opbackupd(8), RESTORE, step 3):
 * archive_validate(), then whether it fits this instance. installed_version: the
 * instance's OctoPrint version. free_bytes: free space on the basedir's filesystem (the caller measures
 * it). zip_fd is not consumed and its offset does not matter. On refusal returns a negative errno
 * (-EBADMSG invalid archive, -EPROTONOSUPPORT newer version, -ENOSPC not enough space, -EINVAL the
 * installed version is NULL or unreadable) and *ret_error is a message that names the problem and the
 * entry, e.g. "Backup entry 'basedir/../../x' leaves basedir: refusing to restore this backup". */
int restore_archive_validate(int zip_fd, const char *installed_version, uint64_t free_bytes,
                             ArchiveSummary *ret, char **ret_error);

/* The same with the entry limit as a parameter, so tests need no million-entry zip. */
int restore_archive_validate_full(int zip_fd, const char *installed_version, uint64_t free_bytes,
                                  uint64_t max_entries, ArchiveSummary *ret, char **ret_error);



void archive_summary_done(ArchiveSummary *s);

/* The checked list of a zip's entries (also what restore-extract.c works from). */

typedef enum ItemKind {
        ITEM_FILE,              /* basedir/<path>: extracted */
        ITEM_DIR,               /* basedir/<path>/: created */
        ITEM_ROOT,              /* "basedir/" itself: nothing to do (the caller owns the staging dir) */
        ITEM_METADATA,          /* metadata.json */
        ITEM_PLUGIN_LIST,       /* plugin_list.json */
        ITEM_IGNORED,           /* another top-level *.json file: skipped with a warning */
} ItemKind;

typedef struct ArchiveItem {
        const char *name;       /* the entry name as stored (raw bytes), owned by the zip_t */
        const char *path;       /* inside name: what follows "basedir/" */
        size_t path_len;        /* without a directory's trailing '/' */
        zip_uint64_t index;
        uint64_t size;          /* declared uncompressed size */
        uint64_t comp_size;     /* declared size of the data as stored */
        uint32_t crc;           /* declared CRC-32 of the uncompressed data */
        bool deflated;          /* else stored (the only other method accepted) */
        int64_t mtime;
        bool has_mtime;
        bool has_mode;
        mode_t mode;            /* permission bits (07777) from Unix external attributes, if has_mode */
        ItemKind kind;
        bool superseded;        /* a later entry has the same name: the last one wins */
} ArchiveItem;

typedef struct ArchivePlan {
        zip_t *zip;
        ArchiveItem *items;     /* in archive order */
        size_t n_items;
        uint64_t total_size;    /* of the files that will be extracted */
        uint64_t n_files;
        const ArchiveItem *metadata, *plugin_list;   /* the last of each, or NULL */
        bool has_config, has_users;
        char **warnings;
} ArchivePlan;

/* Opens the zip (read only, on a dup of zip_fd) and checks every entry: names, types, encryption,
 * compression methods, duplicates (last wins) and file/directory clashes. -EBADMSG with a message. */
int archive_plan_open(int zip_fd, uint64_t max_entries, ArchivePlan *ret, char **ret_error);
void archive_plan_done(ArchivePlan *p);

/* Streams one entry through sink() in chunks of buf_size, refusing more bytes than declared, and
 * reading to the end so that libzip checks the CRC. sink() returning < 0 stops (and its error is
 * returned; it sets *ret_error itself if it wants a message). */
typedef int (*ArchiveSink)(const void *data, size_t n, void *userdata);
int archive_item_stream(zip_t *zip, const ArchiveItem *it, void *buf, size_t buf_size, ArchiveSink sink,
                        void *userdata, char **ret_error);

/* The message for libzip's failure to open or read an entry: damaged, CRC, I/O (-EIO). */
int archive_stream_error(char **ret_error, const ArchiveItem *it, zip_error_t *ze);

/* Sets *ret_error to "Backup entry '<name>' <problem>: refusing to restore this backup" and returns
 * -EBADMSG (-ENOMEM if out of memory). */
int archive_refuse_entry(char **ret_error, const char *name, const char *problem);

/* An entry name as it can be shown in a message (valid UTF-8, control characters and invalid bytes as
 * \xNN, long names shortened). Never NULL unless out of memory. */
char *archive_name_for_message(const char *name);
