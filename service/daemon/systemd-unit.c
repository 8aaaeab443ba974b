/* SPDX-License-Identifier: GPL-2.0-or-later */

/* Stopping and starting a unit through systemd's own bus API, the way systemd's machined asks PID 1:
 * Manager.StopUnit/StartUnit with mode "replace" answer with the object path of the job they queued, and
 * the JobRemoved signal of that job tells how it ended. systemd sends a job's signals out on the bus as
 * long as the client that queued it is connected (it tracks the sender), so there is no Subscribe()
 * here: that would make systemd broadcast every job and unit change for as long as the daemon runs. The
 * answer, the signal and the time limit are event sources: the daemon keeps serving others meanwhile. */

#include <stdarg.h>

#include "daemon/systemd-unit.h"
#include "log.h"
#include "util.h"

#define SYSTEMD_NAME "org.freedesktop.systemd1"
#define SYSTEMD_PATH "/org/freedesktop/systemd1"
#define SYSTEMD_MANAGER "org.freedesktop.systemd1.Manager"

struct UnitJob {
        UnitVerb verb;
        char *unit;
        char *job_path;                 /* from StopUnit/StartUnit's answer */
        uint64_t timeout_usec;
        sd_bus_slot *match_slot, *call_slot;
        sd_event_source *timer;
        unit_job_done_fn done;
        void *userdata;
        bool finished;
};

const char *unit_verb_to_string(UnitVerb v) {
        return v == UNIT_STOP ? "stop" : "start";
}

UnitJob *unit_job_free(UnitJob *u) {
        if (!u)
                return NULL;
        sd_bus_slot_unref(u->match_slot);
        sd_bus_slot_unref(u->call_slot);
        sd_event_source_unref(u->timer);
        free(u->unit);
        free(u->job_path);
        free(u);
        return NULL;
}

static void unit_job_finish(UnitJob *u, int r, const char *message) {
        if (u->finished)
                return;
        u->finished = true;
        (void) sd_event_source_set_enabled(u->timer, SD_EVENT_OFF);
        u->match_slot = sd_bus_slot_unref(u->match_slot);
        u->call_slot = sd_bus_slot_unref(u->call_slot);
        u->done(r, message, u->userdata);      /* may free u */
}

static void unit_job_failf(UnitJob *u, int r, const char *format, ...) _printf_(3, 4);
static void unit_job_failf(UnitJob *u, int r, const char *format, ...) {
        _cleanup_free_ char *message = NULL;
        va_list ap;

        va_start(ap, format);
        if (vasprintf(&message, format, ap) < 0)
                message = NULL;
        va_end(ap);
        unit_job_finish(u, r, message ?: "Out of memory.");
}

static int on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        UnitJob *u = userdata;
        const char *path, *unit, *result;
        uint32_t id;

        if (sd_bus_message_read(m, "uoss", &id, &path, &unit, &result) < 0)
                return 0;
        if (!u->job_path || !streq(path, u->job_path))
                return 0;       /* another job, or one of ours whose answer has not come yet */
        if (streq(result, "done"))
                unit_job_finish(u, 0, NULL);
        else
                unit_job_failf(u, -EIO, "systemd could not %s %s: its job ended with result '%s'.",
                               unit_verb_to_string(u->verb), u->unit, result);
        return 0;
}

static int on_match_installed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        const sd_bus_error *e = sd_bus_message_get_error(m);
        UnitJob *u = userdata;

        /* Without the match the end of the job would never be seen. (The default handler would close the
         * daemon's bus connection instead.) */
        if (e)
                unit_job_failf(u, -EIO, "Cannot watch systemd's jobs to %s %s: %s", unit_verb_to_string(u->verb),
                               u->unit, e->message ?: e->name);
        return 0;
}

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        const sd_bus_error *e = sd_bus_message_get_error(m);
        UnitJob *u = userdata;
        const char *path;

        u->call_slot = sd_bus_slot_unref(u->call_slot);
        if (systemd_not_on_bus(e)) {
                unit_job_failf(u, -EHOSTDOWN, "Cannot %s %s: systemd is not on the system bus (%s).",
                               unit_verb_to_string(u->verb), u->unit, e->message ?: e->name);
                return 0;
        }
        if (e) {
                unit_job_failf(u, -EIO, "systemd refused to %s %s: %s", unit_verb_to_string(u->verb), u->unit,
                               e->message ?: e->name);
                return 0;
        }
        if (sd_bus_message_read(m, "o", &path) < 0 || free_and_strdup(&u->job_path, path) < 0) {
                unit_job_failf(u, -EBADMSG, "Cannot %s %s: malformed answer from systemd.",
                               unit_verb_to_string(u->verb), u->unit);
                return 0;
        }
        log_debug("systemd queued job %s to %s %s.", u->job_path, unit_verb_to_string(u->verb), u->unit);
        return 0;
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        UnitJob *u = userdata;

        unit_job_failf(u, -ETIMEDOUT, "%s did not %s within %llu s.", u->unit, unit_verb_to_string(u->verb),
                       (unsigned long long) (u->timeout_usec / 1000000ULL));
        return 0;
}

int unit_job_start(sd_bus *bus, UnitVerb verb, const char *unit, uint64_t timeout_usec, unit_job_done_fn done,
                   void *userdata, UnitJob **ret) {
        UnitJob *u;
        int r;

        u = calloc(1, sizeof(*u));
        if (!u)
                return -ENOMEM;
        *u = (UnitJob) { .verb = verb, .timeout_usec = timeout_usec, .done = done, .userdata = userdata };
        u->unit = strdup(unit);
        if (!u->unit) {
                r = -ENOMEM;
                goto fail;
        }
        /* The match first: the bus handles one connection's messages in order, so it is in place before
         * systemd sees the call, and systemd answers the call before the job can end. */
        r = sd_bus_match_signal_async(bus, &u->match_slot, SYSTEMD_NAME, SYSTEMD_PATH, SYSTEMD_MANAGER,
                                      "JobRemoved", on_job_removed, on_match_installed, u);
        if (r < 0)
                goto fail;
        r = sd_bus_call_method_async(bus, &u->call_slot, SYSTEMD_NAME, SYSTEMD_PATH, SYSTEMD_MANAGER,
                                     verb == UNIT_STOP ? "StopUnit" : "StartUnit", on_reply, u, "ss", unit,
                                     "replace");
        if (r < 0)
                goto fail;
        r = sd_event_add_time_relative(sd_bus_get_event(bus), &u->timer, CLOCK_MONOTONIC, timeout_usec, 0,
                                       on_timeout, u);
        if (r < 0)
                goto fail;
        *ret = u;
        return 0;
fail:
        unit_job_free(u);
        return r;
}
