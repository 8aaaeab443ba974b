/* SPDX-License-Identifier: GPL-2.0-or-later */

/* client/backup-inspect.c: inspecting zips made here with libzip, and that `opbackupctl inspect` calls
 * valid exactly what a restore takes (the restore test's hostile corpus through both). */

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
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
        int fd = open(path, O_RDONLY | O_CLOEXEC);

        ASSERT_TRUE(fd >= 0);
        ASSERT_EQ(backup_inspect(fd, ret), 0);
        close(fd);
}

static bool has_problem(const BackupInspection *b, const char *part) {
        STRV_FOREACH(p, b->problems)
                if (strstr(*p, part))
                        return true;
        return false;
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
        ASSERT_TRUE(has_problem(&b, "Backup lacks basedir/users.yaml"));
        ASSERT_TRUE(b.has_metadata && b.has_config && !b.has_users);
        backup_inspection_done(&b);
        drop(path);

        path = make_zip("bad-metadata.zip", bad_metadata, ELEMENTSOF(bad_metadata));
        inspect_file(path, &b);
        ASSERT_FALSE(backup_inspection_valid(&b));
        ASSERT_TRUE(has_problem(&b, "metadata.json has no \"version\" string"));
        ASSERT_TRUE(b.version == NULL);
        backup_inspection_done(&b);
        drop(path);

        path = make_zip("not-json.zip", not_json, ELEMENTSOF(not_json));
        inspect_file(path, &b);
        ASSERT_TRUE(has_problem(&b, "metadata.json is not valid JSON"));
        backup_inspection_done(&b);
        drop(path);

        /* The first reason a restore would give. */
        path = make_zip("unsafe.zip", unsafe, ELEMENTSOF(unsafe));
        inspect_file(path, &b);
        ASSERT_FALSE(backup_inspection_valid(&b));
        ASSERT_TRUE(has_problem(&b, "Backup entry 'basedir/../../etc/cron.d/x' leaves basedir"));
        ASSERT_EQ(strv_length(b.problems), 1);
        ASSERT_EQ(b.entries, ELEMENTSOF(unsafe));
        backup_inspection_done(&b);
        drop(path);
}

/* The two disagreements that were: "basedir/./x" (inspect said valid, restore refused) and a top-level
 * "future.json" (inspect said invalid, restore took it, ignoring the file). */
static void test_former_disagreements(void) {
        static const Entry dot[] = {
                { "metadata.json", "{\"version\": \"1.9.0\", \"excludes\": []}" },
                { "basedir/config.yaml", "a: 1\n" },
                { "basedir/users.yaml", "{}\n" },
                { "basedir/./x", "x" },
        };
        static const Entry future[] = {
                { "metadata.json", "{\"version\": \"1.9.0\", \"excludes\": []}" },
                { "basedir/config.yaml", "a: 1\n" },
                { "basedir/users.yaml", "{}\n" },
                { "future.json", "{}" },
        };
        BackupInspection b;
        char *path;

        path = make_zip("dot.zip", dot, ELEMENTSOF(dot));
        inspect_file(path, &b);
        ASSERT_FALSE(backup_inspection_valid(&b));
        ASSERT_TRUE(has_problem(&b, "has a '.' path component"));
        backup_inspection_done(&b);
        drop(path);

        path = make_zip("future.zip", future, ELEMENTSOF(future));
        inspect_file(path, &b);
        ASSERT_TRUE(backup_inspection_valid(&b));
        ASSERT_EQ(strv_length(b.warnings), 1);
        ASSERT_CONTAINS(b.warnings[0], "Ignoring backup entry 'future.json'");
        backup_inspection_done(&b);
        drop(path);
}

/* Every zip of the restore test's corpus: inspect's verdict and reason are the restore's own. */
static void test_hostile_corpus_agrees(void) {
        _cleanup_free_ char *corpus = NULL, *cmd = NULL;
        size_t n = 0, invalid = 0;
        struct dirent *de;
        DIR *d;
        int r;

        ASSERT_TRUE(asprintf(&corpus, "%s/corpus", tmpdir) > 0);
        ASSERT_EQ(mkdir(corpus, 0700), 0);
        ASSERT_TRUE(asprintf(&cmd, "/usr/bin/python3 -W error '%s' '%s' '%s'", MAKE_HOSTILE_ZIPS, corpus, tmpdir) > 0);
        r = system(cmd);
        ASSERT_TRUE(WIFEXITED(r) && WEXITSTATUS(r) == 0);
        d = opendir(corpus);
        ASSERT_TRUE(d);
        while ((de = readdir(d))) {
                _cleanup_(archive_summary_done) ArchiveSummary s = {};
                _cleanup_free_ char *path = NULL, *error = NULL;
                BackupInspection b;
                int fd, v;

                if (de->d_name[0] == '.')
                        continue;
                ASSERT_TRUE(asprintf(&path, "%s/%s", corpus, de->d_name) > 0);
                if (endswith(de->d_name, ".zip")) {
                        fd = open(path, O_RDONLY | O_CLOEXEC);
                        ASSERT_TRUE(fd >= 0);
                        v = archive_validate(fd, RESTORE_ENTRIES_MAX, &s, &error);
                        ASSERT_EQ(backup_inspect(fd, &b), 0);
                        close(fd);
                        if (backup_inspection_valid(&b) != (v == 0)) {
                                fprintf(stderr, "%s: inspect says %s, restore says %s\n", de->d_name,
                                        backup_inspection_valid(&b) ? "valid" : b.problems[0], strempty(error));
                                exit(EXIT_FAILURE);
                        }
                        if (v < 0) {
                                ASSERT_STREQ(b.problems[0], error);
                                invalid++;
                        }
                        backup_inspection_done(&b);
                        n++;
                }
        }
        closedir(d);
        free(cmd);
        ASSERT_TRUE(asprintf(&cmd, "rm -rf '%s'", corpus) > 0);
        ASSERT_EQ(system(cmd), 0);
        fprintf(stderr, "  %zu corpus zips, %zu invalid, inspect and restore agree on each\n", n, invalid);
        ASSERT_TRUE(n >= 50 && invalid >= 40);
}

static void test_metadata_too_large(void) {
        size_t n = 64 * 1024 + 100;
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
        test_valid_backup();
        test_invalid_backups();
        test_former_disagreements();
        test_hostile_corpus_agrees();
        test_metadata_too_large();
        ASSERT_EQ(rmdir(tmpdir), 0);
        printf("ok\n");
        return 0;
}
