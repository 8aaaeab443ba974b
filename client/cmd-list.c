/* SPDX-License-Identifier: GPL-2.0-or-later */

/* opbackupctl list: Instance.ListBackups as a table (name, date, size, version, excludes) or JSON. */

#include <getopt.h>
#include <json-c/json.h>

#include "ctl.h"
#include "util.h"

typedef struct Row {
        char *name, *date, *size, *version, *excludes;
} Row;

static void rows_free(Row *rows, size_t n) {
        for (size_t k = 0; k < n; k++) {
                free(rows[k].name);
                free(rows[k].date);
                free(rows[k].size);
                free(rows[k].version);
                free(rows[k].excludes);
        }
        free(rows);
}

static void help(void) {
        printf("Usage: opbackupctl [OPTIONS] list [--json]\n\n"
               "List the backups of the instance, newest first.\n\n"
               "     --json   Machine-readable output\n"
               "  -h --help   Show this help\n");
}

static int parse_args(Ctl *ctl, int argc, char *argv[]) {
        return ctl_parse_json_only(ctl, argc, argv, help, 0, NULL);
}

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
        json_object *o = json_object_new_object(), *ex = json_object_new_array();
        char iso[64];

        STRV_FOREACH(e, excludes)
                json_object_array_add(ex, json_object_new_string(*e));
        json_object_object_add(o, "name", json_object_new_string(name));
        json_object_object_add(o, "size", json_object_new_uint64(size));
        json_object_object_add(o, "uncompressed_size", json_object_new_uint64(usize));
        json_object_object_add(o, "created", json_object_new_string(format_timestamp_iso(iso, sizeof(iso), created)));
        json_object_object_add(o, "created_usec", json_object_new_int64(created));
        json_object_object_add(o, "octoprint_version", json_object_new_string(version));
        json_object_object_add(o, "excludes", ex);
        return o;
}

static void print_table(const Row *rows, size_t n) {
        static const char *const headers[] = { "NAME", "DATE", "SIZE", "VERSION", "EXCLUDES" };
        size_t w[ELEMENTSOF(headers)];

        for (size_t c = 0; c < ELEMENTSOF(headers); c++)
                w[c] = strlen(headers[c]);
        for (size_t k = 0; k < n; k++) {
                const char *cells[] = { rows[k].name, rows[k].date, rows[k].size, rows[k].version };
                for (size_t c = 0; c < ELEMENTSOF(cells); c++)
                        if (strlen(cells[c]) > w[c])
                                w[c] = strlen(cells[c]);
        }
        printf("%-*s  %-*s  %*s  %-*s  %s\n", (int) w[0], headers[0], (int) w[1], headers[1], (int) w[2],
               headers[2], (int) w[3], headers[3], headers[4]);
        for (size_t k = 0; k < n; k++)
                printf("%-*s  %-*s  %*s  %-*s  %s\n", (int) w[0], rows[k].name, (int) w[1], rows[k].date,
                       (int) w[2], rows[k].size, (int) w[3], rows[k].version, rows[k].excludes);
}

int cmd_list(Ctl *ctl, int argc, char *argv[]) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *instance_path = NULL;
        json_object *array = NULL;
        Row *rows = NULL;
        size_t n = 0;
        int r;

        r = parse_args(ctl, argc, argv);
        if (r <= 0)
                return -r;
        r = ctl_instance_path(ctl, &instance_path);
        if (r != 0)
                return r;
        r = ctl_call(ctl, instance_path, INSTANCE_INTERFACE, "ListBackups", &reply, NULL);
        if (r != 0)
                return r;
        if (ctl->json)
                array = json_object_new_array();

        r = sd_bus_message_enter_container(reply, 'a', "(sttxsas)");
        while (r >= 0 && (r = sd_bus_message_enter_container(reply, 'r', "sttxsas")) > 0) {
                _cleanup_strv_free_ char **excludes = NULL;
                const char *name, *version;
                uint64_t size, usize;
                int64_t created;
                char buf[64];
                Row *row;

                r = sd_bus_message_read(reply, "sttxs", &name, &size, &usize, &created, &version);
                if (r >= 0)
                        r = sd_bus_message_read_strv(reply, &excludes);
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
                if (r < 0)
                        break;
                if (array) {
                        json_object_array_add(array, backup_json(name, size, usize, created, version, excludes));
                        continue;
                }
                row = realloc(rows, (n + 1) * sizeof(Row));
                if (!row) {
                        r = -ENOMEM;
                        break;
                }
                rows = row;
                row = &rows[n++];
                *row = (Row) {
                        .name = strdup(name),
                        .date = strdup(format_timestamp(buf, sizeof(buf), created)),
                        .size = strdup(format_bytes(buf, sizeof(buf), size)),
                        .version = strdup(isempty(version) ? "-" : version),
                        .excludes = join_excludes(excludes),
                };
                if (!row->name || !row->date || !row->size || !row->version || !row->excludes) {
                        r = -ENOMEM;
                        break;
                }
        }
        if (r < 0) {
                rows_free(rows, n);
                json_object_put(array);
                return ctl_report_error("ListBackups", NULL, r);
        }

        if (array)
                ctl_json_print(array);
        else if (n == 0)
                printf("No backups.\n");
        else
                print_table(rows, n);
        json_object_put(array);
        rows_free(rows, n);
        return 0;
}
