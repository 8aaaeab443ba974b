/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Who receives the service's signals: callers of Subscribe() and Watch() (org.opbackup.backup1(5)), each
 * for the instances it may access. */

#include <stdbool.h>
#include <systemd/sd-bus.h>

#include "daemon/daemon-state.h"

struct Subscriber {
        char *name;                     /* its unique bus name */
        bool holds;                     /* Subscribe(): keeps the daemon from exiting for idleness; Watch(): not */
        Instance **instances;           /* the instances whose signals it receives: those it may access */
        size_t n_instances;
};

/* The continuation of Subscribe() (holds) and Watch() (!holds) once the caller holds the access
 * authorization: asks polkit about each instance, then registers the caller for the instances it may
 * access, or replies AccessDenied if there is none. Replies to m itself (now or later). */
int subscription_start(Daemon *d, sd_bus_message *m, bool holds, sd_bus_error *error);

/* Ends the subscription of the unique bus name, if it has one (Unsubscribe(), or it left the bus). */
void subscription_drop(Daemon *d, const char *name);
void subscriptions_free(Daemon *d);

/* Subscribers that keep the daemon running. */
size_t subscriptions_holding(const Daemon *d);

/* Whether s gets the signals about instance (NULL: a signal about no instance in particular). */
bool subscriber_receives(const Subscriber *s, const Instance *instance);
