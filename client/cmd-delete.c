/* SPDX-License-Identifier: GPL-2.0-or-later */

/* opbackupctl delete NAME...: Instance.DeleteBackup for each name. All are tried; the exit code is the
 * first failure's. */

#include <getopt.h>

#include "ctl.h"
#include "util.h"

static void help(void) {
        printf("Usage: opbackupctl [OPTIONS] delete NAME...\n\n"
               "Delete backups of the instance (see 'opbackupctl list' for their names).\n\n"
               "  -h --help   Show this help\n");
}

static int parse_args(int argc, char *argv[]) {
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
        if (optind >= argc) {
                fprintf(stderr, "delete needs the name of at least one backup. See 'opbackupctl list'.\n");
                return -EXIT_USAGE;
        }
        return 1;
}

int cmd_delete(Ctl *ctl, int argc, char *argv[]) {
        _cleanup_free_ char *instance_path = NULL;
        int r, ret = 0;

        r = parse_args(argc, argv);
        if (r <= 0)
                return -r;
        r = ctl_instance_path(ctl, &instance_path);
        if (r != 0)
                return r;
        for (int k = optind; k < argc; k++) {
                r = ctl_call(ctl, instance_path, INSTANCE_INTERFACE, "DeleteBackup", NULL, "s", argv[k]);
                if (r != 0) {
                        if (ret == 0)
                                ret = r;
                        continue;
                }
                if (!ctl->quiet)
                        printf("Deleted %s.\n", argv[k]);
        }
        return ret;
}
