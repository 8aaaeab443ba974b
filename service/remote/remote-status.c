/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Instance.RemoteStatus across the daemon's idle exits (remote-status.h). */

#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <sys/stat.h>

#include "build-config.h"
#include "daemon/daemon-state.h"
#include "instance/instance.h"
#include "log.h"
#include "names.h"
#include "remote/remote-config.h"
#include "remote/remote-status.h"
#include "util.h"

#define STATUS_FILE "remote-status.json"
#define STATUS_FILE_MAX (1024U * 1024U)
#define STATUS_ERROR_MAX 4096U

static const char *str_of(json_object *o, const char *key) {
        json_object *v;

        return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string) ?
                json_object_get_string(v) : NULL;
}

void remote_status_load(Daemon *d) {
        _cleanup_free_ char *path = NULL, *data = NULL;
        _cleanup_close_ int fd = -1;
        json_object *root, *list;
        struct stat st;
        size_t size;
        int r;

        if (asprintf(&path, "%s/" STATUS_FILE, state_directory()) < 0) {
                log_oom();
                return;
        }
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
        if (fd < 0) {
                if (errno != ENOENT)
                        log_warning("Cannot read %s: %m; the last uploads are not known.", path);
                return;
        }
        /* Root's own file: anything else was not written by this daemon. */
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & 0077)) {
                log_warning("%s is not a regular file of root's with mode 0600, ignoring it.", path);
                return;
        }
        r = read_full_fd(fd, STATUS_FILE_MAX, &data, &size);
        if (r < 0) {
                log_warning_errno(r, "Cannot read %s: %m", path);
                return;
        }
        root = json_tokener_parse(data);
        if (!root || !json_object_is_type(root, json_type_object)) {
                log_warning("%s is not a JSON object, ignoring it.", path);
                json_object_put(root);
                return;
        }
        for (size_t k = 0; k < d->n_instances; k++) {
                Instance *i = d->instances[k];

                if (!json_object_object_get_ex(root, i->name, &list) || !json_object_is_type(list, json_type_array))
                        continue;
                for (size_t n = 0; n < json_object_array_length(list) && n < REMOTES_MAX; n++) {
                        json_object *e = json_object_array_get_idx(list, n), *t;
                        const char *remote = str_of(e, "remote"), *name = str_of(e, "backup"),
                                *result = str_of(e, "result"), *error = str_of(e, "error");

                        if (!remote || !instance_name_is_valid(remote) || !name || !backup_name_is_valid(name) ||
                            !result || (!streq(result, "done") && !streq(result, "failed")) || !error ||
                            strlen(error) > STATUS_ERROR_MAX || !json_object_object_get_ex(e, "time", &t) ||
                            !json_object_is_type(t, json_type_int))
                                continue;
                        if (instance_set_remote_status(i, remote, name, json_object_get_uint64(t), result, error) < 0) {
                                log_oom();
                                break;
                        }
                }
        }
        json_object_put(root);
}

void remote_status_save(Daemon *d) {
        _cleanup_free_ char *path = NULL, *temp = NULL;
        json_object *root = json_object_new_object();
        const char *dir = state_directory(), *s;
        _cleanup_close_ int fd = -1;
        int r;

        if (!root || asprintf(&path, "%s/" STATUS_FILE, dir) < 0 || asprintf(&temp, "%s/." STATUS_FILE ".new", dir) < 0) {
                json_object_put(root);
                log_oom();
                return;
        }
        for (size_t k = 0; k < d->n_instances; k++) {
                Instance *i = d->instances[k];
                json_object *list = json_object_new_array();

                for (size_t n = 0; n < i->n_remote_status; n++) {
                        const InstanceRemoteStatus *rs = &i->remote_status[n];
                        json_object *e = json_object_new_object();

                        json_object_object_add(e, "remote", json_object_new_string(rs->remote));
                        json_object_object_add(e, "backup", json_object_new_string(rs->name));
                        json_object_object_add(e, "time", json_object_new_uint64(rs->time_usec));
                        json_object_object_add(e, "result", json_object_new_string(rs->result));
                        json_object_object_add(e, "error", json_object_new_string(rs->error));
                        json_object_array_add(list, e);
                }
                json_object_object_add(root, i->name, list);
        }
        s = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN);
        /* The folder is made by systemd (StateDirectory=); by hand, for root alone. */
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                r = -errno;
        else {
                (void) unlink(temp);
                fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
                /* No fsync(): it would wait for the journal to commit whatever else is being written (an upload's
                 * copy on a local server, a backup), and a file lost in a crash only forgets the last results. */
                r = fd < 0 ? -errno : write_all(fd, s, strlen(s));
                if (r >= 0 && rename(temp, path) < 0)
                        r = -errno;
                if (r < 0 && fd >= 0)
                        (void) unlink(temp);
        }
        if (r < 0)
                log_warning_errno(r, "Cannot write %s: %m; the last uploads will not be known after the daemon "
                                  "exits.", path);
        json_object_put(root);
}
