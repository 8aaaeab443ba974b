#!/usr/bin/python3
# Subscribe() and Watch() (org.opbackup.backup1(5), THE MANAGER OBJECT and AUTHORIZATION):
#
# - Who receives which signals: polkit is asked about each instance (action access, detail "instance"),
#   and a subscriber or watcher receives only the signals about the instances it may access. With a rule
#   that hides inst2 from opbackup-allowed, that user's subscription and watch receive everything of root's
#   backup of inst1 (JobNew, PropertiesChanged, Log, BackupCreated, JobRemoved) and nothing of root's
#   backup of inst2, while root's subscription receives both. A user who may access no instance is refused.
# - Watch() does not keep the daemon running: with IdleTimeoutSec=1 and only a watcher connected, the
#   daemon exits for idleness (the watcher still connected); with a subscriber instead, it keeps running
#   until the subscriber leaves. A watcher receives the JobRemoved of a job that started before it
#   watched, and the details name the job's operation and instance.
# - A caller that leaves the bus while its Subscribe() is being authorized does not stay subscribed (it would
#   keep the daemon running forever): dbus-send sends Subscribe and disconnects without waiting.

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture  # noqa: E402
from fixture import (Fixture, expect, expect_eq, ERROR_ACCESS_DENIED, IFACE_MANAGER, MANAGER_PATH,  # noqa: E402
                     USER_ALLOWED)
import backuptest as bt  # noqa: E402

JOB_PREFIX = MANAGER_PATH + "/job/"
IDLE_TIMEOUT = 1

# Hides inst2 (only) from opbackup-allowed; the shipped rules (50-) grant the group the rest.
HIDE_INST2 = """polkit.addRule(function(action, subject) {
        if (action.id.indexOf("org.opbackup.backup1.") == 0 && action.lookup("instance") == "inst2" &&
            subject.user == "opbackup-allowed")
                return polkit.Result.NO;
});
"""

HIDE_ALL = """polkit.addRule(function(action, subject) {
        if (action.id.indexOf("org.opbackup.backup1.") == 0 && action.lookup("instance") !== undefined &&
            subject.user == "opbackup-allowed")
                return polkit.Result.NO;
});
"""

# Run as the instance user by the backup engine for each backup: keeps a job running for a while.
SLOW_HOOK = "#!/bin/sh\ncat >/dev/null\nsleep 3\necho '[]'\n"


def about(events, instance, jobs):
        """The signals among events that are about instance: by argument, or by a job of it (job paths)."""
        out = []
        for e in events:
                if "signal" not in e:
                        continue
                if e["signal"] in ("BackupCreated", "BackupDeleted", "BackupUploaded") and e["args"][0] == instance:
                        out.append(e)
                elif e["signal"] in ("JobNew", "JobRemoved") and e["args"][1] in jobs:
                        out.append(e)
                elif e["path"] in jobs:
                        out.append(e)
        return out


def kinds(events):
        return sorted({e["signal"] for e in events})


def test_signals_of_accessible_instances_only():
        with Fixture(instances={"inst1": None, "inst2": None}, rules={"40-hide-inst2.rules": HIDE_INST2}) as fx:
                e = fx.call_error(USER_ALLOWED, MANAGER_PATH, IFACE_MANAGER, "GetInstance", "s", "inst2")
                expect(e is not None and e.name == ERROR_ACCESS_DENIED,
                       f"GetInstance(inst2) as {USER_ALLOWED} under the rule hiding inst2: {e}")
                root = bt.Listener(fx, "root")
                sub = bt.Listener(fx, USER_ALLOWED)
                watch = bt.Listener(fx, USER_ALLOWED, watch=True)
                try:
                        expect_eq(sub.ready["subscribe"], "ok", f"Subscribe as {USER_ALLOWED}")
                        expect_eq(watch.ready["subscribe"], "ok", f"Watch as {USER_ALLOWED}")
                        id1, path1 = bt.create_backup(fx, name="one.zip", instance="inst1")
                        id2, path2 = bt.create_backup(fx, name="two.zip", instance="inst2")
                        for jid in (id1, id2):
                                bt.job_removed(root, jid, timeout=300)
                        bt.job_removed(sub, id1, timeout=300)
                        bt.job_removed(watch, id1, timeout=300)
                        time.sleep(1.0)         # stragglers about inst2 would have arrived by now
                finally:
                        got_root = root.stop()
                        got_sub = sub.stop()
                        got_watch = watch.stop()

                want = ["BackupCreated", "JobNew", "JobRemoved", "Log", "PropertiesChanged"]
                expect_eq(kinds(about(got_root, "inst2", {path2})), want, "what root's subscription got of inst2")
                for name, got in (("subscription", got_sub), ("watch", got_watch)):
                        expect_eq(kinds(about(got, "inst1", {path1})), want,
                                  f"what the {name} of {USER_ALLOWED} got of inst1")
                        leaked = about(got, "inst2", {path2})
                        expect_eq(leaked, [], f"signals of the hidden inst2 to the {name} of {USER_ALLOWED}")
                removed = [e for e in got_watch if e.get("signal") == "JobRemoved" and e["args"][0] == id1][0]
                details = removed["args"][4]
                expect_eq((details.get("operation"), details.get("instance"), details.get("name")),
                          ("backup", "inst1", "one.zip"), "JobRemoved details (operation, instance, name)")
                print(f"# {USER_ALLOWED}: subscription {len(got_sub)} signals, watch {len(got_watch)}, none of "
                      f"inst2; root: {len(got_root)}")


def test_refused_without_any_instance():
        with Fixture(rules={"40-hide-all.rules": HIDE_ALL}) as fx:
                fx.call(USER_ALLOWED, MANAGER_PATH, IFACE_MANAGER, "ListInstances", "")
                for method in ("Subscribe", "Watch"):
                        e = fx.call_error(USER_ALLOWED, MANAGER_PATH, IFACE_MANAGER, method)
                        expect(e is not None and e.name == ERROR_ACCESS_DENIED and "any instance" in e.message,
                               f"{method} as {USER_ALLOWED}, who may access no instance: {e}")


def idle_fixture():
        def prepare(fx):
                os.chmod(os.path.join(fx.config_dir, "hooks", "additional-excludes.d", "slow"), 0o755)
        fx = Fixture(extra_ini=f"[Daemon]\nIdleTimeoutSec={IDLE_TIMEOUT}\n", daemon=False, prepare=prepare,
                     config_files={"hooks/additional-excludes.d/slow": SLOW_HOOK})
        fx.daemon_exit_on_idle = True
        return fx


def daemon_exits(fx, timeout):
        try:
                fx.daemon_proc.wait(timeout=timeout)
        except Exception:
                return False
        return True


def test_watch_does_not_keep_the_daemon():
        with idle_fixture() as fx:
                fx.start_daemon()
                # A job that starts before the watch: its end still reaches the watcher.
                jid, jpath = bt.create_backup(fx, name="before.zip")
                with bt.Listener(fx, USER_ALLOWED, watch=True) as watcher:
                        expect_eq(watcher.ready["subscribe"], "ok", f"Watch as {USER_ALLOWED}")
                        removed = bt.job_removed(watcher, jid, timeout=300)
                        expect_eq(removed["args"][2], "done", f"result of job {jid}: {removed['args']}")
                        expect_eq(removed["args"][4].get("instance"), "inst1", "instance in the JobRemoved details")
                        started = time.monotonic()
                        expect(daemon_exits(fx, 20 * IDLE_TIMEOUT),
                               f"opbackupd did not exit for idleness within {20 * IDLE_TIMEOUT} s while only a "
                               "watcher was connected")
                        expect(watcher.proc.poll() is None, "the watcher is gone; it should still be connected")
                        print(f"# with a watcher connected, opbackupd exited {time.monotonic() - started:.1f} s after "
                              f"the job (IdleTimeoutSec={IDLE_TIMEOUT})")

                # The same with a subscriber: the daemon stays until it leaves.
                fx.start_daemon()
                sub = bt.Listener(fx, USER_ALLOWED)
                try:
                        expect_eq(sub.ready["subscribe"], "ok", f"Subscribe as {USER_ALLOWED}")
                        expect(not daemon_exits(fx, 5 * IDLE_TIMEOUT),
                               f"opbackupd exited for idleness while a subscriber was connected")
                finally:
                        sub.stop()
                expect(daemon_exits(fx, 20 * IDLE_TIMEOUT),
                       f"opbackupd did not exit within {20 * IDLE_TIMEOUT} s after its subscriber left")
                fx.daemon_proc = None


# Keeps polkit busy for a while on the check of inst1, so that the caller can leave meanwhile.
SLOW_RULE = """polkit.addRule(function(action, subject) {
        if (action.id == "org.opbackup.backup1.access" && action.lookup("instance") == "inst1") {
                var start = Date.now();
                while (Date.now() - start < 2000) {}
        }
});
"""

# Calls Subscribe(), waits a little (the daemon asks polkit about each instance), leaves without the answer.
SUBSCRIBE_AND_LEAVE = """import dbus, os, sys, time
conn = dbus.bus.BusConnection(os.environ["DBUS_SYSTEM_BUS_ADDRESS"])
conn.call_async("org.opbackup.backup1", "/org/opbackup/backup1", "org.opbackup.backup1.Manager", "Subscribe",
                "", (), None, None)
conn.flush()
time.sleep(1.0)
print(conn.get_unique_name())
"""


def test_subscriber_gone_before_the_answer():
        with idle_fixture() as fx:
                fx.add_rule("40-slow.rules", SLOW_RULE)
                fx.start_daemon()
                r = subprocess.run(fixture.as_user(USER_ALLOWED, [fixture.PYTHON, "-c", SUBSCRIBE_AND_LEAVE]),
                                   env=fixture.user_env(USER_ALLOWED, fx.address), capture_output=True, text=True)
                expect(r.returncode == 0, f"the subscribing client: {r.stderr}")
                expect(daemon_exits(fx, 20 * IDLE_TIMEOUT),
                       f"opbackupd did not exit for idleness within {20 * IDLE_TIMEOUT} s: the subscription of "
                       f"{r.stdout.strip()}, which left before the answer, keeps it running")
                fx.daemon_proc = None


if __name__ == "__main__":
        fixture.main(globals())
