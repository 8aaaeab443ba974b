/* SPDX-License-Identifier: GPL-2.0-or-later */

/* Asynchronous polkit checks. A method handler calls polkit_check() and returns; the CheckAuthorization
 * reply arrives later through the event loop, and only then is the method's real work done (through the
 * continuation fn). Meanwhile the daemon answers other callers, as systemd's bus-polkit does. */

#include <systemd/sd-bus.h>

#include "daemon/polkit.h"
#include "errors.h"
#include "log.h"
#include "util.h"

/* polkit answers in milliseconds when it need not ask anyone; when it shows an authentication
 * dialog the person needs time. */
#define POLKIT_TIMEOUT_USEC (25ULL * 1000000ULL)
#define POLKIT_INTERACTIVE_TIMEOUT_USEC (5ULL * 60ULL * 1000000ULL)

typedef struct PolkitQuery {
        Daemon *daemon;
        sd_bus_message *request;
        char *action;
        char *instance;
        polkit_authorized_fn fn;
        polkit_verdict_fn verdict_fn;   /* polkit_ask(): only told the verdict; replies nothing */
        void *userdata;
        sd_bus_slot *slot;
} PolkitQuery;

static PolkitQuery *polkit_query_free(PolkitQuery *q) {
        if (!q)
                return NULL;
        sd_bus_slot_unref(q->slot);
        sd_bus_message_unref(q->request);
        free(q->action);
        free(q->instance);
        free(q);
        return NULL;
}

int bus_sender_uid(sd_bus_message *m, uid_t *ret) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        int r;

        r = sd_bus_query_sender_creds(m, SD_BUS_CREDS_EUID, &creds);
        if (r < 0)
                return r;
        return sd_bus_creds_get_euid(creds, ret);
}

/* Runs the continuation and sends its error, if any, as the reply. */
static int run_authorized(sd_bus_message *m, polkit_authorized_fn fn, void *userdata) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = fn(m, userdata, &error);
        if (sd_bus_error_is_set(&error))
                return sd_bus_reply_method_error(m, &error);
        if (r < 0)
                return sd_bus_reply_method_errno(m, r, NULL);
        return r;
}

static int reply_denied(sd_bus_message *m, const char *action, const char *instance, bool challenge) {
        if (challenge)
                return sd_bus_reply_method_errorf(
                                m, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED,
                                "Authentication is required for %s%s%s. Run the command from a terminal "
                                "without --no-ask-password, or ask an administrator to grant the action "
                                "in a polkit rule.",
                                action, instance ? " on instance " : "", strempty(instance));
        /* The advice must be one that works: the shipped rules grant the group 'opbackup' access, create and
         * delete, never restore, so a member refused a restore must not be told to join it. */
        if (streq(action, ACTION_RESTORE))
                return sd_bus_reply_method_errorf(
                                m, SD_BUS_ERROR_ACCESS_DENIED,
                                "Not authorized for %s%s%s. Restoring replaces the instance and needs an "
                                "administrator (run the command as root), or a polkit rule granting %s to you; "
                                "the group 'opbackup' does not grant it.",
                                action, instance ? " on instance " : "", strempty(instance), ACTION_RESTORE);
        return sd_bus_reply_method_errorf(
                        m, SD_BUS_ERROR_ACCESS_DENIED,
                        "Not authorized for %s%s%s. Ask an administrator to add you to the group "
                        "'opbackup' or to grant the action in a polkit rule.",
                        action, instance ? " on instance " : "", strempty(instance));
}

static int check_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        PolkitQuery *q = userdata;
        const sd_bus_error *e;
        int authorized = 0, challenge = 0, r;

        q->daemon->n_pending_checks--;
        daemon_note_activity(q->daemon);

        e = sd_bus_message_get_error(reply);
        if (q->verdict_fn) {
                r = e ? -EACCES : sd_bus_message_enter_container(reply, 'r', "bba{ss}");
                if (r >= 0)
                        r = sd_bus_message_read(reply, "bb", &authorized, &challenge);
                if (r < 0)
                        log_warning("polkit check for %s on %s failed: %s", q->action, strempty(q->instance),
                                    e ? e->message ?: e->name : "malformed reply");
                q->verdict_fn(r < 0 ? r : authorized ? 1 : 0, q->userdata);
                polkit_query_free(q);
                return 0;
        }
        if (e) {
                /* No polkit, no access: failing open would hand root's powers to anyone. */
                log_warning("polkit check for %s failed: %s", q->action, e->message ?: e->name);
                r = sd_bus_reply_method_errorf(
                                q->request, SD_BUS_ERROR_ACCESS_DENIED,
                                "Cannot check authorization for %s: polkit is not available (%s). "
                                "Make sure polkitd is installed and running.",
                                q->action, e->message ?: e->name);
                goto finish;
        }

        r = sd_bus_message_enter_container(reply, 'r', "bba{ss}");
        if (r >= 0)
                r = sd_bus_message_read(reply, "bb", &authorized, &challenge);
        if (r < 0) {
                log_error_errno(r, "Malformed reply from polkit: %m");
                r = sd_bus_reply_method_errorf(q->request, SD_BUS_ERROR_ACCESS_DENIED,
                                               "Cannot check authorization for %s: malformed reply from polkit.",
                                               q->action);
                goto finish;
        }

        if (authorized)
                r = run_authorized(q->request, q->fn, q->userdata);
        else
                r = reply_denied(q->request, q->action, q->instance, challenge);
finish:
        if (r < 0)
                log_debug("Failed to reply after polkit check: %d", r);
        polkit_query_free(q);
        return 0;
}

static int append_subject(sd_bus_message *c, const char *sender) {
        int r;

        r = sd_bus_message_open_container(c, 'r', "sa{sv}");
        if (r < 0)
                return r;
        r = sd_bus_message_append(c, "s", "system-bus-name");
        if (r < 0)
                return r;
        r = sd_bus_message_append(c, "a{sv}", 1, "name", "s", sender);
        if (r < 0)
                return r;
        return sd_bus_message_close_container(c);
}

static PolkitQuery *polkit_query_new(Daemon *d, sd_bus_message *m, const char *action, const char *instance) {
        PolkitQuery *q;

        q = calloc(1, sizeof(*q));
        if (!q)
                return NULL;
        *q = (PolkitQuery) {
                .daemon = d,
                .request = sd_bus_message_ref(m),
                .action = strdup(action),
                .instance = instance ? strdup(instance) : NULL,
        };
        if (!q->action || (instance && !q->instance))
                return polkit_query_free(q);
        return q;
}

/* Sends q's CheckAuthorization; check_reply() gets the answer and frees q. On failure q is freed here. */
static int polkit_query_send(PolkitQuery *q, bool interactive) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *c = NULL;
        Daemon *d = q->daemon;
        int r;

        r = sd_bus_message_new_method_call(d->bus, &c, "org.freedesktop.PolicyKit1",
                                           "/org/freedesktop/PolicyKit1/Authority",
                                           "org.freedesktop.PolicyKit1.Authority", "CheckAuthorization");
        if (r >= 0)
                r = append_subject(c, sd_bus_message_get_sender(q->request));
        if (r >= 0)
                r = sd_bus_message_append(c, "s", q->action);
        if (r >= 0)
                r = q->instance ? sd_bus_message_append(c, "a{ss}", 1, "instance", q->instance)
                                : sd_bus_message_append(c, "a{ss}", 0);
        /* flags: 1 = AllowUserInteraction; cancellation id unused */
        if (r >= 0)
                r = sd_bus_message_append(c, "us", (uint32_t) (interactive ? 1 : 0), "");
        if (r >= 0)
                r = sd_bus_call_async(d->bus, &q->slot, c, check_reply, q,
                                      interactive ? POLKIT_INTERACTIVE_TIMEOUT_USEC : POLKIT_TIMEOUT_USEC);
        if (r < 0) {
                polkit_query_free(q);
                return r;
        }
        d->n_pending_checks++;
        return 0;
}

int polkit_check(Daemon *d, sd_bus_message *m, const char *action, const char *instance,
                 polkit_authorized_fn fn, void *userdata, sd_bus_error *error) {
        PolkitQuery *q;
        uid_t uid;
        int r;

        r = bus_sender_uid(m, &uid);
        if (r < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "Cannot determine the caller's user: %s", strerror(-r));
        if (uid == 0)
                return fn(m, userdata, error);

        q = polkit_query_new(d, m, action, instance);
        if (!q)
                return -ENOMEM;
        q->fn = fn;
        q->userdata = userdata;
        r = polkit_query_send(q, sd_bus_message_get_allow_interactive_authorization(m) > 0);
        if (r < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "Cannot check authorization for %s: %s", action, strerror(-r));
        return 1;
}

int polkit_ask(Daemon *d, sd_bus_message *m, const char *action, const char *instance,
               polkit_verdict_fn fn, void *userdata) {
        PolkitQuery *q;

        q = polkit_query_new(d, m, action, instance);
        if (!q)
                return -ENOMEM;
        q->verdict_fn = fn;
        q->userdata = userdata;
        return polkit_query_send(q, false);
}
