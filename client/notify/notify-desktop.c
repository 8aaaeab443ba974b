/* SPDX-License-Identifier: GPL-2.0-or-later */

/* Notifications through org.freedesktop.Notifications (the Desktop Notifications Specification), on the
 * session bus: the desktop's notification server (GNOME Shell, Plasma, dunst, mako, ...), started by D-Bus
 * activation if it does not run yet. */

#include "log.h"
#include "notifier.h"
#include "util.h"

#define APP_NAME "OctoPrint backups"
/* Notify() of a busy server (or one started by activation) can take a while; a reply after this is dropped. */
#define NOTIFY_TIMEOUT_USEC (30ULL * 1000000ULL)

static int on_notify_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Notifier *n = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);

        if (!e) {
                n->notify_failure_logged = false;
                return 0;
        }
        /* No notification server, or a broken one: say so once, not for every backup. */
        if (!n->notify_failure_logged)
                log_warning("Cannot show a desktop notification: %s (is a notification server running in this "
                            "session?)", e->message ?: e->name);
        n->notify_failure_logged = true;
        return 0;
}

void desktop_show(Notifier *n, const Notification *x) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        log_debug("Notification: %s: %s", x->summary, x->body);
        r = sd_bus_message_new_method_call(n->session, &m, "org.freedesktop.Notifications",
                                           "/org/freedesktop/Notifications", "org.freedesktop.Notifications",
                                           "Notify");
        /* app_name, replaces_id, app_icon, summary, body, actions */
        if (r >= 0)
                r = sd_bus_message_append(m, "susssas", APP_NAME, (uint32_t) 0, strempty(x->icon), x->summary,
                                          strempty(x->body), 0);
        if (r >= 0)
                r = sd_bus_message_append(m, "a{sv}", 2,
                                          "urgency", "y", (uint8_t) x->urgency,
                                          "category", "s", strempty(x->category));
        /* expire_timeout: the server's default */
        if (r >= 0)
                r = sd_bus_message_append(m, "i", (int32_t) -1);
        if (r >= 0)
                r = sd_bus_call_async(n->session, NULL, m, on_notify_reply, n, NOTIFY_TIMEOUT_USEC);
        if (r < 0)
                log_warning_errno(r, "Cannot send a desktop notification: %m");
}
