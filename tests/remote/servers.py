# SPDX-License-Identifier: GPL-2.0-or-later
"""Real servers for the remote tests, started on 127.0.0.1 and stopped by the test (all children of it):
apache2 mod_dav and rclone serve webdav (WebDAV), @20minutes/s3rver (S3 with SigV4 checked), openssh-server
(SFTP, an ed25519 key, a real account). And remotes.d files and credentials for them, and remote-tool."""

import hashlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOOL = os.environ.get("REMOTE_TOOL")
BUILD = os.environ.get("OPBACKUP_BUILD_ROOT", "/tmp")
SFTP_USER = "opbackup-sftp"
MODULES = "/usr/lib/apache2/modules"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port}")


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                return h.hexdigest()
            h.update(b)


def random_file(path, size):
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 1 << 20)
            f.write(os.urandom(n))
            left -= n


class Servers:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="opbackup-remote-")
        os.chmod(self.dir, 0o755)
        self.conf = os.path.join(self.dir, "conf")
        os.makedirs(os.path.join(self.conf, "remotes.d"))
        self.procs = []
        self.logs = []

    def close(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    kill(p)
            # Whatever a server left behind in its session (apache2's workers of a killed parent).
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def spawn(self, argv, name, **kw):
        log = open(os.path.join(self.dir, name + ".log"), "wb")
        self.logs.append(log.name)
        # A session of its own: killing the server kills its worker processes too (apache2's).
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **kw)
        self.procs.append(p)
        return p

    # ---- configuration ----

    def remote(self, name, text, credentials=None, mode=0o600):
        with open(os.path.join(self.conf, "remotes.d", name + ".conf"), "w") as f:
            f.write("[Remote]\n" + text)
        if credentials is not None:
            path = os.path.join(self.dir, "cred-" + name)
            with open(path, "w") as f:
                f.write(credentials)
            os.chmod(path, mode)
            with open(os.path.join(self.conf, "remotes.d", name + ".conf"), "a") as f:
                f.write(f"CredentialsFile={path}\n")
            return path
        return None

    def tool(self, remote, op, instance, name=None, file=None, max_size=None):
        argv = [TOOL, self.conf, remote, op, instance] + ([name] if name else []) + ([file] if file else [])
        env = dict(os.environ, **({"REMOTE_TOOL_MAX_SIZE": str(max_size)} if max_size else {}))
        p = subprocess.run(argv, capture_output=True, text=True, timeout=600, env=env)
        self.tool_output = getattr(self, "tool_output", "") + p.stdout + p.stderr
        try:
            return json.loads(p.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            raise AssertionError(f"remote-tool printed no result: {p.stdout!r} {p.stderr!r}")

    def tool_background(self, remote, op, instance, name, file):
        return subprocess.Popen([TOOL, self.conf, remote, op, instance, name, file], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    # ---- WebDAV ----

    def apache(self, user="u", password="p", data=None, name="apache"):
        """data: the folder it serves (made when missing), e.g. a small file system to fill."""
        base = os.path.join(self.dir, name)
        data, lock = data or os.path.join(base, "data"), os.path.join(base, "lock")
        os.makedirs(data, exist_ok=True)
        os.makedirs(lock)
        shutil.chown(data, "www-data")
        shutil.chown(lock, "www-data")
        subprocess.run(["htpasswd", "-bc", os.path.join(base, "htpasswd"), user, password], check=True,
                       capture_output=True)
        port = free_port()
        mods = ["mpm_event", "authz_core", "authz_user", "authn_core", "authn_file", "auth_basic", "dav", "dav_fs"]
        with open(os.path.join(base, "httpd.conf"), "w") as f:
            f.write(f"ServerRoot {base}\nPidFile {base}/httpd.pid\nListen 127.0.0.1:{port}\nServerName localhost\n"
                    "User www-data\nGroup www-data\n"
                    + "".join(f"LoadModule {m}_module {MODULES}/mod_{m}.so\n" for m in mods) +
                    f"ErrorLog {base}/error.log\nLimitRequestBody 0\nDAVLockDB {lock}/davlock\nDocumentRoot {data}\n"
                    f"<Directory {data}>\n  Dav On\n  AuthType Basic\n  AuthName dav\n"
                    f"  AuthUserFile {base}/htpasswd\n  Require valid-user\n</Directory>\n")
        p = self.spawn(["apache2", "-f", os.path.join(base, "httpd.conf"), "-DFOREGROUND"], name)
        wait_port(port, p, "apache2")
        return f"http://127.0.0.1:{port}", data, p

    def rclone(self, user="u", password="p", tls=False, name="rclone"):
        """tls: https with a self-signed certificate for 127.0.0.1, its PEM in self.cert[name]."""
        data = os.path.join(self.dir, name)
        os.makedirs(data)
        port = free_port()
        extra = []
        if tls:
            cert, key = os.path.join(self.dir, name + "-cert.pem"), os.path.join(self.dir, name + "-key.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                            "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert],
                           check=True, capture_output=True)
            self.cert = dict(getattr(self, "cert", {}), **{name: cert})
            extra = ["--cert", cert, "--key", key]
        p = self.spawn(["rclone", "serve", "webdav", data, "--addr", f"127.0.0.1:{port}", "--user", user,
                        "--pass", password] + extra, name)
        wait_port(port, p, "rclone")
        return f"{'https' if tls else 'http'}://127.0.0.1:{port}", data, p

    # ---- S3 ----

    def s3rver(self, key, secret, bucket="backups"):
        mods = os.path.join(BUILD, "tests", "remote", "s3rver-npm")
        lock = os.path.join(HERE, "s3rver", "package-lock.json")
        stamp = os.path.join(mods, "package-lock.json")
        if not os.path.exists(stamp) or open(stamp).read() != open(lock).read():
            os.makedirs(mods, exist_ok=True)
            for f in ("package.json", "package-lock.json"):
                shutil.copy(os.path.join(HERE, "s3rver", f), mods)
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=mods, check=True, capture_output=True)
        shutil.copy(os.path.join(HERE, "s3rver", "run-s3rver.cjs"), mods)
        data = os.path.join(self.dir, "s3")
        os.makedirs(data)
        port = free_port()
        p = self.spawn(["node", os.path.join(mods, "run-s3rver.cjs"), str(port), data, bucket, key, secret], "s3rver")
        wait_port(port, p, "s3rver")
        return f"http://127.0.0.1:{port}", data, p

    # ---- SFTP ----

    def sshd(self):
        base = os.path.join(self.dir, "sshd")
        os.makedirs(base)
        try:
            pwd.getpwnam(SFTP_USER)
        except KeyError:
            subprocess.run(["useradd", "-m", "-s", "/bin/sh", SFTP_USER], check=True)
        # useradd leaves the account locked ('!'), and sshd refuses locked accounts even for keys.
        subprocess.run(["usermod", "-p", "*", SFTP_USER], check=True)
        home = pwd.getpwnam(SFTP_USER).pw_dir
        for f in ("key", "hostkey"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", os.path.join(base, f)], check=True)
        ssh = os.path.join(home, ".ssh")
        os.makedirs(ssh, exist_ok=True)
        shutil.copy(os.path.join(base, "key.pub"), os.path.join(ssh, "authorized_keys"))
        shutil.copy(os.path.join(base, "key.pub"), os.path.join(base, "authorized_keys"))
        for p in (ssh, os.path.join(ssh, "authorized_keys")):
            shutil.chown(p, SFTP_USER, SFTP_USER)
        os.chmod(ssh, 0o700)
        # What earlier tests uploaded: each test starts with an empty account.
        for n in os.listdir(home):
            if not n.startswith("."):
                shutil.rmtree(os.path.join(home, n), ignore_errors=True)
        os.makedirs("/run/sshd", exist_ok=True)
        port = free_port()
        with open(os.path.join(base, "sshd_config"), "w") as f:
            # The key this server accepts is its own (root's file): another test or benchmark that starts an sshd for
            # the same account meanwhile does not lock this one out. StrictModes: it lies under /tmp.
            f.write(f"ListenAddress 127.0.0.1\nHostKey {base}/hostkey\nPidFile none\nPasswordAuthentication no\n"
                    f"KbdInteractiveAuthentication no\nUsePAM no\nSubsystem sftp internal-sftp\n"
                    f"AuthorizedKeysFile {base}/authorized_keys\nStrictModes no\n")
        self._sshd_argv = ["/usr/sbin/sshd", "-D", "-e", "-f", os.path.join(base, "sshd_config"), "-p", str(port)]
        p = self.spawn(self._sshd_argv, "sshd")
        wait_port(port, p, "sshd")
        fp = subprocess.run(["ssh-keygen", "-lf", os.path.join(base, "hostkey.pub"), "-E", "sha256"],
                            capture_output=True, text=True, check=True).stdout.split()[1]
        return port, home, os.path.join(base, "key"), fp, p


    def sshd_restart(self):
        """sshd again, on the same port with the same keys (after kill())."""
        p = self.spawn(self._sshd_argv, "sshd-again")
        wait_port(int(self._sshd_argv[-1]), p, "sshd")
        return p


class Check:
    """Counts failures; prints each check."""

    def __init__(self):
        self.failed = 0

    def __call__(self, cond, what, detail=""):
        print(("ok   " if cond else "FAIL ") + what + ("" if cond else f": {detail}"), flush=True)
        if not cond:
            self.failed += 1

    def exit(self):
        sys.exit(1 if self.failed else 0)


def descendants(pid):
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid = int(open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def kill(p):
    """The server and every process it started, also those in sessions of their own (sshd's per connection).
    Stopped first, so that it cannot start another child (apache2 does under load) between the look at its
    children and the kill."""
    os.kill(p.pid, signal.SIGSTOP)
    for pid in [p.pid] + descendants(p.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    p.wait()
