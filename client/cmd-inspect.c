/* SPDX-License-Identifier: GPL-2.0-or-later */

/* opbackupctl inspect NAME|FILE: what a backup holds and whether it can be restored. A FILE (an argument
 * with a '/' or naming an existing file) is read by the client itself, without the service; a NAME is
 * opened by the service (Instance.OpenBackup) and read through the descriptor it returns. */

#include <fcntl.h>
#include <json-c/json.h>
#include <sys/stat.h>

#include "backup-inspect.h"
#include "bus-client.h"
#include "cmd-inspect.h"
#include "output.h"
#include "pager.h"
#include "util.h"

/* A descriptor of the zip: the local file, or the service's. Returns an exit code. */
static int open_source(Ctl *ctl, const char *arg, bool *ret_local, int *ret_fd) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *instance_path = NULL;
        struct stat st;
        int r, fd;

        *ret_local = strchr(arg, '/') || access(arg, F_OK) == 0;
        if (*ret_local) {
                fd = open(arg, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                if (fd < 0) {
                        r = -errno;
                        ctl_report_error(ctl, NULL, NULL, r);
                        return r == -ENOENT ? EXIT_NOT_FOUND : EXIT_FAIL;
                }
                if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                        close(fd);
                        fprintf(stderr, "Cannot inspect %s: not a regular file.\n", arg);
                        return EXIT_FAIL;
                }
                *ret_fd = fd;
                return 0;
        }

        /* Only a backup in the backup folder needs the service. */
        r = ctl_instance_path(ctl, &instance_path);
        if (r != 0)
                return r;
        r = ctl_call(ctl, instance_path, INSTANCE_INTERFACE, "OpenBackup", &reply, "s", arg);
        if (r != 0)
                return r;
        r = sd_bus_message_read(reply, "h", &fd);
        if (r < 0)
                return ctl_report_error(ctl, NULL, NULL, r);
        /* The message owns its descriptor. */
        fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return ctl_report_error(ctl, NULL, NULL, -errno);
        *ret_fd = fd;
        return 0;
}

static json_object *inspection_json(const char *source, bool local, const BackupInspection *b) {
        json_object *o = json_object_new_object(), *a;

        json_object_object_add(o, local ? "file" : "name", json_object_new_string(source));
        json_object_object_add(o, "valid", json_object_new_boolean(backup_inspection_valid(b)));
        a = json_object_new_array();
        STRV_FOREACH(p, b->problems)
                json_object_array_add(a, json_object_new_string(*p));
        json_object_object_add(o, "problems", a);
        a = json_object_new_array();
        STRV_FOREACH(w, b->warnings)
                json_object_array_add(a, json_object_new_string(*w));
        json_object_object_add(o, "warnings", a);
        json_object_object_add(o, "octoprint_version", b->version ? json_object_new_string(b->version) : NULL);
        a = json_object_new_array();
        STRV_FOREACH(e, b->excludes)
                json_object_array_add(a, json_object_new_string(*e));
        json_object_object_add(o, "excludes", a);
        json_object_object_add(o, "has_metadata", json_object_new_boolean(b->has_metadata));
        json_object_object_add(o, "has_config", json_object_new_boolean(b->has_config));
        json_object_object_add(o, "has_users", json_object_new_boolean(b->has_users));
        a = json_object_new_array();
        for (size_t k = 0; k < b->n_plugins; k++) {
                json_object *p = json_object_new_object();
                json_object_object_add(p, "key", json_object_new_string(b->plugins[k].key));
                json_object_object_add(p, "name", b->plugins[k].name ? json_object_new_string(b->plugins[k].name) : NULL);
                json_object_object_add(p, "url", b->plugins[k].url ? json_object_new_string(b->plugins[k].url) : NULL);
                json_object_array_add(a, p);
        }
        json_object_object_add(o, "plugins", a);
        json_object_object_add(o, "entries", json_object_new_uint64(b->entries));
        json_object_object_add(o, "compressed_size", json_object_new_uint64(b->compressed_size));
        json_object_object_add(o, "uncompressed_size", json_object_new_uint64(b->uncompressed_size));
        a = json_object_new_array();
        for (size_t k = 0; k < b->n_folders; k++) {
                json_object *f = json_object_new_object();
                json_object_object_add(f, "name", json_object_new_string(b->folders[k].name));
                json_object_object_add(f, "entries", json_object_new_uint64(b->folders[k].entries));
                json_object_object_add(f, "size", json_object_new_uint64(b->folders[k].size));
                json_object_object_add(f, "compressed_size", json_object_new_uint64(b->folders[k].compressed_size));
                json_object_array_add(a, f);
        }
        json_object_object_add(o, "folders", a);
        return o;
}

/* "uploads/"; the files right in basedir/ as "(files)". */
static const char *folder_label(const InspectFolder *f) {
        return *f->name ? f->name : "(files)";
}

static void print_inspection(const char *source, const BackupInspection *b) {
        char s1[32], s2[32];
        size_t w = 0;

        printf("Backup:        %s\n", source);
        printf("Valid:         %s\n", backup_inspection_valid(b) ? "yes" : "NO");
        STRV_FOREACH(p, b->problems)
                printf("  - %s\n", *p);
        STRV_FOREACH(warning, b->warnings)
                printf("  warning: %s\n", *warning);
        printf("OctoPrint:     %s\n", b->version ?: "unknown");
        printf("Excludes:      ");
        if (!b->excludes || !b->excludes[0])
                printf("-");
        STRV_FOREACH(e, b->excludes)
                printf("%s%s", e == b->excludes ? "" : ", ", *e);
        printf("\nEntries:       %llu\n", (unsigned long long) b->entries);
        printf("Size:          %s compressed, %s uncompressed\n",
               format_bytes(s1, sizeof(s1), b->compressed_size), format_bytes(s2, sizeof(s2), b->uncompressed_size));

        if (b->n_folders > 0) {
                printf("\nContents of basedir/:\n");
                for (size_t k = 0; k < b->n_folders; k++)
                        if (strlen(folder_label(&b->folders[k])) > w)
                                w = strlen(folder_label(&b->folders[k]));
                for (size_t k = 0; k < b->n_folders; k++) {
                        const InspectFolder *f = &b->folders[k];
                        printf("  %-*s %10s  %llu %s\n", (int) w, folder_label(f), format_bytes(s1, sizeof(s1), f->size),
                               (unsigned long long) f->entries, f->entries == 1 ? "file" : "files");
                }
        }
        if (b->has_plugin_list)
                printf("\nPlugins:       %zu listed\n", b->n_plugins);
        else
                printf("\nPlugins:       none listed (no plugin_list.json)\n");
        for (size_t k = 0; k < b->n_plugins; k++)
                printf("  %s: %s%s%s%s\n", b->plugins[k].key, strempty(b->plugins[k].name),
                       b->plugins[k].url ? " <" : "", strempty(b->plugins[k].url), b->plugins[k].url ? ">" : "");
}

int cmd_inspect(Ctl *ctl, int argc, char *argv[]) {
        BackupInspection b = {};
        const char *arg;
        bool local;
        int r, fd = -1;

        arg = argv[1];
        ctl_set_doing(ctl, "inspect %s", arg);
        r = open_source(ctl, arg, &local, &fd);
        if (r != 0)
                return r;
        r = backup_inspect(fd, &b);
        close(fd);
        if (r < 0) {
                fprintf(stderr, "Cannot inspect %s: %s.\n", arg, strerror(-r));
                return EXIT_FAIL;
        }

        pager_open(ctl->pager);
        if (ctl->json) {
                json_object *o = inspection_json(arg, local, &b);
                ctl_json_print(o);
                json_object_put(o);
        } else
                print_inspection(arg, &b);
        /* The verdict after the pager has quit, where it stays visible. */
        pager_close();
        if (!backup_inspection_valid(&b) && !ctl->json)
                fprintf(stderr, "%s is not a valid OctoPrint backup: %s\n", arg, b.problems[0]);
        r = backup_inspection_valid(&b) ? 0 : EXIT_FAIL;
        backup_inspection_done(&b);
        return r;
}
