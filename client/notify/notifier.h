/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* opbackup-notify: the service's signals on the system bus become desktop notifications on the session
 * bus. notify-watch.c follows the service, notify-desktop.c shows the notifications. */

#include <stdbool.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "notify-text.h"

/* The name one opbackup-notify of a session owns on the session bus: a second one (autostart and the user
 * unit both) leaves. */
#define NOTIFIER_BUS_NAME "org.opbackup.Notify"

typedef struct Notifier {
        sd_event *event;
        sd_bus *system;
        sd_bus *session;

        char *owner;                    /* unique name of org.opbackup.backup1's owner; NULL while none */
        sd_bus_slot *watch_call;        /* Watch() on its way */
        bool watching;
        bool watched_before;            /* logged the first watch; later ones are debug messages */
        bool refusal_logged;            /* Watch() was refused once: later refusals are not worth a line */
        bool notify_failure_logged;     /* the notification server failed; said once until it works again */
} Notifier;

/* Follows org.opbackup.backup1 on the system bus: watches it whenever it has an owner, and turns its
 * JobRemoved and BackupUploaded into notifications. */
int watch_start(Notifier *n);
void watch_done(Notifier *n);

/* Shows x through org.freedesktop.Notifications on the session bus; failures are logged, not returned. */
void desktop_show(Notifier *n, const Notification *x);
