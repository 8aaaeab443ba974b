/* SPDX-License-Identifier: GPL-2.0-or-later */

/* opbackupctl remotes: Manager.ListRemotes as a table (name, type, URL) or JSON
 * [{"name", "type", "url"}, ...]. */

#include <json-c/json.h>

#include "bus-client.h"
#include "cmd-remotes.h"
#include "output.h"
#include "pager.h"
#include "table.h"
#include "util.h"

int ctl_one_remote(const Ctl *ctl, const char **ret) {
        if (strv_length(ctl->remotes) > 1) {
                fprintf(stderr, "'%s' takes one --remote.\n", ctl->doing ? ctl->doing : "this command");
                return EXIT_USAGE;
        }
        *ret = ctl->remotes ? ctl->remotes[0] : NULL;
        return 0;
}

int cmd_remotes(Ctl *ctl, int argc, char *argv[]) {
        static const char *const headers[] = { "NAME", "TYPE", "URL" };
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(table_freep) Table *table = NULL;
        json_object *array = NULL;
        const char *name, *type, *url;
        int r;

        r = ctl_call(ctl, OBJECT_ROOT, MANAGER_INTERFACE, "ListRemotes", &reply, NULL);
        if (r != 0)
                return r;
        if (ctl->json)
                array = json_object_new_array();
        else if (!(table = table_new(headers, ELEMENTSOF(headers))))
                return ctl_report_error(ctl, NULL, NULL, -ENOMEM);
        r = sd_bus_message_enter_container(reply, 'a', "(sss)");
        while (r >= 0 && (r = sd_bus_message_read(reply, "(sss)", &name, &type, &url)) > 0) {
                if (array) {
                        json_object *o = json_object_new_object();
                        json_object_object_add(o, "name", json_object_new_string(name));
                        json_object_object_add(o, "type", json_object_new_string(type));
                        json_object_object_add(o, "url", json_object_new_string(url));
                        json_object_array_add(array, o);
                } else
                        r = table_add_row(table, (const char *const[]) { name, type, url });
        }
        if (r < 0) {
                json_object_put(array);
                return ctl_report_error(ctl, NULL, NULL, r);
        }
        pager_open(ctl->pager);
        if (array)
                ctl_json_print(array);
        else if (table_rows(table) > 0)
                table_print(table, ctl->legend);
        else if (ctl->legend)
                printf("No remotes (they are configured in /etc/opbackup/remotes.d/NAME.conf).\n");
        json_object_put(array);
        return 0;
}
