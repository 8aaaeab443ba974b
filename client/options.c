/* SPDX-License-Identifier: GPL-2.0-or-later */

/* The command line: one getopt_long over all of argv. GNU getopt moves the arguments that are not options
 * (the command and its arguments) behind the options, so "opbackupctl status --json" and "opbackupctl
 * --json status" mean the same; "--" ends the options. An option of one command (backup --exclude)
 * given with another is refused after the command is known. Every usage error ends with the line
 * "See 'opbackupctl COMMAND --help'." — the command's own help when there is a command. */

#include <getopt.h>

#include "help.h"
#include "names.h"
#include "options.h"
#include "util.h"

#define EXCLUDES_MAX 64

enum {
        ARG_VERSION = 0x100,
        ARG_JSON,
        ARG_NO_ASK_PASSWORD,
        ARG_NO_LEGEND,
        ARG_NO_PAGER,
        ARG_NO_WAIT,
        ARG_WHEN_IDLE,
        ARG_SKIP_PLUGINS,
        ARG_IGNORE_PLUGIN_ERRORS,
        ARG_KEEP_PREVIOUS,
        ARG_NO_RESTART,
        ARG_CLEAR,
};

static const struct option options[] = {
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, ARG_VERSION },
        { "instance", required_argument, NULL, 'i' },
        { "json", no_argument, NULL, ARG_JSON },
        { "no-ask-password", no_argument, NULL, ARG_NO_ASK_PASSWORD },
        { "quiet", no_argument, NULL, 'q' },
        { "host", required_argument, NULL, 'H' },
        { "no-legend", no_argument, NULL, ARG_NO_LEGEND },
        { "no-pager", no_argument, NULL, ARG_NO_PAGER },
        { "exclude", required_argument, NULL, 'e' },
        { "name", required_argument, NULL, 'n' },
        { "no-wait", no_argument, NULL, ARG_NO_WAIT },
        { "when-idle", no_argument, NULL, ARG_WHEN_IDLE },
        { "skip-plugins", no_argument, NULL, ARG_SKIP_PLUGINS },
        { "ignore-plugin-errors", no_argument, NULL, ARG_IGNORE_PLUGIN_ERRORS },
        { "keep-previous", no_argument, NULL, ARG_KEEP_PREVIOUS },
        { "no-restart", no_argument, NULL, ARG_NO_RESTART },
        { "yes", no_argument, NULL, 'y' },
        { "output", required_argument, NULL, 'o' },
        { "force", no_argument, NULL, 'f' },
        { "keep", required_argument, NULL, 'k' },
        { "match", required_argument, NULL, 'm' },
        { "clear", no_argument, NULL, ARG_CLEAR },
        { "remote", required_argument, NULL, 'r' },
        {}
};

/* For --help and for messages about an option; bit 0: an option of every command. */
static const struct {
        uint32_t bit;
        const char *name;               /* in messages */
        const char *synopsis;           /* in --help */
        const char *description;
} option_docs[] = {
        { 0, "--instance", "-i --instance NAME", "The instance to act on (when there are several)" },
        { 0, "--json", "   --json", "Machine-readable output (see opbackupctl(1))" },
        { 0, "--no-ask-password", "   --no-ask-password", "Do not ask for a password when polkit wants one" },
        { 0, "--quiet", "-q --quiet", "Print only what was asked for" },
        { 0, "--host", "-H --host [USER@]HOST", "Talk to the service on HOST, over ssh" },
        { 0, "--no-legend", "   --no-legend", "Print tables without their header" },
        { 0, "--no-pager", "   --no-pager", "Do not pipe long output into a pager" },
        { 0, "--help", "-h --help", "Show this help" },
        { 0, "--version", "   --version", "Show the version" },
        { OPTION_EXCLUDE, "--exclude", "-e --exclude ID",
          "Leave out a folder: uploads, timelapse, virtualSd, plugins, slicingProfiles, printerProfiles, "
          "scripts, translations, data (repeatable)" },
        { OPTION_NAME, "--name", "-n --name NAME.zip",
          "The backup's file name (backup: instead of PREFIX-backup-DATE-TIME.zip; import: instead of the "
          "file's): a letter or digit, then letters, "
          "digits, '.', '_' or '-', ending in .zip" },
        { OPTION_WHEN_IDLE, "--when-idle", "   --when-idle",
          "Wait while the printer prints (needs the instance's OctoPrint API)" },
        { OPTION_NO_WAIT, "--no-wait", "   --no-wait", "Print the job and return at once" },
        { OPTION_SKIP_PLUGINS, "--skip-plugins", "   --skip-plugins", "Do not reinstall plugins" },
        { OPTION_IGNORE_PLUGIN_ERRORS, "--ignore-plugin-errors", "   --ignore-plugin-errors",
          "Restore even if a plugin fails to install" },
        { OPTION_KEEP_PREVIOUS, "--keep-previous", "   --keep-previous",
          "Keep the replaced basedir as BASEDIR.opbackup-old" },
        { OPTION_NO_RESTART, "--no-restart", "   --no-restart", "Do not restart OctoPrint afterwards" },
        { OPTION_YES, "--yes", "-y --yes", "Do not ask for confirmation" },
        { OPTION_OUTPUT, "--output", "-o --output FILE|-", "Where to write it (default ./NAME; - for stdout)" },
        { OPTION_FORCE, "--force", "-f --force", "Replace FILE if it exists" },
        { OPTION_KEEP, "--keep", "-k --keep N", "How many of the newest backups to keep (0: none)" },
        { OPTION_MATCH, "--match", "-m --match GLOB", "Only backups whose name matches, e.g. 'octoprint-backup-*'" },
        { OPTION_CLEAR, "--clear", "   --clear", "Forget the list" },
        { OPTION_REMOTE, "--remote", "-r --remote NAME",
          "A remote (see 'opbackupctl remotes'): act on the backups there instead of the local ones (upload: "
          "repeatable; without it, the instance's CopyTo=)" },
};

static const char *option_name(uint32_t bit) {
        for (size_t k = 0; k < ELEMENTSOF(option_docs); k++)
                if (option_docs[k].bit == bit)
                        return option_docs[k].name;
        return "?";
}

static const char *option_synopsis(uint32_t bit) {
        for (size_t k = 0; k < ELEMENTSOF(option_docs); k++)
                if (option_docs[k].bit == bit)
                        return strstr(option_docs[k].synopsis, "--");
        return "?";
}

void options_help(uint32_t mask) {
        for (size_t k = 0; k < ELEMENTSOF(option_docs); k++)
                if (option_docs[k].bit & mask)
                        help_print_option(option_docs[k].synopsis, option_docs[k].description);
}

void options_help_common(void) {
        for (size_t k = 0; k < ELEMENTSOF(option_docs); k++)
                if (option_docs[k].bit == 0)
                        help_print_option(option_docs[k].synopsis, option_docs[k].description);
}

int parse_uint32(const char *s, uint32_t *ret) {
        unsigned long long v;
        char *end;

        if (isempty(s) || *s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno == ERANGE || v > UINT32_MAX)
                return -ERANGE;
        if (errno || *end)
                return -EINVAL;
        *ret = (uint32_t) v;
        return 0;
}

void ctl_options_done(Ctl *ctl) {
        ctl->excludes = strv_free(ctl->excludes);
        ctl->remotes = strv_free(ctl->remotes);
}

void print_see_help(const char *verb) {
        if (verb)
                fprintf(stderr, "See 'opbackupctl %s --help'.\n", verb);
        else
                fprintf(stderr, "See 'opbackupctl --help'.\n");
}

static void see_help(const Verb *verb) {
        print_see_help(verb ? verb->name : NULL);
}

/* One option's value into ctl. 0, -EINVAL (said why), -ENOMEM. */
static int apply_option(Ctl *ctl, int c, const char *arg, CommandLine *cl, uint32_t *seen) {
        int r;

        switch (c) {
        case 'h':
                cl->help = true;
                return 0;
        case ARG_VERSION:
                cl->version = true;
                return 0;
        case 'i':
                ctl->instance = arg;
                return 0;
        case ARG_JSON:
                ctl->json = true;
                return 0;
        case ARG_NO_ASK_PASSWORD:
                ctl->ask_password = false;
                return 0;
        case 'q':
                ctl->quiet = true;
                return 0;
        case 'H':
                ctl->host = arg;
                return 0;
        case ARG_NO_LEGEND:
                ctl->legend = false;
                return 0;
        case ARG_NO_PAGER:
                ctl->pager = false;
                return 0;
        case 'e':
                *seen |= OPTION_EXCLUDE;
                if (strv_contains(ctl->excludes, arg))
                        return 0;
                if (strv_length(ctl->excludes) >= EXCLUDES_MAX) {
                        fprintf(stderr, "Too many --exclude options (at most %d).\n", EXCLUDES_MAX);
                        return -EINVAL;
                }
                return strv_extend(&ctl->excludes, arg);
        case 'n':
                *seen |= OPTION_NAME;
                /* The daemon's rule (opbackupctl(1)): said here, before anything is started. */
                if (!backup_name_is_valid(arg)) {
                        fprintf(stderr, "Invalid backup name '%.64s%s': a backup name is a letter or digit, then "
                                "letters, digits, '.', '_' or '-', ending in .zip (at most %d characters).\n",
                                arg, strlen(arg) > 64 ? "..." : "", BACKUP_NAME_MAX);
                        return -EINVAL;
                }
                ctl->name = arg;
                return 0;
        case ARG_NO_WAIT:
                *seen |= OPTION_NO_WAIT;
                ctl->no_wait = true;
                return 0;
        case ARG_WHEN_IDLE:
                *seen |= OPTION_WHEN_IDLE;
                ctl->when_idle = true;
                return 0;
        case ARG_SKIP_PLUGINS:
                *seen |= OPTION_SKIP_PLUGINS;
                ctl->skip_plugins = true;
                return 0;
        case ARG_IGNORE_PLUGIN_ERRORS:
                *seen |= OPTION_IGNORE_PLUGIN_ERRORS;
                ctl->ignore_plugin_errors = true;
                return 0;
        case ARG_KEEP_PREVIOUS:
                *seen |= OPTION_KEEP_PREVIOUS;
                ctl->keep_previous = true;
                return 0;
        case ARG_NO_RESTART:
                *seen |= OPTION_NO_RESTART;
                ctl->no_restart = true;
                return 0;
        case 'y':
                *seen |= OPTION_YES;
                ctl->yes = true;
                return 0;
        case 'o':
                *seen |= OPTION_OUTPUT;
                ctl->output = arg;
                return 0;
        case 'f':
                *seen |= OPTION_FORCE;
                ctl->force = true;
                return 0;
        case 'k':
                *seen |= OPTION_KEEP;
                r = parse_uint32(arg, &ctl->keep);
                if (r < 0) {
                        fprintf(stderr, "--keep needs a number of backups, not '%s'.\n", arg);
                        return -EINVAL;
                }
                ctl->keep_set = true;
                return 0;
        case 'm':
                *seen |= OPTION_MATCH;
                ctl->match = arg;
                return 0;
        case ARG_CLEAR:
                *seen |= OPTION_CLEAR;
                ctl->clear = true;
                return 0;
        case 'r':
                *seen |= OPTION_REMOTE;
                if (!instance_name_is_valid(arg)) {
                        fprintf(stderr, "Invalid remote name '%.64s': see 'opbackupctl remotes'.\n", arg);
                        return -EINVAL;
                }
                if (strv_contains(ctl->remotes, arg))
                        return 0;
                if (strv_length(ctl->remotes) >= 8) {
                        fprintf(stderr, "At most 8 remotes at once.\n");
                        return -EINVAL;
                }
                return strv_extend(&ctl->remotes, arg);
        default:
                /* getopt said what was wrong. */
                return -EINVAL;
        }
}

/* The command's own checks once it is known: its options, its number of arguments. */
static int check_verb(const CommandLine *cl, uint32_t seen) {
        const Verb *v = cl->verb;
        uint32_t n = (uint32_t) cl->argc - 1;   /* without the command's name */
        uint32_t extra = seen & ~v->options, missing = v->required & ~seen;

        if (extra) {
                uint32_t bit = extra & -extra;
                fprintf(stderr, "The option %s does not apply to '%s'.\n", option_name(bit), v->name);
                return -EINVAL;
        }
        if (missing) {
                uint32_t bit = missing & -missing;
                fprintf(stderr, "'%s' needs %s.\n", v->name, option_synopsis(bit));
                return -EINVAL;
        }
        if (n >= v->min_args && (v->max_args == VERB_ANY || n <= v->max_args))
                return 0;
        if (v->wrong_count)
                fprintf(stderr, "%s\n", v->wrong_count);
        else if (v->max_args == 0)
                fprintf(stderr, "'%s' takes no arguments (unexpected '%s').\n", v->name, cl->argv[1]);
        else if (n < v->min_args)
                fprintf(stderr, "Too few arguments for '%s'.\n", v->name);
        else
                fprintf(stderr, "Too many arguments for '%s' (unexpected '%s').\n", v->name,
                        cl->argv[v->max_args + 1]);
        return -EINVAL;
}

int parse_command_line(Ctl *ctl, int argc, char *argv[], CommandLine *ret) {
        _cleanup_free_ char **args = calloc(argc + 1, sizeof(char *));
        CommandLine cl = {};
        uint32_t seen = 0;
        bool failed = false;
        int c, r;

        if (!args)
                return -ENOMEM;
        cl.argv = args;
        /* "-" first: getopt hands over the arguments that are not options in order, as option 1, instead of
         * moving them behind the options — or, with POSIXLY_CORRECT set, stopping at the first one. So
         * options may stand anywhere whatever the environment says. */
        optind = 0;
        while ((c = getopt_long(argc, argv, "-hi:qH:e:n:yo:fk:m:r:", options, NULL)) >= 0) {
                if (c == 1) {
                        cl.argv[cl.argc++] = optarg;
                        continue;
                }
                r = apply_option(ctl, c, optarg, &cl, &seen);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        failed = true;
        }
        /* After "--", the rest are arguments. */
        for (int k = optind; k < argc; k++)
                cl.argv[cl.argc++] = argv[k];

        if (cl.argc > 0) {
                cl.verb = verb_find(cl.argv[0]);
                if (!cl.verb) {
                        fprintf(stderr, "Unknown command '%s'.\n", cl.argv[0]);
                        see_help(NULL);
                        return -EINVAL;
                }
        }
        if (failed) {
                see_help(cl.verb);
                return -EINVAL;
        }
        if (!cl.help && !cl.version) {
                if (!cl.verb) {
                        /* As timedatectl shows its status: no command, the default one. */
                        cl.verb = verb_default();
                        cl.argv[cl.argc++] = (char *) cl.verb->name;
                }
                if (check_verb(&cl, seen) < 0) {
                        see_help(cl.verb);
                        return -EINVAL;
                }
        }
        TAKE_PTR(args);
        *ret = cl;
        return 0;
}

void command_line_done(CommandLine *cl) {
        free(cl->argv);
        cl->argv = NULL;
}
