#!/usr/bin/python3
# opbackupctl's command line as opbackupctl(1) documents it, through the real client, daemon and polkitd:
# - every command, with its options once before and once after the command, and --json on each: the
#   output parses as JSON and has the documented keys (and the values the action implies);
# - two instances and no -i: exit 2, naming both; an unknown option, or an option of another command:
#   exit 2 and "See 'opbackupctl COMMAND --help'."; COMMAND --help without the service;
# - errors in the command's words: the first line says what could not be done and why, without a D-Bus
#   member name or "org.opbackup"; the advice after it fits the action (a member of group opbackup is not
#   told to join it; a restore needs an administrator);
# - inspect FILE with no daemon, and with no bus at all;
# - the pager: used on a terminal ($PAGER, LESS=FRXMK), not with --no-pager, not into a pipe.

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture  # noqa: E402
from fixture import Fixture, expect, expect_eq, USER_ALLOWED, USER_DENIED  # noqa: E402

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_NOT_AUTHORIZED, EXIT_NOT_FOUND, EXIT_BUSY = range(6)

NO_REPOSITORY = "[Restore]\nPluginRepository=http://127.0.0.1:9/plugins.json\n"
# Restorable (a restart command), no plugin repository needed (restores use --skip-plugins), Keep=1 for
# scheduled-backup to prune to.
INSTANCE = {"gen_args": ["--restart-command", "true"], "extra_conf": NO_REPOSITORY + "[Backup]\nKeep=1\n"}
# An additional-excludes hook that keeps a backup running while the flag file exists (for cancel).
SLOW_HOOK = "#!/bin/sh\ncat >/dev/null\nwhile [ -e @DIR@/slow ]; do sleep 0.1; done\necho '[]'\n"

# The documented keys of each command's JSON (opbackupctl(1), JSON OUTPUT).
STATUS_KEYS = {"version", "instances", "jobs"}
INSTANCE_KEYS = {"name", "object", "basedir", "backup_folder", "user", "octoprint_version", "usable",
                 "unusable_reason", "restore_supported", "restore_unsupported_reason", "free_space",
                 "remotes", "remote_status"}
STATUS_JOB_KEYS = {"id", "operation", "instance", "name", "object"}
LIST_KEYS = {"name", "size", "uncompressed_size", "created", "created_usec", "octoprint_version", "excludes"}
BACKUP_KEYS = {"name", "path", "size", "excludes"}
BACKUP_NO_WAIT_KEYS = {"id", "job"}
RESTORE_KEYS = {"backup", "basedir", "installed_plugins", "failed_plugins", "unknown_plugins"}
DELETE_KEYS = {"deleted", "failed"}
EXPORT_KEYS = {"name", "file", "size"}
IMPORT_KEYS = {"file", "name"}
INSPECT_KEYS = {"valid", "problems", "warnings", "octoprint_version", "excludes", "has_metadata", "has_config",
                "has_users", "plugins", "entries", "compressed_size", "uncompressed_size", "folders"}
INSPECT_FOLDER_KEYS = {"name", "entries", "size", "compressed_size"}
PLUGIN_KEYS = {"key", "name", "url"}
PRUNE_KEYS = {"deleted"}
JOB_KEYS = {"id", "operation", "instance", "name", "object", "stage", "progress", "bytes_done", "bytes_total",
            "items_done", "items_total", "started_by_uid"}
CANCEL_KEYS = {"id", "job"}
SCHEDULED_KEYS = {"instances"}
SCHEDULED_INSTANCE_KEYS = {"instance", "result", "backup", "pruned", "remotes", "exit_status"}
SIGNAL_KEYS = {
        "BackupCreated": {"signal", "instance", "name", "path", "excludes"},
        "BackupDeleted": {"signal", "instance", "name"},
        "JobNew": {"signal", "id", "path"},
        "JobRemoved": {"signal", "id", "path", "result", "error", "details"},
        "Log": {"signal", "id", "path", "level", "line"},
}

# D-Bus member names a person should never have to read in the first line of an error.
API = fixture.parse_interfaces(fixture.api_xml())
MEMBERS = sorted({m for i in API.values() for kind in ("methods", "signals") for m in i[kind]} |
                 {"GetAll", "GetNameOwner"})


def main_fixture(**kw):
        def prepare(fx):
                os.chmod(os.path.join(fx.config_dir, "hooks", "additional-excludes.d", "slow"), 0o755)
        return Fixture(instances={"inst1": dict(INSTANCE)}, config_files={"hooks/additional-excludes.d/slow": SLOW_HOOK},
                       prepare=prepare, **kw)


def shape(doc, keys, what):
        expect(isinstance(doc, dict), f"{what}: not a JSON object: {doc!r}")
        expect_eq(set(doc), keys, f"{what}: keys")


def json_of(r, what):
        try:
                return json.loads(r.stdout)
        except ValueError as e:
                raise AssertionError(f"{what}: not JSON ({e}):\n{r.stdout}\nstderr: {r.stderr}") from e


def both(fx, user, before, verb, after=None, args=(), want=EXIT_OK):
        """Runs `opbackupctl BEFORE VERB ARGS` and `opbackupctl VERB ARGS AFTER` (AFTER: BEFORE again unless
        given); both must exit `want`. Returns the two parsed JSON documents."""
        after = before if after is None else after
        docs = []
        for argv in ([*before, verb, *args], [verb, *args, *after]):
                r = fx.ctl(user, *argv)
                expect_eq(r.returncode, want, f"opbackupctl {' '.join(argv)} as {user}: exit status "
                          f"(stderr: {r.stderr.strip()})")
                docs.append(json_of(r, f"opbackupctl {' '.join(argv)}"))
        return docs


def first_line(r):
        lines = r.stderr.strip().splitlines()
        return lines[0] if lines else ""


def expect_plain_error(r, want, what, starts="Cannot "):
        """The exit status, and a first line of stderr in the command's words."""
        line = first_line(r)
        expect_eq(r.returncode, want, f"{what}: exit status (stderr: {r.stderr.strip()})")
        expect(line.startswith(starts), f"{what}: the error does not start with {starts!r}: {line!r}")
        expect("org.opbackup" not in line, f"{what}: the first line names a D-Bus name or polkit action: {line!r}")
        for m in MEMBERS:
                expect(not re.search(rf"\b{m}\b", line), f"{what}: the first line names the D-Bus member {m}: {line!r}")
        return line


def wait_until(cond, what, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
                if cond():
                        return
                time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}")


def jobs(fx):
        return json.loads(fx.ctl_ok("root", "--json", "jobs").stdout)


def user_dir(fx, user):
        import pwd
        d = os.path.join(fx.dir, f"out-{user}")
        os.makedirs(d, exist_ok=True)
        pw = pwd.getpwnam(user)
        os.chown(d, pw.pw_uid, pw.pw_gid)
        return d


def write_backup_zip(path, version="1.9.0"):
        """A minimal valid OctoPrint backup, made here without the service."""
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
                z.writestr("metadata.json", json.dumps({"version": version, "excludes": []}))
                z.writestr("basedir/config.yaml", "appearance:\n  name: test\n")
                z.writestr("basedir/users.yaml", "{}\n")
                z.writestr("plugin_list.json", json.dumps([{"key": "k", "name": "K", "url": None}]))
        os.chmod(path, 0o644)


def on_terminal(fx, user, args, env_extra, timeout=30):
        """opbackupctl on a pseudo-terminal; returns (exit status, what the terminal showed)."""
        pid, master = pty.fork()
        if pid == 0:
                argv = fixture.as_user(user, [fixture.OPBACKUPCTL] + list(args))
                env = fixture.user_env(user, fx.address)
                env.update(env_extra)
                os.execvpe(argv[0], argv, env)
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
                ready, _, _ = select.select([master], [], [], 0.2)
                if not ready:
                        continue
                try:
                        data = os.read(master, 65536)
                except OSError:
                        break
                if not data:
                        break
                out += data
        _, status = os.waitpid(pid, 0)
        os.close(master)
        return os.waitstatus_to_exitcode(status), out.decode(errors="replace").replace("\r\n", "\n")


# ---------------------------------------------------------------------------------------------------------

def test_every_command_json_options_before_and_after():
        with main_fixture() as fx:
                out = user_dir(fx, USER_ALLOWED)

                # status
                for doc in both(fx, USER_ALLOWED, ["--json", "-i", "inst1"], "status"):
                        shape(doc, STATUS_KEYS, "status --json")
                        expect_eq([i["name"] for i in doc["instances"]], ["inst1"], "status --json instances")
                        shape(doc["instances"][0], INSTANCE_KEYS, "status --json instances[0]")
                        expect_eq(doc["jobs"], [], "status --json jobs")

                # backup, twice each way; --exclude and --name before and after.
                b1, b2 = both(fx, USER_ALLOWED, ["--json", "--exclude", "uploads", "--name", "b1.zip"], "backup",
                              after=["--name", "b2.zip", "-e", "timelapse", "--json"])
                for doc, name, excludes in ((b1, "b1.zip", ["uploads"]), (b2, "b2.zip", ["timelapse", "timelapse_tmp"])):
                        shape(doc, BACKUP_KEYS, "backup --json")
                        expect_eq(doc["name"], name, "backup --json name")
                        expect_eq(doc["excludes"], excludes, "backup --json excludes")
                        expect_eq(doc["size"], os.path.getsize(doc["path"]), "backup --json size")
                        # Paths as they are: "/home/pi", not "\/home\/pi".
                        raw = fx.ctl_ok(USER_ALLOWED, "backup", "--json", "--name", f"slash-{name}").stdout
                        expect("/" in raw and "\\/" not in raw, f"backup --json escapes slashes:\n{raw}")
                for doc in both(fx, USER_ALLOWED, ["--no-wait", "--json"], "backup",
                                after=["--json", "--no-wait"]):
                        shape(doc, BACKUP_NO_WAIT_KEYS, "backup --no-wait --json")
                        expect(doc["job"].startswith("/org/opbackup/backup1/job/"), f"backup --no-wait job: {doc}")
                        # Generated names have a resolution of a second: let the next one differ.
                        wait_until(lambda: jobs(fx) == [], "the --no-wait backup to end")
                        time.sleep(1.1)

                # list
                for doc in both(fx, USER_ALLOWED, ["--json", "--no-legend", "--no-pager", "-i", "inst1"], "list"):
                        expect(isinstance(doc, list) and len(doc) == 6, f"list --json: {doc}")
                        for b in doc:
                                shape(b, LIST_KEYS, "list --json entry")
                        expect_eq({b["name"] for b in doc} >= {"b1.zip", "b2.zip"}, True, "list --json names")

                # inspect NAME and FILE
                for doc in both(fx, USER_ALLOWED, ["--json"], "inspect", args=["b1.zip"]):
                        shape(doc, INSPECT_KEYS | {"name"}, "inspect NAME --json")
                        expect_eq((doc["name"], doc["valid"], doc["excludes"]), ("b1.zip", True, ["uploads"]),
                                  "inspect NAME --json")
                        for f in doc["folders"]:
                                shape(f, INSPECT_FOLDER_KEYS, "inspect --json folder")
                        for p in doc["plugins"]:
                                shape(p, PLUGIN_KEYS, "inspect --json plugin")

                # export, then inspect and import the exported files
                e1, e2 = both(fx, USER_ALLOWED, ["-o", os.path.join(out, "e1.zip"), "--json"], "export",
                              after=["--json", "--output", os.path.join(out, "e2.zip")], args=["b2.zip"])
                for doc, f in ((e1, "e1.zip"), (e2, "e2.zip")):
                        shape(doc, EXPORT_KEYS, "export --json")
                        expect_eq((doc["name"], doc["file"]), ("b2.zip", os.path.join(out, f)), "export --json")
                        expect_eq(doc["size"], os.path.getsize(os.path.join(out, f)), "export --json size")
                for doc in both(fx, USER_ALLOWED, ["--json"], "inspect", args=[os.path.join(out, "e1.zip")]):
                        shape(doc, INSPECT_KEYS | {"file"}, "inspect FILE --json")
                        expect_eq(doc["valid"], True, "inspect FILE --json valid")
                i1, i2 = both(fx, USER_ALLOWED, ["--json"], "import", args=[os.path.join(out, "e1.zip")])
                for doc in (i1, i2):
                        shape(doc, IMPORT_KEYS, "import --json")
                expect_eq((i1["name"], i2["name"]), ("e1.zip", "e1.1.zip"), "import --json names")

                # unknown-plugins, and --clear
                for doc in both(fx, USER_ALLOWED, ["--json"], "unknown-plugins"):
                        expect_eq(doc, [], "unknown-plugins --json")
                for doc in both(fx, USER_ALLOWED, ["--clear", "--json"], "unknown-plugins"):
                        expect_eq(doc, {"cleared": True}, "unknown-plugins --clear --json")

                # prune: nothing, then the imported copies
                for doc in both(fx, USER_ALLOWED, ["--json", "--keep", "10", "--match", "e1*"], "prune"):
                        expect_eq(doc, {"deleted": []}, "prune --json, nothing to prune")
                p1, p2 = both(fx, USER_ALLOWED, ["--keep", "1", "-m", "e1*.zip", "--json"], "prune",
                              after=["--json", "-k", "0", "--match", "e1*.zip"])
                shape(p1, PRUNE_KEYS, "prune --json")
                expect_eq(len(p1["deleted"]) + len(p2["deleted"]), 2, f"prune --json deleted: {p1}, {p2}")

                # delete, with one that is not there
                doc = json_of(fx.ctl_ok(USER_ALLOWED, "--json", "delete", "slash-b1.zip"), "delete --json")
                shape(doc, DELETE_KEYS, "delete --json")
                expect_eq(doc, {"deleted": ["slash-b1.zip"], "failed": []}, "delete --json")
                r = fx.ctl(USER_ALLOWED, "delete", "slash-b2.zip", "nope.zip", "--json")
                expect_eq(r.returncode, EXIT_NOT_FOUND, f"delete of one there and one not: exit ({r.stderr})")
                expect_eq(json_of(r, "delete --json"), {"deleted": ["slash-b2.zip"], "failed": ["nope.zip"]},
                          "delete --json, one missing")

                # jobs and cancel, with a backup kept running by the hook
                flag = os.path.join(fx.dir, "slow")
                for before in (True, False):
                        open(flag, "w").close()
                        job = fx.ctl_ok("root", "backup", "--no-wait", "--json", "--name",
                                        f"slow-{before}.zip").stdout
                        jid = json.loads(job)["id"]
                        wait_until(lambda: [j["stage"] for j in jobs(fx)] == ["preparing"], "the job to run the hook")
                        for doc in both(fx, USER_ALLOWED, ["--json", "-i", "inst1"], "jobs"):
                                expect_eq([j["id"] for j in doc], [jid], "jobs --json ids")
                                shape(doc[0], JOB_KEYS, "jobs --json entry")
                        status = json_of(fx.ctl_ok(USER_ALLOWED, "status", "--json"), "status --json")
                        expect_eq([j["id"] for j in status["jobs"]], [jid], "status --json jobs")
                        shape(status["jobs"][0], STATUS_JOB_KEYS, "status --json job")
                        argv = ["--json", "cancel", str(jid)] if before else ["cancel", str(jid), "--json"]
                        doc = json_of(fx.ctl_ok("root", *argv), "cancel --json")
                        shape(doc, CANCEL_KEYS, "cancel --json")
                        expect_eq(doc["id"], jid, "cancel --json id")
                        os.unlink(flag)
                        wait_until(lambda: jobs(fx) == [], "the canceled job to end")

                # restore NAME and FILE (root: restore needs an administrator)
                exported = os.path.join(out, "e2.zip")
                for doc, what in zip(both(fx, "root", ["--json", "--yes", "--skip-plugins", "--no-restart"],
                                          "restore", args=["b2.zip"],
                                          after=["--no-restart", "-y", "--json", "--keep-previous", "--skip-plugins",
                                                 "--ignore-plugin-errors"]), ("b2.zip", "b2.zip")):
                        shape(doc, RESTORE_KEYS, "restore --json")
                        expect_eq((doc["backup"], doc["basedir"]), (what, fx.basedir()), "restore --json")
                        old = fx.basedir() + ".opbackup-old"
                        if os.path.exists(old):
                                subprocess.run(["rm", "-rf", old], check=True)
                doc = json_of(fx.ctl_ok("root", "restore", exported, "--json", "--yes", "--skip-plugins",
                                        "--no-restart"), "restore FILE --json")
                shape(doc, RESTORE_KEYS, "restore FILE --json")

                # scheduled-backup (Keep=1: of the two it makes, one stays; the backups made above by hand all stay)
                time.sleep(1.1)
                by_hand = {b["name"] for b in json.loads(fx.ctl_ok("root", "list", "--json").stdout)}
                for doc in both(fx, "root", ["--json", "--no-ask-password"], "scheduled-backup"):
                        shape(doc, SCHEDULED_KEYS, "scheduled-backup --json")
                        expect_eq(len(doc["instances"]), 1, "scheduled-backup --json instances")
                        run = doc["instances"][0]
                        shape(run, SCHEDULED_INSTANCE_KEYS, "scheduled-backup --json instance")
                        expect_eq((run["instance"], run["result"], run["exit_status"]), ("inst1", "done", 0),
                                  "scheduled-backup --json outcome")
                        shape(run["backup"], BACKUP_KEYS, "scheduled-backup --json backup")
                        time.sleep(1.1)
                after = {b["name"] for b in json.loads(fx.ctl_ok("root", "list", "--json").stdout)}
                scheduled = [n for n in after if re.search(r"-backup-\d{8}-\d{6}-scheduled\.zip$", n)]
                expect_eq(len(scheduled), 1, f"scheduled backups after scheduled-backup with Keep=1: {sorted(after)}")
                expect_eq(after - set(scheduled), by_hand, "backups made by hand after scheduled-backup")

                # monitor, briefly, each way
                for argv in (["--json", "monitor"], ["monitor", "--json"]):
                        mon = fx.ctl_background(USER_ALLOWED, *argv)
                        time.sleep(1.0)
                        expect(not mon.done(), f"opbackupctl {' '.join(argv)} exited at once")
                        name = fx.ctl_ok("root", "backup", "--json").stdout
                        name = json.loads(name)["name"]
                        fx.ctl_ok("root", "delete", name)
                        time.sleep(0.5)
                        mon.proc.send_signal(signal.SIGINT)
                        r = mon.wait(timeout=10)
                        expect_eq(r.returncode, 0, f"monitor on SIGINT ({r.stderr.strip()})")
                        seen = [json.loads(line) for line in r.stdout.splitlines()]
                        for e in seen:
                                expect(e.get("signal") in SIGNAL_KEYS, f"monitor --json: unknown signal {e}")
                                shape(e, SIGNAL_KEYS[e["signal"]], f"monitor --json {e['signal']}")
                        kinds = {e["signal"] for e in seen}
                        expect({"BackupCreated", "BackupDeleted", "JobNew", "JobRemoved"} <= kinds,
                               f"monitor --json showed only {sorted(kinds)}")
                        time.sleep(1.1)


def test_two_instances_without_i():
        with Fixture(instances={"alpha": None, "beta": {"seed": 2}}) as fx:
                for argv in (["list"], ["list", "--json"], ["--json", "backup"], ["inspect", "x.zip"],
                             ["unknown-plugins"], ["prune", "--keep", "1"]):
                        r = fx.ctl(USER_ALLOWED, *argv)
                        expect_plain_error(r, EXIT_USAGE, f"opbackupctl {' '.join(argv)} with two instances")
                        expect("alpha" in r.stderr and "beta" in r.stderr,
                               f"opbackupctl {' '.join(argv)} does not name both instances: {r.stderr.strip()}")
                        expect("-i" in first_line(r), f"the error does not mention -i: {r.stderr.strip()}")
                        expect_eq(r.stdout, "", f"opbackupctl {' '.join(argv)}: stdout")
                # With -i, before or after: fine. status shows both.
                fx.ctl_ok(USER_ALLOWED, "-i", "beta", "list")
                fx.ctl_ok(USER_ALLOWED, "list", "--instance", "alpha")
                doc = json_of(fx.ctl_ok(USER_ALLOWED, "status", "--json"), "status --json")
                expect_eq(sorted(i["name"] for i in doc["instances"]), ["alpha", "beta"], "status instances")
                r = fx.ctl(USER_ALLOWED, "list", "-i", "gamma")
                line = expect_plain_error(r, EXIT_NOT_FOUND, "list -i gamma")
                expect("gamma" in line, f"the error does not name the instance: {line!r}")


def test_usage_errors():
        with Fixture() as fx:
                cases = [
                        (["list", "--bogus"], "list"),
                        (["--bogus", "list"], "list"),
                        (["status", "-x"], "status"),
                        (["list", "--exclude", "uploads"], "list"),
                        (["--keep", "3", "backup"], "backup"),
                        (["status", "--clear"], "status"),
                        (["backup", "--name", "no-zip-suffix"], "backup"),
                        (["prune"], "prune"),
                        (["delete"], "delete"),
                        (["restore", "a.zip", "b.zip"], "restore"),
                        (["cancel", "abc"], "cancel"),
                        (["--bogus"], None),
                        (["bogus"], None),
                ]
                for argv, verb in cases:
                        r = fx.ctl(USER_ALLOWED, *argv)
                        want = f"See 'opbackupctl {verb} --help'." if verb else "See 'opbackupctl --help'."
                        expect_eq(r.returncode, EXIT_USAGE, f"opbackupctl {' '.join(argv)}: exit status ({r.stderr.strip()})")
                        expect_eq(r.stderr.strip().splitlines()[-1], want, f"opbackupctl {' '.join(argv)}: last line")
                        expect_eq(r.stdout, "", f"opbackupctl {' '.join(argv)}: stdout")
                r = fx.ctl(USER_ALLOWED, "backup", "--name", "no-zip-suffix")
                expect(".zip" in r.stderr, f"the --name error does not say NAME.zip: {r.stderr.strip()}")
                # A usage error is said before anything is started.
                expect_eq(json.loads(fx.ctl_ok(USER_ALLOWED, "list", "--json").stdout), [], "backups after usage errors")
                # The help says what the service checks.
                r = fx.ctl_ok(USER_ALLOWED, "backup", "--help")
                expect("NAME.zip" in r.stdout, f"backup --help does not say NAME.zip:\n{r.stdout}")


def test_error_words_and_advice():
        with main_fixture() as fx:
                fx.ctl_ok("root", "backup", "--name", "b.zip")
                passed = os.path.join(fx.dir, "passed.zip")
                write_backup_zip(passed)
                # A user without any grant: every command refused in its own words, advised to join the group.
                denied = [
                        (["status"], "Cannot show the status"), (["list"], "Cannot list backups"),
                        (["backup"], "Cannot back up"), (["delete", "b.zip"], "Cannot delete"),
                        (["export", "b.zip", "-o", "/tmp/never.zip"], "Cannot export b.zip"),
                        (["import", passed], "Cannot import"), (["inspect", "b.zip"], "Cannot inspect b.zip"),
                        (["prune", "--keep", "1"], "Cannot prune"), (["unknown-plugins"], "Cannot list the plugins"),
                        (["unknown-plugins", "--clear"], "Cannot clear the list of plugins"),
                        (["jobs"], "Cannot list jobs"),
                        (["monitor"], "Cannot monitor"), (["restore", "--yes", "b.zip"], "Cannot restore b.zip"),
                        (["scheduled-backup"], "Cannot run the scheduled backups"),
                ]
                for argv, start in denied:
                        r = fx.ctl(USER_DENIED, "--no-ask-password", *argv)
                        line = expect_plain_error(r, EXIT_NOT_AUTHORIZED, f"{' '.join(argv)} as {USER_DENIED}", start)
                        expect(line.endswith("not authorized."), f"{' '.join(argv)}: {line!r}")
                        advice = r.stderr.strip().splitlines()[1:]
                        expect(advice, f"{' '.join(argv)} as {USER_DENIED}: no advice after {line!r}")
                        if argv[0] == "restore":
                                # Refused already at finding the instance: still, the group would not do.
                                expect("administrator" in advice[0] and "group" not in advice[0] and
                                       "org.opbackup.backup1.restore" in advice[0],
                                       f"restore as {USER_DENIED}: advice {advice}")
                        else:
                                expect("group 'opbackup'" in advice[0] and "org.opbackup.backup1." in advice[0],
                                       f"{' '.join(argv)} as {USER_DENIED}: advice {advice}")

                # A member of group opbackup: restore needs an administrator, not the group.
                r = fx.ctl(USER_ALLOWED, "--no-ask-password", "restore", "--yes", "b.zip")
                line = expect_plain_error(r, EXIT_NOT_AUTHORIZED, f"restore as {USER_ALLOWED}", "Cannot restore b.zip")
                expect("add you to the group" not in r.stderr, f"a group member is told to join the group: {r.stderr}")
                expect("administrator" in r.stderr and "org.opbackup.backup1.restore" in r.stderr,
                       f"the restore refusal does not say it needs an administrator or a rule: {r.stderr}")

                # A member of the group whom a rule denies create: told so, not to join.
                fx.add_rule("10-deny-create.rules", """\
polkit.addRule(function(action, subject) {
        if (action.id == "org.opbackup.backup1.create" && subject.user == "opbackup-allowed")
                return polkit.Result.NO;
});
""")
                r = fx.ctl(USER_ALLOWED, "backup")
                expect_plain_error(r, EXIT_NOT_AUTHORIZED, f"backup as {USER_ALLOWED} denied by a rule", "Cannot back up")
                expect("You are in the group 'opbackup'" in r.stderr and "org.opbackup.backup1.create" in r.stderr,
                       f"the advice to a group member denied by a rule: {r.stderr}")

                # polkit wants an administrator's password: with --no-ask-password the client says so; without
                # it, the call is repeated allowing interaction, and with no terminal for an agent polkit still
                # wants one.
                fx.add_rule("10-auth-admin.rules", """\
polkit.addRule(function(action, subject) {
        if (action.id == "org.opbackup.backup1.access" && subject.user == "opbackup-denied")
                return polkit.Result.AUTH_ADMIN;
});
""")
                r = fx.ctl(USER_DENIED, "--no-ask-password", "list")
                line = expect_plain_error(r, EXIT_NOT_AUTHORIZED, "list needing a password, --no-ask-password",
                                          "Cannot list backups")
                expect(line.endswith("authentication is required."), f"list needing a password: {line!r}")
                expect("without --no-ask-password" in r.stderr, f"list needing a password: advice {r.stderr}")
                r = fx.ctl(USER_DENIED, "list")
                line = expect_plain_error(r, EXIT_NOT_AUTHORIZED, "list needing a password, no terminal",
                                          "Cannot list backups")
                expect(line.endswith("authentication is required.") and "Run it on a terminal to authenticate." in r.stderr,
                       f"list needing a password, asked again, no terminal: {r.stderr}")

                # Not there: exit 4, in the command's words.
                for argv in (["delete", "nope.zip"], ["export", "nope.zip", "-o", "/tmp/never.zip"],
                             ["inspect", "nope.zip"], ["restore", "--yes", "nope.zip"], ["cancel", "4242"]):
                        r = fx.ctl("root", *argv)
                        line = expect_plain_error(r, EXIT_NOT_FOUND, " ".join(argv))
                        what = "4242" if argv[0] == "cancel" else "nope.zip"
                        expect(what in line, f"{' '.join(argv)}: the error does not name {what}: {line!r}")

                # What the service refused as arguments: exit 2, its words after the command's.
                r = fx.ctl("root", "backup", "--exclude", "nonsense")
                line = expect_plain_error(r, EXIT_USAGE, "backup --exclude nonsense", "Cannot back up")
                expect("nonsense" in line, f"the error does not name the folder: {line!r}")


def test_without_daemon():
        with Fixture(daemon=False) as fx:
                backup = os.path.join(fx.dir, "local.zip")
                write_backup_zip(backup)
                # inspect FILE reads the file itself: no service, and no bus needed either.
                for env_bus in (fx.address, "unix:path=/nonexistent/socket"):
                        for argv in (["inspect", backup, "--json"], ["--json", "inspect", backup]):
                                r = subprocess.run(fixture.as_user(USER_ALLOWED, [fixture.OPBACKUPCTL] + argv),
                                                   env=fixture.user_env(USER_ALLOWED, env_bus), stdout=subprocess.PIPE,
                                                   stderr=subprocess.PIPE, text=True, timeout=60)
                                expect_eq(r.returncode, 0, f"inspect FILE without the service ({env_bus}): {r.stderr}")
                                doc = json_of(r, "inspect FILE --json")
                                shape(doc, INSPECT_KEYS | {"file"}, "inspect FILE --json")
                                expect_eq((doc["valid"], doc["octoprint_version"]), (True, "1.9.0"), "inspect FILE")
                        r = subprocess.run(fixture.as_user(USER_ALLOWED, [fixture.OPBACKUPCTL, "inspect", backup]),
                                           env=fixture.user_env(USER_ALLOWED, env_bus), stdout=subprocess.PIPE,
                                           stderr=subprocess.PIPE, text=True, timeout=60)
                        expect(r.returncode == 0 and re.search(r"^Valid:\s+yes$", r.stdout, re.M),
                               f"inspect FILE text without the service: {r.stdout} {r.stderr}")
                # Every command's --help, without the service.
                for verb in ("status", "list", "backup", "restore", "delete", "export", "import", "inspect", "prune",
                             "unknown-plugins", "jobs", "cancel", "monitor", "scheduled-backup"):
                        r = fx.ctl_ok(USER_ALLOWED, verb, "--help")
                        expect(r.stdout.startswith(f"opbackupctl [OPTIONS...] {verb}"), f"{verb} --help:\n{r.stdout}")
                fx.ctl_ok(USER_ALLOWED, "--help")
                # What needs the service says it is not running, in the command's words.
                r = fx.ctl(USER_ALLOWED, "list")
                line = expect_plain_error(r, EXIT_FAIL, "list without the daemon", "Cannot list backups")
                expect("not running" in line, f"list without the daemon: {line!r}")
                r = fx.ctl(USER_ALLOWED, "inspect", "some-backup.zip")
                expect_plain_error(r, EXIT_FAIL, "inspect NAME without the daemon", "Cannot inspect some-backup.zip")


def test_pager():
        with Fixture() as fx:
                fx.ctl_ok("root", "backup", "--name", "paged.zip")
                pager = {"PAGER": "echo \"LESS=$LESS\"; sed 's/^/PAGED: /'"}
                code, text = on_terminal(fx, USER_ALLOWED, ["list"], pager)
                expect_eq(code, 0, f"list on a terminal: {text}")
                expect("LESS=FRXMK" in text, f"the pager did not get LESS=FRXMK:\n{text}")
                expect(re.search(r"^PAGED: NAME\s+DATE", text, re.M) and re.search(r"^PAGED: paged\.zip ", text, re.M),
                       f"list on a terminal did not go through $PAGER:\n{text}")
                # $SYSTEMD_PAGER first; --no-pager, and an empty pager, mean none.
                code, text = on_terminal(fx, USER_ALLOWED, ["list"], dict(pager, SYSTEMD_PAGER="sed 's/^/SD: /'"))
                expect(re.search(r"^SD: paged\.zip ", text, re.M) and "PAGED:" not in text,
                       f"$SYSTEMD_PAGER was not preferred:\n{text}")
                for argv, env in ((["list", "--no-pager"], pager), (["--no-pager", "status"], pager),
                                  (["list"], dict(pager, SYSTEMD_PAGER=""))):
                        code, text = on_terminal(fx, USER_ALLOWED, argv, env)
                        expect(code == 0 and ("paged.zip" in text or "inst1" in text), f"{argv}: {text}")
                        expect("PAGED:" not in text, f"opbackupctl {' '.join(argv)} used the pager:\n{text}")
                # Into a pipe: never.
                r = subprocess.run(fixture.as_user(USER_ALLOWED, [fixture.OPBACKUPCTL, "list"]),
                                   env=dict(fixture.user_env(USER_ALLOWED, fx.address), **pager), stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, timeout=60)
                expect(r.returncode == 0 and "PAGED:" not in r.stdout and "paged.zip" in r.stdout,
                       f"list into a pipe: {r.stdout} {r.stderr}")
                # --no-legend: rows only.
                r = fx.ctl_ok(USER_ALLOWED, "list", "--no-legend")
                expect(r.stdout.startswith("paged.zip "), f"list --no-legend:\n{r.stdout}")


fixture.main(globals())
