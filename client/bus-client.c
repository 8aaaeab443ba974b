/* SPDX-License-Identifier: GPL-2.0-or-later */

/* Talking to opbackupd: connecting, calling, and turning its errors into the command's words and exit
 * codes. A person reading "Cannot list backups: not authorized." needs neither the method the client
 * called nor the polkit action's id to understand it; the id goes on the advice line, for whoever writes
 * the polkit rule. */

#include <ctype.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>

#include "agent.h"
#include "bus-client.h"
#include "errors.h"
#include "util.h"

/* polkit may keep a person typing a password. */
#define INTERACTIVE_TIMEOUT_USEC (5ULL * 60 * 1000000)

#define GROUP "opbackup"

int ctl_connect(Ctl *ctl) {
        int r;

        if (ctl->bus)
                return 0;
        if (ctl->host)
                r = sd_bus_open_system_remote(&ctl->bus, ctl->host);
        else
                r = sd_bus_open_system(&ctl->bus);
        if (r < 0) {
                fprintf(stderr, "Cannot connect to the system bus%s%s: %s\n", ctl->host ? " of " : "",
                        strempty(ctl->host), strerror(-r));
                return EXIT_FAIL;
        }
        return 0;
}

/* ---- Errors ---- */

void ctl_set_doing(Ctl *ctl, const char *format, ...) {
        char *s;
        va_list ap;
        int r;

        va_start(ap, format);
        r = vasprintf(&s, format, ap);
        va_end(ap);
        if (r < 0)
                return;
        free(ctl->doing_buf);
        ctl->doing = ctl->doing_buf = s;
}

void ctl_free_doing(Ctl *ctl) {
        if (ctl->doing == ctl->doing_buf)
                ctl->doing = NULL;
        free(ctl->doing_buf);
        ctl->doing_buf = NULL;
}

/* The polkit action each method needs (the daemon's table, opbackupd(8)). Job.Cancel needs the action
 * that started the job: it is read from the daemon's message. */
static const struct {
        const char *member;
        const char *action;
} method_actions[] = {
        { "ListInstances", "access" },
        { "GetInstance", "access" },
        { "ListJobs", "access" },
        { "Subscribe", "access" },
        { "ListBackups", "access" },
        { "OpenBackup", "access" },
        { "GetUnknownPlugins", "access" },
        { "CreateBackup", "create" },
        { "ImportBackup", "create" },
        { "DeleteBackup", "delete" },
        { "PruneBackups", "delete" },
        { "ClearUnknownPlugins", "delete" },
        { "RestoreBackup", "restore" },
        { "RestoreBackupFromFile", "restore" },
};

static const char *refused_action(const char *member, const sd_bus_error *e) {
        static const char *const actions[] = { "access", "create", "delete", "restore" };
        char id[64];

        for (size_t k = 0; member && k < ELEMENTSOF(method_actions); k++)
                if (streq(member, method_actions[k].member))
                        return method_actions[k].action;
        for (size_t k = 0; e && e->message && k < ELEMENTSOF(actions); k++) {
                snprintf(id, sizeof(id), "%s.%s", BUS_NAME, actions[k]);
                if (strstr(e->message, id))
                        return actions[k];
        }
        return NULL;
}

/* Whether the user database puts us in group "opbackup" (what polkit's rules look at). */
static bool in_opbackup_group(void) {
        struct passwd *pw = getpwuid(getuid());
        struct group *gr = getgrnam(GROUP);
        gid_t groups[256];
        int n = ELEMENTSOF(groups);

        if (!pw || !gr)
                return false;
        if (pw->pw_gid == gr->gr_gid)
                return true;
        if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &n) < 0)
                return false;
        for (int k = 0; k < n; k++)
                if (groups[k] == gr->gr_gid)
                        return true;
        return false;
}

/* Who can grant what the daemon refused, and how. The shipped rules let group "opbackup" have access,
 * create and delete; restore is never the group's: it replaces an instance's files. So a restore is
 * advised in its own words even when already finding the instance (access) was refused. */
static void print_grant_advice(const Ctl *ctl, const char *action) {
        if (!action && !streq_ptr(ctl->action, "restore")) {
                fprintf(stderr, "Canceling a job needs the authorization that started it (%s.create for a "
                        "backup, %s.restore for a restore): ask an administrator.\n", BUS_NAME, BUS_NAME);
                return;
        }
        if (streq_ptr(ctl->action, "restore") || streq_ptr(action, "restore")) {
                fprintf(stderr, "A restore replaces the instance's files, so it needs an administrator: run it "
                        "as root (e.g. with sudo), or ask an administrator for a polkit rule granting %s%s.restore.\n",
                        streq_ptr(action, "access") ? BUS_NAME ".access and " : "", BUS_NAME);
                return;
        }
        if (!ctl->host && in_opbackup_group())
                fprintf(stderr, "You are in the group '%s', but polkit does not grant you %s.%s%s%s: ask an "
                        "administrator.\n", GROUP, BUS_NAME, action, ctl->instance ? " on instance " : "",
                        strempty(ctl->instance));
        else
                fprintf(stderr, "Ask an administrator to add you to the group '%s', or to grant %s.%s in a "
                        "polkit rule.\n", GROUP, BUS_NAME, action);
}

static bool error_is_not_running(const sd_bus_error *e) {
        return sd_bus_error_has_name(e, SD_BUS_ERROR_SERVICE_UNKNOWN) ||
               sd_bus_error_has_name(e, SD_BUS_ERROR_NAME_HAS_NO_OWNER) ||
               sd_bus_error_has_name(e, "org.freedesktop.DBus.Error.Spawn.ServiceNotFound") ||
               sd_bus_error_has_name(e, "org.freedesktop.DBus.Error.Spawn.ChildExited") ||
               sd_bus_error_has_name(e, "org.freedesktop.systemd1.NoSuchUnit");
}

static int report_access_denied(const Ctl *ctl, const char *what, const char *member, const sd_bus_error *e) {
        const char *msg = strempty(e->message), *cause;

        if (sd_bus_error_has_name(e, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED)) {
                fprintf(stderr, "Cannot %s: authentication is required.\n", what);
                /* Asked again allowing interaction already, unless --no-ask-password: then nothing could ask. */
                if (!ctl->ask_password)
                        fprintf(stderr, "Run it on a terminal without --no-ask-password to authenticate.\n");
                else if (ctl->host || !isatty(STDIN_FILENO))
                        fprintf(stderr, "Run it on a terminal to authenticate.\n");
                else
                        fprintf(stderr, "No polkit agent could ask for a password: is pkttyagent (package "
                                "polkitd) installed?\n");
                print_grant_advice(ctl, refused_action(member, e));
                return EXIT_NOT_AUTHORIZED;
        }
        if (startswith(msg, "Not authorized")) {
                fprintf(stderr, "Cannot %s: not authorized.\n", what);
                print_grant_advice(ctl, refused_action(member, e));
                return EXIT_NOT_AUTHORIZED;
        }
        /* "Cannot check authorization for ACTION: polkit is not available (...). Make sure ...": the
         * daemon could not ask; the words after the action say why, on the advice line. */
        if (startswith(msg, "Cannot check authorization") && (cause = strstr(msg, ": ")) && cause[2]) {
                fprintf(stderr, "Cannot %s: the service cannot check authorization.\n%c%s\n", what,
                        toupper((unsigned char) cause[2]), cause + 3);
                return EXIT_NOT_AUTHORIZED;
        }
        if (startswith(msg, "Cannot determine")) {
                fprintf(stderr, "Cannot %s: %s\n", what, msg);
                return EXIT_NOT_AUTHORIZED;
        }
        /* Anything else is dbus-daemon refusing by its bus policy, before the service saw the call. */
        fprintf(stderr, "Cannot %s: the system bus refused the call.\n"
                "Check that opbackup's bus policy (%s.conf) is installed: %s\n", what, BUS_NAME, msg);
        return EXIT_NOT_AUTHORIZED;
}

static const char *doing(const Ctl *ctl) {
        return ctl->doing ?: "talk to the opbackup service";
}

int ctl_report_error(const Ctl *ctl, const char *member, const sd_bus_error *e, int r) {
        return ctl_report_error_as(ctl, doing(ctl), member, e, r);
}

int ctl_report_error_as(const Ctl *ctl, const char *what, const char *member, const sd_bus_error *e, int r) {

        if (!e || !sd_bus_error_is_set(e)) {
                fprintf(stderr, "Cannot %s: %s\n", what, strerror(r < 0 ? -r : EIO));
                return EXIT_FAIL;
        }
        if (error_is_not_running(e)) {
                fprintf(stderr, "Cannot %s: the opbackup service is not running and could not be started.\n"
                        "Start it with 'systemctl start opbackupd' (as root), or check that opbackup is "
                        "installed (the D-Bus activation file and bus policy of %s).\n", what, BUS_NAME);
                return EXIT_FAIL;
        }
        if (sd_bus_error_has_name(e, SD_BUS_ERROR_ACCESS_DENIED) ||
            sd_bus_error_has_name(e, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED))
                return report_access_denied(ctl, what, member, e);

        fprintf(stderr, "Cannot %s: %s\n", what, e->message ?: e->name);
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

/* ---- Calls ---- */

/* A copy of the sent (sealed, so unchangeable) message m that allows interactive authorization. */
static int copy_allowing_interaction(sd_bus *bus, sd_bus_message *m, sd_bus_message **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *c = NULL;
        int r;

        r = sd_bus_message_new_method_call(bus, &c, sd_bus_message_get_destination(m), sd_bus_message_get_path(m),
                                           sd_bus_message_get_interface(m), sd_bus_message_get_member(m));
        if (r >= 0)
                r = sd_bus_message_set_allow_interactive_authorization(c, true);
        if (r >= 0)
                r = sd_bus_message_rewind(m, true);
        if (r >= 0)
                r = sd_bus_message_copy(c, m, true);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

int ctl_call_message_full(Ctl *ctl, sd_bus_message *m, uint64_t timeout_usec, sd_bus_error *ret_error,
                          sd_bus_message **ret_reply) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *again = NULL;
        int r;

        r = sd_bus_call(ctl->bus, m, timeout_usec, ret_error, ret_reply);
        if (r >= 0 || !ctl->ask_password ||
            !sd_bus_error_has_name(ret_error, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED) ||
            sd_bus_message_get_allow_interactive_authorization(m) > 0)
                return r;

        /* polkit wants someone to authenticate. Only now is an agent worth starting (a member of group
         * opbackup never sees one), and the refused call, which changed nothing, is sent again allowing
         * interaction. Later calls allow it from the start. */
        if (!ctl->host)
                polkit_agent_open_if_tty();
        (void) sd_bus_set_allow_interactive_authorization(ctl->bus, true);
        r = copy_allowing_interaction(ctl->bus, m, &again);
        if (r < 0)
                return r;
        sd_bus_error_free(ret_error);
        return sd_bus_call(ctl->bus, again, timeout_usec > INTERACTIVE_TIMEOUT_USEC ? timeout_usec : INTERACTIVE_TIMEOUT_USEC,
                           ret_error, ret_reply);
}

int ctl_call_message(Ctl *ctl, sd_bus_message *m, uint64_t timeout_usec, sd_bus_message **ret_reply) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = ctl_call_message_full(ctl, m, timeout_usec, &error, ret_reply);
        if (r < 0)
                return ctl_report_error(ctl, sd_bus_message_get_member(m), &error, r);
        return 0;
}

int ctl_call(Ctl *ctl, const char *path, const char *interface, const char *member,
             sd_bus_message **ret_reply, const char *types, ...) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        va_list ap;
        int r;

        /* The first call connects: commands check their arguments before, without a bus. */
        r = ctl_connect(ctl);
        if (r != 0)
                return r;
        r = sd_bus_message_new_method_call(ctl->bus, &m, BUS_NAME, path, interface, member);
        if (r < 0)
                return ctl_report_error(ctl, member, NULL, r);
        if (!isempty(types)) {
                va_start(ap, types);
                r = sd_bus_message_appendv(m, types, ap);
                va_end(ap);
                if (r < 0)
                        return ctl_report_error(ctl, member, NULL, r);
        }
        return ctl_call_message(ctl, m, 0, ret_reply);
}

/* ---- Instances ---- */

static int instance_path_by_name(Ctl *ctl, char **ret_path) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *path;
        int r;

        r = ctl_call(ctl, OBJECT_ROOT, MANAGER_INTERFACE, "GetInstance", &reply, "s", ctl->instance);
        if (r != 0)
                return r;
        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0)
                return ctl_report_error(ctl, NULL, NULL, r);
        *ret_path = strdup(path);
        return *ret_path ? 0 : ctl_report_error(ctl, NULL, NULL, -ENOMEM);
}

int ctl_instance_path(Ctl *ctl, char **ret_path) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_strv_free_ char **names = NULL;
        _cleanup_free_ char *only = NULL;
        const char *name, *path;
        int r;

        if (ctl->instance)
                return instance_path_by_name(ctl, ret_path);

        /* Which instances there are, rather than GetInstance(""): with several, the error can name them. */
        r = ctl_call(ctl, OBJECT_ROOT, MANAGER_INTERFACE, "ListInstances", &reply, NULL);
        if (r != 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', "(so)");
        while (r >= 0 && (r = sd_bus_message_read(reply, "(so)", &name, &path)) > 0) {
                if (strv_extend(&names, name) < 0 || (!only && !(only = strdup(path))))
                        r = -ENOMEM;
        }
        if (r < 0)
                return ctl_report_error(ctl, NULL, NULL, r);

        if (strv_length(names) == 1) {
                *ret_path = TAKE_PTR(only);
                return 0;
        }
        if (!names) {
                fprintf(stderr, "Cannot %s: no OctoPrint instance is configured or found.\n"
                        "Configure one in /etc/opbackup/instances.d/NAME.conf (see opbackupd.conf(5)).\n",
                        doing(ctl));
                return EXIT_NOT_FOUND;
        }
        fprintf(stderr, "Cannot %s: there are %zu instances; choose one with -i NAME:\n", doing(ctl),
                strv_length(names));
        STRV_FOREACH(n, names)
                fprintf(stderr, "  %s\n", *n);
        return EXIT_USAGE;
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
