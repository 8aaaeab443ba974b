#!/usr/bin/python3
# Unit= around a restore (opbackupd(8), RESTORE, steps 6 and 7): the daemon asks systemd over the bus
# (org.freedesktop.systemd1.Manager StopUnit/StartUnit, mode "replace") and waits for the JobRemoved
# signal of each job. systemd here is tests/integration/fake-systemd.py on the private bus, which answers
# like PID 1 and logs what it was asked.
# - the unit is stopped before the swap (the old basedir is still in place) and started after it (the
#   restored one is), and config.yaml's restart command does not run;
# - a stop that fails (the job's result is "failed", the unit is unknown, systemd is not on the bus at
#   all): the restore fails saying why, nothing changed, the unit is not started;
# - a start that fails after the swap: the restore is done, and its log says the unit did not start.

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture  # noqa: E402
from fixture import Fixture, expect, expect_eq  # noqa: E402
import backuptest as bt  # noqa: E402
import restoretest as rt  # noqa: E402

UNIT = "octoprint.service"
NO_REPOSITORY = "[Restore]\nPluginRepository=http://127.0.0.1:9/plugins.json\n"
MARKER = "not-in-the-backup"       # made in basedir after the backup: gone once the restored tree is in
STOP_FAILED = "Cannot stop the OctoPrint unit; nothing was changed."


def spec(restart_flag):
        conf = ("[OctoPrint]\nBasedir=@ROOT@/basedir\nPython=@ROOT@/venv/bin/python\nUnit=octoprint\n\n"
                + NO_REPOSITORY)
        return {"inst1": {"gen_args": ["--restart-command", f"touch {restart_flag}"], "conf": conf}}


def systemd(fx_dir_marker, stop="done", start="done", units=(UNIT,)):
        return {"units": {u: {"stop": {"result": stop, "delay": 0.3}, "start": {"result": start, "delay": 0.3}}
                          for u in units},
                "watch": fx_dir_marker}


def prepare_marker(fx):
        bt.write_as_printer(os.path.join(fx.basedir(), MARKER), b"made after the backup\n")


def calls(fx, method=None):
        return [c for c in fx.systemd_calls() if "call" in c and (method is None or c["call"] == method)]


def line_index(o, text):
        for k, (_, line) in enumerate(o.log):
                if text in line:
                        return k
        raise AssertionError(f"the job log lacks {text!r}:\n{o.log_text()}")


def test_unit_stopped_and_started_around_the_swap():
        flag = os.path.join("/tmp", f"opbackup-unit-restart-{os.getpid()}")
        # The fake's configuration needs the fixture's folder: the path of the marker is set once it exists.
        with Fixture(instances=spec(flag), daemon=False) as fx:
                marker = os.path.join(fx.basedir(), MARKER)
                fx.start_systemd(systemd(marker))
                fx.start_daemon()
                with bt.Listener(fx, "root") as lis:
                        bt.run_backup_ok(fx, name="b.zip")
                        prepare_marker(fx)
                        o = rt.restore_ok(fx, lis, name="b.zip")
                        owner = fx.call("root", "/org/freedesktop/DBus", "org.freedesktop.DBus", "GetNameOwner",
                                        "s", fixture.BUS_NAME, dest="org.freedesktop.DBus")[0]
                got = calls(fx)
                expect_eq([(c["call"], c["unit"], c["mode"]) for c in got],
                          [("StopUnit", UNIT, "replace"), ("StartUnit", UNIT, "replace")], "what systemd was asked")
                expect(all(c["sender"] == owner for c in got), f"not asked by the daemon ({owner}): {got}")
                expect_eq(got[0]["watch_exists"], True, "the old basedir in place when the unit was stopped")
                expect_eq(got[1]["watch_exists"], False, "the restored basedir in place when the unit was started")
                removed = [c for c in fx.systemd_calls() if "job_removed" in c]
                expect_eq([c["job_removed"] for c in removed], [c["job"] for c in got], "jobs that ended")
                # Each step waited for the job before it: stop, swap, start.
                stop, move = line_index(o, f"Stopping {UNIT}"), line_index(o, "Moving ")
                start, done = line_index(o, f"Starting {UNIT}"), line_index(o, "Restore done")
                expect(stop < move < start < done, f"the steps are out of order:\n{o.log_text()}")
                expect(not os.path.exists(flag), "config.yaml's restart command ran although Unit= is set")
                expect(not os.path.exists(marker), "the restored basedir still has the file made after the backup")
                expect(not any(level == "warning" for level, _ in o.log), f"warnings in the log:\n{o.log_text()}")


def expect_stop_refused(fx, lis, why, what):
        base = fx.basedir()
        state = rt.instance_state(base)
        o = rt.restore(fx, lis, name="b.zip")
        expect_eq(o.result, "failed", f"{what}: the restore's result ({o.message})\n{o.log_text()}")
        expect_eq(o.message, STOP_FAILED, f"{what}: the restore's error")
        expect(why in o.log_text(), f"{what}: the log does not say why ({why!r}):\n{o.log_text()}")
        rt.expect_same(rt.instance_state(base), state, f"{what}: the failed restore changed the instance")
        rt.expect_no_leftovers(base, what)
        return o


def test_stop_fails():
        flag = os.path.join("/tmp", f"opbackup-unit-restart-{os.getpid()}")
        with Fixture(instances=spec(flag)) as fx, bt.Listener(fx, "root") as lis:
                bt.run_backup_ok(fx, name="b.zip")
                prepare_marker(fx)

                # No systemd on the bus (these machines): the restore fails saying so.
                expect_stop_refused(fx, lis, "systemd is not on the system bus", "without systemd")

                # systemd does not know the unit.
                fx.start_systemd(systemd(None, units=("other.service",)))
                expect_stop_refused(fx, lis, f"systemd refused to stop {UNIT}", "an unknown unit")
                fx.stop_systemd()

                # The stop job fails: the unit is not started again either (systemd keeps it as it was).
                fx.start_systemd(systemd(None, stop="failed"))
                expect_stop_refused(fx, lis, "its job ended with result 'failed'", "a failed stop job")
                expect_eq([c["call"] for c in calls(fx) if c.get("unit") == UNIT], ["StopUnit", "StopUnit"],
                          "what systemd was asked (twice StopUnit: unknown unit, failed job; never StartUnit)")
                expect(not os.path.exists(flag), "the restart command ran")


def test_start_fails():
        flag = os.path.join("/tmp", f"opbackup-unit-restart-{os.getpid()}")
        with Fixture(instances=spec(flag), systemd=systemd(None, start="failed")) as fx, \
                        bt.Listener(fx, "root") as lis:
                bt.run_backup_ok(fx, name="b.zip")
                prepare_marker(fx)
                o = rt.restore_ok(fx, lis, name="b.zip")
                expect(f"systemd could not start {UNIT}: its job ended with result 'failed'"
                       in o.log_text(), f"the log does not say the unit did not start:\n{o.log_text()}")
                expect(not os.path.exists(os.path.join(fx.basedir(), MARKER)), "the restore did not swap")
                expect_eq([c["call"] for c in calls(fx)], ["StopUnit", "StartUnit"], "what systemd was asked")


fixture.main(globals())
