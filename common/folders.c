/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "folders.h"
#include "util.h"

static const struct {
        const char *id;
        const char *relpath;
} folders[_FOLDER_MAX] = {
        [FOLDER_UPLOADS] = { "uploads", "uploads" },
        [FOLDER_TIMELAPSE] = { "timelapse", "timelapse" },
        [FOLDER_TIMELAPSE_TMP] = { "timelapse_tmp", "timelapse/tmp" },
        [FOLDER_LOGS] = { "logs", "logs" },
        [FOLDER_VIRTUALSD] = { "virtualSd", "virtualSd" },
        [FOLDER_WATCHED] = { "watched", "watched" },
        [FOLDER_PLUGINS] = { "plugins", "plugins" },
        [FOLDER_SLICINGPROFILES] = { "slicingProfiles", "slicingProfiles" },
        [FOLDER_PRINTERPROFILES] = { "printerProfiles", "printerProfiles" },
        [FOLDER_SCRIPTS] = { "scripts", "scripts" },
        [FOLDER_TRANSLATIONS] = { "translations", "translations" },
        [FOLDER_GENERATED] = { "generated", "generated" },
        [FOLDER_DATA] = { "data", "data" },
        [FOLDER_UPLOADTEMP] = { "uploadtemp", "uploadtemp" },
};

const char *folder_id_to_string(FolderId id) {
        if (id < 0 || id >= _FOLDER_MAX)
                return NULL;
        return folders[id].id;
}

FolderId folder_id_from_string(const char *s) {
        for (int i = 0; s && i < _FOLDER_MAX; i++)
                if (streq(folders[i].id, s))
                        return (FolderId) i;
        return (FolderId) -1;
}

const char *folder_default_relpath(FolderId id) {
        if (id < 0 || id >= _FOLDER_MAX)
                return NULL;
        return folders[id].relpath;
}

bool folder_always_excluded(FolderId id) {
        return id == FOLDER_GENERATED || id == FOLDER_LOGS || id == FOLDER_WATCHED || id == FOLDER_UPLOADTEMP;
}

bool folder_excludable(FolderId id) {
        return id >= 0 && id < _FOLDER_MAX && !folder_always_excluded(id) && id != FOLDER_TIMELAPSE_TMP;
}
