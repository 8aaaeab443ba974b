#!/usr/bin/python3
# The daemon's introspection of its org.opbackup.backup1.* interfaces equals the API contract in
# dbus/org.opbackup.backup1.xml (SPEC §4): methods with their ordered arguments (name, type, direction),
# properties (type, access, annotations), signals with their arguments. Member order does not matter.
#
# Job objects exist only while a job runs: the Job interface is compared on a backup job (of a 200 MiB
# instance if the tiny sample's job is over before we look). While CreateBackup answers NotSupported, only
# Manager and Instance are compared, and test_job reports "skip" saying it did not compare Job.

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture  # noqa: E402
from fixture import (Fixture, DBusError, Skip, expect, MANAGER_PATH, IFACE_MANAGER, IFACE_INSTANCE,  # noqa: E402
                     IFACE_JOB, parse_interfaces, api_xml)

NOT_SUPPORTED = "org.freedesktop.DBus.Error.NotSupported"


def diff_interface(name, got, want):
        """Human-readable differences between two parsed interfaces."""
        out = []
        for kind in ("methods", "properties", "signals"):
                g, w = got[kind], want[kind]
                for member in sorted(set(w) - set(g)):
                        out.append(f"{name}: {kind[:-1]} {member} is missing")
                for member in sorted(set(g) - set(w)):
                        out.append(f"{name}: {kind[:-1]} {member} is not in the XML")
                for member in sorted(set(g) & set(w)):
                        if g[member] != w[member]:
                                out.append(f"{name}: {kind[:-1]} {member}: daemon {g[member]}, XML {w[member]}")
        return out


def compare(fx, path, interfaces, got=None):
        if got is None:
                got = parse_interfaces(fx.introspect("root", path))
        want = parse_interfaces(api_xml())
        problems = []
        for iface in interfaces:
                if iface not in got:
                        problems.append(f"{path} does not introspect {iface}")
                        continue
                problems += diff_interface(iface, got[iface], want[iface])
                n = want[iface]
                print(f"# compared {iface} on {path}: {len(n['methods'])} methods, "
                      f"{len(n['properties'])} properties, {len(n['signals'])} signals")
        return problems


def introspect_job(fx, job):
        """The parsed interfaces of the job object, or None when the job is over (object gone)."""
        try:
                got = parse_interfaces(fx.introspect("root", job))
        except DBusError as e:
                print(f"# introspecting {job}: {e.name}")
                return None
        return got if IFACE_JOB in got else None


def test_manager_and_instance():
        with Fixture() as fx:
                problems = compare(fx, MANAGER_PATH, [IFACE_MANAGER])
                problems += compare(fx, fx.instance_path("inst1"), [IFACE_INSTANCE])
                if problems:
                        raise AssertionError("introspection differs from dbus/org.opbackup.backup1.xml:\n  " +
                                             "\n  ".join(problems))


def create_job(fx, name):
        _, job = fx.call("root", fx.instance_path(name), IFACE_INSTANCE, "CreateBackup", "asa{sv}", [],
                         {"name": f"introspection-{name}.zip"})
        return job


def test_job():
        with Fixture() as fx:
                try:
                        job = create_job(fx, "inst1")
                except DBusError as e:
                        if e.name != NOT_SUPPORTED:
                                raise
                        raise Skip(f"Job interface NOT compared: CreateBackup answers {e.name} ({e.message}); "
                                   "only Manager and Instance were compared (test_manager_and_instance)")
                expect(job.startswith(MANAGER_PATH + "/job/"), f"job path {job} is not under {MANAGER_PATH}/job/")
                got = introspect_job(fx, job)
                if got is None:
                        # The tiny sample's job was already done: again with 200 MiB of data, which keeps a
                        # backup job alive for a while even on a fast machine.
                        print("# the tiny sample's job was over before it could be introspected; "
                              "trying a 200 MiB instance")
                        fx.add_instance("big", {"size": "200M"})
                        fx.restart_daemon()
                        job = create_job(fx, "big")
                        start = time.monotonic()
                        got = introspect_job(fx, job)
                        expect(got is not None, f"job {job} was gone {time.monotonic() - start:.2f} s after "
                                                "CreateBackup, before it could be introspected")
                        try:
                                fx.call("root", job, IFACE_JOB, "Cancel", "")
                        except DBusError as e:
                                print(f"# cancelling {job}: {e}")
                problems = compare(fx, job, [IFACE_JOB], got)
                if problems:
                        raise AssertionError("Job introspection differs from dbus/org.opbackup.backup1.xml:\n  " +
                                             "\n  ".join(problems))


fixture.main(globals())
