/* SPDX-License-Identifier: GPL-2.0-or-later */

/* Following opbackupd on the system bus (org.opbackup.backup1(5), Watch()).
 *
 * The daemon exits when idle and D-Bus activation starts it again when someone calls it. A watch does not
 * keep it running, and ends with it: so this follows NameOwnerChanged of org.opbackup.backup1 and calls
 * Watch() each time the name gets an owner. It never starts the service itself (a call that activates it
 * would keep it up for as long as we called): Watch() goes out with auto-start off, and only while the name
 * has an owner. Nothing runs in between: no timer, no polling.
 *
 * The daemon sends its signals to each watcher on its own, and only those about instances the watcher may
 * access (polkit decides). A user without access is refused: then we say so once and wait quietly for the
 * next start of the service (the rules may have changed). */

#include <inttypes.h>

#include "bus-names.h"
#include "log.h"
#include "notifier.h"
#include "util.h"

#define UPLOADS_MAX 64U                 /* remotes of one backup that a notification lists */

static int watch_send(Notifier *n);

static void watch_stop(Notifier *n) {
        n->watch_call = sd_bus_slot_unref(n->watch_call);
        n->watching = false;
}

static void set_owner(Notifier *n, const char *owner) {
        if (streq_ptr(n->owner, isempty(owner) ? NULL : owner))
                return;
        watch_stop(n);
        free(n->owner);
        n->owner = NULL;
        if (isempty(owner)) {
                log_debug("%s left the bus.", BUS_NAME);
                return;
        }
        n->owner = strdup(owner);
        if (!n->owner) {
                log_oom();
                return;
        }
        log_debug("%s is %s now.", BUS_NAME, n->owner);
        if (watch_send(n) < 0)
                log_warning("Cannot watch %s: no notifications until it starts again.", BUS_NAME);
}

static bool is_refusal(const sd_bus_error *e) {
        return sd_bus_error_has_name(e, SD_BUS_ERROR_ACCESS_DENIED) ||
               sd_bus_error_has_name(e, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED);
}

static int on_watch_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Notifier *n = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);

        n->watch_call = sd_bus_slot_unref(n->watch_call);
        if (!e) {
                /* The service comes and goes all day: a line in the journal the first time is enough. */
                log_full(n->watched_before ? LOG_DEBUG : LOG_INFO,
                         "Watching %s (%s): notifications of backups and restores are on.", BUS_NAME,
                         strempty(n->owner));
                n->watching = n->watched_before = true;
                return 0;
        }
        if (is_refusal(e)) {
                /* The normal case for a user who may not see backups: one line, then silence. */
                if (!n->refusal_logged)
                        log_info("Not watching %s: %s No notifications for this user.", BUS_NAME,
                                 e->message ?: e->name);
                else
                        log_debug("Watch() refused again: %s", e->message ?: e->name);
                n->refusal_logged = true;
        } else if (sd_bus_error_has_name(e, SD_BUS_ERROR_SERVICE_UNKNOWN) ||
                   sd_bus_error_has_name(e, SD_BUS_ERROR_NAME_HAS_NO_OWNER) ||
                   sd_bus_error_has_name(e, SD_BUS_ERROR_NO_REPLY))
                /* It left (idle exit) as we asked: NameOwnerChanged says when it is back. */
                log_debug("Watch() found no service: %s", e->message ?: e->name);
        else
                log_warning("Cannot watch %s: %s", BUS_NAME, e->message ?: e->name);
        return 0;
}

static int watch_send(Notifier *n) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        r = sd_bus_message_new_method_call(n->system, &m, BUS_NAME, OBJECT_ROOT, MANAGER_INTERFACE, "Watch");
        if (r < 0)
                return r;
        r = sd_bus_message_set_auto_start(m, false);
        if (r < 0)
                return r;
        /* Never a password dialog for a background program: polkit's rules decide. */
        r = sd_bus_message_set_allow_interactive_authorization(m, false);
        if (r < 0)
                return r;
        return sd_bus_call_async(n->system, &n->watch_call, m, on_watch_reply, n, 0);
}

static int on_name_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Notifier *n = userdata;
        const char *name, *old_owner, *new_owner;

        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0 || !streq(name, BUS_NAME))
                return 0;
        set_owner(n, new_owner);
        return 0;
}

static int on_get_name_owner(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Notifier *n = userdata;
        const char *owner;

        /* NameHasNoOwner: it does not run; NameOwnerChanged tells when it does. */
        if (sd_bus_message_is_method_error(reply, NULL) || sd_bus_message_read(reply, "s", &owner) < 0) {
                log_debug("%s does not run now.", BUS_NAME);
                return 0;
        }
        set_owner(n, owner);
        return 0;
}

/* Signals come unicast from the daemon; anyone may send us a signal, though, naming any path: only what the
 * current owner of the name sent counts. */
static bool from_service(Notifier *n, sd_bus_message *m) {
        return n->owner && streq_ptr(sd_bus_message_get_sender(m), n->owner);
}

static int read_uploads(sd_bus_message *m, UploadOutcome *uploads, size_t *n_uploads) {
        int r;

        r = sd_bus_message_enter_container(m, 'v', "a(sss)");
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(m, 'a', "(sss)");
        if (r < 0)
                return r;
        for (;;) {
                const char *remote, *result, *error;

                r = sd_bus_message_read(m, "(sss)", &remote, &result, &error);
                if (r <= 0)
                        break;
                if (*n_uploads < UPLOADS_MAX)
                        uploads[(*n_uploads)++] = (UploadOutcome) { remote, result, error };
        }
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

static int count_array(sd_bus_message *m, const char *contents, size_t *ret) {
        size_t n = 0;
        int r;

        r = sd_bus_message_enter_container(m, 'v', contents);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(m, 'a', contents + 1);
        if (r < 0)
                return r;
        while ((r = sd_bus_message_skip(m, contents + 1)) > 0)
                n++;
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;
        *ret = n;
        return sd_bus_message_exit_container(m);
}

/* JobRemoved's details (org.opbackup.backup1(5)): what we show; the rest is skipped. */
static int read_details(sd_bus_message *m, JobOutcome *o, UploadOutcome *uploads) {
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *key, *contents = NULL;
                char type;

                r = sd_bus_message_read(m, "s", &key);
                if (r >= 0)
                        r = sd_bus_message_peek_type(m, &type, &contents);
                if (r < 0)
                        return r;
                if (streq(key, "operation") && streq_ptr(contents, "s"))
                        r = sd_bus_message_read(m, "v", "s", &o->operation);
                else if (streq(key, "instance") && streq_ptr(contents, "s"))
                        r = sd_bus_message_read(m, "v", "s", &o->instance);
                else if (streq(key, "name") && streq_ptr(contents, "s"))
                        r = sd_bus_message_read(m, "v", "s", &o->name);
                else if (streq(key, "size") && streq_ptr(contents, "t")) {
                        r = sd_bus_message_read(m, "v", "t", &o->size);
                        o->has_size = r >= 0;
                } else if (streq(key, "skipped") && streq_ptr(contents, "b")) {
                        int b = 0;

                        r = sd_bus_message_read(m, "v", "b", &b);
                        o->skipped = b;
                } else if (streq(key, "uploads") && streq_ptr(contents, "a(sss)")) {
                        r = read_uploads(m, uploads, &o->n_uploads);
                        o->uploads = uploads;
                } else if (streq(key, "unknown-plugins") && streq_ptr(contents, "a(sss)"))
                        r = count_array(m, "a(sss)", &o->n_plugins_missing);
                else
                        r = sd_bus_message_skip(m, "v");
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

static void show(Notifier *n, int r, Notification *x) {
        if (r < 0)
                log_oom();
        else if (r > 0)
                desktop_show(n, x);
        notification_done(x);
}

static int on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Notifier *n = userdata;
        UploadOutcome uploads[UPLOADS_MAX];
        JobOutcome o = {};
        Notification x = {};
        const char *path;
        uint32_t id;
        int r;

        if (!from_service(n, m))
                return 0;
        r = sd_bus_message_read(m, "uoss", &id, &path, &o.result, &o.error);
        if (r >= 0)
                r = read_details(m, &o, uploads);
        if (r < 0) {
                log_debug("Ignoring a JobRemoved we cannot read: %d", r);
                return 0;
        }
        log_debug("Job %" PRIu32 " (%s of %s) %s.", id, strempty(o.operation), strempty(o.instance), o.result);
        show(n, notification_for_job(&o, &x), &x);
        return 0;
}

static int on_backup_uploaded(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Notifier *n = userdata;
        const char *instance, *name, *remote, *url;
        Notification x = {};
        int r;

        if (!from_service(n, m))
                return 0;
        if (sd_bus_message_read(m, "ssss", &instance, &name, &remote, &url) < 0)
                return 0;
        r = notification_for_upload(instance, name, remote, &x);
        show(n, r < 0 ? r : 1, &x);
        return 0;
}

int watch_start(Notifier *n) {
        int r;

        /* The matches first: a change of owner after GetNameOwner() answered cannot be missed. Matches on
         * the service's signals are for sd-bus to route them here: the daemon sends them to us alone. */
        /* arg0: the bus tells us about this one name only, not about every client that comes and goes. */
        r = sd_bus_add_match_async(n->system, NULL,
                                   "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
                                   "interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='" BUS_NAME "'",
                                   on_name_owner_changed, NULL, n);
        if (r < 0)
                return log_error_errno(r, "Cannot follow %s on the system bus: %m", BUS_NAME);
        r = sd_bus_match_signal_async(n->system, NULL, BUS_NAME, OBJECT_ROOT, MANAGER_INTERFACE, "JobRemoved",
                                      on_job_removed, NULL, n);
        if (r >= 0)
                r = sd_bus_match_signal_async(n->system, NULL, BUS_NAME, OBJECT_ROOT, MANAGER_INTERFACE,
                                              "BackupUploaded", on_backup_uploaded, NULL, n);
        if (r < 0)
                return log_error_errno(r, "Cannot listen to %s: %m", BUS_NAME);
        r = sd_bus_call_method_async(n->system, NULL, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                     "org.freedesktop.DBus", "GetNameOwner", on_get_name_owner, n, "s", BUS_NAME);
        if (r < 0)
                return log_error_errno(r, "Cannot look for %s on the system bus: %m", BUS_NAME);
        return 0;
}

void watch_done(Notifier *n) {
        watch_stop(n);
        free(n->owner);
        n->owner = NULL;
}
