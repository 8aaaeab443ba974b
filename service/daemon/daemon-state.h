/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* What the daemon's bus objects share: its state (configuration, instances, jobs, subscribers) and the
 * little they do with it in common. daemon.c sets it up and runs it. */

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "bus-names.h"
#include "instance/config.h"

#define SUBSCRIBERS_MAX 256U

typedef struct Instance Instance;
typedef struct Job Job;
typedef struct Subscriber Subscriber;

typedef struct Daemon {
        sd_event *event;
        sd_bus *bus;
        char *config_dir;
        char *state_dir;                /* root's: $STATE_DIRECTORY, else /var/lib/opbackup */
        DaemonConfig config;

        Instance **instances;
        size_t n_instances;

        Job *jobs;                      /* linked list, newest first */
        unsigned n_jobs;
        uint32_t next_job_id;

        Subscriber *subscribers;        /* callers of Subscribe() and Watch() (subscription.h) */
        size_t n_subscribers;
        sd_bus_slot *name_owner_slot;

        unsigned n_pending_checks;      /* polkit queries in flight */
        unsigned n_pending_imports;     /* ImportBackup copies in flight */
        unsigned n_pending_remote;      /* ListRemoteBackups, DeleteRemoteBackup in flight */

        bool exit_on_idle;
        uint64_t idle_timeout_usec;
        uint64_t last_activity_usec;
        sd_event_source *idle_source;
} Daemon;

/* Something happened that should keep the daemon up for another idle period. */
void daemon_note_activity(Daemon *d);
bool daemon_is_idle(Daemon *d);

Instance *daemon_find_instance(Daemon *d, const char *name);

/* Sends a signal about instance, unicast, to every subscriber that may access instance (asked when it
 * subscribed) and to extra_destination if not NULL. append() adds the arguments to each copy. */
typedef int (*signal_append_fn)(sd_bus_message *m, void *userdata);
int daemon_emit_signal(Daemon *d, const Instance *instance, const char *path, const char *interface,
                       const char *member, const char *extra_destination, signal_append_fn append, void *userdata);

Job *daemon_find_job(Daemon *d, uint32_t id);
