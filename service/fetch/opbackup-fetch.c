/* SPDX-License-Identifier: GPL-2.0-or-later */

/* opbackup-fetch: does HTTP GETs for opbackupd, which has no network of its own. Started by systemd for
 * each connection to opbackup-fetch.socket (Accept=yes) as a dynamic user with nothing but network
 * access; without that socket, a worker of opbackupd starts it itself, as the instance user, on a socketpair
 * as standard input. See fetch.h for what goes over the connection. */

#include <curl/curl.h>
#include <getopt.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include "build-config.h"
#include "fetch/fetch-client.h"
#include "fetch/fetch-serve.h"
#include "log.h"
#include "util.h"

static void help(void) {
        printf("Usage: opbackup-fetch\n\n"
               "Does HTTP GETs for opbackupd over the connection systemd passes (opbackup-fetch.socket).\n"
               "Not meant to be run by hand. See opbackupd(8).\n");
}

/* The connection: fd 3 with socket activation (LISTEN_FDS), else standard input. */
static int connection_fd(void) {
        struct stat st;
        int n = sd_listen_fds(true);

        if (n > 1)
                return -E2BIG;
        if (n == 1)
                return SD_LISTEN_FDS_START;
        if (fstat(STDIN_FILENO, &st) < 0 || !S_ISSOCK(st.st_mode))
                return -ENOTSOCK;
        return STDIN_FILENO;
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                {}
        };
        int c, fd, r;

        /* First of all: requests for remotes carry credentials, and without systemd's socket the helper runs
         * as the instance's user, who must not read them out of its memory (ptrace, /proc/PID/mem) nor attach
         * before they arrive. */
        (void) prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return EXIT_SUCCESS;
                case 'V':
                        printf("opbackup-fetch %s\n", PACKAGE_VERSION);
                        return EXIT_SUCCESS;
                default:
                        return 2;
                }
        if (optind < argc) {
                log_error("opbackup-fetch takes no arguments.");
                return 2;
        }
        fd = connection_fd();
        if (fd < 0) {
                log_error_errno(fd, "opbackup-fetch needs a connection from opbackupd on fd 3 or standard "
                                "input (run by opbackup-fetch.socket): %m");
                return EXIT_FAILURE;
        }
        /* A client that goes away is an error to return, not a signal to die of. */
        signal(SIGPIPE, SIG_IGN);
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
                log_error("Cannot initialize libcurl.");
                return EXIT_FAILURE;
        }
        r = fetch_serve(fd);
        curl_global_cleanup();
        if (r < 0 && r != -EPIPE && r != -ECONNRESET) {
                log_error_errno(r, "Serving opbackupd failed: %m");
                return EXIT_FAILURE;
        }
        return EXIT_SUCCESS;
}
