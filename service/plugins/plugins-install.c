/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Running pip of the instance's venv on a downloaded plugin archive: fork+exec (no shell), its own process
 * group, a time limit, output captured (the tail is kept for the log). */

#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>

#include "plugins/plugins.h"

/* How often a running pip asks the job whether to go on (the answer is all the job gets: no progress
 * to tell while pip runs). */
#define PIP_CANCEL_CHECK_USEC (250U * 1000U)

/* What is kept of pip's output: enough for the error it ends with, bounded whatever pip prints. */
#define PIP_TAIL_MAX (8U * 1024U)

extern char **environ;

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

int pip_environment_add_venv(char ***env, const char *venv, const char *work_dir) {
        char *s;

        if (asprintf(&s, "PATH=%s/bin:/usr/local/bin:/usr/bin:/bin", venv) < 0 || strv_consume(env, s) < 0)
                return -ENOMEM;
        if (asprintf(&s, "VIRTUAL_ENV=%s", venv) < 0 || strv_consume(env, s) < 0)
                return -ENOMEM;
        if (asprintf(&s, "TMPDIR=%s", work_dir) < 0 || strv_consume(env, s) < 0)
                return -ENOMEM;
        /* User site-packages would let pip consider the plugin installed when it is not in the venv. */
        return strv_extend(env, "PYTHONNOUSERSITE=1");
}

/* The worker's environment without what would make the venv's Python load something else or read another
 * user's configuration; plus the venv's bin first in PATH (pip may run build backends that call "python"),
 * TMPDIR in the private work folder (pip unpacks and builds there) and the user's HOME. Proxy settings and
 * PIP_* configuration pass through. */
static char **pip_environment(const char *venv, const char *work_dir) {
        static const char *const drop[] = { "PATH=", "TMPDIR=", "VIRTUAL_ENV=", "PYTHONHOME=", "PYTHONPATH=",
                                            "PYTHONSTARTUP=", "PYTHONUSERBASE=", "PYTHONNOUSERSITE=", "HOME=",
                                            "XDG_CONFIG_HOME=", "XDG_CACHE_HOME=", "XDG_DATA_HOME=" };
        struct passwd *pw = getpwuid(geteuid());
        _cleanup_strv_free_ char **env = NULL;
        char *s;

        for (char **e = environ; e && *e; e++) {
                bool skip = false;

                for (size_t i = 0; i < ELEMENTSOF(drop); i++)
                        if (startswith(*e, drop[i]))
                                skip = true;
                if (!skip && strv_extend(&env, *e) < 0)
                        return NULL;
        }
        if (pip_environment_add_venv(&env, venv, work_dir) < 0)
                return NULL;
        /* The instance user's own pip configuration applies, not that of whoever started the daemon. */
        if (asprintf(&s, "HOME=%s", pw && pw->pw_dir && *pw->pw_dir ? pw->pw_dir : "/") < 0 ||
            strv_consume(&env, s) < 0)
                return NULL;
        return TAKE_PTR(env);
}

_Noreturn static void pip_child(pid_t parent, int out, const char *python, const char *file, const char *work_dir,
                                char **env) {
        char *argv[] = { (char *) python, (char *) "-m", (char *) "pip", (char *) "install", (char *) "--no-cache-dir",
                         (char *) "--disable-pip-version-check", (char *) "--no-input", (char *) file, NULL };
        sigset_t none;
        int null;

        null = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null < 0 || (out = fcntl(out, F_DUPFD_CLOEXEC, 3)) < 0)
                _exit(127);
        if (dup2(null, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
                _exit(127);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        for (int sig = 1; sig < NSIG; sig++)
                (void) signal(sig, SIG_DFL);
        (void) setpgid(0, 0);
        /* pip must not outlive the worker that runs it (killed when its job is canceled hard). */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
                _exit(127);
        if (close_range(3, ~0U, 0) < 0)
                for (int fd = 3; fd < 65536; fd++)
                        (void) close(fd);
        if (chdir(work_dir) < 0)
                _exit(127);
        execve(python, argv, env);
        fprintf(stderr, "Cannot execute %s: %m\n", python);
        _exit(127);
}

/* Appends data, keeping only the last PIP_TAIL_MAX bytes. */
static void tail_append(char *tail, size_t *len, const char *data, size_t n) {
        if (n > PIP_TAIL_MAX) {
                data += n - PIP_TAIL_MAX;
                n = PIP_TAIL_MAX;
        }
        if (*len + n > PIP_TAIL_MAX) {
                size_t drop = *len + n - PIP_TAIL_MAX;
                memmove(tail, tail + drop, *len - drop);
                *len -= drop;
        }
        memcpy(tail + *len, data, n);
        *len += n;
}

/* Reads whatever output is there without blocking; false at end of file. */
static bool pip_drain(int out, char *tail, size_t *tail_len) {
        char buf[4096];

        for (;;) {
                ssize_t l = read(out, buf, sizeof(buf));

                if (l > 0) {
                        tail_append(tail, tail_len, buf, l);
                        continue;
                }
                if (l < 0 && errno == EINTR)
                        continue;
                return l < 0;          /* EAGAIN: open but empty; 0 or other errors: done */
        }
}

/* Reads pip's output until pip exits, the deadline passes, or the job is canceled; then kills what is
 * left of its process group (before reaping pip, so the group id cannot have been reused) and reaps it. */
static int pip_wait(pid_t pid, int out, uint64_t deadline, const BackupCallbacks *cb, int *ret_status,
                    bool *ret_timed_out, char *tail, size_t *tail_len) {
        uint64_t last_check = 0;
        int r = 0;

        for (;;) {
                uint64_t now = now_usec(), wait;
                siginfo_t si = {};

                if (now >= deadline) {
                        *ret_timed_out = true;
                        break;
                }
                if (now >= last_check + PIP_CANCEL_CHECK_USEC) {
                        last_check = now;
                        if (backup_progress(cb, "installing", 0, 0) < 0) {
                                r = -ECANCELED;
                                break;
                        }
                }
                wait = deadline - now < 200000 ? deadline - now : 200000;
                if (out >= 0) {
                        struct pollfd p = { .fd = out, .events = POLLIN };

                        if (poll(&p, 1, (int) ((wait + 999) / 1000)) < 0 && errno != EINTR) {
                                r = -errno;
                                break;
                        }
                        if (p.revents && !pip_drain(out, tail, tail_len))
                                closep(&out);
                } else
                        (void) nanosleep(&(struct timespec) { .tv_nsec = 20 * 1000 * 1000 }, NULL);

                /* Exited? (WNOWAIT: not reaped yet.) Something pip started may still hold the pipe open;
                 * that does not keep us waiting. */
                if (waitid(P_PID, pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0 && errno != EINTR) {
                        r = -errno;
                        break;
                }
                if (si.si_pid == pid) {
                        if (out >= 0)
                                (void) pip_drain(out, tail, tail_len);
                        break;
                }
        }
        closep(&out);
        (void) kill(-pid, SIGKILL);
        while (waitpid(pid, ret_status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        return r;
}

/* The tail cut to whole lines (the first may be partial), NUL-terminated. */
static char *tail_lines(const char *tail, size_t len) {
        const char *start = tail, *nl;

        if (len >= PIP_TAIL_MAX && (nl = memchr(tail, '\n', len)))
                start = nl + 1;
        return strndup(start, len - (start - tail));
}

int plugin_pip_install(const char *venv, const char *file, const char *work_dir, uint64_t timeout_usec,
                       const BackupCallbacks *cb, int *ret_status, bool *ret_timed_out, char **ret_output) {
        struct sigaction sa_dfl = { .sa_handler = SIG_DFL }, old_chld;
        _cleanup_strv_free_ char **env = NULL;
        _cleanup_free_ char *python = NULL, *tail = NULL;
        int p[2] = { -1, -1 }, r;
        size_t tail_len = 0;
        pid_t pid, parent;

        *ret_status = 0;
        *ret_timed_out = false;
        if (asprintf(&python, "%s/bin/python", venv) < 0)
                return -ENOMEM;
        env = pip_environment(venv, work_dir);
        tail = malloc(PIP_TAIL_MAX);
        if (!env || !tail)
                return -ENOMEM;
        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;

        /* pip's exit status must be ours to collect, whatever the worker does with SIGCHLD. */
        sigaction(SIGCHLD, &sa_dfl, &old_chld);
        parent = getpid();
        pid = fork();
        if (pid < 0) {
                r = -errno;
                closep(&p[0]);
                closep(&p[1]);
                sigaction(SIGCHLD, &old_chld, NULL);
                return r;
        }
        if (pid == 0)
                pip_child(parent, p[1], python, file, work_dir, env);
        (void) setpgid(pid, pid);     /* also here: a kill before the child got to it must reach the group */
        closep(&p[1]);
        (void) fcntl(p[0], F_SETFL, O_NONBLOCK);

        r = pip_wait(pid, TAKE_FD(p[0]), now_usec() + timeout_usec, cb, ret_status, ret_timed_out, tail, &tail_len);
        sigaction(SIGCHLD, &old_chld, NULL);
        if (r < 0)
                return r;
        *ret_output = tail_lines(tail, tail_len);
        return *ret_output ? 0 : -ENOMEM;
}

bool pip_output_says_unreachable(const char *output) {
        /* What pip (and the pip run to install an sdist's build requirements) prints when an index cannot
         * give it a requirement: the first two end every such failure, the others name the cause when
         * there is no connection at all. */
        static const char *const signs[] = {
                "Could not find a version that satisfies the requirement",
                "No matching distribution found for",
                "Failed to establish a new connection",
                "Temporary failure in name resolution",
                "Name or service not known",
                "Network is unreachable",
                "Max retries exceeded with url",
                "Could not fetch URL",
        };

        if (!output)
                return false;
        for (size_t i = 0; i < ELEMENTSOF(signs); i++)
                if (strstr(output, signs[i]))
                        return true;
        return false;
}
