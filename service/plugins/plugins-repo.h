/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* OctoPrint's plugin repository (plugins.json): parsing, and whether an entry fits this instance. */

#define PLUGIN_REPOSITORY_DEFAULT "https://plugins.octoprint.org/plugins.json"

/* One entry of the repository's plugins.json, as far as installing needs it. */
typedef struct RepoEntry {
        char *id;
        char *title;            /* NULL if missing */
        char *homepage;         /* NULL if missing */
        char *archive;          /* URL; NULL if missing (then the plugin cannot be installed) */
        char **octoprint;       /* compatibility.octoprint specifiers, NULL-terminated; NULL = any */
        char **os;              /* compatibility.os entries ("linux", "!windows"), NULL-terminated; NULL = any */
} RepoEntry;

void repo_entry_array_free(RepoEntry *e, size_t n);

/* Parses plugins.json: a JSON array of objects. Entries that are not objects or have no string "id"
 * are skipped, so one odd entry does not make the whole repository unusable; fields of the wrong type
 * count as missing. compatibility.octoprint may be a list or a single string. -EBADMSG (with
 * *ret_error) if the text is not a JSON array. */
int plugin_repository_parse(const char *json, size_t size, RepoEntry **ret, size_t *ret_n, char **ret_error);

/* The entry with this id; the last one if several (OctoPrint builds a dict from the list). */
const RepoEntry *plugin_repository_find(const RepoEntry *e, size_t n, const char *id);

/* Why an entry does not fit; 0 = compatible. */
enum {
        PLUGIN_INCOMPATIBLE_OCTOPRINT = 1 << 0,
        PLUGIN_INCOMPATIBLE_OS = 1 << 1,
};

/* OctoPrint's plugin manager rules. compatibility.octoprint: compatible when the list is empty or ANY
 * entry matches the release part of the OctoPrint version ("1.10.0rc3" counts as "1.10.0"); an entry
 * without an operator means ">=", an entry that cannot be parsed matches nothing. octoprint_version NULL
 * skips this check. compatibility.os: compatible when the list is empty, or no "!x" entry matches and
 * (there is no positive entry or one matches); an entry matches when it equals os or is a prefix of
 * Python's sys.platform for that os ("linux" → "linux", "macos" → "darwin", "windows" → "win32"). */
unsigned plugin_compatibility(const RepoEntry *e, const char *octoprint_version, const char *os);
static inline bool plugin_compatible(const RepoEntry *e, const char *octoprint_version, const char *os) {
        return plugin_compatibility(e, octoprint_version, os) == 0;
}

/* The file name to save a downloaded archive under: the last path component of the URL (percent-decoded)
 * when it ends in an extension pip understands (.whl, .zip, .tar.gz, .tgz, .tar.bz2, .tar); a wheel must
 * keep its exact name. NULL if the URL gives no usable name (then the content decides the extension).
 * The result is a single safe component: no "/", no leading ".", no control characters. */
char *plugin_archive_name_from_url(const char *url);
