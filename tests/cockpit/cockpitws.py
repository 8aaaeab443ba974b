# The Cockpit page in a real browser against the fixture's bus (tests/integration/fixture.py): cockpit-ws
# with --local-session=cockpit-bridge, run as the user under test, serving the built page; browser.cjs
# (puppeteer-core, Debian's chromium) drives it. Used by tests/integration/test-cockpit.py and
# bench/bench-cockpit.py. Runs inside the fixture's private mount namespace (the page's manifest condition
# is met there by a tmpfs, nothing changes outside).
#
# cockpit-ws --local-session serves one page load per run (its one bridge ends with the page's socket):
# every session starts its own.

import json
import os
import shutil
import socket
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
BUILD_ROOT = os.environ.get("OPBACKUP_BUILD_ROOT") or os.path.join(SOURCE_ROOT, "build")
PAGE_DIR = os.path.join(BUILD_ROOT, "client", "cockpit")
NODE_MODULES = os.path.join(HERE, "node_modules")
COCKPIT_WS = "/usr/lib/cockpit/cockpit-ws"
# cockpit-bridge 287 on a bus whose policy has no eavesdrop rule never got answers (page stuck at "loading").
BUS_CONFIG = """<policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
  </policy>"""


class Unavailable(Exception):
        """Something the browser test needs is not installed; says what to do."""


def check_prerequisites():
        for f in ("index.js", "index.css", "index.html", "manifest.json"):
                if not os.path.exists(os.path.join(PAGE_DIR, f)):
                        raise Unavailable(f"the page is not built ({PAGE_DIR}/{f} is missing): run npm ci in "
                                          "client/cockpit (tests/install-deps.sh does), then meson setup --reconfigure")
        if not os.access(COCKPIT_WS, os.X_OK) or not shutil.which("cockpit-bridge"):
                raise Unavailable("cockpit-ws and cockpit-bridge are not installed (tests/install-deps.sh installs them)")
        if not os.access("/usr/bin/chromium", os.X_OK):
                raise Unavailable("chromium is not installed (tests/install-deps.sh installs it)")
        if not os.path.isdir(os.path.join(NODE_MODULES, "puppeteer-core")):
                raise Unavailable(f"puppeteer-core is missing: run npm ci in {HERE} (tests/install-deps.sh does)")


def condition_path():
        with open(os.path.join(PAGE_DIR, "manifest.json")) as f:
                return json.load(f)["conditions"][0]["path-exists"]


def bridge_has_conditions():
        """Whether cockpit-bridge evaluates a manifest's "conditions" (the C bridge of Cockpit 287 does not)."""
        with open(shutil.which("cockpit-bridge"), "rb") as f:
                head = f.read(2)
                if head == b"#!":
                        return True     # the Python bridge (Cockpit >= 294) has them
                f.seek(0)
                return b"path-exists" in f.read()


def free_port():
        with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                return s.getsockname()[1]


class CockpitPage:
        """Serves the built page to browser sessions, as users of the fixture."""

        def __init__(self, fx, shots_dir):
                self.fx = fx
                self.shots = shots_dir
                os.makedirs(shots_dir, exist_ok=True)
                self.root = os.path.join(fx.dir, "cockpit")
                share = os.path.join(self.root, "share", "cockpit")
                os.makedirs(share)
                os.symlink(PAGE_DIR, os.path.join(share, "opbackup"))
                # opbackupctl for the upload route (cockpit.spawn), the build's.
                bindir = os.path.join(self.root, "bin")
                os.makedirs(bindir)
                os.symlink(fx_ctl(), os.path.join(bindir, "opbackupctl"))
                for d in (self.root, os.path.join(self.root, "share"), share, bindir):
                        os.chmod(d, 0o755)
                self.env_path = bindir + ":" + "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
                self.xdg = os.path.join(self.root, "share") + ":/usr/share"

        def satisfy_condition(self):
                """Make the manifest's condition (the service's D-Bus activation file) true, in this mount
                namespace only: a tmpfs on the nearest folder that exists, holding the path."""
                target = condition_path()
                top = os.path.dirname(target)
                while not os.path.isdir(top):
                        top = os.path.dirname(top)
                subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", top], check=True)
                self.fx._mounts.append(top)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with open(target, "w") as f:
                        f.write("[D-BUS Service]\nName=org.opbackup.backup1\n")

        def url(self, port):
                return f"http://127.0.0.1:{port}/cockpit/@localhost/opbackup/index.html"

        def start_ws(self, user):
                port = free_port()
                from fixture import as_user, user_env      # noqa: E402 (tests/integration on sys.path)
                env = user_env(user, self.fx.address)
                env.update({"PATH": self.env_path, "XDG_DATA_DIRS": self.xdg})
                log = open(os.path.join(self.fx.logdir, f"cockpit-ws-{user}-{port}.log"), "ab")
                proc = subprocess.Popen(as_user(user, [COCKPIT_WS, "--no-tls", "--address", "127.0.0.1", "--port",
                                                       str(port), "--local-session=cockpit-bridge"]),
                                        env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                        if proc.poll() is not None:
                                raise RuntimeError(f"cockpit-ws as {user} exited with {proc.returncode}")
                        try:
                                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                                return proc, port
                        except OSError:
                                time.sleep(0.05)
                proc.kill()
                raise RuntimeError("cockpit-ws did not listen within 10 s")

        def http_status(self, user):
                """The HTTP status of the page's index.html for a fresh cockpit-ws as user."""
                import urllib.error
                import urllib.request
                proc, port = self.start_ws(user)
                try:
                        try:
                                with urllib.request.urlopen(self.url(port), timeout=15) as r:
                                        return r.status
                        except urllib.error.HTTPError as e:
                                return e.code
                finally:
                        stop(proc)

        def session(self, user, mode, during=None, **params):
                """One page load as user; what browser.cjs saw (a dict). during: called once the page has
                written params["liveMarker"] (it then waits for what during() does to show)."""
                proc, port = self.start_ws(user)
                try:
                        browser = subprocess.Popen(["node", os.path.join(HERE, "browser.cjs"), mode, self.url(port),
                                                    self.shots, json.dumps(params)],
                                                   cwd=HERE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                                   env={**os.environ, "NODE_PATH": NODE_MODULES})
                        try:
                                if during is not None:
                                        deadline = time.monotonic() + 60
                                        while not os.path.exists(params["liveMarker"]) and browser.poll() is None \
                                                        and time.monotonic() < deadline:
                                                time.sleep(0.05)
                                        if os.path.exists(params["liveMarker"]):
                                                during()
                                out, err = browser.communicate(timeout=240)
                        finally:
                                stop(browser)
                finally:
                        stop(proc)
                lines = out.strip().splitlines()
                if not lines:
                        raise RuntimeError(f"browser.cjs printed nothing (exit {browser.returncode}): {err}")
                return json.loads(lines[-1])


def fx_ctl():
        from fixture import OPBACKUPCTL      # noqa: E402
        return OPBACKUPCTL


def stop(proc):
        from fixture import stop_process      # noqa: E402 (tests/integration on sys.path)
        stop_process(proc)
