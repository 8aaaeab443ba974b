#!/usr/bin/python3
# Who hears about backups (org.opbackup.backup1(5)): the Manager's signals go, unicast, only to subscribed
# callers that hold the access authorization. A subscribed member of group "opbackup" gets JobNew,
# BackupCreated (instance, name, path, excludes: OctoPrint's plugin_backup_backup_created payload), JobRemoved
# with the backup's details, and BackupDeleted, for a backup someone else (root) made and deleted; a user
# without the grant cannot Subscribe (AccessDenied) and receives none of it; a member who did not subscribe
# receives none of it either. Each listener is python3-dbus running as that user (buslisten.py).

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture  # noqa: E402
from fixture import (Fixture, expect, expect_eq, ERROR_ACCESS_DENIED, IFACE_INSTANCE, IFACE_MANAGER,  # noqa: E402
                     USER_ALLOWED, USER_DENIED)
import backuptest as bt  # noqa: E402

OUR_INTERFACES = (IFACE_MANAGER, fixture.IFACE_JOB, fixture.IFACE_PROPERTIES)


def ours(events):
        """The signals of the daemon's objects: its interfaces' and the jobs' PropertiesChanged."""
        return [e for e in events if "signal" in e and e["interface"] in OUR_INTERFACES]


def test_backup_signals_reach_subscribers_only():
        with Fixture() as fx:
                folder = fx.expected()["backup_folder"]
                allowed = bt.Listener(fx, USER_ALLOWED)
                denied = bt.Listener(fx, USER_DENIED)
                lurker = bt.Listener(fx, USER_ALLOWED, subscribe=False)
                try:
                        expect_eq(allowed.ready["subscribe"], "ok", f"Subscribe as {USER_ALLOWED}")
                        sub = denied.ready["subscribe"]
                        expect(isinstance(sub, dict) and sub["error"] == ERROR_ACCESS_DENIED,
                               f"Subscribe as {USER_DENIED} was not refused with AccessDenied: {sub}")

                        jid, jpath = bt.create_backup(fx, ["uploads", "timelapse"], name="signals.zip")
                        created = allowed.wait_for(lambda e: e["signal"] == "BackupCreated",
                                                   f"BackupCreated as {USER_ALLOWED}", timeout=120)
                        removed = allowed.wait_for(lambda e: e["signal"] == "JobRemoved",
                                                   f"JobRemoved as {USER_ALLOWED}", timeout=120)
                        fx.call("root", fx.instance_path(), IFACE_INSTANCE, "DeleteBackup", "s", "signals.zip")
                        deleted = allowed.wait_for(lambda e: e["signal"] == "BackupDeleted",
                                                   f"BackupDeleted as {USER_ALLOWED}", timeout=60)
                        time.sleep(1.0)         # stragglers to the others would have arrived by now
                finally:
                        got_allowed = allowed.stop()
                        got_denied = denied.stop()
                        got_lurker = lurker.stop()

                path = os.path.join(folder, "signals.zip")
                expect_eq(created["args"], ["inst1", "signals.zip", path, ["uploads", "timelapse", "timelapse_tmp"]],
                          "BackupCreated(instance, name, path, excludes)")
                expect_eq(created["path"], fixture.MANAGER_PATH, "object path of BackupCreated")
                expect_eq(created["interface"], IFACE_MANAGER, "interface of BackupCreated")
                expect_eq(created["destination"], allowed.ready["unique_name"], "BackupCreated is unicast to the subscriber")
                job_new = [e["args"] for e in allowed.signals("JobNew")]
                expect_eq(job_new, [[jid, jpath]], "JobNew signals")
                expect_eq(removed["args"][:4], [jid, jpath, "done", ""], "JobRemoved(id, path, result, error)")
                details = removed["args"][4]
                expect_eq((details.get("name"), details.get("path")), ("signals.zip", path), "JobRemoved details")
                expect(details.get("size", 0) > 0, f"JobRemoved details lack the size: {details}")
                expect_eq(deleted["args"], ["inst1", "signals.zip"], "BackupDeleted(instance, name)")

                expect_eq(ours(got_denied), [], f"signals {USER_DENIED} received after a refused Subscribe")
                expect_eq(ours(got_lurker), [], f"signals {USER_ALLOWED} received without subscribing")
                print(f"# {USER_ALLOWED} received: {[e['signal'] for e in got_allowed if 'signal' in e]}")


def test_subscriber_gets_job_log_and_failure():
        # A failing backup (its folder belongs to root, so the instance user cannot write into it): the
        # call is accepted (the folder can be listed), the job fails, and the subscriber learns why.
        with Fixture(instances={"inst1": {"extra_conf": "[Backup]\nFolder=@DIR@/roots-folder\n"}}) as fx:
                blocker = os.path.join(fx.dir, "roots-folder")
                os.mkdir(blocker, 0o755)
                with bt.Listener(fx, USER_ALLOWED) as lis:
                        expect_eq(lis.ready["subscribe"], "ok", f"Subscribe as {USER_ALLOWED}")
                        jid, jpath = bt.create_backup(fx, name="nowhere.zip")
                        removed = bt.job_removed(lis, jid, timeout=120)
                        log = bt.job_log(lis, jpath)
                        created = lis.signals("BackupCreated")
                expect_eq(removed["args"][2], "failed", "result of a backup into a file")
                expect(blocker in removed["args"][3], f"the error does not name {blocker}: {removed['args'][3]!r}")
                expect_eq(created, [], "BackupCreated for a failed backup")
                expect(any(level == "error" for level, _ in log), f"no error line in the job log a subscriber gets: {log}")


fixture.main(globals())
