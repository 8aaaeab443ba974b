/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The pure parts of the backup engine: exclude paths, drop-in and hook output parsing, metadata excludes,
 * folder locations, entry-name checks, what is stored uncompressed, DOS time clamping. */

#include <syslog.h>
#include <time.h>

#include "backup/archive-write.h"
#include "backup/backup-plan.h"
#include "backup/excludes.h"
#include "test-util.h"

static char **warnings;

static void cap_log(int level, const char *line, void *userdata) {
        fprintf(stderr, "  [%d] %s\n", level, line);
        if (level <= LOG_WARNING)
                ASSERT_EQ(strv_extend(&warnings, line), 0);
}

static const BackupCallbacks cb = { .log = cap_log };

static void check_norm(const char *in, const char *expected) {
        _cleanup_free_ char *out = NULL;
        int r = exclude_path_normalize(in, &out);

        if (!expected) {
                ASSERT_EQ(r, -EINVAL);
                return;
        }
        ASSERT_EQ(r, 0);
        ASSERT_STREQ(out, expected);
}

static void test_normalize(void) {
        check_norm("foo.txt", "foo.txt");
        check_norm("cache/", "cache");
        check_norm("a//b/./c/", "a/b/c");
        check_norm("./x", "x");
        check_norm(".", "");
        check_norm("./", "");
        check_norm("..foo", "..foo");
        check_norm("foo..", "foo..");
        check_norm("", NULL);
        check_norm("/etc/passwd", NULL);
        check_norm("..", NULL);
        check_norm("a/../../b", NULL);
        check_norm("a/..", NULL);
        check_norm("tab\there", NULL);
        check_norm("back\\slash", NULL);
}

static void test_plugin_names(void) {
        ASSERT_TRUE(plugin_name_is_valid("backup_exclude_test"));
        ASSERT_TRUE(plugin_name_is_valid("Foo-Bar.2"));
        ASSERT_FALSE(plugin_name_is_valid(""));
        ASSERT_FALSE(plugin_name_is_valid(".hidden"));
        ASSERT_FALSE(plugin_name_is_valid("a/b"));
        ASSERT_FALSE(plugin_name_is_valid("a b"));
        ASSERT_FALSE(plugin_name_is_valid("backup~"));
}

static char *joined(char **l) {
        char *s = strdup("");

        STRV_FOREACH(i, l) {
                char *t;
                ASSERT_TRUE(asprintf(&t, "%s%s[%s]", s, *s ? " " : "", *i) >= 0);
                free(s);
                s = t;
        }
        return s;
}

static void check_dropin(const char *text, char **excludes, int expected_r, const char *expected) {
        _cleanup_strv_free_ char **paths = NULL;
        _cleanup_free_ char *j = NULL;
        int r = exclude_dropin_parse(text, "test.conf", excludes, &cb, &paths);

        ASSERT_EQ(r, expected_r);
        if (r < 0)
                return;
        j = joined(paths);
        ASSERT_STREQ(j, expected);
}

static void test_dropin(void) {
        char *none[] = { NULL };
        char *uploads[] = { (char *) "uploads", NULL };
        char *both[] = { (char *) "uploads", (char *) "timelapse", (char *) "timelapse_tmp", NULL };
        const char *example2 = "[Exclude.uploads]\nPaths=.\n";
        const char *mixed =
                "; comment\n"
                "# comment\n"
                "[Exclude]\n"
                "Paths=foo.txt cache/          # always\n"
                "Paths=more.txt\n"
                "[Exclude.uploads+timelapse]\n"
                "Paths=timelapse-thumbs/\n"
                "[Exclude.uploads]\n"
                "Paths=gcode-analysis\n";

        /* Example 1 and 2 of the seed. */
        check_dropin("[Exclude]\nPaths=foo.txt\n", none, 0, "[foo.txt]");
        check_dropin(example2, none, 0, "");
        check_dropin(example2, uploads, 0, "[]");
        check_dropin(mixed, none, 0, "[foo.txt] [cache] [more.txt]");
        check_dropin(mixed, uploads, 0, "[foo.txt] [cache] [more.txt] [gcode-analysis]");
        check_dropin(mixed, both, 0, "[foo.txt] [cache] [more.txt] [timelapse-thumbs] [gcode-analysis]");

        /* Unknown sections, folder ids and keys are warned about and ignored, bad paths skipped. */
        strv_free(warnings);
        warnings = NULL;
        check_dropin("[Exclude.nosuchfolder]\nPaths=x\n[Other]\nPaths=y\n[Exclude]\nPath=z\nPaths=../x /abs ok\n",
                     uploads, 0, "[ok]");
        ASSERT_EQ(strv_length(warnings), 5);
        ASSERT_CONTAINS(warnings[0], "[Exclude.nosuchfolder]");
        ASSERT_CONTAINS(warnings[2], "Path=");
        ASSERT_CONTAINS(warnings[3], "\"../x\"");

        /* A syntax error ignores the whole file. */
        check_dropin("[Exclude]\nPaths=a\nthis is not ini\n", none, -EBADMSG, NULL);
        {
                /* inih's 200-byte lines: a long Paths= line is refused with a hint, several short ones work. */
                _cleanup_free_ char *longline = NULL;
                char words[400] = "";

                for (int i = 0; i < 40; i++)
                        strcat(words, "abcdefgh ");
                ASSERT_TRUE(asprintf(&longline, "[Exclude]\nPaths=%s\n", words) >= 0);
                strv_free(warnings);
                warnings = NULL;
                check_dropin(longline, none, -EBADMSG, NULL);
                ASSERT_CONTAINS(warnings[0], "split long Paths=");
                check_dropin("[Exclude]\nPaths=a b\nPaths=c\n  d\n", none, 0, "[a] [b] [c] [d]");
        }
}

static void check_hook(const char *out, int expected_r, const char *expected) {
        _cleanup_strv_free_ char **paths = NULL;
        _cleanup_free_ char *error = NULL, *j = NULL;
        int r = exclude_hook_output_parse(out, strlen(out), &paths, &error);

        ASSERT_EQ(r, expected_r);
        if (r < 0) {
                ASSERT_NOT_NULL(error);
                fprintf(stderr, "  %s -> %s\n", out, error);
                return;
        }
        j = joined(paths);
        ASSERT_STREQ(j, expected);
}

static void test_hook_output(void) {
        check_hook("[\"foo.txt\"]\n", 0, "[foo.txt]");
        check_hook("[\".\"]", 0, "[.]");
        check_hook("[]", 0, "");
        check_hook("", 0, "");
        check_hook(" \n", 0, "");
        check_hook("[\"a\", \"b/c\", \"..\"]", 0, "[a] [b/c] [..]");   /* checked later, with a warning each */
        check_hook("[\"\\u00fc\"]", 0, "[\xc3\xbc]");
        check_hook("null", -EBADMSG, NULL);
        check_hook("{\"a\": 1}", -EBADMSG, NULL);
        check_hook("[1]", -EBADMSG, NULL);
        check_hook("[\"a\\u0000b\"]", -EBADMSG, NULL);
        check_hook("[\"a\"", -EBADMSG, NULL);
        check_hook("[\"a\"] trailing", -EBADMSG, NULL);
        check_hook("[\"a\"][\"b\"]", -EBADMSG, NULL);
        check_hook("not json", -EBADMSG, NULL);
}

static void test_metadata_excludes(void) {
        char *a[] = { (char *) "uploads", (char *) "timelapse", NULL };
        char *b[] = { (char *) "timelapse", (char *) "uploads", NULL };
        char *c[] = { (char *) "data", NULL };
        _cleanup_strv_free_ char **ra = NULL, **rb = NULL, **rc = NULL, **rn = NULL;
        _cleanup_free_ char *ja = NULL, *jb = NULL, *jc = NULL;

        ASSERT_EQ(backup_metadata_excludes(a, &ra), 0);
        ASSERT_EQ(backup_metadata_excludes(b, &rb), 0);
        ASSERT_EQ(backup_metadata_excludes(c, &rc), 0);
        ASSERT_EQ(backup_metadata_excludes(NULL, &rn), 0);
        ja = joined(ra);
        jb = joined(rb);
        jc = joined(rc);
        /* OctoPrint appends timelapse_tmp at the end. */
        ASSERT_STREQ(ja, "[uploads] [timelapse] [timelapse_tmp]");
        ASSERT_STREQ(jb, "[timelapse] [uploads] [timelapse_tmp]");
        ASSERT_STREQ(jc, "[data]");
        ASSERT_NOT_NULL(rn);
        ASSERT_EQ(strv_length(rn), 0);
}

static void test_locations(void) {
        OctoConfig o = {};
        char *l[_FOLDER_MAX];

        o.folders[FOLDER_UPLOADS] = (char *) "/mnt/usb/uploads";
        o.folders[FOLDER_VIRTUALSD] = (char *) "sd";
        o.folders[FOLDER_TIMELAPSE] = (char *) "~/timelapse";
        setenv("HOME", "/home/pi", 1);
        ASSERT_EQ(plan_folder_locations("/b", &o, l), 0);
        ASSERT_STREQ(l[FOLDER_UPLOADS], "/mnt/usb/uploads");
        ASSERT_STREQ(l[FOLDER_VIRTUALSD], "/b/sd");
        ASSERT_STREQ(l[FOLDER_TIMELAPSE], "/home/pi/timelapse");
        ASSERT_STREQ(l[FOLDER_TIMELAPSE_TMP], "/b/timelapse/tmp");
        ASSERT_STREQ(l[FOLDER_DATA], "/b/data");
        for (int i = 0; i < _FOLDER_MAX; i++)
                free(l[i]);
        ASSERT_EQ(plan_folder_locations("/b", NULL, l), 0);
        ASSERT_STREQ(l[FOLDER_UPLOADTEMP], "/b/uploadtemp");
        for (int i = 0; i < _FOLDER_MAX; i++)
                free(l[i]);
}

static void test_name_components(void) {
        ASSERT_TRUE(plan_name_component_ok("plain.gcode"));
        ASSERT_TRUE(plan_name_component_ok("\xc3\x9cn\xc3\xaf" "code \xf0\x9f\x98\x80.gcode"));
        ASSERT_FALSE(plan_name_component_ok("bad\xff.gcode"));           /* not UTF-8 */
        ASSERT_FALSE(plan_name_component_ok("\xc0\xaf"));                /* overlong */
        ASSERT_FALSE(plan_name_component_ok("\xed\xa0\x80"));            /* surrogate */
        ASSERT_FALSE(plan_name_component_ok("tab\there"));
        ASSERT_FALSE(plan_name_component_ok("new\nline"));
        ASSERT_FALSE(plan_name_component_ok("back\\slash"));
}

static void test_compressed_names(void) {
        ASSERT_TRUE(archive_name_is_compressed("basedir/timelapse/print_20240101.mp4"));
        ASSERT_TRUE(archive_name_is_compressed("basedir/timelapse/tmp/frame-0001.JPG"));
        ASSERT_TRUE(archive_name_is_compressed("basedir/data/x/archive.tar.gz"));
        ASSERT_FALSE(archive_name_is_compressed("basedir/uploads/part.gcode"));
        ASSERT_FALSE(archive_name_is_compressed("basedir/data/x.jpg/notes"));
        ASSERT_FALSE(archive_name_is_compressed("basedir/data/mp4"));
        ASSERT_FALSE(archive_name_is_compressed("basedir/users.yaml"));
}

static void test_clamp_mtime(void) {
        struct tm tm = { .tm_year = 80, .tm_mday = 1, .tm_isdst = -1 };
        time_t t1980 = mktime(&tm);

        ASSERT_EQ(archive_clamp_mtime(0), t1980);
        ASSERT_EQ(archive_clamp_mtime(t1980 + 5), t1980 + 5);
        ASSERT_EQ(archive_clamp_mtime(1700000000), 1700000000);
        ASSERT_TRUE(archive_clamp_mtime(INT64_C(9000000000)) < INT64_C(9000000000));
}

int main(void) {
        setenv("TZ", "UTC", 1);
        tzset();
        RUN(test_normalize);
        RUN(test_plugin_names);
        RUN(test_dropin);
        RUN(test_hook_output);
        RUN(test_metadata_excludes);
        RUN(test_locations);
        RUN(test_name_components);
        RUN(test_compressed_names);
        RUN(test_clamp_mtime);
        strv_free(warnings);
        return 0;
}
