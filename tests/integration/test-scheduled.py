#!/usr/bin/python3
# Scheduled backups (opbackupd(8), SYSTEMD UNITS): what opbackup-backup.service runs — `opbackupctl
# --no-ask-password scheduled-backup` — as the scheduler user, on two instances, with the shipped polkit rules
# granting that user by name. It makes a backup of each instance without its [Schedule] Exclude= folders and
# prunes to its [Backup] Keep=: the oldest backups the schedule made (named ...-scheduled.zip) go; a backup
# a person made stays however old, named or not (it may be the only one that has the timelapses). The scheduler may not restore. Instances are backed up at the same time: one whose printer
# prints does not hold up the other.

import json
import os
import pwd
import re
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture  # noqa: E402
from fixture import (Fixture, expect, expect_eq, IFACE_INSTANCE, USER_DENIED, USER_PRINTER,  # noqa: E402
                     USER_SCHEDULER, ERROR_ACCESS_DENIED)
from printapi import ApiServer, Scratch, write_key  # noqa: E402

OLD = {     # earlier scheduled backups, with the time (epoch seconds) they were made
        "octoprint-backup-20200101-000000-scheduled.zip": 1577836800,
        "octoprint-backup-20210101-000000-scheduled.zip": 1609459200,
        "octoprint-backup-20220101-000000-scheduled.zip": 1640995200,
}
NAMED = "before-upgrade.zip"    # named by a person; older than all: pruning must leave it alone
NAMED_TIME = 1546300800
MANUAL = {  # made by a person with a generated name, among and before the scheduled ones: they stay too
        "octoprint-backup-20190101-000000.zip": 1546300801,
        "octoprint-backup-20200601-000000.zip": 1590969600,
}


def backup_folder(fx, name):
        return os.path.join(fx.basedir(name), "data", "backup")


def listing(fx, name):
        r = fx.ctl_ok("root", "-i", name, "list", "--json")
        return {b["name"]: b for b in json.loads(r.stdout)}


def seed_backups(fx, name):
        """A real backup, copied to the old generated names and to a named one, with old mtimes."""
        fx.ctl_ok("root", "-i", name, "backup", "--name", NAMED)
        folder = backup_folder(fx, name)
        pw = pwd.getpwnam(USER_PRINTER)
        for old, t in OLD.items():
                shutil.copyfile(os.path.join(folder, NAMED), os.path.join(folder, old))
                os.chown(os.path.join(folder, old), pw.pw_uid, pw.pw_gid)
                os.utime(os.path.join(folder, old), (t, t))
        for manual, t in MANUAL.items():
                shutil.copyfile(os.path.join(folder, NAMED), os.path.join(folder, manual))
                os.chown(os.path.join(folder, manual), pw.pw_uid, pw.pw_gid)
                os.utime(os.path.join(folder, manual), (t, t))
        os.utime(os.path.join(folder, NAMED), (NAMED_TIME, NAMED_TIME))
        expect_eq(set(listing(fx, name)), set(OLD) | set(MANUAL) | {NAMED}, f"backups of {name} before the run")


def two_instances(extra2=""):
        return {
                "inst1": {"extra_conf": "[Backup]\nKeep=2\n"},
                "inst2": {"seed": 2, "extra_conf": "[Backup]\nKeep=2\n[Schedule]\nExclude=uploads timelapse\n"
                          + extra2},
        }


def run_scheduled(fx, user=USER_SCHEDULER):
        return fx.ctl(user, "--no-ask-password", "scheduled-backup", timeout=300)


def test_backs_up_each_instance_and_prunes_to_keep():
        with Fixture(instances=two_instances()) as fx:
                for name in ("inst1", "inst2"):
                        seed_backups(fx, name)
                expect_eq(fx.get_property(USER_SCHEDULER, fx.instance_path("inst2"), IFACE_INSTANCE, "Keep"), 2,
                          "Keep of inst2")
                expect_eq(fx.get_property(USER_SCHEDULER, fx.instance_path("inst2"), IFACE_INSTANCE,
                                          "ScheduleExcludes"), ["uploads", "timelapse"], "ScheduleExcludes of inst2")

                r = run_scheduled(fx)
                expect_eq(r.returncode, 0, f"scheduled-backup as {USER_SCHEDULER}\nstdout: {r.stdout}\n"
                          f"stderr: {r.stderr}")
                for name, excludes in (("inst1", []), ("inst2", ["uploads", "timelapse", "timelapse_tmp"])):
                        backups = listing(fx, name)
                        new = set(backups) - set(OLD) - set(MANUAL) - {NAMED}
                        expect_eq(len(new), 1, f"new backups of {name}: {sorted(backups)}")
                        new_name = new.pop()
                        expect(re.fullmatch(r".+-backup-\d{8}-\d{6}-scheduled\.zip", new_name) is not None,
                               f"the scheduled backup of {name} is named {new_name}, not ...-scheduled.zip")
                        expect_eq(backups[new_name]["excludes"], excludes, f"excludes of the new backup of {name}")
                        # Keep=2: the new one and the newest old scheduled one; the two oldest scheduled ones go,
                        # the ones people made stay.
                        expect_eq(set(backups), {new_name, "octoprint-backup-20220101-000000-scheduled.zip", NAMED}
                                  | set(MANUAL), f"backups of {name} after pruning")
                        for gone in ("octoprint-backup-20200101-000000-scheduled.zip",
                                     "octoprint-backup-20210101-000000-scheduled.zip"):
                                expect(f"{name}: deleted {gone} (Keep=2)." in r.stdout,
                                       f"the run did not report deleting {gone} of {name}:\n{r.stdout}")
                                expect(not os.path.exists(os.path.join(backup_folder(fx, name), gone)),
                                       f"{gone} of {name} still exists")


def test_keep_zero_prunes_nothing():
        instances = {"inst1": {}}
        with Fixture(instances=instances) as fx:
                seed_backups(fx, "inst1")
                r = run_scheduled(fx)
                expect_eq(r.returncode, 0, f"scheduled-backup\nstdout: {r.stdout}\nstderr: {r.stderr}")
                expect_eq(len(listing(fx, "inst1")), len(OLD) + len(MANUAL) + 2, "backups with Keep=0")
                expect("deleted" not in r.stdout, r.stdout)


def test_scheduler_may_not_restore():
        with Fixture() as fx:
                fx.ctl_ok("root", "backup", "--name", "x.zip")
                e = fx.call_error(USER_SCHEDULER, fx.instance_path(), IFACE_INSTANCE, "RestoreBackup", "sa{sv}",
                                  "x.zip", {})
                expect(e is not None and e.name == ERROR_ACCESS_DENIED,
                       f"RestoreBackup as {USER_SCHEDULER}: {e or 'allowed'}")
                r = fx.ctl(USER_SCHEDULER, "--no-ask-password", "restore", "x.zip", "--yes")
                expect_eq(r.returncode, 3, f"opbackupctl restore as {USER_SCHEDULER} (stderr: {r.stderr})")
                # The grant is the scheduler's by name: another user without it gets nothing.
                r = run_scheduled(fx, USER_DENIED)
                expect_eq(r.returncode, 3, f"scheduled-backup as {USER_DENIED} (stderr: {r.stderr})")


def test_a_printing_printer_does_not_hold_up_the_others():
        """inst1 prints for a while (its API says so); inst2's backup is done before inst1 stops printing."""
        with Scratch() as scratch:
                server = ApiServer(scratch, states="Printing,Printing,Printing,Printing,Operational")

                def prepare(fx):
                        key = os.path.join(fx.dir, "keys", "inst1.key")
                        write_key(key)
                        server.start(watch=backup_folder(fx, "inst2"))
                        conf = fx.instance_conf("inst1") + (f"\n[OctoPrint]\nApiUrl={server.url}\nApiKeyFile={key}\n"
                                                            "[Schedule]\nPrintPollSec=1\n")
                        fx.write_config_file(os.path.join("instances.d", "inst1.conf"), conf)

                with Fixture(instances=two_instances(), prepare=prepare) as fx:
                        r = run_scheduled(fx)
                        expect_eq(r.returncode, 0, f"scheduled-backup\nstdout: {r.stdout}\nstderr: {r.stderr}")
                        recs = server.records()
                        expect_eq([x["state"] for x in recs][-1], "Operational", "the last state inst1's job saw")
                        # At the moment inst1's printer became idle, inst2's backup (a final .zip) was there.
                        done2 = [n for n in recs[-1]["backups"] if not n.startswith(".")]
                        expect(len(done2) == 1, f"inst2's backups when inst1 stopped printing: {recs[-1]['backups']}")
                        expect_eq(len(listing(fx, "inst1")), 1, "backups of inst1")
                        expect('OctoPrint reports "Operational" after' in fx.daemon_log(),
                               "inst1's job did not wait for its printer")


if __name__ == "__main__":
        fixture.main(globals())
