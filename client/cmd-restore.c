/* SPDX-License-Identifier: GPL-2.0-or-later */

/* opbackupctl restore NAME|FILE: Instance.RestoreBackup or RestoreBackupFromFile, like OctoPrint's
 * `octoprint plugins backup:restore PATH` — but a failed restore never exits 0, and the log is streamed. */

#include <fcntl.h>
#include <json-c/json.h>
#include <libgen.h>

#include "bus-client.h"
#include "cmd-remotes.h"
#include "cmd-restore.h"
#include "job-wait.h"
#include "names.h"
#include "output.h"
#include "util.h"

typedef struct RestoreArgs {
        const char *what;
        const char *remote;             /* --remote: what names a backup there (or latest) */
        bool local;
        bool skip_plugins, ignore_plugin_errors, keep_previous, no_restart, yes;
} RestoreArgs;

static void restore_args(const Ctl *ctl, const char *what, RestoreArgs *ret) {
        *ret = (RestoreArgs) {
                .what = what,
                /* Like OctoPrint's backup:restore PATH: a path or an existing file is a file. */
                .local = strchr(what, '/') || access(what, F_OK) == 0,
                .skip_plugins = ctl->skip_plugins,
                .ignore_plugin_errors = ctl->ignore_plugin_errors,
                .keep_previous = ctl->keep_previous,
                .no_restart = ctl->no_restart,
                .yes = ctl->yes,
        };
}

static int get_basedir(Ctl *ctl, const char *path, char **ret) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_get_property_string(ctl->bus, BUS_NAME, path, INSTANCE_INTERFACE, "Basedir", &error, ret);
        return r < 0 ? ctl_report_error(ctl, "Get", &error, r) : 0;
}

/* On a terminal, a restore that replaces everything is confirmed first. */
static int confirm(const RestoreArgs *a, const char *basedir) {
        char answer[16] = "";

        if (a->yes || !isatty(STDIN_FILENO))
                return 0;
        fprintf(stderr, "This replaces the OctoPrint basedir %s with the contents of %s.\n"
                "Its backup folder, logs and the folders the backup excluded are kept. Continue? [y/N] ",
                basedir, a->what);
        if (!fgets(answer, sizeof(answer), stdin) || (answer[0] != 'y' && answer[0] != 'Y')) {
                fprintf(stderr, "Not restored.\n");
                return EXIT_FAIL;
        }
        return 0;
}

static int start_restore(Ctl *ctl, const char *path, const RestoreArgs *a, uint32_t *ret_id, char **ret_job) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *copy = NULL;
        const char *job, *base = NULL;
        int r;

        if (a->local) {
                fd = open(a->what, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                if (fd < 0)
                        return ctl_report_error(ctl, NULL, NULL, -errno);
                copy = strdup(a->what);
                if (copy && backup_name_is_valid(basename(copy)))
                        base = basename(copy);
        }
        r = sd_bus_message_new_method_call(ctl->bus, &m, BUS_NAME, path, INSTANCE_INTERFACE,
                                           a->local ? "RestoreBackupFromFile" : "RestoreBackup");
        if (r >= 0)
                r = a->local ? sd_bus_message_append(m, "h", fd) : sd_bus_message_append(m, "s", a->what);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0)
                r = sd_bus_message_append(m, "{sv}{sv}{sv}{sv}", "skip-plugins", "b", (int) a->skip_plugins,
                                          "ignore-plugin-errors", "b", (int) a->ignore_plugin_errors,
                                          "keep-previous", "b", (int) a->keep_previous,
                                          "restart", "b", (int) !a->no_restart);
        if (r >= 0 && base)
                r = sd_bus_message_append(m, "{sv}", "name", "s", base);
        if (r >= 0 && a->remote)
                r = sd_bus_message_append(m, "{sv}", "remote", "s", a->remote);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r < 0)
                return ctl_report_error(ctl, NULL, NULL, r);
        /* A file is copied into the backup folder before the call returns. */
        r = ctl_call_message(ctl, m, a->local ? 6ULL * 3600 * 1000000 : 0, &reply);
        if (r != 0)
                return r;
        r = sd_bus_message_read(reply, "uo", ret_id, &job);
        if (r < 0)
                return ctl_report_error(ctl, NULL, NULL, r);
        *ret_job = strdup(job);
        return *ret_job ? 0 : ctl_report_error(ctl, NULL, NULL, -ENOMEM);
}

static int read_strv_variant(sd_bus_message *m, json_object *into, const char *key) {
        _cleanup_strv_free_ char **l = NULL;
        json_object *a = json_object_new_array();
        int r;

        r = sd_bus_message_enter_container(m, 'v', "as");
        if (r >= 0)
                r = sd_bus_message_read_strv(m, &l);
        if (r >= 0)
                r = sd_bus_message_exit_container(m);
        STRV_FOREACH(s, l)
                json_object_array_add(a, json_object_new_string(*s));
        json_object_object_add(into, key, a);
        return r;
}

static int read_unknown(sd_bus_message *m, json_object *into) {
        json_object *a = json_object_new_array();
        const char *key, *name, *url;
        int r;

        json_object_object_add(into, "unknown_plugins", a);
        r = sd_bus_message_enter_container(m, 'v', "a(sss)");
        if (r >= 0)
                r = sd_bus_message_enter_container(m, 'a', "(sss)");
        while (r >= 0 && (r = sd_bus_message_read(m, "(sss)", &key, &name, &url)) > 0) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "key", json_object_new_string(key));
                json_object_object_add(o, "name", json_object_new_string(name));
                json_object_object_add(o, "url", isempty(url) ? NULL : json_object_new_string(url));
                json_object_array_add(a, o);
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(m);
        if (r >= 0)
                r = sd_bus_message_exit_container(m);
        return r;
}

static int restore_detail(sd_bus_message *m, const char *key, const char *contents, void *userdata) {
        json_object *into = userdata;
        int r;

        if (streq(key, "name") && streq(contents, "s")) {
                const char *name;

                /* restore --remote: the name the fetched backup got. */
                r = sd_bus_message_read(m, "v", "s", &name);
                if (r >= 0)
                        json_object_object_add(into, "backup", json_object_new_string(name));
        } else if (streq(key, "unknown-plugins"))
                r = read_unknown(m, into);
        else if (streq(key, "installed-plugins"))
                r = read_strv_variant(m, into, "installed_plugins");
        else if (streq(key, "failed-plugins"))
                r = read_strv_variant(m, into, "failed_plugins");
        else
                return 0;
        return r < 0 ? r : 1;
}

static int read_details(sd_bus_message *m, json_object *into) {
        json_object_object_add(into, "unknown_plugins", json_object_new_array());
        json_object_object_add(into, "installed_plugins", json_object_new_array());
        json_object_object_add(into, "failed_plugins", json_object_new_array());
        return ctl_read_dict(m, restore_detail, into);
}

static void print_result(json_object *o) {
        json_object *unknown = json_object_object_get(o, "unknown_plugins");
        json_object *installed = json_object_object_get(o, "installed_plugins");
        size_t n = json_object_array_length(unknown);

        printf("Restored %s.\n", json_object_get_string(json_object_object_get(o, "backup")));
        for (size_t k = 0; k < json_object_array_length(installed); k++)
                printf("Reinstalled plugin %s.\n", json_object_get_string(json_object_array_get_idx(installed, k)));
        if (n == 0)
                return;
        /* What OctoPrint shows after a restore: the plugins to reinstall by hand, with their homepages. */
        printf("\nThese plugins could not be reinstalled automatically; install them by hand:\n");
        for (size_t k = 0; k < n; k++) {
                json_object *p = json_object_array_get_idx(unknown, k), *url = json_object_object_get(p, "url");
                printf("  %s%s%s\n", json_object_get_string(json_object_object_get(p, "name")),
                       url ? ": " : "", url ? json_object_get_string(url) : "");
        }
        printf("(See them again with 'opbackupctl unknown-plugins'.)\n");
}

int cmd_restore(Ctl *ctl, int argc, char *argv[]) {
        _cleanup_(job_watch_freep) JobWatch *watch = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *removed = NULL;
        _cleanup_free_ char *path = NULL, *job = NULL, *basedir = NULL;
        RestoreArgs a;
        json_object *o;
        uint32_t id;
        int r;

        const char *remote;

        restore_args(ctl, argv[1], &a);
        ctl_set_doing(ctl, "restore %s", a.what);

        r = ctl_one_remote(ctl, &remote);
        /* --remote: the service fetches the backup (or the newest, "latest") into the backup folder as the
         * first stage of the restore job. */
        if (remote) {
                a.remote = remote;
                a.local = false;
        }
        if (r == 0)
                r = ctl_instance_path(ctl, &path);
        if (r == 0)
                r = get_basedir(ctl, path, &basedir);
        if (r == 0)
                r = confirm(&a, basedir);
        if (r == 0)
                r = job_watch_new(ctl, "restore", true, &watch);
        if (r == 0)
                r = start_restore(ctl, path, &a, &id, &job);
        if (r == 0)
                r = job_watch_wait(watch, id, job, &removed);
        if (r != 0 || !removed)
                return r;

        o = json_object_new_object();
        json_object_object_add(o, "backup", json_object_new_string(a.what));
        json_object_object_add(o, "basedir", json_object_new_string(basedir));
        r = read_details(removed, o);
        if (r < 0) {
                json_object_put(o);
                return ctl_report_error(ctl, NULL, NULL, r);
        }
        if (ctl->json)
                ctl_json_print(o);
        else
                print_result(o);
        json_object_put(o);
        return 0;
}
