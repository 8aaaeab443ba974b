/* SPDX-License-Identifier: GPL-2.0-or-later */

/* opbackupctl fetch --remote R NAME|latest: Instance.FetchRemoteBackup, waiting for the job. --json:
 * {"remote": s, "remote_name": s, "name": s} (name: where it was stored in the backup folder). */

#include <json-c/json.h>

#include "bus-client.h"
#include "cmd-fetch.h"
#include "cmd-remotes.h"
#include "job-wait.h"
#include "output.h"
#include "util.h"

/* The newest backup on the remote: by modification time, then by name (generated names sort by date). */
static int remote_latest(Ctl *ctl, const char *path, const char *remote, char **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *best = NULL;
        int64_t best_mtime = INT64_MIN, mtime;
        const char *name;
        uint64_t size;
        int r;

        r = ctl_call(ctl, path, INSTANCE_INTERFACE, "ListRemoteBackups", &reply, "s", remote);
        if (r != 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', "(stx)");
        while (r >= 0 && (r = sd_bus_message_read(reply, "(stx)", &name, &size, &mtime)) > 0)
                if (!best || mtime > best_mtime || (mtime == best_mtime && strcmp(name, best) > 0)) {
                        best_mtime = mtime;
                        if (free_and_strdup(&best, name) < 0)
                                r = -ENOMEM;
                }
        if (r < 0)
                return ctl_report_error(ctl, NULL, NULL, r);
        if (!best) {
                fprintf(stderr, "Remote %s has no backups of this instance.\n", remote);
                return EXIT_NOT_FOUND;
        }
        *ret = TAKE_PTR(best);
        return 0;
}

static int read_stored(sd_bus_message *m, const char *key, const char *contents, void *userdata) {
        const char *s;
        int r;

        if (!streq(key, "name") || !streq(contents, "s"))
                return 0;
        r = sd_bus_message_read(m, "v", "s", &s);
        if (r < 0)
                return r;
        return free_and_strdup(userdata, s) < 0 ? -ENOMEM : 1;
}

int fetch_remote_backup(Ctl *ctl, const char *path, const char *remote, const char *name, char **ret_stored) {
        _cleanup_(job_watch_freep) JobWatch *watch = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL, *removed = NULL;
        _cleanup_free_ char *latest = NULL, *stored = NULL;
        const char *job;
        uint32_t id;
        int r;

        if (streq(name, "latest")) {
                r = remote_latest(ctl, path, remote, &latest);
                if (r != 0)
                        return r;
                name = latest;
                if (!ctl->quiet && !ctl->json)
                        fprintf(stderr, "The newest backup on %s is %s.\n", remote, name);
        }
        r = job_watch_new(ctl, "fetch", false, &watch);
        if (r != 0)
                return r;
        r = ctl_call(ctl, path, INSTANCE_INTERFACE, "FetchRemoteBackup", &reply, "ss", remote, name);
        if (r != 0)
                return r;
        r = sd_bus_message_read(reply, "uo", &id, &job);
        if (r < 0)
                return ctl_report_error(ctl, NULL, NULL, r);
        r = job_watch_wait(watch, id, job, &removed);
        if (r != 0 || !removed)
                return r ? r : EXIT_FAIL;
        r = ctl_read_dict(removed, read_stored, &stored);
        if (r < 0 || !stored)
                return ctl_report_error(ctl, NULL, NULL, r < 0 ? r : -EBADMSG);
        *ret_stored = TAKE_PTR(stored);
        return 0;
}

int cmd_fetch(Ctl *ctl, int argc, char *argv[]) {
        _cleanup_free_ char *path = NULL, *stored = NULL;
        const char *remote;
        int r;

        ctl_set_doing(ctl, "fetch %s", argv[1]);
        r = ctl_one_remote(ctl, &remote);
        if (r == 0)
                r = ctl_instance_path(ctl, &path);
        if (r == 0)
                r = fetch_remote_backup(ctl, path, remote, argv[1], &stored);
        if (r != 0)
                return r;
        if (ctl->json) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "remote", json_object_new_string(remote));
                json_object_object_add(o, "remote_name", json_object_new_string(argv[1]));
                json_object_object_add(o, "name", json_object_new_string(stored));
                ctl_json_print(o);
                json_object_put(o);
        } else if (ctl->quiet)
                printf("%s\n", stored);
        else
                printf("Fetched %s from %s into the backup folder as %s.\n", argv[1], remote, stored);
        return 0;
}
