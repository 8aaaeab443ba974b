/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* What restore-validate.c and restore-extract.c share: the checked list of a zip's entries. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <zip.h>

#include "restore-archive.h"

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
