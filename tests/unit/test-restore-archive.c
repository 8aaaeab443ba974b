/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The archive half of restore: a corpus of hostile and broken zips (made by make-hostile-zips.py at test
 * time) is refused with a message that names the problem, nothing ever escapes the staging directory, and
 * good backups (CPython-written like OctoPrint's, and our own engine's) extract to the same content, modes
 * (without setuid/setgid) and mtimes. Also rm_rf_at(). */

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <json-c/json.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "backup/backup-log.h"
#include "backup/backup.h"
#include "pyjson.h"
#include "restore/restore-extract.h"
#include "archive-validate.h"
#include "restore/rm-rf.h"
#include "test-util.h"

#ifndef MAKE_HOSTILE_ZIPS
#error "MAKE_HOSTILE_ZIPS must name make-hostile-zips.py"
#endif

#define MIB (1024ULL * 1024ULL)
#define PLENTY (1ULL << 50)
#define INSTALLED "1.11.8"

static char *root;            /* everything happens under here: an escape would show */
static char *corpus;          /* root/corpus: the generated zips */
static char *inner;           /* root/outer/inner: staging directories go here */

static char *path_join(const char *a, const char *b) {
        char *p;

        ASSERT_TRUE(asprintf(&p, "%s/%s", a, b) >= 0);
        return p;
}

static int open_zip(const char *name) {
        _cleanup_free_ char *file = NULL, *p = NULL;
        int fd;

        ASSERT_TRUE(asprintf(&file, "%s.zip", name) >= 0);
        p = path_join(corpus, file);
        fd = open(p, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                perror(p);
        ASSERT_TRUE(fd >= 0);
        return fd;
}

/* ---- watching the tree ---- */

static char **snapshot_lines;
static const char *snapshot_skip;

static int snapshot_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        char *line;

        if (snapshot_skip && startswith(path, snapshot_skip) &&
            (path[strlen(snapshot_skip)] == 0 || path[strlen(snapshot_skip)] == '/'))
                return 0;
        ASSERT_TRUE(asprintf(&line, "%s %o %lld %lld", path, st->st_mode, (long long) st->st_size,
                             (long long) st->st_mtime) >= 0);
        ASSERT_EQ(strv_consume(&snapshot_lines, line), 0);
        return 0;
}

static int line_cmp(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Everything under root except `skip` (a staging directory), one line per file, sorted. */
static char *snapshot(const char *skip) {
        char *s = strdup("");

        snapshot_lines = NULL;
        snapshot_skip = skip;
        ASSERT_EQ(nftw(root, snapshot_one, 16, FTW_PHYS), 0);
        qsort(snapshot_lines, strv_length(snapshot_lines), sizeof(char *), line_cmp);
        STRV_FOREACH(l, snapshot_lines) {
                char *t;
                ASSERT_TRUE(asprintf(&t, "%s%s\n", s, *l) >= 0);
                free(s);
                s = t;
        }
        strv_free(snapshot_lines);
        snapshot_lines = NULL;
        return s;
}

/* The names in a folder, sorted, space-separated. */
static char *list_folder(int dir_fd) {
        struct dirent **l;
        char *s = strdup("");
        int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), n;
        _cleanup_free_ char *p = NULL;

        ASSERT_TRUE(fd >= 0);
        ASSERT_TRUE(asprintf(&p, "/proc/self/fd/%d", fd) >= 0);
        n = scandir(p, &l, NULL, alphasort);
        ASSERT_TRUE(n >= 0);
        for (int i = 0; i < n; i++) {
                if (strcmp(l[i]->d_name, ".") && strcmp(l[i]->d_name, "..")) {
                        char *t;
                        ASSERT_TRUE(asprintf(&t, "%s%s%s", s, *s ? " " : "", l[i]->d_name) >= 0);
                        free(s);
                        s = t;
                }
                free(l[i]);
        }
        free(l);
        close(fd);
        return s;
}

typedef struct Staging {
        char *path;
        int fd;
} Staging;

static Staging staging_new(void) {
        static unsigned counter;
        _cleanup_free_ char *name = NULL;
        Staging s;

        ASSERT_TRUE(asprintf(&name, "staging-%u", ++counter) >= 0);
        s.path = path_join(inner, name);
        ASSERT_EQ(mkdir(s.path, 0700), 0);
        s.fd = open(s.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ASSERT_TRUE(s.fd >= 0);
        return s;
}

static void staging_done(Staging *s) {
        int dfd = open(inner, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        close(s->fd);
        ASSERT_EQ(rm_rf_at(dfd, strrchr(s->path, '/') + 1), 0);
        ASSERT_EQ(access(s->path, F_OK), -1);
        close(dfd);
        free(s->path);
}

/* ---- callbacks ---- */

typedef struct Capture {
        char stages[256];
        uint64_t done, total;
        unsigned calls;
        int cancel_after_calls;         /* > 0: progress() says stop on this call */
} Capture;

static int cap_progress(const char *stage, uint64_t done, uint64_t total, void *userdata) {
        Capture *c = userdata;
        const char *last = strrchr(c->stages, ' ');

        if (!streq(last ? last + 1 : c->stages, stage))
                snprintf(c->stages + strlen(c->stages), sizeof(c->stages) - strlen(c->stages), "%s%s",
                         c->stages[0] ? " " : "", stage);
        ASSERT_TRUE(done <= total);
        c->done = done;
        c->total = total;
        c->calls++;
        return c->cancel_after_calls > 0 && (int) c->calls >= c->cancel_after_calls ? -1 : 0;
}

static BackupCallbacks callbacks(Capture *c) {
        return (BackupCallbacks) { .progress = cap_progress, .userdata = c };
}

/* ---- the corpus ---- */

typedef struct Case {
        const char *name;
        int error;
        const char *message;            /* a part of the message */
        bool structural;                /* found by the entry checks: extraction refuses it too */
        uint64_t free_bytes;            /* 0: plenty */
        uint64_t max_entries;           /* 0: the real limit */
} Case;

#define ENTRY(n, msg) { n, -EBADMSG, msg, true, 0, 0 }
#define CONTENT(n, msg) { n, -EBADMSG, msg, false, 0, 0 }
#define REFUSING ": refusing to restore this backup"
#define NEWER "Backup is from a newer version of OctoPrint and cannot be applied, you need at least OctoPrint "

static const Case cases[] = {
        ENTRY("not-a-zip", "The backup is not a readable zip archive (Not a zip archive): it is truncated, damaged"),
        ENTRY("empty", "The backup file is empty: it is not a zip archive"),
        ENTRY("truncated", "The backup is not a readable zip archive (Not a zip archive): it is truncated"),
        ENTRY("entry-count-lies", "The backup is not a readable zip archive (Zip archive inconsistent)"),
        ENTRY("slip-dotdot", "Backup entry '../evil.txt' leaves basedir" REFUSING),
        ENTRY("slip-basedir-dotdot", "Backup entry 'basedir/../../evil.txt' leaves basedir" REFUSING),
        ENTRY("slip-basedir-only", "Backup entry 'basedir/..' leaves basedir" REFUSING),
        ENTRY("dotdot-inside", "Backup entry 'basedir/uploads/../evil.txt' has a '..' path component" REFUSING),
        ENTRY("absolute", "evil.txt' is an absolute path" REFUSING),
        ENTRY("backslash", "Backup entry 'basedir\\..\\..\\evil.txt' contains a backslash (a Windows path separator)"),
        ENTRY("drive-letter", "Backup entry 'C:/basedir/evil.txt' starts with a drive letter" REFUSING),
        ENTRY("empty-component", "Backup entry 'basedir//evil.txt' has an empty path component" REFUSING),
        ENTRY("dot-component", "Backup entry 'basedir/./evil.txt' has a '.' path component" REFUSING),
        ENTRY("control-char", "Backup entry 'basedir/a\\x01b' contains a control character" REFUSING),
        ENTRY("newline", "Backup entry 'basedir/a\\x0ab' contains a control character" REFUSING),
        ENTRY("del-char", "Backup entry 'basedir/a\\x7fb' contains a control character" REFUSING),
        ENTRY("invalid-utf8", "Backup entry 'basedir/evil-\\xff.txt' is not valid UTF-8" REFUSING),
        ENTRY("name-too-long", "is longer than 4096 bytes" REFUSING),
        ENTRY("component-too-long", "has a path component longer than 255 bytes" REFUSING),
        ENTRY("outside-basedir", "Backup entry 'evil.txt' is outside basedir/ (a backup holds only metadata.json, "
              "plugin_list.json and basedir/...)" REFUSING),
        ENTRY("outside-folder", "Backup entry 'other/evil.txt' is outside basedir/"),
        ENTRY("basedir-as-file", "Backup entry 'basedir' is outside basedir/"),
        ENTRY("metadata-directory", "Backup entry 'metadata.json/' is outside basedir/"),
        ENTRY("symlink", "Backup entry 'basedir/link' is a symbolic link" REFUSING),
        ENTRY("char-device", "Backup entry 'basedir/null' is a character device" REFUSING),
        ENTRY("block-device", "Backup entry 'basedir/sda' is a block device" REFUSING),
        ENTRY("fifo", "Backup entry 'basedir/fifo' is a FIFO" REFUSING),
        ENTRY("socket", "Backup entry 'basedir/sock' is a socket" REFUSING),
        ENTRY("unknown-type", "Backup entry 'basedir/odd' has an unknown file type" REFUSING),
        ENTRY("dir-mode-file-name", "Backup entry 'basedir/d' has a directory's mode but no trailing '/'"),
        ENTRY("file-mode-dir-name", "Backup entry 'basedir/d/' is a directory entry with a regular file's mode"),
        ENTRY("dir-with-data", "Backup entry 'basedir/d/' is a directory entry with data" REFUSING),
        ENTRY("file-dir-clash", "Backup entry 'basedir/a' is a file, but entry 'basedir/a/b' needs it to be a folder"
              REFUSING),
        ENTRY("file-direntry-clash", "Backup entry 'basedir/a' is a file, but entry 'basedir/a/' needs it to be a "
              "folder"),
        ENTRY("clash-sorted-apart", "Backup entry 'basedir/a' is a file, but entry 'basedir/a/x' needs it to be a "
              "folder"),
        ENTRY("encrypted", "Backup entry 'basedir/secret.txt' is encrypted (OctoPrint backups never are)" REFUSING),
        ENTRY("method-bzip2", "Backup entry 'basedir/secret.txt' uses compression method 12 (bzip2); only stored "
              "and deflated entries can be restored" REFUSING),
        ENTRY("method-lzma", "uses compression method 14 (LZMA)"),
        ENTRY("method-deflate64", "uses compression method 9 (deflate64)"),
        { "too-many-entries", -EBADMSG, "The backup has 23 entries, more than the 10 a restore accepts" REFUSING,
          true, 0, 10 },

        CONTENT("no-metadata", "Backup lacks metadata.json: not an OctoPrint backup"),
        CONTENT("metadata-not-json", "metadata.json is not valid JSON: not an OctoPrint backup"),
        CONTENT("metadata-trailing-garbage", "metadata.json is not valid JSON"),
        CONTENT("metadata-array", "metadata.json is not a JSON object: not an OctoPrint backup"),
        CONTENT("metadata-no-version", "metadata.json has no \"version\" string: not an OctoPrint backup"),
        CONTENT("metadata-version-number", "metadata.json has no \"version\" string"),
        CONTENT("metadata-bad-version", "metadata.json names OctoPrint version \"banana\", which is not a version "
                "number"),
        CONTENT("metadata-too-large", "metadata.json is larger than 64 KiB: not an OctoPrint backup"),
        CONTENT("missing-config", "Backup lacks basedir/config.yaml: not an OctoPrint backup"),
        CONTENT("missing-users", "Backup lacks basedir/users.yaml: not an OctoPrint backup"),
        CONTENT("config-is-folder", "Backup lacks basedir/config.yaml"),
        CONTENT("plugins-not-json", "plugin_list.json is not a JSON list of plugins" REFUSING),
        CONTENT("plugins-not-array", "plugin_list.json is not a JSON list of plugins"),
        CONTENT("plugins-not-object", "plugin_list.json is malformed (entry 1 is not an object)" REFUSING),
        CONTENT("plugins-no-key", "plugin_list.json is malformed (entry 1 has no \"key\" string)"),
        CONTENT("plugins-key-number", "plugin_list.json is malformed (entry 1 has no \"key\" string)"),
        CONTENT("plugins-bad-url", "plugin_list.json is malformed (entry 1 has a \"url\" that is neither a string "
                "nor null)"),
        CONTENT("plugins-too-large", "plugin_list.json is larger than 1024 KiB"),
        { "newer-version", -EPROTONOSUPPORT, NEWER "1.12.0 to restore this backup", false, 0, 0 },
        { "newer-major", -EPROTONOSUPPORT, NEWER "2.0.0 to restore this backup", false, 0, 0 },
        { "duplicate-metadata-newer", -EPROTONOSUPPORT, NEWER "1.99.0 to restore this backup", false, 0, 0 },
        { "no-space", -ENOSPC, "Not enough free space to restore this backup: it needs 54 MiB (4 MiB of files plus "
          "50 MiB to spare), but only 10 MiB are free", false, 10 * MIB, 0 },
        { "declared-huge", -ENOSPC, "MiB of files plus 50 MiB to spare), but only 1024 MiB are free", false,
          1024 * MIB, 0 },
};

/* Found only while extracting: validation accepts them, extraction stops. */
static const Case extract_cases[] = {
        CONTENT("inflate-beyond-size", "Backup entry 'basedir/bomb.bin' inflates beyond its declared size of 1000 "
                "bytes (the backup is damaged or hostile)" REFUSING),
        CONTENT("shorter-than-declared", "Backup entry 'basedir/short.bin' is shorter than its declared size (the "
                "backup is damaged)" REFUSING),
        CONTENT("crc-mismatch", "Backup entry 'basedir/stored.txt' fails its CRC check (the backup is damaged)"
                REFUSING),
        CONTENT("corrupt-deflate", "Backup entry 'basedir/broken.txt' is damaged (Zlib error: data error)" REFUSING),
        /* The same past the first MiB, where the data comes in pieces (restore-inflate.c). */
        CONTENT("large-inflate-beyond", "Backup entry 'basedir/uploads/pieces.gcode' inflates beyond its declared "
                "size of 3644728 bytes (the backup is damaged or hostile)" REFUSING),
        CONTENT("large-shorter", "Backup entry 'basedir/uploads/pieces.gcode' is shorter than its declared size"),
        CONTENT("large-crc-mismatch", "Backup entry 'basedir/uploads/pieces.gcode' fails its CRC check"),
        CONTENT("large-corrupt-piece", "Backup entry 'basedir/uploads/pieces.gcode' is damaged (Zlib error: data "
                "error)"),
        CONTENT("large-stream-beyond", "Backup entry 'basedir/uploads/stream.gcode' inflates beyond its declared "
                "size of 1048581 bytes"),
};

static void generate_corpus(void) {
        _cleanup_free_ char *cmd = NULL;
        int r;

        ASSERT_TRUE(asprintf(&cmd, "/usr/bin/python3 -W error '%s' '%s' '%s'", MAKE_HOSTILE_ZIPS, corpus, root) >= 0);
        r = system(cmd);
        ASSERT_TRUE(WIFEXITED(r));
        ASSERT_EQ(WEXITSTATUS(r), 0);
}

static void test_corpus_validate(void) {
        size_t n = 0;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const Case *c = &cases[i];
                ArchiveSummary s = {};
                _cleanup_free_ char *error = NULL;
                int fd = open_zip(c->name), r;

                r = restore_archive_validate_full(fd, INSTALLED, c->free_bytes ?: PLENTY,
                                                  c->max_entries ?: RESTORE_ENTRIES_MAX, &s, &error);
                fprintf(stderr, "  %-26s %s\n", c->name, strempty(error));
                ASSERT_EQ(r, c->error);
                ASSERT_CONTAINS(error, c->message);
                /* Messages go over D-Bus. */
                ASSERT_TRUE(utf8_is_valid(error));
                ASSERT_NULL(s.version);
                close(fd);
                n++;
        }
        ASSERT_TRUE(n >= 25);
}

/* The exact wording OctoPrint uses. */
static void test_newer_message(void) {
        _cleanup_free_ char *error = NULL;
        ArchiveSummary s = {};
        int fd = open_zip("newer-version");

        ASSERT_EQ(restore_archive_validate(fd, "1.11.8", PLENTY, &s, &error), -EPROTONOSUPPORT);
        ASSERT_STREQ(error, "Backup is from a newer version of OctoPrint and cannot be applied, you need at least "
                     "OctoPrint 1.12.0 to restore this backup");
        close(fd);
}

/* Structural refusals are found by extraction too, before it writes anything; and nothing ever lands
 * outside staging. */
static void test_corpus_extract_refuses(void) {
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const Case *c = &cases[i];
                _cleanup_free_ char *error = NULL, *before = NULL, *after = NULL, *listing = NULL;
                Capture cap = {};
                BackupCallbacks cb = callbacks(&cap);
                Staging st;
                int fd, r;

                if (!c->structural || c->max_entries)
                        continue;
                st = staging_new();
                before = snapshot(st.path);
                fd = open_zip(c->name);
                r = restore_archive_extract(fd, st.fd, &cb, &error);
                ASSERT_EQ(r, c->error);
                ASSERT_CONTAINS(error, c->message);
                after = snapshot(st.path);
                ASSERT_STREQ(after, before);
                listing = list_folder(st.fd);
                ASSERT_STREQ(listing, "");
                close(fd);
                staging_done(&st);
        }
}

static void test_corpus_extract_failures(void) {
        for (size_t i = 0; i < ELEMENTSOF(extract_cases); i++) {
                const Case *c = &extract_cases[i];
                _cleanup_(archive_summary_done) ArchiveSummary s = {};
                _cleanup_free_ char *error = NULL, *before = NULL, *after = NULL;
                Capture cap = {};
                BackupCallbacks cb = callbacks(&cap);
                Staging st = staging_new();
                int fd = open_zip(c->name), r;

                ASSERT_EQ(restore_archive_validate(fd, INSTALLED, PLENTY, &s, &error), 0);
                ASSERT_NULL(error);
                before = snapshot(st.path);
                r = restore_archive_extract(fd, st.fd, &cb, &error);
                fprintf(stderr, "  %-26s %s\n", c->name, strempty(error));
                ASSERT_EQ(r, c->error);
                ASSERT_CONTAINS(error, c->message);
                ASSERT_TRUE(utf8_is_valid(error));
                after = snapshot(st.path);
                ASSERT_STREQ(after, before);
                close(fd);
                staging_done(&st);
        }
}

/* The real limit accepts what the small one refused: the limit is what made the difference. */
static void test_entry_limit(void) {
        _cleanup_(archive_summary_done) ArchiveSummary s = {};
        _cleanup_free_ char *error = NULL;
        int fd = open_zip("too-many-entries");

        ASSERT_EQ(restore_archive_validate(fd, INSTALLED, PLENTY, &s, &error), 0);
        ASSERT_EQ(s.n_entries, 23);
        close(fd);
        archive_summary_done(&s);
        fd = open_zip("too-many-entries");
        ASSERT_EQ(restore_archive_validate_full(fd, INSTALLED, PLENTY, 23, &s, &error), 0);
        close(fd);
}

/* Exactly contents + 50 MiB fits; a byte less does not. */
static void test_space_boundary(void) {
        _cleanup_(archive_summary_done) ArchiveSummary s = {};
        _cleanup_free_ char *error = NULL;
        uint64_t total;
        int fd = open_zip("no-space");

        ASSERT_EQ(restore_archive_validate(fd, INSTALLED, PLENTY, &s, &error), 0);
        total = s.total_size;
        ASSERT_EQ(total, 3 * MIB + strlen("appearance:\n  name: Test\n") + strlen("admin:\n  active: true\n"));
        archive_summary_done(&s);
        ASSERT_EQ(restore_archive_validate(fd, INSTALLED, total + RESTORE_SPACE_MARGIN, &s, &error), 0);
        archive_summary_done(&s);
        ASSERT_EQ(restore_archive_validate(fd, INSTALLED, total + RESTORE_SPACE_MARGIN - 1, &s, &error), -ENOSPC);
        ASSERT_CONTAINS(error, "it needs 54 MiB");
        close(fd);
}

/* libzip reads a NUL inside a name as a space, CPython's zipfile (OctoPrint) cuts the name there: the two
 * would restore different files, so such an archive is refused, by validation and by extraction alike,
 * and nothing is written. */
static void test_nul_in_name(void) {
        _cleanup_(archive_summary_done) ArchiveSummary s = {};
        _cleanup_free_ char *error = NULL, *error2 = NULL, *before = NULL, *after = NULL;
        Staging st = staging_new();
        int fd = open_zip("nul-in-name");

        before = snapshot(st.path);
        ASSERT_EQ(restore_archive_validate(fd, INSTALLED, PLENTY, &s, &error), -EBADMSG);
        ASSERT_CONTAINS(error, "Backup entry 'basedir/evil\\x00");
        ASSERT_CONTAINS(error, "contains a NUL byte");
        ASSERT_EQ(restore_archive_extract(fd, st.fd, NULL, &error2), -EBADMSG);
        ASSERT_CONTAINS(error2, "contains a NUL byte");
        after = snapshot(st.path);
        ASSERT_STREQ(after, before);
        close(fd);
        staging_done(&st);
}

static void test_many_plugins(void) {
        _cleanup_(archive_summary_done) ArchiveSummary s = {};
        _cleanup_free_ char *error = NULL;
        int fd = open_zip("many-plugins");

        ASSERT_EQ(restore_archive_validate(fd, INSTALLED, PLENTY, &s, &error), 0);
        ASSERT_EQ(s.n_plugins, 3000);
        ASSERT_STREQ(s.plugins[2999].key, "plugin02999");
        ASSERT_STREQ(s.plugins[2999].name, "Plugin \xc3\xa9 2999");
        ASSERT_NULL(s.plugins[2999].url);
        ASSERT_STREQ(s.plugins[2998].url, "https://x/2998");
        close(fd);
}

static void test_installed_version(void) {
        static const struct {
                const char *installed;
                int error;
        } t[] = {
                { "1.11.0", 0 }, { "1.11.8", 0 }, { "1.12.0rc1", 0 }, { "2.0.0", 0 },
                { "1.10.9", -EPROTONOSUPPORT }, { "0.18.0", -EPROTONOSUPPORT },
                { NULL, -EINVAL }, { "unknown", -EINVAL },
        };

        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                _cleanup_(archive_summary_done) ArchiveSummary s = {};
                _cleanup_free_ char *error = NULL;
                int fd = open_zip("good-octoprint");

                ASSERT_EQ(restore_archive_validate(fd, t[i].installed, PLENTY, &s, &error), t[i].error);
                if (t[i].error == -EPROTONOSUPPORT)
                        ASSERT_STREQ(error, NEWER "1.11.0 to restore this backup");
                else if (t[i].error < 0)
                        ASSERT_CONTAINS(error, "The installed OctoPrint's version");
                close(fd);
        }
}

/* ---- good archives ---- */

static char *read_at(int dir_fd, const char *rel, size_t *ret_size) {
        int fd = openat(dir_fd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        char *buf = NULL;
        size_t size = 0;

        if (fd < 0)
                perror(rel);
        ASSERT_TRUE(fd >= 0);
        ASSERT_EQ(read_full_fd(fd, 64 * MIB, &buf, &size), 0);
        close(fd);
        *ret_size = size;
        return buf;
}

static int count_files(int dir_fd, unsigned *ret_dirs) {
        DIR *d = fdopendir(openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        struct dirent *de;
        int n = 0;

        ASSERT_NOT_NULL(d);
        while ((de = readdir(d))) {
                struct stat st;

                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                ASSERT_EQ(fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW), 0);
                if (S_ISDIR(st.st_mode)) {
                        int fd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

                        ASSERT_TRUE(fd >= 0);
                        (*ret_dirs)++;
                        n += count_files(fd, ret_dirs);
                        close(fd);
                } else {
                        ASSERT_TRUE(S_ISREG(st.st_mode));
                        n++;
                }
        }
        closedir(d);
        return n;
}

static unsigned char hexval(char c) {
        return (unsigned char) (c <= '9' ? c - '0' : c - 'a' + 10);
}

static void test_good_octoprint(void) {
        _cleanup_(archive_summary_done) ArchiveSummary s = {};
        _cleanup_free_ char *error = NULL, *before = NULL, *after = NULL, *exp_path = NULL;
        Capture cap = {};
        BackupCallbacks cb = callbacks(&cap);
        Staging st = staging_new();
        json_object *expect, *files, *dirs;
        unsigned n_dirs = 0;
        struct stat sb;
        int fd = open_zip("good-octoprint");

        exp_path = path_join(corpus, "good-octoprint.expect.json");
        expect = json_object_from_file(exp_path);
        ASSERT_NOT_NULL(expect);
        files = json_object_object_get(expect, "files");
        dirs = json_object_object_get(expect, "dirs");

        ASSERT_EQ(restore_archive_validate(fd, INSTALLED, PLENTY, &s, &error), 0);
        ASSERT_NULL(error);
        ASSERT_STREQ(s.version, "1.11.0");
        ASSERT_EQ(strv_length(s.excludes), 1);
        ASSERT_STREQ(s.excludes[0], "logs");
        ASSERT_EQ(strv_length(s.warnings), 2);
        ASSERT_CONTAINS(s.warnings[0], "Ignoring backup entry 'extra.json'");
        ASSERT_CONTAINS(s.warnings[1], "unknown folder 'bogus'");
        ASSERT_EQ(s.n_entries, 16);
        ASSERT_EQ(s.n_files, json_object_object_length(files));
        ASSERT_EQ(s.total_size, json_object_get_int64(json_object_object_get(expect, "total_size")));
        ASSERT_EQ(s.n_plugins, 2);
        ASSERT_STREQ(s.plugins[0].key, "foo");
        ASSERT_STREQ(s.plugins[0].name, "OctoPrint-Foo");
        ASSERT_STREQ(s.plugins[0].url, "https://example.com/foo");
        ASSERT_STREQ(s.plugins[1].key, "bar");
        ASSERT_NULL(s.plugins[1].url);

        before = snapshot(st.path);
        ASSERT_EQ(restore_archive_extract(fd, st.fd, &cb, &error), 0);
        ASSERT_NULL(error);
        after = snapshot(st.path);
        ASSERT_STREQ(after, before);
        ASSERT_STREQ(cap.stages, "extracting syncing");
        ASSERT_EQ(cap.done, s.total_size);
        ASSERT_EQ(cap.total, s.total_size);

        json_object_object_foreach(files, rel, v) {
                const char *hex = json_object_get_string(json_object_object_get(v, "content"));
                _cleanup_free_ char *content = NULL;
                size_t size;

                fprintf(stderr, "  %s\n", rel);
                content = read_at(st.fd, rel, &size);
                ASSERT_EQ(size, strlen(hex) / 2);
                for (size_t k = 0; k < size; k++)
                        ASSERT_EQ((unsigned char) content[k], hexval(hex[2 * k]) << 4 | hexval(hex[2 * k + 1]));
                ASSERT_EQ(fstatat(st.fd, rel, &sb, AT_SYMLINK_NOFOLLOW), 0);
                ASSERT_TRUE(S_ISREG(sb.st_mode));
                ASSERT_EQ(sb.st_mode & 07777, json_object_get_int(json_object_object_get(v, "mode")));
                ASSERT_EQ(sb.st_mtime, json_object_get_int64(json_object_object_get(v, "mtime")));
        }
        /* The setuid/setgid script lost those bits. */
        ASSERT_EQ(fstatat(st.fd, "scripts/suid.sh", &sb, AT_SYMLINK_NOFOLLOW), 0);
        ASSERT_EQ(sb.st_mode & 07777, 0755);
        json_object_object_foreach(dirs, drel, dv) {
                ASSERT_EQ(fstatat(st.fd, drel, &sb, AT_SYMLINK_NOFOLLOW), 0);
                ASSERT_TRUE(S_ISDIR(sb.st_mode));
                ASSERT_EQ(sb.st_mode & 07777, json_object_get_int(json_object_object_get(dv, "mode")));
                ASSERT_EQ(sb.st_mtime, json_object_get_int64(json_object_object_get(dv, "mtime")));
        }
        /* Folders without an entry: 0755 whatever the umask. */
        ASSERT_EQ(fstatat(st.fd, "uploads/sub", &sb, AT_SYMLINK_NOFOLLOW), 0);
        ASSERT_EQ(sb.st_mode & 07777, 0755);
        /* Nothing else: no metadata.json, plugin_list.json or extra.json in basedir. */
        ASSERT_EQ(count_files(st.fd, &n_dirs), (int) json_object_object_length(files));
        /* data data/plugin printerProfiles scripts timelapse timelapse/tmp uploads uploads/sub */
        ASSERT_EQ(n_dirs, 8);

        json_object_put(expect);
        close(fd);
        staging_done(&st);
}

/* Files of more than a piece (1 MiB), in each layout the readers treat differently: opbackup's pieces
 * (libdeflate), pieces that refer back (zlib takes over with the last piece as its dictionary), stored
 * data full of bytes that look like a piece's end, one zipfile stream, stored; sizes on and next to a
 * piece's. Each comes out as it went in, whichever lane read it. */
static void test_good_large(void) {
        _cleanup_(archive_summary_done) ArchiveSummary s = {};
        _cleanup_free_ char *error = NULL, *list_path = NULL, *list = NULL, *src_path = NULL;
        Staging st = staging_new();
        unsigned n = 0, n_dirs = 0;
        size_t list_size;
        int fd = open_zip("good-large"), src_fd;

        list_path = path_join(corpus, "good-large.list");
        src_path = path_join(corpus, "good-large-src");
        src_fd = open(src_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ASSERT_TRUE(src_fd >= 0);
        {
                int lfd = open(list_path, O_RDONLY | O_CLOEXEC);

                ASSERT_TRUE(lfd >= 0);
                ASSERT_EQ(read_full_fd(lfd, MIB, &list, &list_size), 0);
                close(lfd);
        }

        ASSERT_EQ(restore_archive_validate(fd, INSTALLED, PLENTY, &s, &error), 0);
        ASSERT_EQ(restore_archive_extract(fd, st.fd, NULL, &error), 0);
        ASSERT_NULL(error);
        for (char *rel = strtok(list, "\n"); rel; rel = strtok(NULL, "\n")) {
                _cleanup_free_ char *got = NULL, *want = NULL;
                size_t got_size, want_size;
                struct stat sb;

                fprintf(stderr, "  %s\n", rel);
                got = read_at(st.fd, rel, &got_size);
                want = read_at(src_fd, rel, &want_size);
                ASSERT_EQ(got_size, want_size);
                ASSERT_TRUE(memcmp(got, want, got_size) == 0);
                ASSERT_EQ(fstatat(st.fd, rel, &sb, AT_SYMLINK_NOFOLLOW), 0);
                ASSERT_EQ(sb.st_mode & 07777, 0644);
                n++;
        }
        ASSERT_EQ(n, 9);
        /* config.yaml and users.yaml besides. */
        ASSERT_EQ(count_files(st.fd, &n_dirs), (int) n + 2);
        close(src_fd);
        close(fd);
        staging_done(&st);
}

/* Another process of the instance user could plant symlinks in staging while we extract: they are
 * never followed, for folders or files. */
static void test_planted_symlinks(void) {
        static const char *const plant[] = { "uploads", "config.yaml" };

        for (size_t i = 0; i < ELEMENTSOF(plant); i++) {
                _cleanup_free_ char *error = NULL, *before = NULL, *after = NULL, *target = NULL;
                Staging st = staging_new();
                int fd = open_zip("good-octoprint");

                target = path_join(root, "outer");
                ASSERT_EQ(symlinkat(target, st.fd, plant[i]), 0);
                before = snapshot(st.path);
                ASSERT_TRUE(restore_archive_extract(fd, st.fd, NULL, &error) < 0);
                fprintf(stderr, "  %s: %s\n", plant[i], error);
                ASSERT_CONTAINS(error, "in the staging directory");
                after = snapshot(st.path);
                ASSERT_STREQ(after, before);
                close(fd);
                staging_done(&st);
        }
}

static void test_cancel(void) {
        _cleanup_free_ char *error = NULL;
        Capture cap = { .cancel_after_calls = 1 };
        BackupCallbacks cb = callbacks(&cap);
        Staging st = staging_new();
        int fd = open_zip("good-octoprint");

        ASSERT_EQ(restore_archive_extract(fd, st.fd, &cb, &error), -ECANCELED);
        ASSERT_STREQ(error, "Canceled");
        close(fd);
        staging_done(&st);
}

/* ---- a backup made by our own engine ---- */

typedef struct SourceFile {
        const char *rel;
        size_t size;
        mode_t mode;
        time_t mtime;
} SourceFile;

static void write_random(const char *dir, const char *rel, size_t size, mode_t mode, time_t mtime) {
        _cleanup_free_ char *p = path_join(dir, rel), *content = malloc(size + 1);
        struct timespec ts[2] = { { .tv_sec = mtime }, { .tv_sec = mtime } };

        for (size_t k = 0; k < size; k++)
                content[k] = (char) ('a' + (k * 7 + k / 13) % 26);
        content[size] = 0;
        write_file(dir, rel, content);
        ASSERT_EQ(chmod(p, mode), 0);
        ASSERT_EQ(utimensat(AT_FDCWD, p, ts, 0), 0);
}

static void test_engine_backup(void) {
        static const SourceFile src[] = {
                { "config.yaml", 30, 0644, 1600000000 },
                { "users.yaml", 20, 0600, 1600000001 },
                { "uploads/a.gcode", 5000, 0640, 1234567891 },
                { "uploads/sub/deep/b.gcode", 700 * 1024, 0644, 1400000000 },   /* several chunks */
                { "scripts/run.sh", 40, 0750, 1500000003 },
                { "scripts/suid", 10, 04755, 1500000004 },
                { "data/plugin/empty", 0, 0644, 1500000005 },
                { "timelapse/tmp/frame.jpg", 3000, 0644, 1500000006 },
        };
        _cleanup_(archive_summary_done) ArchiveSummary s = {};
        _cleanup_free_ char *tree = path_join(root, "engine"), *basedir = path_join(tree, "base"), *error = NULL,
                *config = NULL, *folder = NULL, *zip = NULL, *before = NULL, *after = NULL;
        Capture cap = {};
        BackupCallbacks cb = callbacks(&cap);
        BackupRequest req;
        Staging st = staging_new();
        unsigned n_dirs = 0;
        int fd, src_fd;

        make_dir(root, "engine/base");
        for (size_t i = 0; i < ELEMENTSOF(src); i++)
                write_random(basedir, src[i].rel, src[i].size, src[i].mode, src[i].mtime);
        write_file(basedir, "logs/octoprint.log", "not in backups");
        config = path_join(basedir, "config.yaml");
        folder = path_join(basedir, "data/backup");
        make_dir(basedir, "data/backup");
        req = (BackupRequest) {
                .instance = "test",
                .basedir = basedir,
                .config_file = config,
                .backup_folder = folder,
                .name = "engine-backup-20240102-030405.zip",
                .octoprint_version = INSTALLED,
                .compression_level = 6,
        };
        ASSERT_EQ(backup_execute(&req, NULL, &zip, NULL, NULL, &error), 0);

        fd = open(zip, O_RDONLY | O_CLOEXEC);
        ASSERT_TRUE(fd >= 0);
        ASSERT_EQ(restore_archive_validate(fd, INSTALLED, PLENTY, &s, &error), 0);
        ASSERT_STREQ(s.version, INSTALLED);
        ASSERT_EQ(s.n_files, ELEMENTSOF(src));
        ASSERT_EQ(strv_length(s.warnings), 0);
        before = snapshot(st.path);
        ASSERT_EQ(restore_archive_extract(fd, st.fd, &cb, &error), 0);
        after = snapshot(st.path);
        ASSERT_STREQ(after, before);
        ASSERT_EQ(cap.done, s.total_size);

        src_fd = open(basedir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        for (size_t i = 0; i < ELEMENTSOF(src); i++) {
                _cleanup_free_ char *a = NULL, *b = NULL;
                size_t na, nb;
                struct stat sb;

                a = read_at(src_fd, src[i].rel, &na);
                b = read_at(st.fd, src[i].rel, &nb);
                ASSERT_EQ(nb, na);
                ASSERT_TRUE(memcmp(a, b, na) == 0);
                ASSERT_EQ(fstatat(st.fd, src[i].rel, &sb, AT_SYMLINK_NOFOLLOW), 0);
                ASSERT_EQ(sb.st_mode & 07777, src[i].mode & 0777);
                /* A zip (DOS) time has two-second steps. */
                ASSERT_EQ(sb.st_mtime, src[i].mtime & ~(time_t) 1);
        }
        ASSERT_EQ(count_files(st.fd, &n_dirs), (int) ELEMENTSOF(src));
        close(src_fd);
        close(fd);
        staging_done(&st);
}

/* ---- rm_rf_at ---- */

static void test_rm_rf(void) {
        _cleanup_free_ char *tree = path_join(root, "rmrf"), *victim = path_join(root, "rmrf/victim"),
                *outside = path_join(root, "rmrf/outside"), *l1 = NULL, *l2 = NULL, *target = NULL,
                *fifo = NULL, *deep = strdup("deep"), *leaf = NULL, *locked = NULL, *noperm = NULL;
        int dfd;

        make_dir(root, "rmrf/outside");
        make_dir(root, "rmrf/victim");
        write_file(outside, "keep.txt", "keep");
        write_file(victim, "a/b/c.txt", "c");
        write_file(victim, "locked/inner/x.txt", "x");
        write_file(victim, "noperm/y.txt", "y");
        l1 = path_join(victim, "a/link-to-outside");
        ASSERT_EQ(symlink(outside, l1), 0);
        l2 = path_join(victim, "a/link-to-file");
        target = path_join(outside, "keep.txt");
        ASSERT_EQ(symlink(target, l2), 0);
        fifo = path_join(victim, "fifo");
        ASSERT_EQ(mkfifo(fifo, 0600), 0);
        /* Deeper than the descriptors rm_rf_at keeps open. */
        for (int i = 0; i < 100; i++) {
                char *t;
                ASSERT_TRUE(asprintf(&t, "%s/d%d", deep, i) >= 0);
                free(deep);
                deep = t;
        }
        leaf = path_join(deep, "leaf.txt");
        write_file(victim, leaf, "leaf");
        /* Folders the owner cannot write or even read (only matters when not run as root). */
        locked = path_join(victim, "locked/inner");
        ASSERT_EQ(chmod(locked, 0500), 0);
        noperm = path_join(victim, "noperm");
        ASSERT_EQ(chmod(noperm, 0), 0);

        dfd = open(tree, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ASSERT_TRUE(dfd >= 0);
        ASSERT_EQ(rm_rf_at(dfd, "victim"), 0);
        ASSERT_EQ(faccessat(dfd, "victim", F_OK, AT_SYMLINK_NOFOLLOW), -1);
        ASSERT_EQ(faccessat(dfd, "outside/keep.txt", F_OK, 0), 0);
        /* Missing: fine. A symlink: removed itself, not its target. A file: removed. */
        ASSERT_EQ(rm_rf_at(dfd, "victim"), 0);
        ASSERT_EQ(symlinkat(outside, dfd, "link"), 0);
        ASSERT_EQ(rm_rf_at(dfd, "link"), 0);
        ASSERT_EQ(faccessat(dfd, "link", F_OK, AT_SYMLINK_NOFOLLOW), -1);
        ASSERT_EQ(faccessat(dfd, "outside/keep.txt", F_OK, 0), 0);
        ASSERT_EQ(rm_rf_at(dfd, "outside"), 0);
        {
                _cleanup_free_ char *listing = list_folder(dfd);
                ASSERT_STREQ(listing, "");
        }
        close(dfd);
}

static int count_fds(void) {
        DIR *d = opendir("/proc/self/fd");
        int n = 0;

        ASSERT_NOT_NULL(d);
        while (readdir(d))
                n++;
        closedir(d);
        return n;
}

int main(void) {
        int fds = count_fds();

        root = make_tempdir();
        corpus = path_join(root, "corpus");
        inner = path_join(root, "outer/inner");
        make_dir(root, "outer/inner");
        generate_corpus();

        RUN(test_corpus_validate);
        RUN(test_newer_message);
        RUN(test_corpus_extract_refuses);
        RUN(test_corpus_extract_failures);
        RUN(test_entry_limit);
        RUN(test_space_boundary);
        RUN(test_nul_in_name);
        RUN(test_many_plugins);
        RUN(test_installed_version);
        RUN(test_good_octoprint);
        RUN(test_good_large);
        RUN(test_planted_symlinks);
        RUN(test_cancel);
        RUN(test_engine_backup);
        RUN(test_rm_rf);

        /* Nothing leaked a descriptor (libzip's, the extractor's, rm_rf_at's). */
        ASSERT_EQ(count_fds(), fds);
        rm_rf(root);
        free(root);
        free(corpus);
        free(inner);
        return 0;
}
