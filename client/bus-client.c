/* SPDX-License-Identifier: GPL-2.0-or-later */

/* Talking to opbackupd: connecting, calling, and turning its errors into words and exit codes. */

#include <stdarg.h>

#include "ctl.h"
#include "errors.h"
#include "util.h"

int ctl_connect(Ctl *ctl) {
        int r;

        if (ctl->host)
                r = sd_bus_open_system_remote(&ctl->bus, ctl->host);
        else
                r = sd_bus_open_system(&ctl->bus);
        if (r < 0) {
                fprintf(stderr, "Cannot connect to the system bus%s%s: %s\n", ctl->host ? " of " : "",
                        strempty(ctl->host), strerror(-r));
                return EXIT_FAIL;
        }
        if (ctl->ask_password) {
                (void) sd_bus_set_allow_interactive_authorization(ctl->bus, true);
                if (!ctl->host)
                        polkit_agent_open_if_tty();
        }
        return 0;
}

static bool error_is_not_running(const sd_bus_error *e) {
        return sd_bus_error_has_name(e, SD_BUS_ERROR_SERVICE_UNKNOWN) ||
               sd_bus_error_has_name(e, SD_BUS_ERROR_NAME_HAS_NO_OWNER) ||
               sd_bus_error_has_name(e, "org.freedesktop.DBus.Error.Spawn.ServiceNotFound") ||
               sd_bus_error_has_name(e, "org.freedesktop.DBus.Error.Spawn.ChildExited") ||
               sd_bus_error_has_name(e, "org.freedesktop.systemd1.NoSuchUnit");
}

int ctl_report_error(const char *what, const sd_bus_error *e, int r) {
        const char *msg = e && e->message ? e->message : strerror(r < 0 ? -r : EIO);

        if (e && error_is_not_running(e)) {
                fprintf(stderr, "%s: the opbackup service (%s) is not running and could not be started.\n"
                        "Start it with 'systemctl start opbackupd' (as root), or check that opbackup is "
                        "installed (its D-Bus activation file and bus policy).\n", what, BUS_NAME);
                return EXIT_FAIL;
        }
        if (e && (sd_bus_error_has_name(e, SD_BUS_ERROR_ACCESS_DENIED) ||
                  sd_bus_error_has_name(e, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED))) {
                fprintf(stderr, "%s: not authorized. %s\n", what, msg);
                return EXIT_NOT_AUTHORIZED;
        }
        fprintf(stderr, "%s: %s\n", what, msg);
        if (!e)
                return EXIT_FAIL;
        if (sd_bus_error_has_name(e, BUS_ERROR_NO_SUCH_INSTANCE) ||
            sd_bus_error_has_name(e, BUS_ERROR_NO_SUCH_BACKUP) ||
            sd_bus_error_has_name(e, BUS_ERROR_NO_SUCH_JOB))
                return EXIT_NOT_FOUND;
        if (sd_bus_error_has_name(e, BUS_ERROR_BUSY))
                return EXIT_BUSY;
        if (sd_bus_error_has_name(e, SD_BUS_ERROR_INVALID_ARGS))
                return EXIT_USAGE;
        return EXIT_FAIL;
}

int ctl_call_message(Ctl *ctl, sd_bus_message *m, uint64_t timeout_usec, sd_bus_message **ret_reply) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        /* Interactive authentication may keep a person typing; don't time out under them. */
        if (timeout_usec == 0 && ctl->ask_password)
                timeout_usec = 5ULL * 60 * 1000000;
        r = sd_bus_call(ctl->bus, m, timeout_usec, &error, ret_reply);
        if (r < 0)
                return ctl_report_error(sd_bus_message_get_member(m), &error, r);
        return 0;
}

int ctl_call(Ctl *ctl, const char *path, const char *interface, const char *member,
             sd_bus_message **ret_reply, const char *types, ...) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        va_list ap;
        int r;

        r = sd_bus_message_new_method_call(ctl->bus, &m, BUS_NAME, path, interface, member);
        if (r < 0)
                return ctl_report_error(member, NULL, r);
        if (!isempty(types)) {
                va_start(ap, types);
                r = sd_bus_message_appendv(m, types, ap);
                va_end(ap);
                if (r < 0)
                        return ctl_report_error(member, NULL, r);
        }
        return ctl_call_message(ctl, m, 0, ret_reply);
}

int ctl_instance_path(Ctl *ctl, char **ret_path) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *path;
        int r;

        r = ctl_call(ctl, OBJECT_ROOT, MANAGER_INTERFACE, "GetInstance", &reply, "s", strempty(ctl->instance));
        if (r != 0)
                return r;
        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0)
                return ctl_report_error("GetInstance", NULL, r);
        *ret_path = strdup(path);
        return *ret_path ? 0 : ctl_report_error("GetInstance", NULL, -ENOMEM);
}

int ctl_read_dict(sd_bus_message *m, ctl_dict_entry_fn fn, void *userdata) {
        const char *key, *contents;
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                r = sd_bus_message_read(m, "s", &key);
                if (r >= 0)
                        r = sd_bus_message_peek_type(m, NULL, &contents);
                if (r >= 0)
                        r = fn(m, key, contents, userdata);
                if (r == 0)
                        r = sd_bus_message_skip(m, "v");
                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        return r < 0 ? r : sd_bus_message_exit_container(m);
}
