/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "backup/hook-run.h"
#include "util.h"

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

void hook_result_done(HookResult *h) {
        free(h->out);
        free(h->err);
}

static int buf_append(char **buf, size_t *size, const char *data, size_t n, size_t max) {
        char *t;

        if (*size >= max)
                return 0;
        if (n > max - *size)
                n = max - *size;
        t = realloc(*buf, *size + n + 1);
        if (!t)
                return -ENOMEM;
        memcpy(t + *size, data, n);
        *size += n;
        t[*size] = 0;
        *buf = t;
        return 0;
}

_Noreturn static void hook_child(int in, int out, int err, const char *path, char **env) {
        char *argv[] = { (char *) path, NULL };
        sigset_t none;

        /* Move the pipe ends above 2 first, so that dup2() below cannot clobber one with another. */
        in = fcntl(in, F_DUPFD_CLOEXEC, 3);
        out = fcntl(out, F_DUPFD_CLOEXEC, 3);
        err = fcntl(err, F_DUPFD_CLOEXEC, 3);
        if (in < 0 || out < 0 || err < 0)
                _exit(127);
        if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
                _exit(127);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        for (int sig = 1; sig < NSIG; sig++)
                (void) signal(sig, SIG_DFL);
        (void) setpgid(0, 0);
        /* A hook must not outlive the worker that ran it (nor, through the worker, the daemon). */
        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (close_range(3, ~0U, 0) < 0)
                for (int fd = 3; fd < 65536; fd++)
                        (void) close(fd);
        if (chdir("/") < 0)
                _exit(127);
        execve(path, argv, env);
        _exit(127);
}

static int pipe_cloexec(int p[2]) {
        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        return 0;
}

static void close_pair(int p[2]) {
        closep(&p[0]);
        closep(&p[1]);
        p[0] = p[1] = -1;
}

static int hook_io(pid_t pid, int in, int out, int err, const char *input, uint64_t deadline, size_t max_output,
                   HookResult *h) {
        size_t in_len = strlen(input), in_done = 0;

        for (;;) {
                struct pollfd p[3];
                int n = 0, k;
                uint64_t now = now_usec();

                if (out < 0 && err < 0)
                        break;
                /* A canceled backup does not wait for its hooks. */
                if (now >= deadline || hook_run_abort) {
                        h->timed_out = true;
                        break;
                }
                if (in >= 0)
                        p[n++] = (struct pollfd) { .fd = in, .events = POLLOUT };
                if (out >= 0)
                        p[n++] = (struct pollfd) { .fd = out, .events = POLLIN };
                if (err >= 0)
                        p[n++] = (struct pollfd) { .fd = err, .events = POLLIN };
                k = poll(p, n, (int) ((deadline - now + 999) / 1000));
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                for (int i = 0; i < n; i++) {
                        char buf[16384];
                        ssize_t l;

                        if (!p[i].revents)
                                continue;
                        if (p[i].fd == in) {
                                l = write(in, input + in_done, in_len - in_done);
                                if (l < 0 && errno == EAGAIN)
                                        continue;
                                if (l > 0)
                                        in_done += l;
                                if (l < 0 || in_done >= in_len) {   /* EPIPE: the hook does not read */
                                        close(in);
                                        in = -1;
                                }
                                continue;
                        }
                        l = read(p[i].fd, buf, sizeof(buf));
                        if (l < 0 && (errno == EAGAIN || errno == EINTR))
                                continue;
                        if (l <= 0) {
                                if (p[i].fd == out)
                                        out = -1;
                                else
                                        err = -1;
                                close(p[i].fd);
                                continue;
                        }
                        if (p[i].fd == out) {
                                if (h->out_size + l > max_output) {
                                        h->too_large = true;
                                        goto done;
                                }
                                if (buf_append(&h->out, &h->out_size, buf, l, max_output) < 0)
                                        return -ENOMEM;
                        } else if (buf_append(&h->err, &h->err_size, buf, l, HOOK_STDERR_MAX) < 0)
                                return -ENOMEM;
                }
        }
done:
        if (in >= 0)
                close(in);
        if (out >= 0)
                close(out);
        if (err >= 0)
                close(err);

        /* The pipes are closed; give the process itself until the deadline to exit. */
        while (!h->timed_out && !h->too_large) {
                pid_t k = waitpid(pid, &h->status, WNOHANG);

                if (k == pid)
                        return 0;
                if (k < 0 && errno != EINTR)
                        return -errno;
                if (now_usec() >= deadline) {
                        h->timed_out = true;
                        break;
                }
                (void) nanosleep(&(struct timespec) { .tv_nsec = 5 * 1000 * 1000 }, NULL);
        }
        (void) kill(-pid, SIGKILL);
        (void) kill(pid, SIGKILL);
        while (waitpid(pid, &h->status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        return 0;
}

volatile sig_atomic_t hook_run_abort;

int hook_run(const char *path, char **env, const char *input, uint64_t timeout_usec, size_t max_output,
             HookResult *h) {
        int p_in[2] = { -1, -1 }, p_out[2] = { -1, -1 }, p_err[2] = { -1, -1 };
        struct sigaction sa_ign = { .sa_handler = SIG_IGN }, sa_dfl = { .sa_handler = SIG_DFL };
        struct sigaction old_pipe, old_chld;
        uint64_t deadline = now_usec() + timeout_usec;
        pid_t pid;
        int r;

        if ((r = pipe_cloexec(p_in)) < 0 || (r = pipe_cloexec(p_out)) < 0 || (r = pipe_cloexec(p_err)) < 0)
                goto finish;

        /* Writing to a hook that does not read its input must give EPIPE, not kill the worker; and its
         * exit status must be ours to collect. */
        sigaction(SIGPIPE, &sa_ign, &old_pipe);
        sigaction(SIGCHLD, &sa_dfl, &old_chld);

        pid = fork();
        if (pid < 0) {
                r = -errno;
                goto restore;
        }
        if (pid == 0)
                hook_child(p_in[0], p_out[1], p_err[1], path, env);
        (void) setpgid(pid, pid);     /* also here: a kill before the child got to it must reach the group */

        closep(&p_in[0]);
        closep(&p_out[1]);
        closep(&p_err[1]);
        (void) fcntl(p_in[1], F_SETFL, O_NONBLOCK);
        (void) fcntl(p_out[0], F_SETFL, O_NONBLOCK);
        (void) fcntl(p_err[0], F_SETFL, O_NONBLOCK);
        r = hook_io(pid, TAKE_FD(p_in[1]), TAKE_FD(p_out[0]), TAKE_FD(p_err[0]), input, deadline, max_output, h);
restore:
        sigaction(SIGPIPE, &old_pipe, NULL);
        sigaction(SIGCHLD, &old_chld, NULL);
finish:
        close_pair(p_in);
        close_pair(p_out);
        close_pair(p_err);
        return r;
}
