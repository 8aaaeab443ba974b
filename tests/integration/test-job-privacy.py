#!/usr/bin/python3
# Who learns about a job (org.opbackup.backup1(5), "Job" and AUTHORIZATION): a job's PropertiesChanged
# (Stage, Progress, bytes, items) and Log signals go, unicast, only to subscribed callers (who hold the
# access authorization) and to the job's starter. A user whose Subscribe was refused, with a match rule
# for every signal of the service, receives nothing of root's backup; a member of group "opbackup" who did
# not subscribe receives nothing either; one who subscribed receives it all, addressed to it. A caller that
# starts a backup without subscribing receives its own job's signals and no one else's.
#
# Job.Cancel answers the same to a caller without authorization whether or not the job exists
# (AccessDenied); callers who may list the jobs learn NoSuchJob.
#
# The progress itself: while a backup scans, ItemsDone counts files and the bytes stay 0; while it writes
# and syncs, BytesDone/BytesTotal count bytes and the items stay 0. opbackupctl on a terminal shows that progress.

import os
import pty
import re
import select
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture  # noqa: E402
from fixture import (Fixture, expect, expect_eq, ERROR_ACCESS_DENIED, IFACE_JOB, MANAGER_PATH,  # noqa: E402
                     USER_ALLOWED, USER_DENIED)
import backuptest as bt  # noqa: E402

ERROR_NO_SUCH_JOB = "org.opbackup.backup1.Error.NoSuchJob"
IFACE_PROPERTIES = "org.freedesktop.DBus.Properties"
JOB_PREFIX = MANAGER_PATH + "/job/"

# Run as the instance user by the backup engine for each backup: keeps a job in "preparing" for seconds.
SLOW_HOOK = "#!/bin/sh\ncat >/dev/null\nsleep 6\necho '[]'\n"


def slow_fixture():
        def prepare(fx):
                os.chmod(os.path.join(fx.config_dir, "hooks", "additional-excludes.d", "slow"), 0o755)
        return Fixture(config_files={"hooks/additional-excludes.d/slow": SLOW_HOOK}, prepare=prepare)


def job_signals(events, path=None):
        """The signals of job objects (PropertiesChanged, Log): of the job at PATH, or of any job."""
        return [e for e in events if "signal" in e and e["path"].startswith(JOB_PREFIX) and
                (path is None or e["path"] == path)]


def logs(events, path):
        return [e["args"] for e in job_signals(events, path) if e["signal"] == "Log"]


def progress_updates(events, path):
        """The changed properties of each PropertiesChanged of the job at PATH, in order."""
        out = []
        for e in job_signals(events, path):
                if e["signal"] != "PropertiesChanged":
                        continue
                expect_eq(e["interface"], IFACE_PROPERTIES, "interface of PropertiesChanged")
                expect_eq(e["args"][0], IFACE_JOB, "the interface whose properties changed")
                out.append(e["args"][1])
        return out


def check_quantities(updates):
        """Scanning counts files (items), writing counts bytes; neither shows up as the other."""
        scanning = [u for u in updates if u.get("Stage") == "scanning"]
        writing = [u for u in updates if u.get("Stage") == "writing"]
        expect(scanning, f"no PropertiesChanged in stage scanning: {updates}")
        expect(writing, f"no PropertiesChanged in stage writing: {updates}")
        for u in scanning:
                expect_eq((u["BytesDone"], u["BytesTotal"]), (0, 0), f"bytes while scanning ({u})")
                expect_eq(u["ItemsTotal"], 0, f"ItemsTotal while scanning, which has no total ({u})")
        expect(max(u["ItemsDone"] for u in scanning) > 0, f"ItemsDone never counted a file while scanning: {scanning}")
        syncing = [u for u in updates if u.get("Stage") == "syncing"]
        for u in writing + syncing:
                expect_eq((u["ItemsDone"], u["ItemsTotal"]), (0, 0), f"items while {u['Stage']} ({u})")
                expect(u["BytesTotal"] > 0, f"no byte total while {u['Stage']} ({u})")
        # The engine's last report of writing may be rate-limited away; syncing starts with all bytes written.
        expect(syncing, f"no PropertiesChanged in stage syncing: {updates}")
        last = syncing[-1]
        expect(last["BytesDone"] == last["BytesTotal"] and last["Progress"] == 1.0,
               f"the last PropertiesChanged (syncing) is not all of the bytes: {last}")


def test_job_signals_reach_subscribers_and_starter_only():
        with Fixture() as fx:
                allowed = bt.Listener(fx, USER_ALLOWED)
                denied = bt.Listener(fx, USER_DENIED)
                lurker = bt.Listener(fx, USER_ALLOWED, subscribe=False)
                try:
                        expect_eq(allowed.ready["subscribe"], "ok", f"Subscribe as {USER_ALLOWED}")
                        sub = denied.ready["subscribe"]
                        expect(isinstance(sub, dict) and sub["error"] == ERROR_ACCESS_DENIED,
                               f"Subscribe as {USER_DENIED} was not refused with AccessDenied: {sub}")

                        jid, jpath = bt.create_backup(fx, name="roots.zip")
                        bt.job_removed(allowed, jid, timeout=120)

                        # A starter that did not subscribe: its own job's signals, only those.
                        with bt.Listener(fx, USER_ALLOWED, subscribe=False,
                                         create_backup=(fx.instance_path(), "starters.zip")) as starter:
                                created = starter.ready["created"]
                                expect(isinstance(created, list), f"CreateBackup as {USER_ALLOWED}: {created}")
                                sid, spath = created
                                bt.job_removed(starter, sid, timeout=120)
                                bt.job_removed(allowed, sid, timeout=120)
                                time.sleep(1.0)         # stragglers to the others would have arrived by now
                                got_starter = starter.stop()
                finally:
                        got_allowed = allowed.stop()
                        got_denied = denied.stop()
                        got_lurker = lurker.stop()

                expect_eq(job_signals(got_denied), [], f"job signals {USER_DENIED} received after a refused Subscribe")
                expect_eq([e for e in got_denied if "signal" in e], [],
                          f"signals of the service {USER_DENIED} received after a refused Subscribe")
                expect_eq(job_signals(got_lurker), [], f"job signals {USER_ALLOWED} received without subscribing")

                mine = allowed.ready["unique_name"]
                expect(job_signals(got_allowed, jpath), f"the subscriber received no signal of job {jpath}")
                for e in job_signals(got_allowed):
                        expect_eq(e["destination"], mine, f"destination of {e['signal']} of {e['path']} (unicast)")
                expect(logs(got_allowed, jpath), f"the subscriber received no Log of job {jpath}")
                check_quantities(progress_updates(got_allowed, jpath))

                expect_eq(job_signals(got_starter, jpath), [], "signals of root's job to a starter of another job")
                expect(progress_updates(got_starter, spath), f"the starter received no PropertiesChanged of its job {spath}")
                expect(logs(got_starter, spath), f"the starter received no Log of its job {spath}")
                for e in job_signals(got_starter):
                        expect_eq(e["destination"], starter.ready["unique_name"], f"destination of {e['signal']}")
                print(f"# {USER_ALLOWED} (subscribed) received {len(job_signals(got_allowed))} job signals, "
                      f"the starter {len(job_signals(got_starter))}, {USER_DENIED} and the lurker none")


def test_cancel_does_not_reveal_jobs():
        with slow_fixture() as fx:
                nowhere = JOB_PREFIX + "4242"
                e = fx.call_error(USER_DENIED, nowhere, IFACE_JOB, "Cancel")
                expect(e is not None and e.name == ERROR_ACCESS_DENIED,
                       f"Cancel of a job that never was, as {USER_DENIED}: {e and (e.name, e.message)}")
                e = fx.call_error(USER_ALLOWED, nowhere, IFACE_JOB, "Cancel")
                expect(e is not None and e.name == ERROR_NO_SUCH_JOB and "4242" in e.message,
                       f"Cancel of a job that never was, as {USER_ALLOWED}: {e and (e.name, e.message)}")
                e = fx.call_error("root", nowhere, IFACE_JOB, "Cancel")
                expect(e is not None and e.name == ERROR_NO_SUCH_JOB,
                       f"Cancel of a job that never was, as root: {e and (e.name, e.message)}")

                # A job that exists (root's, in the slow hook): the same answer for the unauthorized.
                jid, jpath = bt.create_backup(fx, name="slow.zip")
                expect(any(j[0] == jid for j in bt.list_jobs(fx)), f"job {jid} is not running")
                e = fx.call_error(USER_DENIED, jpath, IFACE_JOB, "Cancel")
                expect(e is not None and e.name == ERROR_ACCESS_DENIED,
                       f"Cancel of root's running job as {USER_DENIED}: {e and (e.name, e.message)}")
                expect(any(j[0] == jid for j in bt.list_jobs(fx)), f"job {jid} ended after a refused Cancel")
                fx.call("root", jpath, IFACE_JOB, "Cancel")
                bt.wait_until(lambda: not bt.list_jobs(fx), f"job {jid} to end after root's Cancel")


def run_on_terminal(fx, user, *args, timeout=120):
        """opbackupctl on a pseudo-terminal; (exit code, everything it wrote)."""
        pid, master = pty.fork()
        if pid == 0:
                argv = fixture.as_user(user, [fixture.OPBACKUPCTL] + list(args))
                os.execvpe(argv[0], argv, fixture.user_env(user, fx.address))
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
                r, _, _ = select.select([master], [], [], 0.5)
                if not r:
                        continue
                try:
                        data = os.read(master, 4096)
                except OSError:         # EIO: the client exited
                        data = b""
                if not data:
                        break
                out += data
        _, status = os.waitpid(pid, 0)
        os.close(master)
        return os.waitstatus_to_exitcode(status), out.decode(errors="replace")


def test_client_shows_progress():
        # opbackupctl subscribes and starts the job: the unicast signals reach it, and its progress line
        # counts files while scanning and bytes while writing.
        with Fixture() as fx:
                code, out = run_on_terminal(fx, USER_ALLOWED, "backup", "--name", "terminal.zip")
                expect_eq(code, 0, f"exit code of backup on a terminal; it showed:\n{out!r}")
                expect("Job 1 scanning: " in out and " file" in out,
                       f"the terminal never showed the files found while scanning:\n{out!r}")
                expect("Job 1 writing" in out and "100%" in out,
                       f"the terminal never showed the writing stage, or 100% of the bytes:\n{out!r}")
                expect(re.search(r"Job 1 (writing|syncing) .*(\d B|iB) / \d", out),
                       f"the terminal never showed bytes written out of a total:\n{out!r}")


fixture.main(globals())
