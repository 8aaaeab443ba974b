/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The files cache: a backup after a backup with the cache reads none of the unchanged files (their
 * atime stays where the test put it), and no stale, damaged or foreign cache ever gives a wrong archive:
 * a file edited with its mtime put back (ctime differs), a cache of random bytes or cut short, a previous
 * backup deleted or replaced by another zip of the same name, a cache that passes every check but whose
 * backup's data was changed behind it, another CompressionLevel=. Every archive is checked by CPython's
 * zipfile (CRCs, and each entry against the file as it is now) and by unzip -t. */

#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <zlib.h>

#include "backup/backup.h"
#include "test-util.h"

#define GCODE_SIZE (700U * 1024U)
#define N_GCODE 4

typedef struct Env {
        char *root, *base, *folder, *state;
        char **lines;
        int level;
        unsigned n;             /* backups made */
} Env;

static void cap_log(int level, const char *line, void *userdata) {
        Env *e = userdata;

        (void) level;
        fprintf(stderr, "# %s\n", line);
        ASSERT_EQ(strv_extend(&e->lines, line), 0);
}

static bool logged(const Env *e, const char *sub) {
        return strv_find_substring(e->lines, sub);
}

/* Bytes that do not compress: stored, not deflated. */
static void write_random(const char *dir, const char *rel, size_t size) {
        _cleanup_free_ char *path = NULL;
        _cleanup_free_ uint8_t *b = malloc(size);
        FILE *f;

        ASSERT_NOT_NULL(b);
        for (size_t i = 0; i < size; i++)
                b[i] = (uint8_t) (random() >> 7);
        ASSERT_TRUE(asprintf(&path, "%s/%s", dir, rel) >= 0);
        f = fopen(path, "we");
        ASSERT_NOT_NULL(f);
        ASSERT_EQ(fwrite(b, 1, size, f), size);
        ASSERT_EQ(fclose(f), 0);
}

static char *path_in(const char *dir, const char *rel) {
        char *p;

        ASSERT_TRUE(asprintf(&p, "%s/%s", dir, rel) >= 0);
        return p;
}

/* One backup, the cache handled as the daemon does: its current file and an empty one for the next,
 * renamed over it when the worker says it wrote it. use_cache false: FilesCache=no. */
static char *backup(Env *e, bool use_cache) {
        _cleanup_free_ char *config = path_in(e->base, "config.yaml"), *cur = path_in(e->state, "inst"),
                            *next = path_in(e->state, ".inst.new"), *error = NULL;
        char *excludes[] = { NULL }, *name;
        int fds[2] = { -1, -1 };
        bool written = false;
        BackupCallbacks cb = { .log = cap_log, .userdata = e };
        BackupRequest req;

        ASSERT_TRUE(asprintf(&name, "b%u-20240101-0000%02u.zip", e->n, e->n) >= 0);
        e->n++;
        if (use_cache) {
                fds[0] = open(cur, O_RDONLY | O_CLOEXEC);
                fds[1] = open(next, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                ASSERT_TRUE(fds[1] >= 0);
        }
        req = (BackupRequest) {
                .instance = "test",
                .basedir = e->base,
                .config_file = config,
                .backup_folder = e->folder,
                .excludes = excludes,
                .name = name,
                .octoprint_version = "1.11.8",
                .compression_level = e->level,
                .files_cache_fds = use_cache ? fds : NULL,
                .files_cache_written = &written,
        };
        strv_free(e->lines);
        e->lines = NULL;
        ASSERT_EQ(backup_execute(&req, &cb, NULL, NULL, NULL, &error), 0);
        if (use_cache) {
                ASSERT_TRUE(written);
                ASSERT_EQ(rename(next, cur), 0);
                if (fds[0] >= 0)
                        close(fds[0]);
                close(fds[1]);
        } else
                ASSERT_FALSE(written);
        return name;
}

/* Every entry under basedir/uploads/ holds what the file holds now; the zip passes unzip -t. */
static void check_archive(const Env *e, const char *name) {
        _cleanup_free_ char *cmd = NULL;
        int r;

        ASSERT_TRUE(asprintf(&cmd,
                "cd '%s' && /usr/bin/python3 -W error -c '"
                "import pathlib, zipfile\n"
                "z = zipfile.ZipFile(\"data/backup/%s\")\n"
                "assert z.testzip() is None\n"
                "names = [n for n in z.namelist() if n.startswith(\"basedir/uploads/\")]\n"
                "assert len(names) == %d, names\n"
                "for n in names:\n"
                "    assert z.read(n) == pathlib.Path(n[len(\"basedir/\"):]).read_bytes(), n\n"
                "' && unzip -tqq '%s/%s'", e->base, name, N_GCODE + 2, e->folder, name) >= 0);
        r = system(cmd);
        ASSERT_TRUE(WIFEXITED(r));
        ASSERT_EQ(WEXITSTATUS(r), 0);
}

static const char *const files[] = {
        "uploads/a.gcode", "uploads/b.gcode", "uploads/c.gcode", "uploads/d.gcode", "uploads/clip.mp4",
        "uploads/note.txt",
};

/* Watches the instance's files for reads (inotify's IN_ACCESS: any read of any process, this one's too;
 * the stamps the cache compares stay untouched). */
static int watch_reads(const Env *e) {
        _cleanup_free_ char *uploads = path_in(e->base, "uploads");
        int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);

        ASSERT_TRUE(fd >= 0);
        ASSERT_TRUE(inotify_add_watch(fd, uploads, IN_ACCESS) >= 0);
        return fd;
}

/* Bytes of the files read since watch_reads() (each file read at all counts whole), and their total. */
static uint64_t bytes_read(const Env *e, int fd, uint64_t *ret_total) {
        bool was_read[ELEMENTSOF(files)] = {};
        uint64_t got = 0, total = 0;
        char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
        ssize_t n;

        while ((n = read(fd, buf, sizeof(buf))) > 0)
                for (char *p = buf; p < buf + n; p += sizeof(struct inotify_event) + ((struct inotify_event *) p)->len) {
                        const struct inotify_event *ev = (const struct inotify_event *) p;

                        for (size_t i = 0; i < ELEMENTSOF(files); i++)
                                if (ev->len > 0 && streq(ev->name, files[i] + strlen("uploads/")))
                                        was_read[i] = true;
                }
        ASSERT_TRUE(n < 0 && errno == EAGAIN);
        close(fd);
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                _cleanup_free_ char *p = path_in(e->base, files[i]);
                struct stat st;

                ASSERT_EQ(stat(p, &st), 0);
                total += (uint64_t) st.st_size;
                if (was_read[i])
                        got += (uint64_t) st.st_size;
        }
        if (ret_total)
                *ret_total = total;
        return got;
}

static void setup(Env *e) {
        e->root = make_tempdir();
        e->base = path_in(e->root, "base");
        e->folder = path_in(e->base, "data/backup");
        e->state = path_in(e->root, "state");
        e->level = 5;
        make_dir(e->root, "base");
        make_dir(e->root, "state");
        write_file(e->base, "config.yaml", "appearance:\n  name: Test\n");
        make_dir(e->base, "data/backup");
        make_dir(e->base, "uploads");
        for (unsigned i = 0; i < N_GCODE; i++)
                write_gcode(e->base, files[i], GCODE_SIZE + i * 1000, i);
        write_random(e->base, "uploads/clip.mp4", 300 * 1024);
        write_file(e->base, "uploads/note.txt", "a small file\n");
        /* The cache leaves out files changed in the last 2 s (their stamp may not show the next change). */
        usleep(2200 * 1000);
}

static void teardown(Env *e) {
        rm_rf(e->root);
        free(e->root);
        free(e->base);
        free(e->folder);
        free(e->state);
        strv_free(e->lines);
}

static void test_unchanged_files_are_not_read(void) {
        _cleanup_free_ char *b0 = NULL, *b1 = NULL, *b2 = NULL;
        uint64_t total, read;
        Env e = {};
        int w;

        setup(&e);
        b0 = backup(&e, true);
        ASSERT_FALSE(logged(&e, "files cache"));         /* none yet */
        check_archive(&e, b0);

        w = watch_reads(&e);
        b1 = backup(&e, true);
        ASSERT_TRUE(logged(&e, "7 unchanged files ("));
        ASSERT_TRUE(logged(&e, "not read: copied from b0-"));
        read = bytes_read(&e, w, &total);
        fprintf(stderr, "# repeat backup read %llu of %llu bytes of the instance\n", (unsigned long long) read,
                (unsigned long long) total);
        ASSERT_TRUE(read * 100 < total);
        check_archive(&e, b1);

        /* FilesCache=no: every file is read. */
        w = watch_reads(&e);
        b2 = backup(&e, false);
        ASSERT_EQ(bytes_read(&e, w, NULL), total);
        check_archive(&e, b2);
        teardown(&e);
}

static void test_edited_with_mtime_put_back(void) {
        _cleanup_free_ char *b0 = NULL, *b1 = NULL, *b2 = NULL, *a = NULL, *cmd = NULL;
        struct stat before, after;
        uint64_t got;
        Env e = {};
        int w;

        setup(&e);
        b0 = backup(&e, true);
        a = path_in(e.base, "uploads/a.gcode");
        ASSERT_EQ(stat(a, &before), 0);
        /* Same size, other content, mtime put back with `touch -r`: only ctime tells. */
        ASSERT_TRUE(asprintf(&cmd, "touch -r '%s' '%s/ref' && sleep 0.1", a, e.root) >= 0);
        ASSERT_EQ(system(cmd), 0);
        write_gcode(e.base, "uploads/a.gcode", GCODE_SIZE, 7);
        free(cmd);
        ASSERT_TRUE(asprintf(&cmd, "touch -r '%s/ref' '%s'", e.root, a) >= 0);
        ASSERT_EQ(system(cmd), 0);
        ASSERT_EQ(stat(a, &after), 0);
        ASSERT_EQ(after.st_size, before.st_size);
        ASSERT_EQ(after.st_mtim.tv_sec, before.st_mtim.tv_sec);
        ASSERT_EQ(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);

        w = watch_reads(&e);
        b1 = backup(&e, true);
        got = bytes_read(&e, w, NULL);
        check_archive(&e, b1);                          /* a.gcode as it is now */
        ASSERT_TRUE(logged(&e, "6 unchanged files ("));
        ASSERT_EQ(got, (uint64_t) GCODE_SIZE);          /* a.gcode alone */
        /* Changed 2 s before that backup at most: not in its cache, read again (and right) next time. */
        b2 = backup(&e, true);
        ASSERT_TRUE(logged(&e, "6 unchanged files ("));
        check_archive(&e, b2);
        teardown(&e);
}

static void corrupt_cache(const Env *e, const char *how) {
        _cleanup_free_ char *cur = path_in(e->state, "inst");
        struct stat st;

        ASSERT_EQ(stat(cur, &st), 0);
        if (streq(how, "random")) {
                _cleanup_free_ char *rel = NULL;

                ASSERT_TRUE(asprintf(&rel, "../state/inst") >= 0);
                write_random(e->base, rel, (size_t) st.st_size);
        } else if (streq(how, "truncated"))
                ASSERT_EQ(truncate(cur, st.st_size / 2), 0);
        else if (streq(how, "flipped")) {
                int fd = open(cur, O_RDWR | O_CLOEXEC);
                uint8_t b;

                ASSERT_TRUE(fd >= 0);
                ASSERT_EQ(pread(fd, &b, 1, st.st_size / 2), 1);
                b ^= 0x20;
                ASSERT_EQ(pwrite(fd, &b, 1, st.st_size / 2), 1);
                close(fd);
        }
}

static void test_damaged_cache(void) {
        static const char *const hows[] = { "random", "truncated", "flipped" };
        static const char *const whys[] = { "it is not a files cache", "it is truncated", "its checksum does not match" };
        Env e = {};

        setup(&e);
        free(backup(&e, true));
        for (size_t i = 0; i < ELEMENTSOF(hows); i++) {
                _cleanup_free_ char *b = NULL;

                corrupt_cache(&e, hows[i]);
                b = backup(&e, true);
                fprintf(stderr, "# %s cache\n", hows[i]);
                ASSERT_TRUE(logged(&e, whys[i]) || (i == 1 && logged(&e, "its checksum does not match")));
                ASSERT_FALSE(logged(&e, "(files cache)"));
                check_archive(&e, b);
                /* ... and the backup wrote a good one again. */
                free(backup(&e, true));
                ASSERT_TRUE(logged(&e, "7 unchanged files ("));
        }
        teardown(&e);
}

static void test_previous_backup_gone_or_replaced(void) {
        _cleanup_free_ char *b0 = NULL, *b1 = NULL, *b2 = NULL, *b3 = NULL, *p0 = NULL, *p1 = NULL;
        Env e = {};

        setup(&e);
        b0 = backup(&e, true);
        b1 = backup(&e, true);          /* the cache now points into b1 */
        p0 = path_in(e.folder, b0);
        p1 = path_in(e.folder, b1);
        /* Another zip under b1's name: an older backup of other files at other offsets. */
        write_gcode(e.base, "uploads/b.gcode", GCODE_SIZE + 3000, 5);
        usleep(2200 * 1000);
        free(b0);
        b0 = backup(&e, false);
        free(p0);
        p0 = path_in(e.folder, b0);
        ASSERT_EQ(rename(p0, p1), 0);
        write_gcode(e.base, "uploads/b.gcode", GCODE_SIZE + 1000, 1);      /* as it was */
        usleep(2200 * 1000);
        b2 = backup(&e, true);
        check_archive(&e, b2);
        ASSERT_TRUE(logged(&e, "changed or was replaced"));
        ASSERT_FALSE(logged(&e, "(files cache)"));

        /* Deleted. */
        free(p1);
        p1 = path_in(e.folder, b2);
        ASSERT_EQ(unlink(p1), 0);
        b3 = backup(&e, true);
        ASSERT_TRUE(logged(&e, "cannot be opened"));
        check_archive(&e, b3);
        teardown(&e);
}

/* A cache that passes every check (the test rewrites its record of the backup and its checksum after
 * changing the backup's data): the copy's CRC catches it, and the backup is made again without it. */
static void test_backup_changed_behind_the_stamp(void) {
        _cleanup_free_ char *b0 = NULL, *b1 = NULL, *p0 = NULL, *cur = NULL, *data = NULL, *zip = NULL;
        _cleanup_close_ int fd = -1;
        size_t size = 0, zsize = 0;
        struct stat st;
        Env e = {};
        char *hit;

        setup(&e);
        b0 = backup(&e, true);
        p0 = path_in(e.folder, b0);
        fd = open(p0, O_RDWR | O_CLOEXEC);
        ASSERT_TRUE(fd >= 0);
        ASSERT_EQ(read_full_fd(fd, 64 * 1024 * 1024, &zip, &zsize), 0);
        hit = memmem(zip, zsize, "basedir/uploads/c.gcode", strlen("basedir/uploads/c.gcode"));
        ASSERT_NOT_NULL(hit);
        for (size_t i = 0; i < 16; i++)
                hit[strlen("basedir/uploads/c.gcode") + 2000 + i] ^= 0x5a;
        ASSERT_EQ(pwrite(fd, zip, zsize, 0), (ssize_t) zsize);
        ASSERT_EQ(fstat(fd, &st), 0);
        fd = (close(fd), -1);

        cur = path_in(e.state, "inst");
        fd = open(cur, O_RDWR | O_CLOEXEC);
        ASSERT_TRUE(fd >= 0);
        ASSERT_EQ(read_full_fd(fd, 64 * 1024 * 1024, &data, &size), 0);
        {
                uint64_t v[5] = { (uint64_t) st.st_size,
                                  (uint64_t) st.st_mtim.tv_sec * 1000000000ULL + (uint64_t) st.st_mtim.tv_nsec,
                                  (uint64_t) st.st_ctim.tv_sec * 1000000000ULL + (uint64_t) st.st_ctim.tv_nsec,
                                  (uint64_t) st.st_ino, (uint64_t) st.st_dev };
                uint32_t crc;

                for (size_t i = 0; i < 5; i++)
                        for (size_t k = 0; k < 8; k++)
                                data[24 + i * 8 + k] = (char) (v[i] >> (8 * k));
                crc = (uint32_t) crc32(0, (const Bytef *) data, (uInt) (size - 4));
                for (size_t k = 0; k < 4; k++)
                        data[size - 4 + k] = (char) (crc >> (8 * k));
        }
        ASSERT_EQ(pwrite(fd, data, size, 0), (ssize_t) size);
        fd = (close(fd), -1);

        b1 = backup(&e, true);
        check_archive(&e, b1);
        ASSERT_TRUE(logged(&e, "changed while its data was copied: making the backup again"));
        teardown(&e);
}

static void test_other_level(void) {
        _cleanup_free_ char *b = NULL;
        uint64_t total;
        Env e = {};
        int w;

        setup(&e);
        free(backup(&e, true));
        e.level = 6;
        w = watch_reads(&e);
        b = backup(&e, true);
        ASSERT_TRUE(logged(&e, "made at CompressionLevel=5, not 6"));
        ASSERT_EQ(bytes_read(&e, w, &total), total);
        check_archive(&e, b);
        free(backup(&e, true));
        ASSERT_TRUE(logged(&e, "7 unchanged files ("));
        teardown(&e);
}

int main(void) {
        RUN(test_unchanged_files_are_not_read);
        RUN(test_edited_with_mtime_put_back);
        RUN(test_damaged_cache);
        RUN(test_previous_backup_gone_or_replaced);
        RUN(test_backup_changed_behind_the_stamp);
        RUN(test_other_level);
        return 0;
}
