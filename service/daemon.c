/* SPDX-License-Identifier: GPL-2.0-or-later */

/* The daemon object: configuration, instances, the bus connection, and when to exit. */

#include <signal.h>
#include <systemd/sd-daemon.h>

#include "build-config.h"
#include "config.h"
#include "daemon.h"
#include "instance.h"
#include "job.h"
#include "log.h"
#include "manager.h"
#include "restore-job.h"
#include "util.h"

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
        return d->n_jobs == 0 && d->n_pending_checks == 0 && d->n_pending_imports == 0 &&
                strv_length(d->subscribers) == 0;
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

int daemon_emit_signal(Daemon *d, const char *path, const char *interface, const char *member,
                       const char *extra_destination, signal_append_fn append, void *userdata) {
        _cleanup_strv_free_ char **destinations = strv_copy(d->subscribers);
        int r;

        if (!destinations)
                return -ENOMEM;
        if (extra_destination && !strv_contains(destinations, extra_destination)) {
                r = strv_extend(&destinations, extra_destination);
                if (r < 0)
                        return r;
        }
        STRV_FOREACH(dest, destinations) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;

                r = sd_bus_message_new_signal(d->bus, &m, path, interface, member);
                if (r >= 0)
                        r = sd_bus_message_set_destination(m, *dest);
                if (r >= 0 && append)
                        r = append(m, userdata);
                if (r >= 0)
                        r = sd_bus_send(d->bus, m, NULL);
                if (r < 0)
                        log_debug("Failed to send %s to %s: %d", member, *dest, r);
        }
        return 0;
}

static int on_name_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Daemon *d = userdata;
        const char *name, *old_owner, *new_owner;

        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0)
                return 0;
        /* A subscription ends when its caller leaves the bus. */
        if (name[0] == ':' && isempty(new_owner))
                manager_drop_subscriber(d, name);
        return 0;
}

static int on_idle_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Daemon *d = userdata;
        uint64_t next;

        if (daemon_is_idle(d) && usec >= d->last_activity_usec + d->idle_timeout_usec) {
                log_info("Idle for %llu s, exiting.", (unsigned long long) (d->idle_timeout_usec / 1000000));
                /* Give up the name first, so D-Bus activation starts a new daemon for the next caller
                 * instead of queueing calls to one that is going away. */
                (void) sd_bus_release_name(d->bus, BUS_NAME);
                return sd_event_exit(d->event, 0);
        }
        next = (daemon_is_idle(d) ? d->last_activity_usec : usec) + d->idle_timeout_usec;
        (void) sd_event_source_set_time(s, next);
        return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

static int daemon_load_instances(Daemon *d) {
        int r;

        r = daemon_config_load(d->config_dir, DEFAULT_IDLE_TIMEOUT_SEC, &d->config);
        if (r < 0)
                return log_error_errno(r, "Failed to load configuration from %s: %m", d->config_dir);
        if (d->config.n_instances == 0) {
                r = daemon_config_autodetect(&d->config, "/home");
                if (r < 0)
                        return log_error_errno(r, "Failed to look for OctoPrint instances: %m");
        }

        d->instances = calloc(d->config.n_instances ?: 1, sizeof(Instance *));
        if (!d->instances)
                return log_oom();
        for (size_t k = 0; k < d->config.n_instances; k++) {
                Instance *i;

                r = instance_new(d, d->config.instances[k], &i);
                if (r < 0)
                        return log_error_errno(r, "Failed to set up instance %s: %m", d->config.instances[k]->name);
                d->config.instances[k] = NULL;    /* owned by the instance now */
                d->instances[d->n_instances++] = i;
                r = instance_probe(i);
                if (r < 0)
                        return log_error_errno(r, "Failed to examine instance %s: %m", i->name);
                log_info("Instance %s: basedir %s, OctoPrint %s%s%s", i->name, i->config->basedir,
                         i->octoprint_version ?: "(unknown)", i->unusable_reason ? ", unusable: " : "",
                         strempty(i->unusable_reason));
        }
        if (d->n_instances == 0)
                log_notice("No OctoPrint instance configured in %s/instances.d or found under /home.",
                           d->config_dir);
        return 0;
}

static int daemon_connect(Daemon *d) {
        int r;

        r = sd_bus_open_system(&d->bus);
        if (r < 0)
                return log_error_errno(r, "Failed to connect to the system bus: %m");
        r = bus_manager_vtable_add(d);
        if (r < 0)
                return log_error_errno(r, "Failed to register the manager object: %m");
        r = bus_instance_vtable_add(d);
        if (r < 0)
                return r;
        r = bus_job_register(d);
        if (r < 0)
                return r;
        r = sd_bus_match_signal_async(d->bus, &d->name_owner_slot, "org.freedesktop.DBus",
                                      "/org/freedesktop/DBus", "org.freedesktop.DBus", "NameOwnerChanged",
                                      on_name_owner_changed, NULL, d);
        if (r < 0)
                return log_error_errno(r, "Failed to watch bus clients: %m");
        r = sd_bus_attach_event(d->bus, d->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return log_error_errno(r, "Failed to attach the bus to the event loop: %m");
        r = sd_bus_request_name(d->bus, BUS_NAME, 0);
        if (r < 0)
                return log_error_errno(r, "Failed to own the bus name %s: %m (is another opbackupd "
                                       "running, and does the bus policy allow root to own it?)", BUS_NAME);
        return 0;
}

int daemon_new(const char *config_dir, bool exit_on_idle, Daemon **ret) {
        _cleanup_(daemon_freep) Daemon *d = NULL;
        int r;

        d = calloc(1, sizeof(*d));
        if (!d)
                return log_oom();
        d->next_job_id = 1;
        d->exit_on_idle = exit_on_idle;
        d->config_dir = strdup(config_dir);
        if (!d->config_dir)
                return log_oom();

        r = sd_event_default(&d->event);
        if (r < 0)
                return log_error_errno(r, "Failed to allocate the event loop: %m");
        (void) sd_event_set_watchdog(d->event, true);
        {
                sigset_t ss;
                sigemptyset(&ss);
                sigaddset(&ss, SIGTERM);
                sigaddset(&ss, SIGINT);
                sigaddset(&ss, SIGCHLD);      /* for sd_event_add_child() */
                sigprocmask(SIG_BLOCK, &ss, NULL);
        }
        (void) sd_event_add_signal(d->event, NULL, SIGTERM, NULL, NULL);
        (void) sd_event_add_signal(d->event, NULL, SIGINT, NULL, NULL);

        r = daemon_load_instances(d);
        if (r < 0)
                return r;
        d->idle_timeout_usec = (uint64_t) d->config.idle_timeout_sec * 1000000ULL;

        /* A restore a killed daemon left half done first: it may move the backup folder back. */
        r = restores_recover(d);
        if (r < 0)
                return r;
        r = jobs_recover(d);
        if (r < 0)
                return r;
        r = daemon_connect(d);
        if (r < 0)
                return r;

        daemon_note_activity(d);
        if (d->exit_on_idle && d->idle_timeout_usec > 0) {
                r = sd_event_add_time_relative(d->event, &d->idle_source, CLOCK_MONOTONIC,
                                               d->idle_timeout_usec, 0, on_idle_timer, d);
                if (r < 0)
                        return log_error_errno(r, "Failed to set up the idle timer: %m");
        }
        *ret = TAKE_PTR(d);
        return 0;
}

Daemon *daemon_free(Daemon *d) {
        if (!d)
                return NULL;
        jobs_free_all(d);
        for (size_t k = 0; k < d->n_instances; k++)
                instance_free(d->instances[k]);
        free(d->instances);
        daemon_config_done(&d->config);
        strv_free(d->subscribers);
        sd_bus_slot_unref(d->name_owner_slot);
        sd_event_source_unref(d->idle_source);
        sd_bus_flush_close_unref(d->bus);
        sd_event_unref(d->event);
        free(d->config_dir);
        free(d);
        return NULL;
}

int daemon_run(Daemon *d) {
        (void) sd_notify(false, "READY=1\nSTATUS=Serving.");
        return sd_event_loop(d->event);
}
