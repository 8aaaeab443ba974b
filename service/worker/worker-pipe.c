/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <dirent.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <time.h>

#include "backup/hook-run.h"
#include "log.h"
#include "util.h"
#include "worker/privs.h"
#include "worker/worker-pipe.h"

/* A line longer than this is a broken or hostile worker. */
#define WORKER_LINE_MAX (256U * 1024U)

volatile sig_atomic_t worker_cancel_requested;

struct WorkerPipe {
        sd_event_source *io, *child;
        int fd;
        pid_t pid;
        char *buf;
        size_t len;
        worker_message_fn on_message;
        worker_exit_fn on_exit;
        void *userdata;
        bool broken;
};

static int cmp_int(const void *a, const void *b) {
        return (*(const int *) a > *(const int *) b) - (*(const int *) a < *(const int *) b);
}

/* close_range() over the gaps between the descriptors to keep: a few syscalls, where walking
 * /proc/self/fd costs some per descriptor (and a worker starts for every ListBackups). */
static bool close_ranges(const int *keep, size_t n_keep) {
        int sorted[16];
        unsigned lo = 3;

        if (n_keep > ELEMENTSOF(sorted))
                return false;
        memcpy(sorted, keep, n_keep * sizeof(int));
        qsort(sorted, n_keep, sizeof(int), cmp_int);
        for (size_t i = 0; i < n_keep; i++) {
                if (sorted[i] < (int) lo)
                        continue;
                if ((unsigned) sorted[i] > lo && close_range(lo, (unsigned) sorted[i] - 1, 0) < 0)
                        return false;
                lo = (unsigned) sorted[i] + 1;
        }
        return close_range(lo, ~0U, 0) >= 0;
}

void close_all_fds_except(const int *keep, size_t n_keep) {
        DIR *d;
        struct dirent *de;

        if (close_ranges(keep, n_keep))
                return;
        d = opendir("/proc/self/fd");     /* kernels before 5.9 */

        if (!d) {
                for (int fd = 3; fd < 4096; fd++) {
                        bool k = false;
                        for (size_t i = 0; i < n_keep; i++)
                                k = k || keep[i] == fd;
                        if (!k)
                                close(fd);
                }
                return;
        }
        while ((de = readdir(d))) {
                int fd = atoi(de->d_name);
                bool k = fd < 3 || fd == dirfd(d) || de->d_name[0] == '.';

                for (size_t i = 0; i < n_keep; i++)
                        k = k || keep[i] == fd;
                if (!k)
                        close(fd);
        }
        closedir(d);
}

int worker_send(int fd, json_object *msg) {
        const char *s = json_object_to_json_string_ext(msg, JSON_C_TO_STRING_PLAIN);
        size_t n = strlen(s);
        _cleanup_free_ char *line = malloc(n + 2);
        int r;

        if (!line) {
                json_object_put(msg);
                return -ENOMEM;
        }
        memcpy(line, s, n);
        line[n] = '\n';
        r = write_all(fd, line, n + 1);
        json_object_put(msg);
        return r;
}

void worker_report_log(int level, const char *line, void *userdata) {
        WorkerReporter *w = userdata;
        json_object *o = json_object_new_object();

        json_object_object_add(o, "log", json_object_new_string(line));
        json_object_object_add(o, "level", json_object_new_int(level));
        (void) worker_send(w->fd, o);
}

int worker_report_progress(const char *stage, uint64_t done, uint64_t total, void *userdata) {
        WorkerReporter *w = userdata;
        struct timespec ts;
        json_object *o;
        uint64_t now;

        if (worker_cancel_requested)
                return -ECANCELED;
        /* The daemon rate-limits its signals anyway; don't flood the pipe either. */
        clock_gettime(CLOCK_MONOTONIC, &ts);
        now = (uint64_t) ts.tv_sec * 1000000000ULL + ts.tv_nsec;
        if (done < total && now < w->last_progress_ns + 50000000ULL && streq_ptr(stage, w->last_stage))
                return 0;
        w->last_progress_ns = now;
        free(w->last_stage);
        w->last_stage = strdup(stage);

        o = json_object_new_object();
        json_object_object_add(o, "stage", json_object_new_string(stage));
        json_object_object_add(o, "done", json_object_new_uint64(done));
        json_object_object_add(o, "total", json_object_new_uint64(total));
        (void) worker_send(w->fd, o);
        return 0;
}

static void deliver_lines(WorkerPipe *w) {
        char *start = w->buf, *nl;

        while ((nl = memchr(start, '\n', w->buf + w->len - start))) {
                json_object *msg;

                *nl = 0;
                msg = json_tokener_parse(start);
                if (msg) {
                        w->on_message(msg, w->userdata);
                        json_object_put(msg);
                } else
                        log_warning("Worker %d sent a malformed message; ignored.", (int) w->pid);
                start = nl + 1;
        }
        w->len -= start - w->buf;
        memmove(w->buf, start, w->len);
}

/* Reads what is there; returns 0 at EOF, 1 if more may come. */
static int drain(WorkerPipe *w) {
        for (;;) {
                ssize_t k;

                if (w->broken)
                        return 0;
                if (w->len >= WORKER_LINE_MAX) {
                        log_error("Worker %d sent an overlong message; stopping it.", (int) w->pid);
                        w->broken = true;
                        worker_pipe_kill(w, SIGKILL);
                        return 0;
                }
                k = read(w->fd, w->buf + w->len, WORKER_LINE_MAX - w->len);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0 && errno == EAGAIN)
                        return 1;
                if (k <= 0)
                        return 0;
                w->len += k;
                deliver_lines(w);
        }
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        WorkerPipe *w = userdata;

        if (drain(w) == 0)
                (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
        return 0;
}

static int on_child(sd_event_source *s, const siginfo_t *si, void *userdata) {
        WorkerPipe *w = userdata;

        /* Whatever it wrote before exiting is still in the pipe: deliver it first. */
        (void) sd_event_source_set_enabled(w->io, SD_EVENT_OFF);
        (void) drain(w);
        w->pid = 0;
        w->on_exit(si->si_code, si->si_status, w->userdata);
        return 0;
}

static void child_on_sigterm(int sig) {
        worker_cancel_requested = 1;
        hook_run_abort = 1;
}

int worker_pipe_start(sd_event *e, uid_t uid, gid_t gid, const char *name, worker_main_fn main_fn,
                      void *main_userdata, const int *keep_fds, size_t n_keep_fds, worker_message_fn on_message,
                      worker_exit_fn on_exit, void *userdata, WorkerPipe **ret) {
        WorkerPipe *w;
        int fds[2], r;
        pid_t pid;

        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->buf = malloc(WORKER_LINE_MAX + 1);
        if (!w->buf) {
                free(w);
                return -ENOMEM;
        }
        w->on_message = on_message;
        w->on_exit = on_exit;
        w->userdata = userdata;
        if (pipe2(fds, O_CLOEXEC) < 0) {
                r = -errno;
                goto fail;
        }
        privs_groups_prepare(uid, gid);
        r = fork_worker(name, &pid);
        if (r < 0) {
                close(fds[0]);
                close(fds[1]);
                goto fail;
        }
        if (r == 0) {
                int keep[16];
                size_t n = 0;
                struct sigaction sa = { .sa_handler = child_on_sigterm };

                keep[n++] = fds[1];
                for (size_t k = 0; k < n_keep_fds && n < ELEMENTSOF(keep); k++)
                        keep[n++] = keep_fds[k];
                close_all_fds_except(keep, n);
                sigaction(SIGTERM, &sa, NULL);
                if (drop_privileges(uid, gid) < 0)
                        _exit(EXIT_FAILURE);
                become_idle_priority();
                _exit(main_fn(fds[1], main_userdata));
        }
        close(fds[1]);
        w->fd = fds[0];
        w->pid = pid;
        (void) fcntl(w->fd, F_SETFL, O_NONBLOCK);
        r = sd_event_add_io(e, &w->io, w->fd, EPOLLIN, on_io, w);
        if (r >= 0)
                r = sd_event_add_child(e, &w->child, pid, WEXITED, on_child, w);
        /* Owned: a worker freed while it runs (the daemon stopping) is killed and reaped with its source. */
        if (r >= 0)
                (void) sd_event_source_set_child_process_own(w->child, true);
        if (r < 0) {
                kill(pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
                w->pid = 0;
                goto fail;
        }
        *ret = w;
        return 0;
fail:
        worker_pipe_free(w);
        return r;
}

void worker_pipe_kill(WorkerPipe *w, int sig) {
        if (w && w->pid > 0)
                (void) kill(w->pid, sig);
}

pid_t worker_pipe_pid(WorkerPipe *w) {
        return w ? w->pid : 0;
}

WorkerPipe *worker_pipe_free(WorkerPipe *w) {
        if (!w)
                return NULL;
        sd_event_source_unref(w->io);
        sd_event_source_unref(w->child);       /* kills and reaps a child still running */
        if (w->fd > 0)
                close(w->fd);
        free(w->buf);
        free(w);
        return NULL;
}
