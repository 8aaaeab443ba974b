/* SPDX-License-Identifier: GPL-2.0-or-later */

/* opbackupctl delete NAME...: Instance.DeleteBackup for each name. All are tried; the exit code is the
 * first failure's. */

#include <json-c/json.h>

#include "bus-client.h"
#include "cmd-delete.h"
#include "cmd-remotes.h"
#include "output.h"
#include "util.h"

int cmd_delete(Ctl *ctl, int argc, char *argv[]) {
        _cleanup_strv_free_ char **deleted = NULL, **failed = NULL;
        _cleanup_free_ char *instance_path = NULL;
        const char *remote;
        int r, ret = 0;

        r = ctl_one_remote(ctl, &remote);
        if (r == 0)
                r = ctl_instance_path(ctl, &instance_path);
        if (r != 0)
                return r;
        for (int k = 1; k < argc; k++) {
                if (remote) {
                        ctl_set_doing(ctl, "delete %s on %s", argv[k], remote);
                        r = ctl_call(ctl, instance_path, INSTANCE_INTERFACE, "DeleteRemoteBackup", NULL, "ss", remote,
                                     argv[k]);
                } else {
                        ctl_set_doing(ctl, "delete %s", argv[k]);
                        r = ctl_call(ctl, instance_path, INSTANCE_INTERFACE, "DeleteBackup", NULL, "s", argv[k]);
                }
                if (r != 0) {
                        if (ret == 0)
                                ret = r;
                        if (strv_extend(&failed, argv[k]) < 0)
                                return ctl_report_error(ctl, NULL, NULL, -ENOMEM);
                        continue;
                }
                if (strv_extend(&deleted, argv[k]) < 0)
                        return ctl_report_error(ctl, NULL, NULL, -ENOMEM);
                if (!ctl->json && !ctl->quiet)
                        printf("Deleted %s%s%s.\n", argv[k], remote ? " on " : "", strempty(remote));
        }
        if (ctl->json) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "deleted", strv_to_json(deleted));
                json_object_object_add(o, "failed", strv_to_json(failed));
                ctl_json_print(o);
                json_object_put(o);
        }
        return ret;
}
