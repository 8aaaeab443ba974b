#!/usr/bin/python3
# The backup-management commands of opbackupctl(1) through the real client, daemon and polkitd:
# backup, list, inspect, export, import, delete, prune, jobs, cancel, monitor — what a user of group
# "opbackup" sees, and the exit codes scripts rely on. A slow additional-excludes hook keeps jobs running
# long enough to press Ctrl-C on a terminal (a pty) and to stop the daemon under a waiting client.

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture  # noqa: E402
from fixture import Fixture, expect, expect_eq, USER_ALLOWED, USER_DENIED  # noqa: E402

SAMPLE_VERSION = "1.11.8"       # the OctoPrint version of tests/gen-instance.py's sample venv
LOCATED = re.compile(r"^Backup located at (/\S+\.zip)$", re.M)

# Run as the instance user for up to 10 s by the backup engine (opbackupd(8), ARCHIVE FORMAT): a backup
# "preparing" that long.
SLOW_HOOK = "#!/bin/sh\ncat >/dev/null\nsleep 8\necho '[]'\n"


def slow_fixture():
        def prepare(fx):
                os.chmod(os.path.join(fx.config_dir, "hooks", "additional-excludes.d", "slow"), 0o755)
        return Fixture(config_files={"hooks/additional-excludes.d/slow": SLOW_HOOK}, prepare=prepare)


def backup(fx, user, *args):
        """Runs `backup`; returns the path the client says the backup is at."""
        r = fx.ctl_ok(user, "backup", *args)
        m = LOCATED.search(r.stdout)
        expect(m, f"backup did not print 'Backup located at PATH':\n{r.stdout}")
        return m.group(1)


def list_json(fx, user=USER_ALLOWED):
        r = fx.ctl_ok(user, "list", "--json")
        try:
                return json.loads(r.stdout)
        except ValueError as e:
                raise AssertionError(f"list --json is not JSON ({e}):\n{r.stdout}") from e


def listed_names(fx, user=USER_ALLOWED):
        return [b["name"] for b in list_json(fx, user)]


def user_dir(fx, user):
        """A folder USER can write (exports go there)."""
        import pwd
        d = os.path.join(fx.dir, f"out-{user}")
        os.makedirs(d, exist_ok=True)
        pw = pwd.getpwnam(user)
        os.chown(d, pw.pw_uid, pw.pw_gid)
        return d


def read_file(path):
        with open(path, "rb") as f:
                return f.read()


def inspect_json(fx, what):
        r = fx.ctl_ok(USER_ALLOWED, "inspect", what, "--json")
        return json.loads(r.stdout)


def job_stages(fx):
        return [j["stage"] for j in json.loads(fx.ctl_ok(USER_ALLOWED, "jobs", "--json").stdout)]


def wait_until(cond, what, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
                if cond():
                        return
                time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}")


class Terminal:
        """opbackupctl on a pseudo-terminal: what a person at a terminal sees and types."""

        def __init__(self, fx, user, *args):
                self.pid, self.master = pty.fork()
                if self.pid == 0:
                        argv = fixture.as_user(user, [fixture.OPBACKUPCTL] + list(args))
                        os.execvpe(argv[0], argv, fixture.user_env(user, fx.address))
                self.output = ""
                self.status = None

        def _read(self, timeout):
                r, _, _ = select.select([self.master], [], [], timeout)
                if not r:
                        return True
                try:
                        data = os.read(self.master, 4096)
                except OSError:         # EIO: the client exited and closed the terminal
                        data = b""
                if not data:
                        return False
                self.output += data.decode(errors="replace")
                return True

        def expect(self, text, timeout=30):
                deadline = time.monotonic() + timeout
                while text not in self.output:
                        if time.monotonic() > deadline or not self._read(0.2):
                                raise AssertionError(f"the terminal never showed {text!r}; it showed:\n"
                                                     f"{self.output!r}")

        def send(self, data):
                os.write(self.master, data)

        def wait(self, timeout=60):
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline:
                        if not self._read(0.2):
                                break
                _, status = os.waitpid(self.pid, 0)
                os.close(self.master)
                self.status = os.waitstatus_to_exitcode(status)
                return self.status


# ---------------------------------------------------------------------------------------------------------

def test_backup_list_export_import_delete():
        with Fixture() as fx:
                r = fx.ctl_ok(USER_ALLOWED, "list")
                expect_eq(r.stdout.strip(), "No backups.", "list before any backup")

                path = backup(fx, USER_ALLOWED)
                name = os.path.basename(path)
                expect(os.path.isfile(path), f"the backup the client names does not exist: {path}")

                r = fx.ctl_ok(USER_ALLOWED, "list")
                lines = r.stdout.splitlines()
                expect(lines[0].split() == ["NAME", "DATE", "SIZE", "VERSION", "EXCLUDES"],
                       f"list has no header NAME DATE SIZE VERSION EXCLUDES:\n{r.stdout}")
                row = next((line for line in lines if line.startswith(name + " ")), None)
                expect(row, f"list does not show {name}:\n{r.stdout}")
                expect(re.search(r" \d{4}-\d\d-\d\d \d\d:\d\d:\d\d ", row), f"no local date in the row: {row}")
                expect(f" {SAMPLE_VERSION} " in row and row.rstrip().endswith("-"),
                       f"the row does not show version {SAMPLE_VERSION} and no excludes: {row}")

                listed = list_json(fx)
                expect_eq([b["name"] for b in listed], [name], "names in list --json")
                b = listed[0]
                expect_eq(b["size"], os.path.getsize(path), "size in list --json")
                expect_eq(b["octoprint_version"], SAMPLE_VERSION, "octoprint_version in list --json")
                expect_eq(b["excludes"], [], "excludes in list --json")
                expect(abs(b["created_usec"] / 1e6 - os.path.getmtime(path)) < 120,
                       f"created_usec {b['created_usec']} is not the backup's time")
                expect(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", b["created"]),
                       f"created is not ISO 8601: {b['created']!r}")
                expect(b["uncompressed_size"] >= b["size"] > 0, f"sizes: {b}")

                # export: a byte-identical copy, where the user asked.
                out = os.path.join(user_dir(fx, USER_ALLOWED), name)
                fx.ctl_ok(USER_ALLOWED, "export", name, "-o", out)
                expect(read_file(out) == read_file(path), "the exported file differs from the backup")
                r = fx.ctl(USER_ALLOWED, "export", name, "-o", out)
                expect_eq(r.returncode, 1, f"exit code of an export over an existing file ({r.stderr.strip()})")
                expect("--force" in r.stderr, f"the refusal does not mention --force: {r.stderr.strip()}")
                expect(read_file(out) == read_file(path), "a refused export changed the file")

                # inspect by name (the daemon opens it) and of the exported file (read locally) agree.
                by_name, by_file = inspect_json(fx, name), inspect_json(fx, out)
                expect_eq(by_name.pop("name"), name, "inspect --json name")
                expect_eq(by_file.pop("file"), out, "inspect --json file")
                expect_eq(by_name, by_file, "inspect of the backup and of its exported copy")
                expect_eq(by_name["valid"], True, f"inspect says the backup is invalid: {by_name['problems']}")
                expect_eq(by_name["octoprint_version"], SAMPLE_VERSION, "inspect octoprint_version")
                want_plugins = sorted(fx.expected()["plugin_list"], key=lambda p: p["key"])
                expect_eq(sorted(by_name["plugins"], key=lambda p: p["key"]), want_plugins, "inspect plugins")
                expect_eq(by_name["compressed_size"] < os.path.getsize(path), True, "compressed size < file size")
                r = fx.ctl_ok(USER_ALLOWED, "inspect", name)
                expect(re.search(r"^Valid:\s+yes$", r.stdout, re.M), f"inspect text does not say valid:\n{r.stdout}")
                for p in want_plugins:
                        expect(p["key"] in r.stdout, f"inspect text does not list plugin {p['key']}:\n{r.stdout}")

                # import of the exported file: its name is taken, so it gets the next counter name.
                counter_name = name[:-len(".zip")] + ".1.zip"
                r = fx.ctl_ok(USER_ALLOWED, "import", out)
                expect_eq(r.stdout.strip(), f"Imported as {counter_name}", "import output")
                expect_eq(sorted(listed_names(fx)), sorted([name, counter_name]), "backups after import")

                # import - (the Cockpit page's upload route): the zip from standard input, stored under
                # --name, the same bytes; what is not a backup is refused and leaves nothing behind.
                with open(path, "rb") as f:
                        zip_bytes = f.read()
                r = subprocess.run(fx._ctl_argv(USER_ALLOWED, ["import", "-", "--name", "piped.zip", "--json"]),
                                   env=fixture.user_env(USER_ALLOWED, fx.address), input=zip_bytes,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
                expect_eq(r.returncode, 0, f"import - exit code ({r.stderr.decode().strip()})")
                expect_eq(json.loads(r.stdout), {"file": "-", "name": "piped.zip"}, "import - --json")
                expect(read_file(os.path.join(os.path.dirname(path), "piped.zip")) == zip_bytes,
                       "the backup imported from standard input has other bytes")
                before = sorted(os.listdir(os.path.dirname(path)))
                r = subprocess.run(fx._ctl_argv(USER_ALLOWED, ["import", "-"]), env=fixture.user_env(USER_ALLOWED, fx.address),
                                   input=b"not a zip\n" * 1000, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   timeout=120)
                expect_eq(r.returncode, 1, f"import - of garbage: exit code ({r.stderr.decode().strip()})")
                expect(b"not an OctoPrint backup" in r.stderr or b"not a zip" in r.stderr.lower(),
                       f"import - of garbage: the error says why: {r.stderr.decode().strip()}")
                expect_eq(sorted(os.listdir(os.path.dirname(path))), before, "a refused import - left files")
                fx.ctl_ok(USER_ALLOWED, "delete", "piped.zip")

                # delete
                r = fx.ctl_ok(USER_ALLOWED, "delete", counter_name)
                expect(counter_name in r.stdout, f"delete does not report what it deleted: {r.stdout}")
                expect_eq(listed_names(fx), [name], "backups after delete")
                expect(counter_name not in fx.ctl_ok(USER_ALLOWED, "list").stdout, "list still shows the deleted backup")
                r = fx.ctl(USER_ALLOWED, "delete", "nonexistent-backup.zip")
                expect_eq(r.returncode, 4, f"exit code of deleting a nonexistent backup ({r.stderr.strip()})")
                expect("nonexistent-backup.zip" in r.stderr, f"the error does not name the backup: {r.stderr.strip()}")
                r = fx.ctl(USER_ALLOWED, "inspect", "nonexistent-backup.zip")
                expect_eq(r.returncode, 4, f"exit code of inspecting a nonexistent backup ({r.stderr.strip()})")


def test_backup_excludes():
        with Fixture() as fx:
                r = fx.ctl_ok(USER_ALLOWED, "--json", "backup", "--exclude", "uploads", "--exclude", "timelapse")
                done = json.loads(r.stdout)
                expect_eq(done["excludes"], ["uploads", "timelapse", "timelapse_tmp"], "excludes in backup --json")
                expect_eq(done["size"], os.path.getsize(done["path"]), "size in backup --json")
                expect_eq(os.path.basename(done["path"]), done["name"], "name in backup --json")
                listed = list_json(fx)
                expect_eq(listed[0]["excludes"], ["uploads", "timelapse", "timelapse_tmp"], "excludes in list --json")
                row = fx.ctl_ok(USER_ALLOWED, "list").stdout.splitlines()[1]
                expect(row.rstrip().endswith("uploads,timelapse,timelapse_tmp"), f"list row: {row}")
                expect_eq(inspect_json(fx, done["name"])["excludes"], ["uploads", "timelapse", "timelapse_tmp"],
                          "excludes in inspect --json")

                r = fx.ctl(USER_ALLOWED, "backup", "--exclude", "nonsense")
                expect_eq(r.returncode, 2, f"exit code of --exclude nonsense ({r.stderr.strip()})")
                excludable = fx.get_property(USER_ALLOWED, fx.instance_path(), fixture.IFACE_INSTANCE, "Excludable")
                expect("nonsense" in r.stderr, f"the error does not name the bad folder: {r.stderr.strip()}")
                for folder in excludable:
                        expect(folder in r.stderr, f"the error does not list excludable {folder}: {r.stderr.strip()}")
                expect_eq(len(list_json(fx)), 1, "backups after a refused backup")

                r = fx.ctl(USER_DENIED, "backup")
                expect_eq(r.returncode, 3, f"exit code of backup as {USER_DENIED} ({r.stderr.strip()})")


def test_prune():
        with Fixture() as fx:
                for n in ("a", "b", "c"):
                        backup(fx, USER_ALLOWED, "--name", f"prune-{n}.zip")
                        time.sleep(0.05)       # distinct creation times: "newest" is well defined
                r = fx.ctl(USER_ALLOWED, "prune")
                expect_eq(r.returncode, 2, f"exit code of prune without --keep ({r.stderr.strip()})")
                expect("--keep" in r.stderr, f"the usage error does not mention --keep: {r.stderr.strip()}")
                expect_eq(len(list_json(fx)), 3, "backups after a refused prune")

                r = fx.ctl_ok(USER_ALLOWED, "prune", "--keep", "1")
                expect("prune-a.zip" in r.stdout and "prune-b.zip" in r.stdout and "prune-c.zip" not in r.stdout,
                       f"prune --keep 1 does not report deleting the two older backups:\n{r.stdout}")
                expect_eq(listed_names(fx), ["prune-c.zip"], "backups after prune --keep 1")
                r = fx.ctl_ok(USER_ALLOWED, "prune", "--keep", "1")
                expect_eq(r.stdout.strip(), "Nothing to prune.", "a second prune --keep 1")


def test_jobs_and_cancel():
        with Fixture() as fx:
                expect_eq(fx.ctl_ok(USER_ALLOWED, "jobs").stdout.strip(), "No jobs.", "jobs when idle")
                expect_eq(json.loads(fx.ctl_ok(USER_ALLOWED, "jobs", "--json").stdout), [], "jobs --json when idle")
                r = fx.ctl(USER_ALLOWED, "cancel", "4242")
                expect_eq(r.returncode, 4, f"exit code of cancel of a nonexistent job ({r.stderr.strip()})")
                expect("4242" in r.stderr, f"the error does not name the job: {r.stderr.strip()}")
                r = fx.ctl(USER_ALLOWED, "cancel", "abc")
                expect_eq(r.returncode, 2, f"exit code of cancel abc ({r.stderr.strip()})")
                # On the bus: a job that ended (or never was) answers the API's NoSuchJob, naming it.
                e = fx.call_error(USER_ALLOWED, "/org/opbackup/backup1/job/4242", fixture.IFACE_JOB, "Cancel")
                expect(e is not None and e.name == "org.opbackup.backup1.Error.NoSuchJob" and "4242" in e.message,
                       f"Job.Cancel of job 4242, which never was: {e and (e.name, e.message)}")


def test_monitor_json():
        with Fixture() as fx:
                mon = fx.ctl_background(USER_ALLOWED, "--json", "monitor")
                # The monitor must have subscribed before the backup starts; it needs some milliseconds.
                time.sleep(1.0)
                expect(not mon.done(), "monitor exited at once")
                path = backup(fx, "root")
                name = os.path.basename(path)

                fd = mon.proc.stdout.fileno()
                os.set_blocking(fd, False)
                seen, buf = [], ""
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and not any(
                                e.get("signal") == "BackupCreated" and e.get("name") == name for e in seen):
                        select.select([fd], [], [], 0.2)
                        try:
                                chunk = os.read(fd, 65536)
                        except BlockingIOError:
                                continue
                        if not chunk:
                                break
                        buf += chunk.decode()
                        *lines, buf = buf.split("\n")
                        for line in lines:
                                try:
                                        seen.append(json.loads(line))
                                except ValueError as e:
                                        raise AssertionError(f"monitor --json printed a line that is not JSON: "
                                                             f"{line!r}") from e
                mon.proc.send_signal(signal.SIGINT)
                r = mon.wait(timeout=10)
                expect_eq(r.returncode, 0, f"exit code of monitor on SIGINT ({r.stderr.strip()})")
                created = [e for e in seen if e.get("signal") == "BackupCreated"]
                expect(created, f"monitor showed no BackupCreated; it showed: {seen}")
                expect_eq(created[0], {"signal": "BackupCreated", "instance": "inst1", "name": name, "path": path,
                                       "excludes": []}, "the BackupCreated line")
                expect(any(e.get("signal") == "JobNew" for e in seen), f"monitor showed no JobNew: {seen}")


def test_backup_ctrl_c_on_terminal():
        with slow_fixture() as fx:
                # Ctrl-C, then "y": the job is canceled, the client says so and fails.
                t = Terminal(fx, USER_ALLOWED, "backup")
                t.expect("Job 1 ")              # the progress line
                t.send(b"\x03")
                t.expect("Cancel the backup job 1? [y/N] (N leaves it running in the background)")
                t.send(b"y\n")
                expect_eq(t.wait(), 1, f"exit code after canceling at the prompt; the terminal showed:\n{t.output}")
                expect("Backup canceled" in t.output, f"the terminal does not say the backup was canceled:\n{t.output}")
                expect_eq(list_json(fx), [], "backups after a canceled backup")

                # Ctrl-C, then "n": the client leaves, the job goes on and can be canceled by id.
                t = Terminal(fx, USER_ALLOWED, "backup")
                t.expect("Job 2 ")
                t.send(b"\x03")
                t.expect("Cancel the backup job 2?")
                t.send(b"n\n")
                expect_eq(t.wait(), 0, f"exit code after leaving the job running; the terminal showed:\n{t.output}")
                expect("Job 2 keeps running; see 'opbackupctl jobs'." in t.output,
                       f"the terminal does not say the job keeps running:\n{t.output}")
                jobs = json.loads(fx.ctl_ok(USER_ALLOWED, "jobs", "--json").stdout)
                expect_eq([(j["id"], j["operation"], j["instance"]) for j in jobs], [(2, "backup", "inst1")],
                          "jobs after leaving job 2 running")
                expect(re.search(r"^\s*2\s+backup\s+inst1\s", fx.ctl_ok(USER_ALLOWED, "jobs").stdout, re.M),
                       "the jobs table does not show job 2")
                fx.ctl_ok(USER_ALLOWED, "cancel", "2")
                wait_until(lambda: fx.ctl_ok(USER_ALLOWED, "jobs").stdout.strip() == "No jobs.", "job 2 to end")
                expect_eq(list_json(fx), [], "backups after canceling job 2")

                # No terminal: SIGTERM (a stopping timer unit) cancels the backup.
                p = fx.ctl_background(USER_ALLOWED, "backup")
                # In the slow hook: the client got its job and waits for it.
                wait_until(lambda: job_stages(fx) == ["preparing"], "job 3 to run the hook")
                p.proc.send_signal(signal.SIGTERM)
                r = p.wait(timeout=60)
                expect_eq(r.returncode, 1, f"exit code of a backup canceled by SIGTERM ({r.stderr.strip()})")
                expect("Backup canceled" in r.stderr, f"no 'Backup canceled' after SIGTERM: {r.stderr.strip()}")


def test_backup_daemon_goes_away():
        with slow_fixture() as fx:
                p = fx.ctl_background(USER_ALLOWED, "backup")
                wait_until(lambda: job_stages(fx) == ["preparing"], "the job to run the hook")
                fx.stop_daemon()
                r = p.wait(timeout=30)
                expect_eq(r.returncode, 1, f"exit code when the daemon stops mid-backup ({r.stderr.strip()})")
                expect("service stopped" in r.stderr, f"the client does not say the service stopped: {r.stderr.strip()}")


fixture.main(globals())
