/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stddef.h>

/* One entry of a backup's plugin list (plugin_list.json), as the venv's dist-info gives it and as a
 * restore reads it back. */
typedef struct PluginInfo {
        char *key;      /* entry point name in [octoprint.plugin] */
        char *name;     /* METADATA Name */
        char *url;      /* METADATA Home-page, else the first Project-URL; NULL if neither */
} PluginInfo;

void plugin_info_clear(PluginInfo *p);
void plugin_info_array_free(PluginInfo *p, size_t n);
