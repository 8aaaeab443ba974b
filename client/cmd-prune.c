/* SPDX-License-Identifier: GPL-2.0-or-later */

/* opbackupctl prune --keep N [--match GLOB]: Instance.PruneBackups, keeping the newest N backups whose name
 * matches GLOB. --keep is required: a forgotten number must not mean "delete everything". */

#include <getopt.h>
#include <json-c/json.h>

#include "ctl.h"
#include "util.h"

typedef struct PruneArgs {
        uint32_t keep;
        bool keep_set;
        const char *match;
} PruneArgs;

static void help(void) {
        printf("Usage: opbackupctl [OPTIONS] prune --keep N [--match GLOB]\n\n"
               "Delete all but the newest N backups (of those whose name matches GLOB).\n\n"
               "  -k --keep N        How many backups to keep (required; 0 deletes all that match)\n"
               "  -m --match GLOB    Only backups whose name matches, e.g. 'octoprint-backup-*'\n"
               "     --json          Machine-readable output\n"
               "  -h --help          Show this help\n");
}

static int parse_args(Ctl *ctl, int argc, char *argv[], PruneArgs *a) {
        enum { ARG_JSON = 0x100 };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "keep", required_argument, NULL, 'k' },
                { "match", required_argument, NULL, 'm' },
                { "json", no_argument, NULL, ARG_JSON },
                {}
        };
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "hk:m:", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case 'k':
                        if (parse_uint32(optarg, &a->keep) < 0) {
                                fprintf(stderr, "--keep needs a number of backups, not '%s'.\n", optarg);
                                return -EXIT_USAGE;
                        }
                        a->keep_set = true;
                        break;
                case 'm':
                        a->match = optarg;
                        break;
                case ARG_JSON:
                        ctl->json = true;
                        break;
                default:
                        return -EXIT_USAGE;
                }
        if (optind < argc) {
                fprintf(stderr, "prune takes no arguments (unexpected '%s').\n", argv[optind]);
                return -EXIT_USAGE;
        }
        if (!a->keep_set) {
                fprintf(stderr, "prune needs --keep N: how many of the newest backups to keep.\n");
                return -EXIT_USAGE;
        }
        return 1;
}

int cmd_prune(Ctl *ctl, int argc, char *argv[]) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *instance_path = NULL;
        _cleanup_strv_free_ char **deleted = NULL;
        PruneArgs a = {};
        int r;

        r = parse_args(ctl, argc, argv, &a);
        if (r <= 0)
                return -r;
        r = ctl_instance_path(ctl, &instance_path);
        if (r != 0)
                return r;
        r = ctl_call(ctl, instance_path, INSTANCE_INTERFACE, "PruneBackups", &reply, "us", a.keep, strempty(a.match));
        if (r != 0)
                return r;
        r = sd_bus_message_read_strv(reply, &deleted);
        if (r < 0)
                return ctl_report_error("PruneBackups", NULL, r);

        if (ctl->json) {
                json_object *o = json_object_new_array();
                STRV_FOREACH(d, deleted)
                        json_object_array_add(o, json_object_new_string(*d));
                ctl_json_print(o);
                json_object_put(o);
        } else if (!deleted || !deleted[0]) {
                if (!ctl->quiet)
                        printf("Nothing to prune.\n");
        } else
                STRV_FOREACH(d, deleted)
                        printf("Deleted %s.\n", *d);
        return 0;
}
