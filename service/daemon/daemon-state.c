/* SPDX-License-Identifier: GPL-2.0-or-later */

/* The daemon's state as its bus objects use it (daemon-state.h). */

#include "daemon/daemon-state.h"
#include "daemon/job.h"
#include "daemon/subscription.h"
#include "instance/instance.h"
#include "log.h"
#include "util.h"
#include "worker/worker.h"

static uint64_t now_usec(void) {
        uint64_t t = 0;

        (void) sd_event_now(NULL, CLOCK_MONOTONIC, &t);
        return t;
}

void daemon_note_activity(Daemon *d) {
        if (sd_event_now(d->event, CLOCK_MONOTONIC, &d->last_activity_usec) < 0)
                d->last_activity_usec = now_usec();
}

bool daemon_is_idle(Daemon *d) {
        /* A running worker is a method call still to be answered (or a refresh someone waits for). */
        return d->n_jobs == 0 && d->n_pending_checks == 0 && d->n_pending_imports == 0 && worker_running() == 0 &&
               d->n_pending_remote == 0 && subscriptions_holding(d) == 0;
}

Instance *daemon_find_instance(Daemon *d, const char *name) {
        for (size_t k = 0; k < d->n_instances; k++)
                if (streq(d->instances[k]->name, name))
                        return d->instances[k];
        return NULL;
}

Job *daemon_find_job(Daemon *d, uint32_t id) {
        for (Job *j = d->jobs; j; j = j->next)
                if (j->id == id)
                        return j;
        return NULL;
}

static void send_signal(Daemon *d, const char *destination, const char *path, const char *interface,
                        const char *member, signal_append_fn append, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        r = sd_bus_message_new_signal(d->bus, &m, path, interface, member);
        if (r >= 0)
                r = sd_bus_message_set_destination(m, destination);
        if (r >= 0 && append)
                r = append(m, userdata);
        if (r >= 0)
                r = sd_bus_send(d->bus, m, NULL);
        if (r < 0)
                log_debug("Failed to send %s to %s: %d", member, destination, r);
}

int daemon_emit_signal(Daemon *d, const Instance *instance, const char *path, const char *interface,
                       const char *member, const char *extra_destination, signal_append_fn append, void *userdata) {
        bool extra_sent = false;

        for (size_t k = 0; k < d->n_subscribers; k++) {
                const Subscriber *s = &d->subscribers[k];

                if (!subscriber_receives(s, instance))
                        continue;
                send_signal(d, s->name, path, interface, member, append, userdata);
                extra_sent = extra_sent || streq_ptr(s->name, extra_destination);
        }
        if (extra_destination && !extra_sent)
                send_signal(d, extra_destination, path, interface, member, append, userdata);
        return 0;
}
