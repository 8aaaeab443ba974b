/* SPDX-License-Identifier: GPL-2.0-or-later */

/* opbackupctl: the unprivileged client of opbackupd. main() parses the command line (options.c), shows
 * help without the service, and runs the command (verbs.c). */

#include "agent.h"
#include "build-config.h"
#include "bus-client.h"
#include "help.h"
#include "options.h"
#include "pager.h"
#include "util.h"
#include "verbs.h"

static void help_main(void) {
        help_print_usage("COMMAND ...");
        putchar('\n');
        help_print_text("Back up and restore OctoPrint instances through the opbackup service.");
        printf("\nCommands:\n");
        for (size_t k = 0; k < n_verbs; k++)
                help_print_command(verbs[k].synopsis, verbs[k].summary);
        printf("\nOptions:\n");
        options_help_common();
        putchar('\n');
        help_print_text("Options go before or after the command. 'opbackupctl COMMAND --help' explains a "
                        "command and its own options.");
        putchar('\n');
        help_print_text("Exit status: 0 success, 1 failure, 2 usage, 3 not authorized, 4 no such backup, "
                        "instance or job, 5 busy. See opbackupctl(1).");
}

static void help_verb(const Verb *v) {
        help_print_usage(v->synopsis);
        putchar('\n');
        help_print_text(v->description);
        if (v->options) {
                printf("\nOptions:\n");
                options_help(v->options);
        }
        printf("\nOptions of every command:\n");
        options_help_common();
        putchar('\n');
        help_print_text("opbackupctl(1) describes the JSON output of --json and the exit status.");
}

int main(int argc, char *argv[]) {
        Ctl ctl = { .ask_password = true, .legend = true, .pager = true };
        CommandLine cl = {};
        int r;

        r = parse_command_line(&ctl, argc, argv, &cl);
        if (r < 0) {
                if (r == -ENOMEM)
                        fprintf(stderr, "Out of memory.\n");
                ctl_options_done(&ctl);
                return r == -ENOMEM ? EXIT_FAIL : EXIT_USAGE;
        }
        if (cl.version) {
                printf("opbackupctl %s\n", PACKAGE_VERSION);
                r = EXIT_OK;
                goto finish;
        }
        /* Help needs no service: neither "opbackupctl --help" nor "opbackupctl COMMAND --help". */
        if (cl.help) {
                pager_open(ctl.pager);
                if (cl.verb)
                        help_verb(cl.verb);
                else
                        help_main();
                r = EXIT_OK;
                goto finish;
        }

        /* The command connects when it first needs the service: its own checks come first, and inspect
         * FILE needs no service at all. */
        ctl.doing = cl.verb->doing;
        ctl.action = cl.verb->action;
        r = cl.verb->run(&ctl, cl.argc, cl.argv);
finish:
        pager_close();
        polkit_agent_close();
        sd_bus_flush_close_unref(ctl.bus);
        ctl_free_doing(&ctl);
        ctl_options_done(&ctl);
        command_line_done(&cl);
        return r;
}
