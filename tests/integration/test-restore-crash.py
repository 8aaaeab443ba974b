#!/usr/bin/python3
# A restore interrupted by SIGKILL of the daemon (opbackupd(8), RESTORE: "after a crash at any
# point, the next start of the daemon leaves basedir either as it was or fully restored, never a mix").
# The daemon is started with OPBACKUP_TEST_PAUSE=<point>, which makes it (or its worker) sleep at that
# point of a restore, and killed there: after-extract and after-plugins (in the worker: staging is full,
# the journal says "prepared"), between-renames (basedir moved aside, the restored tree not yet in place),
# after-swap (the restored tree in place, the folders to keep not yet carried over). The next start,
# without the pause, must leave basedir exactly the old tree (every file, folder, inode and time, and
# nothing new next to it) or exactly the restored one (the backup plus what a restore keeps), with no
# staging folder, journal or basedir.opbackup-old left, and no worker of the killed daemon still running.

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture  # noqa: E402
from fixture import Fixture, expect, expect_eq, IFACE_INSTANCE, USER_PRINTER  # noqa: E402
import backuptest as bt  # noqa: E402
import restoretest as rt  # noqa: E402

# The restore worker is named "opbackup-restore"; a process name keeps 15 bytes of it.
WORKER_RESTORE = "opbackup-restore"[:15]
NO_REPOSITORY = "[Restore]\nPluginRepository=http://127.0.0.1:9/plugins.json\n"


def kill_at(fx, point, name):
        """Starts a restore of NAME with the daemon pausing at POINT, and SIGKILLs the daemon there.
        Returns the pids of the daemon's restore workers at that moment."""
        fx.daemon_env["OPBACKUP_TEST_PAUSE"] = point
        fx.restart_daemon()
        marker = f"Test pause at {point}."
        seen = fx.daemon_log().count(marker)
        jid, _ = fx.call("root", fx.instance_path(), IFACE_INSTANCE, "RestoreBackup", "sa{sv}", name,
                         {"skip-plugins": False})
        bt.wait_until(lambda: fx.daemon_log().count(marker) > seen, f"the restore to pause at {point}", timeout=60)
        workers = [p for p, c in bt.children(fx.daemon_proc.pid) if c == WORKER_RESTORE]
        fx.daemon_proc.kill()
        fx.daemon_proc.wait()
        fx.daemon_proc = None
        fx.wait_for_name_gone(fixture.BUS_NAME)
        del fx.daemon_env["OPBACKUP_TEST_PAUSE"]
        return jid, workers


def kill_and_recover(point):
        spec = {"inst1": {"gen_args": ["--restart-command", "true"], "extra_conf": NO_REPOSITORY}}
        with Fixture(instances=spec) as fx:
                exp = fx.expected()
                base = fx.basedir()
                parent = os.path.dirname(base)
                uid, gid = bt.uid_of(USER_PRINTER), os.stat(base).st_gid
                folder_rel = os.path.relpath(exp["backup_folder"], base)
                zip_path = bt.run_backup_ok(fx, name="crash.zip").details["path"]

                # The old tree differs from the backup: an edit, a new file, a deleted one, a new log.
                with open(os.path.join(base, "config.yaml"), "a") as f:
                        f.write("# changed after the backup\n")
                bt.write_as_printer(os.path.join(base, "added-later.txt"), "later\n")
                os.unlink(os.path.join(base, "users.yaml"))
                bt.write_as_printer(os.path.join(base, "logs", "after.log"), "kept\n")
                old_state = rt.instance_state(base)
                old_listing = sorted(os.listdir(parent))
                new_model = rt.restored_model(zip_path, rt.snapshot(base, strict=True),
                                              rt.carried_paths(folder_rel, []), uid, gid)

                jid, workers = kill_at(fx, point, "crash.zip")
                left = sorted(n for n in os.listdir(parent) if "opbackup" in n)
                expect(os.path.exists(rt.journal_path(base)), f"{point}: killed, but there is no journal (next to "
                       f"basedir: {left}): the kill came too late to test anything")
                if point in ("after-extract", "after-plugins"):
                        expect(workers, f"{point}: no restore worker was running")
                # The workers die with the daemon (they would go on writing otherwise).
                for pid in workers:
                        bt.wait_until(lambda: not bt.pid_alive(pid), f"{point}: worker {pid} to die with the daemon",
                                      timeout=10)

                fx.start_daemon()
                rt.expect_no_leftovers(base, f"{point}: after the restart")
                expect_eq(sorted(os.listdir(parent)), old_listing, f"{point}: next to basedir after the restart")
                if rt.instance_state(base) == old_state:
                        outcome = "old"
                else:
                        rt.expect_restored(base, new_model, f"{point}: basedir is not the old tree, and")
                        outcome = "restored"
                print(f"# killed at {point} (next to basedir then: {left}): basedir is the {outcome} tree", flush=True)
                expect_eq(bt.list_jobs(fx), [], f"{point}: jobs after the restart")
                expect("interrupted restore" in fx.daemon_log(), f"{point}: the daemon did not log what it recovered")

                # The daemon works normally afterwards: the next restore, to the end.
                with bt.Listener(fx, "root") as lis:
                        rt.restore_ok(fx, lis, name="crash.zip")
                rt.expect_no_leftovers(base, f"{point}: after a normal restore")
                return outcome


def test_kill_after_extract():
        kill_and_recover("after-extract")


def test_kill_after_plugins():
        kill_and_recover("after-plugins")


def test_kill_between_renames():
        kill_and_recover("between-renames")


def test_kill_after_swap():
        kill_and_recover("after-swap")


fixture.main(globals())
