/* SPDX-License-Identifier: GPL-2.0-or-later */

/* Subscribe() and Watch(): who receives the service's signals, and of which instances.
 *
 * Signals are sent to each subscriber on its own (unicast, daemon_emit_signal()), so a caller receives
 * only what it subscribed to, whatever its match rules. Subscribing needs the access authorization (the
 * check without an instance, done by the caller of subscription_start()); then polkit is asked once for each
 * instance, with the detail "instance", and the subscriber gets the signals of the instances it may access
 * only: a rule that hides one printer from someone hides its backups and jobs from their subscription too.
 *
 * A subscriber of Subscribe() keeps the daemon from exiting for idleness (a monitor that wants every
 * signal); one of Watch() does not (a desktop notifier that is connected all day must not keep a root
 * daemon running: jobs keep it running while there is something to tell). */

#include "daemon/polkit.h"
#include "daemon/subscription.h"
#include "instance/instance.h"
#include "log.h"
#include "util.h"

typedef struct SubscribeRequest SubscribeRequest;

typedef struct InstanceCheck {
        SubscribeRequest *request;
        Instance *instance;
        bool allowed;
} InstanceCheck;

struct SubscribeRequest {
        Daemon *daemon;
        sd_bus_message *message;
        bool holds;
        unsigned n_pending;
        InstanceCheck *checks;          /* one for each instance */
};

static SubscribeRequest *subscribe_request_free(SubscribeRequest *req) {
        if (!req)
                return NULL;
        sd_bus_message_unref(req->message);
        free(req->checks);
        free(req);
        return NULL;
}

static Subscriber *subscriber_find(Daemon *d, const char *name) {
        for (size_t k = 0; k < d->n_subscribers; k++)
                if (streq(d->subscribers[k].name, name))
                        return &d->subscribers[k];
        return NULL;
}

static void subscriber_done(Subscriber *s) {
        free(s->name);
        free(s->instances);
}

bool subscriber_receives(const Subscriber *s, const Instance *instance) {
        if (!instance)
                return true;
        for (size_t k = 0; k < s->n_instances; k++)
                if (s->instances[k] == instance)
                        return true;
        return false;
}

size_t subscriptions_holding(const Daemon *d) {
        size_t n = 0;

        for (size_t k = 0; k < d->n_subscribers; k++)
                n += d->subscribers[k].holds;
        return n;
}

void subscription_drop(Daemon *d, const char *name) {
        Subscriber *s = subscriber_find(d, name);

        if (!s)
                return;
        subscriber_done(s);
        *s = d->subscribers[--d->n_subscribers];
}

void subscriptions_free(Daemon *d) {
        for (size_t k = 0; k < d->n_subscribers; k++)
                subscriber_done(&d->subscribers[k]);
        free(d->subscribers);
        d->subscribers = NULL;
        d->n_subscribers = 0;
}

typedef struct NameCheck {
        Daemon *daemon;
        char name[];
} NameCheck;

static int on_name_owner_reply(sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        NameCheck *c = userdata;

        if (sd_bus_message_is_method_error(reply, NULL)) {
                log_debug("Subscriber %s left the bus while it subscribed: dropped.", c->name);
                subscription_drop(c->daemon, c->name);
        }
        return 0;
}

/* A caller that left the bus while polkit was asked about it would otherwise stay subscribed for good (the
 * NameOwnerChanged that ends subscriptions came before it had one), and one of Subscribe() would keep the
 * daemon running forever. So once it is registered, its name is looked up: gone means dropped. */
static int subscriber_confirm(Daemon *d, const char *name) {
        _cleanup_free_ NameCheck *c = NULL;
        sd_bus_slot *slot = NULL;
        int r;

        c = malloc(sizeof(NameCheck) + strlen(name) + 1);
        if (!c)
                return -ENOMEM;
        c->daemon = d;
        strcpy(c->name, name);
        r = sd_bus_call_method_async(d->bus, &slot, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                     "org.freedesktop.DBus", "GetNameOwner", on_name_owner_reply, c, "s", name);
        if (r < 0)
                return r;
        /* The bus keeps the slot until the answer came; c goes with it. */
        (void) sd_bus_slot_set_destroy_callback(slot, free);
        TAKE_PTR(c);
        (void) sd_bus_slot_set_floating(slot, 1);
        sd_bus_slot_unref(slot);
        return 0;
}

static int subscriber_register(Daemon *d, const char *name, bool holds, Instance **instances, size_t n,
                               sd_bus_error *error) {
        Subscriber *s = subscriber_find(d, name);
        _cleanup_free_ Instance **copy = NULL;
        int r;

        if (n > 0) {
                copy = calloc(n, sizeof(Instance *));
                if (!copy)
                        return -ENOMEM;
                memcpy(copy, instances, n * sizeof(Instance *));
        }
        if (!s) {
                Subscriber *l;

                if (d->n_subscribers >= SUBSCRIBERS_MAX)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_LIMITS_EXCEEDED,
                                                 "Too many subscribers (at most %u).", SUBSCRIBERS_MAX);
                l = reallocarray(d->subscribers, d->n_subscribers + 1, sizeof(Subscriber));
                if (!l)
                        return -ENOMEM;
                d->subscribers = l;
                s = &d->subscribers[d->n_subscribers];
                *s = (Subscriber) { .name = strdup(name) };
                if (!s->name)
                        return -ENOMEM;
                d->n_subscribers++;
                r = subscriber_confirm(d, name);
                if (r < 0)
                        log_debug("Cannot check that subscriber %s is still there: %d", name, r);
        }
        /* Subscribing again (or watching after subscribing) replaces what the caller had. */
        free(s->instances);
        s->instances = TAKE_PTR(copy);
        s->n_instances = n;
        s->holds = holds;
        return 0;
}

static int subscribe_finish(SubscribeRequest *req) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ Instance **allowed = NULL;
        Daemon *d = req->daemon;
        size_t n = 0;
        int r;

        allowed = calloc(d->n_instances ?: 1, sizeof(Instance *));
        if (!allowed)
                return sd_bus_reply_method_errno(req->message, ENOMEM, NULL);
        for (size_t k = 0; k < d->n_instances; k++)
                if (req->checks[k].allowed)
                        allowed[n++] = req->checks[k].instance;
        if (n == 0 && d->n_instances > 0)
                return sd_bus_reply_method_errorf(
                                req->message, SD_BUS_ERROR_ACCESS_DENIED,
                                "Not authorized for %s on any instance. Ask an administrator to add you to the "
                                "group 'opbackup' or to grant the action in a polkit rule.", ACTION_ACCESS);
        r = subscriber_register(d, sd_bus_message_get_sender(req->message), req->holds, allowed, n, &error);
        if (sd_bus_error_is_set(&error))
                return sd_bus_reply_method_error(req->message, &error);
        if (r < 0)
                return sd_bus_reply_method_errno(req->message, r, NULL);
        log_debug("%s %s, for %zu of %zu instances.", sd_bus_message_get_sender(req->message),
                  req->holds ? "subscribed" : "watches", n, d->n_instances);
        return sd_bus_reply_method_return(req->message, "");
}

static void on_instance_verdict(int verdict, void *userdata) {
        InstanceCheck *c = userdata;
        SubscribeRequest *req = c->request;

        /* Refused, or polkit could not say: no signals of that instance (never fail open). */
        c->allowed = verdict > 0;
        if (--req->n_pending > 0)
                return;
        if (subscribe_finish(req) < 0)
                log_debug("Failed to answer a subscription.");
        subscribe_request_free(req);
}

int subscription_start(Daemon *d, sd_bus_message *m, bool holds, sd_bus_error *error) {
        SubscribeRequest *req;
        uid_t uid = (uid_t) -1;
        int r;

        req = calloc(1, sizeof(*req));
        if (!req)
                return -ENOMEM;
        *req = (SubscribeRequest) {
                .daemon = d,
                .message = sd_bus_message_ref(m),
                .holds = holds,
                .checks = calloc(d->n_instances ?: 1, sizeof(InstanceCheck)),
        };
        if (!req->checks) {
                subscribe_request_free(req);
                return -ENOMEM;
        }
        (void) bus_sender_uid(m, &uid);
        for (size_t k = 0; k < d->n_instances; k++) {
                req->checks[k] = (InstanceCheck) {
                        .request = req,
                        .instance = d->instances[k],
                        .allowed = uid == 0,            /* root may access everything without asking */
                };
                if (uid == 0)
                        continue;
                /* The verdicts come through the event loop, after this returns. */
                r = polkit_ask(d, m, ACTION_ACCESS, d->instances[k]->name, on_instance_verdict, &req->checks[k]);
                if (r < 0)
                        log_warning_errno(r, "Cannot ask polkit about instance %s: %m", d->instances[k]->name);
                else
                        req->n_pending++;
        }
        if (req->n_pending > 0)
                return 1;       /* on_instance_verdict() answers */
        r = subscribe_finish(req);
        subscribe_request_free(req);
        return r;
}
