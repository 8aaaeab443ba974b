#!/usr/bin/python3
# Who may restore, when a restore is possible at all, and what a restore runs (opbackupd(8), RESTORE,
# steps 1 and 7; org.opbackup.backup1(5), Busy, ERRORS and AUTHORIZATION):
# - restore unsupported through each way — Unsupported=yes in the instance's configuration,
#   OCTOPRINT_BACKUP_RESTORE_UNSUPPORTED and OPBACKUP_RESTORE_UNSUPPORTED in the daemon's environment:
#   RestoreSupported false with a reason naming the cause, RestoreBackup, RestoreBackupFromFile and
#   `opbackupctl restore` refused with RestoreUnsupported, nothing changed (not even a copy of the passed
#   file in the backup folder); a venv without pip does not make restore unsupported (pip is needed only
#   to reinstall plugins: test-restore-plugins), `restore --skip-plugins` works there;
# - config.yaml's serverRestartCommand runs as the instance user (the command itself writes its uid), and
#   not at all with --no-restart;
# - AccessDenied for opbackup-denied and for opbackup-allowed (which may back up, but has no rule granting
#   restore), with nothing imported from a passed file; a rule granting restore to opbackup-allowed lets
#   it restore; Job.Cancel of a running restore by users lacking the restore action is refused, by root it
#   cancels and leaves the instance as it was;
# - Busy: a restore while a backup runs, and a backup or another restore while a restore runs.

import os
import re
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture  # noqa: E402
from fixture import (Fixture, expect, expect_eq, IFACE_INSTANCE, IFACE_JOB, USER_ALLOWED, USER_DENIED,  # noqa: E402
                     USER_PRINTER, ERROR_ACCESS_DENIED)
import backuptest as bt  # noqa: E402
import restoretest as rt  # noqa: E402

NO_REPOSITORY = "[Restore]\nPluginRepository=http://127.0.0.1:9/plugins.json\n"
EXIT_FAIL, EXIT_NOT_AUTHORIZED, EXIT_BUSY = 1, 3, 5

GRANT_RESTORE = """\
polkit.addRule(function(action, subject) {
        if (action.id == "org.opbackup.backup1.restore" && subject.user == "opbackup-allowed")
                return polkit.Result.YES;
});
"""

# An additional-excludes hook that makes a backup take a while, when the flag file exists.
SLOW_HOOK = "#!/bin/sh\ncat >/dev/null\n[ -e @DIR@/slow ] && sleep 4\necho '[]'\n"


def inst(extra=""):
        return {"gen_args": ["--restart-command", "true"], "extra_conf": NO_REPOSITORY + extra}


def prop(fx, name, instance):
        return fx.get_property("root", fx.instance_path(instance), IFACE_INSTANCE, name)


def expect_refused_everywhere(fx, instance, error_name, reason_re, what, users=("root",)):
        """RestoreBackup, RestoreBackupFromFile and `opbackupctl restore` of the instance's backup b.zip are
        refused with error_name; the instance (the backup folder too) is exactly as before."""
        base = fx.basedir(instance)
        state = rt.instance_state(base)
        path = os.path.join(fx.expected(instance)["backup_folder"], "b.zip")
        passed = rt.readable_copy(fx, path, f"passed-{instance}.zip")
        for user in users:
                for method, sig, arg in (("RestoreBackup", "sa{sv}", "b.zip"), ("RestoreBackupFromFile", "ha{sv}", passed)):
                        e = fx.call_error(user, fx.instance_path(instance), IFACE_INSTANCE, method, sig, arg, {})
                        expect(e is not None, f"{what}: {method} as {user} was not refused")
                        expect_eq(e.name, error_name, f"{what}: {method} as {user}: error ({e.message})")
                        if reason_re:
                                expect(re.search(reason_re, e.message), f"{what}: {method} as {user}: the message does "
                                       f"not name the cause (want /{reason_re}/): {e.message}")
                r = fx.ctl(user, "-i", instance, "restore", "--yes", "b.zip")
                want = EXIT_NOT_AUTHORIZED if error_name == ERROR_ACCESS_DENIED else EXIT_FAIL
                expect_eq(r.returncode, want, f"{what}: opbackupctl restore as {user}: exit status (stderr: {r.stderr})")
                if reason_re:
                        expect(re.search(reason_re, r.stderr), f"{what}: opbackupctl restore does not say why:\n{r.stderr}")
        rt.expect_same(rt.instance_state(base), state, f"{what}: a refused restore changed the instance")


def test_restore_unsupported():
        def prepare(fx):
                os.unlink(os.path.join(fx.instance_root("nopip"), "venv", "bin", "pip"))

        spec = {"plain": inst(), "conf": inst("Unsupported=yes\n"), "nopip": inst()}
        with Fixture(instances=spec, prepare=prepare) as fx:
                for name in spec:
                        bt.run_backup_ok(fx, name="b.zip", instance=name)
                expect_eq(prop(fx, "RestoreSupported", "plain"), True, "RestoreSupported of a normal instance")
                expect_eq(prop(fx, "RestoreUnsupportedReason", "plain"), "", "RestoreUnsupportedReason of a normal instance")
                for name, cause in (("conf", r"Unsupported=yes in \S*/instances\.d/conf\.conf"),):
                        expect_eq(prop(fx, "RestoreSupported", name), False, f"RestoreSupported of {name}")
                        reason = prop(fx, "RestoreUnsupportedReason", name)
                        expect(re.search(cause, reason), f"RestoreUnsupportedReason of {name} does not name the cause: {reason!r}")
                        expect_refused_everywhere(fx, name, rt.ERROR_RESTORE_UNSUPPORTED, cause, name)
                        r = fx.ctl_ok("root", "-i", name, "status")
                        expect("not supported" in r.stdout and reason in r.stdout,
                               f"opbackupctl status does not show why {name} cannot restore:\n{r.stdout}")

                # pip reinstalls plugins; a restore that reinstalls none needs none.
                expect_eq(prop(fx, "RestoreSupported", "nopip"), True, "RestoreSupported without pip")
                expect_eq(prop(fx, "RestoreUnsupportedReason", "nopip"), "", "RestoreUnsupportedReason without pip")
                fx.ctl_ok("root", "-i", "nopip", "restore", "--yes", "--skip-plugins", "b.zip")

                for var, value in (("OCTOPRINT_BACKUP_RESTORE_UNSUPPORTED", "True"), ("OPBACKUP_RESTORE_UNSUPPORTED", "1"),
                                   ("OPBACKUP_RESTORE_UNSUPPORTED", "yes")):
                        fx.daemon_env = {var: value}
                        fx.restart_daemon()
                        expect_eq(prop(fx, "RestoreSupported", "plain"), False, f"RestoreSupported with {var}={value}")
                        reason = prop(fx, "RestoreUnsupportedReason", "plain")
                        expect(f"{var}={value}" in reason, f"the reason does not name {var}={value}: {reason!r}")
                        expect_refused_everywhere(fx, "plain", rt.ERROR_RESTORE_UNSUPPORTED, var, f"{var}={value}")

                # Control: a false value does not disable restore, and the instance does restore.
                fx.daemon_env = {"OCTOPRINT_BACKUP_RESTORE_UNSUPPORTED": "false", "OPBACKUP_RESTORE_UNSUPPORTED": "0"}
                fx.restart_daemon()
                expect_eq(prop(fx, "RestoreSupported", "plain"), True, "RestoreSupported with the variables false")
                fx.ctl_ok("root", "-i", "plain", "restore", "--yes", "b.zip")


def test_restart_command_runs_as_instance_user():
        out = tempfile.mkdtemp(prefix="opbackup-restart-")
        try:
                os.chmod(out, 0o755)
                bt.chown_user(out)
                uid_file = os.path.join(out, "restart-uid")
                cmd = f"id -u > {uid_file}; id -G > {out}/restart-groups"
                spec = {"inst1": {"gen_args": ["--restart-command", cmd], "extra_conf": NO_REPOSITORY}}
                with Fixture(instances=spec) as fx, bt.Listener(fx, "root") as lis:
                        bt.run_backup_ok(fx, name="b.zip")
                        # --no-restart: the command does not run.
                        r = fx.ctl_ok("root", "restore", "--yes", "--no-restart", "b.zip")
                        expect(not os.path.exists(uid_file), "the restart command ran with --no-restart")
                        expect("restart it yourself" in r.stdout + r.stderr,
                               f"--no-restart: the client does not say OctoPrint was not restarted:\n{r.stdout}{r.stderr}")
                        o = rt.restore_ok(fx, lis, name="b.zip")
                        expect(os.path.exists(uid_file), f"the restart command did not run:\n{o.log_text()}")
                        with open(uid_file) as f:
                                got = f.read().strip()
                        printer = bt.uid_of(USER_PRINTER)
                        expect_eq(got, str(printer), f"uid the restart command ran as ({USER_PRINTER} is {printer})")
                        expect_eq(os.stat(uid_file).st_uid, printer, "owner of what the restart command wrote")
                        with open(os.path.join(out, "restart-groups")) as f:
                                groups = f.read().split()
                        expect("0" not in groups, f"the restart command ran with group root: {groups}")
                        expect(f"Restarting OctoPrint as {USER_PRINTER}" in o.log_text(),
                               f"the job log does not say who restarts OctoPrint:\n{o.log_text()}")
        finally:
                shutil.rmtree(out, ignore_errors=True)


def test_authorization_cancel_busy():
        def prepare(fx):
                os.chmod(os.path.join(fx.config_dir, "hooks", "additional-excludes.d", "slow"), 0o755)

        spec = {"inst1": inst()}
        with Fixture(instances=spec, daemon_env={"OPBACKUP_TEST_PAUSE": "after-extract"},
                     config_files={"hooks/additional-excludes.d/slow": SLOW_HOOK}, prepare=prepare) as fx, \
                        bt.Listener(fx, "root") as lis:
                base = fx.basedir()
                bt.run_backup_ok(fx, name="b.zip")
                folder = fx.expected()["backup_folder"]

                # Neither the denied user nor the allowed one (no rule grants it restore) may restore; nothing
                # of a passed file reaches the backup folder.
                expect_refused_everywhere(fx, "inst1", ERROR_ACCESS_DENIED, None, "no restore rule",
                                          users=(USER_DENIED, USER_ALLOWED))

                # A running restore (paused after extracting) ...
                state = rt.instance_state(base)
                files = rt.backup_folder_files(folder)
                jid, jpath = fx.call("root", fx.instance_path(), IFACE_INSTANCE, "RestoreBackup", "sa{sv}", "b.zip", {})
                bt.wait_until(lambda: "Test pause at after-extract." in fx.daemon_log(), "the restore to pause")
                # ... cannot be canceled by users lacking the restore action,
                for user in (USER_DENIED, USER_ALLOWED):
                        e = fx.call_error(user, jpath, IFACE_JOB, "Cancel", "")
                        expect(e is not None and e.name == ERROR_ACCESS_DENIED, f"Cancel by {user}: {e}")
                        r = fx.ctl(user, "cancel", str(jid))
                        expect_eq(r.returncode, EXIT_NOT_AUTHORIZED, f"opbackupctl cancel as {user}: exit status "
                                  f"(stderr: {r.stderr})")
                expect_eq([j[0] for j in bt.list_jobs(fx)], [jid], "jobs after the refused cancels")
                # ... makes anything else Busy,
                for method, sig, args in (("RestoreBackup", "sa{sv}", ["b.zip", {}]),
                                          ("RestoreBackupFromFile", "ha{sv}", [os.path.join(folder, "b.zip"), {}]),
                                          ("CreateBackup", "asa{sv}", [[], {}])):
                        e = fx.call_error("root", fx.instance_path(), IFACE_INSTANCE, method, sig, *args)
                        expect(e is not None and e.name == rt.ERROR_BUSY, f"{method} during a restore: {e}")
                r = fx.ctl("root", "restore", "--yes", "b.zip")
                expect_eq(r.returncode, EXIT_BUSY, f"opbackupctl restore during a restore: exit status ({r.stderr})")
                # ... and root cancels it: nothing changed, nothing left.
                fx.call("root", jpath, IFACE_JOB, "Cancel", "")
                removed = bt.job_removed(lis, jid, timeout=30)
                expect_eq(removed["args"][2], "canceled", f"the canceled restore's result ({removed['args'][3]})")
                rt.expect_same(rt.instance_state(base), state, "a canceled restore changed the instance")
                expect_eq(rt.backup_folder_files(folder), files, "the backup folder after the canceled restore")

                # A restore while a backup runs: Busy.
                fx.daemon_env = {}
                fx.restart_daemon()
                lis2 = bt.Listener(fx, "root")
                try:
                        with open(os.path.join(fx.dir, "slow"), "w"):
                                pass
                        bjid, _ = bt.create_backup(fx, name="slow.zip")
                        for method, sig, args in (("RestoreBackup", "sa{sv}", ["b.zip", {}]),
                                                  ("RestoreBackupFromFile", "ha{sv}", [os.path.join(folder, "b.zip"), {}])):
                                e = fx.call_error("root", fx.instance_path(), IFACE_INSTANCE, method, sig, *args)
                                expect(e is not None and e.name == rt.ERROR_BUSY, f"{method} during a backup: {e}")
                                expect("backup" in e.message, f"the Busy message does not say a backup runs: {e.message}")
                        r = fx.ctl("root", "restore", "--yes", "b.zip")
                        expect_eq(r.returncode, EXIT_BUSY, f"opbackupctl restore during a backup: exit status ({r.stderr})")
                        removed = bt.job_removed(lis2, bjid, timeout=60)
                        expect_eq(removed["args"][2], "done", "the slow backup")
                        os.unlink(os.path.join(fx.dir, "slow"))

                        # A rule granting restore to opbackup-allowed: it restores.
                        fx.add_rule("60-grant-restore.rules", GRANT_RESTORE)
                        with open(os.path.join(base, "config.yaml"), "a") as f:
                                f.write("# changed before the allowed restore\n")
                        r = fx.ctl(USER_ALLOWED, "restore", "--yes", "b.zip")
                        expect_eq(r.returncode, 0, f"restore by {USER_ALLOWED} with a rule granting it: exit status "
                                  f"(stdout: {r.stdout}, stderr: {r.stderr})")
                        with open(os.path.join(base, "config.yaml")) as f:
                                expect("changed before the allowed restore" not in f.read(),
                                       f"the restore by {USER_ALLOWED} did not restore config.yaml")
                        # The denied user still may not.
                        e = fx.call_error(USER_DENIED, fx.instance_path(), IFACE_INSTANCE, "RestoreBackup", "sa{sv}", "b.zip", {})
                        expect(e is not None and e.name == ERROR_ACCESS_DENIED, f"RestoreBackup by {USER_DENIED}: {e}")
                finally:
                        lis2.stop()


fixture.main(globals())
