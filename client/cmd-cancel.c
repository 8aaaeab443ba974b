/* SPDX-License-Identifier: GPL-2.0-or-later */

/* opbackupctl cancel ID: Job.Cancel on /org/opbackup/backup1/job/ID. */

#include <json-c/json.h>

#include "bus-client.h"
#include "cmd-cancel.h"
#include "errors.h"
#include "options.h"
#include "output.h"
#include "util.h"

int cmd_cancel(Ctl *ctl, int argc, char *argv[]) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        char path[sizeof(OBJECT_JOB_PREFIX "/") + 16];
        uint32_t id;
        int r;

        if (parse_uint32(argv[1], &id) < 0 || id == 0) {
                fprintf(stderr, "'%s' is not a job ID: job IDs are positive numbers (see 'opbackupctl jobs').\n",
                        argv[1]);
                print_see_help(argv[0]);
                return EXIT_USAGE;
        }
        ctl_set_doing(ctl, "cancel job %" PRIu32, id);
        snprintf(path, sizeof(path), "%s/%" PRIu32, OBJECT_JOB_PREFIX, id);

        r = ctl_connect(ctl);
        if (r != 0)
                return r;
        r = sd_bus_message_new_method_call(ctl->bus, &m, BUS_NAME, path, JOB_INTERFACE, "Cancel");
        if (r < 0)
                return ctl_report_error(ctl, NULL, NULL, r);
        r = ctl_call_message_full(ctl, m, 0, &error, NULL);
        if (r < 0) {
                /* A job that is gone has no object at all: say so in the words of NoSuchJob. */
                if (sd_bus_error_has_name(&error, SD_BUS_ERROR_UNKNOWN_OBJECT) ||
                    sd_bus_error_has_name(&error, SD_BUS_ERROR_UNKNOWN_METHOD) ||
                    sd_bus_error_has_name(&error, SD_BUS_ERROR_UNKNOWN_INTERFACE) ||
                    sd_bus_error_has_name(&error, BUS_ERROR_NO_SUCH_JOB)) {
                        fprintf(stderr, "Cannot cancel job %" PRIu32 ": no such job is running or queued (see "
                                "'opbackupctl jobs').\n", id);
                        return EXIT_NOT_FOUND;
                }
                return ctl_report_error(ctl, "Cancel", &error, r);
        }
        if (ctl->json) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "id", json_object_new_int64(id));
                json_object_object_add(o, "job", json_object_new_string(path));
                ctl_json_print(o);
                json_object_put(o);
        } else if (!ctl->quiet)
                printf("Asked job %" PRIu32 " to cancel.\n", id);
        return 0;
}
