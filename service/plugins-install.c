/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Running pip of the instance's venv on a downloaded plugin archive: fork+exec (no shell), its own process
 * group, a time limit, output captured (the tail is kept for the log). */

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "plugins.h"

/* What is kept of pip's output: enough for the error it ends with, bounded whatever pip prints. */
#define PIP_TAIL_MAX (8U * 1024U)

extern char **environ;

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

/* The worker's environment without what would make the venv's Python load something else, plus the
 * venv's bin first in PATH (pip may run build backends that call "python") and TMPDIR in the private
 * work folder (pip unpacks and builds there). Proxy settings and PIP_* configuration pass through. */
static char **pip_environment(const char *venv, const char *work_dir) {
        static const char *const drop[] = { "PATH=", "TMPDIR=", "VIRTUAL_ENV=", "PYTHONHOME=", "PYTHONPATH=",
                                            "PYTHONSTARTUP=", "PYTHONUSERBASE=", "PYTHONNOUSERSITE=" };
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
        if (asprintf(&s, "PATH=%s/bin:/usr/local/bin:/usr/bin:/bin", venv) < 0 || strv_consume(&env, s) < 0)
                return NULL;
        if (asprintf(&s, "VIRTUAL_ENV=%s", venv) < 0 || strv_consume(&env, s) < 0)
                return NULL;
        if (asprintf(&s, "TMPDIR=%s", work_dir) < 0 || strv_consume(&env, s) < 0)
                return NULL;
        /* User site-packages would let pip consider the plugin installed when it is not in the venv. */
        if (strv_extend(&env, "PYTHONNOUSERSITE=1") < 0)
                return NULL;
        if (!getenv("HOME") && strv_extend(&env, "HOME=/") < 0)
                return NULL;
        return TAKE_PTR(env);
}

_Noreturn static void pip_child(int out, const char *python, const char *file, const char *work_dir, char **env) {
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
        int r = 0;

        for (;;) {
                uint64_t now = now_usec(), wait;
                siginfo_t si = {};

                if (now >= deadline) {
                        *ret_timed_out = true;
                        break;
                }
                if (backup_progress(cb, "installing", 0, 0) < 0) {
                        r = -ECANCELED;
                        break;
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
        pid_t pid;

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
        pid = fork();
        if (pid < 0) {
                r = -errno;
                closep(&p[0]);
                closep(&p[1]);
                sigaction(SIGCHLD, &old_chld, NULL);
                return r;
        }
        if (pid == 0)
                pip_child(p[1], python, file, work_dir, env);
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
