#!/usr/bin/python3
# `opbackupctl status` (opbackupctl(1)): what a user of group "opbackup" sees, the JSON form, the refusal a
# user without a grant gets (exit 3, naming the polkit action), and the message when the daemon is not
# running.

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture  # noqa: E402
from fixture import Fixture, expect, expect_eq, USER_ALLOWED, USER_DENIED  # noqa: E402

SAMPLE_VERSION = "1.11.8"       # the OctoPrint version of tests/gen-instance.py's sample venv


def test_status_text():
        with Fixture() as fx:
                expect_eq(fx.expected("inst1")["octoprint_version"], SAMPLE_VERSION, "sample's OctoPrint version")
                r = fx.ctl_ok(USER_ALLOWED, "status")
                expect("inst1" in r.stdout, f"status does not name the instance inst1:\n{r.stdout}")
                expect(SAMPLE_VERSION in r.stdout,
                       f"status does not show OctoPrint version {SAMPLE_VERSION}:\n{r.stdout}")
                print("# " + "\n# ".join(r.stdout.splitlines()))


def test_status_json():
        with Fixture() as fx:
                r = fx.ctl_ok(USER_ALLOWED, "--json", "status")
                try:
                        status = json.loads(r.stdout)
                except ValueError as e:
                        raise AssertionError(f"--json status is not JSON ({e}):\n{r.stdout}") from e
                expect(isinstance(status.get("version"), str) and status["version"],
                       f"no version in {status}")
                expect_eq(len(status.get("instances", [])), 1, "number of instances")
                inst = status["instances"][0]
                expect_eq(inst.get("name"), "inst1", "instances[0].name")
                expect_eq(inst.get("object"), fx.instance_path("inst1"), "instances[0].object")
                expect_eq(inst.get("octoprint_version"), SAMPLE_VERSION, "instances[0].octoprint_version")
                expect_eq(inst.get("usable"), True, "instances[0].usable")
                expect_eq(inst.get("basedir"), fx.basedir("inst1"), "instances[0].basedir")
                expect_eq(inst.get("user"), fixture.USER_PRINTER, "instances[0].user")
                expect_eq(status.get("jobs"), [], "jobs")
                for key in ("backup_folder", "unusable_reason", "restore_supported",
                            "restore_unsupported_reason", "free_space"):
                        expect(key in inst, f"instances[0] lacks {key}: {inst}")


def test_status_denied():
        with Fixture() as fx:
                r = fx.ctl(USER_DENIED, "status")
                out = r.stdout + r.stderr
                expect_eq(r.returncode, 3, f"exit code of status as {USER_DENIED} (output: {out.strip()})")
                expect("org.opbackup.backup1.access" in out,
                       f"the refusal does not name the action org.opbackup.backup1.access: {out.strip()}")
                expect("inst1" not in r.stdout, f"a refused status still lists instances:\n{r.stdout}")


def test_status_without_daemon():
        with Fixture() as fx:
                fx.stop_daemon()
                r = fx.ctl(USER_ALLOWED, "status")
                out = r.stdout + r.stderr
                expect_eq(r.returncode, 1, f"exit code of status with no daemon (output: {out.strip()})")
                expect("opbackupd" in out and "start" in out.lower(),
                       f"the message does not tell how to start opbackupd: {out.strip()}")
                print(f"# {out.strip()}")


fixture.main(globals())
