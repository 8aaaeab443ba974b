/* SPDX-License-Identifier: GPL-2.0-or-later */
/* plugins_reinstall() for real: a real venv, real pip, a plugin repository served over HTTP on 127.0.0.1
 * by plugin-fixture.py with wheels it builds, downloaded in this process and through the fetch helper
 * (the built opbackup-fetch, serving one end of a socketpair). Needs no root and no network beyond the
 * loopback; exits 77 (skip) when python3 -m venv is unavailable. */

#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "plugins/plugins.h"
#include "test-util.h"

#define PYTHON "/usr/bin/python3"
#define OCTOPRINT_VERSION "1.10.2"

static char *tmp, *venv, *www, *work;
static pid_t server_pid = -1;
static int server_stdin = -1;
static unsigned port;

static char **log_lines;
static unsigned progress_calls, plugins_done, plugins_total;
static const char *cancel_stage;      /* progress() asks to stop in this stage; "" = any */

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) remove(path);
        return 0;
}

/* Always, also after a failed assertion (exit() runs it): no server outlives the test. */
static void teardown(void) {
        if (server_pid > 0) {
                closep(&server_stdin);               /* the server exits at EOF on stdin ... */
                (void) kill(server_pid, SIGTERM);    /* ... and this makes sure */
                (void) waitpid(server_pid, NULL, 0);
                server_pid = -1;
        }
        if (tmp && !getenv("OPBACKUP_TEST_KEEP"))
                (void) nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Runs argv, output to /dev/null unless verbose; returns the exit status (-1 if it did not exit). */
static int run(char *const *argv) {
        int status;
        pid_t pid = fork();

        ASSERT_TRUE(pid >= 0);
        if (pid == 0) {
                int null = open("/dev/null", O_WRONLY);
                if (!getenv("OPBACKUP_TEST_VERBOSE"))
                        (void) dup2(null, 1);
                execv(argv[0], argv);
                _exit(127);
        }
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* requires: a Requires-Dist of the wheel, or NULL. */
static void make_wheel_requiring(const char *dist, const char *key, const char *requires) {
        char *argv[] = { PYTHON, PLUGIN_FIXTURE, "wheel", www, (char *) dist, "1.0", (char *) key, (char *) requires,
                         NULL };
        ASSERT_EQ(run(argv), 0);
}

static void make_wheel(const char *dist, const char *key) {
        make_wheel_requiring(dist, key, NULL);
}

static void start_server(void) {
        int in[2], out[2];
        char line[32];
        FILE *f;

        ASSERT_EQ(pipe2(in, O_CLOEXEC), 0);
        ASSERT_EQ(pipe2(out, O_CLOEXEC), 0);
        server_pid = fork();
        ASSERT_TRUE(server_pid >= 0);
        if (server_pid == 0) {
                char *argv[] = { PYTHON, PLUGIN_FIXTURE, "serve", www, NULL };
                if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0)
                        _exit(127);
                execv(argv[0], argv);
                _exit(127);
        }
        close(in[0]);
        close(out[1]);
        server_stdin = in[1];
        f = fdopen(out[0], "r");
        ASSERT_NOT_NULL(f);
        ASSERT_NOT_NULL(fgets(line, sizeof(line), f));
        fclose(f);
        port = (unsigned) strtoul(line, NULL, 10);
        ASSERT_TRUE(port > 0 && port < 65536);
}

/* A port nothing listens on: bound, then closed again. */
static unsigned closed_port(void) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t l = sizeof(a);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        ASSERT_TRUE(fd >= 0);
        ASSERT_EQ(bind(fd, (struct sockaddr *) &a, sizeof(a)), 0);
        ASSERT_EQ(getsockname(fd, (struct sockaddr *) &a, &l), 0);
        close(fd);
        return ntohs(a.sin_port);
}

static char *url(const char *path) {
        char *u;
        ASSERT_TRUE(asprintf(&u, "http://127.0.0.1:%u/%s", port, path) > 0);
        return u;
}

static void write_big(const char *name, size_t size) {
        _cleanup_free_ char *path = NULL;
        _cleanup_fclose_ FILE *f = NULL;

        ASSERT_TRUE(asprintf(&path, "%s/%s", www, name) > 0);
        f = fopen(path, "we");
        ASSERT_NOT_NULL(f);
        ASSERT_EQ(fseek(f, (long) size - 1, SEEK_SET), 0);
        ASSERT_TRUE(fputc('x', f) != EOF);
}

static void copy_file(const char *from, const char *to) {
        _cleanup_free_ char *src = NULL, *dst = NULL, *data = NULL;
        _cleanup_close_ int in = -1, out = -1;
        size_t size;

        ASSERT_TRUE(asprintf(&src, "%s/%s", www, from) > 0);
        ASSERT_TRUE(asprintf(&dst, "%s/%s", www, to) > 0);
        in = open(src, O_RDONLY | O_CLOEXEC);
        ASSERT_TRUE(in >= 0);
        ASSERT_EQ(read_full_fd(in, 1024 * 1024, &data, &size), 0);
        (void) mkdir(dirname(strdupa(dst)), 0755);
        out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        ASSERT_TRUE(out >= 0);
        ASSERT_EQ(write_all(out, data, size), 0);
}

/* The repository the tests install from. */
static void write_repository(void) {
        _cleanup_free_ char *json = NULL;

        ASSERT_TRUE(asprintf(&json,
                "[{\"id\": \"alpha\", \"title\": \"Alpha\", \"homepage\": \"https://example.org/alpha\",\n"
                "  \"archive\": \"http://127.0.0.1:%1$u/OctoPrint_Alpha-1.0-py3-none-any.whl\",\n"
                "  \"compatibility\": {\"octoprint\": [\">=1.4.0,<2\"], \"os\": [\"linux\"], \"python\": \">=3,<4\"}},\n"
                " {\"id\": \"beta\", \"archive\": \"http://127.0.0.1:%1$u/OctoPrint_Beta-1.0-py3-none-any.whl\"},\n"
                " {\"id\": \"gamma\", \"archive\": \"http://127.0.0.1:%1$u/OctoPrint_Gamma-1.0-py3-none-any.whl\",\n"
                "  \"compatibility\": {\"octoprint\": [\">=9.0\"]}},\n"
                " {\"id\": \"winonly\", \"archive\": \"http://127.0.0.1:%1$u/OctoPrint_Gamma-1.0-py3-none-any.whl\",\n"
                "  \"compatibility\": {\"os\": [\"windows\"]}},\n"
                " {\"id\": \"noarchive\", \"title\": \"No archive\"},\n"
                " {\"id\": \"broken\", \"archive\": \"http://127.0.0.1:%1$u/broken-1.0-py3-none-any.whl\",\n"
                "  \"compatibility\": {\"octoprint\": [\"1.4.0\"], \"os\": [\"!windows\"]}},\n"
                " {\"id\": \"missing\", \"archive\": \"http://127.0.0.1:%1$u/nothere-1.0-py3-none-any.whl\"},\n"
                " {\"id\": \"epsilon\", \"archive\": \"http://127.0.0.1:%1$u/redirect/OctoPrint_Epsilon-1.0-py3-none-any.whl\"},\n"
                " {\"id\": \"zeta\", \"archive\": \"http://127.0.0.1:%1$u/chunked/big-1.0-py3-none-any.whl\"},\n"
                " {\"id\": \"eta\", \"archive\": \"http://127.0.0.1:%1$u/big-1.0-py3-none-any.whl\"},\n"
                " {\"id\": \"fileproto\", \"archive\": \"file:///etc/hostname.zip\"},\n"
                " {\"id\": \"redirfile\", \"archive\": \"http://127.0.0.1:%1$u/redirect-file\"},\n"
                " {\"id\": \"iota\", \"archive\": \"http://127.0.0.1:%1$u/OctoPrint_Iota-1.0-py3-none-any.whl\"},\n"
                " {\"id\": \"kappa\", \"archive\": \"http://127.0.0.1:%1$u/OctoPrint_Kappa-1.0-py3-none-any.whl\"},\n"
                " {\"id\": \"noext\", \"archive\": \"http://127.0.0.1:%1$u/download/noext?x=1\"},\n"
                " {\"id\": \"html\", \"archive\": \"http://127.0.0.1:%1$u/download/html\"},\n"
                /* URLs that name no file and redirect to one that does: the name comes from where they lead. */
                " {\"id\": \"mu\", \"archive\": \"http://127.0.0.1:%1$u/redirect-to?OctoPrint_Mu-1.0-py3-none-any.whl\"},\n"
                " {\"id\": \"nu\", \"archive\": \"http://127.0.0.1:%1$u/redirect-to?OctoPrint_Nu-1.0-py3-none-any.whl\"},\n"
                " {\"id\": \"lambda\", \"archive\": \"http://127.0.0.1:%1$u/OctoPrint_Lambda-1.0-py3-none-any.whl\"}]\n",
                port) > 0);
        write_file(www, "plugins.json", json);
        write_file(www, "notjson.json", "<html><body>502 Bad Gateway</body></html>");
        /* Not a wheel: pip must refuse it. */
        write_file(www, "broken-1.0-py3-none-any.whl", "this is not a zip file\n");
        write_big("big-1.0-py3-none-any.whl", 2 * 1024 * 1024);
        /* URLs that do not name the file: a zip (which is no Python project), and an HTML page. */
        copy_file("OctoPrint_Kappa-1.0-py3-none-any.whl", "download/noext");
        write_file(www, "download/html", "<!DOCTYPE html><html><body>Sign in to download</body></html>\n");
}

static void on_log(int level, const char *line, void *userdata) {
        fprintf(stderr, "  log<%d>: %s\n", level, line);
        ASSERT_NULL(strchr(line, '\n'));
        ASSERT_EQ(strv_extend(&log_lines, line), 0);
}

static int on_progress(const char *stage, uint64_t done, uint64_t total, void *userdata) {
        progress_calls++;
        if (streq(stage, "plugins")) {
                ASSERT_TRUE(done <= total);
                plugins_done = done;
                plugins_total = total;
        }
        return cancel_stage && (!*cancel_stage || streq(stage, cancel_stage)) ? -1 : 0;
}

static const BackupCallbacks callbacks = { .log = on_log, .progress = on_progress };

static bool logged(const char *text) {
        STRV_FOREACH(l, log_lines)
                if (strstr(*l, text))
                        return true;
        return false;
}

#define ASSERT_LOGGED(text)                                                             \
        do {                                                                            \
                if (!logged(text)) {                                                    \
                        fprintf(stderr, "%s:%d: no log line contains \"%s\"\n",         \
                                __FILE__, __LINE__, (text));                            \
                        exit(EXIT_FAILURE);                                             \
                }                                                                       \
        } while (0)

static void assert_keys(const PluginInfo *p, size_t n, const char *keys) {
        _cleanup_strv_free_ char **k = NULL;

        ASSERT_EQ(strv_split_words(keys, &k), 0);
        if (n != strv_length(k)) {
                fprintf(stderr, "expected \"%s\", got:", keys);
                for (size_t i = 0; i < n; i++)
                        fprintf(stderr, " %s", p[i].key);
                fprintf(stderr, "\n");
        }
        ASSERT_EQ(n, strv_length(k));
        for (size_t i = 0; i < n; i++)
                ASSERT_STREQ(p[i].key, k[i]);
}

/* The plugin keys the venv has now, space-separated, sorted. */
static char *venv_plugins(void) {
        _cleanup_free_ char *sp = NULL;
        _cleanup_close_ int fd = -1;
        PluginInfo *p = NULL;
        size_t n = 0;
        char *s = strdup("");

        ASSERT_EQ(venv_open_site_packages(venv, &sp, &fd), 0);
        ASSERT_EQ(distinfo_plugin_list(fd, NULL, &p, &n), 0);
        for (size_t i = 0; i < n; i++) {
                char *t;
                ASSERT_TRUE(asprintf(&t, "%s%s%s", s, i ? " " : "", p[i].key) > 0);
                free(s);
                s = t;
        }
        plugin_info_array_free(p, n);
        return s;
}

static int reinstall(PluginRequest *req, PluginInfo *p, size_t n, PluginOutcome *out, char **error) {
        req->plugins = p;
        req->n_plugins = n;
        req->venv = venv;
        req->octoprint_version = OCTOPRINT_VERSION;
        strv_free(log_lines);
        log_lines = NULL;
        plugins_done = plugins_total = 0;
        return plugins_reinstall(req, &callbacks, out, error);
}

#define P(k) { .key = (char *) (k), .name = (char *) (k " plugin"), .url = (char *) ("https://example.org/" k) }

static void test_reinstall(void) {
        _cleanup_free_ char *repo = url("plugins.json"), *installed = NULL, *error = NULL;
        PluginInfo p[] = {
                P("alpha"), P("beta"), P("gamma"),
                { .key = (char *) "delta", .name = (char *) "Delta Plugin", .url = (char *) "https://example.org/delta" },
                P("winonly"), P("noarchive"), P("broken"), P("missing"), P("epsilon"), P("zeta"), P("eta"),
                P("fileproto"), P("redirfile"), P("noext"), P("html"), P("mu"), P("alpha"),
        };
        PluginRequest req = { .repository_url = repo, .work_dir = work, .fetch_fd = -1,
                              .max_archive_size = 1024 * 1024 };
        PluginOutcome out = {};

        ASSERT_EQ(reinstall(&req, p, ELEMENTSOF(p), &out, &error), 0);
        ASSERT_NULL(error);

        assert_keys(out.installed, out.n_installed, "alpha epsilon mu");
        assert_keys(out.already, out.n_already, "beta");
        assert_keys(out.unknown, out.n_unknown, "gamma delta winonly noarchive");
        assert_keys(out.failed, out.n_failed, "broken missing zeta eta fileproto redirfile noext html");
        ASSERT_STREQ(out.unknown[1].name, "Delta Plugin");
        ASSERT_STREQ(out.unknown[1].url, "https://example.org/delta");

        /* What a user looks for in the job log. */
        ASSERT_LOGGED("Plugin beta is already installed");
        ASSERT_LOGGED("Installing plugin alpha from http://127.0.0.1:");
        ASSERT_LOGGED("Installed plugin alpha");
        ASSERT_LOGGED("Installed plugin epsilon");
        ASSERT_LOGGED("Plugin gamma is not compatible with this OctoPrint version, skipping");
        ASSERT_LOGGED("Plugin winonly is not compatible with this operating system, skipping");
        ASSERT_LOGGED("Plugin delta is unknown: Delta Plugin (https://example.org/delta)");
        ASSERT_LOGGED("Plugin noarchive has no archive in the plugin repository");
        ASSERT_LOGGED("Installing plugin broken failed: pip exited with status 1");
        ASSERT_LOGGED("  pip: ");
        ASSERT_LOGGED("Installing plugin missing failed: Cannot download http://127.0.0.1:");
        ASSERT_LOGGED("the server answered with HTTP status 404");
        ASSERT_LOGGED("Installing plugin zeta failed: Cannot download");
        ASSERT_LOGGED("big-1.0-py3-none-any.whl: it is larger than the limit of 1.0 MiB");
        ASSERT_LOGGED("Installing plugin fileproto failed: Cannot download file:///etc/hostname.zip");
        ASSERT_LOGGED("Installing plugin redirfile failed: Cannot download");
        /* No file name in the URL: the content says zip, so pip gets a .zip (and finds no project in it) ... */
        ASSERT_LOGGED("Installing plugin noext failed: pip exited with status 1");
        ASSERT_LOGGED("/archive.zip");
        /* ... and an HTML page is not given to pip at all. */
        ASSERT_LOGGED("Installing plugin html failed: the download is neither a zip nor a tar archive");
        ASSERT_LOGGED("Installed plugin mu");
        /* None of these failures is pip missing the network. */
        ASSERT_FALSE(logged("could not download"));
        ASSERT_EQ(plugins_done, ELEMENTSOF(p));
        ASSERT_EQ(plugins_total, ELEMENTSOF(p));

        /* The venv has them now: OctoPrint would load them. */
        installed = venv_plugins();
        ASSERT_STREQ(installed, "alpha beta epsilon mu");
        /* Downloads are gone; pip left nothing in the work folder either. */
        ASSERT_EQ(rmdir(work), 0);
        ASSERT_EQ(mkdir(work, 0700), 0);
        plugin_outcome_done(&out);
}

static void test_unreachable(void) {
        _cleanup_free_ char *repo = NULL, *error = NULL, *installed = NULL;
        PluginInfo p[] = {
                P("alpha"), P("gamma"),
                { .key = (char *) "evil\nkey", .name = (char *) "Evil\n\x1b[2Jname", .url = NULL },
        };
        PluginRequest req = { .work_dir = work, .fetch_fd = -1 };
        PluginOutcome out = {};

        ASSERT_TRUE(asprintf(&repo, "http://127.0.0.1:%u/plugins.json", closed_port()) > 0);
        req.repository_url = repo;
        ASSERT_EQ(reinstall(&req, p, ELEMENTSOF(p), &out, &error), 0);
        assert_keys(out.already, out.n_already, "alpha");
        ASSERT_EQ(out.n_unknown, 2);
        ASSERT_STREQ(out.unknown[0].key, "gamma");
        ASSERT_STREQ(out.unknown[1].key, "evil\nkey");          /* reported as the backup has it */
        ASSERT_EQ(out.n_installed + out.n_failed, 0);
        ASSERT_LOGGED("Cannot use the plugin repository http://127.0.0.1:");
        ASSERT_LOGGED("2 plugins cannot be reinstalled");
        ASSERT_LOGGED("Plugin evil?key is unknown: Evil??[2Jname (no homepage known)");
        plugin_outcome_done(&out);

        /* Not valid JSON (a proxy's error page), and larger than allowed: the same, with the reason. */
        free(repo);
        repo = url("notjson.json");
        req.repository_url = repo;
        ASSERT_EQ(reinstall(&req, p, 2, &out, &error), 0);
        assert_keys(out.unknown, out.n_unknown, "gamma");
        ASSERT_LOGGED("not valid JSON");
        plugin_outcome_done(&out);

        free(repo);
        repo = url("plugins.json");
        req.repository_url = repo;
        req.max_repository_size = 100;
        ASSERT_EQ(reinstall(&req, p, 2, &out, &error), 0);
        assert_keys(out.unknown, out.n_unknown, "gamma");
        ASSERT_LOGGED("larger than the limit of 100 B");
        plugin_outcome_done(&out);

        /* Everything installed already: the repository is not even asked. */
        req.repository_url = "http://127.0.0.1:1/never-fetched.json";
        ASSERT_EQ(reinstall(&req, p, 1, &out, &error), 0);
        assert_keys(out.already, out.n_already, "alpha");
        ASSERT_FALSE(logged("repository"));
        plugin_outcome_done(&out);

        installed = venv_plugins();
        ASSERT_STREQ(installed, "alpha beta epsilon mu");
}

static void test_dry_run_cancel_timeout(void) {
        _cleanup_free_ char *repo = url("plugins.json"), *error = NULL, *installed = NULL;
        PluginInfo p[] = { P("kappa"), P("alpha"), P("gamma") };
        PluginRequest req = { .repository_url = repo, .fetch_fd = -1, .dry_run = true };     /* no work_dir needed */
        PluginOutcome out = {};

        ASSERT_EQ(reinstall(&req, p, ELEMENTSOF(p), &out, &error), 0);
        assert_keys(out.installed, out.n_installed, "kappa");
        assert_keys(out.already, out.n_already, "alpha");
        assert_keys(out.unknown, out.n_unknown, "gamma");
        ASSERT_LOGGED("Plugin kappa will be installed from http://127.0.0.1:");
        plugin_outcome_done(&out);

        /* Canceled (while fetching the repository, and while pip runs): an error, nothing installed,
         * pip stopped. */
        req.dry_run = false;
        req.work_dir = work;
        cancel_stage = "";
        ASSERT_EQ(reinstall(&req, p, 1, &out, &error), -ECANCELED);
        ASSERT_STREQ(error, "Canceled");
        free(error);
        error = NULL;
        cancel_stage = "installing";
        ASSERT_EQ(reinstall(&req, p, 1, &out, &error), -ECANCELED);
        ASSERT_STREQ(error, "Canceled");
        ASSERT_LOGGED("Installing plugin kappa from");
        cancel_stage = NULL;
        free(error);
        error = NULL;
        ASSERT_EQ(rmdir(work), 0);           /* the download is removed */
        ASSERT_EQ(mkdir(work, 0700), 0);

        /* pip taking too long is stopped, and the plugin failed. */
        req.pip_timeout_usec = 1000;
        p[0] = (PluginInfo) P("iota");
        ASSERT_EQ(reinstall(&req, p, 1, &out, &error), 0);
        assert_keys(out.failed, out.n_failed, "iota");
        ASSERT_LOGGED("Installing plugin iota failed: pip did not finish within 0.001 s and was stopped");
        plugin_outcome_done(&out);

        installed = venv_plugins();
        ASSERT_STREQ(installed, "alpha beta epsilon mu");
}

/* opbackup-fetch serving one end of a socketpair on its standard input, as it serves a connection systemd
 * accepted; *ret_fd: the other end, the worker's. */
static pid_t start_helper(int *ret_fd) {
        int sv[2];
        pid_t pid;

        ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        pid = fork();
        ASSERT_TRUE(pid >= 0);
        if (pid == 0) {
                char *argv[] = { (char *) OPBACKUP_FETCH, NULL };
                if (dup2(sv[1], 0) < 0)
                        _exit(127);
                execv(argv[0], argv);
                _exit(127);
        }
        close(sv[1]);
        *ret_fd = sv[0];
        return pid;
}

static void test_through_helper(void) {
        _cleanup_free_ char *repo = url("plugins.json"), *error = NULL, *installed = NULL, *proxy = NULL;
        PluginInfo p[] = { P("missing"), P("eta"), P("zeta"), P("fileproto"), P("nu"), P("kappa") };
        PluginRequest req = { .repository_url = repo, .work_dir = work, .fetch_fd = -1,
                              .max_archive_size = 1024 * 1024 };
        PluginOutcome out = {};
        int fd = -1, status;
        pid_t helper = start_helper(&fd);

        /* This process cannot download any more (a proxy that is not there); the helper, started before,
         * can: what installs now came through it. */
        ASSERT_TRUE(asprintf(&proxy, "http://127.0.0.1:%u", closed_port()) > 0);
        ASSERT_EQ(setenv("http_proxy", proxy, 1), 0);
        ASSERT_EQ(reinstall(&req, p, ELEMENTSOF(p), &out, &error), 0);
        assert_keys(out.unknown, out.n_unknown, "missing eta zeta fileproto nu kappa");
        ASSERT_LOGGED("Cannot use the plugin repository");
        plugin_outcome_done(&out);

        /* Through the helper, on one connection: the same answers, the same refusals, the same words. */
        req.fetch_fd = fd;
        ASSERT_EQ(reinstall(&req, p, ELEMENTSOF(p), &out, &error), 0);
        assert_keys(out.installed, out.n_installed, "nu kappa");
        assert_keys(out.failed, out.n_failed, "missing eta zeta fileproto");
        ASSERT_LOGGED("The plugin repository lists");
        ASSERT_LOGGED("Installing plugin missing failed: Cannot download http://127.0.0.1:");
        ASSERT_LOGGED("the server answered with HTTP status 404");
        ASSERT_LOGGED("Installing plugin eta failed: Cannot download");
        ASSERT_LOGGED("Installing plugin zeta failed: Cannot download");
        ASSERT_LOGGED("big-1.0-py3-none-any.whl: it is larger than the limit of 1.0 MiB");
        ASSERT_LOGGED("Installing plugin fileproto failed: Cannot download file:///etc/hostname.zip: only http://");
        ASSERT_LOGGED("Installed plugin nu");            /* named after where the redirect led */
        ASSERT_LOGGED("Installed plugin kappa");
        plugin_outcome_done(&out);
        installed = venv_plugins();
        ASSERT_STREQ(installed, "alpha beta epsilon kappa mu nu");

        /* Canceled while the helper fetches: the connection is shut (what it still sends is never read as
         * another answer), and a later restore over it learns why, instead of dying of SIGPIPE. */
        p[0] = (PluginInfo) P("iota");
        cancel_stage = "downloading";
        ASSERT_EQ(reinstall(&req, p, 1, &out, &error), -ECANCELED);
        cancel_stage = NULL;
        free(error);
        error = NULL;
        ASSERT_EQ(reinstall(&req, p, 1, &out, &error), 0);
        assert_keys(out.unknown, out.n_unknown, "iota");
        ASSERT_LOGGED("The connection to the fetch helper is closed");
        plugin_outcome_done(&out);
        ASSERT_EQ(unsetenv("http_proxy"), 0);

        close(fd);
        ASSERT_EQ(waitpid(helper, &status, 0), helper);
        ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);

        /* fetch_fd left at 0 (or anything else that is no socket) is refused, not spoken HTTP to. */
        fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        ASSERT_TRUE(fd >= 0);
        req.fetch_fd = fd;
        ASSERT_EQ(reinstall(&req, p, 1, &out, &error), -EBADF);
        ASSERT_CONTAINS(error, "not a socket");
        close(fd);
}

/* A plugin that needs a package the venv lacks, with no index to be had (as inside opbackupd.service):
 * it fails, and the log says why and what to do. */
static void test_pip_unreachable(void) {
        _cleanup_free_ char *repo = url("plugins.json"), *error = NULL, *index = NULL;
        PluginInfo p[] = { P("lambda") };
        PluginRequest req = { .repository_url = repo, .work_dir = work, .fetch_fd = -1 };
        PluginOutcome out = {};

        /* pip's own configuration, through the environment it inherits: an index on a closed port, no retries,
         * no configuration files of this machine. */
        ASSERT_TRUE(asprintf(&index, "http://127.0.0.1:%u/simple/", closed_port()) > 0);
        ASSERT_EQ(setenv("PIP_INDEX_URL", index, 1), 0);
        ASSERT_EQ(setenv("PIP_RETRIES", "0", 1), 0);
        ASSERT_EQ(setenv("PIP_CONFIG_FILE", "/dev/null", 1), 0);
        ASSERT_EQ(unsetenv("PIP_EXTRA_INDEX_URL"), 0);
        ASSERT_EQ(unsetenv("PIP_FIND_LINKS"), 0);
        ASSERT_EQ(reinstall(&req, p, 1, &out, &error), 0);
        assert_keys(out.failed, out.n_failed, "lambda");
        ASSERT_LOGGED("Installing plugin lambda failed: pip exited with status 1");
        ASSERT_LOGGED("Plugin lambda needs Python packages that pip could not download. Check that this machine "
                      "reaches the package index pip uses");
        ASSERT_LOGGED("OctoPrint's plugin manager");
        plugin_outcome_done(&out);
        ASSERT_EQ(unsetenv("PIP_INDEX_URL"), 0);
        ASSERT_EQ(unsetenv("PIP_RETRIES"), 0);
        ASSERT_EQ(unsetenv("PIP_CONFIG_FILE"), 0);
}

static bool have_venv(void) {
        char *argv[] = { PYTHON, "-c", "import venv, ensurepip", NULL };
        return access(PYTHON, X_OK) == 0 && run(argv) == 0;
}

int main(void) {
        static const char *const proxies[] = { "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
                                               "all_proxy" };
        _cleanup_free_ char *beta = NULL;

        /* 127.0.0.1 must be reached directly, whatever the environment says. */
        for (size_t i = 0; i < ELEMENTSOF(proxies); i++)
                unsetenv(proxies[i]);
        if (!have_venv()) {
                fprintf(stderr, "%s -m venv is not available, skipping\n", PYTHON);
                return 77;
        }
        tmp = make_tempdir();
        atexit(teardown);
        ASSERT_TRUE(asprintf(&venv, "%s/venv", tmp) > 0);
        ASSERT_TRUE(asprintf(&www, "%s/www", tmp) > 0);
        ASSERT_TRUE(asprintf(&work, "%s/work", tmp) > 0);
        ASSERT_EQ(mkdir(www, 0755), 0);
        ASSERT_EQ(mkdir(work, 0700), 0);

        {
                char *argv[] = { PYTHON, "-m", "venv", venv, NULL };
                if (run(argv) != 0) {
                        fprintf(stderr, "%s -m venv %s failed, skipping\n", PYTHON, venv);
                        return 77;
                }
        }
        make_wheel("OctoPrint_Alpha", "alpha");
        make_wheel("OctoPrint_Beta", "beta");
        make_wheel("OctoPrint_Gamma", "gamma");
        make_wheel("OctoPrint_Epsilon", "epsilon");
        make_wheel("OctoPrint_Iota", "iota");
        make_wheel("OctoPrint_Kappa", "kappa");
        make_wheel("OctoPrint_Mu", "mu");
        make_wheel("OctoPrint_Nu", "nu");
        make_wheel_requiring("OctoPrint_Lambda", "lambda", "opbackup-test-no-such-dependency>=1.0");

        /* beta is in the venv before the restore. */
        ASSERT_TRUE(asprintf(&beta, "%s/OctoPrint_Beta-1.0-py3-none-any.whl", www) > 0);
        {
                _cleanup_free_ char *python = NULL;
                ASSERT_TRUE(asprintf(&python, "%s/bin/python", venv) > 0);
                char *argv[] = { python, "-m", "pip", "install", "--no-index", "--no-cache-dir",
                                 "--disable-pip-version-check", beta, NULL };
                ASSERT_EQ(run(argv), 0);
        }

        start_server();
        write_repository();

        RUN(test_reinstall);
        RUN(test_unreachable);
        RUN(test_dry_run_cancel_timeout);
        RUN(test_through_helper);
        RUN(test_pip_unreachable);
        return 0;
}
