/* SPDX-License-Identifier: GPL-2.0-or-later */

/* opbackupctl unknown-plugins [--clear]: Instance.GetUnknownPlugins, the plugins the last restore could not
 * reinstall, with their homepages (what OctoPrint shows after a restore); --clear is
 * Instance.ClearUnknownPlugins. */

#include <json-c/json.h>

#include "bus-client.h"
#include "cmd-unknown-plugins.h"
#include "output.h"
#include "pager.h"
#include "util.h"

static int clear(Ctl *ctl, const char *path) {
        int r;

        r = ctl_call(ctl, path, INSTANCE_INTERFACE, "ClearUnknownPlugins", NULL, NULL);
        if (r != 0)
                return r;
        if (ctl->json) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "cleared", json_object_new_boolean(true));
                ctl_json_print(o);
                json_object_put(o);
        } else if (!ctl->quiet)
                printf("Cleared the list of plugins to reinstall by hand.\n");
        return 0;
}

static json_object *plugin_json(const char *key, const char *name, const char *url) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "key", json_object_new_string(key));
        json_object_object_add(o, "name", json_object_new_string(name));
        json_object_object_add(o, "url", json_string_or_null(url));
        return o;
}

int cmd_unknown_plugins(Ctl *ctl, int argc, char *argv[]) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *path = NULL;
        const char *key, *name, *url;
        json_object *list;
        int r;

        if (ctl->clear) {
                ctl->doing = "clear the list of plugins to reinstall by hand";
                ctl->action = "delete";
        }
        r = ctl_instance_path(ctl, &path);
        if (r != 0)
                return r;
        if (ctl->clear)
                return clear(ctl, path);

        r = ctl_call(ctl, path, INSTANCE_INTERFACE, "GetUnknownPlugins", &reply, NULL);
        if (r != 0)
                return r;
        list = json_object_new_array();
        r = sd_bus_message_enter_container(reply, 'a', "(sss)");
        while (r >= 0 && (r = sd_bus_message_read(reply, "(sss)", &key, &name, &url)) > 0)
                json_object_array_add(list, plugin_json(key, name, url));
        if (r < 0) {
                json_object_put(list);
                return ctl_report_error(ctl, NULL, NULL, r);
        }

        pager_open(ctl->pager);
        if (ctl->json)
                ctl_json_print(list);
        else if (json_object_array_length(list) == 0 && ctl->legend && !ctl->quiet)
                printf("No plugins are waiting to be reinstalled by hand.\n");
        else
                for (size_t k = 0; k < json_object_array_length(list); k++) {
                        json_object *p = json_object_array_get_idx(list, k);
                        const char *n = json_object_get_string(json_object_object_get(p, "name"));
                        json_object *u = json_object_object_get(p, "url");

                        printf("%s%s%s\n", isempty(n) ? json_object_get_string(json_object_object_get(p, "key")) : n,
                               u ? ": " : "", u ? json_object_get_string(u) : "");
                }
        json_object_put(list);
        return 0;
}
