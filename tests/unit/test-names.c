/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "folders.h"
#include "names.h"
#include "test-util.h"

static char *repeat(char c, size_t n, const char *suffix) {
        char *s = malloc(n + strlen(suffix) + 1);

        ASSERT_NOT_NULL(s);
        memset(s, c, n);
        strcpy(s + n, suffix);
        return s;
}

static void test_backup_name(void) {
        _cleanup_free_ char *longest = repeat('a', 201, ".zip"), *too_long = repeat('a', 202, ".zip");
        static const char *const good[] = {
                "octoprint-backup-20240101-120000.zip", "a.zip", "0.zip", "My-Printer_2.backup.zip", "a..zip",
        };
        static const char *const bad[] = {
                ".zip", "-a.zip", "_a.zip", ".hidden.zip", "a b.zip", "../x.zip", "a/b.zip", "a.ZIP", "a.zip.tmp",
                "a", "", "\xc3\xa4.zip", "a\n.zip",
        };

        for (size_t i = 0; i < ELEMENTSOF(good); i++)
                ASSERT_TRUE(backup_name_is_valid(good[i]));
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                if (backup_name_is_valid(bad[i])) {
                        fprintf(stderr, "\"%s\" accepted\n", bad[i]);
                        exit(EXIT_FAILURE);
                }
        ASSERT_FALSE(backup_name_is_valid(NULL));
        /* 1 + 200 characters before ".zip" is the limit of the pattern in opbackupd(8), ARCHIVE FORMAT. */
        ASSERT_TRUE(backup_name_is_valid(longest));
        ASSERT_FALSE(backup_name_is_valid(too_long));
}

static void check_prefix(const char *appearance, const char *expected) {
        _cleanup_free_ char *p = backup_prefix_from_appearance(appearance);
        ASSERT_STREQ(p, expected);
}

static void test_prefix(void) {
        _cleanup_free_ char *long_name = repeat('x', 300, ""), *capped = NULL, *file = NULL;

        check_prefix("OctoPi", "OctoPi");
        check_prefix("My Printer", "My-Printer");
        check_prefix("Prusa #2 (\xc3\xbc)", "Prusa-2-");
        check_prefix("a.b_c-d", "a.b_c-d");
        check_prefix("  leading", "leading");
        check_prefix("", "octoprint");
        check_prefix(NULL, "octoprint");
        check_prefix("\xc3\xa4\xc3\xb6\xc3\xbc", "octoprint");

        /* Whatever the appearance name, the file name made from it is one the daemon accepts. */
        capped = backup_prefix_from_appearance(long_name);
        ASSERT_NOT_NULL(capped);
        file = backup_filename(capped, 0, true);
        ASSERT_TRUE(backup_name_is_valid(file));
}

static void test_filename(void) {
        _cleanup_free_ char *a = NULL, *b = NULL;

        setenv("TZ", "UTC", 1);
        tzset();
        a = backup_filename("octoprint", 0, false);
        ASSERT_STREQ(a, "octoprint-backup-19700101-000000.zip");
        b = backup_filename("My-Printer", 1700000000, false);
        ASSERT_STREQ(b, "My-Printer-backup-20231114-221320.zip");
        ASSERT_TRUE(backup_name_is_valid(b));
        free(b);
        b = backup_filename("My-Printer", 1700000000, true);
        ASSERT_STREQ(b, "My-Printer-backup-20231114-221320-scheduled.zip");
        ASSERT_TRUE(backup_name_is_valid(b));
}

static void test_variants(void) {
        _cleanup_free_ char *v0 = backup_name_variant("race.zip", 0), *v1 = backup_name_variant("race.zip", 1),
                            *v999 = backup_name_variant("a.b.zip", 999);

        ASSERT_STREQ(v0, "race.zip");
        ASSERT_STREQ(v1, "race.1.zip");
        ASSERT_STREQ(v999, "a.b.999.zip");
        ASSERT_TRUE(backup_name_is_variant("race.zip", "race.zip"));
        ASSERT_TRUE(backup_name_is_variant("race.1.zip", "race.zip"));
        ASSERT_TRUE(backup_name_is_variant("race.999.zip", "race.zip"));
        ASSERT_TRUE(backup_name_is_variant("a.b.7.zip", "a.b.zip"));
        ASSERT_FALSE(backup_name_is_variant("race.1000.zip", "race.zip"));
        ASSERT_FALSE(backup_name_is_variant("race.0.zip", "race.zip"));
        ASSERT_FALSE(backup_name_is_variant("race.01.zip", "race.zip"));
        ASSERT_FALSE(backup_name_is_variant("race.1.zip.zip", "race.zip"));
        ASSERT_FALSE(backup_name_is_variant("race.x.zip", "race.zip"));
        ASSERT_FALSE(backup_name_is_variant("race..zip", "race.zip"));
        ASSERT_FALSE(backup_name_is_variant("racer.zip", "race.zip"));
        ASSERT_FALSE(backup_name_is_variant("race2.zip", "race.zip"));
        ASSERT_FALSE(backup_name_is_variant("rac.zip", "race.zip"));
        ASSERT_FALSE(backup_name_is_variant("a.zip", "a.b.zip"));
}

static void test_instance_name(void) {
        _cleanup_free_ char *max = repeat('a', 64, ""), *over = repeat('a', 65, "");
        static const char *const good[] = { "pi", "farm-2", "a.b_c", "0", "A" };
        static const char *const bad[] = { "", ".x", "a b", "a/b", "..", "\xc3\xa4", "a\n" };

        for (size_t i = 0; i < ELEMENTSOF(good); i++)
                ASSERT_TRUE(instance_name_is_valid(good[i]));
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                ASSERT_FALSE(instance_name_is_valid(bad[i]));
        ASSERT_FALSE(instance_name_is_valid(NULL));
        ASSERT_TRUE(instance_name_is_valid(max));
        ASSERT_FALSE(instance_name_is_valid(over));
}

static void test_folders(void) {
        /* opbackupd(8), ARCHIVE FORMAT: the identifiers in this order. */
        static const char *const ids[] = {
                "uploads", "timelapse", "timelapse_tmp", "logs", "virtualSd", "watched", "plugins",
                "slicingProfiles", "printerProfiles", "scripts", "translations", "generated", "data",
                "uploadtemp",
        };
        static const char *const excludable[] = {
                "uploads", "timelapse", "virtualSd", "plugins", "slicingProfiles", "printerProfiles",
                "scripts", "translations", "data",
        };
        static const char *const always[] = { "logs", "watched", "generated", "uploadtemp" };

        ASSERT_EQ(_FOLDER_MAX, ELEMENTSOF(ids));
        for (int i = 0; i < _FOLDER_MAX; i++) {
                ASSERT_STREQ(folder_id_to_string((FolderId) i), ids[i]);
                ASSERT_EQ(folder_id_from_string(ids[i]), i);
        }
        ASSERT_EQ((int) folder_id_from_string("Uploads"), -1);     /* case matters, as in OctoPrint */
        ASSERT_EQ((int) folder_id_from_string("bogus"), -1);
        ASSERT_EQ((int) folder_id_from_string(NULL), -1);
        ASSERT_NULL(folder_id_to_string(_FOLDER_MAX));

        ASSERT_STREQ(folder_default_relpath(FOLDER_TIMELAPSE_TMP), "timelapse/tmp");
        ASSERT_STREQ(folder_default_relpath(FOLDER_VIRTUALSD), "virtualSd");
        ASSERT_STREQ(folder_default_relpath(FOLDER_UPLOADTEMP), "uploadtemp");

        for (int i = 0; i < _FOLDER_MAX; i++) {
                bool ex = false, al = false;
                for (size_t j = 0; j < ELEMENTSOF(excludable); j++)
                        ex = ex || streq(excludable[j], ids[i]);
                for (size_t j = 0; j < ELEMENTSOF(always); j++)
                        al = al || streq(always[j], ids[i]);
                ASSERT_EQ(folder_excludable((FolderId) i), ex);
                ASSERT_EQ(folder_always_excluded((FolderId) i), al);
        }
        ASSERT_FALSE(folder_excludable(_FOLDER_MAX));
}

int main(void) {
        RUN(test_backup_name);
        RUN(test_prefix);
        RUN(test_filename);
        RUN(test_variants);
        RUN(test_instance_name);
        RUN(test_folders);
        return 0;
}
