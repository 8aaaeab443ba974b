#!/usr/bin/python3
# opbackupd works with exactly the privileges its unit leaves it (opbackupd(8), SYSTEMD UNITS): the daemon
# runs under the CapabilityBoundingSet= of systemd/opbackupd.service.in and NoNewPrivileges=, applied with
# setpriv the way systemd applies them, and still backs up, restores (the swap in a folder the instance's user
# owns, the chown of the restored tree) and cancels a running backup (a signal to a worker of another user).
# Each capability of the set is needed by one of these: dropping CAP_DAC_OVERRIDE, CAP_FOWNER or CAP_CHOWN
# makes the restore fail, dropping CAP_KILL the cancel.

import json
import os
import re
import stat
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture  # noqa: E402
from fixture import Fixture, expect, expect_eq, SOURCE_ROOT, USER_ALLOWED  # noqa: E402

UNIT = os.path.join(SOURCE_ROOT, "systemd", "opbackupd.service.in")
SLOW_HOOK = "#!/bin/sh\ncat >/dev/null\nsleep 8\necho '[]'\n"


def unit_setting(key):
        with open(UNIT) as f:
                values = [line.split("=", 1)[1].strip() for line in f if line.startswith(key + "=")]
        expect(values, f"{UNIT} has no {key}=")
        return values[-1]


def capped_daemon(dir):
        """A wrapper that starts opbackupd with the unit's bounding set and no_new_privs."""
        caps = unit_setting("CapabilityBoundingSet").split()
        expect(all(re.fullmatch(r"CAP_[A-Z_]+", c) for c in caps), f"CapabilityBoundingSet={caps}")
        expect_eq(unit_setting("NoNewPrivileges"), "yes", "NoNewPrivileges=")
        bounding = ",".join(["-all"] + ["+" + c[4:].lower() for c in caps])
        wrapper = os.path.join(dir, "opbackupd-as-in-unit")
        with open(wrapper, "w") as f:
                f.write(f"#!/bin/sh\nexec setpriv --bounding-set={bounding} --no-new-privs -- "
                        f"{fixture.OPBACKUPD} \"$@\"\n")
        os.chmod(wrapper, 0o755)
        print(f"# opbackupd with bounding set {' '.join(caps)} and no_new_privs")
        return wrapper


class CappedFixture(Fixture):
        def start_daemon(self):
                real = fixture.OPBACKUPD
                fixture.OPBACKUPD = capped_daemon(self.dir)
                try:
                        super().start_daemon()
                finally:
                        fixture.OPBACKUPD = real
                # The daemon really runs with that set: CapBnd of its process.
                with open(f"/proc/{self.daemon_proc.pid}/status") as f:
                        bnd = [line for line in f if line.startswith("CapBnd:")][0]
                expect(int(bnd.split()[1], 16) != (1 << 41) - 1, f"the bounding set was not applied: {bnd}")


def test_backup_and_restore_with_the_units_capabilities():
        with CappedFixture() as fx:
                fx.ctl_ok("root", "backup", "--name", "before.zip")
                marker = os.path.join(fx.basedir(), "added-after-the-backup.txt")
                with open(marker, "w") as f:
                        f.write("gone after the restore\n")
                parent = os.path.dirname(fx.basedir())
                expect(os.stat(parent).st_uid != 0 and not os.stat(parent).st_mode & stat.S_IWOTH,
                       "the basedir's parent should belong to the instance's user: the swap then needs "
                       "CAP_DAC_OVERRIDE")
                r = fx.ctl("root", "restore", "before.zip", "--yes", "--skip-plugins", "--no-restart")
                expect_eq(r.returncode, 0, f"restore with the unit's capabilities\nstdout: {r.stdout}\n"
                          f"stderr: {r.stderr}")
                expect(not os.path.exists(marker), "the restore did not replace the basedir")
                expect_eq(os.stat(fx.basedir()).st_uid, os.stat(parent).st_uid,
                          "owner of the restored basedir")


def test_cancel_with_the_units_capabilities():
        def prepare(fx):
                os.chmod(os.path.join(fx.config_dir, "hooks", "additional-excludes.d", "slow"), 0o755)

        with CappedFixture(config_files={"hooks/additional-excludes.d/slow": SLOW_HOOK}, prepare=prepare) as fx:
                job = json.loads(fx.ctl_ok(USER_ALLOWED, "--json", "backup", "--no-wait").stdout)["id"]
                time.sleep(1.5)         # the worker runs the slow hook now
                start = time.monotonic()
                fx.ctl_ok(USER_ALLOWED, "cancel", job)
                while time.monotonic() - start < 20:
                        jobs = json.loads(fx.ctl_ok(USER_ALLOWED, "jobs", "--json").stdout)
                        if not any(j["id"] == job for j in jobs):
                                break
                        time.sleep(0.1)
                took = time.monotonic() - start
                expect(took < 5, f"the canceled backup ended after {took:.1f} s: its worker did not get the signal")
                expect(f"Job {job} (backup of inst1) canceled" in fx.daemon_log(), "the job did not end as canceled")


if __name__ == "__main__":
        fixture.main(globals())
