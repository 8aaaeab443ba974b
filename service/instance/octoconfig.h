/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "folders.h"

/* What opbackup needs from an OctoPrint config.yaml (read with libyaml, never executed). */
typedef struct OctoConfig {
        char *appearance_name;           /* appearance.name */
        char *backup_path;               /* plugins.backup.path */
        bool restore_unsupported;        /* plugins.backup.restore_unsupported */
        char *plugin_repository;         /* plugins.pluginmanager.repository */
        char *restart_command;           /* server.commands.serverRestartCommand */
        char *folders[_FOLDER_MAX];      /* folder.<id> overrides; NULL = default location */
} OctoConfig;

/* config.yaml files larger than this are refused. */
#define OCTOCONFIG_SIZE_MAX (4U * 1024U * 1024U)

/* Parses a config.yaml held in memory. An empty document is a valid, empty configuration. Unknown keys
 * are ignored; a known key of the wrong type (e.g. "folder: 3") is an error. On error returns a negative
 * errno and, if ret_error is not NULL, a message such as "config.yaml line 3: mapping values are not
 * allowed in this context". */
int octoconfig_parse(const char *data, size_t size, OctoConfig *ret, char **ret_error);

void octoconfig_done(OctoConfig *c);
