#!/usr/bin/python3
# One broken instance must not take the others down: with a good instance, one whose basedir is missing,
# one whose config.yaml is not valid YAML and one whose config.yaml its user cannot read, the daemon
# starts, `opbackupctl status` shows the three broken ones as unusable with a reason naming the cause,
# and the good one stays usable and answers calls.

import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture  # noqa: E402
from fixture import (Fixture, DBusError, Skip, expect, expect_eq, MANAGER_PATH, IFACE_MANAGER,  # noqa: E402
                     IFACE_INSTANCE, USER_ALLOWED)

BROKEN_YAML = 'appearance:\n  name: "never closed\nplugins: [\n'

INSTANCES = {
        "good": {},
        "missing": "[OctoPrint]\nBasedir=@DIR@/missing/basedir\nPython=@DIR@/missing/venv/bin/python\n",
        "badyaml": {},
        "unreadable": {},
}


def break_instances(fx):
        with open(os.path.join(fx.basedir("badyaml"), "config.yaml"), "w") as f:
                f.write(BROKEN_YAML)
        # Owned by root, mode 0600: the instance user cannot read it (nor chmod it back).
        path = os.path.join(fx.basedir("unreadable"), "config.yaml")
        os.chown(path, 0, 0)
        os.chmod(path, 0o600)


def status_by_name(fx):
        r = fx.ctl_ok(USER_ALLOWED, "--json", "status")
        return {i["name"]: i for i in json.loads(r.stdout)["instances"]}


def squash(text):
        return re.sub(r"\s+", " ", text).strip()


def test_broken_instances_are_unusable_with_reasons():
        with Fixture(instances=INSTANCES, prepare=break_instances) as fx:
                inst = status_by_name(fx)
                expect_eq(sorted(inst), sorted(INSTANCES), "instances in --json status")
                expect_eq(inst["good"]["usable"], True, f"good usable ({inst['good'].get('unusable_reason')})")
                for name in ("missing", "badyaml", "unreadable"):
                        expect_eq(inst[name]["usable"], False, f"{name} usable")
                        print(f"# {name}: {inst[name]['unusable_reason']}")
                missing = inst["missing"]["unusable_reason"]
                expect(os.path.join(fx.dir, "missing") in missing or "no such file" in missing.lower() or
                       "not exist" in missing.lower(),
                       f"reason for the missing basedir names neither the folder nor its absence: {missing!r}")
                bad = inst["badyaml"]["unusable_reason"]
                expect("config.yaml" in bad, f"reason for malformed YAML does not name config.yaml: {bad!r}")
                unreadable = inst["unreadable"]["unusable_reason"]
                expect("config.yaml" in unreadable and re.search(r"permission|denied|read", unreadable, re.I),
                       f"reason for the unreadable config.yaml does not say it cannot be read: {unreadable!r}")
                expect(bad != unreadable, f"malformed and unreadable config.yaml get the same reason: {bad!r}")

                # The text form shows every instance and, for the broken ones, why.
                text = fx.ctl_ok(USER_ALLOWED, "status").stdout
                for name in INSTANCES:
                        expect(name in text, f"status does not show instance {name}:\n{text}")
                for name in ("missing", "badyaml", "unreadable"):
                        reason = inst[name]["unusable_reason"]
                        expect(squash(reason) in squash(text),
                               f"status does not show why {name} is unusable ({reason!r}):\n{text}")

                # The same over D-Bus, for any client.
                for name in INSTANCES:
                        path = fx.instance_path(name)
                        expect_eq(fx.get_property(USER_ALLOWED, path, IFACE_INSTANCE, "Usable"),
                                  name == "good", f"Usable of {name}")
                        expect_eq(fx.get_property(USER_ALLOWED, path, IFACE_INSTANCE, "UnusableReason"),
                                  inst[name]["unusable_reason"] or "", f"UnusableReason of {name}")


def test_good_instance_still_answers():
        with Fixture(instances=INSTANCES, prepare=break_instances) as fx:
                good = fx.instance_path("good")
                expect_eq(fx.call(USER_ALLOWED, MANAGER_PATH, IFACE_MANAGER, "GetInstance", "s", "good"),
                          [good], "GetInstance(good)")
                listed = fx.call(USER_ALLOWED, MANAGER_PATH, IFACE_MANAGER, "ListInstances", "")[0]
                expect_eq(sorted(n for n, _ in listed), sorted(INSTANCES), "ListInstances")
                expect_eq(fx.get_property(USER_ALLOWED, good, IFACE_INSTANCE, "OctoPrintVersion"),
                          fx.expected("good")["octoprint_version"], "OctoPrintVersion of good")
                try:
                        backups = fx.call(USER_ALLOWED, good, IFACE_INSTANCE, "ListBackups", "")[0]
                except DBusError as e:
                        if e.name == "org.freedesktop.DBus.Error.NotSupported":
                                raise Skip(f"ListBackups not checked: {e.message}") from e
                        raise
                expect_eq(backups, [], "ListBackups of the good instance (no backups yet)")


fixture.main(globals())
