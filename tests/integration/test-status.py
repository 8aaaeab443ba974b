#!/usr/bin/python3
# `opbackupctl status` (opbackupctl(1)): what a user of group "opbackup" sees, the JSON form, the refusal a user
# without a grant gets (exit 3, naming the polkit action), and the message when the daemon is not running;
# an instance on a read-only mount as the daemon sees it (opbackupd.service's ProtectSystem=strict outside
# ReadWritePaths=) is unusable, with the drop-in that fixes it, instead of "usable" and failing backups.

import json
import os
import subprocess
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


def read_only_instance(fx):
        # What ProtectSystem=strict does to a folder outside ReadWritePaths=: a read-only bind mount in the
        # daemon's mount namespace (here the test's private one, which the daemon and its workers share).
        root = fx.instance_root("ro")
        subprocess.run(["mount", "--bind", root, root], check=True)
        fx._mounts.append(root)
        subprocess.run(["mount", "-o", "remount,bind,ro", root], check=True)


def test_status_read_only_instance():
        with Fixture(instances={"inst1": None, "ro": None}, prepare=read_only_instance) as fx:
                root = fx.instance_root("ro")
                r = fx.ctl_ok("root", "status")
                print("# " + "\n# ".join(r.stdout.splitlines()))
                status = json.loads(fx.ctl_ok("root", "--json", "status").stdout)
                by_name = {i["name"]: i for i in status["instances"]}
                expect_eq(by_name["inst1"]["usable"], True, "inst1 (writable) usable")
                ro = by_name["ro"]
                expect_eq(ro["usable"], False, "the read-only instance's usable")
                reason = ro["unusable_reason"]
                for words in ("read-only file system", ro["backup_folder"], "systemctl edit opbackupd.service",
                              '"[Service]"', f'"ReadWritePaths={root}"'):
                        expect(words in reason, f"unusable_reason lacks {words!r}: {reason}")
                expect(f"UNUSABLE: {reason}" in r.stdout, f"status text does not show the reason:\n{r.stdout}")
                expect_eq(ro["restore_supported"], False, "the read-only instance's restore_supported")
                # The backup is refused up front with the same reason, not attempted and failed half-way.
                b = fx.ctl("root", "-i", "ro", "backup")
                expect(b.returncode != 0, f"backup of the read-only instance succeeded: {b.stdout}")
                expect("ReadWritePaths=" in b.stderr, f"the refused backup does not name the fix: {b.stderr}")
                folder = ro["backup_folder"]
                expect(not os.path.exists(folder) or os.listdir(folder) == [], f"{folder}: {os.listdir(folder)}")
                print(f"# backup: exit {b.returncode}: {b.stderr.strip()}")


def test_status_read_only_basedir_parent():
        # Backups go to a writable folder elsewhere, so the instance is usable; a restore writes next to the
        # basedir, in a folder that is read-only for the daemon: not supported, with the same drop-in.
        spec = {"extra_conf": "[Backup]\nFolder=@DIR@/ro-backups\n"}
        with Fixture(instances={"ro": spec}, prepare=read_only_instance) as fx:
                inst = json.loads(fx.ctl_ok("root", "--json", "status").stdout)["instances"][0]
                expect_eq(inst["usable"], True, f"usable with the backup folder outside the read-only mount: {inst}")
                reason = inst["restore_unsupported_reason"]
                expect_eq(inst["restore_supported"], False, "restore_supported")
                for words in ("read-only for opbackupd", f'"ReadWritePaths={fx.instance_root("ro")}"'):
                        expect(words in reason, f"restore_unsupported_reason lacks {words!r}: {reason}")
                print(f"# {reason}")


fixture.main(globals())
