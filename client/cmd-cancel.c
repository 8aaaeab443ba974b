/* SPDX-License-Identifier: GPL-2.0-or-later */

/* opbackupctl cancel ID: Job.Cancel on /org/opbackup/backup1/job/ID. */

#include <getopt.h>

#include "ctl.h"
#include "errors.h"
#include "util.h"

static void help(void) {
        printf("Usage: opbackupctl [OPTIONS] cancel ID\n\n"
               "Cancel a running or queued job (see 'opbackupctl jobs' for the IDs).\n\n"
               "  -h --help   Show this help\n");
}

static int parse_args(int argc, char *argv[], uint32_t *ret_id) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                {}
        };
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                default:
                        return -EXIT_USAGE;
                }
        if (argc - optind != 1) {
                fprintf(stderr, "cancel needs exactly one job ID. See 'opbackupctl jobs'.\n");
                return -EXIT_USAGE;
        }
        if (parse_uint32(argv[optind], ret_id) < 0 || *ret_id == 0) {
                fprintf(stderr, "'%s' is not a job ID: job IDs are positive numbers (see 'opbackupctl jobs').\n",
                        argv[optind]);
                return -EXIT_USAGE;
        }
        return 1;
}

int cmd_cancel(Ctl *ctl, int argc, char *argv[]) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        char path[sizeof(OBJECT_ROOT "/job/") + 16];
        uint32_t id;
        int r;

        r = parse_args(argc, argv, &id);
        if (r <= 0)
                return -r;
        snprintf(path, sizeof(path), "%s/job/%" PRIu32, OBJECT_ROOT, id);

        r = sd_bus_message_new_method_call(ctl->bus, &m, BUS_NAME, path, JOB_INTERFACE, "Cancel");
        if (r < 0)
                return ctl_report_error("Cancel", NULL, r);
        r = sd_bus_call(ctl->bus, m, ctl->ask_password ? 5ULL * 60 * 1000000 : 0, &error, NULL);
        if (r < 0) {
                /* A job that is gone has no object at all: say so in the words of NoSuchJob. */
                if (sd_bus_error_has_name(&error, SD_BUS_ERROR_UNKNOWN_OBJECT) ||
                    sd_bus_error_has_name(&error, SD_BUS_ERROR_UNKNOWN_METHOD) ||
                    sd_bus_error_has_name(&error, SD_BUS_ERROR_UNKNOWN_INTERFACE) ||
                    sd_bus_error_has_name(&error, BUS_ERROR_NO_SUCH_JOB)) {
                        fprintf(stderr, "No job %" PRIu32 " is running or queued (see 'opbackupctl jobs').\n", id);
                        return EXIT_NOT_FOUND;
                }
                return ctl_report_error("Cancel", &error, r);
        }
        if (!ctl->quiet)
                printf("Asked job %" PRIu32 " to cancel.\n", id);
        return 0;
}
