#!/usr/bin/python3
# Who may call what (org.opbackup.backup1(5), AUTHORIZATION): every method of the Manager and Instance
# interfaces, called as root, as a member of group "opbackup" (granted access/create/delete by
# polkit/50-opbackup.rules) and as a user with no grant. A call "passes authorization" when it succeeds or
# fails for another reason than AccessDenied/InteractiveAuthorizationRequired (e.g. NoSuchBackup for the
# made-up names used here) — as long as the error is not one that means the call never reached the daemon's
# method (UnknownMethod ...).
#
# The arguments are valid (well-formed names, real instance) so that the only reason left to refuse an
# unauthorized caller is authorization: the daemon must ask polkit before it looks at the backup folder or
# reads a passed file, so an unauthorized caller learns nothing about which backups exist.

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture  # noqa: E402
from fixture import (Fixture, DBusError, expect, expect_eq, MANAGER_PATH, IFACE_MANAGER,  # noqa: E402
                     IFACE_INSTANCE, USER_ALLOWED, USER_DENIED, ERROR_ACCESS_DENIED,
                     ERROR_INTERACTIVE_AUTH, parse_interfaces, api_xml)

NO_BACKUP = "nonexistent-backup-20200101-000000.zip"
NOT_A_ZIP = "@NOT_A_ZIP@"       # replaced by the path of a file that is not a backup (opened by the caller)

# Errors that mean the call did not reach the method's authorization check at all.
NOT_REACHED = {
        ERROR_ACCESS_DENIED, ERROR_INTERACTIVE_AUTH,
        "org.freedesktop.DBus.Error.UnknownMethod", "org.freedesktop.DBus.Error.UnknownObject",
        "org.freedesktop.DBus.Error.UnknownInterface", "org.freedesktop.DBus.Error.ServiceUnknown",
        "org.freedesktop.DBus.Error.NoReply", "org.freedesktop.DBus.Error.Timeout",
        "org.freedesktop.DBus.Error.Disconnected", "org.freedesktop.DBus.Error.InvalidSignature",
        "org.freedesktop.DBus.Error.InvalidArgs",
}

# (interface, method) -> (polkit action or None when the method needs none, signature, args).
# Methods that would start work come last, so that a running job cannot turn a later refusal into Busy.
METHODS = {
        ("Manager", "ListInstances"): ("access", "", []),
        ("Manager", "GetInstance"): ("access", "s", ["inst1"]),
        ("Manager", "ListJobs"): ("access", "", []),
        ("Manager", "ListRemotes"): ("access", "", []),
        ("Manager", "Subscribe"): ("access", "", []),
        ("Manager", "Watch"): ("access", "", []),
        ("Manager", "Unsubscribe"): (None, "", []),     # dropping one's own subscription
        ("Instance", "ListBackups"): ("access", "", []),
        ("Instance", "OpenBackup"): ("access", "s", [NO_BACKUP]),
        ("Instance", "GetUnknownPlugins"): ("access", "", []),
        ("Instance", "ListRemoteBackups"): ("access", "s", ["no-such-remote"]),
        ("Instance", "DeleteRemoteBackup"): ("delete", "ss", ["no-such-remote", NO_BACKUP]),
        ("Instance", "PruneRemoteBackups"): ("delete", "s", ["no-such-remote"]),
        ("Instance", "DeleteBackup"): ("delete", "s", [NO_BACKUP]),
        ("Instance", "PruneBackups"): ("delete", "us", [1000, "nonexistent-*.zip"]),
        ("Instance", "ClearUnknownPlugins"): ("delete", "", []),
        ("Instance", "RestoreBackup"): ("restore", "sa{sv}", [NO_BACKUP, {"skip-plugins": True}]),
        ("Instance", "RestoreBackupFromFile"): ("restore", "ha{sv}", [NOT_A_ZIP, {"skip-plugins": True}]),
        ("Instance", "ImportBackup"): ("create", "hs", [NOT_A_ZIP, "authz-import.zip"]),
        ("Instance", "UploadBackup"): ("create", "sas", [NO_BACKUP, ["no-such-remote"]]),
        ("Instance", "FetchRemoteBackup"): ("create", "ss", ["no-such-remote", NO_BACKUP]),
        ("Instance", "CreateBackup"): ("create", "asa{sv}", [[], {}]),
}

# What 50-opbackup.rules grants to group "opbackup".
GROUP_GRANTS = {"access", "create", "delete"}


def outcome(fx, user, iface, method, sig, args):
        """None if the call succeeded, else the DBusError."""
        path = MANAGER_PATH if iface == "Manager" else fx.instance_path("inst1")
        args = [os.path.join(fx.dir, "not-a-backup.zip") if a == NOT_A_ZIP else a for a in args]
        if method == "CreateBackup":
                # Each caller names its backup, so two backups in one second cannot collide.
                args = [[], {"name": f"authz-{user}.zip"}]
        try:
                fx.call(user, path, f"org.opbackup.backup1.{iface}", method, sig, *args)
        except DBusError as e:
                return e
        return None


def describe(err):
        return "ok" if err is None else err.name.rsplit(".", 1)[-1]


def write_not_a_zip(fx):
        path = os.path.join(fx.dir, "not-a-backup.zip")
        with open(path, "w") as f:
                f.write("This is not a zip file.\n")
        os.chmod(path, 0o644)


def advice_problems(method, user, action, message):
        """The refusal's advice must be one that works: the group grants access/create/delete only."""
        full = f"org.opbackup.backup1.{action}"
        if action in GROUP_GRANTS:
                if "group 'opbackup'" not in message:
                        return [f"{method} as {user}: the refusal does not name the group 'opbackup': {message}"]
                return []
        if "add you to the group" in message or full not in message or "administrator" not in message:
                return [f"{method} as {user}: a {action} refusal must name an administrator or a polkit rule "
                        f"granting {full}, not the group: {message}"]
        return []


def test_every_method_is_in_the_table():
        # A method added to the API without an authorization expectation here fails this test.
        api = parse_interfaces(api_xml())
        listed = {(i.rsplit(".", 1)[-1], m) for i, d in api.items() for m in d["methods"]
                  if not i.endswith(".Job")}
        expect_eq(listed, set(METHODS), "Manager and Instance methods of dbus/org.opbackup.backup1.xml")


def test_who_may_call_what():
        problems = []
        with Fixture(prepare=write_not_a_zip) as fx:
                for (iface, method), (action, sig, args) in METHODS.items():
                        row = []
                        for user in ("root", USER_ALLOWED, USER_DENIED):
                                err = outcome(fx, user, iface, method, sig, args)
                                row.append(f"{user}={describe(err)}")
                                if user == "root" or action is None or (user == USER_ALLOWED and
                                                                        action in GROUP_GRANTS):
                                        if err is not None and err.name in NOT_REACHED:
                                                problems.append(f"{method} as {user}: want it authorized, "
                                                                f"got {err}")
                                else:
                                        if err is None or err.name != ERROR_ACCESS_DENIED:
                                                problems.append(f"{method} as {user} (action {action}): "
                                                                f"want AccessDenied, got "
                                                                f"{'success' if err is None else err}")
                                        else:
                                                problems += advice_problems(method, user, action, err.message)
                        print(f"# {iface}.{method} [{action}]: {' '.join(row)}")
                # Property reads need no authorization (org.opbackup.backup1(5), INTRODUCTION).
                version = fx.get_property(USER_DENIED, MANAGER_PATH, IFACE_MANAGER, "Version")
                expect(isinstance(version, str) and version, f"Version read by {USER_DENIED}: {version!r}")
                name = fx.get_property(USER_DENIED, fx.instance_path("inst1"), IFACE_INSTANCE, "Name")
                expect_eq(name, "inst1", f"instance Name read by {USER_DENIED}")
                if problems:
                        raise AssertionError(f"{len(problems)} wrong answers:\n  " + "\n  ".join(problems))
        print("# Job.Cancel is not covered here: it needs a job that runs long enough")


def test_no_polkit_root_allowed_others_denied():
        # polkit is never consulted for root, and everybody else is denied when polkit is not on the bus.
        with Fixture(polkit=False) as fx:
                instances = fx.call("root", MANAGER_PATH, IFACE_MANAGER, "ListInstances", "")[0]
                expect_eq(instances, [["inst1", fx.instance_path("inst1")]], "ListInstances as root")
                expect_eq(fx.call("root", MANAGER_PATH, IFACE_MANAGER, "GetInstance", "s", "inst1"),
                          [fx.instance_path("inst1")], "GetInstance as root")
                for method, sig, args, path, iface in (
                                ("ListInstances", "", [], MANAGER_PATH, IFACE_MANAGER),
                                ("ListBackups", "", [], fx.instance_path("inst1"), IFACE_INSTANCE)):
                        err = fx.call_error(USER_ALLOWED, path, iface, method, sig, *args)
                        expect(err is not None and err.name == ERROR_ACCESS_DENIED,
                               f"{method} as {USER_ALLOWED} without polkit: want AccessDenied, got {err}")
                        expect(err.message.strip() != "", f"{method}: AccessDenied without a message")
                        print(f"# without polkit, {method} as {USER_ALLOWED}: {err.message}")


def test_polkit_going_away_denies():
        # The daemon must not keep using an answer or a connection from a polkit that is gone.
        with Fixture() as fx:
                got = fx.call(USER_ALLOWED, MANAGER_PATH, IFACE_MANAGER, "ListInstances", "")[0]
                expect_eq(got, [["inst1", fx.instance_path("inst1")]], f"ListInstances as {USER_ALLOWED}")
                fx.stop_polkit()
                err = fx.call_error(USER_ALLOWED, MANAGER_PATH, IFACE_MANAGER, "ListInstances", "")
                expect(err is not None and err.name == ERROR_ACCESS_DENIED,
                       f"ListInstances as {USER_ALLOWED} after polkitd stopped: want AccessDenied, got {err}")
                got = fx.call("root", MANAGER_PATH, IFACE_MANAGER, "ListInstances", "")[0]
                expect_eq(got, [["inst1", fx.instance_path("inst1")]], "ListInstances as root, no polkit")


fixture.main(globals())
