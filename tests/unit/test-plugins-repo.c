/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The plugin repository's plugins.json and OctoPrint's compatibility rules; no network. */

#include <dirent.h>
#include <fcntl.h>

#include "plugins/plugins-install.h"
#include "plugins/plugins.h"
#include "test-util.h"

static RepoEntry *parse(const char *json, size_t *ret_n) {
        _cleanup_free_ char *error = NULL;
        RepoEntry *e = NULL;

        ASSERT_EQ(plugin_repository_parse(json, strlen(json), &e, ret_n, &error), 0);
        ASSERT_NULL(error);
        return e;
}

static int parse_fails(const char *json, size_t size, const char *message) {
        _cleanup_free_ char *error = NULL;
        RepoEntry *e = NULL;
        size_t n = 0;
        int r;

        r = plugin_repository_parse(json, size, &e, &n, &error);
        ASSERT_TRUE(r < 0);
        ASSERT_CONTAINS(error, message);
        return r;
}

static void test_parse(void) {
        const char *json =
                "[{\"id\": \"bedlevelvisualizer\", \"title\": \"Bed Visualizer\", \"homepage\": \"https://example.org/blv\",\n"
                "  \"archive\": \"https://example.org/blv/archive/master.zip\", \"stars\": 12,\n"
                "  \"compatibility\": {\"octoprint\": [\">=1.4.0\", \"1.3.12\"], \"os\": [\"linux\", \"!windows\"],\n"
                "                     \"python\": \">=3,<4\"}},\n"
                " \"not an object\", 17, null,\n"
                " {\"title\": \"no id\"},\n"
                " {\"id\": 42, \"title\": \"id is a number\"},\n"
                " {\"id\": \"stringcompat\", \"archive\": null, \"homepage\": [\"x\"],\n"
                "  \"compatibility\": {\"octoprint\": \">=9.0\", \"os\": [\"linux\", 3, null]}},\n"
                " {\"id\": \"nocompat\", \"archive\": \"https://example.org/n.zip\", \"compatibility\": null},\n"
                " {\"id\": \"emptycompat\", \"compatibility\": {\"octoprint\": [], \"os\": []}}]\n";
        RepoEntry *e;
        size_t n = 0;

        e = parse(json, &n);
        ASSERT_EQ(n, 4);

        ASSERT_STREQ(e[0].id, "bedlevelvisualizer");
        ASSERT_STREQ(e[0].title, "Bed Visualizer");
        ASSERT_STREQ(e[0].homepage, "https://example.org/blv");
        ASSERT_STREQ(e[0].archive, "https://example.org/blv/archive/master.zip");
        ASSERT_EQ(strv_length(e[0].octoprint), 2);
        ASSERT_STREQ(e[0].octoprint[1], "1.3.12");
        ASSERT_EQ(strv_length(e[0].os), 2);
        ASSERT_STREQ(e[0].os[1], "!windows");

        /* Fields of the wrong type count as missing; a single string is a one-entry list. */
        ASSERT_STREQ(e[1].id, "stringcompat");
        ASSERT_NULL(e[1].archive);
        ASSERT_NULL(e[1].homepage);
        ASSERT_EQ(strv_length(e[1].octoprint), 1);
        ASSERT_STREQ(e[1].octoprint[0], ">=9.0");
        ASSERT_EQ(strv_length(e[1].os), 1);

        ASSERT_STREQ(e[2].id, "nocompat");
        ASSERT_NULL(e[2].octoprint);
        ASSERT_NULL(e[2].os);
        ASSERT_STREQ(e[3].id, "emptycompat");
        ASSERT_EQ(strv_length(e[3].octoprint), 0);
        repo_entry_array_free(e, n);

        e = parse(" [ ] \n", &n);
        ASSERT_EQ(n, 0);
        repo_entry_array_free(e, n);
}

static void test_parse_errors(void) {
        static const char nul[] = "[]\0[";

        parse_fails("", 0, "not valid JSON");
        parse_fails("<html>502 Bad Gateway</html>", 28, "not valid JSON");
        parse_fails("[{\"id\": \"a\"}", 12, "not valid JSON");             /* cut off */
        parse_fails("[] []", 5, "not valid JSON");                          /* trailing data */
        parse_fails(nul, sizeof(nul) - 1, "not valid JSON");
        parse_fails("{\"plugins\": []}", 15, "not a JSON array");
        parse_fails("\"plugins\"", 9, "not a JSON array");
}

static void test_find(void) {
        RepoEntry *e;
        size_t n;

        e = parse("[{\"id\": \"a\", \"title\": \"first\"}, {\"id\": \"b\"}, {\"id\": \"a\", \"title\": \"second\"}]", &n);
        ASSERT_EQ(n, 3);
        ASSERT_STREQ(plugin_repository_find(e, n, "a")->title, "second");      /* OctoPrint's dict: last wins */
        ASSERT_STREQ(plugin_repository_find(e, n, "b")->id, "b");
        ASSERT_NULL(plugin_repository_find(e, n, "A"));
        ASSERT_NULL(plugin_repository_find(e, n, "c"));
        ASSERT_NULL(plugin_repository_find(NULL, 0, "a"));
        repo_entry_array_free(e, n);
}

static unsigned compat(const char *octoprint_json, const char *os_json, const char *version, const char *os) {
        _cleanup_free_ char *json = NULL;
        RepoEntry *e;
        unsigned r;
        size_t n;

        ASSERT_TRUE(asprintf(&json, "[{\"id\": \"x\", \"compatibility\": {\"octoprint\": %s, \"os\": %s}}]",
                             octoprint_json, os_json) > 0);
        e = parse(json, &n);
        ASSERT_EQ(n, 1);
        r = plugin_compatibility(&e[0], version, os);
        ASSERT_EQ(plugin_compatible(&e[0], version, os), r == 0);
        repo_entry_array_free(e, n);
        return r;
}

#define OCTO(spec, version) compat(spec, "[]", version, "linux")
#define OS(list, os) compat("[]", list, "1.10.2", os)

static void test_compat_octoprint(void) {
        ASSERT_EQ(OCTO("[]", "1.10.2"), 0);
        ASSERT_EQ(OCTO("null", "1.10.2"), 0);
        ASSERT_EQ(OCTO("[\">=1.4.0\"]", "1.10.2"), 0);
        ASSERT_EQ(OCTO("[\">=9.0\"]", "1.10.2"), PLUGIN_INCOMPATIBLE_OCTOPRINT);
        ASSERT_EQ(OCTO("\">=9.0\"", "1.10.2"), PLUGIN_INCOMPATIBLE_OCTOPRINT);
        /* A bare version means ">=" (OctoPrint prefixes it). */
        ASSERT_EQ(OCTO("[\"1.4.0\"]", "1.10.2"), 0);
        ASSERT_EQ(OCTO("[\"1.11\"]", "1.10.2"), PLUGIN_INCOMPATIBLE_OCTOPRINT);
        /* One entry with several clauses must match as a whole ... */
        ASSERT_EQ(OCTO("[\">=1.4.0,<2\"]", "1.10.2"), 0);
        ASSERT_EQ(OCTO("[\">=1.4.0,<2\"]", "2.0.0"), PLUGIN_INCOMPATIBLE_OCTOPRINT);
        /* ... any entry of the list will do. */
        ASSERT_EQ(OCTO("[\"<1.4\", \">=1.9,<1.11\"]", "1.10.2"), 0);
        ASSERT_EQ(OCTO("[\"<1.4\", \">=1.11\"]", "1.10.2"), PLUGIN_INCOMPATIBLE_OCTOPRINT);
        /* A broken entry matches nothing, and does not spoil the others. */
        ASSERT_EQ(OCTO("[\"not a version\"]", "1.10.2"), PLUGIN_INCOMPATIBLE_OCTOPRINT);
        ASSERT_EQ(OCTO("[\"not a version\", \">=1.0\"]", "1.10.2"), 0);
        /* OctoPrint's base version is compared: a release candidate counts as its release. */
        ASSERT_EQ(OCTO("[\">=1.10.0\"]", "1.10.0rc3"), 0);
        ASSERT_EQ(OCTO("[\"<1.10.0\"]", "1.10.0rc3"), PLUGIN_INCOMPATIBLE_OCTOPRINT);
        ASSERT_EQ(OCTO("[\"==1.10.0\"]", "1.10.0.dev12+gabc"), 0);
        ASSERT_EQ(OCTO("[\"~=1.10.0\"]", "1.10.5.post1"), 0);
        /* No version known: not checked. */
        ASSERT_EQ(OCTO("[\">=9.0\"]", NULL), 0);
}

static void test_compat_os(void) {
        ASSERT_EQ(OS("[]", "linux"), 0);
        ASSERT_EQ(OS("null", "linux"), 0);
        ASSERT_EQ(OS("[\"linux\"]", "linux"), 0);
        ASSERT_EQ(OS("[\"linux\", \"freebsd\"]", "linux"), 0);
        ASSERT_EQ(OS("[\"windows\", \"macos\"]", "linux"), PLUGIN_INCOMPATIBLE_OS);
        ASSERT_EQ(OS("\"windows\"", "linux"), PLUGIN_INCOMPATIBLE_OS);
        ASSERT_EQ(OS("[\"!windows\"]", "linux"), 0);
        ASSERT_EQ(OS("[\"!linux\"]", "linux"), PLUGIN_INCOMPATIBLE_OS);
        ASSERT_EQ(OS("[\"linux\", \"!linux\"]", "linux"), PLUGIN_INCOMPATIBLE_OS);  /* a "!" entry wins */
        ASSERT_EQ(OS("[\"!windows\", \"macos\"]", "linux"), PLUGIN_INCOMPATIBLE_OS);
        /* Entries may name (a prefix of) Python's sys.platform. */
        ASSERT_EQ(OS("[\"lin\"]", "linux"), 0);
        ASSERT_EQ(OS("[\"darwin\"]", "macos"), 0);
        ASSERT_EQ(OS("[\"!win32\"]", "windows"), PLUGIN_INCOMPATIBLE_OS);
        ASSERT_EQ(OS("[\"!win32\"]", "linux"), 0);

        ASSERT_EQ(compat("[\">=9\"]", "[\"windows\"]", "1.10.2", "linux"),
                  PLUGIN_INCOMPATIBLE_OCTOPRINT | PLUGIN_INCOMPATIBLE_OS);
}

static void archive_name(const char *url, const char *expected) {
        _cleanup_free_ char *name = plugin_archive_name_from_url(url);
        ASSERT_STREQ(name, expected);
}

static void test_archive_name(void) {
        archive_name("https://github.com/jneilliii/OctoPrint-BedLevelVisualizer/archive/master.zip", "master.zip");
        archive_name("https://files.example.org/p/OctoPrint_Foo-1.2.0-py3-none-any.whl",
                     "OctoPrint_Foo-1.2.0-py3-none-any.whl");
        archive_name("http://127.0.0.1:8000/foo-1.0%2Bg12ab-py3-none-any.whl?token=x#frag",
                     "foo-1.0+g12ab-py3-none-any.whl");
        archive_name("https://example.org/dist/Plugin-0.1.TAR.GZ", "Plugin-0.1.TAR.GZ");
        archive_name("https://example.org/dist/plugin-0.1.tgz", "plugin-0.1.tgz");
        archive_name("https://example.org/a.zip/download", NULL);       /* no extension pip knows */
        archive_name("https://example.org/", NULL);
        archive_name("https://example.org", NULL);
        archive_name("https://example.org/?name=a.zip", NULL);
        archive_name("https://example.org/.zip", NULL);                /* hidden */
        archive_name("https://example.org/x/..%2F..%2Fetc.zip", NULL);  /* a "/" after decoding */
        archive_name("https://example.org/a%00.zip", NULL);
        archive_name("https://example.org/a%0a.zip", NULL);
        archive_name("https://example.org/-rf.zip", NULL);             /* would read as an option */
        archive_name("https://example.org/%zz.zip", NULL);             /* '%' is no name character */
        archive_name("example.org/a.zip", NULL);
        archive_name(NULL, NULL);
}

static void test_log_string(void) {
        _cleanup_free_ char *a = plugin_log_string("a\nb\tc\x1b[31m"), *b = plugin_log_string("F\xc3\xb6\xc3\xb6"),
                                                   *c = plugin_log_string("bad \xff\xc3\xb6");

        ASSERT_STREQ(a, "a?b?c?[31m");
        ASSERT_STREQ(b, "F\xc3\xb6\xc3\xb6");
        ASSERT_STREQ(c, "bad ???");
}

static size_t count_files(const char *dir) {
        DIR *d = opendir(dir);
        struct dirent *de;
        size_t n = 0;

        ASSERT_NOT_NULL(d);
        while ((de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        n++;
        closedir(d);
        return n;
}

/* pip's own words, as pip 23 prints them, for a dependency it cannot get inside opbackupd's sandbox; and
 * failures that have nothing to do with the network. */
static void test_pip_unreachable(void) {
        ASSERT_TRUE(pip_output_says_unreachable(
                "Processing ./OctoPrint_Lambda-1.0-py3-none-any.whl\n"
                "WARNING: Retrying (Retry(total=4, connect=None, read=None, redirect=None, status=None)) after "
                "connection broken by 'NewConnectionError('<pip._vendor.urllib3.connection.HTTPSConnection "
                "object at 0x7f>: Failed to establish a new connection: [Errno -3] Temporary failure in name "
                "resolution')': /simple/requests/\n"
                "ERROR: Could not find a version that satisfies the requirement requests (from "
                "octoprint-lambda) (from versions: none)\n"
                "ERROR: No matching distribution found for requests\n"));
        ASSERT_TRUE(pip_output_says_unreachable("ERROR: No matching distribution found for setuptools>=40.8.0\n"));
        ASSERT_TRUE(pip_output_says_unreachable(
                "ERROR: Could not install packages due to an OSError: HTTPSConnectionPool(host='pypi.org', "
                "port=443): Max retries exceeded with url: /simple/x/ (Caused by NewConnectionError(': "
                "[Errno 101] Network is unreachable'))\n"));
        ASSERT_FALSE(pip_output_says_unreachable(
                "ERROR: broken-1.0-py3-none-any.whl is not a valid wheel filename.\n"));
        ASSERT_FALSE(pip_output_says_unreachable(
                "ERROR: Could not install packages due to an OSError: [Errno 13] Permission denied: "
                "'/opt/octoprint/venv/lib/python3.11/site-packages/x'\n"));
        ASSERT_FALSE(pip_output_says_unreachable(""));
        ASSERT_FALSE(pip_output_says_unreachable(NULL));
}

static void test_write_unknown(void) {
        _cleanup_free_ char *dir = make_tempdir(), *path = NULL, *content = NULL, *error = NULL;
        PluginInfo p[] = {
                { .key = "foo", .name = "F\xc3\xb6\xc3\xb6", .url = "https://example.org/foo" },
                { .key = "bar", .name = "Bar", .url = NULL },
        };
        _cleanup_close_ int fd = -1, dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        size_t size;

        ASSERT_TRUE(dfd >= 0);
        ASSERT_TRUE(asprintf(&path, "%s/" UNKNOWN_PLUGINS_FILE, dir) > 0);

        /* Nothing to report: nothing written, an older list left alone (OctoPrint does the same). */
        ASSERT_EQ(plugins_write_unknown(dfd, p, 0, &error), 0);
        ASSERT_EQ(count_files(dir), 0);
        write_file(dir, UNKNOWN_PLUGINS_FILE, "[old]");

        ASSERT_EQ(plugins_write_unknown(dfd, p, 2, &error), 0);
        ASSERT_NULL(error);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        ASSERT_TRUE(fd >= 0);
        ASSERT_EQ(read_full_fd(fd, 4096, &content, &size), 0);
        ASSERT_STREQ(content, "[{\"key\": \"foo\", \"name\": \"F\\u00f6\\u00f6\", \"url\": \"https://example.org/foo\"}, "
                              "{\"key\": \"bar\", \"name\": \"Bar\", \"url\": null}]");
        ASSERT_EQ(count_files(dir), 1);           /* no temp file left */

        ASSERT_EQ(plugins_write_unknown(dfd, p, 0, &error), 0);
        ASSERT_EQ(count_files(dir), 1);

        /* A folder that cannot be written: an error that says what. */
        ASSERT_EQ(chmod(dir, 0500), 0);
        if (access(dir, W_OK) < 0) {                 /* not when running as root */
                ASSERT_EQ(plugins_write_unknown(dfd, p, 1, &error), -EACCES);
                ASSERT_CONTAINS(error, UNKNOWN_PLUGINS_FILE);
        }
        ASSERT_EQ(chmod(dir, 0700), 0);
        rm_rf(dir);
}

int main(void) {
        RUN(test_parse);
        RUN(test_parse_errors);
        RUN(test_find);
        RUN(test_compat_octoprint);
        RUN(test_compat_os);
        RUN(test_archive_name);
        RUN(test_log_string);
        RUN(test_pip_unreachable);
        RUN(test_write_unknown);
        return 0;
}
