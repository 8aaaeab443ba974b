/* SPDX-License-Identifier: GPL-2.0-or-later */
/* OctoPrint's config.yaml as opbackup reads it (libyaml, service/instance/octoconfig.c). */

#include "fuzz-util.h"
#include "instance/octoconfig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *error = NULL;
        OctoConfig c = {};
        int r;

        if (size > OCTOCONFIG_SIZE_MAX)
                return 0;
        r = octoconfig_parse((const char *) data, size, &c, &error);
        if (r >= 0)
                octoconfig_done(&c);
        return 0;
}
