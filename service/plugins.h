/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backup.h"
#include "distinfo.h"

/* Reinstalling a backup's plugins from OctoPrint's plugin repository (SPEC §3 step 5). Runs inside a
 * worker that is already the instance user: pip runs with that user's privileges only, and the repository
 * and the archives are fetched through the fetch helper (fetch.h: opbackupd has no network of its own), or
 * as that user when there is no helper. */

#define PLUGIN_REPOSITORY_DEFAULT "https://plugins.octoprint.org/plugins.json"
#define UNKNOWN_PLUGINS_FILE "unknown_plugins_from_restore.json"

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

typedef struct PluginOutcome {
        PluginInfo *installed;  size_t n_installed;    /* newly installed (dry run: would be installed) */
        PluginInfo *already;    size_t n_already;      /* were installed already: skipped */
        PluginInfo *unknown;    size_t n_unknown;      /* not in the repository, incompatible, or repository unreachable */
        PluginInfo *failed;     size_t n_failed;       /* download or install failed */
} PluginOutcome;

typedef struct PluginRequest {
        const PluginInfo *plugins; size_t n_plugins;   /* from the backup's plugin_list.json */
        const char *repository_url;                    /* NULL/"" = PLUGIN_REPOSITORY_DEFAULT */
        const char *venv;                              /* <venv>/bin/python -m pip install ... FILE */
        const char *octoprint_version;                 /* for compatibility.octoprint */
        const char *work_dir;                          /* private folder for downloads and pip's temp files */
        int fetch_fd;                                  /* connection to the fetch helper (fetch.h), or -1:
                                                        * fetch in this process. 0 is a descriptor: set it */
        bool dry_run;                                  /* decide only (validation pass): no download, no pip */

        /* Limits; 0 = the defaults below. Tests lower them. */
        uint64_t max_repository_size;                  /* 32 MiB */
        uint64_t max_archive_size;                     /* 256 MiB */
        uint64_t pip_timeout_usec;                     /* 10 min per plugin */
} PluginRequest;

#define PLUGIN_REPOSITORY_MAX (32ULL * 1024 * 1024)
#define PLUGIN_ARCHIVE_MAX (256ULL * 1024 * 1024)
#define PLUGIN_PIP_TIMEOUT_USEC (10ULL * 60 * 1000000)

/* For every plugin of the list, in order (duplicate keys once): already installed in the venv → skipped;
 * else in the repository and compatible → downloaded into work_dir and installed with pip; else unknown.
 * When the repository cannot be fetched or parsed, every plugin not installed is unknown and the call
 * still succeeds (a log line says why). Failed installs are reported in ret->failed, not as an error:
 * whether they fail the restore is the caller's decision. Progress stage "plugins": done/total plugins.
 * Downloads (stage "downloading": bytes) follow the rules of fetch_perform() (fetch.h); an answer other
 * than 2xx is a failed download. Returns 0, or a negative errno with *ret_error: -ECANCELED (progress()
 * asked to stop), -ENOENT (the venv has no site-packages), -ENOMEM, other I/O errors on work_dir, -EBADF
 * when fetch_fd is not a socket. *ret is filled only on success. */
int plugins_reinstall(const PluginRequest *req, const BackupCallbacks *cb, PluginOutcome *ret, char **ret_error);
void plugin_outcome_done(PluginOutcome *o);

/* Writes UNKNOWN_PLUGINS_FILE into dir_fd (the backup folder): the JSON array OctoPrint writes
 * ([{"key": ..., "name": ..., "url": ...}, ...]), through a hidden temp file, fsync and rename. Like
 * OctoPrint, nothing is written (and an older file is left alone) when n is 0. ret_error may be NULL. */
int plugins_write_unknown(int dir_fd, const PluginInfo *p, size_t n, char **ret_error);

/* Internal to plugins*.c. */

/* Runs <venv>/bin/python -m pip install --no-cache-dir --disable-pip-version-check --no-input FILE, in
 * its own process group, with TMPDIR=work_dir, killed when it exceeds timeout_usec or progress() asks
 * to stop (-ECANCELED). Returns 0 when pip ran: *ret_status is its wait status, *ret_output the tail of
 * its merged stdout/stderr (at most a few KiB, whole lines). */
int plugin_pip_install(const char *venv, const char *file, const char *work_dir, uint64_t timeout_usec,
                       const BackupCallbacks *cb, int *ret_status, bool *ret_timed_out, char **ret_output);

/* Whether pip's output (the tail plugin_pip_install() returns) says it could not get something from a
 * package index: nothing satisfying a requirement found, or no connection. Inside opbackupd.service, which
 * has no network, that is what happens to a plugin that needs a package the venv lacks. */
bool pip_output_says_unreachable(const char *output);

/* A copy of s fit for a log line: control characters and bytes of invalid UTF-8 become '?'. */
char *plugin_log_string(const char *s);
