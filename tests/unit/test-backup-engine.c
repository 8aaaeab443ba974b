/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The backup engine end to end on a small instance tree: the zip is checked by CPython's zipfile (what
 * OctoPrint reads backups with, warnings as errors) and unzip -t, via check-backup-zip.py. */

#include <dirent.h>
#include <grp.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>

#include "backup/backup.h"
#include "test-util.h"

#if !defined(BACKUP_CHECKER) || !defined(GEN_INSTANCE) || !defined(OCTOPRINT_MODEL)
#error "BACKUP_CHECKER must name check-backup-zip.py, GEN_INSTANCE tests/gen-instance.py and OCTOPRINT_MODEL octoprint-backup-model.py"
#endif

#define VERSION "1.11.8"

typedef struct Capture {
        char **lines;                  /* "<level> <line>" */
        const char *cancel_stage;      /* progress() returns -1 in this stage ... */
        uint64_t cancel_after;         /* ... once done reaches this */
        bool fake_space;
        uint64_t free_space;
        unsigned progress_calls;
        uint64_t canceled_at;          /* done when progress() said stop */
        char stages[256];              /* every stage change, space-separated */
        void (*before_writing)(void *userdata);   /* called once, when writing starts */
        void *before_writing_userdata;
} Capture;

static void cap_log(int level, const char *line, void *userdata) {
        Capture *c = userdata;
        char *s;

        fprintf(stderr, "  [%d] %s\n", level, line);
        ASSERT_TRUE(asprintf(&s, "%d %s", level, line) >= 0);
        ASSERT_EQ(strv_consume(&c->lines, s), 0);
}

static int cap_progress(const char *stage, uint64_t done, uint64_t total, void *userdata) {
        Capture *c = userdata;
        const char *last = strrchr(c->stages, ' ');

        c->progress_calls++;
        if (c->before_writing && streq(stage, "writing")) {
                c->before_writing(c->before_writing_userdata);
                c->before_writing = NULL;
        }
        if (!streq(last ? last + 1 : c->stages, stage))
                snprintf(c->stages + strlen(c->stages), sizeof(c->stages) - strlen(c->stages), "%s%s",
                         c->stages[0] ? " " : "", stage);
        if (total > 0)
                ASSERT_TRUE(done <= total);
        if (c->cancel_stage && streq(stage, c->cancel_stage) && done >= c->cancel_after) {
                c->canceled_at = done;
                return -1;
        }
        /* Reports are at most every 100 ms: wait so that the next one comes from inside the writing. */
        if (c->cancel_stage && streq(stage, c->cancel_stage) && done == 0)
                (void) nanosleep(&(struct timespec) { .tv_nsec = 150 * 1000 * 1000 }, NULL);
        return 0;
}

static int cap_free_space(int dirfd, uint64_t *ret, void *userdata) {
        *ret = ((Capture *) userdata)->free_space;
        return 0;
}

static BackupCallbacks callbacks(Capture *c) {
        return (BackupCallbacks) {
                .log = cap_log,
                .progress = cap_progress,
                .free_space = c->fake_space ? cap_free_space : NULL,
                .userdata = c,
        };
}

static bool logged(const Capture *c, int max_level, const char *sub) {
        STRV_FOREACH(l, c->lines)
                if (atoi(*l) <= max_level && strstr(*l, sub))
                        return true;
        return false;
}

static void capture_done(Capture *c) {
        strv_free(c->lines);
        *c = (Capture) {};
}

/* ---- the instance ---- */

typedef struct Fixture {
        char *root, *basedir, *config, *backup_folder, *venv, *config_dir;
        OctoConfig octo;
        json_object *entries;          /* expected entry name → source path */
} Fixture;

static char *path_join(const char *a, const char *b) {
        char *p;

        ASSERT_TRUE(asprintf(&p, "%s/%s", a, b) >= 0);
        return p;
}

static void expect(Fixture *f, const char *name, const char *source_rel_to_basedir) {
        _cleanup_free_ char *src = path_join(f->basedir, source_rel_to_basedir);

        json_object_object_add(f->entries, name, json_object_new_string(src));
}

static void expect_content(Fixture *f, const char *name, const char *content) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "content", json_object_new_string(content));
        json_object_object_add(f->entries, name, o);
}

static void unexpect(Fixture *f, const char *name) {
        json_object_object_del(f->entries, name);
}

static void set_mtime(const char *dir, const char *rel, time_t t) {
        _cleanup_free_ char *p = path_join(dir, rel);
        struct timespec ts[2] = { { .tv_sec = t }, { .tv_sec = t } };

        ASSERT_EQ(utimensat(AT_FDCWD, p, ts, 0), 0);
}

static void make_symlink(const char *target, const char *dir, const char *rel) {
        _cleanup_free_ char *p = path_join(dir, rel);

        ASSERT_EQ(symlink(target, p), 0);
}

static void mkdir_p(const char *path) {
        _cleanup_free_ char *p = strdup(path);

        for (char *s = p + 1; (s = strchr(s, '/')); s++) {
                *s = 0;
                ASSERT_TRUE(mkdir(p, 0755) >= 0 || errno == EEXIST);
                *s = '/';
        }
        ASSERT_TRUE(mkdir(p, 0755) >= 0 || errno == EEXIST);
}

static void fixture_init(Fixture *f) {
        _cleanup_free_ char *fifo = NULL, *outside = NULL, *sp = NULL, *script = NULL;

        *f = (Fixture) {};
        f->root = make_tempdir();
        f->basedir = path_join(f->root, "base");
        f->config = path_join(f->basedir, "config.yaml");
        f->backup_folder = path_join(f->basedir, "data/backup");
        f->venv = path_join(f->root, "venv");
        f->config_dir = path_join(f->root, "etc");
        f->entries = json_object_new_object();
        mkdir_p(f->basedir);
        mkdir_p(f->config_dir);

        write_file(f->basedir, "config.yaml", "appearance:\n  name: Test\n");
        write_file(f->basedir, "users.yaml", "admin: {}\n");
        write_file(f->basedir, "uploads/a.gcode", "G28\n");
        write_file(f->basedir, "uploads/sub/b.gcode", "G1 X10\n");
        write_file(f->basedir, "uploads/\xc3\x9cn\xc3\xaf" "code.gcode", "M117 hi\n");
        write_file(f->basedir, "timelapse/t1.mp4", "mp4");
        write_file(f->basedir, "timelapse/tmp/frame1.jpg", "jpg");
        write_file(f->basedir, "logs/octoprint.log", "a log line");
        write_file(f->basedir, "generated/webassets/x.js", "js");
        write_file(f->basedir, "watched/w.gcode", "w");
        write_file(f->basedir, "uploadtemp/u.tmp", "u");
        write_file(f->basedir, "virtualSd/v.gcode", "v");
        write_file(f->basedir, "data/backup/octoprint-backup-20200101-000000.zip", "an older backup");
        write_file(f->basedir, "data/pluginA/foo.txt", "Hello\n");
        write_file(f->basedir, "data/pluginA/bar.txt", "Hello\n");
        write_file(f->basedir, "data/pluginB/foo.txt", "Hello\n");
        write_file(f->basedir, "plugins/myplugin.py", "# a single-file plugin\n");
        write_file(f->basedir, "printerProfiles/_default.profile", "id: _default\n");
        write_file(f->basedir, "scripts/run.sh", "#!/bin/sh\n");
        write_file(f->basedir, "other/file.txt", "other");
        write_file(f->basedir, "other/empty", "");
        write_file(f->basedir, ".hidden", "hidden");
        write_file(f->basedir, ".octoprint-backup-20240101-120000.zip", "a backup being written elsewhere");
        write_file(f->basedir, "old.txt", "from 1990");
        write_file(f->basedir, "ancient.txt", "from 1970");
        set_mtime(f->basedir, "old.txt", 631152000 + 3);     /* 1990-01-01, odd second */
        set_mtime(f->basedir, "ancient.txt", 1000);
        {
                _cleanup_free_ char *p = path_join(f->basedir, "scripts/run.sh");
                ASSERT_EQ(chmod(p, 0750), 0);
        }

        fifo = path_join(f->basedir, "fifo");
        ASSERT_EQ(mkfifo(fifo, 0644), 0);
        write_file(f->root, "outside/secret.txt", "TOPSECRET");
        outside = path_join(f->root, "outside");
        make_symlink("/etc/passwd", f->basedir, "link-passwd");
        make_symlink(outside, f->basedir, "link-outside");
        make_symlink("uploads/a.gcode", f->basedir, "link-inside");
        make_symlink("..", f->basedir, "other/loop");
        make_symlink("does-not-exist", f->basedir, "dangling");

        /* A venv: OctoPrint, a third-party plugin, a bundled one, a non-plugin. */
        sp = path_join(f->venv, "lib/python3.11/site-packages");
        mkdir_p(sp);
        write_file(sp, "OctoPrint-" VERSION ".dist-info/METADATA", "Metadata-Version: 2.1\nName: OctoPrint\nVersion: " VERSION "\n");
        write_file(sp, "OctoPrint-" VERSION ".dist-info/entry_points.txt", "[octoprint.plugin]\ncore = octoprint.plugins.core\n");
        write_file(sp, "OctoPrint_Foo-1.0.dist-info/METADATA",
                   "Metadata-Version: 2.1\nName: OctoPrint-Foo\nVersion: 1.0\nHome-page: https://example.com/foo\n");
        write_file(sp, "OctoPrint_Foo-1.0.dist-info/entry_points.txt", "[octoprint.plugin]\nfoo = octoprint_foo\n");
        write_file(sp, "OctoPrint_FirmwareCheck-2021.10.11.dist-info/METADATA",
                   "Metadata-Version: 2.1\nName: OctoPrint-FirmwareCheck\nVersion: 2021.10.11\n");
        write_file(sp, "OctoPrint_FirmwareCheck-2021.10.11.dist-info/entry_points.txt",
                   "[octoprint.plugin]\nfirmware_check = octoprint_firmware_check\n");
        write_file(sp, "requests-2.31.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: requests\n");

        expect(f, "basedir/config.yaml", "config.yaml");
        expect(f, "basedir/uploads/a.gcode", "uploads/a.gcode");
        expect(f, "basedir/uploads/sub/b.gcode", "uploads/sub/b.gcode");
        expect(f, "basedir/uploads/\xc3\x9cn\xc3\xaf" "code.gcode", "uploads/\xc3\x9cn\xc3\xaf" "code.gcode");
        expect(f, "basedir/timelapse/t1.mp4", "timelapse/t1.mp4");
        expect(f, "basedir/timelapse/tmp/frame1.jpg", "timelapse/tmp/frame1.jpg");
        expect(f, "basedir/virtualSd/v.gcode", "virtualSd/v.gcode");
        expect(f, "basedir/plugins/myplugin.py", "plugins/myplugin.py");
        expect(f, "basedir/printerProfiles/_default.profile", "printerProfiles/_default.profile");
        expect(f, "basedir/scripts/run.sh", "scripts/run.sh");
        expect(f, "basedir/data/pluginA/foo.txt", "data/pluginA/foo.txt");
        expect(f, "basedir/data/pluginA/bar.txt", "data/pluginA/bar.txt");
        expect(f, "basedir/data/pluginB/foo.txt", "data/pluginB/foo.txt");
        expect(f, "basedir/users.yaml", "users.yaml");
        expect(f, "basedir/other/file.txt", "other/file.txt");
        expect(f, "basedir/other/empty", "other/empty");
        expect(f, "basedir/.hidden", ".hidden");
        expect(f, "basedir/old.txt", "old.txt");
        expect(f, "basedir/ancient.txt", "ancient.txt");
        expect(f, "basedir/link-inside", "uploads/a.gcode");
        (void) script;
}

static void fixture_done(Fixture *f) {
        rm_rf(f->root);
        free(f->root);
        free(f->basedir);
        free(f->config);
        free(f->backup_folder);
        free(f->venv);
        free(f->config_dir);
        for (int i = 0; i < _FOLDER_MAX; i++)
                free(f->octo.folders[i]);
        json_object_put(f->entries);
}

static BackupRequest request(Fixture *f, char **excludes) {
        static char *bundled[] = { (char *) "file_check", (char *) "firmware_check", (char *) "pi_support", NULL };

        return (BackupRequest) {
                .instance = "test",
                .octo = &f->octo,
                .basedir = f->basedir,
                .config_file = f->config,
                .backup_folder = f->backup_folder,
                .venv = f->venv,
                .bundled_plugins = bundled,
                .excludes = excludes,
                .name = "test-backup-20240102-030405.zip",
                .octoprint_version = VERSION,
                .config_dir = f->config_dir,
                .compression_level = 6,
                .hook_timeout_usec = 500 * 1000,
        };
}

#define PLUGIN_LIST "[{\"key\": \"foo\", \"name\": \"OctoPrint-Foo\", \"url\": \"https://example.com/foo\"}]"

/* Runs the checker on `zip` and asserts it is happy. */
static void check_zip(Fixture *f, const char *zip, const char *metadata, const char *plugin_list, int level) {
        _cleanup_free_ char *exp_path = path_join(f->root, "expect.json"), *cmd = NULL;
        json_object *o = json_object_new_object(), *forbidden = json_object_new_array();
        int r;

        json_object_object_add(o, "zip", json_object_new_string(zip));
        json_object_object_add(o, "metadata", json_object_new_string(metadata));
        json_object_object_add(o, "plugin_list", plugin_list ? json_object_new_string(plugin_list) : NULL);
        json_object_object_add(o, "level", json_object_new_int(level));
        json_object_object_add(o, "entries", json_object_get(f->entries));
        json_object_array_add(forbidden, json_object_new_string("root:x:0:0"));
        json_object_array_add(forbidden, json_object_new_string("TOPSECRET"));
        json_object_array_add(forbidden, json_object_new_string("an older backup"));
        json_object_array_add(forbidden, json_object_new_string("a log line"));
        json_object_array_add(forbidden, json_object_new_string("a backup being written"));
        json_object_object_add(o, "forbidden", forbidden);
        ASSERT_EQ(json_object_to_file_ext(exp_path, o, JSON_C_TO_STRING_PRETTY), 0);
        json_object_put(o);

        ASSERT_TRUE(asprintf(&cmd, "/usr/bin/python3 -W error '%s' '%s'", BACKUP_CHECKER, exp_path) >= 0);
        r = system(cmd);
        ASSERT_TRUE(WIFEXITED(r));
        ASSERT_EQ(WEXITSTATUS(r), 0);
}

/* The names in a folder, sorted, space-separated. */
static char *list_folder(const char *path) {
        struct dirent **l;
        char *s = strdup("");
        int n = scandir(path, &l, NULL, alphasort);

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
        return s;
}

static int run(Fixture *f, char **excludes, Capture *c, char **ret_path, char ***ret_meta, char **ret_error) {
        BackupRequest req = request(f, excludes);
        BackupCallbacks cb = callbacks(c);
        uint64_t size = 0;
        int r;

        r = backup_execute(&req, &cb, ret_path, &size, ret_meta, ret_error);
        if (r >= 0 && ret_path) {
                struct stat st;
                ASSERT_EQ(stat(*ret_path, &st), 0);
                ASSERT_EQ(st.st_size, (long long) size);
                ASSERT_EQ(st.st_mode & 07777, 0600);
        }
        return r;
}

static void test_full(void) {
        _cleanup_(capture_done) Capture c = {};
        _cleanup_free_ char *path = NULL, *error = NULL, *expected = NULL, *listing = NULL;
        _cleanup_strv_free_ char **meta = NULL;
        Fixture f;

        fixture_init(&f);
        ASSERT_EQ(run(&f, NULL, &c, &path, &meta, &error), 0);
        ASSERT_NULL(error);
        expected = path_join(f.backup_folder, "test-backup-20240102-030405.zip");
        ASSERT_STREQ(path, expected);
        ASSERT_EQ(strv_length(meta), 0);
        check_zip(&f, path, "{\"version\": \"" VERSION "\", \"excludes\": []}", PLUGIN_LIST, 6);

        /* Each refusal is a warning that names what was left out. */
        ASSERT_TRUE(logged(&c, LOG_WARNING, "link-passwd"));
        ASSERT_TRUE(logged(&c, LOG_WARNING, "link-outside"));
        ASSERT_TRUE(logged(&c, LOG_WARNING, "/fifo"));
        ASSERT_TRUE(logged(&c, LOG_WARNING, "other/loop"));
        ASSERT_TRUE(logged(&c, LOG_WARNING, "dangling"));
        ASSERT_FALSE(logged(&c, LOG_WARNING, "link-inside"));
        ASSERT_STREQ(c.stages, "preparing scanning writing syncing");

        /* Only the finished backup was added to the folder, nothing hidden is left. */
        listing = list_folder(f.backup_folder);
        ASSERT_STREQ(listing, "octoprint-backup-20200101-000000.zip test-backup-20240102-030405.zip");
        fixture_done(&f);
}

/* Writes n bytes: G-code-like text, or (random) bytes that do not compress. */
static void write_generated(const char *dir, const char *rel, size_t n, bool random) {
        _cleanup_free_ char *p = path_join(dir, rel);
        uint64_t x = 0x9e3779b97f4a7c15ULL;
        FILE *out;

        write_file(dir, rel, "");
        out = fopen(p, "we");
        ASSERT_NOT_NULL(out);
        for (size_t i = 0; i < n;) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                if (random) {
                        fputc((int) (x & 0xff), out);
                        i++;
                } else
                        i += (size_t) fprintf(out, "G1 X%u.%03u Y%u.%03u E%u.%04u\n", (unsigned) (x % 220),
                                              (unsigned) (x >> 8) % 1000, (unsigned) (x >> 20) % 220,
                                              (unsigned) (x >> 28) % 1000, (unsigned) (x >> 40) % 9,
                                              (unsigned) (x >> 44) % 10000);
        }
        ASSERT_EQ(fclose(out), 0);
}

/* Whether an entry is deflated or stored: small files by their name, larger ones by a trial deflate of
 * their first block, whatever their name. Large files are deflated in chunks on several threads and must
 * come out as one valid stream each. The checker asserts the methods (check-backup-zip.py). */
static void test_compression_choice(void) {
        _cleanup_(capture_done) Capture c = {};
        _cleanup_free_ char *path = NULL, *error = NULL;
        Fixture f;

        fixture_init(&f);
        write_generated(f.basedir, "uploads/big.gcode", 3 * 1024 * 1024 + 12345, false);   /* deflated, 4 chunks */
        write_generated(f.basedir, "uploads/firmware.bin", 200 * 1024, true);              /* stored: trial */
        write_generated(f.basedir, "uploads/small.bin", 10 * 1024, true);                  /* deflated: small */
        write_generated(f.basedir, "timelapse/text.mp4", 100 * 1024, false);               /* deflated: trial */
        expect(&f, "basedir/uploads/big.gcode", "uploads/big.gcode");
        expect(&f, "basedir/uploads/firmware.bin", "uploads/firmware.bin");
        expect(&f, "basedir/uploads/small.bin", "uploads/small.bin");
        expect(&f, "basedir/timelapse/text.mp4", "timelapse/text.mp4");
        ASSERT_EQ(run(&f, NULL, &c, &path, NULL, &error), 0);
        check_zip(&f, path, "{\"version\": \"" VERSION "\", \"excludes\": []}", PLUGIN_LIST, 6);
        fixture_done(&f);
}

static void test_excludes_uploads_timelapse(void) {
        _cleanup_(capture_done) Capture c = {};
        _cleanup_free_ char *path = NULL, *error = NULL;
        _cleanup_strv_free_ char **meta = NULL;
        char *excludes[] = { (char *) "uploads", (char *) "timelapse", NULL };
        Fixture f;

        fixture_init(&f);
        ASSERT_EQ(run(&f, excludes, &c, &path, &meta, &error), 0);
        ASSERT_EQ(strv_length(meta), 3);
        ASSERT_STREQ(meta[0], "uploads");
        ASSERT_STREQ(meta[1], "timelapse");
        ASSERT_STREQ(meta[2], "timelapse_tmp");
        unexpect(&f, "basedir/uploads/a.gcode");
        unexpect(&f, "basedir/uploads/sub/b.gcode");
        unexpect(&f, "basedir/uploads/\xc3\x9cn\xc3\xaf" "code.gcode");
        unexpect(&f, "basedir/timelapse/t1.mp4");
        unexpect(&f, "basedir/timelapse/tmp/frame1.jpg");
        /* A symlink must not bring back what the caller excluded. */
        unexpect(&f, "basedir/link-inside");
        check_zip(&f, path, "{\"version\": \"" VERSION "\", \"excludes\": [\"uploads\", \"timelapse\", \"timelapse_tmp\"]}",
                  PLUGIN_LIST, 6);
        ASSERT_TRUE(logged(&c, LOG_WARNING, "link-inside"));
        fixture_done(&f);
}

/* Configured locations: outside basedir, relative, an always-excluded one inside basedir, a backup
 * folder outside basedir; no venv and level 0. */
static void test_overrides(void) {
        _cleanup_(capture_done) Capture c = {};
        _cleanup_free_ char *path = NULL, *error = NULL, *mylogs = NULL, *listing = NULL;
        Fixture f;

        fixture_init(&f);
        write_file(f.root, "ext-uploads/ext.gcode", "G0\n");
        write_file(f.root, "ext-tl/movie.mp4", "movie");
        write_file(f.basedir, "mylogs/x.log", "a log line");
        write_file(f.basedir, "vsd/card.gcode", "card");
        write_file(f.root, "backups/keep.zip", "an older backup");
        mylogs = path_join(f.basedir, "mylogs");
        make_symlink(mylogs, f.root, "ext-uploads/logs-link");
        f.octo.folders[FOLDER_UPLOADS] = path_join(f.root, "ext-uploads");
        f.octo.folders[FOLDER_TIMELAPSE] = path_join(f.root, "ext-tl");
        f.octo.folders[FOLDER_LOGS] = strdup(mylogs);
        f.octo.folders[FOLDER_VIRTUALSD] = strdup("vsd");
        free(f.backup_folder);
        f.backup_folder = path_join(f.root, "backups");
        free(f.venv);
        f.venv = NULL;

        ASSERT_EQ(run(&f, NULL, &c, &path, NULL, &error), 0);
        /* Stale default locations are not stored; the configured ones are, under the ids' names. */
        unexpect(&f, "basedir/uploads/a.gcode");
        unexpect(&f, "basedir/uploads/sub/b.gcode");
        unexpect(&f, "basedir/uploads/\xc3\x9cn\xc3\xaf" "code.gcode");
        unexpect(&f, "basedir/timelapse/t1.mp4");
        unexpect(&f, "basedir/virtualSd/v.gcode");
        expect(&f, "basedir/uploads/ext.gcode", "../ext-uploads/ext.gcode");
        expect(&f, "basedir/timelapse/movie.mp4", "../ext-tl/movie.mp4");
        expect(&f, "basedir/virtualSd/card.gcode", "vsd/card.gcode");
        /* data/backup is no backup folder now: an ordinary folder of data. */
        expect(&f, "basedir/data/backup/octoprint-backup-20200101-000000.zip",
               "data/backup/octoprint-backup-20200101-000000.zip");

        {
                /* Written by hand: "an older backup" is now legitimately inside. */
                _cleanup_free_ char *exp_path = path_join(f.root, "expect.json"), *cmd = NULL;
                json_object *o = json_object_new_object(), *forbidden = json_object_new_array();
                int r;

                json_object_object_add(o, "zip", json_object_new_string(path));
                json_object_object_add(o, "metadata", json_object_new_string("{\"version\": \"" VERSION "\", \"excludes\": []}"));
                json_object_object_add(o, "plugin_list", NULL);
                json_object_object_add(o, "level", json_object_new_int(6));
                json_object_object_add(o, "entries", json_object_get(f.entries));
                json_object_array_add(forbidden, json_object_new_string("a log line"));
                json_object_array_add(forbidden, json_object_new_string("TOPSECRET"));
                json_object_object_add(o, "forbidden", forbidden);
                ASSERT_EQ(json_object_to_file_ext(exp_path, o, JSON_C_TO_STRING_PRETTY), 0);
                json_object_put(o);
                ASSERT_TRUE(asprintf(&cmd, "/usr/bin/python3 -W error '%s' '%s'", BACKUP_CHECKER, exp_path) >= 0);
                r = system(cmd);
                ASSERT_TRUE(WIFEXITED(r) && WEXITSTATUS(r) == 0);
        }
        ASSERT_TRUE(logged(&c, LOG_WARNING, "logs-link"));
        listing = list_folder(f.backup_folder);
        ASSERT_STREQ(listing, "keep.zip test-backup-20240102-030405.zip");
        fixture_done(&f);
}

static void write_exec(const char *dir, const char *rel, const char *content, mode_t mode) {
        _cleanup_free_ char *p = path_join(dir, rel);

        write_file(dir, rel, content);
        ASSERT_EQ(chmod(p, mode), 0);
}

static void remove_backup(const char *path) {
        ASSERT_EQ(unlink(path), 0);
}

static const char *metadata_for(char **excludes) {
        if (!excludes)
                return "{\"version\": \"" VERSION "\", \"excludes\": []}";
        if (strv_length(excludes) == 1)
                return "{\"version\": \"" VERSION "\", \"excludes\": [\"uploads\"]}";
        return "{\"version\": \"" VERSION "\", \"excludes\": [\"uploads\", \"timelapse\", \"timelapse_tmp\"]}";
}

static void unexpect_uploads(Fixture *f) {
        unexpect(f, "basedir/uploads/a.gcode");
        unexpect(f, "basedir/uploads/sub/b.gcode");
        unexpect(f, "basedir/uploads/\xc3\x9cn\xc3\xaf" "code.gcode");
        unexpect(f, "basedir/link-inside");
}

/* The seed's two additional_excludes examples as drop-ins: Example 1 by the admin, Example 2 by the
 * plugin itself; plus a two-folder section and paths that try to leave the plugin's folder. */
static void test_dropins(void) {
        char *uploads[] = { (char *) "uploads", NULL };
        char *both[] = { (char *) "uploads", (char *) "timelapse", NULL };
        Fixture f;

        fixture_init(&f);
        write_file(f.config_dir, "excludes.d/pluginA.conf", "# Example 1\n[Exclude]\nPaths=foo.txt   # not bar.txt\n");
        write_file(f.basedir, "data/pluginB/.opbackup-excludes", "[Exclude.uploads]\nPaths=.\n");
        write_file(f.config_dir, "excludes.d/pluginC.conf", "[Exclude.uploads+timelapse]\nPaths=c.txt\n");
        write_file(f.basedir, "data/pluginC/c.txt", "c");
        write_file(f.config_dir, "excludes.d/pluginD.conf", "[Exclude]\nPaths=../../users.yaml /etc/passwd cache/ ok.txt\n");
        write_file(f.basedir, "data/pluginD/ok.txt", "ok");
        write_file(f.basedir, "data/pluginD/cache/x.bin", "x");
        write_file(f.basedir, "data/pluginD/cached.txt", "not the cache");
        write_file(f.config_dir, "excludes.d/not a plugin.conf", "[Exclude]\nPaths=.\n");
        expect(&f, "basedir/data/pluginB/.opbackup-excludes", "data/pluginB/.opbackup-excludes");
        expect(&f, "basedir/data/pluginC/c.txt", "data/pluginC/c.txt");
        expect(&f, "basedir/data/pluginD/cached.txt", "data/pluginD/cached.txt");
        unexpect(&f, "basedir/data/pluginA/foo.txt");

        for (int i = 0; i < 3; i++) {
                _cleanup_(capture_done) Capture c = {};
                _cleanup_free_ char *path = NULL, *error = NULL;
                char **excludes = i == 0 ? NULL : i == 1 ? uploads : both;

                fprintf(stderr, "   excludes: %s\n", i == 0 ? "none" : i == 1 ? "uploads" : "uploads timelapse");
                if (i == 1) {
                        unexpect_uploads(&f);
                        unexpect(&f, "basedir/data/pluginB/foo.txt");
                        unexpect(&f, "basedir/data/pluginB/.opbackup-excludes");
                }
                if (i == 2) {
                        unexpect(&f, "basedir/timelapse/t1.mp4");
                        unexpect(&f, "basedir/timelapse/tmp/frame1.jpg");
                        unexpect(&f, "basedir/data/pluginC/c.txt");
                }
                ASSERT_EQ(run(&f, excludes, &c, &path, NULL, &error), 0);
                check_zip(&f, path, metadata_for(excludes), PLUGIN_LIST, 6);
                ASSERT_TRUE(logged(&c, LOG_WARNING, "\"../../users.yaml\""));
                ASSERT_TRUE(logged(&c, LOG_WARNING, "\"/etc/passwd\""));
                remove_backup(path);
        }
        fixture_done(&f);
}

/* The same examples as executable hooks, and hooks that fail in every way a hook can. */
static void test_hooks(void) {
        char *uploads[] = { (char *) "uploads", NULL };
        _cleanup_free_ char *dir = NULL;
        Fixture f;

        fixture_init(&f);
        dir = path_join(f.config_dir, "hooks/additional-excludes.d");
        mkdir_p(dir);
        write_exec(dir, "pluginA", "#!/bin/sh\ncat >/dev/null\necho '[\"foo.txt\"]'\n", 0755);
        write_exec(dir, "pluginB", "#!/bin/sh\nif grep -q '\"uploads\"'; then echo '[\".\"]'; else echo '[]'; fi\n", 0755);
        write_exec(dir, "pluginC", "#!/bin/sh\necho boom >&2\nexit 3\n", 0755);
        write_exec(dir, "pluginD", "#!/bin/sh\necho 'not json'\n", 0755);
        write_exec(dir, "pluginE", "#!/bin/sh\nsleep 5\necho '[\"e.txt\"]'\n", 0755);
        write_exec(dir, "pluginF", "#!/bin/sh\necho '[\"../../users.yaml\", \"/etc/passwd\", \"\", \"ok.txt\"]'\n", 0755);
        write_exec(dir, "pluginG", "#!/bin/sh\nif grep -q 'data/pluginA/foo.txt'; then echo '[\"seen.txt\"]'; "
                   "else echo '[\"notseen.txt\"]'; fi\n", 0755);
        write_exec(dir, "pluginH", "#!/bin/sh\necho '[\".\"]'\n", 0775);
        write_exec(dir, "pluginI", "#!/bin/sh\necho '[\".\"]'\n", 0644);
        write_exec(dir, "pluginJ", "#!/bin/sh\nhead -c 3000000 /dev/zero | tr '\\\\0' x\n", 0755);
        write_file(f.basedir, "data/pluginE/e.txt", "e");
        write_file(f.basedir, "data/pluginF/ok.txt", "ok");
        write_file(f.basedir, "data/pluginG/seen.txt", "seen");
        write_file(f.basedir, "data/pluginG/notseen.txt", "not seen");
        write_file(f.basedir, "data/pluginH/h.txt", "h");
        write_file(f.basedir, "data/pluginI/i.txt", "i");
        expect(&f, "basedir/data/pluginE/e.txt", "data/pluginE/e.txt");
        expect(&f, "basedir/data/pluginG/notseen.txt", "data/pluginG/notseen.txt");
        expect(&f, "basedir/data/pluginH/h.txt", "data/pluginH/h.txt");
        expect(&f, "basedir/data/pluginI/i.txt", "data/pluginI/i.txt");
        unexpect(&f, "basedir/data/pluginA/foo.txt");

        for (int i = 0; i < 2; i++) {
                _cleanup_(capture_done) Capture c = {};
                _cleanup_free_ char *path = NULL, *error = NULL;
                struct timespec t0, t1;

                if (i == 1) {
                        unexpect_uploads(&f);
                        unexpect(&f, "basedir/data/pluginB/foo.txt");
                }
                clock_gettime(CLOCK_MONOTONIC, &t0);
                ASSERT_EQ(run(&f, i == 0 ? NULL : uploads, &c, &path, NULL, &error), 0);
                clock_gettime(CLOCK_MONOTONIC, &t1);
                check_zip(&f, path, metadata_for(i == 0 ? NULL : uploads), PLUGIN_LIST, 6);
                /* pluginE was killed after the 0.5 s the request allows, not waited for. */
                ASSERT_TRUE(t1.tv_sec - t0.tv_sec < 4);
                ASSERT_TRUE(logged(&c, LOG_WARNING, "pluginC failed with exit status 3"));
                ASSERT_TRUE(logged(&c, LOG_WARNING, "Hook pluginC: boom"));
                ASSERT_TRUE(logged(&c, LOG_WARNING, "pluginD printed no JSON array"));
                ASSERT_TRUE(logged(&c, LOG_WARNING, "pluginE did not finish within 0.5 s"));
                ASSERT_TRUE(logged(&c, LOG_WARNING, "\"../../users.yaml\""));
                ASSERT_TRUE(logged(&c, LOG_WARNING, "Not running hook") && logged(&c, LOG_WARNING, "pluginH"));
                ASSERT_FALSE(logged(&c, LOG_DEBUG, "pluginI"));
                ASSERT_TRUE(logged(&c, LOG_WARNING, "pluginJ printed more than 1024 KiB"));
                remove_backup(path);
        }
        fixture_done(&f);
}

/* An instance made by gen-instance.py, checked against the expected.json it writes: an expectation
 * written independently of this engine. */
static void test_gen_instance(void) {
        _cleanup_(capture_done) Capture c = {};
        _cleanup_free_ char *root = make_tempdir(), *cmd = NULL, *exp = NULL, *path = NULL, *error = NULL;
        _cleanup_strv_free_ char **bundled = NULL;
        json_object *e, *folders, *v;
        BackupCallbacks cb = callbacks(&c);
        BackupRequest req;
        OctoConfig octo = {};
        int r;

        if (access(GEN_INSTANCE, R_OK) < 0) {
                fprintf(stderr, "   %s is missing, skipped\n", GEN_INSTANCE);
                rm_rf(root);
                return;
        }
        ASSERT_TRUE(asprintf(&cmd, "/usr/bin/python3 '%s' --root '%s/gi' --size tiny >/dev/null", GEN_INSTANCE, root) >= 0);
        r = system(cmd);
        ASSERT_TRUE(WIFEXITED(r) && WEXITSTATUS(r) == 0);
        ASSERT_TRUE(asprintf(&exp, "%s/gi/expected.json", root) >= 0);
        e = json_object_from_file(exp);
        ASSERT_NOT_NULL(e);

        ASSERT_TRUE(json_object_object_get_ex(e, "folders", &folders));
        for (int i = 0; i < _FOLDER_MAX; i++)
                if (json_object_object_get_ex(folders, folder_id_to_string(i), &v))
                        octo.folders[i] = strdup(json_object_get_string(v));
        ASSERT_TRUE(json_object_object_get_ex(e, "bundled_plugin_keys", &v));
        bundled = calloc(1, sizeof(char *));
        for (size_t i = 0; i < json_object_array_length(v); i++)
                ASSERT_EQ(strv_extend(&bundled, json_object_get_string(json_object_array_get_idx(v, i))), 0);

#define GET(key) (json_object_object_get_ex(e, key, &v) ? json_object_get_string(v) : NULL)
        req = (BackupRequest) {
                .instance = "gi",
                .octo = &octo,
                .basedir = GET("basedir"),
                .config_file = GET("config"),
                .backup_folder = GET("backup_folder"),
                .venv = GET("venv"),
                .bundled_plugins = bundled,
                .name = "gi-backup-20240102-030405.zip",
                .octoprint_version = GET("octoprint_version"),
                .compression_level = 6,
        };
#undef GET
        ASSERT_EQ(backup_execute(&req, &cb, &path, NULL, NULL, &error), 0);
        ASSERT_FALSE(logged(&c, LOG_WARNING, ""));

        free(cmd);
        ASSERT_TRUE(asprintf(&cmd, "/usr/bin/python3 -W error '%s' --gen-instance '%s' '%s'", BACKUP_CHECKER, exp, path) >= 0);
        r = system(cmd);
        ASSERT_TRUE(WIFEXITED(r) && WEXITSTATUS(r) == 0);

        json_object_put(e);
        octoconfig_done(&octo);
        rm_rf(root);
}

/* ---- the entry list against OctoPrint's own walk (octoprint-backup-model.py) ---- */

/* A plain instance: nothing where opbackup deliberately differs from OctoPrint (symlinks, FIFOs, temp
 * files of backups), so the two must store the same files under the same names. */
static void plain_init(Fixture *f) {
        *f = (Fixture) {};
        f->root = make_tempdir();
        f->basedir = path_join(f->root, "base");
        f->config = path_join(f->basedir, "config.yaml");
        f->backup_folder = path_join(f->basedir, "data/backup");
        f->config_dir = path_join(f->root, "etc");
        mkdir_p(f->basedir);
        mkdir_p(f->config_dir);
        write_file(f->basedir, "config.yaml", "appearance:\n  name: Test\n");
        write_file(f->basedir, "users.yaml", "admin: {}\n");
        write_file(f->basedir, "uploads/a.gcode", "G28\n");
        write_file(f->basedir, "timelapse/t1.mp4", "mp4");
        write_file(f->basedir, "timelapse/tmp/frame1.jpg", "jpg in basedir/timelapse/tmp");
        write_file(f->basedir, "timelapse/tmp/same.jpg", "same.jpg in basedir/timelapse/tmp");
        write_file(f->basedir, "logs/octoprint.log", "a log line");
        write_file(f->basedir, "data/pluginA/foo.txt", "Hello\n");
        write_file(f->basedir, "data/backup/octoprint-backup-20200101-000000.zip", "an older backup");
        write_file(f->basedir, "other/file.txt", "other");
}

/* The model stores `name` from a file whose path ends in `suffix`. */
static void model_source_is(Fixture *f, const char *name, const char *suffix) {
        json_object *v;

        ASSERT_TRUE(json_object_object_get_ex(f->entries, name, &v));
        ASSERT_TRUE(endswith(json_object_get_string(v), suffix));
}

/* Runs the engine and compares its zip with what the model says OctoPrint would store. */
static void check_like_octoprint(Fixture *f) {
        _cleanup_(capture_done) Capture c = {};
        _cleanup_free_ char *path = NULL, *error = NULL, *in = path_join(f->root, "model-in.json"),
                            *out = path_join(f->root, "model-out.json"), *cmd = NULL;
        json_object *o = json_object_new_object(), *folders = json_object_new_object();
        int r;

        json_object_object_add(o, "basedir", json_object_new_string(f->basedir));
        json_object_object_add(o, "config_file", json_object_new_string(f->config));
        json_object_object_add(o, "backup_folder", json_object_new_string(f->backup_folder));
        for (int i = 0; i < _FOLDER_MAX; i++)
                if (f->octo.folders[i])
                        json_object_object_add(folders, folder_id_to_string(i), json_object_new_string(f->octo.folders[i]));
        json_object_object_add(o, "folders", folders);
        json_object_object_add(o, "excludes", json_object_new_array());
        ASSERT_EQ(json_object_to_file(in, o), 0);
        json_object_put(o);
        ASSERT_TRUE(asprintf(&cmd, "/usr/bin/python3 -W error '%s' '%s' >'%s'", OCTOPRINT_MODEL, in, out) >= 0);
        r = system(cmd);
        ASSERT_TRUE(WIFEXITED(r) && WEXITSTATUS(r) == 0);
        json_object_put(f->entries);
        f->entries = json_object_from_file(out);
        ASSERT_NOT_NULL(f->entries);
        fprintf(stderr, "   OctoPrint would store: %s\n", json_object_to_json_string(f->entries));

        ASSERT_EQ(run(f, NULL, &c, &path, NULL, &error), 0);
        check_zip(f, path, metadata_for(NULL), NULL, 6);
        ASSERT_FALSE(logged(&c, LOG_WARNING, ""));
}

/* timelapse configured elsewhere: OctoPrint's walk of that folder takes its tmp/ along (as
 * basedir/timelapse/tmp/...), while timelapse_tmp keeps its default place basedir/timelapse/tmp, stored
 * under the same names. Each file once; where both have a name, timelapse_tmp's file (written last by
 * OctoPrint, so the one its restore leaves). Then the mirror case, and the default layout. */
static void test_timelapse_tmp_like_octoprint(void) {
        Fixture f;

        plain_init(&f);
        write_file(f.root, "ext-tl/movie.mp4", "movie");
        write_file(f.root, "ext-tl/tmp/a.jpg", "a.jpg in ext-tl/tmp");
        write_file(f.root, "ext-tl/tmp/sub/b.jpg", "b.jpg in ext-tl/tmp/sub");
        write_file(f.root, "ext-tl/tmp/same.jpg", "same.jpg in ext-tl/tmp");
        f.octo.folders[FOLDER_TIMELAPSE] = path_join(f.root, "ext-tl");
        check_like_octoprint(&f);
        /* Spelled out, should the model and the engine ever agree on something wrong. */
        ASSERT_TRUE(json_object_object_get_ex(f.entries, "basedir/timelapse/tmp/a.jpg", NULL));
        ASSERT_TRUE(json_object_object_get_ex(f.entries, "basedir/timelapse/tmp/sub/b.jpg", NULL));
        ASSERT_TRUE(json_object_object_get_ex(f.entries, "basedir/timelapse/tmp/frame1.jpg", NULL));
        model_source_is(&f, "basedir/timelapse/tmp/same.jpg", "/base/timelapse/tmp/same.jpg");
        fixture_done(&f);

        plain_init(&f);
        write_file(f.root, "ext-tmp/c.jpg", "c.jpg in ext-tmp");
        write_file(f.root, "ext-tmp/same.jpg", "same.jpg in ext-tmp");
        f.octo.folders[FOLDER_TIMELAPSE_TMP] = path_join(f.root, "ext-tmp");
        check_like_octoprint(&f);
        ASSERT_TRUE(json_object_object_get_ex(f.entries, "basedir/timelapse/tmp/c.jpg", NULL));
        ASSERT_TRUE(json_object_object_get_ex(f.entries, "basedir/timelapse/tmp/frame1.jpg", NULL));
        model_source_is(&f, "basedir/timelapse/tmp/same.jpg", "/ext-tmp/same.jpg");
        fixture_done(&f);

        plain_init(&f);
        check_like_octoprint(&f);
        fixture_done(&f);
}

/* OctoPi setups: the default uploads folder is a symlink to a USB stick, logs one to /var/log. Both are
 * the ids' locations, not symlinks to refuse. */
static void test_symlinked_locations(void) {
        _cleanup_(capture_done) Capture c = {};
        _cleanup_free_ char *path = NULL, *error = NULL, *uploads = NULL, *logs = NULL, *usb = NULL, *varlog = NULL;
        Fixture f;

        fixture_init(&f);
        uploads = path_join(f.basedir, "uploads");
        logs = path_join(f.basedir, "logs");
        rm_rf(uploads);
        rm_rf(logs);
        write_file(f.root, "usb/uploads/g.gcode", "G92\n");
        write_file(f.root, "varlog/octoprint.log", "a log line");
        usb = path_join(f.root, "usb/uploads");
        varlog = path_join(f.root, "varlog");
        ASSERT_EQ(symlink(usb, uploads), 0);
        ASSERT_EQ(symlink(varlog, logs), 0);
        unexpect_uploads(&f);
        expect(&f, "basedir/uploads/g.gcode", "../usb/uploads/g.gcode");

        ASSERT_EQ(run(&f, NULL, &c, &path, NULL, &error), 0);
        check_zip(&f, path, metadata_for(NULL), PLUGIN_LIST, 6);
        ASSERT_FALSE(logged(&c, LOG_WARNING, "varlog"));
        ASSERT_FALSE(logged(&c, LOG_WARNING, "usb"));
        ASSERT_FALSE(logged(&c, LOG_WARNING, "base/logs"));
        ASSERT_FALSE(logged(&c, LOG_WARNING, "base/uploads"));
        ASSERT_TRUE(logged(&c, LOG_WARNING, "link-inside"));     /* its target is gone with the old folder */
        fixture_done(&f);
}

/* Files change between the scan and the moment libzip reads them: the archive stays valid, holds no
 * more than the scan saw, and a file swapped for a symlink (to the same folder or to /etc/passwd) is not
 * followed. */
static void change_files(void *userdata) {
        Fixture *f = userdata;
        _cleanup_free_ char *gone = path_join(f->basedir, "other/file.txt"), *sub = path_join(f->basedir, "uploads/sub"),
                *sub_old = path_join(f->basedir, "uploads/sub.old"), *grown = path_join(f->basedir, "users.yaml"),
                *swapped = path_join(f->basedir, "old.txt");
        FILE *g;

        ASSERT_EQ(unlink(gone), 0);
        ASSERT_EQ(rename(sub, sub_old), 0);
        ASSERT_EQ(symlink("/etc", sub), 0);                 /* uploads/sub/b.gcode: a folder component */
        ASSERT_EQ(truncate(f->config, 5), 0);
        g = fopen(grown, "ae");
        ASSERT_NOT_NULL(g);
        fputs("grown: after the scan\n", g);
        fclose(g);
        ASSERT_EQ(unlink(swapped), 0);
        ASSERT_EQ(symlink("/etc/passwd", swapped), 0);      /* the file itself */
}

static void test_changed_during_write(void) {
        _cleanup_(capture_done) Capture c = {};
        _cleanup_free_ char *path = NULL, *error = NULL;
        Fixture f;

        fixture_init(&f);
        c.before_writing = change_files;
        c.before_writing_userdata = &f;
        ASSERT_EQ(run(&f, NULL, &c, &path, NULL, &error), 0);
        expect_content(&f, "basedir/other/file.txt", "");
        expect_content(&f, "basedir/uploads/sub/b.gcode", "");
        expect_content(&f, "basedir/config.yaml", "appea");
        expect_content(&f, "basedir/users.yaml", "admin: {}\n");
        expect_content(&f, "basedir/old.txt", "");
        check_zip(&f, path, metadata_for(NULL), PLUGIN_LIST, 6);
        ASSERT_TRUE(logged(&c, LOG_WARNING, "other/file.txt changed or disappeared"));
        ASSERT_TRUE(logged(&c, LOG_WARNING, "sub/b.gcode changed or disappeared"));
        ASSERT_TRUE(logged(&c, LOG_WARNING, "old.txt changed or disappeared"));
        ASSERT_TRUE(logged(&c, LOG_WARNING, "config.yaml shrank"));
        fixture_done(&f);
}

static int chown_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return lchown(path, 65534, 65534) < 0 ? -1 : 0;
}

/* A file the instance user cannot read (left by OctoPrint once run as root) is skipped with a warning,
 * as OctoPrint skips it; it does not fail the backup. Runs as nobody: root reads everything. */
static void test_unreadable(void) {
        Fixture f;
        pid_t pid;
        int status;

        fixture_init(&f);
        write_file(f.basedir, "data/pluginA/secret.db", "root's");
        {
                _cleanup_free_ char *p = path_join(f.basedir, "data/pluginA/secret.db");
                ASSERT_EQ(chmod(p, 0), 0);
        }
        pid = fork();
        ASSERT_TRUE(pid >= 0);
        if (pid == 0) {
                _cleanup_(capture_done) Capture c = {};
                _cleanup_free_ char *path = NULL, *error = NULL;

                if (geteuid() == 0) {
                        ASSERT_EQ(nftw(f.root, chown_one, 16, FTW_PHYS), 0);
                        ASSERT_EQ(setgroups(0, NULL), 0);
                        ASSERT_EQ(setresgid(65534, 65534, 65534), 0);
                        ASSERT_EQ(setresuid(65534, 65534, 65534), 0);
                }
                ASSERT_EQ(run(&f, NULL, &c, &path, NULL, &error), 0);
                ASSERT_TRUE(logged(&c, LOG_WARNING, "secret.db: Permission denied"));
                check_zip(&f, path, metadata_for(NULL), PLUGIN_LIST, 6);
                _exit(0);
        }
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        fixture_done(&f);
}

static void test_level0_and_created_folder(void) {
        _cleanup_(capture_done) Capture c = {};
        _cleanup_free_ char *path = NULL, *error = NULL, *old = NULL;
        BackupRequest req;
        BackupCallbacks cb = callbacks(&c);
        struct stat st;
        Fixture f;

        fixture_init(&f);
        old = path_join(f.backup_folder, "octoprint-backup-20200101-000000.zip");
        ASSERT_EQ(unlink(old), 0);
        ASSERT_EQ(rmdir(f.backup_folder), 0);
        free(f.backup_folder);
        f.backup_folder = path_join(f.basedir, "data/new/backups");

        req = request(&f, NULL);
        req.compression_level = 0;
        ASSERT_EQ(backup_execute(&req, &cb, &path, NULL, NULL, &error), 0);
        ASSERT_EQ(stat(f.backup_folder, &st), 0);
        ASSERT_EQ(st.st_mode & 07777, 0755);
        check_zip(&f, path, "{\"version\": \"" VERSION "\", \"excludes\": []}", PLUGIN_LIST, 0);
        fixture_done(&f);
}

static void test_missing_outside_folder(void) {
        _cleanup_(capture_done) Capture c = {};
        _cleanup_free_ char *error = NULL, *missing = NULL;
        Fixture f;

        fixture_init(&f);
        free(f.backup_folder);
        f.backup_folder = path_join(f.root, "no/such/folder");
        ASSERT_EQ(run(&f, NULL, &c, NULL, NULL, &error), -ENOENT);
        ASSERT_CONTAINS(error, "does not exist");
        missing = path_join(f.root, "no");
        ASSERT_TRUE(access(missing, F_OK) < 0);
        fixture_done(&f);
}

static void test_name_taken(void) {
        _cleanup_(capture_done) Capture c = {};
        _cleanup_free_ char *error = NULL, *listing = NULL;
        Fixture f;

        fixture_init(&f);
        write_file(f.backup_folder, "test-backup-20240102-030405.zip", "mine");
        ASSERT_EQ(run(&f, NULL, &c, NULL, NULL, &error), -EEXIST);
        ASSERT_CONTAINS(error, "already exists");
        listing = list_folder(f.backup_folder);
        ASSERT_STREQ(listing, "octoprint-backup-20200101-000000.zip test-backup-20240102-030405.zip");
        fixture_done(&f);
}

static void test_not_enough_space(void) {
        _cleanup_(capture_done) Capture c = { .fake_space = true, .free_space = 512 * 1024 };
        _cleanup_free_ char *error = NULL, *listing = NULL, *big = NULL, *msg = NULL;
        Fixture f;

        fixture_init(&f);
        big = malloc(3 * 1024 * 1024 + 1);
        memset(big, 'x', 3 * 1024 * 1024);
        big[3 * 1024 * 1024] = 0;
        write_file(f.basedir, "uploads/big.gcode", big);
        ASSERT_EQ(run(&f, NULL, &c, NULL, NULL, &error), -ENOSPC);
        ASSERT_TRUE(asprintf(&msg, "Not enough free space in %s: the backup needs up to 4 MiB, only 0 MiB are free",
                             f.backup_folder) >= 0);
        ASSERT_STREQ(error, msg);
        listing = list_folder(f.backup_folder);
        ASSERT_STREQ(listing, "octoprint-backup-20200101-000000.zip");
        fixture_done(&f);
}

/* The file size limit makes writing fail half-way, as a full disk would. */
static void test_write_error(void) {
        Fixture f;
        pid_t pid;
        int status;

        fixture_init(&f);
        {
                _cleanup_free_ char *big = malloc(2 * 1024 * 1024 + 1);
                unsigned x = 1;

                for (size_t i = 0; i < 2 * 1024 * 1024; i++) {
                        x = x * 1103515245 + 12345;
                        big[i] = (char) ('!' + (x >> 16) % 90);    /* hardly compressible, no NUL */
                }
                big[2 * 1024 * 1024] = 0;
                write_file(f.basedir, "uploads/big.gcode", big);
        }
        pid = fork();
        ASSERT_TRUE(pid >= 0);
        if (pid == 0) {
                _cleanup_(capture_done) Capture c = {};
                _cleanup_free_ char *error = NULL, *listing = NULL;
                struct rlimit rl = { 512 * 1024, 512 * 1024 };

                signal(SIGXFSZ, SIG_IGN);
                ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &rl), 0);
                ASSERT_EQ(run(&f, NULL, &c, NULL, NULL, &error), -ENOSPC);
                ASSERT_CONTAINS(error, "Not enough space in ");
                ASSERT_CONTAINS(error, f.backup_folder);
                ASSERT_CONTAINS(error, "MiB are free");
                listing = list_folder(f.backup_folder);
                ASSERT_STREQ(listing, "octoprint-backup-20200101-000000.zip");
                _exit(0);
        }
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        if (WIFSIGNALED(status))
                fprintf(stderr, "child killed by signal %d\n", WTERMSIG(status));
        ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        fixture_done(&f);
}

static void test_cancel(const char *stage, uint64_t after) {
        _cleanup_(capture_done) Capture c = { .cancel_stage = stage, .cancel_after = after };
        _cleanup_free_ char *error = NULL, *listing = NULL, *big = NULL;
        Fixture f;

        fprintf(stderr, "   cancel in %s\n", stage);
        fixture_init(&f);
        big = malloc(4 * 1024 * 1024 + 1);
        memset(big, 'y', 4 * 1024 * 1024);
        big[4 * 1024 * 1024] = 0;
        write_file(f.basedir, "uploads/big.gcode", big);
        ASSERT_EQ(run(&f, NULL, &c, NULL, NULL, &error), -ECANCELED);
        ASSERT_STREQ(error, "Canceled");
        ASSERT_TRUE(c.canceled_at >= after);
        if (after > 0)     /* stopped from inside a read: part of the data was written */
                ASSERT_TRUE(c.canceled_at < 4 * 1024 * 1024);
        listing = list_folder(f.backup_folder);
        ASSERT_STREQ(listing, "octoprint-backup-20200101-000000.zip");
        fixture_done(&f);
}

static void test_cancels(void) {
        test_cancel("preparing", 0);
        test_cancel("scanning", 0);
        test_cancel("writing", 1);
        test_cancel("syncing", 0);
}

int main(void) {
        /* DOS times are local times: pin the zone so the checker and the engine agree on it. */
        setenv("TZ", "Europe/Berlin", 1);
        tzset();
        RUN(test_full);
        RUN(test_compression_choice);
        RUN(test_excludes_uploads_timelapse);
        RUN(test_overrides);
        RUN(test_dropins);
        RUN(test_hooks);
        RUN(test_gen_instance);
        RUN(test_symlinked_locations);
        RUN(test_timelapse_tmp_like_octoprint);
        RUN(test_changed_during_write);
        RUN(test_unreadable);
        RUN(test_level0_and_created_folder);
        RUN(test_missing_outside_folder);
        RUN(test_name_taken);
        RUN(test_not_enough_space);
        RUN(test_write_error);
        RUN(test_cancels);
        return 0;
}
