# Helpers shared by the test-backup-*.py integration tests: making a backup through the daemon and waiting
# for its end (seen by a subscribed signal listener), reading the result back with CPython's zipfile and
# unzip, finding the daemon's worker processes, and the expected archive contents of a sample instance.

import hashlib
import json
import os
import pwd
import select
import signal
import subprocess
import tempfile
import time

import fixture
from fixture import IFACE_INSTANCE, IFACE_MANAGER, MANAGER_PATH, PYTHON, expect

HERE = os.path.dirname(os.path.abspath(__file__))
BUSLISTEN = os.path.join(HERE, "buslisten.py")
SAMPLE_VERSION = "1.11.8"       # the OctoPrint version of tests/gen-instance.py's sample venv
ERROR_INVALID_ARGS = "org.freedesktop.DBus.Error.InvalidArgs"
ERROR_NO_SUCH_BACKUP = "org.opbackup.backup1.Error.NoSuchBackup"
ERROR_INVALID_BACKUP = "org.opbackup.backup1.Error.InvalidBackup"
WORKER_BACKUP = "opbackup-backup"       # the backup worker's process name (prctl PR_SET_NAME)

# OctoPrint's folder identifiers (opbackupd(8), ARCHIVE FORMAT).
FOLDER_IDS = ["uploads", "timelapse", "timelapse_tmp", "logs", "virtualSd", "watched", "plugins",
              "slicingProfiles", "printerProfiles", "scripts", "translations", "generated", "data",
              "uploadtemp"]


def wait_until(cond, what, timeout=30, interval=0.05):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
                v = cond()
                if v:
                        return v
                time.sleep(interval)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def uid_of(user):
        return pwd.getpwnam(user).pw_uid


def chown_user(path, user=fixture.USER_PRINTER):
        pw = pwd.getpwnam(user)
        os.chown(path, pw.pw_uid, pw.pw_gid, follow_symlinks=False)


def write_as_printer(path, data, mode=0o644):
        """A file in an instance, as its user would have made it (parents must exist)."""
        with open(path, "wb" if isinstance(data, bytes) else "w") as f:
                f.write(data)
        os.chmod(path, mode)
        chown_user(path)


def sha256_file(path):
        h = hashlib.sha256()
        with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                        h.update(chunk)
        return h.hexdigest()


# ---------------------------------------------------------------------------------------------------------
# Signals

class Listener:
        """buslisten.py running as USER in the background: the signals of opbackupd it receives."""

        def __init__(self, fx, user="root", subscribe=True, seconds=600, create_backup=None, watch=False):
                """create_backup=(instance path, name): the listener itself starts that backup, after
                subscribing (or not); its answer is in ready["created"]. watch: Watch() instead of
                Subscribe() (the answer is in ready["subscribe"] too)."""
                self.user = user
                self._err = tempfile.TemporaryFile()
                argv = [PYTHON, BUSLISTEN, str(seconds)]
                if watch:
                        argv.append("--watch")
                elif subscribe:
                        argv.append("--subscribe")
                if create_backup:
                        argv += ["--create-backup", *create_backup]
                argv = fixture.as_user(user, argv)
                self.proc = subprocess.Popen(argv, env=fixture.user_env(user, fx.address), stdin=subprocess.DEVNULL,
                                             stdout=subprocess.PIPE, stderr=self._err)
                self._buf = b""
                self.events = []
                self.ready = None
                deadline = time.monotonic() + 30
                while self.ready is None:
                        if time.monotonic() > deadline or not self._pump(0.2) and self.proc.poll() is not None:
                                raise RuntimeError(f"buslisten.py as {user} did not get ready: {self.stderr()}")
                        for e in list(self.events):
                                if "ready" in e:
                                        self.ready = e
                                        self.events.remove(e)

        def stderr(self):
                self._err.seek(0)
                return self._err.read().decode(errors="replace")

        def _pump(self, timeout):
                """Reads what is there; False at EOF."""
                r, _, _ = select.select([self.proc.stdout], [], [], timeout)
                if not r:
                        return True
                chunk = os.read(self.proc.stdout.fileno(), 1 << 20)
                if not chunk:
                        return False
                self._buf += chunk
                *lines, self._buf = self._buf.split(b"\n")
                for line in lines:
                        self.events.append(json.loads(line))
                return True

        def signals(self, member=None):
                return [e for e in self.events if "signal" in e and (member is None or e["signal"] == member)]

        def wait_for(self, pred, what, timeout=300):
                deadline = time.monotonic() + timeout
                while True:
                        for e in self.events:
                                if "signal" in e and pred(e):
                                        return e
                        if time.monotonic() > deadline:
                                raise AssertionError(f"timed out after {timeout} s waiting for {what}; the "
                                                     f"listener as {self.user} got: {self.events}")
                        if not self._pump(0.2):
                                raise AssertionError(f"the listener as {self.user} ended before {what}: "
                                                     f"{self.stderr()}")

        def stop(self):
                """Ends the listener and collects everything it received."""
                if self.proc.poll() is None:
                        self.proc.send_signal(signal.SIGTERM)
                while self._pump(1.0):
                        pass
                self.proc.wait(timeout=10)
                self._err.close()
                return self.events

        def __enter__(self):
                return self

        def __exit__(self, *exc):
                if self.proc.poll() is None:
                        self.proc.kill()
                        self.proc.wait()
                return False


def job_removed(listener, job_id, timeout=600):
        return listener.wait_for(lambda e: e["signal"] == "JobRemoved" and e["args"][0] == job_id,
                                 f"JobRemoved of job {job_id}", timeout=timeout)


def job_log(listener, job_path):
        """[(level, line)] of a job's Log signals."""
        return [tuple(e["args"]) for e in listener.signals("Log") if e["path"] == job_path]


# ---------------------------------------------------------------------------------------------------------
# Calls

def create_backup(fx, excludes=(), name=None, user="root", instance="inst1"):
        """CreateBackup; returns (job id, job path)."""
        options = {"name": name} if name else {}
        jid, jpath = fx.call(user, fx.instance_path(instance), IFACE_INSTANCE, "CreateBackup", "asa{sv}",
                             list(excludes), options)
        return jid, jpath


class BackupResult:
        def __init__(self, removed, log):
                _, self.job_path, self.result, self.error, self.details = removed["args"]
                self.log = log

        def log_text(self):
                return "\n".join(f"{level}: {line}" for level, line in self.log)


def run_backup(fx, excludes=(), name=None, user="root", instance="inst1", timeout=600):
        """A backup through the daemon, waited for; returns its BackupResult (result, error, details, log)."""
        with Listener(fx, "root") as lis:
                jid, jpath = create_backup(fx, excludes, name, user, instance)
                removed = job_removed(lis, jid, timeout)
                return BackupResult(removed, job_log(lis, jpath))


def run_backup_ok(fx, excludes=(), name=None, user="root", instance="inst1", timeout=600):
        res = run_backup(fx, excludes, name, user, instance, timeout)
        expect(res.result == "done", f"the backup ended {res.result}: {res.error}\nits log:\n{res.log_text()}")
        return res


def list_backups(fx, user="root", instance="inst1"):
        """ListBackups as dicts."""
        out = fx.call(user, fx.instance_path(instance), IFACE_INSTANCE, "ListBackups", "")[0]
        return [dict(zip(("name", "size", "uncompressed", "created_usec", "version", "excludes"), b)) for b in out]


def list_jobs(fx, user="root"):
        return fx.call(user, MANAGER_PATH, IFACE_MANAGER, "ListJobs", "")[0]


def folder_listing(path):
        """Every name in a folder, hidden ones included, sorted."""
        return sorted(os.listdir(path))


# ---------------------------------------------------------------------------------------------------------
# Reading a backup back

# Run by /usr/bin/python3 -W error: any warning zipfile gives is an error, as it would be a problem for
# OctoPrint, which reads backups with the same module.
_ZIP_READER = r"""
import hashlib, json, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
        out = {"testzip": z.testzip(), "comment": z.comment.hex(), "entries": []}
        for i in z.infolist():
                data = z.read(i)
                e = {"name": i.filename, "size": i.file_size, "sha256": hashlib.sha256(data).hexdigest(),
                     "compress_type": i.compress_type, "is_dir": i.is_dir(), "flag_bits": i.flag_bits,
                     "create_system": i.create_system, "mode": (i.external_attr >> 16) & 0o7777,
                     "file_type": (i.external_attr >> 16) & 0o170000, "date_time": list(i.date_time)}
                if i.filename in ("metadata.json", "plugin_list.json"):
                        e["data"] = data.hex()
                out["entries"].append(e)
print(json.dumps(out))
"""


class Archive:
        def __init__(self, info):
                self.testzip = info["testzip"]
                self.comment = bytes.fromhex(info["comment"])
                self.entry_list = info["entries"]
                self.entries = {e["name"]: e for e in info["entries"]}

        def names(self):
                return [e["name"] for e in self.entry_list]

        def data(self, name):
                return bytes.fromhex(self.entries[name]["data"])


def read_zip(path):
        """Reads a zip with CPython's zipfile with warnings as errors; fails the test on any complaint."""
        r = subprocess.run([PYTHON, "-W", "error", "-c", _ZIP_READER, path], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
        expect(r.returncode == 0 and not r.stderr.strip(),
               f"python3 -W error zipfile cannot read {path} cleanly (exit {r.returncode}):\n{r.stderr}")
        return Archive(json.loads(r.stdout))


def unzip_test(path):
        r = subprocess.run(["unzip", "-t", "-q", path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        expect(r.returncode == 0, f"unzip -t {path} failed (exit {r.returncode}):\n{r.stdout}")


def metadata_json(excludes):
        """metadata.json exactly as OctoPrint writes it (json.dumps defaults)."""
        return json.dumps({"version": SAMPLE_VERSION, "excludes": list(excludes)}).encode()


def source_path(exp, name):
        """Where the file stored as archive entry NAME comes from: the folder id whose default location is the
        longest prefix of the name decides (timelapse/tmp/x is timelapse_tmp's), else basedir."""
        rel = name[len("basedir/"):]
        best = None
        for fid in FOLDER_IDS:
                d = fid.replace("_", "/")
                if (rel == d or rel.startswith(d + "/")) and (best is None or len(d) > len(best[1])):
                        best = (fid, d)
        if best is None:
                return os.path.join(exp["basedir"], rel)
        return os.path.join(exp["folders"][best[0]], rel[len(best[1]) + 1:])


def expected_entries(exp, excludes=()):
        """The entry names of a backup of the untouched sample with EXCLUDES (folder ids)."""
        meta = list(excludes) + (["timelapse_tmp"] if "timelapse" in excludes else [])
        prefixes = tuple("basedir/" + fid.replace("_", "/") + "/" for fid in meta)
        return {n for n in exp["entries"] if not n.startswith(prefixes)}


def check_contents(exp, archive, names=None, extra_sources=None):
        """Every file entry holds exactly its source's bytes (and size and mode)."""
        extra_sources = extra_sources or {}
        for name in names or archive.names():
                if name in ("metadata.json", "plugin_list.json"):
                        continue
                e = archive.entries[name]
                src = extra_sources.get(name) or source_path(exp, name)
                expect(os.path.isfile(src), f"entry {name}: no source file {src}")
                expect(e["sha256"] == sha256_file(src), f"entry {name} differs from {src}")
                st = os.stat(src)
                expect(e["size"] == st.st_size, f"entry {name}: size {e['size']}, source has {st.st_size}")
                want = exp["entries"].get(name, {}).get("mode") or "%04o" % (st.st_mode & 0o7777)
                expect("%04o" % e["mode"] == want, f"entry {name}: mode {e['mode']:04o} in the zip, {want} on disk")


# ---------------------------------------------------------------------------------------------------------
# Processes

def children(pid):
        """[(pid, comm)] of the processes whose parent is PID: /proc/PID/task/*/children (one read a thread,
        not a scan of /proc: the benchmark's memory sampler calls this every few milliseconds)."""
        out = []
        try:
                tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
                return out
        for tid in tids:
                try:
                        with open(f"/proc/{pid}/task/{tid}/children") as f:
                                kids = f.read().split()
                except OSError:
                        continue
                for kid in kids:
                        try:
                                with open(f"/proc/{kid}/comm") as f:
                                        out.append((int(kid), f.read().rstrip("\n")))
                        except OSError:
                                continue
        return out


def descendants(pid):
        """The pids of every process below PID (its children, theirs, ...), found as children() finds them."""
        out, todo = [], [pid]
        while todo:
                kids = [kid for kid, _ in children(todo.pop())]
                out += kids
                todo += kids
        return out


def worker_pids(fx, comm=WORKER_BACKUP):
        return [p for p, c in children(fx.daemon_proc.pid) if c == comm]


def status_field(pid, field):
        """A field of /proc/PID/status in kB ("VmHWM", "VmRSS"), or None if the process is gone."""
        try:
                with open(f"/proc/{pid}/status") as f:
                        for line in f:
                                if line.startswith(field + ":"):
                                        return int(line.split()[1])
        except OSError:
                return None
        return None


def pid_alive(pid):
        try:
                with open(f"/proc/{pid}/stat") as f:
                        return f.read().split(")")[-1].split()[0] != "Z"
        except OSError:
                return False
