/* SPDX-License-Identifier: GPL-2.0-or-later */

/* opbackupctl: the unprivileged client of opbackupd. */

#include <getopt.h>

#include "build-config.h"
#include "ctl.h"
#include "util.h"

typedef struct Command {
        const char *name;
        int (*run)(Ctl *ctl, int argc, char *argv[]);
        const char *synopsis;
} Command;

static const Command commands[] = {
        { "status", cmd_status, "status                         instances, versions, restore support, jobs" },
        { "list", cmd_list, "list                           backups: name, date, size, version, excludes" },
        { "backup", cmd_backup, "backup [--exclude ID]... [--name NAME] [--when-idle] [--no-wait]" },
        { "restore", cmd_restore, "restore NAME|FILE [--skip-plugins] [--ignore-plugin-errors] [--keep-previous] [--no-restart] [-y]" },
        { "delete", cmd_delete, "delete NAME...                 delete backups" },
        { "export", cmd_export, "export NAME [-o FILE|-]        copy a backup out (stdout with -o -)" },
        { "import", cmd_import, "import FILE                    copy a zip into the backup folder" },
        { "inspect", cmd_inspect, "inspect NAME|FILE              metadata, plugin list, entry count, sizes, validity" },
        { "prune", cmd_prune, "prune --keep N [--match GLOB]  delete all but the newest N backups" },
        { "unknown-plugins", cmd_unknown_plugins, "unknown-plugins [--clear]      plugins a restore could not reinstall" },
        { "jobs", cmd_jobs, "jobs                           running and queued jobs" },
        { "cancel", cmd_cancel, "cancel ID                      cancel a job" },
        { "monitor", cmd_monitor, "monitor                        print the service's signals as they come" },
        { "scheduled-backup", cmd_scheduled_backup, "scheduled-backup               back up and prune as the timer does" },
};

static void help(void) {
        printf("Usage: opbackupctl [OPTIONS] COMMAND ...\n\n"
               "Back up and restore OctoPrint instances through the opbackup service.\n\n"
               "Commands:\n");
        for (size_t k = 0; k < ELEMENTSOF(commands); k++)
                printf("  %s\n", commands[k].synopsis);
        printf("\nOptions:\n"
               "  -i --instance NAME     The instance to act on (needed when there are several)\n"
               "     --json             Machine-readable output\n"
               "     --no-ask-password  Do not ask for a password for authorization\n"
               "  -q --quiet            Print only what was asked for\n"
               "  -H --host [USER@]HOST Talk to the service on HOST (over ssh)\n"
               "  -h --help             Show this help\n"
               "     --version          Show the version\n\n"
               "Exit codes: 0 success, 1 failure, 2 usage, 3 not authorized, 4 no such backup or instance,\n"
               "5 busy. See opbackupctl(1).\n");
}

static int parse_global(Ctl *ctl, int argc, char *argv[]) {
        enum { ARG_VERSION = 0x100, ARG_JSON, ARG_NO_ASK_PASSWORD };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "instance", required_argument, NULL, 'i' },
                { "json", no_argument, NULL, ARG_JSON },
                { "no-ask-password", no_argument, NULL, ARG_NO_ASK_PASSWORD },
                { "quiet", no_argument, NULL, 'q' },
                { "host", required_argument, NULL, 'H' },
                {}
        };
        int c;

        /* "+": stop at the command, whose own options follow it. */
        while ((c = getopt_long(argc, argv, "+hi:qH:", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("opbackupctl %s\n", PACKAGE_VERSION);
                        return 0;
                case 'i':
                        ctl->instance = optarg;
                        break;
                case ARG_JSON:
                        ctl->json = true;
                        break;
                case ARG_NO_ASK_PASSWORD:
                        ctl->ask_password = false;
                        break;
                case 'q':
                        ctl->quiet = true;
                        break;
                case 'H':
                        ctl->host = optarg;
                        break;
                default:
                        return -EXIT_USAGE;
                }
        return 1;
}

static bool wants_help(int argc, char *argv[]) {
        for (int k = 1; k < argc; k++) {
                if (streq(argv[k], "--"))
                        break;
                if (streq(argv[k], "-h") || streq(argv[k], "--help"))
                        return true;
        }
        return false;
}

int main(int argc, char *argv[]) {
        Ctl ctl = { .ask_password = true };
        const Command *cmd = NULL;
        int r;

        r = parse_global(&ctl, argc, argv);
        if (r <= 0)
                return -r;
        if (optind >= argc) {
                fprintf(stderr, "No command given. See 'opbackupctl --help'.\n");
                return EXIT_USAGE;
        }
        for (size_t k = 0; k < ELEMENTSOF(commands); k++)
                if (streq(commands[k].name, argv[optind]))
                        cmd = &commands[k];
        if (!cmd) {
                fprintf(stderr, "Unknown command '%s'. See 'opbackupctl --help'.\n", argv[optind]);
                return EXIT_USAGE;
        }

        /* "COMMAND --help" needs no service: only connect when the command will talk to it. */
        if (!wants_help(argc - optind, argv + optind)) {
                r = ctl_connect(&ctl);
                if (r != 0)
                        return r;
        }
        /* Commands parse their own options with getopt from the command name on. */
        r = cmd->run(&ctl, argc - optind, argv + optind);
        polkit_agent_close();
        sd_bus_flush_close_unref(ctl.bus);
        return r;
}
