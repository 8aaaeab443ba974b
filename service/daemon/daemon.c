/* SPDX-License-Identifier: GPL-2.0-or-later */

/* The daemon object: configuration, instances, the bus connection, and when to exit. */

#include <signal.h>
#include <systemd/sd-daemon.h>

#include "build-config.h"
#include "backup/backup-job.h"
#include "daemon/daemon.h"
#include "daemon/instance-bus.h"
#include "daemon/job.h"
#include "daemon/manager.h"
#include "daemon/state-prune.h"
#include "daemon/subscription.h"
#include "instance/config.h"
#include "instance/instance.h"
#include "log.h"
#include "remote/remote-status.h"
#include "restore/restore-job.h"
#include "util.h"

static int on_name_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Daemon *d = userdata;
        const char *name, *old_owner, *new_owner;

        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0)
                return 0;
        /* A subscription ends when its caller leaves the bus. */
        if (name[0] == ':' && isempty(new_owner))
                subscription_drop(d, name);
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
        bool configured;
        int r;

        r = daemon_config_load(d->config_dir, DEFAULT_IDLE_TIMEOUT_SEC, &d->config);
        if (r < 0)
                return log_error_errno(r, "Failed to load configuration from %s: %m", d->config_dir);
        configured = d->config.n_instances > 0;
        if (!configured) {
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
        remote_status_load(d);
        state_prune(d, configured);
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
        d->state_dir = strdup(state_directory());
        if (!d->state_dir)
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
        r = backups_recover(d);
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
        subscriptions_free(d);
        sd_bus_slot_unref(d->name_owner_slot);
        sd_event_source_unref(d->idle_source);
        sd_bus_flush_close_unref(d->bus);
        sd_event_unref(d->event);
        free(d->config_dir);
        free(d->state_dir);
        free(d);
        return NULL;
}

int daemon_run(Daemon *d) {
        (void) sd_notify(false, "READY=1\nSTATUS=Serving.");
        return sd_event_loop(d->event);
}
