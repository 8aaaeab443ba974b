/* SPDX-License-Identifier: GPL-2.0-or-later */

/* A command run by systemd as a transient oneshot service, the way systemd-run --wait --pipe asks PID 1:
 * Manager.StartTransientUnit with the command, its user and its sandbox as properties, stdout and stderr
 * one end of a pipe whose other end is watched here. AddRef= keeps the unit loaded (even failed) until it
 * was looked at: after the JobRemoved signal of the start job (for a oneshot, the end of its run), the
 * unit's Result, ExecMainCode and ExecMainStatus say how it ended; then UnrefUnit lets systemd collect it
 * (CollectMode=inactive-or-failed). As in systemd-unit.c, systemd sends the job's signal to the client
 * that queued it without a Subscribe(). Every step is an event source: the daemon never waits. */

#include <fcntl.h>
#include <stdarg.h>
#include <sys/socket.h>

#include "daemon/systemd-unit.h"
#include "daemon/transient-unit.h"
#include "log.h"
#include "util.h"

#define SYSTEMD_NAME "org.freedesktop.systemd1"
#define SYSTEMD_PATH "/org/freedesktop/systemd1"
#define SYSTEMD_MANAGER "org.freedesktop.systemd1.Manager"
#define SYSTEMD_SERVICE "org.freedesktop.systemd1.Service"
#define SYSTEMD_UNIT_PREFIX "/org/freedesktop/systemd1/unit"

/* Beyond the unit's own time limit, how long systemd may take to report its end. */
#define TRANSIENT_GRACE_USEC (60ULL * 1000000ULL)
/* Output lines longer than this are passed on in pieces: a log line must stay a line. */
#define TRANSIENT_LINE_MAX 2048U

struct TransientService {
        sd_bus *bus;
        char *unit;
        char *job_path;                 /* from StartTransientUnit's answer */
        sd_bus_slot *match_slot, *call_slot;
        sd_event_source *timer, *io;
        int out_fd;                     /* the read end of the command's stdout and stderr */
        char line[TRANSIENT_LINE_MAX + 1];
        size_t line_len;
        transient_line_fn on_line;
        transient_done_fn done;
        void *userdata;
        bool started;                   /* systemd may have a unit to stop */
        bool finished;
};

bool transient_units_possible(void) {
        return !isempty(getenv("INVOCATION_ID"));
}

/* Calls whose answer changes nothing here: StopUnit (mode "replace") and UnrefUnit. */
static void unit_call_floating(TransientService *t, const char *method) {
        if (streq(method, "StopUnit"))
                (void) sd_bus_call_method_async(t->bus, NULL, SYSTEMD_NAME, SYSTEMD_PATH, SYSTEMD_MANAGER, method,
                                                NULL, NULL, "ss", t->unit, "replace");
        else
                (void) sd_bus_call_method_async(t->bus, NULL, SYSTEMD_NAME, SYSTEMD_PATH, SYSTEMD_MANAGER, method,
                                                NULL, NULL, "s", t->unit);
}

TransientService *transient_service_free(TransientService *t) {
        if (!t)
                return NULL;
        if (t->started && !t->finished) {
                unit_call_floating(t, "StopUnit");
                unit_call_floating(t, "UnrefUnit");
        }
        sd_bus_slot_unref(t->match_slot);
        sd_bus_slot_unref(t->call_slot);
        sd_event_source_unref(t->timer);
        sd_event_source_unref(t->io);
        if (t->out_fd >= 0)
                close(t->out_fd);
        sd_bus_unref(t->bus);
        free(t->unit);
        free(t->job_path);
        free(t);
        return NULL;
}

static void flush_line(TransientService *t) {
        if (t->line_len == 0)
                return;
        t->line[t->line_len] = 0;
        t->line_len = 0;
        t->on_line(t->line, t->userdata);
}

/* Reads what is there; false at end of file (or an error: the output is lost, not the run). */
static bool drain_output(TransientService *t) {
        char buf[4096];

        for (;;) {
                ssize_t n = read(t->out_fd, buf, sizeof(buf));

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return true;
                if (n <= 0)
                        return false;
                for (ssize_t k = 0; k < n; k++) {
                        if (buf[k] == '\n') {
                                flush_line(t);
                                continue;
                        }
                        t->line[t->line_len++] = buf[k];
                        if (t->line_len == TRANSIENT_LINE_MAX)
                                flush_line(t);
                }
        }
}

static int on_output(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        TransientService *t = userdata;

        if (!drain_output(t)) {
                flush_line(t);
                t->io = sd_event_source_disable_unref(t->io);
        }
        return 0;
}

static void finish(TransientService *t, int r, const TransientServiceResult *res, const char *message) {
        if (t->finished)
                return;
        t->finished = true;
        (void) sd_event_source_set_enabled(t->timer, SD_EVENT_OFF);
        t->match_slot = sd_bus_slot_unref(t->match_slot);
        t->call_slot = sd_bus_slot_unref(t->call_slot);
        /* The service is over, and with it every process that could write: what it wrote is in the pipe. */
        if (t->io) {
                (void) drain_output(t);
                t->io = sd_event_source_disable_unref(t->io);
        }
        flush_line(t);
        if (t->started)
                unit_call_floating(t, "UnrefUnit");
        t->done(r, res, message, t->userdata);         /* may free t */
}

static void failf(TransientService *t, int r, const char *format, ...) _printf_(3, 4);
static void failf(TransientService *t, int r, const char *format, ...) {
        _cleanup_free_ char *message = NULL;
        va_list ap;

        va_start(ap, format);
        if (vasprintf(&message, format, ap) < 0)
                message = NULL;
        va_end(ap);
        finish(t, r, NULL, message ?: "Out of memory.");
}

static int on_properties(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        const sd_bus_error *e = sd_bus_message_get_error(m);
        TransientService *t = userdata;
        TransientServiceResult res = { .result = "" };
        _cleanup_free_ char *result = NULL;
        const char *name;
        int r;

        t->call_slot = sd_bus_slot_unref(t->call_slot);
        if (e) {
                failf(t, -EIO, "Cannot ask systemd how %s ended: %s", t->unit, e->message ?: e->name);
                return 0;
        }
        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        while (r > 0 && (r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *s;

                r = sd_bus_message_read(m, "s", &name);
                if (r < 0)
                        break;
                if (streq(name, "Result")) {
                        r = sd_bus_message_read(m, "v", "s", &s);
                        if (r >= 0 && free_and_strdup(&result, s) < 0)
                                r = -ENOMEM;
                } else if (streq(name, "ExecMainCode"))
                        r = sd_bus_message_read(m, "v", "i", &res.exit_code);
                else if (streq(name, "ExecMainStatus"))
                        r = sd_bus_message_read(m, "v", "i", &res.exit_status);
                else
                        r = sd_bus_message_skip(m, "v");
                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
                if (r >= 0)
                        r = 1;
        }
        if (r < 0 || !result) {
                failf(t, -EBADMSG, "Cannot tell how %s ended: malformed answer from systemd.", t->unit);
                return 0;
        }
        res.result = result;
        finish(t, 0, &res, NULL);
        return 0;
}

static int on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        TransientService *t = userdata;
        _cleanup_free_ char *path = NULL;
        const char *job, *unit, *result;
        uint32_t id;
        int r;

        if (sd_bus_message_read(m, "uoss", &id, &job, &unit, &result) < 0)
                return 0;
        if (!t->job_path || !streq(job, t->job_path))
                return 0;
        log_debug("systemd's job %s to start %s ended: %s.", job, t->unit, result);
        t->match_slot = sd_bus_slot_unref(t->match_slot);
        /* The job's result only says done or not; the service's properties say how its command ended. */
        r = sd_bus_path_encode(SYSTEMD_UNIT_PREFIX, t->unit, &path);
        if (r >= 0)
                r = sd_bus_call_method_async(t->bus, &t->call_slot, SYSTEMD_NAME, path, "org.freedesktop.DBus.Properties",
                                             "GetAll", on_properties, t, "s", SYSTEMD_SERVICE);
        if (r < 0)
                failf(t, r, "Cannot ask systemd how %s ended: %s", t->unit, strerror(-r));
        return 0;
}

static int on_match_installed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        const sd_bus_error *e = sd_bus_message_get_error(m);
        TransientService *t = userdata;

        if (e)
                failf(t, -EIO, "Cannot watch systemd's jobs for %s: %s", t->unit, e->message ?: e->name);
        return 0;
}

static int on_started(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        const sd_bus_error *e = sd_bus_message_get_error(m);
        TransientService *t = userdata;
        const char *path;

        t->call_slot = sd_bus_slot_unref(t->call_slot);
        if (systemd_not_on_bus(e)) {
                t->started = false;
                failf(t, -EHOSTDOWN, "systemd is not on the system bus (%s).", e->message ?: e->name);
                return 0;
        }
        if (e) {
                t->started = false;
                failf(t, -EIO, "systemd refused to start %s: %s", t->unit, e->message ?: e->name);
                return 0;
        }
        if (sd_bus_message_read(m, "o", &path) < 0 || free_and_strdup(&t->job_path, path) < 0) {
                failf(t, -EBADMSG, "Cannot start %s: malformed answer from systemd.", t->unit);
                return 0;
        }
        log_debug("systemd queued job %s to start the transient unit %s.", t->job_path, t->unit);
        return 0;
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        TransientService *t = userdata;

        unit_call_floating(t, "StopUnit");
        failf(t, -ETIMEDOUT, "systemd did not report the end of %s in time; it was asked to stop it.", t->unit);
        return 0;
}

static int append_bool(sd_bus_message *m, const char *name, bool b) {
        return sd_bus_message_append(m, "(sv)", name, "b", (int) b);
}

static int append_strv(sd_bus_message *m, const char *name, char **l) {
        int r;

        r = sd_bus_message_open_container(m, 'r', "sv");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", name);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'v', "as");
        if (r >= 0)
                r = sd_bus_message_append_strv(m, l);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r;
}

/* (bas): an allow list (true) of names, for RestrictAddressFamilies= and SystemCallFilter=. */
static int append_allow_list(sd_bus_message *m, const char *name, char **l) {
        int r;

        r = sd_bus_message_open_container(m, 'r', "sv");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", name);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'v', "(bas)");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'r', "bas");
        if (r >= 0)
                r = sd_bus_message_append(m, "b", 1);
        if (r >= 0)
                r = sd_bus_message_append_strv(m, l);
        for (int k = 0; r >= 0 && k < 3; k++)
                r = sd_bus_message_close_container(m);
        return r;
}

static int append_exec_start(sd_bus_message *m, char **argv) {
        int r;

        r = sd_bus_message_open_container(m, 'r', "sv");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", "ExecStart");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'v', "a(sasb)");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "(sasb)");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'r', "sasb");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", argv[0]);
        if (r >= 0)
                r = sd_bus_message_append_strv(m, argv);
        if (r >= 0)
                r = sd_bus_message_append(m, "b", 0);   /* a failure is a failure */
        for (int k = 0; r >= 0 && k < 4; k++)
                r = sd_bus_message_close_container(m);
        return r;
}

/* The sandbox: the user's own rights, minus writing anywhere but read_write_paths, minus every
 * capability and kernel knob; with the network (that is what the service is for). */
static int append_properties(sd_bus_message *m, const TransientServiceSpec *spec, int out_fd) {
        static const char *const booleans[] = {
                "PrivateTmp", "PrivateDevices", "NoNewPrivileges", "ProtectKernelTunables", "ProtectKernelModules",
                "ProtectKernelLogs", "ProtectControlGroups", "ProtectClock", "ProtectHostname", "RestrictSUIDSGID",
                "RestrictRealtime", "LockPersonality", "MemoryDenyWriteExecute",
        };
        int r;

        r = sd_bus_message_append(m, "(sv)(sv)(sv)(sv)(sv)(sv)", "Description", "s", spec->description, "Type", "s",
                                  "oneshot", "User", "s", spec->user, "Group", "s", spec->group, "WorkingDirectory", "s",
                                  spec->working_directory, "StandardInput", "s", "null");
        if (r >= 0)
                r = sd_bus_message_append(m, "(sv)(sv)", "StandardOutputFileDescriptor", "h", out_fd,
                                          "StandardErrorFileDescriptor", "h", out_fd);
        /* Kept loaded, even failed, until on_properties() read how it ended; collected after UnrefUnit. */
        if (r >= 0)
                r = sd_bus_message_append(m, "(sv)(sv)(sv)", "AddRef", "b", 1, "CollectMode", "s", "inactive-or-failed",
                                          "TimeoutStartUSec", "t", spec->timeout_usec);
        if (r >= 0)
                r = append_exec_start(m, spec->argv);
        if (r >= 0)
                r = append_strv(m, "Environment", spec->environment);
        if (r >= 0)
                r = sd_bus_message_append(m, "(sv)(sv)", "ProtectSystem", "s", "strict", "ProtectHome", "s", "read-only");
        if (r >= 0)
                r = append_strv(m, "ReadWritePaths", spec->read_write_paths);
        for (size_t k = 0; r >= 0 && k < ELEMENTSOF(booleans); k++)
                r = append_bool(m, booleans[k], true);
        /* No capability in the bounding set, no namespaces, idle priority like every worker. */
        if (r >= 0)
                r = sd_bus_message_append(m, "(sv)(sv)(sv)(sv)(sv)", "CapabilityBoundingSet", "t", (uint64_t) 0,
                                          "RestrictNamespaces", "t", (uint64_t) 0, "Nice", "i", 19,
                                          "IOSchedulingClass", "i", 3 /* IOPRIO_CLASS_IDLE */, "UMask", "u", 0022);
        if (r >= 0)
                r = append_allow_list(m, "RestrictAddressFamilies", (char *[]) { (char *) "AF_UNIX", (char *) "AF_INET", (char *) "AF_INET6", NULL });
        if (r >= 0)
                r = append_allow_list(m, "SystemCallFilter", (char *[]) { (char *) "@system-service", NULL });
        if (r >= 0)
                r = append_strv(m, "SystemCallArchitectures", (char *[]) { (char *) "native", NULL });
        if (r >= 0)
                r = sd_bus_message_append(m, "(sv)", "SystemCallErrorNumber", "i", EPERM);
        return r;
}

int transient_service_start(sd_bus *bus, const TransientServiceSpec *spec, transient_line_fn on_line,
                            transient_done_fn done, void *userdata, TransientService **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_close_ int out_w = -1;
        TransientService *t;
        int p[2], r;

        if (!spec->argv || !spec->argv[0] || spec->argv[0][0] != '/' || isempty(spec->user) || isempty(spec->group) ||
            streq(spec->user, "0") || streq(spec->user, "root"))
                return -EINVAL;
        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        *t = (TransientService) { .bus = sd_bus_ref(bus), .out_fd = -1, .on_line = on_line, .done = done,
                                  .userdata = userdata };
        t->unit = strdup(spec->unit);
        if (!t->unit) {
                r = -ENOMEM;
                goto fail;
        }
        if (pipe2(p, O_CLOEXEC) < 0) {
                r = -errno;
                goto fail;
        }
        t->out_fd = p[0];
        out_w = p[1];
        (void) fcntl(t->out_fd, F_SETFL, O_NONBLOCK);
        r = sd_event_add_io(sd_bus_get_event(bus), &t->io, t->out_fd, EPOLLIN, on_output, t);
        if (r < 0)
                goto fail;

        /* The match first, as in systemd-unit.c: in place before systemd sees the call. */
        r = sd_bus_match_signal_async(bus, &t->match_slot, SYSTEMD_NAME, SYSTEMD_PATH, SYSTEMD_MANAGER, "JobRemoved",
                                      on_job_removed, on_match_installed, t);
        if (r < 0)
                goto fail;
        r = sd_bus_message_new_method_call(bus, &m, SYSTEMD_NAME, SYSTEMD_PATH, SYSTEMD_MANAGER, "StartTransientUnit");
        if (r >= 0)
                r = sd_bus_message_append(m, "ss", spec->unit, "fail");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "(sv)");
        if (r >= 0)
                r = append_properties(m, spec, out_w);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_append(m, "a(sa(sv))", 0);
        if (r >= 0)
                r = sd_bus_call_async(bus, &t->call_slot, m, on_started, t, 0);
        if (r < 0)
                goto fail;
        t->started = true;
        r = sd_event_add_time_relative(sd_bus_get_event(bus), &t->timer, CLOCK_MONOTONIC,
                                       spec->timeout_usec + TRANSIENT_GRACE_USEC, 0, on_timeout, t);
        if (r < 0)
                goto fail;
        /* sd-bus sent its own copy of the write end (or will): ours closes here, so that the end of the
         * service is the end of the output. */
        *ret = t;
        return 0;
fail:
        transient_service_free(t);
        return r;
}

void transient_service_stop(TransientService *t) {
        if (t && t->started && !t->finished)
                unit_call_floating(t, "StopUnit");
}
