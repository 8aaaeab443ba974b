#!/usr/bin/python3
# opbackup-notify (opbackup-notify(1)) against a real notification server: for each user, a desktop session
# of its own — Xvfb, a session bus (dbus-daemon --session) and dunst, all running as that user — and
# opbackup-notify in it, on the test's private system bus with the real polkitd and daemon. What the
# person would have seen is read back from dunst (`dunstctl history`, JSON).
#
# - A member of group "opbackup" gets a notification for a backup made by `opbackupctl backup` (instance,
#   name, size) and for a backup that fails (the error in words); an outsider's notifier is refused by
#   the service, says so once, and shows nothing.
# - The daemon still exits for idleness while the notifier is connected (IdleTimeoutSec=1): the notifier
#   watches (Watch()), it does not subscribe. The notifier outlives it, uses no CPU and is not woken up
#   while nothing happens (its CPU time and its voluntary context switches in /proc do not grow), watches
#   again when the daemon is back and notifies the next backup.
# - A job that started before the notifier watched is still notified when it ends.
# - Uploads and restores: a backup copied to a WebDAV remote (apache2 mod_dav) is "uploaded", one that a
#   remote refused is told with the reason; a restore by root is told to the member.

import json
import os
import pwd
import re
import select
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "remote"))
import fixture  # noqa: E402
from fixture import Fixture, Skip, expect, expect_eq, USER_ALLOWED, USER_DENIED  # noqa: E402
import backuptest as bt  # noqa: E402
from servers import Servers  # noqa: E402

OPBACKUP_NOTIFY = os.environ.get("OPBACKUP_NOTIFY") or os.path.join(fixture.SOURCE_ROOT, "build", "client", "notify",
                                                                      "opbackup-notify")
WATCHING = "Watching org.opbackup.backup1"
IDLE_SECONDS = 3.0              # how long the notifier is watched doing nothing
IDLE_TIMEOUT = 2                # the daemon's IdleTimeoutSec=

# Run as the instance user by the backup engine for each backup: keeps a job running for a while.
SLOW_HOOK = "#!/bin/sh\ncat >/dev/null\nsleep 4\necho '[]'\n"


class DesktopSession:
        """A user's desktop session: Xvfb, a session bus and dunst as USER, then opbackup-notify --verbose in
        it. All are children of the test, stopped by stop()."""

        def __init__(self, fx, user):
                self.fx = fx
                self.user = user
                self.procs = []
                pw = pwd.getpwnam(user)
                self.dir = os.path.join(fx.dir, f"session-{user}")
                os.mkdir(self.dir, 0o700)
                os.chown(self.dir, pw.pw_uid, pw.pw_gid)
                self.env = fixture.user_env(user, fx.address)
                self.env["XDG_CONFIG_HOME"] = self.dir          # dunst's defaults, not a dunstrc of the machine
                self.env["XDG_RUNTIME_DIR"] = self.dir
                try:
                        display = self._start_reporting(["Xvfb", "-displayfd", "{fd}", "-screen", "0", "640x480x24",
                                                         "-nolisten", "tcp"], "Xvfb")
                        self.env["DISPLAY"] = ":" + display
                        address = self._start_reporting(["dbus-daemon", "--session", "--nofork", "--nopidfile",
                                                         f"--address=unix:path={self.dir}/bus",
                                                         "--print-address={fd}"], "dbus-daemon")
                        self.env["DBUS_SESSION_BUS_ADDRESS"] = address
                        self._start(["dunst"], "dunst")
                        # Asked without activation: dunstctl would have the bus start a second dunst.
                        self._wait_for(self._dunst_on_bus, "dunst on the session bus")
                        self.notifier = self._start([OPBACKUP_NOTIFY, "--verbose"], "notify")
                except BaseException:
                        self.stop()
                        raise

        def _log(self, what):
                return open(os.path.join(self.dir, f"{what}.log"), "ab")

        def _start(self, argv, what, pass_fds=()):
                proc = subprocess.Popen(fixture.as_user(self.user, argv), env=self.env, stdin=subprocess.DEVNULL,
                                        stdout=self._log(what), stderr=subprocess.STDOUT, pass_fds=pass_fds,
                                        preexec_fn=fixture._die_with_parent)
                self.procs.append(proc)
                return proc

        def _start_reporting(self, argv, what):
                """Starts a program that writes a line to the fd "{fd}" once ready; returns the line."""
                rfd, wfd = os.pipe()
                try:
                        self._start([a.replace("{fd}", str(wfd)) for a in argv], what, pass_fds=(wfd,))
                        os.close(wfd)
                        wfd = -1
                        line = b""
                        deadline = time.monotonic() + 20
                        while not line.endswith(b"\n") and time.monotonic() < deadline:
                                ready, _, _ = select.select([rfd], [], [], 0.5)
                                if ready:
                                        chunk = os.read(rfd, 4096)
                                        if not chunk:
                                                break
                                        line += chunk
                finally:
                        os.close(rfd)
                        if wfd >= 0:
                                os.close(wfd)
                if not line.strip():
                        raise RuntimeError(f"{what} as {self.user} did not start: {self.log(what)}")
                return line.decode().strip()

        def _wait_for(self, cond, what, timeout=20):
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline:
                        if cond():
                                return
                        time.sleep(0.05)
                raise AssertionError(f"timed out after {timeout} s waiting for {what} ({self.user})")

        def _dunst_on_bus(self):
                r = subprocess.run(fixture.as_user(self.user, [
                        "busctl", "--user", "call", "org.freedesktop.DBus", "/org/freedesktop/DBus",
                        "org.freedesktop.DBus", "NameHasOwner", "s", "org.freedesktop.Notifications"]),
                        env=self.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, timeout=30)
                return r.stdout.strip() == "b true"

        def _dunstctl(self, *args):
                return subprocess.run(fixture.as_user(self.user, ["dunstctl", *args]), env=self.env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)

        def log(self, what="notify"):
                path = os.path.join(self.dir, f"{what}.log")
                if not os.path.exists(path):
                        return ""
                with open(path, errors="replace") as f:
                        return f.read()

        def wait_log(self, text, count=1, timeout=30):
                self._wait_for(lambda: self.log().count(text) >= count,
                               f"{count} x '{text}' in the notifier's log:\n{self.log()}", timeout)

        def history(self):
                """Every notification dunst got so far: closes those on screen (they go to the history), then
                reads the history."""
                r = self._dunstctl("close-all")
                expect(r.returncode == 0, f"dunstctl close-all as {self.user}: {r.stderr}")
                time.sleep(0.2)
                r = self._dunstctl("history")
                expect(r.returncode == 0, f"dunstctl history as {self.user}: {r.stderr}")
                doc = json.loads(r.stdout)
                return [{k: v["data"] for k, v in n.items()} for n in doc["data"][0]]

        def wait_notification(self, pred, what, timeout=60):
                deadline = time.monotonic() + timeout
                while True:
                        got = self.history()
                        for n in got:
                                if pred(n):
                                        return n
                        if time.monotonic() > deadline:
                                raise AssertionError(f"no notification {what} for {self.user} within {timeout} s; "
                                                     f"dunst has: {got}\nthe notifier's log:\n{self.log()}")
                        time.sleep(0.3)

        def idle_counters(self):
                """(CPU time in clock ticks, voluntary context switches) of the notifier."""
                pid = self.notifier.pid
                with open(f"/proc/{pid}/stat") as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                with open(f"/proc/{pid}/status") as f:
                        switches = int(re.search(r"^voluntary_ctxt_switches:\s+(\d+)", f.read(), re.M).group(1))
                return int(fields[11]) + int(fields[12]), switches

        def stop(self):
                for proc in reversed(self.procs):
                        fixture.Fixture._stop(proc)
                self.procs = []

        def __enter__(self):
                return self

        def __exit__(self, exc_type, exc, tb):
                if exc_type is not None and not issubclass(exc_type, Skip):
                        for what in ("notify", "dunst", "dbus-daemon", "Xvfb"):
                                print(f"==== {self.user}'s {what}.log:\n{self.log(what)}", file=sys.stderr)
                self.stop()
                return False


def need_desktop_tools():
        missing = [p for p in ("Xvfb", "dunst", "dunstctl") if not shutil.which(p)]
        if missing:
                raise AssertionError(f"{', '.join(missing)} missing: tests/install-deps.sh installs xvfb and dunst")
        if not os.access(OPBACKUP_NOTIFY, os.X_OK):
                raise AssertionError(f"{OPBACKUP_NOTIFY} is not there: build first or set OPBACKUP_NOTIFY")
        # Xvfb's socket folder; a user's Xvfb cannot make it
        os.makedirs("/tmp/.X11-unix", exist_ok=True)
        os.chmod("/tmp/.X11-unix", 0o1777)


def created_of(name, instance="inst1"):
        return lambda n: (n["summary"] == "Backup created" and n["body"].startswith(f"{instance}: {name}, ")
                          and re.search(r", \d+(\.\d)? (B|KiB|MiB)$", n["body"]) is not None)


def test_member_notified_outsider_not():
        need_desktop_tools()
        blocked = {"extra_conf": "[Backup]\nFolder=@DIR@/roots-folder\n"}
        with Fixture(instances={"inst1": None, "inst2": blocked},
                     prepare=lambda fx: os.mkdir(os.path.join(fx.dir, "roots-folder"), 0o755)) as fx, \
                        DesktopSession(fx, USER_ALLOWED) as member, DesktopSession(fx, USER_DENIED) as outsider:
                member.wait_log(WATCHING)
                outsider.wait_log("Not watching")

                fx.ctl_ok(USER_ALLOWED, "-i", "inst1", "backup", "--name", "notified.zip")
                n = member.wait_notification(created_of("notified.zip"), "of the backup notified.zip")
                expect_eq(n["appname"], "OctoPrint backups", "the notification's application name")
                print(f"# {USER_ALLOWED} saw: {n['summary']!r}: {n['body']!r}")

                # A backup into a folder the instance's user cannot write: the job fails, and says why.
                r = fx.ctl(USER_ALLOWED, "-i", "inst2", "backup", "--name", "nowhere.zip")
                expect(r.returncode == 1, f"opbackupctl backup of inst2 into root's folder: exit {r.returncode}, "
                       f"{r.stdout}{r.stderr}")
                blocker = os.path.join(fx.dir, "roots-folder")
                n = member.wait_notification(lambda n: n["summary"] == "Backup failed" and
                                             n["body"].startswith("inst2: ") and blocker in n["body"],
                                             "of the failed backup of inst2")
                print(f"# {USER_ALLOWED} saw: {n['summary']!r}: {n['body']!r}")

                # The outsider: refused once, quietly, and shown nothing. (The member's notifications are in
                # by now, so the outsider's would be too.)
                expect_eq(outsider.history(), [], f"notifications shown to {USER_DENIED}, who may not access backups")
                log = outsider.log()
                expect_eq(log.count("Not watching"), 1, f"refusals {USER_DENIED}'s notifier logged:\n{log}")
                expect(WATCHING not in log and "Cannot" not in log, f"{USER_DENIED}'s notifier log:\n{log}")
                expect(outsider.notifier.poll() is None, f"{USER_DENIED}'s notifier exited:\n{log}")


def test_survives_idle_exit_and_sits_idle():
        need_desktop_tools()
        with Fixture(extra_ini=f"[Daemon]\nIdleTimeoutSec={IDLE_TIMEOUT}\n", daemon=False) as fx, \
                        DesktopSession(fx, USER_ALLOWED) as member:
                # The notifier first: it waits for the service to appear.
                fx.daemon_exit_on_idle = True
                fx.start_daemon()
                member.wait_log(WATCHING)
                # Watching does not keep the daemon: it exits for idleness with the notifier connected.
                try:
                        fx.daemon_proc.wait(timeout=10 * IDLE_TIMEOUT)
                except subprocess.TimeoutExpired:
                        raise AssertionError(f"opbackupd did not exit for idleness within {10 * IDLE_TIMEOUT} s "
                                             "while opbackup-notify was connected")
                fx.wait_for_name_gone(fixture.BUS_NAME)
                fx.daemon_proc = None
                time.sleep(0.5)
                before = member.idle_counters()
                time.sleep(IDLE_SECONDS)
                after = member.idle_counters()
                expect(member.notifier.poll() is None, f"the notifier exited with the daemon:\n{member.log()}")
                expect_eq(after, before, f"the notifier's (CPU ticks, voluntary context switches) over "
                                         f"{IDLE_SECONDS} s with nothing happening")
                expect(not fx.name_has_owner(fixture.BUS_NAME), "someone started opbackupd again")
                print(f"# idle for {IDLE_SECONDS} s: CPU ticks and wakeups of the notifier stayed at {after}")

                # The service comes back (as D-Bus activation would start it; this one stays): watched again.
                fx.daemon_exit_on_idle = False
                fx.start_daemon()
                member.wait_log(WATCHING, count=2)
                fx.ctl_ok(USER_ALLOWED, "backup", "--name", "after-idle.zip")
                member.wait_notification(created_of("after-idle.zip"), "of the backup after the idle exit")


def test_job_started_before_the_notifier():
        need_desktop_tools()

        def prepare(fx):
                os.chmod(os.path.join(fx.config_dir, "hooks", "additional-excludes.d", "slow"), 0o755)
        with Fixture(config_files={"hooks/additional-excludes.d/slow": SLOW_HOOK}, prepare=prepare) as fx:
                pending = fx.ctl_background(USER_ALLOWED, "backup", "--name", "early.zip")
                bt.wait_until(lambda: bt.list_jobs(fx), "the backup job to start")
                with DesktopSession(fx, USER_ALLOWED) as member:
                        member.wait_log(WATCHING)
                        expect(bt.list_jobs(fx), "the job ended before the notifier watched: the test proves nothing")
                        r = pending.wait(timeout=120)
                        expect(r.returncode == 0, f"opbackupctl backup: {r.stdout}{r.stderr}")
                        member.wait_notification(created_of("early.zip"), "of a backup that started before it")


def test_uploads_and_restore():
        need_desktop_tools()
        servers = Servers()
        try:
                url, data, _ = servers.apache("opb", "dav-secret")

                def prepare(fx):
                        for name, password in (("dav", "dav-secret"), ("bad", "wrong")):
                                fx.write_remote(name, f"Type=webdav\nURL={url}/octoprint\n", f"User=opb\nPassword={password}\n")
                instance = {"gen_args": ["--restart-command", "true"], "extra_conf": "[Backup]\nCopyTo=dav bad\n"}
                with Fixture(instances={"inst1": instance}, prepare=prepare) as fx, \
                                DesktopSession(fx, USER_ALLOWED) as member:
                        member.wait_log(WATCHING)
                        fx.ctl_ok(USER_ALLOWED, "backup", "--name", "up.zip")
                        n = member.wait_notification(lambda n: n["summary"] == "Backup uploaded" and
                                                     n["body"] == "inst1: up.zip copied to dav.", "of the upload to dav")
                        expect(os.path.exists(os.path.join(data, "octoprint", "inst1", "up.zip")),
                               "the notification told of an upload that is not on the server")
                        n = member.wait_notification(lambda n: n["summary"] == "Backup created" and
                                                     n["body"].startswith("inst1: up.zip, ") and
                                                     "\nNot copied to bad: " in n["body"],
                                                     "of the backup, with the refused upload")
                        print(f"# {USER_ALLOWED} saw: {n['summary']!r}: {n['body']!r}")

                        fx.ctl_ok("root", "restore", "up.zip", "--yes", "--skip-plugins", "--no-restart")
                        n = member.wait_notification(lambda n: n["summary"] == "Restore done" and
                                                     n["body"] == "inst1 was restored.", "of root's restore")
        finally:
                servers.close()


if __name__ == "__main__":
        fixture.main(globals())
