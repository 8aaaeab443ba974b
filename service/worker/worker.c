/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "log.h"
#include "util.h"
#include "worker/privs.h"
#include "worker/worker-pipe.h"
#include "worker/worker.h"

#define WORKER_REPLY_MAX (64U * 1024U * 1024U)
#define WORKER_FRAME_MAX (4U * 1024U * 1024U)
#define WORKER_READ_BUDGET (1024U * 1024U)     /* bytes read per wake-up, so other callers get their turn */

void worker_reply_done(WorkerReply *r) {
        json_object_put(r->json);
        r->json = NULL;
        if (r->fd >= 0)
                close(r->fd);
        r->fd = -1;
}

json_object *worker_error(const char *format, ...) {
        json_object *o = json_object_new_object();
        char buf[1024];
        va_list ap;

        va_start(ap, format);
        vsnprintf(buf, sizeof(buf), format, ap);
        va_end(ap);
        json_object_object_add(o, "error", json_object_new_string(buf));
        return o;
}

/* In the child: the socket to the daemon, and whether the first byte went out (worker_send_frame()). */
static int child_sock = -1;
static bool child_header_sent;

/* First message: one byte, with the fd attached if there is one. Then frames (JSON text ending in a
 * newline, which JSON text never contains raw), then the answer's JSON text until EOF. */
static int send_header(int sock, int fd) {
        char byte = fd >= 0 ? 'F' : 'N';
        struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int))];
        } control = {};
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

        if (fd >= 0) {
                struct cmsghdr *c;
                mh.msg_control = &control;
                mh.msg_controllen = sizeof(control);
                c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(c), &fd, sizeof(int));
        }
        if (sendmsg(sock, &mh, MSG_NOSIGNAL) != 1)
                return -errno;
        return 0;
}

static int send_reply(int sock, json_object *json, int fd) {
        const char *text;
        int r;

        if (child_header_sent && fd >= 0)
                return -EINVAL;         /* a task that sent frames passes no fd */
        if (!child_header_sent) {
                r = send_header(sock, fd);
                if (r < 0)
                        return r;
        }
        text = json_object_to_json_string_ext(json, JSON_C_TO_STRING_PLAIN);
        return write_all(sock, text, strlen(text));
}

int worker_send_frame(json_object *frame) {
        const char *text;
        size_t n;
        int r;

        if (child_sock < 0)
                return -EBADF;
        if (!child_header_sent) {
                r = send_header(child_sock, -1);
                if (r < 0)
                        return r;
                child_header_sent = true;
        }
        text = json_object_to_json_string_ext(frame, JSON_C_TO_STRING_PLAIN);
        n = strlen(text);
        if (n >= WORKER_FRAME_MAX || memchr(text, '\n', n))
                return -EMSGSIZE;
        r = write_all(child_sock, text, n);
        if (r < 0)
                return r;
        return write_all(child_sock, "\n", 1);
}

static _Noreturn void worker_child(int sock, uid_t uid, gid_t gid, worker_task_fn task, void *userdata,
                                   int keep_fd) {
        int keep[2] = { sock, keep_fd };
        json_object *json = NULL;
        int fd = -1, r;

        close_all_fds_except(keep, keep_fd >= 0 ? 2 : 1);
        if (drop_privileges(uid, gid) < 0)
                _exit(EXIT_FAILURE);
        become_idle_priority();
        child_sock = sock;
        r = task(userdata, &json, &fd);
        if (r < 0 && !json)
                json = worker_error("%s", strerror(-r));
        if (!json || send_reply(sock, json, fd) < 0)
                _exit(EXIT_FAILURE);
        _exit(EXIT_SUCCESS);
}

/* ---- In the daemon: the child, its answer and its time limit as event sources ---- */

struct Worker {
        char *name;
        pid_t pid;
        int sock;
        sd_event_source *io, *child, *timer;
        bool got_header;        /* the first byte (and the fd) arrived */
        bool eof, exited, finished;
        bool counted;           /* in n_running */
        int error;              /* the first thing that went wrong, or 0 */
        int fd;                 /* passed by the child */
        char *text;
        size_t size, allocated;
        worker_done_fn done;
        worker_frame_fn frame;          /* or NULL: no frames expected */
        unsigned timeout_sec;
        void *userdata;
};

static unsigned n_running;

unsigned worker_running(void) {
        return n_running;
}

static void worker_fail(Worker *w, int error) {
        if (w->error == 0)
                w->error = error;
        if (w->pid > 0 && !w->exited)
                (void) kill(w->pid, SIGKILL);
        w->eof = true;          /* nothing more is read; the child's exit is still waited for */
        (void) sd_event_source_set_enabled(w->io, SD_EVENT_OFF);
}

static void worker_stop_sources(Worker *w) {
        (void) sd_event_source_set_enabled(w->io, SD_EVENT_OFF);
        (void) sd_event_source_set_enabled(w->timer, SD_EVENT_OFF);
}

/* The answer is complete and the child gone: hand it over. done() may free w. */
static void worker_finish(Worker *w) {
        WorkerReply reply = { .fd = -1 };
        int r = w->error;

        if (w->finished || !w->eof || !w->exited)
                return;
        w->finished = true;
        w->counted = false;
        n_running--;
        worker_stop_sources(w);
        if (r == 0 && !w->got_header)
                r = -EPROTO;
        if (r == 0) {
                reply.json = json_tokener_parse(strempty(w->text));
                if (!reply.json)
                        r = -EBADMSG;
        }
        if (r == 0)
                reply.fd = TAKE_FD(w->fd);
        if (r < 0)
                log_warning_errno(r, "Worker %s failed: %m", w->name);
        w->done(r, &reply, w->userdata);
        worker_reply_done(&reply);
}

/* Hands over the complete frames at the start of the text, and keeps the rest. */
static int worker_frames(Worker *w) {
        char *p = w->text, *nl;
        int r = 0;

        while (r >= 0 && (nl = memchr(p, '\n', w->size - (p - w->text)))) {
                json_object *frame;

                *nl = 0;
                frame = json_tokener_parse(p);
                p = nl + 1;
                if (!frame)
                        return -EBADMSG;
                r = w->frame(frame, w->userdata);
                json_object_put(frame);
                /* A worker that makes progress has the time limit again. */
                (void) sd_event_source_set_time_relative(w->timer, (uint64_t) w->timeout_sec * 1000000ULL);
        }
        w->size -= p - w->text;
        memmove(w->text, p, w->size);
        w->text[w->size] = 0;
        return r;
}

/* Reads what is there (up to a budget); sets w->eof at the end of the answer. */
static void worker_read(Worker *w) {
        size_t budget = WORKER_READ_BUDGET;

        while (!w->eof) {
                ssize_t k;

                if (!w->got_header) {
                        union {
                                struct cmsghdr h;
                                char buf[CMSG_SPACE(sizeof(int))];
                        } control = {};
                        char byte;
                        struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
                        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control,
                                             .msg_controllen = sizeof(control) };

                        k = recvmsg(w->sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
                        if (k < 0 && errno == EINTR)
                                continue;
                        if (k < 0 && errno == EAGAIN)
                                return;
                        if (k < 0)
                                return worker_fail(w, -errno);
                        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
                                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                                        if (w->fd >= 0)
                                                close(w->fd);
                                        memcpy(&w->fd, CMSG_DATA(c), sizeof(int));
                                }
                        if (k == 0)
                                return worker_fail(w, -EPROTO);
                        w->got_header = true;
                        continue;
                }
                if (w->allocated - w->size < 65536) {
                        size_t n = w->allocated ? w->allocated * 2 : 262144;
                        char *t;

                        if (n > (w->frame ? WORKER_FRAME_MAX : WORKER_REPLY_MAX) + 1)
                                return worker_fail(w, -EFBIG);
                        t = realloc(w->text, n);
                        if (!t)
                                return worker_fail(w, -ENOMEM);
                        w->text = t;
                        w->allocated = n;
                }
                k = read(w->sock, w->text + w->size, w->allocated - w->size - 1);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0 && errno == EAGAIN)
                        return;
                if (k < 0)
                        return worker_fail(w, -errno);
                if (k == 0) {
                        w->eof = true;
                        (void) sd_event_source_set_enabled(w->io, SD_EVENT_OFF);
                }
                w->size += k;
                w->text[w->size] = 0;
                if (w->frame && k > 0) {
                        int r = worker_frames(w);
                        if (r < 0)
                                return worker_fail(w, r);
                }
                if ((size_t) k >= budget)
                        return;         /* the rest at the next turn of the event loop */
                budget -= k;
        }
}

static int on_worker_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Worker *w = userdata;

        worker_read(w);
        worker_finish(w);
        return 0;
}

static int on_worker_exit(sd_event_source *s, const siginfo_t *si, void *userdata) {
        Worker *w = userdata;

        w->exited = true;
        w->pid = 0;
        /* What it wrote before exiting is in the socket. If something it started still holds the other
         * end, the end of the answer comes later, or the time limit. */
        worker_read(w);
        worker_finish(w);
        return 0;
}

static int on_worker_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Worker *w = userdata;

        log_warning("Worker %s (%d) did not answer in time; killing it.", w->name, (int) w->pid);
        worker_fail(w, -ETIMEDOUT);
        worker_finish(w);       /* waits for the exit SIGKILL brings */
        return 0;
}

int worker_start(sd_event *e, uid_t uid, gid_t gid, const char *name, unsigned timeout_sec, worker_task_fn task,
                 void *task_userdata, int keep_fd, worker_done_fn done, void *userdata, Worker **ret) {
        _cleanup_(worker_freep) Worker *w = NULL;
        int sv[2], r;

        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->sock = w->fd = -1;
        w->done = done;
        w->userdata = userdata;
        w->timeout_sec = timeout_sec;
        w->name = strdup(name);
        if (!w->name)
                return -ENOMEM;
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                return -errno;
        privs_groups_prepare(uid, gid);
        r = fork_worker(name, &w->pid);
        if (r < 0) {
                close(sv[0]);
                close(sv[1]);
                return r;
        }
        if (r == 0)
                worker_child(sv[1], uid, gid, task, task_userdata, keep_fd);
        close(sv[1]);
        w->sock = sv[0];
        /* Non-blocking on the daemon's side only: a read must never wait for a worker that has sent part
         * of its answer (a frame of a listing, then the rest a while later). */
        if (fcntl(w->sock, F_SETFL, O_NONBLOCK) < 0) {
                r = -errno;
                (void) kill(w->pid, SIGKILL);
                (void) waitpid(w->pid, NULL, 0);
                return r;
        }
        /* Owned: a worker freed before it ended is killed (and reaped) with its event source. */
        r = sd_event_add_child(e, &w->child, w->pid, WEXITED, on_worker_exit, w);
        if (r < 0) {
                (void) kill(w->pid, SIGKILL);
                (void) waitpid(w->pid, NULL, 0);
                return r;
        }
        (void) sd_event_source_set_child_process_own(w->child, true);
        (void) sd_event_source_set_description(w->child, name);
        w->counted = true;
        n_running++;
        r = sd_event_add_io(e, &w->io, w->sock, EPOLLIN, on_worker_io, w);
        if (r < 0)
                return r;
        r = sd_event_add_time_relative(e, &w->timer, CLOCK_MONOTONIC, (uint64_t) timeout_sec * 1000000ULL, 0,
                                       on_worker_timeout, w);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(w);
        return 0;
}

void worker_set_frame_handler(Worker *w, worker_frame_fn frame) {
        w->frame = frame;
}

Worker *worker_free(Worker *w) {
        if (!w)
                return NULL;
        if (w->counted)
                n_running--;
        sd_event_source_unref(w->io);
        sd_event_source_unref(w->timer);
        sd_event_source_unref(w->child);       /* kills and reaps a child still running */
        if (w->sock >= 0)
                close(w->sock);
        if (w->fd >= 0)
                close(w->fd);
        free(w->text);
        free(w->name);
        free(w);
        return NULL;
}

/* ---- At start-up: the same, on an event loop of its own ---- */

typedef struct SyncResult {
        sd_event *event;
        int r;
        WorkerReply *reply;
} SyncResult;

static void on_sync_done(int r, WorkerReply *reply, void *userdata) {
        SyncResult *s = userdata;

        s->r = r;
        if (r >= 0) {
                s->reply->json = TAKE_PTR(reply->json);
                s->reply->fd = TAKE_FD(reply->fd);
        }
        (void) sd_event_exit(s->event, 0);
}

int worker_run_sync(uid_t uid, gid_t gid, const char *name, unsigned timeout_sec, worker_task_fn task,
                    void *userdata, int keep_fd, WorkerReply *ret) {
        _cleanup_(worker_freep) Worker *w = NULL;
        SyncResult s = { .reply = ret };
        int r;

        *ret = (WorkerReply) { .fd = -1 };
        r = sd_event_new(&s.event);
        if (r < 0)
                return r;
        r = worker_start(s.event, uid, gid, name, timeout_sec, task, userdata, keep_fd, on_sync_done, &s, &w);
        if (r >= 0)
                r = sd_event_loop(s.event);
        if (r >= 0)
                r = s.r;
        w = worker_free(w);
        sd_event_unref(s.event);
        return r;
}
