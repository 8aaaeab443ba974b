/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Reinstalling the plugins a backup lists (opbackupd(8), RESTORE, step 5), as OctoPrint's restore does: what
 * the venv has already is skipped, what the repository knows and fits this OctoPrint and OS is downloaded and
 * installed with pip, the rest is reported as unknown. Downloads go through the fetch helper (fetch.h) when
 * the worker was given a connection to it. */

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "fetch/fetch-client.h"
#include "log.h"
#include "plugins/plugins-install.h"
#include "plugins/plugins.h"
#include "pyjson.h"

/* Lines of pip's output logged when an install fails: the error is at the end. */
#define PIP_LOG_LINES 20

#define ARCHIVE_DOWNLOAD_TIMEOUT_SEC 600U
#define REPOSITORY_TIMEOUT_SEC 60U
/* Downloads report many times a second; the job hears about it at most this often. */
#define DOWNLOAD_PROGRESS_USEC (200U * 1000U)

typedef struct Reinstall {
        const PluginRequest *req;
        const BackupCallbacks *cb;
        PluginInfo *installed_now;   /* what the venv provides */
        size_t n_installed_now;
        RepoEntry *repo;             /* NULL: repository unavailable */
        size_t n_repo;
        int work_fd;
        uint64_t last_progress_usec;
        PluginOutcome out;
} Reinstall;

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

char *plugin_log_string(const char *s) {
        bool utf8 = utf8_is_valid(s);
        char *c = strdup(s);

        if (!c)
                return NULL;
        for (unsigned char *p = (unsigned char *) c; *p; p++)
                if (*p < 0x20 || *p == 0x7f || (!utf8 && *p >= 0x80))
                        *p = '?';
        return c;
}

void plugin_outcome_done(PluginOutcome *o) {
        if (!o)
                return;
        plugin_info_array_free(o->installed, o->n_installed);
        plugin_info_array_free(o->already, o->n_already);
        plugin_info_array_free(o->unknown, o->n_unknown);
        plugin_info_array_free(o->failed, o->n_failed);
        *o = (PluginOutcome) {};
}

static int outcome_add(PluginInfo **arr, size_t *n, const PluginInfo *p) {
        PluginInfo *t = realloc(*arr, (*n + 1) * sizeof(PluginInfo));
        PluginInfo c = {};

        if (!t)
                return -ENOMEM;
        *arr = t;
        c.key = strdup(p->key);
        c.name = p->name ? strdup(p->name) : NULL;
        c.url = p->url ? strdup(p->url) : NULL;
        if (!c.key || (p->name && !c.name) || (p->url && !c.url)) {
                free(c.key);
                free(c.name);
                free(c.url);
                return -ENOMEM;
        }
        t[(*n)++] = c;
        return 0;
}

static bool plugin_list_has(const PluginInfo *p, size_t n, const char *key) {
        for (size_t i = 0; i < n; i++)
                if (streq_ptr(p[i].key, key))
                        return true;
        return false;
}

/* The keys the venv provides now. */
static int installed_plugins(const char *venv, PluginInfo **ret, size_t *ret_n, char **ret_error) {
        _cleanup_free_ char *sp = NULL;
        _cleanup_close_ int fd = -1;
        int r;

        r = venv_open_site_packages(venv, &sp, &fd);
        if (r < 0) {
                if (asprintf(ret_error, "Cannot find the site-packages of the Python environment %s: %s", venv,
                             strerror(-r)) < 0)
                        *ret_error = NULL;
                return r;
        }
        r = distinfo_plugin_list(fd, NULL, ret, ret_n);
        if (r < 0 && asprintf(ret_error, "Cannot list the plugins installed in %s: %s", sp, strerror(-r)) < 0)
                *ret_error = NULL;
        return r;
}

static int download_progress(uint64_t done, uint64_t total, void *userdata) {
        Reinstall *s = userdata;
        uint64_t now = now_usec();

        /* Also asks whether to go on, so a canceled job does not wait for a slow download. */
        if (now < s->last_progress_usec + DOWNLOAD_PROGRESS_USEC)
                return 0;
        s->last_progress_usec = now;
        /* A compressed answer announces its compressed length; done counts what it decodes to. */
        if (done > total)
                total = 0;
        return backup_progress(s->cb, "downloading", done, total) < 0 ? -ECANCELED : 0;
}

/* GETs url through the fetch helper, or in this process when there is none (req->fetch_fd < 0); the body
 * into out_fd, or into resp->body when out_fd < 0. 0 for a 2xx answer. -ECANCELED and -ENOMEM must stop
 * the job; any other failure is a negative errno with *ret_error, for the log: "Cannot download URL: why". */
static int download(Reinstall *s, const char *url, uint64_t max_size, unsigned timeout_sec, int out_fd,
                    FetchResponse *resp, char **ret_error) {
        FetchRequest req = { .url = url, .max_size = max_size, .timeout_sec = timeout_sec,
                             .progress = download_progress, .userdata = s };
        _cleanup_free_ char *url_log = plugin_log_string(url), *why = NULL;
        char limit[32];
        int r, k;

        if (!url_log)
                return -ENOMEM;
        s->last_progress_usec = 0;
        r = fetch_get(s->req->fetch_fd, &req, out_fd, resp);
        if (r == -ECANCELED || r == -ENOMEM)
                return r;
        if (r == -EFBIG) {
                format_bytes(limit, sizeof(limit), max_size);
                k = asprintf(&why, "it is larger than the limit of %s", limit);
        } else if (r < 0)
                k = (why = plugin_log_string(strempty(resp->error))) ? 0 : -1;
        else if (resp->status < 200 || resp->status > 299) {
                /* The body is an error page, not what was asked for. */
                k = asprintf(&why, "the server answered with HTTP status %ld", resp->status);
                r = -EIO;
        } else
                return 0;
        if (k < 0 || asprintf(ret_error, "Cannot download %s: %s", url_log, why) < 0)
                return -ENOMEM;
        return r;
}

/* The repository, or NULL (with a log line saying why) when it cannot be had: then every plugin to
 * install is unknown, and the restore goes on. */
static int repository_load(Reinstall *s, size_t n_missing) {
        const PluginRequest *req = s->req;
        const BackupCallbacks *cb = s->cb;
        const char *url = !isempty(req->repository_url) ? req->repository_url : PLUGIN_REPOSITORY_DEFAULT;
        _cleanup_(fetch_response_done) FetchResponse resp = {};
        _cleanup_free_ char *error = NULL, *url_log = plugin_log_string(url);
        int r;

        s->repo = NULL;
        s->n_repo = 0;
        if (!url_log)
                return -ENOMEM;
        backup_log(cb, LOG_INFO, "Fetching the plugin repository %s", url_log);
        r = download(s, url, req->max_repository_size ?: PLUGIN_REPOSITORY_MAX, REPOSITORY_TIMEOUT_SEC, -1, &resp,
                     &error);
        if (r == -ECANCELED || r == -ENOMEM)
                return r;
        if (r >= 0) {
                r = plugin_repository_parse(resp.body, resp.size, &s->repo, &s->n_repo, &error);
                if (r == -ENOMEM)
                        return r;
        }
        if (r < 0) {
                _cleanup_free_ char *e = plugin_log_string(strempty(error));

                backup_log(cb, LOG_WARNING, "Cannot use the plugin repository %s: %s. %zu plugin%s cannot be "
                           "reinstalled and will be reported as unknown", url_log, e ?: "", n_missing,
                           n_missing == 1 ? "" : "s");
                return 0;
        }
        backup_log(cb, LOG_INFO, "The plugin repository lists %zu plugins", s->n_repo);
        return 1;
}

/* Which extension the archive's content calls for, when its URL has no usable file name. */
static const char *archive_name_by_content(int fd) {
        unsigned char magic[4] = {};

        if (pread(fd, magic, sizeof(magic), 0) < 3)
                return NULL;
        if (memcmp(magic, "PK\3\4", 4) == 0)
                return "archive.zip";
        if (magic[0] == 0x1f && magic[1] == 0x8b)
                return "archive.tar.gz";
        if (memcmp(magic, "BZh", 3) == 0)
                return "archive.tar.bz2";
        return NULL;
}

static void log_pip_tail(const BackupCallbacks *cb, const char *output) {
        const char *lines[PIP_LOG_LINES];
        size_t n = 0, first = 0;
        _cleanup_free_ char *copy = strdup(output);
        char *saveptr = NULL;

        if (!copy)
                return;
        for (char *l = strtok_r(copy, "\n", &saveptr); l; l = strtok_r(NULL, "\n", &saveptr)) {
                size_t k = strlen(l);

                while (k > 0 && (l[k - 1] == '\r' || l[k - 1] == ' '))
                        l[--k] = 0;
                if (k == 0)
                        continue;
                lines[(first + n) % PIP_LOG_LINES] = l;
                if (n < PIP_LOG_LINES)
                        n++;
                else
                        first = (first + 1) % PIP_LOG_LINES;
        }
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *s = plugin_log_string(lines[(first + i) % PIP_LOG_LINES]);
                backup_log(cb, LOG_ERR, "  pip: %s", s ?: "");
        }
}

/* What a user can do when pip could not get a plugin's dependencies. Under opbackupd.service pip runs as a
 * transient unit of systemd that has the network; only where that was impossible (the log said why) does it
 * run inside opbackupd's sandbox, which has none (opbackupd(8)). */
static void log_pip_unreachable(const BackupCallbacks *cb, const char *key) {
        backup_log(cb, LOG_WARNING, "Plugin %s needs Python packages that pip could not download. Check that this "
                   "machine reaches the package index pip uses (its configuration: pip.conf, PIP_INDEX_URL, proxy "
                   "settings), or install the plugin by hand with OctoPrint's plugin manager (before restoring "
                   "again: it is then skipped; or after a restore with ignore-plugin-errors), and restore again. "
                   "Under opbackupd.service, pip runs as a transient unit of systemd with the network; where that "
                   "could not be started (see above), pip ran inside opbackupd's sandbox, which has no network",
                   key);
}

/* Downloads url into its own folder under work_dir and runs pip on it. Returns 1 installed, 0 failed
 * (logged), negative errno for what must stop the whole job (-ECANCELED, -ENOMEM). */
static int install_one(Reinstall *s, size_t index, const char *key, const char *url) {
        const PluginRequest *req = s->req;
        const BackupCallbacks *cb = s->cb;
        _cleanup_(fetch_response_done) FetchResponse resp = {};
        _cleanup_free_ char *sub = NULL, *name = NULL, *error = NULL, *path = NULL;
        _cleanup_close_ int dfd = -1, fd = -1;
        uint64_t timeout = req->pip_timeout_usec ?: PLUGIN_PIP_TIMEOUT_USEC;
        int work_fd = s->work_fd;
        PipRun run = {};
        int r;

        if (asprintf(&sub, "plugin-%zu", index) < 0)
                return -ENOMEM;
        if (mkdirat(work_fd, sub, 0700) < 0 ||
            (dfd = openat(work_fd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
            (fd = openat(dfd, "download", O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0) {
                r = -errno;
                backup_log(cb, LOG_ERR, "Installing plugin %s failed: cannot create a file in %s: %s", key,
                           req->work_dir, strerror(-r));
                return r == -ENOMEM ? r : 0;
        }

        r = download(s, url, req->max_archive_size ?: PLUGIN_ARCHIVE_MAX, ARCHIVE_DOWNLOAD_TIMEOUT_SEC, fd, &resp,
                     &error);
        if (r == -ECANCELED || r == -ENOMEM)
                goto finish;
        if (r < 0) {
                backup_log(cb, LOG_ERR, "Installing plugin %s failed: %s", key, error);
                r = 0;
                goto finish;
        }

        /* pip reads a wheel's name for what it is, and an sdist's extension for how to unpack it. */
        name = plugin_archive_name_from_url(url);
        if (!name && resp.effective_url)
                name = plugin_archive_name_from_url(resp.effective_url);
        if (!name && archive_name_by_content(fd))
                name = strdup(archive_name_by_content(fd));
        if (!name) {
                backup_log(cb, LOG_ERR, "Installing plugin %s failed: the download is neither a zip nor a tar "
                           "archive, pip cannot install it", key);
                r = 0;
                goto finish;
        }
        if (fsync(fd) < 0 || renameat(dfd, "download", dfd, name) < 0) {
                r = -errno;
                backup_log(cb, LOG_ERR, "Installing plugin %s failed: cannot store the download in %s: %s", key,
                           req->work_dir, strerror(-r));
                r = r == -ENOMEM ? r : 0;
                goto finish;
        }
        closep(&fd);

        if (asprintf(&path, "%s/%s/%s", req->work_dir, sub, name) < 0) {
                r = -ENOMEM;
                goto finish;
        }
        r = req->pip_run ? req->pip_run(req->work_dir, path, timeout, cb, &run, req->pip_userdata) : -EOPNOTSUPP;
        if (r == -EOPNOTSUPP) {
                free(run.output);
                run = (PipRun) {};
                r = plugin_pip_install(req->venv, path, req->work_dir, timeout, cb, &run.status, &run.timed_out,
                                       &run.output);
        }
        if (r == -ECANCELED || r == -ENOMEM)
                goto finish;
        if (r < 0)
                backup_log(cb, LOG_ERR, "Installing plugin %s failed: cannot run %s/bin/python: %s", key, req->venv,
                           strerror(-r));
        else if (run.timed_out)
                backup_log(cb, LOG_ERR, "Installing plugin %s failed: pip did not finish within %g s and was "
                           "stopped", key, (double) timeout / 1e6);
        else if (WIFEXITED(run.status) && WEXITSTATUS(run.status) == 0) {
                r = 1;
                goto finish;
        } else if (WIFEXITED(run.status))
                backup_log(cb, LOG_ERR, "Installing plugin %s failed: pip exited with status %d%s", key,
                           WEXITSTATUS(run.status), WEXITSTATUS(run.status) == 127 ? " (could not be started)" : "");
        else
                backup_log(cb, LOG_ERR, "Installing plugin %s failed: pip was killed by signal %s", key,
                           strsignal(WTERMSIG(run.status)));
        /* Output already streamed into the log is not repeated. */
        if (run.output && !run.logged)
                log_pip_tail(cb, run.output);
        if (!run.timed_out && pip_output_says_unreachable(run.output))
                log_pip_unreachable(cb, key);
        r = 0;
finish:
        free(run.output);
        closep(&fd);
        (void) unlinkat(dfd, "download", 0);
        if (name)
                (void) unlinkat(dfd, name, 0);
        (void) unlinkat(work_fd, sub, AT_REMOVEDIR);
        return r;
}

static int report_unknown(Reinstall *s, const PluginInfo *p, const char *key) {
        _cleanup_free_ char *name = plugin_log_string(p->name ?: p->key), *url = plugin_log_string(p->url ?: "no homepage known");

        backup_log(s->cb, LOG_WARNING, "Plugin %s is unknown: %s (%s)", key, name ?: "", url ?: "");
        return outcome_add(&s->out.unknown, &s->out.n_unknown, p);
}

/* Key, name and URL come from the backup: log lines get printable copies (plugin_log_string()). */
static int reinstall_one(Reinstall *s, size_t index, const PluginInfo *p) {
        _cleanup_free_ char *key = plugin_log_string(p->key), *url = NULL, *error = NULL;
        const RepoEntry *e;
        unsigned incompatible;
        int r;

        if (!key)
                return -ENOMEM;
        if (plugin_list_has(s->installed_now, s->n_installed_now, p->key)) {
                backup_log(s->cb, LOG_INFO, "Plugin %s is already installed", key);
                return outcome_add(&s->out.already, &s->out.n_already, p);
        }
        e = s->repo ? plugin_repository_find(s->repo, s->n_repo, p->key) : NULL;
        if (!e || isempty(e->archive)) {
                if (e)
                        backup_log(s->cb, LOG_WARNING, "Plugin %s has no archive in the plugin repository", key);
                return report_unknown(s, p, key);
        }
        incompatible = plugin_compatibility(e, s->req->octoprint_version, "linux");
        if (incompatible) {
                backup_log(s->cb, LOG_WARNING, "Plugin %s is not compatible with this %s, skipping", key,
                           incompatible == PLUGIN_INCOMPATIBLE_OS ? "operating system" :
                           incompatible == PLUGIN_INCOMPATIBLE_OCTOPRINT ? "OctoPrint version" :
                           "OctoPrint version and operating system");
                return report_unknown(s, p, key);
        }

        url = plugin_log_string(e->archive);
        if (!url)
                return -ENOMEM;
        if (s->req->dry_run) {
                backup_log(s->cb, LOG_INFO, "Plugin %s will be installed from %s", key, url);
                return outcome_add(&s->out.installed, &s->out.n_installed, p);
        }
        if (s->req->no_pip) {
                backup_log(s->cb, LOG_ERR, "Cannot install plugin %s from %s: there is no pip in %s (no %s/bin/pip)",
                           key, url, s->req->venv, s->req->venv);
                return outcome_add(&s->out.failed, &s->out.n_failed, p);
        }
        backup_log(s->cb, LOG_INFO, "Installing plugin %s from %s", key, url);
        r = install_one(s, index, key, e->archive);
        if (r < 0)
                return r;
        if (r == 0)
                return outcome_add(&s->out.failed, &s->out.n_failed, p);

        /* What pip installed may bring other plugins of the list along as dependencies: look again. */
        plugin_info_array_free(s->installed_now, s->n_installed_now);
        s->installed_now = NULL;
        s->n_installed_now = 0;
        r = installed_plugins(s->req->venv, &s->installed_now, &s->n_installed_now, &error);
        if (r == -ENOMEM)
                return r;
        if (r >= 0 && !plugin_list_has(s->installed_now, s->n_installed_now, p->key))
                backup_log(s->cb, LOG_WARNING, "Installed plugin %s, but no *.dist-info of the venv declares a "
                           "plugin with this identifier", key);
        else
                backup_log(s->cb, LOG_INFO, "Installed plugin %s", key);
        return outcome_add(&s->out.installed, &s->out.n_installed, p);
}

static size_t count_missing(const Reinstall *s) {
        const PluginRequest *req = s->req;
        size_t n = 0;

        for (size_t i = 0; i < req->n_plugins; i++)
                if (req->plugins[i].key && !plugin_list_has(s->installed_now, s->n_installed_now, req->plugins[i].key) &&
                    !plugin_list_has(req->plugins, i, req->plugins[i].key))
                        n++;
        return n;
}

static int reinstall_all(Reinstall *s, char **ret_error) {
        const PluginRequest *req = s->req;
        size_t missing;
        int r;

        r = installed_plugins(req->venv, &s->installed_now, &s->n_installed_now, ret_error);
        if (r < 0)
                return r;
        /* The stage starts here, before the repository's download: a client then shows "plugins 0 / N",
         * not a download of it knows not what. */
        r = backup_progress(s->cb, "plugins", 0, req->n_plugins);
        if (r < 0)
                goto fail;

        /* Only ask the network when something is to be installed. */
        missing = count_missing(s);
        if (missing > 0) {
                r = repository_load(s, missing);
                if (r < 0)
                        goto fail;
        }
        if (missing > 0 && s->repo && !req->dry_run && !req->no_pip) {
                s->work_fd = open(req->work_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (s->work_fd < 0) {
                        r = -errno;
                        if (asprintf(ret_error, "Cannot open the folder for plugin downloads %s: %s", req->work_dir,
                                     strerror(-r)) < 0)
                                *ret_error = NULL;
                        return r;
                }
        }

        for (size_t i = 0; i < req->n_plugins; i++) {
                const PluginInfo *p = &req->plugins[i];

                r = backup_progress(s->cb, "plugins", i, req->n_plugins);
                if (r < 0)
                        goto fail;
                if (!p->key || plugin_list_has(req->plugins, i, p->key))
                        continue;       /* listed twice: once is enough */
                r = reinstall_one(s, i, p);
                if (r < 0)
                        goto fail;
        }
        (void) backup_progress(s->cb, "plugins", req->n_plugins, req->n_plugins);
        return 0;
fail:
        if (r == -ECANCELED)
                *ret_error = strdup("Canceled");
        return r;
}

int plugins_reinstall(const PluginRequest *req, const BackupCallbacks *cb, PluginOutcome *ret, char **ret_error) {
        Reinstall s = { .req = req, .cb = cb, .work_fd = -1 };
        char *error = NULL;
        int r;

        if (!req || !ret || isempty(req->venv) || (!req->dry_run && isempty(req->work_dir)) ||
            (req->n_plugins > 0 && !req->plugins))
                return -EINVAL;
        if (req->n_plugins == 0) {
                *ret = (PluginOutcome) {};
                return 0;
        }
        /* 0 is a descriptor too: a request that left fetch_fd unset must not talk HTTP to its stdin. */
        if (req->fetch_fd >= 0) {
                struct stat st;

                if (fstat(req->fetch_fd, &st) < 0 || !S_ISSOCK(st.st_mode)) {
                        if (ret_error && asprintf(ret_error, "The connection to the fetch helper (fd %d) is not "
                                                  "a socket", req->fetch_fd) < 0)
                                *ret_error = NULL;
                        return -EBADF;
                }
        }
        r = reinstall_all(&s, &error);

        closep(&s.work_fd);
        plugin_info_array_free(s.installed_now, s.n_installed_now);
        repo_entry_array_free(s.repo, s.n_repo);
        if (r < 0) {
                plugin_outcome_done(&s.out);
                if (r == -ENOMEM && !error)
                        error = strdup("Out of memory");
                if (ret_error)
                        *ret_error = error;
                else
                        free(error);
                return r;
        }
        free(error);
        *ret = s.out;
        return 0;
}

int plugins_write_unknown(int dir_fd, const PluginInfo *p, size_t n, char **ret_error) {
        _cleanup_free_ char *json = NULL;
        char tmp[64];
        _cleanup_close_ int fd = -1;
        int r;

        if (n == 0)
                return 0;
        json = plugin_list_to_json(p, n);
        if (!json) {
                r = errno > 0 ? -errno : -ENOMEM;
                goto fail;
        }
        for (unsigned attempt = 0; fd < 0; attempt++) {
                uint64_t rnd = 0;

                if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
                        rnd = (uint64_t) getpid() << 16 ^ attempt;
                snprintf(tmp, sizeof(tmp), "." UNKNOWN_PLUGINS_FILE ".%016llx", (unsigned long long) rnd);
                /* 0600 like everything written into the backup folder: OctoPrint, which reads it, runs as
                 * the instance user, who owns it. */
                fd = openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (fd < 0 && (errno != EEXIST || attempt >= 16)) {
                        r = -errno;
                        goto fail;
                }
        }
        r = write_all(fd, json, strlen(json));
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (r >= 0 && renameat(dir_fd, tmp, dir_fd, UNKNOWN_PLUGINS_FILE) < 0)
                r = -errno;
        if (r < 0) {
                (void) unlinkat(dir_fd, tmp, 0);
                goto fail;
        }
        (void) fsync(dir_fd);
        return 0;
fail:
        if (ret_error &&
            asprintf(ret_error, "Cannot write %s in the backup folder: %s", UNKNOWN_PLUGINS_FILE, strerror(-r)) < 0)
                *ret_error = NULL;
        return r;
}
