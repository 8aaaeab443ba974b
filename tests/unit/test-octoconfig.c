/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "instance/octoconfig.h"
#include "test-util.h"

static int parse(const char *yaml, OctoConfig *c, char **ret_error) {
        return octoconfig_parse(yaml, strlen(yaml), c, ret_error);
}

static void parse_ok(const char *yaml, OctoConfig *c) {
        _cleanup_free_ char *error = NULL;
        int r = parse(yaml, c, &error);

        if (r < 0) {
                fprintf(stderr, "unexpected error %d: %s\n", r, strempty(error));
                exit(EXIT_FAILURE);
        }
        ASSERT_NULL(error);
}

/* Returns the message; the caller checks it. */
static char *parse_fail(const char *yaml) {
        OctoConfig c = {};
        char *error = NULL;
        int r = parse(yaml, &c, &error);

        ASSERT_TRUE(r < 0);
        ASSERT_NOT_NULL(error);
        ASSERT_NULL(c.appearance_name);
        return error;
}

static void test_full(void) {
        OctoConfig c = {};

        /* Shaped like a real OctoPi config.yaml, with keys we do not read around the ones we do. */
        parse_ok("accessControl:\n"
                 "  salt: abc\n"
                 "appearance:\n"
                 "  color: red\n"
                 "  name: \"Prusa #2 (\xc3\xbc)\"\n"
                 "folder:\n"
                 "  uploads: /mnt/usb/uploads\n"
                 "  timelapse_tmp: /tmp/tl\n"
                 "  nonsense: /ignored\n"
                 "plugins:\n"
                 "  _disabled:\n"
                 "  - cura\n"
                 "  backup:\n"
                 "    path: /srv/backups\n"
                 "    restore_unsupported: yes\n"
                 "  pluginmanager:\n"
                 "    repository: https://example.org/plugins.json\n"
                 "  softwareupdate:\n"
                 "    checks:\n"
                 "      octoprint: {type: github_release, stable_branch: {branch: master, name: Stable}}\n"
                 "server:\n"
                 "  commands:\n"
                 "    serverRestartCommand: sudo service octoprint restart\n"
                 "    systemShutdownCommand: sudo shutdown -h now\n"
                 "  host: 0.0.0.0\n"
                 "webcam:\n"
                 "  ffmpeg: /usr/bin/ffmpeg\n", &c);
        ASSERT_STREQ(c.appearance_name, "Prusa #2 (\xc3\xbc)");
        ASSERT_STREQ(c.backup_path, "/srv/backups");
        ASSERT_TRUE(c.restore_unsupported);
        ASSERT_STREQ(c.plugin_repository, "https://example.org/plugins.json");
        ASSERT_STREQ(c.restart_command, "sudo service octoprint restart");
        ASSERT_STREQ(c.folders[FOLDER_UPLOADS], "/mnt/usb/uploads");
        ASSERT_STREQ(c.folders[FOLDER_TIMELAPSE_TMP], "/tmp/tl");
        for (FolderId i = 0; i < _FOLDER_MAX; i++)
                if (i != FOLDER_UPLOADS && i != FOLDER_TIMELAPSE_TMP)
                        ASSERT_NULL(c.folders[i]);
        octoconfig_done(&c);
        ASSERT_NULL(c.appearance_name);
}

static void assert_empty(const OctoConfig *c) {
        ASSERT_NULL(c->appearance_name);
        ASSERT_NULL(c->backup_path);
        ASSERT_FALSE(c->restore_unsupported);
        ASSERT_NULL(c->plugin_repository);
        ASSERT_NULL(c->restart_command);
        for (FolderId i = 0; i < _FOLDER_MAX; i++)
                ASSERT_NULL(c->folders[i]);
}

static void test_empty_and_missing(void) {
        static const char *const docs[] = {
                "",
                "# only a comment\n",
                "---\n",
                "~\n",
                "appearance: {}\nplugins:\nserver: ~\nfolder: null\n",
                "appearance:\n  name:\nplugins:\n  backup:\n    path: ~\n    restore_unsupported: null\n",
                "appearance:\n  name: ''\n",        /* empty means unset, like OctoPrint */
                "serverRestartCommand: not at the top level\nname: neither\n",
        };

        for (size_t i = 0; i < ELEMENTSOF(docs); i++) {
                OctoConfig c = {};
                parse_ok(docs[i], &c);
                assert_empty(&c);
                octoconfig_done(&c);
        }
}

static void test_scalars(void) {
        OctoConfig c = {};

        /* Plain scalars are taken as written, quoted "null" is a string, block scalars work. */
        parse_ok("appearance:\n  name: 123\n"
                 "plugins:\n  backup:\n    path: 'null'\n    restore_unsupported: \"true\"\n"
                 "server:\n  commands:\n    serverRestartCommand: |\n      systemctl restart octoprint\n", &c);
        ASSERT_STREQ(c.appearance_name, "123");
        ASSERT_STREQ(c.backup_path, "null");
        ASSERT_TRUE(c.restore_unsupported);
        ASSERT_STREQ(c.restart_command, "systemctl restart octoprint\n");
        octoconfig_done(&c);

        static const struct {
                const char *word;
                bool value;
        } bools[] = { { "true", true }, { "True", true }, { "yes", true }, { "on", true },
                      { "false", false }, { "no", false }, { "NO", false }, { "off", false } };
        for (size_t i = 0; i < ELEMENTSOF(bools); i++) {
                _cleanup_free_ char *yaml = NULL;

                ASSERT_TRUE(asprintf(&yaml, "plugins:\n  backup:\n    restore_unsupported: %s\n", bools[i].word) > 0);
                parse_ok(yaml, &c);
                ASSERT_EQ(c.restore_unsupported, bools[i].value);
                octoconfig_done(&c);
        }
}

static void test_duplicate_keys(void) {
        OctoConfig c = {};

        /* PyYAML keeps the last value of a repeated key, whole: the second "plugins" mapping
         * replaces the first, it is not merged into it. */
        parse_ok("plugins:\n  backup:\n    path: /first\n"
                 "plugins:\n  pluginmanager:\n    repository: http://second\n"
                 "appearance:\n  name: a\n  name: b\n", &c);
        ASSERT_NULL(c.backup_path);
        ASSERT_STREQ(c.plugin_repository, "http://second");
        ASSERT_STREQ(c.appearance_name, "b");
        octoconfig_done(&c);
}

static void test_malformed(void) {
        _cleanup_free_ char *e1 = NULL, *e2 = NULL, *e3 = NULL, *e4 = NULL, *e5 = NULL, *e6 = NULL;

        e1 = parse_fail("appearance:\n  name: x\n  bad: a: b\n");
        ASSERT_STREQ(e1, "config.yaml line 3: mapping values are not allowed in this context");

        e2 = parse_fail("plugins:\n  backup:\n    other: [unclosed\n");
        ASSERT_CONTAINS(e2, "config.yaml line 4:");

        e3 = parse_fail("a: 1\n---\nb: 2\n");
        ASSERT_CONTAINS(e3, "line 2:");
        ASSERT_CONTAINS(e3, "single document");

        e4 = parse_fail("- just\n- a list\n");
        ASSERT_CONTAINS(e4, "top level is a list");

        /* Invalid UTF-8 on line 2: the reader error still gets its line. */
        e5 = parse_fail("a: 1\nb: \xff\n");
        ASSERT_CONTAINS(e5, "config.yaml line 2:");

        e6 = parse_fail("appearance:\n  name: \"a\\0b\"\n");
        ASSERT_STREQ(e6, "config.yaml line 2: appearance.name: contains a NUL character");
}

static void test_wrong_types(void) {
        static const struct {
                const char *yaml, *message;
        } cases[] = {
                { "folder: 3\n", "config.yaml line 1: folder: expected a mapping, found a scalar" },
                { "folder:\n  uploads: [a, b]\n", "config.yaml line 2: folder.uploads: expected a string, found a list" },
                { "appearance:\n  name: {first: x}\n", "config.yaml line 2: appearance.name: expected a string, found a mapping" },
                { "plugins: [backup]\n", "config.yaml line 1: plugins: expected a mapping, found a list" },
                { "plugins:\n  backup:\n    restore_unsupported: maybe\n",
                  "config.yaml line 3: plugins.backup.restore_unsupported: expected true or false, found \"maybe\"" },
                { "server:\n  commands: restart\n", "config.yaml line 2: server.commands: expected a mapping, found a scalar" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *e = parse_fail(cases[i].yaml);
                ASSERT_STREQ(e, cases[i].message);
        }
}

static void test_aliases(void) {
        _cleanup_free_ char *bomb = NULL, *e = NULL;
        OctoConfig c = {};
        char *p;

        /* A "billion laughs" document in a key we do not read: parsed in no time, as aliases are
         * never expanded. */
        bomb = malloc(4096);
        ASSERT_NOT_NULL(bomb);
        p = stpcpy(bomb, "lol0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for (int i = 1; i < 10; i++)
                p += sprintf(p, "lol%d: &l%d [*l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d]\n",
                             i, i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
        strcpy(p, "appearance:\n  name: survived\n");
        parse_ok(bomb, &c);
        ASSERT_STREQ(c.appearance_name, "survived");
        octoconfig_done(&c);

        /* An alias where we read a value is refused, not followed. */
        e = parse_fail("x: &n printer\nappearance:\n  name: *n\n");
        ASSERT_STREQ(e, "config.yaml line 3: appearance.name: aliases are not supported");
}

static void test_limits(void) {
        _cleanup_free_ char *deep = NULL, *e = NULL, *error = NULL;
        size_t n = 100;
        OctoConfig c = {};

        /* Nesting deeper than any config.yaml has: refused, in a key we would otherwise skip. */
        deep = malloc(2 * n + 32);
        ASSERT_NOT_NULL(deep);
        memset(deep, '[', n);
        memset(deep + n, ']', n);
        strcpy(deep + 2 * n, "\n");
        {
                _cleanup_free_ char *doc = NULL;
                ASSERT_TRUE(asprintf(&doc, "foo: %s", deep) > 0);
                e = parse_fail(doc);
                ASSERT_CONTAINS(e, "nested deeper than");
        }

        /* Sizes above the limit are refused before parsing. */
        ASSERT_EQ(octoconfig_parse("a: 1\n", OCTOCONFIG_SIZE_MAX + 1, &c, &error), -EFBIG);
        ASSERT_CONTAINS(error, "larger than");
}

int main(void) {
        RUN(test_full);
        RUN(test_empty_and_missing);
        RUN(test_scalars);
        RUN(test_duplicate_keys);
        RUN(test_malformed);
        RUN(test_wrong_types);
        RUN(test_aliases);
        RUN(test_limits);
        return 0;
}
