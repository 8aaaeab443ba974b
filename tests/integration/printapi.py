# Helpers for tests of print-aware backups: a stand-in for OctoPrint's REST API (octoprint-api.py) and the
# fetch helper (opbackup-fetch behind systemd-socket-activate), both children of the test, removed with
# their scratch folder. Used by test-print-aware.py and test-scheduled.py.

import json
import os
import pwd
import shutil
import subprocess
import tempfile
import time

import fixture
from fixture import Skip, expect, USER_DENIED, PYTHON, SOURCE_ROOT

HERE = os.path.dirname(os.path.abspath(__file__))
API_SERVER = os.path.join(HERE, "octoprint-api.py")
FETCH = os.environ.get("OPBACKUP_FETCH") or os.path.join(SOURCE_ROOT, "build", "service", "opbackup-fetch")
SOCKET_ACTIVATE = shutil.which("systemd-socket-activate") or "/usr/bin/systemd-socket-activate"
KEY = "3F2504E04F8911D39A0C0305E82C3301"
HELPER_USER = USER_DENIED       # stands in for the dynamic user of opbackup-fetch@.service


def uid_of(user):
        return pwd.getpwnam(user).pw_uid


def wait_until(cond, what, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
                if cond():
                        return
                time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}")


class Scratch:
        """A folder for the server's files and the helper's socket, removed at the end."""

        def __init__(self):
                self.dir = tempfile.mkdtemp(prefix="opbackup-print-")
                os.chmod(self.dir, 0o755)
                self.procs = []

        def spawn(self, argv, log):
                p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=open(log, "ab"),
                                     stderr=subprocess.STDOUT, preexec_fn=fixture._die_with_parent)
                self.procs.append(p)
                return p

        def close(self):
                for p in reversed(self.procs):
                        fixture.stop_process(p)
                shutil.rmtree(self.dir, ignore_errors=True)

        def __enter__(self):
                return self

        def __exit__(self, *exc):
                self.close()
                return False


class ApiServer:
        def __init__(self, scratch, states="", status=0, align=False):
                self.scratch = scratch
                self.states = states
                self.status = status
                self.align = align
                self.log = os.path.join(scratch.dir, "api-requests.jsonl")
                self.port = None

        def start(self, watch):
                port_file = os.path.join(self.scratch.dir, "api-port")
                argv = [PYTHON, API_SERVER, "--port-file", port_file, "--log", self.log, "--key", KEY,
                        "--watch", watch]
                if self.states:
                        argv += ["--states", self.states]
                if self.status:
                        argv += ["--status", str(self.status)]
                if self.align:
                        argv.append("--align")
                proc = self.scratch.spawn(argv, os.path.join(self.scratch.dir, "api-server.out"))
                wait_until(lambda: os.path.exists(port_file) or proc.poll() is not None, "the API server")
                expect(proc.poll() is None, "the API server exited at once")
                with open(port_file) as f:
                        self.port = int(f.read())

        @property
        def url(self):
                return f"http://127.0.0.1:{self.port}"

        def records(self):
                if not os.path.exists(self.log):
                        return []
                with open(self.log) as f:
                        return [json.loads(line) for line in f if line.strip()]


def start_helper(scratch):
        """opbackup-fetch behind a socket, one process per connection, as an unprivileged user."""
        if not os.access(SOCKET_ACTIVATE, os.X_OK):
                raise Skip("systemd-socket-activate is not installed (package systemd)")
        if not os.access(FETCH, os.X_OK):
                raise RuntimeError(f"{FETCH} is not there: build first or set OPBACKUP_FETCH")
        sockdir = os.path.join(scratch.dir, "run")
        os.mkdir(sockdir)
        pw = pwd.getpwnam(HELPER_USER)
        os.chown(sockdir, pw.pw_uid, pw.pw_gid)
        sock = os.path.join(sockdir, "fetch.socket")
        proc = scratch.spawn(fixture.as_user(HELPER_USER, [SOCKET_ACTIVATE, "--accept", "-l", sock, FETCH]),
                             os.path.join(scratch.dir, "helper.out"))
        wait_until(lambda: os.path.exists(sock) or proc.poll() is not None, "the fetch helper's socket")
        expect(proc.poll() is None, "systemd-socket-activate exited at once")
        return sock


def write_key(path, owner="root", mode=0o600, key=KEY):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
                f.write(key + "\n")
        pw = pwd.getpwnam(owner)
        os.chown(path, pw.pw_uid, pw.pw_gid)
        os.chmod(path, mode)
