/* SPDX-License-Identifier: GPL-2.0-or-later */

/* Bus methods answered by workers (worker-method.h), the way bus-polkit.c answers after polkit: the
 * handler returns 1 and the reply goes out from the event loop later. */

#include "log.h"
#include "util.h"
#include "worker/worker-method.h"

typedef struct WorkerMethod {
        sd_bus_message *request;
        Worker *worker;
        worker_method_reply_fn reply;
        void *userdata;
        void (*free_userdata)(void *);
} WorkerMethod;

static WorkerMethod *worker_method_free(WorkerMethod *wm) {
        if (!wm)
                return NULL;
        worker_free(wm->worker);
        sd_bus_message_unref(wm->request);
        if (wm->free_userdata)
                wm->free_userdata(wm->userdata);
        free(wm);
        return NULL;
}

int worker_reply_error(const WorkerReply *reply, sd_bus_error *error) {
        json_object *msg, *name;

        if (!json_object_object_get_ex(reply->json, "error", &msg))
                return 0;
        if (!json_object_object_get_ex(reply->json, "error_name", &name))
                return sd_bus_error_set(error, SD_BUS_ERROR_FAILED, json_object_get_string(msg));
        return sd_bus_error_set(error, json_object_get_string(name), json_object_get_string(msg));
}

static void on_worker_done(int r, WorkerReply *reply, void *userdata) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        WorkerMethod *wm = userdata;

        r = wm->reply(wm->request, r, reply, wm->userdata, &error);
        if (sd_bus_error_is_set(&error))
                r = sd_bus_reply_method_error(wm->request, &error);
        else if (r < 0)
                r = sd_bus_reply_method_errno(wm->request, r, NULL);
        if (r < 0)
                log_debug("Failed to reply to %s(): %d", strempty(sd_bus_message_get_member(wm->request)), r);
        worker_method_free(wm);
}

int worker_method_start(sd_bus_message *m, uid_t uid, gid_t gid, const char *name, unsigned timeout_sec,
                        worker_task_fn task, void *task_userdata, worker_method_reply_fn reply, void *userdata,
                        void (*free_userdata)(void *)) {
        WorkerMethod *wm;
        int r;

        wm = calloc(1, sizeof(*wm));
        if (!wm) {
                if (free_userdata)
                        free_userdata(userdata);
                return -ENOMEM;
        }
        *wm = (WorkerMethod) {
                .request = sd_bus_message_ref(m),
                .reply = reply,
                .userdata = userdata,
                .free_userdata = free_userdata,
        };
        r = worker_start(sd_bus_get_event(sd_bus_message_get_bus(m)), uid, gid, name, timeout_sec, task,
                         task_userdata, -1, on_worker_done, wm, &wm->worker);
        if (r < 0) {
                worker_method_free(wm);
                return r;
        }
        return 1;
}
