/* SPDX-License-Identifier: GPL-2.0-or-later */

/* opbackupctl upload NAME [--remote R]...: Instance.UploadBackup, waiting for the job. Prints each remote's
 * result; --json: {"name": s, "uploads": [{"remote": s, "result": "done"|"failed", "error": s}, ...]}.
 * Exits 1 when an upload failed. */

#include <json-c/json.h>

#include "bus-client.h"
#include "cmd-upload.h"
#include "job-wait.h"
#include "output.h"
#include "util.h"

static int read_uploads(sd_bus_message *m, const char *key, const char *contents, void *userdata) {
        json_object *a = userdata;
        const char *remote, *result, *error;
        int r;

        if (!streq(key, "uploads") || !streq(contents, "a(sss)"))
                return 0;
        r = sd_bus_message_enter_container(m, 'v', "a(sss)");
        if (r >= 0)
                r = sd_bus_message_enter_container(m, 'a', "(sss)");
        while (r >= 0 && (r = sd_bus_message_read(m, "(sss)", &remote, &result, &error)) > 0) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "remote", json_object_new_string(remote));
                json_object_object_add(o, "result", json_object_new_string(result));
                json_object_object_add(o, "error", json_object_new_string(error));
                json_object_array_add(a, o);
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(m);
        if (r >= 0)
                r = sd_bus_message_exit_container(m);
        return r < 0 ? r : 1;
}

int upload_backup(Ctl *ctl, const char *path, const char *name, char *const *remotes, json_object **ret_uploads) {
        _cleanup_(job_watch_freep) JobWatch *watch = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL, *removed = NULL, *call = NULL;
        json_object *uploads;
        const char *job;
        uint32_t id;
        int r;

        *ret_uploads = NULL;
        r = job_watch_new(ctl, "upload", false, &watch);
        if (r != 0)
                return r;
        r = sd_bus_message_new_method_call(ctl->bus, &call, BUS_NAME, path, INSTANCE_INTERFACE, "UploadBackup");
        if (r >= 0)
                r = sd_bus_message_append(call, "s", name);
        if (r >= 0)
                r = sd_bus_message_append_strv(call, (char **) remotes);
        if (r < 0)
                return ctl_report_error(ctl, NULL, NULL, r);
        r = ctl_call_message(ctl, call, 0, &reply);
        if (r != 0)
                return r;
        r = sd_bus_message_read(reply, "uo", &id, &job);
        if (r < 0)
                return ctl_report_error(ctl, NULL, NULL, r);
        r = job_watch_wait(watch, id, job, &removed);
        /* A failed upload job is reported by job_watch_wait(); its details say which copy failed. */
        if (!removed)
                return r ? r : EXIT_FAIL;
        uploads = json_object_new_array();
        r = ctl_read_dict(removed, read_uploads, uploads);
        if (r < 0) {
                json_object_put(uploads);
                return ctl_report_error(ctl, NULL, NULL, r);
        }
        *ret_uploads = uploads;
        return 0;
}

int cmd_upload(Ctl *ctl, int argc, char *argv[]) {
        _cleanup_free_ char *path = NULL;
        json_object *o, *uploads = NULL;
        bool failed = false;
        int r;

        ctl_set_doing(ctl, "upload %s", argv[1]);
        r = ctl_instance_path(ctl, &path);
        if (r == 0)
                r = upload_backup(ctl, path, argv[1], ctl->remotes, &uploads);
        if (!uploads)
                return r;
        for (size_t k = 0; k < json_object_array_length(uploads); k++) {
                json_object *u = json_object_array_get_idx(uploads, k), *v;
                const char *remote, *result, *error;

                json_object_object_get_ex(u, "remote", &v);
                remote = json_object_get_string(v);
                json_object_object_get_ex(u, "result", &v);
                result = json_object_get_string(v);
                json_object_object_get_ex(u, "error", &v);
                error = json_object_get_string(v);
                failed = failed || !streq(result, "done");
                if (!ctl->json && streq(result, "done") && !ctl->quiet)
                        printf("Uploaded %s to %s.\n", argv[1], remote);
                else if (!ctl->json && !streq(result, "done"))
                        fprintf(stderr, "Upload of %s to %s failed: %s\n", argv[1], remote, error);
        }
        if (ctl->json) {
                o = json_object_new_object();
                json_object_object_add(o, "name", json_object_new_string(argv[1]));
                json_object_object_add(o, "uploads", json_object_get(uploads));
                ctl_json_print(o);
                json_object_put(o);
        }
        json_object_put(uploads);
        return failed ? EXIT_FAIL : EXIT_OK;
}
