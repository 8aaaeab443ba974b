/* SPDX-License-Identifier: GPL-2.0-or-later */

/* opbackupctl list: Instance.ListBackups as a table (name, date, size, version, excludes) or JSON. */

#include <json-c/json.h>

#include "bus-client.h"
#include "cmd-list.h"
#include "cmd-remotes.h"
#include "output.h"
#include "pager.h"
#include "table.h"
#include "util.h"

/* "uploads,timelapse" or "-". */
static char *join_excludes(char *const *l) {
        size_t n = 0;
        char *s;

        STRV_FOREACH(e, l)
                n += strlen(*e) + 1;
        if (n == 0)
                return strdup("-");
        s = calloc(1, n);
        if (!s)
                return NULL;
        STRV_FOREACH(e, l) {
                if (*s)
                        strcat(s, ",");
                strcat(s, *e);
        }
        return s;
}

static json_object *backup_json(const char *name, uint64_t size, uint64_t usize, int64_t created,
                                const char *version, char *const *excludes) {
        json_object *o = json_object_new_object();
        char iso[64];

        json_object_object_add(o, "name", json_object_new_string(name));
        json_object_object_add(o, "size", json_object_new_uint64(size));
        json_object_object_add(o, "uncompressed_size", json_object_new_uint64(usize));
        json_object_object_add(o, "created", json_object_new_string(format_timestamp_iso(iso, sizeof(iso), created)));
        json_object_object_add(o, "created_usec", json_object_new_int64(created));
        json_object_object_add(o, "octoprint_version", json_object_new_string(version));
        json_object_object_add(o, "excludes", strv_to_json(excludes));
        return o;
}

static int add_row(Table *t, const char *name, uint64_t size, int64_t created, const char *version,
                   char *const *excludes) {
        _cleanup_free_ char *ex = join_excludes(excludes);
        char date[64], bytes[32];

        if (!ex)
                return -ENOMEM;
        return table_add_row(t, (const char *const[]) {
                name, format_timestamp(date, sizeof(date), created), format_bytes(bytes, sizeof(bytes), size),
                isempty(version) ? "-" : version, ex });
}

/* list --remote R: the instance's backups there, newest first; --json [{"name", "size", "modified",
 * "modified_usec"}, ...]. */
static int list_remote(Ctl *ctl, const char *instance_path, const char *remote) {
        static const char *const headers[] = { "NAME", "DATE", ">SIZE" };
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(table_freep) Table *table = NULL;
        json_object *array = NULL;
        const char *name;
        uint64_t size;
        int64_t mtime;
        int r;

        ctl_set_doing(ctl, "list the backups on %s", remote);
        r = ctl_call(ctl, instance_path, INSTANCE_INTERFACE, "ListRemoteBackups", &reply, "s", remote);
        if (r != 0)
                return r;
        if (ctl->json)
                array = json_object_new_array();
        else if (!(table = table_new(headers, ELEMENTSOF(headers))))
                return ctl_report_error(ctl, NULL, NULL, -ENOMEM);
        r = sd_bus_message_enter_container(reply, 'a', "(stx)");
        while (r >= 0 && (r = sd_bus_message_read(reply, "(stx)", &name, &size, &mtime)) > 0) {
                char date[64], bytes[32];

                if (array) {
                        json_object *o = json_object_new_object();
                        json_object_object_add(o, "name", json_object_new_string(name));
                        json_object_object_add(o, "size", json_object_new_uint64(size));
                        json_object_object_add(o, "modified", json_object_new_string(
                                                       format_timestamp_iso(date, sizeof(date), mtime)));
                        json_object_object_add(o, "modified_usec", json_object_new_int64(mtime));
                        json_object_array_add(array, o);
                } else
                        r = table_add_row(table, (const char *const[]) {
                                name, mtime > 0 ? format_timestamp(date, sizeof(date), mtime) : "-",
                                format_bytes(bytes, sizeof(bytes), size) });
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
                printf("No backups on %s.\n", remote);
        json_object_put(array);
        return 0;
}

int cmd_list(Ctl *ctl, int argc, char *argv[]) {
        static const char *const headers[] = { "NAME", "DATE", ">SIZE", "VERSION", "EXCLUDES" };
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(table_freep) Table *table = NULL;
        _cleanup_free_ char *instance_path = NULL;
        json_object *array = NULL;
        int r;

        const char *remote;

        r = ctl_one_remote(ctl, &remote);
        if (r == 0)
                r = ctl_instance_path(ctl, &instance_path);
        if (r != 0)
                return r;
        if (remote)
                return list_remote(ctl, instance_path, remote);
        r = ctl_call(ctl, instance_path, INSTANCE_INTERFACE, "ListBackups", &reply, NULL);
        if (r != 0)
                return r;
        if (ctl->json)
                array = json_object_new_array();
        else if (!(table = table_new(headers, ELEMENTSOF(headers))))
                return ctl_report_error(ctl, NULL, NULL, -ENOMEM);

        r = sd_bus_message_enter_container(reply, 'a', "(sttxsas)");
        while (r >= 0 && (r = sd_bus_message_enter_container(reply, 'r', "sttxsas")) > 0) {
                _cleanup_strv_free_ char **excludes = NULL;
                const char *name, *version;
                uint64_t size, usize;
                int64_t created;

                r = sd_bus_message_read(reply, "sttxs", &name, &size, &usize, &created, &version);
                if (r >= 0)
                        r = sd_bus_message_read_strv(reply, &excludes);
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
                if (r < 0)
                        break;
                if (array)
                        json_object_array_add(array, backup_json(name, size, usize, created, version, excludes));
                else
                        r = add_row(table, name, size, created, version, excludes);
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
                printf("No backups.\n");
        json_object_put(array);
        return 0;
}
