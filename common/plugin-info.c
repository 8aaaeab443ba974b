/* SPDX-License-Identifier: GPL-2.0-or-later */

#include <stdlib.h>

#include "plugin-info.h"

void plugin_info_clear(PluginInfo *p) {
        free(p->key);
        free(p->name);
        free(p->url);
        *p = (PluginInfo) {};
}

void plugin_info_array_free(PluginInfo *p, size_t n) {
        if (!p)
                return;
        for (size_t i = 0; i < n; i++)
                plugin_info_clear(&p[i]);
        free(p);
}
