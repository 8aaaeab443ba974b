/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <malloc.h>

#include "instance/distinfo.h"
#include "test-util.h"

#define SP "venv/lib/python3.11/site-packages/"

/* A venv as pip leaves it, with OctoPrint, its separately packaged bundled plugins, third-party
 * plugins and ordinary libraries. */
static void make_venv(const char *dir) {
        make_dir(dir, "venv/lib/python3.9/site-packages");          /* older, ignored */
        make_dir(dir, "venv/lib/python3.11/site-packages/octoprint");
        write_file(dir, "venv/lib/python3.11/README", "not a python folder");

        write_file(dir, SP "OctoPrint-1.11.8.dist-info/METADATA",
                   "Metadata-Version: 2.1\nName: OctoPrint\nVersion: 1.11.8\n"
                   "Home-page: https://octoprint.org\n\nVersion: 0.0.1 in the description\n");
        write_file(dir, SP "OctoPrint-1.11.8.dist-info/entry_points.txt",
                   "[console_scripts]\noctoprint = octoprint:main\n\n"
                   "[octoprint.plugin]\naction_command_notification = octoprint.plugins.acn\n");
        /* Left behind by an interrupted upgrade. */
        write_file(dir, SP "OctoPrint-1.10.3.dist-info/METADATA", "Name: OctoPrint\nVersion: 1.10.3\n");

        write_file(dir, SP "OctoPrint_FirmwareCheck-2021.10.11.dist-info/METADATA",
                   "Name: OctoPrint-FirmwareCheck\nVersion: 2021.10.11\n");
        write_file(dir, SP "OctoPrint_FirmwareCheck-2021.10.11.dist-info/entry_points.txt",
                   "[octoprint.plugin]\nfirmware_check = octoprint_firmware_check\n");
        write_file(dir, SP "OctoPrint_FileCheck-2024.3.27.dist-info/METADATA",
                   "Name: OctoPrint-FileCheck\nVersion: 2024.3.27\n");
        write_file(dir, SP "OctoPrint_FileCheck-2024.3.27.dist-info/entry_points.txt",
                   "[octoprint.plugin]\nfile_check = octoprint_file_check\n");

        write_file(dir, SP "octoprint_bedlevelvisualizer-1.1.1.dist-info/METADATA",
                   "Metadata-Version: 2.1\r\nName: Bed Visualizer\r\nVersion: 1.1.1\r\n"
                   "Home-page: https://github.com/jneilliii/OctoPrint-BedLevelVisualizer\r\n"
                   "Project-URL: Source, https://not.this.one\r\n");
        write_file(dir, SP "octoprint_bedlevelvisualizer-1.1.1.dist-info/entry_points.txt",
                   "[octoprint.plugin]\nbedlevelvisualizer=octoprint_bedlevelvisualizer\n");
        /* Claims the same key: only one entry per key, the same one whatever readdir() says. */
        write_file(dir, SP "Zzz_Clash-1.0.dist-info/METADATA", "Name: Zzz Clash\n");
        write_file(dir, SP "Zzz_Clash-1.0.dist-info/entry_points.txt",
                   "[octoprint.plugin]\nbedlevelvisualizer = zzz\n");

        /* Home-page only in the description (after the blank line), Project-URL in the headers. */
        write_file(dir, SP "OctoPrint_Foo-0.1.dist-info/METADATA",
                   "Name: F\xc3\xb6\xc3\xb6 Plugin\nSummary: a\n  continued summary\n"
                   "Project-URL: Homepage, https://example.org/foo\n\nHome-page: http://wrong\n");
        write_file(dir, SP "OctoPrint_Foo-0.1.dist-info/entry_points.txt",
                   "# comment\n[octoprint.plugin]\n  foo = octoprint_foo\nfoo_extra = octoprint_foo.extra\n"
                   "\n[other.group]\nnot_a_plugin = x\n");
        /* No METADATA Name (the folder name is used), Home-page UNKNOWN as old setuptools writes. */
        write_file(dir, SP "OctoPrint_NoUrl-2.0.dist-info/METADATA", "Version: 2.0\nHome-page: UNKNOWN\n");
        write_file(dir, SP "OctoPrint_NoUrl-2.0.dist-info/entry_points.txt", "[octoprint.plugin]\nnourl = x\n");

        write_file(dir, SP "requests-2.31.0.dist-info/METADATA", "Name: requests\n");
        write_file(dir, SP "requests-2.31.0.dist-info/entry_points.txt", "[console_scripts]\nfoo = bar\n");
        write_file(dir, SP "pip-23.0.dist-info/METADATA", "Name: pip\n");
}

static int open_sp(const char *dir, char **ret_path) {
        _cleanup_free_ char *venv = NULL;
        int fd = -1;

        ASSERT_TRUE(asprintf(&venv, "%s/venv", dir) > 0);
        ASSERT_EQ(venv_open_site_packages(venv, ret_path, &fd), 0);
        ASSERT_TRUE(fd >= 0);
        return fd;
}

static void test_site_packages(void) {
        _cleanup_free_ char *dir = make_tempdir(), *path = NULL, *empty = NULL;
        _cleanup_close_ int fd = -1;
        int fd2 = -1;

        make_venv(dir);
        fd = open_sp(dir, &path);
        ASSERT_TRUE(endswith(path, "/venv/lib/python3.11/site-packages"));

        /* No lib/python3.* at all. */
        make_dir(dir, "empty/lib");
        ASSERT_TRUE(asprintf(&empty, "%s/empty", dir) > 0);
        ASSERT_EQ(venv_open_site_packages(empty, NULL, &fd2), -ENOENT);
        rm_rf(dir);
}

static void test_octoprint_version(void) {
        _cleanup_free_ char *dir = make_tempdir(), *version = NULL;
        _cleanup_close_ int fd = -1;

        make_venv(dir);
        fd = open_sp(dir, NULL);
        /* The newest of the two, from METADATA's header, not from its description. */
        ASSERT_EQ(distinfo_octoprint_version(fd, &version), 0);
        ASSERT_STREQ(version, "1.11.8");
        rm_rf(dir);
}

static void test_octoprint_version_from_folder_name(void) {
        _cleanup_free_ char *dir = make_tempdir(), *version = NULL;
        _cleanup_close_ int fd = -1;

        /* Lower-case folder name as newer pips write it, no METADATA: the folder name tells. */
        make_dir(dir, "venv/lib/python3.12/site-packages/octoprint-1.12.0rc1.dist-info");
        fd = open_sp(dir, NULL);
        ASSERT_EQ(distinfo_octoprint_version(fd, &version), 0);
        ASSERT_STREQ(version, "1.12.0rc1");
        rm_rf(dir);
}

/* Several dist-infos left behind by interrupted upgrades: the newest wins, and each older one found first
 * is freed when a newer one replaces it (the fuzzer found them leaked: memory grew on every probe of such
 * an instance). Ten versions, so that in all but one readdir() order a newer one follows an older one. */
static void test_octoprint_version_leftovers(void) {
        _cleanup_free_ char *dir = make_tempdir(), *version = NULL;
        _cleanup_close_ int fd = -1;
        size_t before;

        for (unsigned i = 0; i < 10; i++) {
                char name[128];

                snprintf(name, sizeof(name), SP "OctoPrint-1.%u.0.dist-info", i);
                make_dir(dir, name);
        }
        fd = open_sp(dir, NULL);
        ASSERT_EQ(distinfo_octoprint_version(fd, &version), 0);
        ASSERT_STREQ(version, "1.9.0");
        free(version);
        version = NULL;

        before = mallinfo2().uordblks;
        for (unsigned k = 0; k < 200; k++) {
                ASSERT_EQ(distinfo_octoprint_version(fd, &version), 0);
                free(version);
        version = NULL;
        }
        /* A leak of even one short string per call would be kilobytes here. */
        ASSERT_TRUE(mallinfo2().uordblks < before + 1024);
        rm_rf(dir);
}

static void test_octoprint_not_installed(void) {
        _cleanup_free_ char *dir = make_tempdir(), *version = NULL;
        _cleanup_close_ int fd = -1;

        /* Only a plugin whose name starts like OctoPrint's. */
        make_dir(dir, "venv/lib/python3.11/site-packages/OctoPrint_FileCheck-2024.3.27.dist-info");
        fd = open_sp(dir, NULL);
        ASSERT_EQ(distinfo_octoprint_version(fd, &version), -ENOENT);
        ASSERT_NULL(version);
        rm_rf(dir);
}

static void test_plugin_list(void) {
        _cleanup_free_ char *dir = make_tempdir(), *json = NULL, *evil = NULL;
        _cleanup_close_ int fd = -1;
        PluginInfo *p = NULL;
        size_t n = 0;

        make_venv(dir);
        /* A dist-info that is a symlink is not followed (it could point anywhere as root). */
        make_dir(dir, "elsewhere");
        write_file(dir, "elsewhere/entry_points.txt", "[octoprint.plugin]\nevil = x\n");
        ASSERT_TRUE(asprintf(&evil, "%s/" SP "Evil-1.0.dist-info", dir) > 0);
        ASSERT_EQ(symlink("../../../../elsewhere", evil), 0);

        fd = open_sp(dir, NULL);
        ASSERT_EQ(distinfo_plugin_list(fd, (char *[]) { "file_check", "firmware_check", "pi_support", NULL },
                                       &p, &n), 0);
        ASSERT_EQ(n, 4);
        ASSERT_STREQ(p[0].key, "bedlevelvisualizer");
        ASSERT_STREQ(p[0].name, "Bed Visualizer");
        ASSERT_STREQ(p[0].url, "https://github.com/jneilliii/OctoPrint-BedLevelVisualizer");
        ASSERT_STREQ(p[1].key, "foo");
        ASSERT_STREQ(p[1].url, "https://example.org/foo");
        ASSERT_STREQ(p[2].key, "foo_extra");
        ASSERT_STREQ(p[3].key, "nourl");
        ASSERT_STREQ(p[3].name, "OctoPrint_NoUrl");
        ASSERT_NULL(p[3].url);

        /* Expected text from /usr/bin/python3: json.dumps() of the same list (with the name the
         * test gives, not the folder name). */
        free(p[3].name);
        p[3].name = strdup("OctoPrint-NoUrl");
        json = plugin_list_to_json(p, n);
        ASSERT_STREQ(json,
                     "[{\"key\": \"bedlevelvisualizer\", \"name\": \"Bed Visualizer\", \"url\": "
                     "\"https://github.com/jneilliii/OctoPrint-BedLevelVisualizer\"}, "
                     "{\"key\": \"foo\", \"name\": \"F\\u00f6\\u00f6 Plugin\", \"url\": \"https://example.org/foo\"}, "
                     "{\"key\": \"foo_extra\", \"name\": \"F\\u00f6\\u00f6 Plugin\", \"url\": \"https://example.org/foo\"}, "
                     "{\"key\": \"nourl\", \"name\": \"OctoPrint-NoUrl\", \"url\": null}]");
        plugin_info_array_free(p, n);

        /* Without a bundled list the bundled plugins are listed too, OctoPrint's own entry points still not. */
        ASSERT_EQ(distinfo_plugin_list(fd, NULL, &p, &n), 0);
        ASSERT_EQ(n, 6);
        ASSERT_STREQ(p[1].key, "file_check");
        ASSERT_STREQ(p[2].key, "firmware_check");
        for (size_t i = 0; i < n; i++)
                ASSERT_FALSE(streq(p[i].key, "action_command_notification"));
        plugin_info_array_free(p, n);
        rm_rf(dir);
}

/* Plugins installed by older pips ("setup.py install") have *.egg-info folders with PKG-INFO. */
static void test_egg_info(void) {
        _cleanup_free_ char *dir = make_tempdir();
        _cleanup_close_ int fd = -1;
        PluginInfo *p = NULL;
        size_t n = 0;

        make_dir(dir, SP "OctoPrint_Legacy-0.3-py3.11.egg-info");
        write_file(dir, SP "OctoPrint_Legacy-0.3-py3.11.egg-info/PKG-INFO",
                   "Metadata-Version: 1.0\nName: OctoPrint-Legacy\nVersion: 0.3\nHome-page: https://example.org/legacy\n");
        write_file(dir, SP "OctoPrint_Legacy-0.3-py3.11.egg-info/entry_points.txt",
                   "[octoprint.plugin]\nlegacy = octoprint_legacy\n");
        /* OctoPrint itself installed the old way: its entry points are still not plugins to list. */
        make_dir(dir, SP "OctoPrint-1.11.8-py3.11.egg-info");
        write_file(dir, SP "OctoPrint-1.11.8-py3.11.egg-info/PKG-INFO", "Name: OctoPrint\nVersion: 1.11.8\n");
        write_file(dir, SP "OctoPrint-1.11.8-py3.11.egg-info/entry_points.txt",
                   "[octoprint.plugin]\ncore = octoprint.plugins.core\n");
        /* distutils wrote a single egg-info *file*: nothing to read there. */
        write_file(dir, SP "oldthing-1.0-py3.11.egg-info", "Name: oldthing\n");

        fd = open_sp(dir, NULL);
        ASSERT_EQ(distinfo_plugin_list(fd, NULL, &p, &n), 0);
        ASSERT_EQ(n, 1);
        ASSERT_STREQ(p[0].key, "legacy");
        ASSERT_STREQ(p[0].name, "OctoPrint-Legacy");
        ASSERT_STREQ(p[0].url, "https://example.org/legacy");
        plugin_info_array_free(p, n);
        rm_rf(dir);
}

static void test_empty_list(void) {
        _cleanup_free_ char *json = plugin_list_to_json(NULL, 0);
        PluginInfo bad = { .key = (char *) "k", .name = (char *) "\xff", .url = NULL };

        ASSERT_STREQ(json, "[]");
        errno = 0;
        ASSERT_NULL(plugin_list_to_json(&bad, 1));
        ASSERT_EQ(errno, EILSEQ);
}

int main(void) {
        RUN(test_site_packages);
        RUN(test_octoprint_version);
        RUN(test_octoprint_version_from_folder_name);
        RUN(test_octoprint_version_leftovers);
        RUN(test_octoprint_not_installed);
        RUN(test_plugin_list);
        RUN(test_egg_info);
        RUN(test_empty_list);
        return 0;
}
