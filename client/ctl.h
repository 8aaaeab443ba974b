/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* What every part of opbackupctl shares: its exit codes and the state of one run (Ctl) — the options of
 * the command line, what the command is doing, and the connection to the service. The rest has headers
 * of its own: options.h and verbs.h (the command line and the commands), bus-client.h (calls and their
 * errors), output.h (JSON, times), table.h, help.h, pager.h, agent.h, job-wait.h, one cmd-*.h a command. */

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

#include "bus-names.h"

/* Exit codes (opbackupctl(1), EXIT STATUS). */
enum {
        EXIT_OK = 0,
        EXIT_FAIL = 1,
        EXIT_USAGE = 2,
        EXIT_NOT_AUTHORIZED = 3,
        EXIT_NOT_FOUND = 4,
        EXIT_BUSY = 5,
};

typedef struct Ctl {
        /* Options of every command. */
        const char *instance;           /* -i */
        const char *host;               /* -H */
        bool json;
        bool ask_password;
        bool quiet;
        bool legend;                    /* off with --no-legend */
        bool pager;                     /* off with --no-pager */

        /* Options of one command each; options.c refuses them with any other command. */
        char **excludes;                /* backup --exclude */
        const char *name;               /* backup --name */
        bool no_wait, when_idle;        /* backup */
        bool skip_plugins, ignore_plugin_errors, keep_previous, no_restart, yes;       /* restore */
        const char *output;             /* export -o: NULL ./NAME, "-" stdout */
        bool force;                     /* export */
        uint32_t keep;                  /* prune --keep */
        bool keep_set;
        const char *match;              /* prune --match */
        bool clear;                     /* unknown-plugins --clear */
        char **remotes;                 /* --remote (list, delete, restore, fetch: one; upload: several) */

        /* What the command is doing, in words that complete "Cannot ...": "list backups". Errors are
         * reported in these words, not in those of the D-Bus API. */
        const char *doing;
        char *doing_buf;                /* what ctl_set_doing() formatted */
        const char *action;             /* the polkit action the command needs ("restore"); NULL: access */

        sd_bus *bus;                    /* NULL until ctl_connect() */
} Ctl;
