/* SPDX-License-Identifier: GPL-2.0-or-later */

/* opbackupctl prune --keep N [--match GLOB]: Instance.PruneBackups, keeping the newest N backups whose name
 * matches GLOB. --keep is required (verbs.c): a forgotten number must not mean "delete everything". */

#include <json-c/json.h>

#include "bus-client.h"
#include "cmd-prune.h"
#include "output.h"
#include "util.h"

int cmd_prune(Ctl *ctl, int argc, char *argv[]) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *instance_path = NULL;
        _cleanup_strv_free_ char **deleted = NULL;
        int r;

        r = ctl_instance_path(ctl, &instance_path);
        if (r != 0)
                return r;
        r = ctl_call(ctl, instance_path, INSTANCE_INTERFACE, "PruneBackups", &reply, "us", ctl->keep,
                     strempty(ctl->match));
        if (r != 0)
                return r;
        r = sd_bus_message_read_strv(reply, &deleted);
        if (r < 0)
                return ctl_report_error(ctl, NULL, NULL, r);

        if (ctl->json) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "deleted", strv_to_json(deleted));
                ctl_json_print(o);
                json_object_put(o);
        } else if (!deleted || !deleted[0]) {
                if (!ctl->quiet)
                        printf("Nothing to prune.\n");
        } else
                STRV_FOREACH(d, deleted)
                        printf("Deleted %s.\n", *d);
        return 0;
}
