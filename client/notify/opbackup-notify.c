/* SPDX-License-Identifier: GPL-2.0-or-later */

/* opbackup-notify: desktop notifications of OctoPrint backups and restores for the person of this session
 * (opbackup-notify(1)). A user unit (opbackup-notify.service) or the desktop's autostart runs it. */

#include <getopt.h>
#include <signal.h>

#include "build-config.h"
#include "bus-names.h"
#include "log.h"
#include "notifier.h"
#include "util.h"

static void help(void) {
        printf("Usage: opbackup-notify [OPTIONS]\n\n"
               "Shows desktop notifications when OctoPrint backups are made, fail or are uploaded, and when\n"
               "restores end, for the instances this user may access (the opbackup service, %s).\n\n"
               "Options:\n"
               "  -v, --verbose   log what it receives and shows (debug messages)\n"
               "  -h, --help      show this help\n"
               "      --version   show the version\n\n"
               "See opbackup-notify(1).\n", BUS_NAME);
}

/* 1 to run, 0 to exit successfully (--help, --version), -EINVAL on bad usage. */
static int parse_argv(int argc, char *argv[]) {
        enum { ARG_VERSION = 0x100 };
        static const struct option options[] = {
                { "verbose", no_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                {}
        };
        int c;

        while ((c = getopt_long(argc, argv, "vh", options, NULL)) >= 0)
                switch (c) {
                case 'v':
                        log_set_max_level(LOG_DEBUG);
                        break;
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("opbackup-notify %s\n", PACKAGE_VERSION);
                        return 0;
                default:
                        fprintf(stderr, "Try 'opbackup-notify --help'.\n");
                        return -EINVAL;
                }
        if (optind < argc) {
                fprintf(stderr, "opbackup-notify takes no arguments ('%s'). Try 'opbackup-notify --help'.\n",
                        argv[optind]);
                return -EINVAL;
        }
        return 1;
}

/* 1 connected, 0 when another opbackup-notify serves this session, or a negative errno. */
static int connect_session(Notifier *n) {
        int r;

        r = sd_bus_open_user(&n->session);
        if (r < 0)
                return log_error_errno(r, "Cannot connect to the session bus: %m. opbackup-notify runs in a desktop "
                                       "session (DBUS_SESSION_BUS_ADDRESS, or XDG_RUNTIME_DIR/bus).");
        r = sd_bus_request_name(n->session, NOTIFIER_BUS_NAME, 0);
        if (r == -EEXIST) {
                log_info("Another opbackup-notify runs in this session: leaving the notifications to it.");
                return 0;
        }
        if (r < 0)
                log_warning_errno(r, "Cannot own %s on the session bus (%m); running anyway.", NOTIFIER_BUS_NAME);
        return 1;
}

/* When a bus goes away (the session ends, the system bus restarts) there is nothing left to do: the loop
 * then ends with EXIT_FAILURE. */
static int attach_bus(Notifier *n, sd_bus *bus) {
        int r;

        r = sd_bus_set_exit_on_disconnect(bus, true);
        if (r < 0)
                return r;
        return sd_bus_attach_event(bus, n->event, SD_EVENT_PRIORITY_NORMAL);
}

static int run(Notifier *n) {
        sigset_t ss;
        int r;

        sigemptyset(&ss);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGINT);
        sigprocmask(SIG_BLOCK, &ss, NULL);
        r = sd_event_default(&n->event);
        if (r < 0)
                return log_error_errno(r, "Cannot allocate the event loop: %m");
        /* Without a handler, SIGTERM and SIGINT end the loop with 0. */
        (void) sd_event_add_signal(n->event, NULL, SIGTERM, NULL, NULL);
        (void) sd_event_add_signal(n->event, NULL, SIGINT, NULL, NULL);

        r = connect_session(n);
        if (r <= 0)
                return r;
        r = sd_bus_open_system(&n->system);
        if (r < 0)
                return log_error_errno(r, "Cannot connect to the system bus: %m");
        r = attach_bus(n, n->session);
        if (r >= 0)
                r = attach_bus(n, n->system);
        if (r < 0)
                return log_error_errno(r, "Cannot attach the buses to the event loop: %m");
        r = watch_start(n);
        if (r < 0)
                return r;
        r = sd_event_loop(n->event);
        if (r != 0)
                log_error("Lost the connection to the %s bus.",
                          sd_bus_is_open(n->session) > 0 ? "system" : "session");
        return r == 0 ? 0 : -ECONNRESET;
}

int main(int argc, char *argv[]) {
        Notifier n = {};
        int r;

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? 2 : 0;
        r = run(&n);
        watch_done(&n);
        sd_bus_flush_close_unref(n.system);
        sd_bus_flush_close_unref(n.session);
        sd_event_unref(n.event);
        return r < 0 ? 1 : 0;
}
