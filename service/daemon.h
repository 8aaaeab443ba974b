/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "bus-names.h"
#include "config.h"

#define SUBSCRIBERS_MAX 256U

typedef struct Instance Instance;
typedef struct Job Job;

typedef struct Daemon {
        sd_event *event;
        sd_bus *bus;
        char *config_dir;
        DaemonConfig config;

        Instance **instances;
        size_t n_instances;

        Job *jobs;                      /* linked list, newest first */
        unsigned n_jobs;
        uint32_t next_job_id;

        char **subscribers;             /* unique bus names of subscribed callers */
        sd_bus_slot *name_owner_slot;

        unsigned n_pending_checks;      /* polkit queries in flight */
        unsigned n_pending_imports;     /* ImportBackup copies in flight */

        bool exit_on_idle;
        uint64_t idle_timeout_usec;
        uint64_t last_activity_usec;
        sd_event_source *idle_source;
} Daemon;

int daemon_new(const char *config_dir, bool exit_on_idle, Daemon **ret);
Daemon *daemon_free(Daemon *d);
int daemon_run(Daemon *d);

/* Something happened that should keep the daemon up for another idle period. */
void daemon_note_activity(Daemon *d);
bool daemon_is_idle(Daemon *d);

Instance *daemon_find_instance(Daemon *d, const char *name);

/* Sends a signal, unicast, to every subscriber (each passed the access check when subscribing) and to
 * extra_destination if not NULL. append() adds the arguments to each copy. */
typedef int (*signal_append_fn)(sd_bus_message *m, void *userdata);
int daemon_emit_signal(Daemon *d, const char *path, const char *interface, const char *member,
                       const char *extra_destination, signal_append_fn append, void *userdata);

static inline void daemon_freep(Daemon **d) {
        daemon_free(*d);
}
