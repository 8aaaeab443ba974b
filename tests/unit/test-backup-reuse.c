/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A backup after a backup: unchanged files keep the previous backup's compressed data; files that changed
 * (even keeping their size), and entries of the previous backup that are damaged, are compressed again. The
 * result is checked by CPython's zipfile against the files as they are now, and by unzip -t. */

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>

#include "backup/backup.h"
#include "test-util.h"

#define FILE_SIZE (600U * 1024U)        /* above REUSE_MIN_SIZE */

typedef struct Run {
        char **lines;
} Run;

static void cap_log(int level, const char *line, void *userdata) {
        Run *r = userdata;

        (void) level;
        ASSERT_EQ(strv_extend(&r->lines, line), 0);
}

static bool logged(const Run *r, const char *sub) {
        return strv_find_substring(r->lines, sub);
}

static int backup(const char *root, const char *name, Run *r) {
        _cleanup_free_ char *basedir = NULL, *config = NULL, *folder = NULL, *error = NULL;
        char *excludes[] = { NULL };
        BackupRequest req;
        BackupCallbacks cb = { .log = cap_log, .userdata = r };

        ASSERT_TRUE(asprintf(&basedir, "%s/base", root) >= 0);
        ASSERT_TRUE(asprintf(&config, "%s/config.yaml", basedir) >= 0);
        ASSERT_TRUE(asprintf(&folder, "%s/data/backup", basedir) >= 0);
        req = (BackupRequest) {
                .instance = "test",
                .basedir = basedir,
                .config_file = config,
                .backup_folder = folder,
                .excludes = excludes,
                .name = name,
                .octoprint_version = "1.11.8",
                .compression_level = 5,
        };
        return backup_execute(&req, &cb, NULL, NULL, NULL, &error);
}

/* Every file entry of the zip holds what the file holds now (CPython's zipfile checks the CRCs too). */
static void check_against_files(const char *root, const char *name) {
        _cleanup_free_ char *cmd = NULL;
        int r;

        ASSERT_TRUE(asprintf(&cmd,
                "cd '%s/base' && /usr/bin/python3 -W error -c '"
                "import pathlib, zipfile\n"
                "z = zipfile.ZipFile(\"data/backup/%s\")\n"
                "names = [n for n in z.namelist() if n.startswith(\"basedir/uploads/\")]\n"
                "assert len(names) == 5, names\n"
                "for n in names:\n"
                "    assert z.read(n) == pathlib.Path(n[len(\"basedir/\"):]).read_bytes(), n\n"
                "' && unzip -tqq '%s/base/data/backup/%s'", root, name, root, name) >= 0);
        r = system(cmd);
        ASSERT_TRUE(WIFEXITED(r));
        ASSERT_EQ(WEXITSTATUS(r), 0);
}

/* Flips bytes in the middle of an entry's compressed data (found after its local header's name). */
static void damage_entry(const char *zip, const char *entry) {
        _cleanup_free_ char *data = NULL;
        _cleanup_close_ int fd = -1;
        size_t size = 0, n = strlen(entry);
        char *p;

        fd = open(zip, O_RDWR | O_CLOEXEC);
        ASSERT_TRUE(fd >= 0);
        ASSERT_EQ(read_full_fd(fd, 64 * 1024 * 1024, &data, &size), 0);
        p = memmem(data, size, entry, n);      /* the first: in the local header, before the data */
        ASSERT_NOT_NULL(p);
        for (size_t i = 0; i < 64; i++)
                p[n + 30 + 1000 + i] ^= 0x55;
        ASSERT_EQ(pwrite(fd, data, size, 0), (ssize_t) size);
}

static void test_reuse(void) {
        _cleanup_free_ char *root = make_tempdir(), *base = NULL, *first = NULL, *junk = NULL;
        Run r1 = {}, r2 = {}, r3 = {};

        ASSERT_TRUE(asprintf(&base, "%s/base", root) >= 0);
        make_dir(root, "base");
        write_file(base, "config.yaml", "appearance:\n  name: Test\n");
        make_dir(base, "data/backup");
        write_file(base, "uploads/small.gcode", "G28\n");
        write_gcode(base, "uploads/same.gcode", FILE_SIZE, 0);
        write_gcode(base, "uploads/edited.gcode", FILE_SIZE, 0);
        write_gcode(base, "uploads/grown.gcode", FILE_SIZE, 0);
        write_gcode(base, "uploads/rotten.gcode", FILE_SIZE, 0);

        ASSERT_EQ(backup(root, "first-20240101-000000.zip", &r1), 0);
        ASSERT_FALSE(logged(&r1, "Reused"));          /* nothing to reuse yet */
        check_against_files(root, "first-20240101-000000.zip");

        /* Same size, other content; bigger; unchanged but its entry damaged in the previous backup. */
        write_gcode(base, "uploads/edited.gcode", FILE_SIZE, 1);
        write_gcode(base, "uploads/grown.gcode", FILE_SIZE + 10, 0);
        ASSERT_TRUE(asprintf(&first, "%s/data/backup/first-20240101-000000.zip", base) >= 0);
        damage_entry(first, "basedir/uploads/rotten.gcode");

        ASSERT_EQ(backup(root, "second-20240101-000001.zip", &r2), 0);
        /* Only same.gcode: edited.gcode's CRC differs, rotten.gcode's data does not inflate to its CRC. */
        ASSERT_TRUE(logged(&r2, "Reused the compressed data of 1 unchanged file ("));
        ASSERT_TRUE(logged(&r2, "from first-20240101-000000.zip"));
        check_against_files(root, "second-20240101-000001.zip");

        /* The newest backup is what counts; one that is not a zip means nothing to reuse, not a failure. */
        write_file(base, "data/backup/third-20240101-000002.zip", "not a zip at all");
        ASSERT_TRUE(asprintf(&junk, "%s/data/backup/third-20240101-000002.zip", base) >= 0);
        ASSERT_EQ(backup(root, "fourth-20240101-000003.zip", &r3), 0);
        ASSERT_FALSE(logged(&r3, "Reused"));
        check_against_files(root, "fourth-20240101-000003.zip");

        strv_free(r1.lines);
        strv_free(r2.lines);
        strv_free(r3.lines);
        rm_rf(root);
}

int main(void) {
        RUN(test_reuse);
        return 0;
}
