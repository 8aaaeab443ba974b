/* SPDX-License-Identifier: GPL-2.0-or-later */

/* GetUnknownPlugins and ClearUnknownPlugins: the plugins a restore could not reinstall, kept where
 * OctoPrint keeps them (<backup folder>/unknown_plugins_from_restore.json). Plugins installed since
 * then drop out of the list. */

#include <fcntl.h>

#include "folder/backup-folder.h"
#include "folder/backup-manage.h"
#include "instance/distinfo.h"
#include "instance/instance.h"
#include "log.h"
#include "plugins/unknown-plugins.h"
#include "util.h"
#include "worker/worker-method.h"
#include "worker/worker.h"

#define UNKNOWN_FILE_MAX (1U * 1024U * 1024U)
#define PLUGINS_TIMEOUT_SEC 60U

static bool installed(char *const *keys, const char *key) {
        return strv_contains(keys, key);
}

static int get_task(void *userdata, json_object **ret_json, int *ret_fd) {
        Instance *i = userdata;
        _cleanup_close_ int dir_fd = -1, fd = -1, site_fd = -1;
        _cleanup_free_ char *text = NULL, *site = NULL;
        _cleanup_strv_free_ char **keys = calloc(1, sizeof(char *));
        PluginInfo *have = NULL;
        size_t n_have = 0;
        json_object *list, *out = json_object_new_array();

        *ret_json = json_object_new_object();
        json_object_object_add(*ret_json, "plugins", out);
        if (backup_folder_open(i->backup_folder, &dir_fd) < 0)
                return 0;
        fd = openat(dir_fd, UNKNOWN_PLUGINS_FILE, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0 || read_full_fd(fd, UNKNOWN_FILE_MAX, &text, NULL) < 0)
                return 0;
        list = json_tokener_parse(text);
        if (!json_object_is_type(list, json_type_array)) {
                json_object_put(list);
                return 0;
        }
        if (keys && i->venv && venv_open_site_packages(i->venv, &site, &site_fd) >= 0 &&
            distinfo_plugin_list(site_fd, NULL, &have, &n_have) >= 0)
                for (size_t k = 0; k < n_have; k++)
                        (void) strv_extend(&keys, have[k].key);
        plugin_info_array_free(have, n_have);

        for (size_t k = 0; k < json_object_array_length(list); k++) {
                json_object *e = json_object_array_get_idx(list, k), *key, *name, *url, *t;

                if (!json_object_object_get_ex(e, "key", &key) || !json_object_is_type(key, json_type_string))
                        continue;
                if (installed(keys, json_object_get_string(key)))
                        continue;
                json_object_object_get_ex(e, "name", &name);
                json_object_object_get_ex(e, "url", &url);
                t = json_object_new_array();
                json_object_array_add(t, json_object_new_string(json_object_get_string(key)));
                json_object_array_add(t, json_object_new_string(
                                json_object_is_type(name, json_type_string) ? json_object_get_string(name) : ""));
                json_object_array_add(t, json_object_new_string(
                                json_object_is_type(url, json_type_string) ? json_object_get_string(url) : ""));
                json_object_array_add(out, t);
        }
        json_object_put(list);
        return 0;
}

static int reply_unknown_plugins(sd_bus_message *m, int r, WorkerReply *reply, void *userdata,
                                 sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *answer = NULL;
        json_object *list;

        if (r < 0)
                return r;
        r = worker_reply_error(reply, error);
        if (r < 0)
                return r;
        r = sd_bus_message_new_method_return(m, &answer);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(answer, 'a', "(sss)");
        if (r < 0)
                return r;
        if (json_object_object_get_ex(reply->json, "plugins", &list))
                for (size_t k = 0; k < json_object_array_length(list); k++) {
                        json_object *t = json_object_array_get_idx(list, k);
                        r = sd_bus_message_append(answer, "(sss)",
                                                  json_object_get_string(json_object_array_get_idx(t, 0)) ?: "",
                                                  json_object_get_string(json_object_array_get_idx(t, 1)) ?: "",
                                                  json_object_get_string(json_object_array_get_idx(t, 2)) ?: "");
                        if (r < 0)
                                return r;
                }
        r = sd_bus_message_close_container(answer);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, answer, NULL);
}

int method_get_unknown_plugins_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Instance *i = userdata;
        int r;

        r = check_instance_usable(i, error);
        if (r < 0)
                return r;
        return worker_method_start(m, i->uid, i->gid, "opbackup-plugins", PLUGINS_TIMEOUT_SEC, get_task, i,
                                   reply_unknown_plugins, NULL, NULL);
}

static int clear_task(void *userdata, json_object **ret_json, int *ret_fd) {
        Instance *i = userdata;
        _cleanup_close_ int dir_fd = -1;

        if (backup_folder_open(i->backup_folder, &dir_fd) >= 0 &&
            unlinkat(dir_fd, UNKNOWN_PLUGINS_FILE, 0) < 0 && errno != ENOENT) {
                *ret_json = worker_error("Cannot remove %s/%s: %s", i->backup_folder, UNKNOWN_PLUGINS_FILE,
                                         strerror(errno));
                return 0;
        }
        *ret_json = json_object_new_object();
        return 0;
}

static int reply_cleared(sd_bus_message *m, int r, WorkerReply *reply, void *userdata, sd_bus_error *error) {
        if (r < 0)
                return r;
        r = worker_reply_error(reply, error);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(m, "");
}

int method_clear_unknown_plugins_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Instance *i = userdata;
        int r;

        r = check_instance_usable(i, error);
        if (r < 0)
                return r;
        return worker_method_start(m, i->uid, i->gid, "opbackup-plugins", PLUGINS_TIMEOUT_SEC, clear_task, i,
                                   reply_cleared, NULL, NULL);
}
