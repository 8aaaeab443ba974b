/* SPDX-License-Identifier: GPL-2.0-or-later */

/* Waiting for a job of opbackupd to end (backup, restore): its JobRemoved signal, its progress and log
 * lines on the way, Ctrl-C, and noticing when the service goes away.
 *
 * The service sends job signals only to subscribers and to the job's starter (org.opbackup.backup1(5)),
 * and a job may end right after it starts. So job_watch_new() installs every match and subscribes *before*
 * the caller starts the job; what arrives meanwhile waits in sd-bus's queue until job_watch_wait()
 * dispatches it. */

#include <ctype.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <systemd/sd-event.h>

#include "bus-client.h"
#include "errors.h"
#include "job-wait.h"
#include "util.h"

#define CANCEL_TIMEOUT_USEC (5ULL * 60 * 1000000)      /* polkit may ask a person for a password */
#define JOB_PATH_PREFIX OBJECT_ROOT "/job"

struct JobWatch {
        Ctl *ctl;
        const char *what;               /* "backup", "restore": for messages */
        bool log_info;                  /* print info log lines too, not only warnings and errors */
        bool show_progress;             /* a progress bar on stderr */
        bool interactive;               /* Ctrl-C asks on the terminal */
        sd_event *event;
        sd_bus_slot *slots[5];
        char *owner;                    /* the service's unique name: only it may tell us about jobs */

        uint32_t id;
        char *path;

        char *stage;
        double progress;
        uint64_t bytes_done, bytes_total;
        uint64_t items_done, items_total;
        bool bar_visible;

        bool cancel_sent;
        sd_bus_message *removed;        /* our JobRemoved, read up to its details */
        int exit_code;
};

bool job_watch_from_service(JobWatch *w, sd_bus_message *m) {
        /* Anyone on the bus may send us a signal; believe only the service we subscribed at. */
        return w->owner && streq_ptr(sd_bus_message_get_sender(m), w->owner);
}

static bool is_our_job(JobWatch *w, sd_bus_message *m) {
        return w->path && job_watch_from_service(w, m) && streq_ptr(sd_bus_message_get_path(m), w->path);
}

/* ---- The progress bar ---- */

static void bar_clear(JobWatch *w) {
        if (!w->bar_visible)
                return;
        fputs("\r\033[K", stderr);
        fflush(stderr);
        w->bar_visible = false;
}

static unsigned terminal_columns(void) {
        struct winsize ws = {};

        if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) < 0 || ws.ws_col < 20)
                return 80;
        return ws.ws_col > 300 ? 300 : ws.ws_col;
}

static void bar_draw(JobWatch *w) {
        char text[128] = "", done[16], total[16], bar[64];
        unsigned cols = terminal_columns(), width;
        double p = w->progress < 0 ? 0 : w->progress > 1 ? 1 : w->progress;
        int n;

        if (!w->show_progress || !w->path)
                return;
        /* A stage counts bytes or items (files, plugins), never both: "3 / 7" is not "3 B / 7 B". */
        if (w->bytes_total > 0)
                snprintf(text, sizeof(text), "%3u%%  %s / %s", (unsigned) (p * 100),
                         format_bytes(done, sizeof(done), w->bytes_done),
                         format_bytes(total, sizeof(total), w->bytes_total));
        else if (w->items_total > 0)
                snprintf(text, sizeof(text), "%3u%%  %llu / %llu", (unsigned) (p * 100),
                         (unsigned long long) w->items_done, (unsigned long long) w->items_total);
        if (*text) {
                /* "Job N stage [####....] text": the bar takes what is left of the line, within reason. */
                n = snprintf(NULL, 0, "Job %u %-10s [] %s", w->id, strempty(w->stage), text);
                width = cols > (unsigned) n + 2 ? cols - (unsigned) n - 2 : 0;
                if (width > sizeof(bar) - 1)
                        width = sizeof(bar) - 1;
                if (width >= 10) {
                        unsigned fill = (unsigned) (p * width);
                        memset(bar, '#', fill);
                        memset(bar + fill, '.', width - fill);
                        bar[width] = 0;
                        fprintf(stderr, "\rJob %u %-10s [%s] %s\033[K", w->id, strempty(w->stage), bar, text);
                } else
                        fprintf(stderr, "\rJob %u %-10s %s\033[K", w->id, strempty(w->stage), text);
        } else if (streq_ptr(w->stage, "scanning") && w->items_done > 0)
                fprintf(stderr, "\rJob %u scanning: %llu file%s\033[K", w->id, (unsigned long long) w->items_done,
                        w->items_done == 1 ? "" : "s");
        else
                fprintf(stderr, "\rJob %u %s...\033[K", w->id, strempty(w->stage));
        fflush(stderr);
        w->bar_visible = true;
}

/* Reads the a{sv} of GetAll or PropertiesChanged into what the bar shows. */
static int job_property(sd_bus_message *m, const char *key, const char *contents, void *userdata) {
        JobWatch *w = userdata;
        const char *s;
        int r;

        if (streq(key, "Stage") && streq(contents, "s")) {
                r = sd_bus_message_read(m, "v", "s", &s);
                return r < 0 ? r : free_and_strdup(&w->stage, s) < 0 ? -ENOMEM : 1;
        }
        if (streq(key, "Progress") && streq(contents, "d"))
                return sd_bus_message_read(m, "v", "d", &w->progress);
        if (streq(key, "BytesDone") && streq(contents, "t"))
                return sd_bus_message_read(m, "v", "t", &w->bytes_done);
        if (streq(key, "BytesTotal") && streq(contents, "t"))
                return sd_bus_message_read(m, "v", "t", &w->bytes_total);
        if (streq(key, "ItemsDone") && streq(contents, "t"))
                return sd_bus_message_read(m, "v", "t", &w->items_done);
        if (streq(key, "ItemsTotal") && streq(contents, "t"))
                return sd_bus_message_read(m, "v", "t", &w->items_total);
        return 0;
}

static int read_job_properties(JobWatch *w, sd_bus_message *m) {
        return ctl_read_dict(m, job_property, w);
}

/* ---- Signal handlers ---- */

static void finish(JobWatch *w, int code) {
        w->exit_code = code;
        (void) sd_event_exit(w->event, code);
}

static int on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        JobWatch *w = userdata;
        const char *iface;

        if (!is_our_job(w, m))
                return 0;
        if (sd_bus_message_read(m, "s", &iface) < 0 || !streq(iface, JOB_INTERFACE))
                return 0;
        if (read_job_properties(w, m) >= 0)
                bar_draw(w);
        return 0;
}

static int on_log(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        JobWatch *w = userdata;
        const char *level, *line;
        bool important;

        if (!is_our_job(w, m) || sd_bus_message_read(m, "ss", &level, &line) < 0)
                return 0;
        important = streq(level, "warning") || streq(level, "error");
        if (!important && (!w->log_info || w->ctl->quiet))
                return 0;
        bar_clear(w);
        if (important)
                fprintf(stderr, "%s: %s\n", streq(level, "error") ? "Error" : "Warning", line);
        else
                fprintf(stderr, "%s\n", line);
        bar_draw(w);
        return 0;
}

/* Whether the details a{sv} of a JobRemoved say "skipped": a print-aware backup that did not run because
 * the printer was busy (or could not be asked), by configuration rather than by anyone's Cancel. */
static bool details_say_skipped(sd_bus_message *m) {
        const char *key, *contents;
        int skipped = 0;

        if (sd_bus_message_enter_container(m, 'a', "{sv}") < 0)
                return false;
        while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
                if (sd_bus_message_read(m, "s", &key) < 0 || sd_bus_message_peek_type(m, NULL, &contents) < 0)
                        return false;
                if (streq(key, "skipped") && streq(contents, "b")) {
                        if (sd_bus_message_read(m, "v", "b", &skipped) < 0)
                                return false;
                } else if (sd_bus_message_skip(m, "v") < 0)
                        return false;
                if (sd_bus_message_exit_container(m) < 0)
                        return false;
        }
        return skipped;
}

static int on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        JobWatch *w = userdata;
        const char *path, *result, *error;
        uint32_t id;

        if (!job_watch_from_service(w, m) || !w->path)
                return 0;
        if (sd_bus_message_read(m, "uoss", &id, &path, &result, &error) < 0 || id != w->id)
                return 0;
        bar_clear(w);
        w->removed = sd_bus_message_ref(m);
        if (streq(result, "done"))
                finish(w, EXIT_OK);
        else if (streq(result, "canceled") && details_say_skipped(m)) {
                const char *why = startswith(strempty(error), "Skipped: ") ?: strempty(error);

                fprintf(stderr, "%c%s skipped: %s\n", toupper(w->what[0]), w->what + 1,
                        isempty(why) ? "(no reason given)" : why);
                finish(w, EXIT_BUSY);
        } else if (streq(result, "canceled")) {
                /* "Backup canceled.", or with the service's words if they add something. */
                bool plain = isempty(error) || strcasecmp(error, "canceled") == 0 || strcasecmp(error, "canceled.") == 0;
                fprintf(stderr, "%c%s canceled%s%s\n", toupper(w->what[0]), w->what + 1, plain ? "." : ": ",
                        plain ? "" : error);
                finish(w, EXIT_FAIL);
        } else {
                fprintf(stderr, "%c%s failed: %s\n", toupper(w->what[0]), w->what + 1,
                        isempty(error) ? "(no reason given)" : error);
                finish(w, EXIT_FAIL);
        }
        return 0;
}

static int on_name_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        JobWatch *w = userdata;
        const char *name, *old_owner, *new_owner;

        if (!streq_ptr(sd_bus_message_get_sender(m), "org.freedesktop.DBus") ||
            sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0 ||
            !streq(name, BUS_NAME) || !streq_ptr(old_owner, w->owner))
                return 0;
        bar_clear(w);
        fprintf(stderr, "The opbackup service stopped while job %u was running; what became of the %s is "
                "unknown. Check with 'opbackupctl list' and the service's log.\n", w->id, w->what);
        finish(w, EXIT_FAIL);
        return 0;
}

static int on_disconnected(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        JobWatch *w = userdata;

        bar_clear(w);
        fprintf(stderr, "Lost the connection to the bus while waiting for job %u.\n", w->id);
        finish(w, EXIT_FAIL);
        return 0;
}

/* ---- Canceling ---- */

static int on_cancel_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        JobWatch *w = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);
        char doing[64];
        int code;

        /* The job ended meanwhile: its JobRemoved is on its way (or here already). */
        if (!e || sd_bus_error_has_name(e, BUS_ERROR_NO_SUCH_JOB) ||
            sd_bus_error_has_name(e, SD_BUS_ERROR_UNKNOWN_OBJECT))
                return 0;
        bar_clear(w);
        snprintf(doing, sizeof(doing), "cancel job %" PRIu32, w->id);
        code = ctl_report_error_as(w->ctl, doing, "Cancel", e, -EIO);
        fprintf(stderr, "Job %u keeps running; see 'opbackupctl jobs'.\n", w->id);
        finish(w, code);
        return 0;
}

static int send_cancel(JobWatch *w) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        r = sd_bus_message_new_method_call(w->ctl->bus, &m, BUS_NAME, w->path, JOB_INTERFACE, "Cancel");
        if (r >= 0)
                r = sd_bus_call_async(w->ctl->bus, NULL, m, on_cancel_reply, w, CANCEL_TIMEOUT_USEC);
        if (r < 0) {
                bar_clear(w);
                fprintf(stderr, "Cannot ask to cancel job %u: %s\n", w->id, strerror(-r));
                finish(w, EXIT_FAIL);
                return r;
        }
        w->cancel_sent = true;
        if (!w->ctl->quiet) {
                bar_clear(w);
                fprintf(stderr, "Canceling job %u...\n", w->id);
                bar_draw(w);
        }
        return 0;
}

/* Asks on the terminal whether to cancel. 1: yes; 0: no (also on end of input or another Ctrl-C). */
static int ask_cancel(JobWatch *w) {
        _cleanup_close_ int sfd = -1;
        char answer[32], *a;
        size_t n = 0;
        sigset_t ss;

        /* SIGINT is blocked (sd-event reads it from a signalfd); our own signalfd lets a second Ctrl-C
         * end the question instead of going unnoticed. */
        sigemptyset(&ss);
        sigaddset(&ss, SIGINT);
        sfd = signalfd(-1, &ss, SFD_CLOEXEC | SFD_NONBLOCK);

        fprintf(stderr, "Cancel the %s job %u? [y/N] (N leaves it running in the background) ",
                w->what, w->id);
        fflush(stderr);
        for (;;) {
                struct pollfd p[2] = {
                        { .fd = STDIN_FILENO, .events = POLLIN },
                        { .fd = sfd, .events = POLLIN },
                };
                ssize_t k;

                if (poll(p, sfd >= 0 ? 2 : 1, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return 0;
                }
                if (sfd >= 0 && (p[1].revents & POLLIN)) {
                        struct signalfd_siginfo si;
                        (void) read(sfd, &si, sizeof(si));
                        fputc('\n', stderr);
                        return 0;
                }
                k = read(STDIN_FILENO, answer + n, sizeof(answer) - 1 - n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0) {
                        fputc('\n', stderr);
                        return 0;
                }
                n += (size_t) k;
                if (memchr(answer, '\n', n) || n >= sizeof(answer) - 1)
                        break;
        }
        answer[n] = 0;
        a = answer + strspn(answer, " \t");
        a[strcspn(a, " \t\r\n")] = 0;
        return strcasecmp(a, "y") == 0 || strcasecmp(a, "yes") == 0;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        JobWatch *w = userdata;

        bar_clear(w);
        if (w->cancel_sent) {
                fprintf(stderr, "Stopped waiting; job %u is being canceled (see 'opbackupctl jobs').\n", w->id);
                finish(w, EXIT_FAIL);
                return 0;
        }
        /* A person at a terminal may only want their prompt back; a script or systemd stopping us means
         * the job should not go on alone. */
        if (si->ssi_signo == SIGINT && w->interactive && ask_cancel(w) == 0) {
                fprintf(stderr, "Job %u keeps running; see 'opbackupctl jobs'.\n", w->id);
                finish(w, EXIT_OK);
                return 0;
        }
        (void) send_cancel(w);
        return 0;
}

/* ---- Setting up and waiting ---- */

static int add_match(JobWatch *w, size_t k, const char *rule, sd_bus_message_handler_t callback) {
        return sd_bus_add_match(w->ctl->bus, &w->slots[k], rule, callback, w);
}

static int get_owner(JobWatch *w) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *owner;
        int r;

        r = sd_bus_call_method(w->ctl->bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                               "org.freedesktop.DBus", "GetNameOwner", &error, &reply, "s", BUS_NAME);
        if (r < 0)
                return ctl_report_error(w->ctl, "GetNameOwner", &error, r);
        r = sd_bus_message_read(reply, "s", &owner);
        if (r < 0)
                return ctl_report_error(w->ctl, NULL, NULL, r);
        return free_and_strdup(&w->owner, owner) < 0 ? ctl_report_error(w->ctl, NULL, NULL, -ENOMEM) : 0;
}

int job_watch_new(Ctl *ctl, const char *what, bool log_info, JobWatch **ret) {
        JobWatch *w;
        sigset_t ss;
        int r;

        /* From here on SIGINT and SIGTERM wait for job_watch_wait() (sd-event reads them from a signalfd,
         * so they must be blocked anyway): one that comes while the job is being started still cancels
         * it, or asks, instead of killing us and leaving the job to run unwatched. */
        r = ctl_connect(ctl);
        if (r != 0)
                return r;

        sigemptyset(&ss);
        sigaddset(&ss, SIGINT);
        sigaddset(&ss, SIGTERM);
        sigprocmask(SIG_BLOCK, &ss, NULL);

        w = calloc(1, sizeof(*w));
        if (!w)
                return ctl_report_error(ctl, NULL, NULL, -ENOMEM);
        w->ctl = ctl;
        w->what = what;
        w->log_info = log_info;
        /* A progress bar on stderr: a terminal, and not -q. */
        w->show_progress = !ctl->quiet && isatty(STDERR_FILENO);
        w->interactive = isatty(STDIN_FILENO) && isatty(STDERR_FILENO);

        /* The local matches check the sender again (job_watch_from_service()): sd-bus compares the
         * well-known name with the message's unique sender name only on the broker's side. */
        r = add_match(w, 0, "type='signal',sender='" BUS_NAME "',path='" OBJECT_ROOT "',"
                      "interface='" MANAGER_INTERFACE "',member='JobRemoved'", on_job_removed);
        if (r >= 0)
                r = add_match(w, 1, "type='signal',sender='" BUS_NAME "',"
                              "interface='org.freedesktop.DBus.Properties',member='PropertiesChanged',"
                              "path_namespace='" JOB_PATH_PREFIX "',arg0='" JOB_INTERFACE "'", on_properties_changed);
        if (r >= 0)
                r = add_match(w, 2, "type='signal',sender='" BUS_NAME "',interface='" JOB_INTERFACE "',"
                              "member='Log',path_namespace='" JOB_PATH_PREFIX "'", on_log);
        if (r >= 0)
                r = add_match(w, 3, "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
                              "interface='org.freedesktop.DBus',member='NameOwnerChanged',"
                              "arg0='" BUS_NAME "'", on_name_owner_changed);
        if (r >= 0)
                r = sd_bus_match_signal(ctl->bus, &w->slots[4], NULL, "/org/freedesktop/DBus/Local",
                                        "org.freedesktop.DBus.Local", "Disconnected", on_disconnected, w);
        if (r < 0) {
                job_watch_free(w);
                fprintf(stderr, "Cannot watch for the signals of the opbackup service: %s\n", strerror(-r));
                return EXIT_FAIL;
        }

        /* Subscribing may start the service (bus activation); only then does it have an owner. */
        r = ctl_call(ctl, OBJECT_ROOT, MANAGER_INTERFACE, "Subscribe", NULL, NULL);
        if (r == 0)
                r = get_owner(w);
        if (r != 0) {
                job_watch_free(w);
                return r;
        }
        *ret = w;
        return 0;
}

JobWatch *job_watch_free(JobWatch *w) {
        if (!w)
                return NULL;
        for (size_t k = 0; k < ELEMENTSOF(w->slots); k++)
                sd_bus_slot_unref(w->slots[k]);
        if (w->event) {
                (void) sd_bus_detach_event(w->ctl->bus);
                sd_event_unref(w->event);
        }
        sd_bus_message_unref(w->removed);
        free(w->owner);
        free(w->path);
        free(w->stage);
        free(w);
        return NULL;
}

static void initial_progress(JobWatch *w) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;

        /* The job may have ended already (its JobRemoved is queued then): nothing to show. */
        if (!w->show_progress ||
            sd_bus_call_method(w->ctl->bus, BUS_NAME, w->path, "org.freedesktop.DBus.Properties",
                               "GetAll", NULL, &reply, "s", JOB_INTERFACE) < 0)
                return;
        if (read_job_properties(w, reply) >= 0)
                bar_draw(w);
}

int job_watch_wait(JobWatch *w, uint32_t id, const char *path, sd_bus_message **ret_removed) {
        int r;

        *ret_removed = NULL;
        w->id = id;
        if (free_and_strdup(&w->path, path) < 0)
                return ctl_report_error(w->ctl, NULL, NULL, -ENOMEM);

        r = sd_event_new(&w->event);
        if (r >= 0)
                r = sd_event_add_signal(w->event, NULL, SIGINT, on_signal, w);
        if (r >= 0)
                r = sd_event_add_signal(w->event, NULL, SIGTERM, on_signal, w);
        if (r >= 0)
                r = sd_bus_attach_event(w->ctl->bus, w->event, SD_EVENT_PRIORITY_NORMAL);
        /* The connection outlives this wait (scheduled-backup prunes after it): the end of our event loop
         * must not close it, as sd-bus does by default. */
        if (r >= 0)
                r = sd_bus_set_close_on_exit(w->ctl->bus, false);
        if (r < 0) {
                fprintf(stderr, "Cannot wait for job %u: %s\n", id, strerror(-r));
                return EXIT_FAIL;
        }

        initial_progress(w);
        r = sd_event_loop(w->event);
        bar_clear(w);
        if (r < 0) {
                fprintf(stderr, "Waiting for job %u failed: %s\n", id, strerror(-r));
                return EXIT_FAIL;
        }
        if (w->exit_code == EXIT_OK && w->removed)
                *ret_removed = sd_bus_message_ref(w->removed);
        return w->exit_code;
}
