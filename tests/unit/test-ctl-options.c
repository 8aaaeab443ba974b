/* SPDX-License-Identifier: GPL-2.0-or-later */
/* opbackupctl's command line (client/options.c, client/verbs.c): options before and after the command
 * mean the same, an option of one command is refused with another, argument counts are checked, "--"
 * ends the options, and the verb table is consistent. No bus: parsing never connects. */

#include "options.h"
#include "test-util.h"
#include "verbs.h"

typedef struct Parsed {
        Ctl ctl;
        CommandLine cl;
        int r;
} Parsed;

/* Parses a NULL-terminated command line (argv[0] included), which must stay as it was. The result's
 * strings are the copies' and the options' (both kept until the next parse, which frees them). */
static Parsed parse(const char *const *args) {
        static char *argv[32], *copy[32];
        static CommandLine last;
        static Ctl last_ctl;
        Parsed p = { .ctl = { .ask_password = true, .legend = true, .pager = true } };
        int argc = 0;

        command_line_done(&last);
        ctl_options_done(&last_ctl);
        for (size_t k = 0; k < ELEMENTSOF(argv); k++) {
                free(copy[k]);
                copy[k] = argv[k] = NULL;
        }
        for (; args[argc]; argc++) {
                ASSERT_TRUE(argc < (int) ELEMENTSOF(argv) - 1);
                argv[argc] = copy[argc] = strdup(args[argc]);
                ASSERT_NOT_NULL(argv[argc]);
        }
        p.r = parse_command_line(&p.ctl, argc, argv, &p.cl);
        for (int k = 0; k < argc; k++)
                ASSERT_TRUE(argv[k] == copy[k]);
        last = p.cl;
        last_ctl = p.ctl;
        return p;
}

#define PARSE(...) parse((const char *const[]) { "opbackupctl", __VA_ARGS__, NULL })

static void test_options_anywhere(void) {
        const char *const *lines[] = {
                (const char *const[]) { "opbackupctl", "status", "--json", NULL },
                (const char *const[]) { "opbackupctl", "--json", "status", NULL },
        };

        for (size_t k = 0; k < ELEMENTSOF(lines); k++) {
                Parsed p = parse(lines[k]);
                ASSERT_EQ(p.r, 0);
                ASSERT_STREQ(p.cl.verb->name, "status");
                ASSERT_TRUE(p.ctl.json);
                ASSERT_EQ(p.cl.argc, 1);
        }

        Parsed p = PARSE("list", "-i", "farm-1");
        ASSERT_EQ(p.r, 0);
        ASSERT_STREQ(p.cl.verb->name, "list");
        ASSERT_STREQ(p.ctl.instance, "farm-1");

        p = PARSE("--json", "delete", "a.zip", "-q", "b.zip");
        ASSERT_EQ(p.r, 0);
        ASSERT_STREQ(p.cl.verb->name, "delete");
        ASSERT_TRUE(p.ctl.json && p.ctl.quiet);
        ASSERT_EQ(p.cl.argc, 3);
        ASSERT_STREQ(p.cl.argv[0], "delete");
        ASSERT_STREQ(p.cl.argv[1], "a.zip");
        ASSERT_STREQ(p.cl.argv[2], "b.zip");

        p = PARSE("backup", "--exclude", "uploads", "-e", "timelapse", "--exclude=uploads", "--name", "x.zip",
                  "--no-wait", "--when-idle");
        ASSERT_EQ(p.r, 0);
        ASSERT_EQ(strv_length(p.ctl.excludes), 2);      /* the same folder twice is one */
        ASSERT_STREQ(p.ctl.excludes[1], "timelapse");
        ASSERT_STREQ(p.ctl.name, "x.zip");
        ASSERT_TRUE(p.ctl.no_wait && p.ctl.when_idle);

        p = PARSE("export", "x.zip", "-o", "-", "--force");
        ASSERT_EQ(p.r, 0);
        ASSERT_STREQ(p.ctl.output, "-");
        ASSERT_TRUE(p.ctl.force);
        ASSERT_STREQ(p.cl.argv[1], "x.zip");

        p = PARSE("-i", "pi", "prune", "-k", "3", "--match", "octoprint-*");
        ASSERT_EQ(p.r, 0);
        ASSERT_EQ(p.ctl.keep, 3);
        ASSERT_TRUE(p.ctl.keep_set);
        ASSERT_STREQ(p.ctl.match, "octoprint-*");

        p = PARSE("restore", "--yes", "--skip-plugins", "b.zip", "--no-restart", "--keep-previous",
                  "--ignore-plugin-errors", "--no-legend", "--no-pager", "--no-ask-password");
        ASSERT_EQ(p.r, 0);
        ASSERT_TRUE(p.ctl.yes && p.ctl.skip_plugins && p.ctl.no_restart && p.ctl.keep_previous &&
                    p.ctl.ignore_plugin_errors);
        ASSERT_FALSE(p.ctl.legend || p.ctl.pager || p.ctl.ask_password);
        ASSERT_STREQ(p.cl.argv[1], "b.zip");
}

static void test_double_dash(void) {
        /* A file whose name starts with '-'. */
        Parsed p = PARSE("restore", "--yes", "--", "-odd.zip");
        ASSERT_EQ(p.r, 0);
        ASSERT_EQ(p.cl.argc, 2);
        ASSERT_STREQ(p.cl.argv[1], "-odd.zip");
        ASSERT_TRUE(p.ctl.yes);

        p = PARSE("--", "inspect", "--json");
        ASSERT_EQ(p.r, 0);
        ASSERT_STREQ(p.cl.verb->name, "inspect");
        ASSERT_STREQ(p.cl.argv[1], "--json");
        ASSERT_FALSE(p.ctl.json);
}

static void test_refused(void) {
        /* An option of another command, wherever it stands. */
        ASSERT_EQ(PARSE("list", "--exclude", "uploads").r, -EINVAL);
        ASSERT_EQ(PARSE("--keep", "3", "backup").r, -EINVAL);
        ASSERT_EQ(PARSE("status", "--clear").r, -EINVAL);
        /* Unknown options and commands, missing values. */
        ASSERT_EQ(PARSE("list", "--bogus").r, -EINVAL);
        ASSERT_EQ(PARSE("bogus").r, -EINVAL);
        ASSERT_EQ(PARSE("list", "-i").r, -EINVAL);
        /* Argument counts. */
        ASSERT_EQ(PARSE("status", "extra").r, -EINVAL);
        ASSERT_EQ(PARSE("delete").r, -EINVAL);
        ASSERT_EQ(PARSE("restore").r, -EINVAL);
        ASSERT_EQ(PARSE("restore", "a.zip", "b.zip").r, -EINVAL);
        ASSERT_EQ(PARSE("cancel").r, -EINVAL);
        /* Values. */
        ASSERT_EQ(PARSE("prune").r, -EINVAL);                   /* --keep is required */
        ASSERT_EQ(PARSE("prune", "--keep", "x").r, -EINVAL);
        ASSERT_EQ(PARSE("prune", "--keep", "-1").r, -EINVAL);
        ASSERT_EQ(PARSE("prune", "--keep", "4294967296").r, -EINVAL);
        ASSERT_EQ(PARSE("backup", "--name", "x").r, -EINVAL);   /* not NAME.zip */
        ASSERT_EQ(PARSE("backup", "--name", "../x.zip").r, -EINVAL);
        ASSERT_EQ(PARSE("backup", "--name", "x.zip").r, 0);
}

static void test_help_and_default(void) {
        Parsed p = PARSE("list", "--help");
        ASSERT_EQ(p.r, 0);
        ASSERT_TRUE(p.cl.help);
        ASSERT_STREQ(p.cl.verb->name, "list");

        /* Help does not check what would be refused otherwise: it explains it. */
        p = PARSE("--help", "prune");
        ASSERT_EQ(p.r, 0);
        ASSERT_TRUE(p.cl.help);
        ASSERT_STREQ(p.cl.verb->name, "prune");

        p = PARSE("-h");
        ASSERT_EQ(p.r, 0);
        ASSERT_TRUE(p.cl.help);
        ASSERT_NULL(p.cl.verb);

        p = PARSE("--version");
        ASSERT_EQ(p.r, 0);
        ASSERT_TRUE(p.cl.version);

        /* No command: status, as timedatectl shows its status. */
        p = parse((const char *const[]) { "opbackupctl", NULL });
        ASSERT_EQ(p.r, 0);
        ASSERT_STREQ(p.cl.verb->name, "status");
        ASSERT_EQ(p.cl.argc, 1);
        ASSERT_STREQ(p.cl.argv[0], "status");
        p = PARSE("--json", "-i", "pi");
        ASSERT_EQ(p.r, 0);
        ASSERT_STREQ(p.cl.verb->name, "status");
}

static void test_verb_table(void) {
        size_t n_default = 0;

        for (size_t k = 0; k < n_verbs; k++) {
                const Verb *v = &verbs[k];

                ASSERT_TRUE(verb_find(v->name) == v);
                ASSERT_NOT_NULL(v->run);
                ASSERT_NOT_NULL(v->doing);
                ASSERT_NOT_NULL(v->summary);
                ASSERT_NOT_NULL(v->description);
                /* The synopsis starts with the name, and names the command's own options. */
                ASSERT_TRUE(startswith(v->synopsis, v->name));
                ASSERT_TRUE(v->min_args <= v->max_args);
                ASSERT_TRUE((v->required & ~v->options) == 0);
                if (v->options & OPTION_EXCLUDE)
                        ASSERT_CONTAINS(v->synopsis, "--exclude");
                if (v->options & OPTION_KEEP)
                        ASSERT_CONTAINS(v->synopsis, "--keep");
                if (v->options & OPTION_CLEAR)
                        ASSERT_CONTAINS(v->synopsis, "--clear");
                if (v->options & OPTION_OUTPUT)
                        ASSERT_CONTAINS(v->synopsis, "-o");
                n_default += !!(v->flags & VERB_DEFAULT);
        }
        ASSERT_EQ(n_default, 1);
        ASSERT_NULL(verb_find("bogus"));
}

int main(void) {
        test_options_anywhere();
        test_double_dash();
        test_refused();
        test_help_and_default();
        test_verb_table();
        return EXIT_SUCCESS;
}
