/* SPDX-License-Identifier: GPL-2.0-or-later */

/* opbackupctl monitor: subscribe and print one line per signal of the service (backups created and
 * deleted, jobs started and ended, job log lines) until SIGINT or SIGTERM. If the service stops (it exits
 * when idle, or is restarted), monitoring goes on with the next one. */

#include <json-c/json.h>
#include <signal.h>
#include <systemd/sd-event.h>

#include "bus-client.h"
#include "cmd-monitor.h"
#include "output.h"
#include "util.h"

#define JSON_DEPTH_MAX 16

typedef struct Monitor {
        Ctl *ctl;
        sd_event *event;
        char *owner;                    /* unique name of the service we are subscribed at */
        int exit_code;
} Monitor;

/* Any D-Bus value at the current position as JSON (the a{sv} details of JobRemoved carry several types). */
static int value_to_json(sd_bus_message *m, unsigned depth, json_object **ret) {
        const char *contents;
        json_object *o;
        char type;
        int r;

        if (depth > JSON_DEPTH_MAX)
                return -E2BIG;
        r = sd_bus_message_peek_type(m, &type, &contents);
        if (r <= 0)
                return r < 0 ? r : -EBADMSG;

        switch (type) {
        case 's': case 'o': case 'g': {
                const char *s;
                r = sd_bus_message_read_basic(m, type, &s);
                *ret = r < 0 ? NULL : json_object_new_string(s);
                return r;
        }
        case 'b': {
                int b;
                r = sd_bus_message_read_basic(m, type, &b);
                *ret = json_object_new_boolean(b);
                return r;
        }
        case 'y': case 'n': case 'q': case 'i': case 'u': case 'x': case 'h': {
                union { uint8_t y; int16_t n; uint16_t q; int32_t i; uint32_t u; int64_t x; } v = {};
                r = sd_bus_message_read_basic(m, type, &v);
                *ret = json_object_new_int64(type == 'y' ? v.y : type == 'n' ? v.n : type == 'q' ? v.q :
                                             type == 'u' ? v.u : type == 'x' ? v.x : v.i);
                return r;
        }
        case 't': {
                uint64_t t;
                r = sd_bus_message_read_basic(m, type, &t);
                *ret = json_object_new_uint64(t);
                return r;
        }
        case 'd': {
                double d;
                r = sd_bus_message_read_basic(m, type, &d);
                *ret = json_object_new_double(d);
                return r;
        }
        case 'v': case 'r': case 'a':
                break;
        default:
                return -EBADMSG;
        }

        r = sd_bus_message_enter_container(m, type, contents);
        if (r < 0)
                return r;
        if (type == 'v') {
                r = value_to_json(m, depth + 1, &o);
                if (r < 0)
                        return r;
        } else if (type == 'a' && contents[0] == '{') {
                o = json_object_new_object();
                for (;;) {
                        json_object *k = NULL, *v = NULL;
                        const char *entry;

                        r = sd_bus_message_peek_type(m, NULL, &entry);
                        if (r <= 0)
                                break;  /* 0: the end of the array */
                        r = sd_bus_message_enter_container(m, 'e', entry);
                        if (r >= 0)
                                r = value_to_json(m, depth + 1, &k);
                        if (r >= 0)
                                r = value_to_json(m, depth + 1, &v);
                        if (r >= 0)
                                r = sd_bus_message_exit_container(m);
                        if (r < 0) {
                                json_object_put(k);
                                json_object_put(v);
                                break;
                        }
                        json_object_object_add(o, json_object_get_string(k), v);
                        json_object_put(k);
                }
        } else {
                o = json_object_new_array();
                while ((r = sd_bus_message_at_end(m, false)) == 0) {
                        json_object *v = NULL;
                        r = value_to_json(m, depth + 1, &v);
                        if (r < 0)
                                break;
                        json_object_array_add(o, v);
                }
        }
        if (r < 0) {
                json_object_put(o);
                return r;
        }
        *ret = o;
        return sd_bus_message_exit_container(m);
}

/* The arguments of each signal, by name; the types follow the D-Bus API. */
static const struct {
        const char *member;
        const char *args[5];
} signal_args[] = {
        { "BackupCreated", { "instance", "name", "path", "excludes" } },
        { "BackupDeleted", { "instance", "name" } },
        { "JobNew", { "id", "path" } },
        { "JobRemoved", { "id", "path", "result", "error", "details" } },
        { "Log", { "level", "line" } },
};

static int signal_to_json(sd_bus_message *m, json_object **ret) {
        const char *member = sd_bus_message_get_member(m);
        json_object *o = json_object_new_object();
        int r = 0;

        json_object_object_add(o, "signal", json_object_new_string(member));
        for (size_t k = 0; k < ELEMENTSOF(signal_args); k++) {
                if (!streq(member, signal_args[k].member))
                        continue;
                if (streq(member, "Log")) {
                        /* Which job's log: its id, from the object path. */
                        const char *id = strrchr(sd_bus_message_get_path(m), '/');
                        json_object_object_add(o, "id", json_object_new_int64(id ? strtoll(id + 1, NULL, 10) : 0));
                        json_object_object_add(o, "path", json_object_new_string(sd_bus_message_get_path(m)));
                }
                for (size_t a = 0; a < ELEMENTSOF(signal_args[k].args) && signal_args[k].args[a]; a++) {
                        json_object *v = NULL;

                        r = value_to_json(m, 0, &v);
                        if (r < 0)
                                break;
                        json_object_object_add(o, signal_args[k].args[a], v);
                }
        }
        if (r < 0) {
                json_object_put(o);
                return r;
        }
        *ret = o;
        return 0;
}

/* A string as it is, anything else as JSON. */
static void print_value(json_object *v) {
        if (json_object_is_type(v, json_type_string))
                fputs(json_object_get_string(v), stdout);
        else
                fputs(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
                      stdout);
}

/* "BackupCreated instance=inst1 name=... path=... excludes=uploads,timelapse" */
static void print_text(json_object *o) {
        json_object_object_foreach(o, key, v) {
                if (streq(key, "signal")) {
                        fputs(json_object_get_string(v), stdout);
                        continue;
                }
                printf(" %s=", key);
                if (json_object_is_type(v, json_type_array)) {
                        size_t n = json_object_array_length(v);
                        if (n == 0)
                                fputs("-", stdout);
                        for (size_t k = 0; k < n; k++) {
                                if (k > 0)
                                        fputs(",", stdout);
                                print_value(json_object_array_get_idx(v, k));
                        }
                } else
                        print_value(v);
        }
        fputs("\n", stdout);
        fflush(stdout);
}

static int on_signal_message(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Monitor *mon = userdata;
        json_object *o = NULL;

        /* Anyone may send us a signal; only the service's count. */
        if (!mon->owner || !streq_ptr(sd_bus_message_get_sender(m), mon->owner))
                return 0;
        if (signal_to_json(m, &o) < 0)
                return 0;
        if (mon->ctl->json)
                ctl_json_print_line(o);
        else
                print_text(o);
        json_object_put(o);
        return 0;
}

static int on_subscribed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Monitor *mon = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);

        if (e) {
                mon->exit_code = ctl_report_error(mon->ctl, "Subscribe", e, -EIO);
                (void) sd_event_exit(mon->event, mon->exit_code);
        }
        return 0;
}

static int on_name_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Monitor *mon = userdata;
        const char *name, *old_owner, *new_owner;

        if (!streq_ptr(sd_bus_message_get_sender(m), "org.freedesktop.DBus") ||
            sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0 || !streq(name, BUS_NAME))
                return 0;
        if (isempty(new_owner)) {
                if (!mon->ctl->quiet)
                        fprintf(stderr, "The opbackup service stopped; waiting for it to start again.\n");
                free(mon->owner);
                mon->owner = NULL;
                return 0;
        }
        /* A new service: subscribe there too. */
        if (free_and_strdup(&mon->owner, new_owner) < 0 ||
            sd_bus_call_method_async(mon->ctl->bus, NULL, BUS_NAME, OBJECT_ROOT, MANAGER_INTERFACE,
                                     "Subscribe", on_subscribed, mon, "") < 0) {
                fprintf(stderr, "Cannot subscribe to the restarted opbackup service.\n");
                mon->exit_code = EXIT_FAIL;
                (void) sd_event_exit(mon->event, EXIT_FAIL);
        }
        return 0;
}

static int on_disconnected(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Monitor *mon = userdata;

        fprintf(stderr, "Lost the connection to the bus.\n");
        mon->exit_code = EXIT_FAIL;
        return sd_event_exit(mon->event, EXIT_FAIL);
}

static int on_quit(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Monitor *mon = userdata;

        mon->exit_code = EXIT_OK;
        return sd_event_exit(mon->event, EXIT_OK);
}

static int get_owner(Ctl *ctl, char **ret) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *owner;
        int r;

        r = sd_bus_call_method(ctl->bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                               "GetNameOwner", &error, &reply, "s", BUS_NAME);
        if (r >= 0)
                r = sd_bus_message_read(reply, "s", &owner);
        if (r < 0)
                return ctl_report_error(ctl, "GetNameOwner", &error, r);
        return free_and_strdup(ret, owner) < 0 ? ctl_report_error(ctl, NULL, NULL, -ENOMEM) : 0;
}

int cmd_monitor(Ctl *ctl, int argc, char *argv[]) {
        static const char *const rules[] = {
                "type='signal',sender='" BUS_NAME "',path='" OBJECT_ROOT "',interface='" MANAGER_INTERFACE "'",
                "type='signal',sender='" BUS_NAME "',path_namespace='" OBJECT_ROOT "/job',"
                "interface='" JOB_INTERFACE "',member='Log'",
        };
        sd_bus_slot *slots[ELEMENTSOF(rules) + 2] = {};
        Monitor mon = { .ctl = ctl };
        sigset_t ss;
        int r = 0;

        r = ctl_connect(ctl);
        if (r != 0)
                return r;
        /* Matches first, then Subscribe: nothing sent after the subscription can be missed. */
        for (size_t k = 0; k < ELEMENTSOF(rules) && r >= 0; k++)
                r = sd_bus_add_match(ctl->bus, &slots[k], rules[k], on_signal_message, &mon);
        if (r >= 0)
                r = sd_bus_add_match(ctl->bus, &slots[ELEMENTSOF(rules)],
                                     "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
                                     "interface='org.freedesktop.DBus',member='NameOwnerChanged',"
                                     "arg0='" BUS_NAME "'", on_name_owner_changed, &mon);
        if (r >= 0)
                r = sd_bus_match_signal(ctl->bus, &slots[ELEMENTSOF(rules) + 1], NULL, "/org/freedesktop/DBus/Local",
                                        "org.freedesktop.DBus.Local", "Disconnected", on_disconnected, &mon);
        if (r < 0) {
                r = ctl_report_error(ctl, NULL, NULL, r);
                goto finish;
        }
        r = ctl_call(ctl, OBJECT_ROOT, MANAGER_INTERFACE, "Subscribe", NULL, NULL);
        if (r == 0)
                r = get_owner(ctl, &mon.owner);
        if (r != 0)
                goto finish;

        sigemptyset(&ss);
        sigaddset(&ss, SIGINT);
        sigaddset(&ss, SIGTERM);
        sigprocmask(SIG_BLOCK, &ss, NULL);
        r = sd_event_new(&mon.event);
        if (r >= 0)
                r = sd_event_add_signal(mon.event, NULL, SIGINT, on_quit, &mon);
        if (r >= 0)
                r = sd_event_add_signal(mon.event, NULL, SIGTERM, on_quit, &mon);
        if (r >= 0)
                r = sd_bus_attach_event(ctl->bus, mon.event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0) {
                r = ctl_report_error(ctl, NULL, NULL, r);
                goto finish;
        }
        if (!ctl->quiet && !ctl->json && isatty(STDERR_FILENO))
                fprintf(stderr, "Monitoring the opbackup service; Ctrl-C stops.\n");
        r = sd_event_loop(mon.event);
        r = r < 0 ? EXIT_FAIL : mon.exit_code;
finish:
        for (size_t k = 0; k < ELEMENTSOF(slots); k++)
                sd_bus_slot_unref(slots[k]);
        if (mon.event) {
                (void) sd_bus_detach_event(ctl->bus);
                sd_event_unref(mon.event);
        }
        free(mon.owner);
        return r;
}
