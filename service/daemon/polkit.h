/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "daemon/daemon.h"

#define ACTION_ACCESS "org.opbackup.backup1.access"
#define ACTION_CREATE "org.opbackup.backup1.create"
#define ACTION_DELETE "org.opbackup.backup1.delete"
#define ACTION_RESTORE "org.opbackup.backup1.restore"

/* Called once the caller of m is authorized. Replies to m itself and returns >= 0, or returns a negative
 * errno / sets error, in which case the error is sent as the reply. */
typedef int (*polkit_authorized_fn)(sd_bus_message *m, void *userdata, sd_bus_error *error);

/* Asks polkit whether the sender of m may perform action (with the polkit detail "instance" set when
 * instance is not NULL), then calls fn. Root callers are allowed without asking. The check is
 * asynchronous: a method handler returns what this returns, and the reply is sent later, while the
 * daemon keeps serving other callers. The caller's allow-interactive-authorization flag is passed on to
 * polkit. When polkit is not reachable, the caller is denied.
 *
 * userdata must stay valid until fn runs (instances live as long as the daemon; jobs are looked up
 * again by id rather than passed). */
int polkit_check(Daemon *d, sd_bus_message *m, const char *action, const char *instance,
                 polkit_authorized_fn fn, void *userdata, sd_bus_error *error);

/* Called with polkit's verdict: 1 authorized, 0 not, a negative errno when polkit could not be asked. */
typedef void (*polkit_verdict_fn)(int verdict, void *userdata);

/* Asks polkit whether the sender of m may perform action on instance, never interactively, and tells fn
 * the verdict later, through the event loop; it replies nothing to m. For checks beyond the one that
 * decides whether a call is allowed (which instances' signals a subscriber gets). Root is asked like
 * anyone: the caller decides whether to skip the question. Returns 0 when the question is on its way. */
int polkit_ask(Daemon *d, sd_bus_message *m, const char *action, const char *instance,
               polkit_verdict_fn fn, void *userdata);

/* The uid of the sender of m, from the bus (not from the message). */
int bus_sender_uid(sd_bus_message *m, uid_t *ret);
