/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Waiting while the printer prints, before a "when-idle" backup (printer-wait.h). The key file is read by
 * the daemon, as root; the asking and waiting is done by a worker that is the instance user (the key is
 * that user's OctoPrint's own, which the user can read in config.yaml anyway) and gets the key in the
 * memory fork() copied. */

#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "daemon/job.h"
#include "fetch/fetch-client.h"
#include "instance/instance.h"
#include "log.h"
#include "printer/printer-state.h"
#include "printer/printer-wait.h"
#include "util.h"
#include "worker/worker-pipe.h"

#define API_KEY_FILE_MAX 4096U
#define API_KEY_MAX 256U
#define ANSWER_SIZE_MAX (256U * 1024U)
#define REQUEST_TIMEOUT_SEC 10U
#define USEC_PER_SEC 1000000ULL

struct PrinterWait {
        Job *job;
        printer_wait_done_fn done;
        WorkerPipe *worker;

        /* For the worker (copied by fork()). */
        char *url;
        char *key_header;
        int helper_fd;                  /* -1: the worker asks OctoPrint itself */
        unsigned poll_sec, max_sec;
        PrintAction on_still_printing, on_printer_unknown;

        /* What the worker said. */
        bool have_verdict;
        PrinterVerdict verdict;
        char *reason;
        bool cancel_requested;
};

const char *format_duration(char *buf, size_t size, unsigned long long sec) {
        if (sec < 60)
                snprintf(buf, size, "%llu s", sec);
        else if (sec < 3600)
                snprintf(buf, size, "%llu min", (sec + 30) / 60);
        else if (sec % 3600 < 60)
                snprintf(buf, size, "%llu h", sec / 3600);
        else
                snprintf(buf, size, "%llu h %llu min", sec / 3600, (sec % 3600) / 60);
        return buf;
}

PrinterWait *printer_wait_free(PrinterWait *w) {
        if (!w)
                return NULL;
        worker_pipe_free(w->worker);
        if (w->key_header) {
                explicit_bzero(w->key_header, strlen(w->key_header));
                free(w->key_header);
        }
        if (w->helper_fd >= 0)
                close(w->helper_fd);
        free(w->url);
        free(w->reason);
        free(w);
        return NULL;
}

static bool key_char_ok(char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr("-_.~+/=", c);
}

int printer_read_api_key(const char *path, char **ret_key, char **ret_why) {
        _cleanup_free_ char *data = NULL;
        _cleanup_close_ int fd = -1;
        struct stat st;
        size_t size, n;
        int r;

        *ret_key = *ret_why = NULL;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
        if (fd < 0) {
                r = -errno;
                return asprintf(ret_why, "Cannot open the API key file %s: %s", path, strerror(-r)) < 0 ? -ENOMEM : r;
        }
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return asprintf(ret_why, "Not using the API key file %s: it is not a regular file", path) < 0
                        ? -ENOMEM : -EBADF;
        /* Anyone who could write it could point the daemon at another key; anyone who could read it
         * would learn the key. */
        if (st.st_uid != 0 || (st.st_mode & 077) != 0)
                return asprintf(ret_why, "Not using the API key file %s: it is owned by uid %u with mode %04o, "
                                "but must be root's and readable by root only (chown root:root, chmod 600)",
                                path, (unsigned) st.st_uid, (unsigned) (st.st_mode & 07777)) < 0 ? -ENOMEM : -EPERM;
        r = read_full_fd(fd, API_KEY_FILE_MAX, &data, &size);
        if (r < 0)
                return asprintf(ret_why, "Cannot read the API key file %s: %s", path,
                                r == -EFBIG ? "it is too large for an API key" : strerror(-r)) < 0 ? -ENOMEM : r;
        n = strspn(data, " \t\r\n");
        memmove(data, data + n, size - n + 1);
        n = strcspn(data, " \t\r\n");
        for (size_t k = 0; k < n; k++)
                if (!key_char_ok(data[k]))
                        n = 0;
        if (n == 0 || n > API_KEY_MAX || data[n + strspn(data + n, " \t\r\n")] != 0)
                return asprintf(ret_why, "The API key file %s does not hold one API key (letters, digits, "
                                "'-', '_' and the like, on one line)", path) < 0 ? -ENOMEM : -EINVAL;
        data[n] = 0;
        *ret_key = TAKE_PTR(data);
        return 0;
}

/* ---- In the worker, as the instance user ---- */

static void say(WorkerReporter *rep, int level, const char *format, ...) _printf_(3, 4);
static void say(WorkerReporter *rep, int level, const char *format, ...) {
        char line[1024];
        va_list ap;

        va_start(ap, format);
        vsnprintf(line, sizeof(line), format, ap);
        va_end(ap);
        worker_report_log(level, line, rep);
}

static int send_verdict(int fd, PrinterVerdict verdict, const char *reason) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "verdict",
                               json_object_new_string(verdict == PRINTER_VERDICT_SKIP ? "skip" : "backup"));
        if (reason)
                json_object_object_add(o, "reason", json_object_new_string(reason));
        return worker_send(fd, o) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* Microseconds, not whole seconds: with a clock read in seconds, a wait begun late in one second has
 * "waited" a second as soon as the next one starts, and PrintWaitMaxSec would end up to a second early. */
static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000U;
}

/* Sleeps, waking up early when the job is canceled (SIGTERM interrupts nanosleep). */
static void nap(uint64_t usec) {
        struct timespec left = { .tv_sec = (time_t) (usec / USEC_PER_SEC),
                                 .tv_nsec = (long) (usec % USEC_PER_SEC) * 1000L };

        while (!worker_cancel_requested && nanosleep(&left, &left) < 0 && errno == EINTR)
                ;
}

static int check_canceled(uint64_t done, uint64_t total, void *userdata) {
        return worker_cancel_requested ? -ECANCELED : 0;
}

/* Asks once: the activity, and in *ret_what the state or why there is none. */
static int ask(const PrinterWait *w, char **ret_what) {
        char *const headers[] = { w->key_header, NULL };
        FetchRequest req = {
                .url = w->url,
                .headers = headers,
                .max_size = ANSWER_SIZE_MAX,
                .timeout_sec = REQUEST_TIMEOUT_SEC,
                .progress = check_canceled,
        };
        _cleanup_(fetch_response_done) FetchResponse resp = {};
        int r;

        r = fetch_get(w->helper_fd, &req, -1, &resp);
        if (r < 0) {
                /* Without the helper, the worker is inside opbackupd's sandbox, which has no network. */
                r = asprintf(ret_what, "Cannot reach OctoPrint at %s: %s%s", w->url, strempty(resp.error),
                             w->helper_fd < 0 ? " (asked without the opbackup-fetch helper: is "
                             "opbackup-fetch.socket running?)" : "");
                return r < 0 ? -ENOMEM : PRINTER_UNKNOWN;
        }
        return printer_activity_from_answer(resp.status, resp.body, resp.size, ret_what);
}

static int printer_wait_main(int fd, void *userdata) {
        PrinterWait *w = userdata;
        WorkerReporter rep = { .fd = fd };
        _cleanup_free_ char *last = NULL;
        uint64_t start = now_usec(), poll_usec = w->poll_sec * USEC_PER_SEC, max_usec = w->max_sec * USEC_PER_SEC;
        char t1[32], t2[32];

        say(&rep, LOG_INFO, "Asking OctoPrint at %s whether the printer is busy.", w->url);
        for (;;) {
                _cleanup_free_ char *what = NULL;
                uint64_t waited;
                int a;

                a = ask(w, &what);
                if (a < 0)
                        return EXIT_FAILURE;
                if (worker_cancel_requested)
                        return EXIT_FAILURE;
                waited = now_usec() - start;
                if (a == PRINTER_IDLE) {
                        if (last)
                                say(&rep, LOG_INFO, "OctoPrint reports \"%s\" after %s of waiting: backing up now.",
                                    what, format_duration(t1, sizeof(t1), waited / USEC_PER_SEC));
                        else
                                say(&rep, LOG_INFO, "OctoPrint reports \"%s\": backing up now.", what);
                        return send_verdict(fd, PRINTER_VERDICT_BACKUP, NULL);
                }
                if (a == PRINTER_UNKNOWN) {
                        char reason[1024];

                        if (w->on_printer_unknown != PRINT_ACTION_SKIP) {
                                say(&rep, LOG_WARNING, "%s; backing up without knowing whether the printer is busy "
                                    "(OnPrinterUnknown=backup).", what);
                                return send_verdict(fd, PRINTER_VERDICT_BACKUP, NULL);
                        }
                        snprintf(reason, sizeof(reason), "Skipped: %s (OnPrinterUnknown=skip)", what);
                        say(&rep, LOG_NOTICE, "%s.", reason);
                        return send_verdict(fd, PRINTER_VERDICT_SKIP, reason);
                }

                /* Busy. */
                if (!streq_ptr(last, what)) {
                        say(&rep, LOG_INFO, "OctoPrint reports \"%s\": waiting until the printer is idle (asking "
                            "every %s, for at most %s).", what, format_duration(t1, sizeof(t1), w->poll_sec),
                            format_duration(t2, sizeof(t2), w->max_sec));
                        free(last);
                        last = strdup(what);
                        if (!last)
                                return EXIT_FAILURE;
                }
                if (waited >= max_usec) {
                        char reason[1024];

                        if (w->on_still_printing == PRINT_ACTION_BACKUP) {
                                say(&rep, LOG_WARNING, "The printer is still busy (\"%s\") after %s: backing up "
                                    "anyway (OnStillPrinting=backup).", what,
                                    format_duration(t1, sizeof(t1), waited / USEC_PER_SEC));
                                return send_verdict(fd, PRINTER_VERDICT_BACKUP, NULL);
                        }
                        snprintf(reason, sizeof(reason), "Skipped: the printer is still busy (\"%s\") after %s of "
                                 "waiting (PrintWaitMaxSec=%u)", what,
                                 format_duration(t1, sizeof(t1), waited / USEC_PER_SEC), w->max_sec);
                        say(&rep, LOG_NOTICE, "%s.", reason);
                        return send_verdict(fd, PRINTER_VERDICT_SKIP, reason);
                }
                nap(poll_usec < max_usec - waited ? poll_usec : max_usec - waited);
                if (worker_cancel_requested)
                        return EXIT_FAILURE;
        }
}

/* ---- In the daemon ---- */

static void on_message(json_object *msg, void *userdata) {
        PrinterWait *w = userdata;
        json_object *v;

        if (job_apply_worker_message(w->job, msg))
                return;
        if (json_object_object_get_ex(msg, "verdict", &v)) {
                w->have_verdict = true;
                w->verdict = streq(json_object_get_string(v), "skip") ? PRINTER_VERDICT_SKIP : PRINTER_VERDICT_BACKUP;
                if (json_object_object_get_ex(msg, "reason", &v))
                        (void) free_and_strdup(&w->reason, json_object_get_string(v));
        }
}

static void on_waiter_exit(int si_code, int status, void *userdata) {
        PrinterWait *w = userdata;
        PrinterVerdict verdict = w->verdict;
        const char *reason = w->reason;
        char buf[256];

        if (w->cancel_requested)
                verdict = PRINTER_VERDICT_CANCELED, reason = "Canceled while waiting for the printer.";
        else if (!w->have_verdict) {
                /* Not a reason to lose the backup, nor to make one against the configuration. */
                job_log(w->job, LOG_WARNING, "The printer check stopped without an answer.");
                verdict = w->on_printer_unknown == PRINT_ACTION_SKIP ? PRINTER_VERDICT_SKIP : PRINTER_VERDICT_BACKUP;
                snprintf(buf, sizeof(buf), "Skipped: the printer check stopped without an answer (%s %d) "
                         "(OnPrinterUnknown=skip)", si_code == CLD_EXITED ? "exit status" : "signal", status);
                reason = buf;
        }
        /* Last: done() may free w. */
        w->done(w->job, verdict, reason);
}

static int unknown_without_asking(Job *j, const char *why, char **ret_skip_reason) {
        job_log(j, LOG_WARNING, why);
        if (j->instance->config->on_printer_unknown != PRINT_ACTION_SKIP) {
                job_log(j, LOG_WARNING, "Backing up without knowing whether the printer is busy "
                        "(OnPrinterUnknown=backup).");
                return 0;
        }
        return asprintf(ret_skip_reason, "Skipped: %s (OnPrinterUnknown=skip)", why) < 0 ? -ENOMEM : 0;
}

int printer_wait_start(Job *j, printer_wait_done_fn done, PrinterWait **ret, char **ret_skip_reason) {
        _cleanup_free_ char *key = NULL, *why = NULL;
        Instance *i = j->instance;
        const InstanceConfig *c = i->config;
        PrinterWait *w;
        int r;

        *ret = NULL;
        *ret_skip_reason = NULL;
        if (!c->api_url) {
                job_log(j, LOG_INFO, "Not asking whether the printer is busy: the instance has no OctoPrint API "
                        "configured (ApiUrl= and ApiKeyFile= in [OctoPrint]).");
                return 0;
        }
        r = printer_read_api_key(c->api_key_file, &key, &why);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return unknown_without_asking(j, why, ret_skip_reason);

        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->job = j;
        w->done = done;
        w->helper_fd = -1;
        w->poll_sec = c->print_poll_sec;
        w->max_sec = c->print_wait_max_sec;
        w->on_still_printing = c->on_still_printing;
        w->on_printer_unknown = c->on_printer_unknown;
        if (asprintf(&w->url, "%.*s/api/job", (int) (strlen(c->api_url) - (endswith(c->api_url, "/") ? 1 : 0)),
                     c->api_url) < 0 ||
            asprintf(&w->key_header, "X-Api-Key: %s", key) < 0) {
                w->url = w->key_header = NULL;
                explicit_bzero(key, strlen(key));
                printer_wait_free(w);
                return -ENOMEM;
        }
        explicit_bzero(key, strlen(key));

        r = fetch_helper_connect(NULL, &w->helper_fd);
        if (r < 0)
                log_debug("No fetch helper at %s (%s): the printer check asks OctoPrint itself.",
                          fetch_helper_socket_path(), strerror(-r));

        job_set_progress(j, "waiting-for-printer", 0, 0);
        r = worker_pipe_start(i->daemon->event, i->uid, i->gid, "opbackup-printer", printer_wait_main, w,
                              &w->helper_fd, w->helper_fd >= 0 ? 1 : 0, on_message, on_waiter_exit, w, &w->worker);
        /* The worker has its copies now. */
        explicit_bzero(w->key_header, strlen(w->key_header));
        if (w->helper_fd >= 0) {
                close(w->helper_fd);
                w->helper_fd = -1;
        }
        if (r < 0) {
                printer_wait_free(w);
                return r;
        }
        *ret = w;
        return 1;
}

void printer_wait_cancel(PrinterWait *w) {
        if (!w)
                return;
        w->cancel_requested = true;
        worker_pipe_kill(w->worker, SIGTERM);
}
