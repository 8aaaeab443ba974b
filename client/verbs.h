/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The commands of opbackupctl (verbs.c): how many arguments each takes, which options of its own, the
 * words its errors use, its help — one table, as systemd's tools dispatch their verbs. */

#include <stdint.h>

#include "ctl.h"

#define VERB_ANY UINT32_MAX

typedef enum VerbFlags {
        VERB_DEFAULT = 1 << 0,          /* what runs when no command is given */
} VerbFlags;

typedef struct Verb {
        const char *name;
        uint32_t min_args, max_args;    /* arguments after the name; VERB_ANY: no limit */
        VerbFlags flags;
        uint32_t options;               /* the OPTION_* bits (options.h) of its own options */
        uint32_t required;              /* ... of those it cannot do without */
        const char *doing;              /* completes "Cannot ...": "list backups" */
        const char *action;             /* the polkit action it needs beyond access: "create", ... */
        const char *wrong_count;        /* what to say about missing or extra arguments; NULL: generic */
        const char *synopsis;           /* "backup [--exclude ID]... [--name NAME.zip] ..." */
        const char *summary;            /* one line, for the list of commands */
        const char *description;        /* a paragraph, for 'opbackupctl COMMAND --help' */
        int (*run)(Ctl *ctl, int argc, char *argv[]);   /* argv[0] is the command's name */
} Verb;

extern const Verb verbs[];
extern const size_t n_verbs;

/* By name; NULL if there is none. */
const Verb *verb_find(const char *name);
const Verb *verb_default(void);
