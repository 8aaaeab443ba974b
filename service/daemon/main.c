/* SPDX-License-Identifier: GPL-2.0-or-later */

/* opbackupd: the privileged backup and restore service for OctoPrint instances. */

#include <getopt.h>
#include <sys/stat.h>

#include "build-config.h"
#include "daemon/daemon.h"
#include "log.h"
#include "util.h"

static void help(void) {
        printf("Usage: opbackupd [OPTIONS]\n\n"
               "Backup and restore service for OctoPrint instances, on the D-Bus system bus as %s.\n\n"
               "  -h --help             Show this help\n"
               "     --version          Show the version\n"
               "     --config-dir DIR   Read opbackupd.conf and instances.d/ from DIR\n"
               "                        (default: $OPBACKUP_CONFIG_DIR, else %s)\n"
               "     --no-exit-on-idle  Keep running when there is nothing to do\n"
               "  -v --verbose          Log debug messages\n",
               BUS_NAME, OPBACKUP_CONFIG_DIR);
}

int main(int argc, char *argv[]) {
        enum { ARG_VERSION = 0x100, ARG_CONFIG_DIR, ARG_NO_EXIT_ON_IDLE };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "config-dir", required_argument, NULL, ARG_CONFIG_DIR },
                { "no-exit-on-idle", no_argument, NULL, ARG_NO_EXIT_ON_IDLE },
                { "verbose", no_argument, NULL, 'v' },
                {}
        };
        _cleanup_(daemon_freep) Daemon *d = NULL;
        const char *config_dir = getenv("OPBACKUP_CONFIG_DIR");
        bool exit_on_idle = true;
        int c, r;

        while ((c = getopt_long(argc, argv, "hv", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return EXIT_SUCCESS;
                case ARG_VERSION:
                        printf("opbackupd %s\n", PACKAGE_VERSION);
                        return EXIT_SUCCESS;
                case ARG_CONFIG_DIR:
                        config_dir = optarg;
                        break;
                case ARG_NO_EXIT_ON_IDLE:
                        exit_on_idle = false;
                        break;
                case 'v':
                        log_set_max_level(LOG_DEBUG);
                        break;
                default:
                        return 2;
                }
        if (optind < argc) {
                log_error("opbackupd takes no arguments.");
                return 2;
        }
        if (isempty(config_dir))
                config_dir = OPBACKUP_CONFIG_DIR;

        /* libzip converts the DOS time of every entry it reads or writes with mktime()/localtime(), and
         * glibc, with TZ unset, stats /etc/localtime on each call in case it changed: a syscall per entry
         * of every zip (listing 1,000 backups, validating a restore, reusing the previous backup). With TZ
         * naming that same file it is read once per process; the workers inherit it. */
        if (!getenv("TZ"))
                (void) setenv("TZ", ":/etc/localtime", 0);

        /* Workers create the instance user's files (zips, restored trees, carried-over folders) and must
         * give them the modes OctoPrint would, whatever UMask= the unit sets. Root's own files (the
         * restore journal) are created with explicit 0600 modes. */
        umask(0022);

        r = daemon_new(config_dir, exit_on_idle, &d);
        if (r < 0)
                return EXIT_FAILURE;
        r = daemon_run(d);
        if (r < 0) {
                log_error_errno(r, "Event loop failed: %m");
                return EXIT_FAILURE;
        }
        return EXIT_SUCCESS;
}
