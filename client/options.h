/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The command line (options.c): one getopt_long over all of it, so options may come before or after the
 * command, as with systemd's tools. Options of one command are refused with any other. */

#include <stdbool.h>
#include <stdint.h>

#include "ctl.h"
#include "verbs.h"

/* The options that belong to commands, as bits of Verb.options. */
enum {
        OPTION_EXCLUDE = 1U << 0,
        OPTION_NAME = 1U << 1,
        OPTION_NO_WAIT = 1U << 2,
        OPTION_WHEN_IDLE = 1U << 3,
        OPTION_SKIP_PLUGINS = 1U << 4,
        OPTION_IGNORE_PLUGIN_ERRORS = 1U << 5,
        OPTION_KEEP_PREVIOUS = 1U << 6,
        OPTION_NO_RESTART = 1U << 7,
        OPTION_YES = 1U << 8,
        OPTION_OUTPUT = 1U << 9,
        OPTION_FORCE = 1U << 10,
        OPTION_KEEP = 1U << 11,
        OPTION_MATCH = 1U << 12,
        OPTION_CLEAR = 1U << 13,
        OPTION_REMOTE = 1U << 14,
};

typedef struct CommandLine {
        const Verb *verb;
        int argc;                       /* the command's name and its arguments */
        char **argv;                    /* (an array of its own, NULL-terminated; the strings are argv's) */
        bool help;                      /* -h: show the command's help, or the general one */
        bool version;
} CommandLine;

/* Fills ctl's options and ret, leaving argv as it is. Returns 0, or -EINVAL for a usage error (printed,
 * ending with a line "See 'opbackupctl COMMAND --help'."), or -ENOMEM. */
int parse_command_line(Ctl *ctl, int argc, char *argv[], CommandLine *ret);
void command_line_done(CommandLine *cl);

/* "See 'opbackupctl VERB --help'." (or 'opbackupctl --help' for NULL) on stderr: the last line of a usage
 * error. */
void print_see_help(const char *verb);

/* Frees what parsing allocated in ctl. */
void ctl_options_done(Ctl *ctl);

/* Prints the options of the command(s) with any of the bits in mask, for --help. */
void options_help(uint32_t mask);
/* Prints the options every command takes, for --help. */
void options_help_common(void);

/* A decimal number 0..UINT32_MAX, nothing else. 0, -EINVAL or -ERANGE. */
int parse_uint32(const char *s, uint32_t *ret);
