/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "instance/config.h"
#include "test-util.h"

static const InstanceConfig *find(const DaemonConfig *c, const char *name) {
        for (size_t i = 0; i < c->n_instances; i++)
                if (streq(c->instances[i]->name, name))
                        return c->instances[i];
        fprintf(stderr, "instance %s not found\n", name);
        exit(EXIT_FAILURE);
}

static void load(const char *dir, DaemonConfig *c) {
        ASSERT_EQ(daemon_config_load(dir, 120, c), 0);
}

/* A configuration with every section (opbackupd.conf(5)), comments and all, on top of an opbackupd.conf with
 * defaults. */
static void test_good(void) {
        _cleanup_free_ char *dir = make_tempdir();
        DaemonConfig c = {};
        const InstanceConfig *pi, *farm;

        write_file(dir, "opbackupd.conf",
                   "# opbackup daemon settings\n"
                   "[Daemon]\n"
                   "IdleTimeoutSec=30\n"
                   "[Backup]\n"
                   "CompressionLevel=3   ; faster\n"
                   "FilesCache=no\n"
                   "Keep=7\n"
                   "[Restore]\n"
                   "BundledPlugins=file_check pi_support\n");
        write_file(dir, "instances.d/pi.conf",
                   "[OctoPrint]\n"
                   "Basedir=/home/pi/.octoprint/\n"
                   "ConfigFile=                  # default Basedir/config.yaml\n"
                   "Python=/home/pi/oprint/bin/python\n"
                   "User=                        # default: owner of Basedir\n"
                   "Unit=octoprint.service       # optional: stopped/started around a restore\n"
                   "[Backup]\n"
                   "Folder=                      # default: plugins.backup.path from config.yaml\n"
                   "Keep=0                       # retention used by scheduled backups; 0 = keep all\n"
                   "FilesCache=yes\n"
                   "[Restore]\n"
                   "Unsupported=no\n"
                   "PluginRepository=            # default from config.yaml, else the official repository\n");
        write_file(dir, "instances.d/farm-2.conf",
                   "\xef\xbb\xbf[OctoPrint]\r\n"
                   "  Basedir = /srv//farm2/octoprint\r\n"
                   "Unit=octoprint@2\r\n"
                   "User=printer2\r\n"
                   "[Backup]\r\n"
                   "Folder=/mnt/nas/farm2\r\n"
                   "CompressionLevel=\r\n"
                   "[Restore]\r\n"
                   "Unsupported=yes\r\n"
                   "PluginRepository=https://example.org/plugins.json#x\r\n"
                   "BundledPlugins=\r\n");
        /* Not instances: hidden, other suffix. */
        write_file(dir, "instances.d/.pi.conf.swp", "garbage");
        write_file(dir, "instances.d/README", "garbage");

        load(dir, &c);
        ASSERT_EQ(c.idle_timeout_sec, 30);
        ASSERT_EQ(c.n_instances, 2);
        ASSERT_STREQ(c.instances[0]->name, "farm-2");     /* sorted */
        ASSERT_STREQ(c.instances[1]->name, "pi");

        pi = find(&c, "pi");
        ASSERT_NULL(pi->error);
        ASSERT_CONTAINS(pi->source, "instances.d/pi.conf");
        ASSERT_STREQ(pi->basedir, "/home/pi/.octoprint");
        ASSERT_STREQ(pi->config_file, "/home/pi/.octoprint/config.yaml");
        ASSERT_STREQ(pi->python, "/home/pi/oprint/bin/python");
        ASSERT_NULL(pi->user);
        ASSERT_STREQ(pi->unit, "octoprint.service");
        ASSERT_NULL(pi->backup_folder);
        ASSERT_EQ(pi->keep, 0);                          /* overrides Keep=7 */
        ASSERT_EQ(pi->compression_level, 3);             /* from opbackupd.conf */
        ASSERT_EQ(pi->files_cache, 1);                   /* overrides FilesCache=no */
        ASSERT_FALSE(pi->restore_unsupported);
        ASSERT_NULL(pi->plugin_repository);
        ASSERT_EQ(strv_length(pi->bundled_plugins), 2);
        ASSERT_STREQ(pi->bundled_plugins[0], "file_check");
        ASSERT_STREQ(pi->bundled_plugins[1], "pi_support");

        farm = find(&c, "farm-2");
        ASSERT_NULL(farm->error);
        ASSERT_STREQ(farm->basedir, "/srv/farm2/octoprint");
        ASSERT_STREQ(farm->unit, "octoprint@2.service");
        ASSERT_STREQ(farm->user, "printer2");
        ASSERT_STREQ(farm->backup_folder, "/mnt/nas/farm2");
        ASSERT_EQ(farm->keep, 7);
        ASSERT_EQ(farm->compression_level, 5);           /* empty: back to the built-in default */
        ASSERT_EQ(farm->files_cache, 0);                 /* from opbackupd.conf */
        ASSERT_TRUE(farm->restore_unsupported);
        ASSERT_STREQ(farm->plugin_repository, "https://example.org/plugins.json#x");
        ASSERT_EQ(strv_length(farm->bundled_plugins), 3);
        ASSERT_STREQ(farm->bundled_plugins[1], "firmware_check");

        daemon_config_done(&c);
        rm_rf(dir);
}

static void check_error(const char *content, const char *expected) {
        _cleanup_free_ char *dir = make_tempdir();
        DaemonConfig c = {};

        write_file(dir, "instances.d/x.conf", content);
        load(dir, &c);
        ASSERT_EQ(c.n_instances, 1);
        ASSERT_CONTAINS(c.instances[0]->error, expected);
        daemon_config_done(&c);
        rm_rf(dir);
}

static void test_bad_values(void) {
        check_error("[OctoPrint]\nBasedir=/b\n[Backup]\nKeep=abc\n",
                    "instances.d/x.conf:4: Keep=abc: expected a number");
        check_error("[OctoPrint]\nBasedir=/b\n[Backup]\nKeep=-1\n", "x.conf:4: Keep=-1:");
        check_error("[OctoPrint]\nBasedir=/b\n[Backup]\nCompressionLevel=12\n",
                    "x.conf:4: CompressionLevel=12: expected a number from 0 to 9");
        check_error("[OctoPrint]\nBasedir=/b\n[Backup]\nFilesCache=maybe\n",
                    "x.conf:4: FilesCache=maybe: expected yes or no");
        check_error("[OctoPrint]\nBasedir=/b\n[Restore]\nUnsupported=maybe\n",
                    "x.conf:4: Unsupported=maybe: expected yes or no");
        check_error("[OctoPrint]\nBasedir=home/pi/.octoprint\n",
                    "x.conf:2: Basedir=home/pi/.octoprint: expected an absolute path");
        check_error("[OctoPrint]\nBasedir=/home/pi/../root\n", "x.conf:2: Basedir=/home/pi/../root:");
        check_error("[OctoPrint]\nBasedir=/\n", "x.conf:2: Basedir=/:");
        check_error("[OctoPrint]\nBasedir=/b\nUnit=-H evil\n", "x.conf:3: Unit=-H evil:");
        check_error("[OctoPrint]\nBasedir=/b\nUser=pi:pi\n", "x.conf:3: User=pi:pi:");
        check_error("[OctoPrint]\nBasedir=/b\n[Restore]\nPluginRepository=ftp://x/\n",
                    "x.conf:4: PluginRepository=ftp://x/:");
        check_error("[OctoPrint]\nBasedir=/b\n[Restore]\nBundledPlugins=a,b\n", "x.conf:4: BundledPlugins=a,b:");
        /* The first problem is the one reported. */
        check_error("[OctoPrint]\nBasedir=/b\n[Backup]\nKeep=x\nCompressionLevel=99\n", "x.conf:4: Keep=x");
}

static void test_missing_basedir(void) {
        check_error("[OctoPrint]\nUnit=octoprint.service\n", "Basedir= is not set");
        check_error("", "Basedir= is not set");
}

static void test_syntax(void) {
        _cleanup_free_ char *long_line = NULL;

        check_error("[OctoPrint]\nBasedir=/b\nthis line has no equals sign\n", "x.conf:3: syntax error");
        check_error("[OctoPrint\nBasedir=/b\n", "x.conf:1: syntax error");
        check_error("[OctoPrint]\nBasedir=/b\xff\n", "x.conf is not valid UTF-8");

        /* inih's line buffer is fixed; a longer line must not be cut silently. */
        long_line = malloc(400);
        ASSERT_NOT_NULL(long_line);
        strcpy(long_line, "[OctoPrint]\nBasedir=/");
        memset(long_line + strlen(long_line), 'x', 300);
        strcpy(long_line + 21 + 300, "\n");
        check_error(long_line, "x.conf:2: line longer than");
}

/* Indented lines are keys of their own (inih would append them to the previous value), and both
 * comment styles work at the start and at the end of lines. */
static void test_comments_and_indentation(void) {
        _cleanup_free_ char *dir = make_tempdir();
        DaemonConfig c = {};

        write_file(dir, "instances.d/a.conf",
                   "; comment\n"
                   "  # indented comment\n"
                   "[OctoPrint]   # section comment\n"
                   "Basedir=/a\n"
                   "    Unit=a.service ; trailing\n"
                   "[Restore]\n"
                   "\tPluginRepository=http://repo/x;y#z   # a '#' or ';' inside a word is kept\n");
        load(dir, &c);
        ASSERT_EQ(c.n_instances, 1);
        ASSERT_NULL(c.instances[0]->error);
        ASSERT_STREQ(c.instances[0]->basedir, "/a");
        ASSERT_STREQ(c.instances[0]->unit, "a.service");
        ASSERT_STREQ(c.instances[0]->plugin_repository, "http://repo/x;y#z");
        daemon_config_done(&c);
        rm_rf(dir);
}

static void test_unknown_keys_ignored(void) {
        _cleanup_free_ char *dir = make_tempdir();
        DaemonConfig c = {};

        write_file(dir, "instances.d/a.conf",
                   "[OctoPrint]\nBasedir=/a\nColour=blue\n[Printer]\nPort=/dev/ttyUSB0\n"
                   "[Daemon]\nIdleTimeoutSec=1\n");
        load(dir, &c);
        ASSERT_EQ(c.n_instances, 1);
        ASSERT_NULL(c.instances[0]->error);
        ASSERT_EQ(c.idle_timeout_sec, 120);              /* [Daemon] only counts in opbackupd.conf */
        daemon_config_done(&c);
        rm_rf(dir);
}

static void test_invalid_name(void) {
        _cleanup_free_ char *dir = make_tempdir();
        DaemonConfig c = {};

        write_file(dir, "instances.d/my printer.conf", "[OctoPrint]\nBasedir=/a\n");
        /* Not even UTF-8: could not be listed over D-Bus at all, so it is left out. */
        write_file(dir, "instances.d/\xff.conf", "[OctoPrint]\nBasedir=/a\n");
        load(dir, &c);
        ASSERT_EQ(c.n_instances, 1);
        ASSERT_STREQ(c.instances[0]->name, "my printer");
        ASSERT_CONTAINS(c.instances[0]->error, "invalid instance name");
        daemon_config_done(&c);
        rm_rf(dir);
}

static void test_broken_main_config(void) {
        _cleanup_free_ char *dir = make_tempdir();
        DaemonConfig c = {};

        /* A bad default makes every instance unusable; a bad [Daemon] value only keeps the default. */
        write_file(dir, "opbackupd.conf", "[Daemon]\nIdleTimeoutSec=soon\n[Backup]\nKeep=many\n");
        write_file(dir, "instances.d/a.conf", "[OctoPrint]\nBasedir=/a\n");
        write_file(dir, "instances.d/b.conf", "[OctoPrint]\nBasedir=/b\n");
        load(dir, &c);
        ASSERT_EQ(c.idle_timeout_sec, 120);
        ASSERT_EQ(c.n_instances, 2);
        ASSERT_CONTAINS(c.instances[0]->error, "opbackupd.conf:4: Keep=many");
        ASSERT_CONTAINS(c.instances[1]->error, "opbackupd.conf:4: Keep=many");
        daemon_config_done(&c);
        rm_rf(dir);
}

static void test_missing_dir(void) {
        DaemonConfig c = {};

        ASSERT_EQ(daemon_config_load("/nonexistent/opbackup-test", 42, &c), 0);
        ASSERT_EQ(c.idle_timeout_sec, 42);
        ASSERT_EQ(c.n_instances, 0);
        daemon_config_done(&c);
}

static void test_autodetect(void) {
        _cleanup_free_ char *dir = make_tempdir(), *home = NULL, *target = NULL, *link = NULL;
        DaemonConfig c = {};
        const InstanceConfig *ic;

        ASSERT_TRUE(asprintf(&home, "%s/home", dir) > 0);
        make_dir(dir, "home");
        write_file(home, "pi/.octoprint/config.yaml", "");
        write_file(home, "pi/oprint/bin/python", "");
        write_file(home, "pi/OctoPrint/venv/bin/python", "");     /* OctoPi's wins */
        write_file(home, "alice/.octoprint/config.yaml", "");
        /* A venv's bin/python is a symlink. */
        write_file(home, "alice/OctoPrint/venv/bin/python3", "");
        ASSERT_TRUE(asprintf(&link, "%s/alice/OctoPrint/venv/bin/python", home) > 0);
        ASSERT_EQ(symlink("python3", link), 0);
        write_file(home, "bob/.octoprint/config.yaml", "");          /* no venv found */
        make_dir(home, "carol/.octoprint");                          /* no config.yaml */
        write_file(home, "dave/.octoprint/config.yaml/x", "");       /* not a file */
        write_file(home, "bad name/.octoprint/config.yaml", "");
        write_file(home, ".hidden/.octoprint/config.yaml", "");

        /* Defaults from opbackupd.conf apply to detected instances too. */
        write_file(dir, "etc/opbackupd.conf", "[Backup]\nKeep=3\n");
        ASSERT_TRUE(asprintf(&target, "%s/etc", dir) > 0);
        load(target, &c);
        ASSERT_EQ(c.n_instances, 0);
        ASSERT_EQ(daemon_config_autodetect(&c, home), 3);
        ASSERT_EQ(c.n_instances, 3);
        ASSERT_STREQ(c.instances[0]->name, "alice");
        ASSERT_STREQ(c.instances[1]->name, "bob");
        ASSERT_STREQ(c.instances[2]->name, "pi");

        ic = find(&c, "pi");
        ASSERT_NULL(ic->error);
        ASSERT_STREQ(ic->source, "autodetect");
        ASSERT_TRUE(endswith(ic->basedir, "/home/pi/.octoprint"));
        ASSERT_TRUE(endswith(ic->config_file, "/home/pi/.octoprint/config.yaml"));
        ASSERT_TRUE(endswith(ic->python, "/home/pi/oprint/bin/python"));
        ASSERT_EQ(ic->keep, 3);
        ASSERT_EQ(ic->files_cache, 1);                   /* the default */
        ASSERT_EQ(ic->compression_level, 5);
        ASSERT_TRUE(endswith(find(&c, "alice")->python, "/home/alice/OctoPrint/venv/bin/python"));
        ASSERT_NULL(find(&c, "bob")->python);

        /* With instances present it adds nothing. */
        ASSERT_EQ(daemon_config_autodetect(&c, home), 0);
        ASSERT_EQ(c.n_instances, 3);
        daemon_config_done(&c);

        /* No home root at all is no error. */
        ASSERT_EQ(daemon_config_autodetect(&c, "/nonexistent/opbackup-test"), 0);
        daemon_config_done(&c);
        rm_rf(dir);
}

/* [Schedule] and the OctoPrint API of print-aware backups (opbackupd(8), PRINT-AWARE BACKUPS): defaults,
 * values from opbackupd.conf for every instance, overrides, and the values that make an instance unusable. */
static void test_schedule(void) {
        _cleanup_free_ char *dir = make_tempdir();
        DaemonConfig c = {};
        const InstanceConfig *a, *b;

        write_file(dir, "opbackupd.conf",
                   "[Schedule]\n"
                   "Exclude=timelapse uploads\n"
                   "PrintPollSec=30\n");
        write_file(dir, "instances.d/a.conf",
                   "[OctoPrint]\n"
                   "Basedir=/home/a/.octoprint\n");
        write_file(dir, "instances.d/b.conf",
                   "[OctoPrint]\n"
                   "Basedir=/home/b/.octoprint\n"
                   "ApiUrl=http://127.0.0.1:5000/\n"
                   "ApiKeyFile=/etc/opbackup/keys//b.key\n"
                   "[Schedule]\n"
                   "Exclude=                 # none, whatever opbackupd.conf says\n"
                   "PrintPollSec=\n"
                   "PrintWaitMaxSec=600\n"
                   "OnStillPrinting=Backup\n"
                   "OnPrinterUnknown=skip\n");
        load(dir, &c);
        ASSERT_EQ(c.n_instances, 2);

        a = find(&c, "a");
        ASSERT_NULL(a->error);
        ASSERT_NULL(a->api_url);
        ASSERT_NULL(a->api_key_file);
        ASSERT_EQ(strv_length(a->schedule_excludes), 2);
        ASSERT_STREQ(a->schedule_excludes[0], "timelapse");
        ASSERT_STREQ(a->schedule_excludes[1], "uploads");
        ASSERT_EQ(a->print_poll_sec, 30);
        ASSERT_EQ(a->print_wait_max_sec, 6 * 3600);
        ASSERT_EQ(a->on_still_printing, PRINT_ACTION_SKIP);
        ASSERT_EQ(a->on_printer_unknown, PRINT_ACTION_BACKUP);

        b = find(&c, "b");
        ASSERT_NULL(b->error);
        ASSERT_STREQ(b->api_url, "http://127.0.0.1:5000/");
        ASSERT_STREQ(b->api_key_file, "/etc/opbackup/keys/b.key");
        ASSERT_NULL(b->schedule_excludes);
        ASSERT_EQ(b->print_poll_sec, 60);
        ASSERT_EQ(b->print_wait_max_sec, 600);
        ASSERT_EQ(b->on_still_printing, PRINT_ACTION_BACKUP);
        ASSERT_EQ(b->on_printer_unknown, PRINT_ACTION_SKIP);
        daemon_config_done(&c);
        rm_rf(dir);

        check_error("[OctoPrint]\nBasedir=/b\n[Schedule]\nExclude=uploads logs\n",
                    "x.conf:4: Exclude=uploads logs: expected folder ids");
        check_error("[OctoPrint]\nBasedir=/b\n[Schedule]\nExclude=uploads nosuch\n", "x.conf:4: Exclude=");
        check_error("[OctoPrint]\nBasedir=/b\n[Schedule]\nExclude=data data\n", "x.conf:4: Exclude=data data");
        check_error("[OctoPrint]\nBasedir=/b\n[Schedule]\nPrintWaitMaxSec=1h\n", "x.conf:4: PrintWaitMaxSec=1h");
        check_error("[OctoPrint]\nBasedir=/b\n[Schedule]\nPrintPollSec=99999999\n", "x.conf:4: PrintPollSec=");
        check_error("[OctoPrint]\nBasedir=/b\n[Schedule]\nOnStillPrinting=wait\n",
                    "x.conf:4: OnStillPrinting=wait: expected skip or backup");
        check_error("[OctoPrint]\nBasedir=/b\nApiUrl=file:///etc/shadow\n", "x.conf:3: ApiUrl=file:///etc/shadow");
        check_error("[OctoPrint]\nBasedir=/b\nApiKeyFile=key\n", "x.conf:3: ApiKeyFile=key: expected an absolute");
        check_error("[OctoPrint]\nBasedir=/b\nApiUrl=http://localhost\n", "ApiUrl= and ApiKeyFile= go together");
        check_error("[OctoPrint]\nBasedir=/b\nApiKeyFile=/k\n", "ApiUrl= and ApiKeyFile= go together");
}

int main(void) {
        RUN(test_good);
        RUN(test_bad_values);
        RUN(test_missing_basedir);
        RUN(test_syntax);
        RUN(test_comments_and_indentation);
        RUN(test_unknown_keys_ignored);
        RUN(test_invalid_name);
        RUN(test_broken_main_config);
        RUN(test_missing_dir);
        RUN(test_autodetect);
        RUN(test_schedule);
        return 0;
}
