/* SPDX-License-Identifier: GPL-2.0-or-later */

/* pip as a transient unit of systemd, for a restore's plugins (restore-pip.h). opbackupd.service has no
 * network (PrivateNetwork=yes), so pip run by the worker could install no plugin whose dependencies the
 * venv lacks; a unit of its own has the network and, as the instance user in a sandbox where only the venv
 * and the work folder are writable, nothing else. */

#include <fcntl.h>
#include <poll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "daemon/job.h"
#include "daemon/transient-unit.h"
#include "instance/instance.h"
#include "log.h"
#include "plugins/plugins-install.h"
#include "restore/restore-job.h"
#include "restore/restore-pip.h"
#include "util.h"
#include "worker/worker-pipe.h"

/* What the answer keeps of pip's output, for the worker to tell why pip failed; the whole output is in
 * the job's log. */
#define PIP_REPLY_TAIL_MAX (8U * 1024U)
/* An answer longer than this is not from the daemon. */
#define PIP_REPLY_MAX (64U * 1024U)
#define PIP_CANCEL_CHECK_MSEC 250

struct RestorePip {
        Job *job;
        TransientService *unit;
        char *tail;
        size_t tail_len;
};

extern char **environ;

/* ---- In the daemon ---- */

RestorePip *restore_pip_free(RestorePip *p) {
        if (!p)
                return NULL;
        transient_service_free(p->unit);
        free(p->tail);
        free(p);
        return NULL;
}

int restore_pip_setup(Job *j) {
        RestoreJobData *d = j->data;
        int s[2];

        if (!transient_units_possible())
                return 0;
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s) < 0)
                return -errno;
        d->pip_fd = s[0];
        d->pip_worker_fd = s[1];
        return 1;
}

/* Sends one answer; a worker that is gone (canceled) is not an error, and never a SIGPIPE. */
static void reply(Job *j, json_object *o) {
        RestoreJobData *d = j->data;
        const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
        _cleanup_free_ char *line = NULL;

        if (d->pip_fd >= 0 && asprintf(&line, "%s\n", s) >= 0) {
                size_t n = strlen(line), done = 0;

                while (done < n) {
                        ssize_t k = send(d->pip_fd, line + done, n - done, MSG_NOSIGNAL);
                        if (k < 0 && errno == EINTR)
                                continue;
                        if (k <= 0)
                                break;
                        done += k;
                }
        }
        json_object_put(o);
}

static void reply_fallback(Job *j) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "fallback", json_object_new_boolean(true));
        reply(j, o);
}

static void on_pip_line(const char *line, void *userdata) {
        RestorePip *p = userdata;
        _cleanup_free_ char *clean = plugin_log_string(line), *l = NULL;
        size_t n = strlen(line);

        if (clean && asprintf(&l, "  pip: %s", clean) >= 0)
                job_log(p->job, LOG_INFO, l);
        /* The tail, whole lines, for the worker's verdict on why pip failed. */
        if (n + 1 > PIP_REPLY_TAIL_MAX)
                return;
        while (p->tail_len > 0 && p->tail_len + n + 1 > PIP_REPLY_TAIL_MAX) {
                char *nl = memchr(p->tail, '\n', p->tail_len);
                size_t drop = nl ? (size_t) (nl - p->tail) + 1 : p->tail_len;

                p->tail_len -= drop;
                memmove(p->tail, p->tail + drop, p->tail_len);
        }
        memcpy(p->tail + p->tail_len, line, n);
        p->tail[p->tail_len + n] = '\n';
        p->tail_len += n + 1;
}

static void on_pip_done(int r, const TransientServiceResult *res, const char *message, void *userdata) {
        RestorePip *p = userdata;
        Job *j = p->job;
        RestoreJobData *d = j->data;
        json_object *o;
        char line[1024];
        int status = 0;
        bool timed_out = false;

        if (r < 0 && r != -ETIMEDOUT) {
                snprintf(line, sizeof(line), "Cannot run pip as a transient unit of systemd: %s Running it in the "
                         "restore's worker instead, inside opbackupd's sandbox, which has no network.", message);
                job_log(j, LOG_WARNING, line);
                reply_fallback(j);
                goto finish;
        }
        if (r == -ETIMEDOUT || streq(res->result, "timeout"))
                timed_out = true;
        else if (res->exit_code == CLD_EXITED)
                status = W_EXITCODE(res->exit_status & 0xff, 0);
        else if (res->exit_code == CLD_KILLED || res->exit_code == CLD_DUMPED)
                status = res->exit_status & 0x7f;
        else
                status = W_EXITCODE(127, 0);     /* it never ran */
        if (r == 0 && !streq(res->result, "success")) {
                snprintf(line, sizeof(line), "pip's unit ended with result '%s'", res->result);
                job_log(j, LOG_INFO, line);
        }
        o = json_object_new_object();
        json_object_object_add(o, "status", json_object_new_int(status));
        json_object_object_add(o, "timed_out", json_object_new_boolean(timed_out));
        json_object_object_add(o, "output", json_object_new_string_len(p->tail ?: "", p->tail ? (int) p->tail_len : 0));
        reply(j, o);
finish:
        d->pip = restore_pip_free(d->pip);      /* p, and the unit with it */
}

/* "plugin-N/NAME": relative, no empty, "." or ".." component, nothing a command line could take for an
 * option, printable. */
static bool valid_relative_file(const char *s) {
        const char *c = s;

        if (isempty(s) || strlen(s) > 1024 || s[0] == '/')
                return false;
        for (const unsigned char *u = (const unsigned char *) s; *u; u++)
                if (*u < 0x20 || *u == 0x7f)
                        return false;
        while (*c) {
                size_t n = strcspn(c, "/");

                if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.') || c[0] == '-')
                        return false;
                c += n;
                if (*c == '/')
                        c++;
        }
        return s[strlen(s) - 1] != '/';
}

static bool valid_work_name(const char *s) {
        if (!startswith(s, PIP_WORK_PREFIX))
                return false;
        s += strlen(PIP_WORK_PREFIX);
        return strlen(s) == 16 && strspn(s, "0123456789abcdef") == 16;
}

/* The work folder must be the instance user's folder inside staging, the file a regular file in it: what
 * the worker names is checked where the daemon, not the worker, says it is. */
static int check_request(Job *j, const char *dir, const char *file, char **ret_error) {
        RestoreJobData *d = j->data;
        _cleanup_close_ int dfd = -1;
        struct stat st;

        if (!valid_work_name(dir) || !valid_relative_file(file))
                return asprintf(ret_error, "The worker asked for pip on a file outside its work folder; refused.") < 0
                       ? -ENOMEM : -EPERM;
        dfd = openat(d->staging_fd, dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0 || fstat(dfd, &st) < 0 || st.st_uid != j->instance->uid ||
            fstatat(dfd, file, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
                return asprintf(ret_error, "The plugin's download %s/%s/%s is not a file of %s's work folder; "
                                "refused.", d->plan.staging, dir, file, j->instance->name) < 0 ? -ENOMEM : -EPERM;
        return 0;
}

/* The worker's environment for pip (plugins-install.c) as far as the unit needs it: systemd sets HOME, USER
 * and LOGNAME for User=; proxy settings and PIP_* configuration of the daemon pass through. */
static char **pip_unit_environment(const char *venv, const char *work_dir) {
        static const char *const pass[] = { "PIP_", "http_proxy=", "https_proxy=", "no_proxy=", "all_proxy=",
                                            "HTTP_PROXY=", "HTTPS_PROXY=", "NO_PROXY=", "ALL_PROXY=" };
        _cleanup_strv_free_ char **env = NULL;

        for (char **e = environ; e && *e; e++)
                for (size_t k = 0; k < ELEMENTSOF(pass); k++)
                        if (startswith(*e, pass[k]) && strv_extend(&env, *e) < 0)
                                return NULL;
        if (pip_environment_add_venv(&env, venv, work_dir) < 0)
                return NULL;
        return TAKE_PTR(env);
}

static int start_unit(Job *j, const char *dir, const char *file, uint64_t timeout_usec) {
        RestoreJobData *d = j->data;
        Instance *i = j->instance;
        _cleanup_free_ char *work = NULL, *path = NULL, *python = NULL, *unit = NULL, *user = NULL, *group = NULL;
        _cleanup_free_ char *desc = NULL;
        _cleanup_strv_free_ char **env = NULL;
        uint64_t rnd = 0;
        RestorePip *p;
        int r;

        if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != sizeof(rnd))
                rnd = (uint64_t) time(NULL) << 20 ^ (uint64_t) getpid();
        if (asprintf(&work, "%s/%s", d->plan.staging, dir) < 0 || asprintf(&path, "%s/%s", work, file) < 0 ||
            asprintf(&python, "%s/bin/python", i->venv) < 0 ||
            asprintf(&unit, "opbackup-pip-%" PRIu32 "-%016llx.service", j->id, (unsigned long long) rnd) < 0 ||
            asprintf(&user, "%u", (unsigned) i->uid) < 0 || asprintf(&group, "%u", (unsigned) i->gid) < 0 ||
            asprintf(&desc, "pip for a restore of OctoPrint instance %s (opbackupd)", i->name) < 0)
                return -ENOMEM;
        env = pip_unit_environment(i->venv, work);
        if (!env)
                return -ENOMEM;
        p = calloc(1, sizeof(*p));
        if (!p || !(p->tail = malloc(PIP_REPLY_TAIL_MAX))) {
                free(p);
                return -ENOMEM;
        }
        p->job = j;
        r = transient_service_start(j->daemon->bus, &(TransientServiceSpec) {
                        .unit = unit,
                        .description = desc,
                        .argv = (char *[]) { python, (char *) "-m", (char *) "pip", (char *) "install",
                                             (char *) "--no-cache-dir", (char *) "--disable-pip-version-check",
                                             (char *) "--no-input", path, NULL },
                        .user = user,
                        .group = group,
                        .working_directory = work,
                        .environment = env,
                        .read_write_paths = (char *[]) { i->venv, work, NULL },
                        .timeout_usec = timeout_usec,
                }, on_pip_line, on_pip_done, p, &p->unit);
        if (r < 0) {
                restore_pip_free(p);
                return r;
        }
        d->pip = p;
        return 0;
}

bool restore_pip_on_message(Job *j, json_object *msg) {
        RestoreJobData *d = j->data;
        _cleanup_free_ char *error = NULL;
        json_object *req, *v;
        const char *dir = NULL, *file = NULL;
        uint64_t timeout = 0;
        int r;

        if (!json_object_object_get_ex(msg, "pip", &req))
                return false;
        if (json_object_object_get_ex(req, "dir", &v))
                dir = json_object_get_string(v);
        if (json_object_object_get_ex(req, "file", &v))
                file = json_object_get_string(v);
        if (json_object_object_get_ex(req, "timeout_usec", &v))
                timeout = json_object_get_uint64(v);
        /* The worker's wish, within the limit every install has. */
        if (timeout == 0 || timeout > PLUGIN_PIP_TIMEOUT_USEC)
                timeout = PLUGIN_PIP_TIMEOUT_USEC;
        if (d->pip_fd < 0)
                return true;            /* nobody to answer: the worker was told to run pip itself */
        if (d->pip) {
                job_log(j, LOG_WARNING, "The worker asked for pip while pip runs; refused.");
                reply_fallback(j);
                return true;
        }
        r = check_request(j, strempty(dir), strempty(file), &error);
        if (r >= 0)
                r = start_unit(j, dir, file, timeout);
        if (r < 0) {
                char line[1024];

                snprintf(line, sizeof(line), "Cannot run pip as a transient unit of systemd: %s",
                         error ?: strerror(-r));
                job_log(j, LOG_WARNING, line);
                reply_fallback(j);
        }
        return true;
}

void restore_pip_cancel(Job *j) {
        RestoreJobData *d = j->data;

        if (d->pip)
                transient_service_stop(d->pip->unit);
}

/* ---- In the worker, as the instance user ---- */

/* One line from the daemon, while asking the job whether to go on. */
static int read_reply(int fd, const BackupCallbacks *cb, json_object **ret) {
        _cleanup_free_ char *buf = malloc(PIP_REPLY_MAX + 1);
        size_t len = 0;

        if (!buf)
                return -ENOMEM;
        for (;;) {
                struct pollfd pfd = { .fd = fd, .events = POLLIN };
                char *nl;
                ssize_t k;

                if (backup_progress(cb, "installing", 0, 0) < 0)
                        return -ECANCELED;
                if (poll(&pfd, 1, PIP_CANCEL_CHECK_MSEC) < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (pfd.revents == 0)
                        continue;
                k = read(fd, buf + len, PIP_REPLY_MAX - len);
                if (k < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (k <= 0)
                        return k < 0 ? -errno : -EPIPE;
                len += k;
                buf[len] = 0;
                nl = memchr(buf, '\n', len);
                if (nl) {
                        *nl = 0;
                        *ret = json_tokener_parse(buf);
                        return *ret ? 0 : -EBADMSG;
                }
                if (len == PIP_REPLY_MAX)
                        return -EBADMSG;
        }
}

int restore_pip_run(const char *work_dir, const char *file, uint64_t timeout_usec, const BackupCallbacks *cb,
                    PipRun *ret, void *userdata) {
        RestorePipClient *c = userdata;
        size_t sl = strlen(c->staging), wl = strlen(work_dir);
        json_object *o, *req, *answer = NULL, *v;
        int r;

        if (c->reply_fd < 0)
                return -EOPNOTSUPP;
        /* The daemon knows staging: it is told names inside it, never paths. */
        if (strncmp(work_dir, c->staging, sl) != 0 || work_dir[sl] != '/' || strncmp(file, work_dir, wl) != 0 ||
            file[wl] != '/')
                return -EOPNOTSUPP;
        o = json_object_new_object();
        req = json_object_new_object();
        json_object_object_add(req, "dir", json_object_new_string(work_dir + sl + 1));
        json_object_object_add(req, "file", json_object_new_string(file + wl + 1));
        json_object_object_add(req, "timeout_usec", json_object_new_uint64(timeout_usec));
        json_object_object_add(o, "pip", req);
        r = worker_send(c->send_fd, o);
        if (r < 0)
                return r;
        r = read_reply(c->reply_fd, cb, &answer);
        if (r < 0)
                return r;
        if (json_object_object_get_ex(answer, "fallback", &v) && json_object_get_boolean(v)) {
                json_object_put(answer);
                return -EOPNOTSUPP;
        }
        *ret = (PipRun) { .logged = true };
        if (json_object_object_get_ex(answer, "status", &v))
                ret->status = json_object_get_int(v);
        if (json_object_object_get_ex(answer, "timed_out", &v))
                ret->timed_out = json_object_get_boolean(v);
        if (json_object_object_get_ex(answer, "output", &v) && !(ret->output = strdup(json_object_get_string(v))))
                r = -ENOMEM;
        json_object_put(answer);
        return r;
}
