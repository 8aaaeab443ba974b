/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stddef.h>

#include "plugin-info.h"

/* Reading a Python venv's installed distributions without running Python (opbackupd(8), ARCHIVE FORMAT,
 * plugin_list.json). */


/* The site-packages folder of the venv: <venv>/lib/python3.* /site-packages (the newest python3.N if
 * several). Returns an O_DIRECTORY fd; -ENOENT if there is none. */
int venv_open_site_packages(const char *venv_dir, char **ret_path, int *ret_fd);

/* OctoPrint's version from OctoPrint-<version>.dist-info (the METADATA "Version:" line, else the
 * folder name). -ENOENT if OctoPrint is not installed in this site-packages. */
int distinfo_octoprint_version(int site_packages_fd, char **ret_version);

/* Every distribution with an [octoprint.plugin] entry point, except OctoPrint itself and the keys in
 * `bundled` (NULL-terminated). One PluginInfo per key, sorted by key. */
int distinfo_plugin_list(int site_packages_fd, char *const *bundled, PluginInfo **ret, size_t *ret_n);

/* JSON as Python's json.dumps writes it: [{"key": "...", "name": "...", "url": "..." or null}, ...].
 * NULL with errno set (ENOMEM, EILSEQ) on failure. */
char *plugin_list_to_json(const PluginInfo *p, size_t n);
