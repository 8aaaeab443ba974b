/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>

/* OctoPrint's folder identifiers (opbackupd(8), ARCHIVE FORMAT), in the order backups store them. */
typedef enum FolderId {
        FOLDER_UPLOADS,
        FOLDER_TIMELAPSE,
        FOLDER_TIMELAPSE_TMP,
        FOLDER_LOGS,
        FOLDER_VIRTUALSD,
        FOLDER_WATCHED,
        FOLDER_PLUGINS,
        FOLDER_SLICINGPROFILES,
        FOLDER_PRINTERPROFILES,
        FOLDER_SCRIPTS,
        FOLDER_TRANSLATIONS,
        FOLDER_GENERATED,
        FOLDER_DATA,
        FOLDER_UPLOADTEMP,
        _FOLDER_MAX,
} FolderId;

const char *folder_id_to_string(FolderId id);
FolderId folder_id_from_string(const char *s);   /* -1 if unknown */

/* "timelapse_tmp" → "timelapse/tmp": the default location relative to basedir. */
const char *folder_default_relpath(FolderId id);

/* generated, logs, watched, uploadtemp: never in a backup. */
bool folder_always_excluded(FolderId id);

/* What a caller may exclude: every id that is not always excluded, minus timelapse_tmp (which
 * follows timelapse). */
bool folder_excludable(FolderId id);
