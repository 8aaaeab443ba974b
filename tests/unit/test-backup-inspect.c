/* SPDX-License-Identifier: GPL-2.0-or-later */

/* client/backup-inspect.c: entry name safety, and inspecting zips made here with libzip. */

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backup-inspect.h"
#include "test-util.h"

typedef struct Entry {
        const char *name;
        const char *data;       /* NULL: a directory entry */
        mode_t mode;            /* 0: leave libzip's default */
} Entry;

static char tmpdir[] = "/tmp/test-backup-inspect-XXXXXX";

static char *make_zip(const char *file, const Entry *entries, size_t n) {
        char *path;
        zip_t *z;
        int err;

        ASSERT_TRUE(asprintf(&path, "%s/%s", tmpdir, file) > 0);
        z = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &err);
        ASSERT_TRUE(z);
        for (size_t k = 0; k < n; k++) {
                zip_int64_t i;

                if (!entries[k].data) {
                        i = zip_dir_add(z, entries[k].name, ZIP_FL_ENC_UTF_8);
                } else {
                        zip_source_t *s = zip_source_buffer(z, entries[k].data, strlen(entries[k].data), 0);
                        ASSERT_TRUE(s);
                        i = zip_file_add(z, entries[k].name, s, ZIP_FL_ENC_UTF_8);
                }
                ASSERT_TRUE(i >= 0);
                if (entries[k].mode)
                        ASSERT_EQ(zip_file_set_external_attributes(z, (zip_uint64_t) i, 0, ZIP_OPSYS_UNIX,
                                                                   (zip_uint32_t) entries[k].mode << 16), 0);
        }
        ASSERT_EQ(zip_close(z), 0);
        return path;
}

/* The test's zips go as soon as they are inspected. */
static void drop(char *path) {
        (void) unlink(path);
        free(path);
}

static void inspect_file(const char *path, BackupInspection *ret) {
        zip_t *z;
        int err;

        z = zip_open(path, ZIP_RDONLY, &err);
        ASSERT_TRUE(z);
        ASSERT_EQ(backup_inspect(z, ret), 0);
        zip_discard(z);
}

static bool has_problem(const BackupInspection *b, const char *part) {
        STRV_FOREACH(p, b->problems)
                if (strstr(*p, part))
                        return true;
        return false;
}

static void test_entry_names(void) {
        static const char *const safe[] = {
                "metadata.json", "plugin_list.json", "basedir/config.yaml", "basedir/uploads/a b.gcode",
                "basedir/data/plugin/", "basedir/.hidden", "basedir/x..y", "basedir/Ünïcode.gcode",
        };
        static const char *const unsafe[] = {
                "", "/etc/passwd", "../x", "basedir/../x", "basedir/a/../../x", "basedir//x", "basedir/a\\b",
                "C:/x", "c:basedir", "basedir/a\nb", "basedir/\x7f", "other/file", "metadata.json/", "basedir",
                "basedir/..", "./basedir/x",
        };
        char *longname;

        for (size_t k = 0; k < ELEMENTSOF(safe); k++)
                if (!inspect_entry_name_is_safe(safe[k])) {
                        fprintf(stderr, "refused a safe name: '%s'\n", safe[k]);
                        exit(EXIT_FAILURE);
                }
        for (size_t k = 0; k < ELEMENTSOF(unsafe); k++)
                if (inspect_entry_name_is_safe(unsafe[k])) {
                        fprintf(stderr, "accepted an unsafe name: '%s'\n", unsafe[k]);
                        exit(EXIT_FAILURE);
                }

        longname = malloc(INSPECT_NAME_MAX + 2);
        ASSERT_TRUE(longname);
        memcpy(longname, "basedir/", 8);
        memset(longname + 8, 'a', INSPECT_NAME_MAX - 8);
        longname[INSPECT_NAME_MAX] = 0;
        ASSERT_TRUE(inspect_entry_name_is_safe(longname));
        strcat(longname, "a");
        ASSERT_FALSE(inspect_entry_name_is_safe(longname));
        free(longname);
}

static void test_valid_backup(void) {
        static const Entry entries[] = {
                { "metadata.json", "{\"version\": \"1.10.3\", \"excludes\": [\"timelapse\", \"timelapse_tmp\"]}" },
                { "basedir/config.yaml", "server: {}\n" },
                { "basedir/users.yaml", "{}\n" },
                { "basedir/uploads/a.gcode", "G28\n" },
                { "basedir/uploads/sub/b.gcode", "G1 X1\n" },
                { "basedir/data/plugin/", NULL },
                { "basedir/data/plugin/x.json", "[]" },
                { "plugin_list.json", "[{\"key\": \"octolapse\", \"name\": \"Octolapse\", \"url\": "
                                      "\"https://github.com/FormerLurker/Octolapse\"}, "
                                      "{\"key\": \"lights\", \"name\": \"Lights\", \"url\": null}]" },
        };
        char *path = make_zip("valid.zip", entries, ELEMENTSOF(entries));
        BackupInspection b;
        uint64_t size = 0;

        inspect_file(path, &b);
        if (!backup_inspection_valid(&b)) {
                fprintf(stderr, "a valid backup was refused: %s\n", b.problems[0]);
                exit(EXIT_FAILURE);
        }
        ASSERT_STREQ(b.version, "1.10.3");
        ASSERT_EQ(strv_length(b.excludes), 2);
        ASSERT_STREQ(b.excludes[0], "timelapse");
        ASSERT_STREQ(b.excludes[1], "timelapse_tmp");
        ASSERT_TRUE(b.has_metadata && b.has_config && b.has_users && b.has_plugin_list);
        ASSERT_EQ(b.entries, ELEMENTSOF(entries));
        for (size_t k = 0; k < ELEMENTSOF(entries); k++)
                size += entries[k].data ? strlen(entries[k].data) : 0;
        ASSERT_EQ(b.uncompressed_size, size);

        ASSERT_EQ(b.n_plugins, 2);
        ASSERT_STREQ(b.plugins[0].key, "octolapse");
        ASSERT_STREQ(b.plugins[0].name, "Octolapse");
        ASSERT_STREQ(b.plugins[0].url, "https://github.com/FormerLurker/Octolapse");
        ASSERT_STREQ(b.plugins[1].key, "lights");
        ASSERT_TRUE(b.plugins[1].url == NULL);

        /* Folders in order of appearance; "" holds the files right in basedir/; directory entries
         * count for nothing. */
        ASSERT_EQ(b.n_folders, 3);
        ASSERT_STREQ(b.folders[0].name, "");
        ASSERT_EQ(b.folders[0].entries, 2);
        ASSERT_EQ(b.folders[0].size, strlen("server: {}\n") + strlen("{}\n"));
        ASSERT_STREQ(b.folders[1].name, "uploads");
        ASSERT_EQ(b.folders[1].entries, 2);
        ASSERT_EQ(b.folders[1].size, strlen("G28\n") + strlen("G1 X1\n"));
        ASSERT_STREQ(b.folders[2].name, "data");
        ASSERT_EQ(b.folders[2].entries, 1);
        backup_inspection_done(&b);
        drop(path);
}

static void test_invalid_backups(void) {
        static const Entry no_users[] = {
                { "metadata.json", "{\"version\": \"1.9.0\", \"excludes\": []}" },
                { "basedir/config.yaml", "a: 1\n" },
        };
        static const Entry bad_metadata[] = {
                { "metadata.json", "{\"version\": 1.9}" },
                { "basedir/config.yaml", "a: 1\n" },
                { "basedir/users.yaml", "{}\n" },
        };
        static const Entry not_json[] = {
                { "metadata.json", "{\"version\": \"1.9.0\"} trailing" },
                { "basedir/config.yaml", "a: 1\n" },
                { "basedir/users.yaml", "{}\n" },
        };
        static const Entry unsafe[] = {
                { "metadata.json", "{\"version\": \"1.9.0\", \"excludes\": []}" },
                { "basedir/config.yaml", "a: 1\n" },
                { "basedir/users.yaml", "{}\n" },
                { "basedir/../../etc/cron.d/x", "* * * * * root sh\n" },
                { "basedir/link", "/etc/shadow", S_IFLNK | 0777 },
                { "basedir/plain", "no type bits: a file\n", 0644 },
                { "plugin_list.json", "{\"not\": \"a list\"}" },
        };
        BackupInspection b;
        char *path;

        path = make_zip("no-users.zip", no_users, ELEMENTSOF(no_users));
        inspect_file(path, &b);
        ASSERT_FALSE(backup_inspection_valid(&b));
        ASSERT_TRUE(has_problem(&b, "basedir/users.yaml is missing"));
        ASSERT_STREQ(b.version, "1.9.0");
        backup_inspection_done(&b);
        drop(path);

        path = make_zip("bad-metadata.zip", bad_metadata, ELEMENTSOF(bad_metadata));
        inspect_file(path, &b);
        ASSERT_FALSE(backup_inspection_valid(&b));
        ASSERT_TRUE(has_problem(&b, "no \"version\" string"));
        ASSERT_TRUE(b.version == NULL);
        backup_inspection_done(&b);
        drop(path);

        path = make_zip("not-json.zip", not_json, ELEMENTSOF(not_json));
        inspect_file(path, &b);
        ASSERT_TRUE(has_problem(&b, "metadata.json is not a JSON object"));
        backup_inspection_done(&b);
        drop(path);

        path = make_zip("unsafe.zip", unsafe, ELEMENTSOF(unsafe));
        inspect_file(path, &b);
        ASSERT_FALSE(backup_inspection_valid(&b));
        ASSERT_TRUE(has_problem(&b, "unsafe entry name 'basedir/../../etc/cron.d/x'"));
        ASSERT_TRUE(has_problem(&b, "basedir/link is a symbolic link"));
        ASSERT_FALSE(has_problem(&b, "basedir/plain"));
        ASSERT_TRUE(has_problem(&b, "plugin_list.json is not a JSON array"));
        ASSERT_EQ(strv_length(b.problems), 3);
        backup_inspection_done(&b);
        drop(path);
}

static void test_metadata_too_large(void) {
        size_t n = INSPECT_JSON_MAX + 100;
        char *big = malloc(n + 1);
        Entry entries[3] = {
                { "metadata.json", big },
                { "basedir/config.yaml", "a: 1\n" },
                { "basedir/users.yaml", "{}\n" },
        };
        BackupInspection b;
        char *path;

        ASSERT_TRUE(big);
        /* A valid JSON document, only too large: the bound, not the parser, refuses it. */
        memset(big, ' ', n);
        memcpy(big, "{\"version\": \"1.0.0\"}", 20);
        big[n] = 0;
        path = make_zip("big-metadata.zip", entries, ELEMENTSOF(entries));
        inspect_file(path, &b);
        ASSERT_FALSE(backup_inspection_valid(&b));
        ASSERT_TRUE(has_problem(&b, "metadata.json is larger than"));
        backup_inspection_done(&b);
        drop(path);
        free(big);
}

int main(void) {
        ASSERT_TRUE(mkdtemp(tmpdir));
        test_entry_names();
        test_valid_backup();
        test_invalid_backups();
        test_metadata_too_large();
        ASSERT_EQ(rmdir(tmpdir), 0);
        printf("ok\n");
        return 0;
}
