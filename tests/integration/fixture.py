# Integration test fixture for opbackup: a private "system" bus, the real polkitd with the project's
# policy and rules, and opbackupd with a generated configuration — all children of the test process.
# Standard library only; runs with /usr/bin/python3 as root inside a private mount namespace (run.sh).
#
#   with Fixture() as fx:
#           r = fx.ctl("opbackup-allowed", "status")
#           fx.call("opbackup-denied", fx.instance_path("inst1"), IFACE_INSTANCE, "ListBackups", "")
#
# D-Bus calls as a user go through busclient.py (Debian package python3-dbus), because busctl prints only
# the message of an error, never its name, and gdbus cannot pass file descriptors. See busclient.py.
#
# Environment: OPBACKUPD, OPBACKUPCTL, OPBACKUP_FETCH (the binaries), OPBACKUP_SOURCE_ROOT (the source tree);
# without them the fixture falls back to SOURCE/build/... for manual runs. OPBACKUP_TEST_KEEP=1 keeps the
# temp dir.

import ctypes
import grp
import json
import os
import pwd
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.environ.get("OPBACKUP_SOURCE_ROOT") or os.path.normpath(os.path.join(HERE, "..", ".."))
OPBACKUPD = os.environ.get("OPBACKUPD") or os.path.join(SOURCE_ROOT, "build", "service", "opbackupd")
OPBACKUP_FETCH = os.environ.get("OPBACKUP_FETCH") or os.path.join(SOURCE_ROOT, "build", "service", "opbackup-fetch")
OPBACKUPCTL = os.environ.get("OPBACKUPCTL") or os.path.join(SOURCE_ROOT, "build", "client", "opbackupctl")
PYTHON = "/usr/bin/python3"     # the python3 first on PATH may be a per-user shim other users cannot run
BUSCLIENT = os.path.join(HERE, "busclient.py")
FAKE_SYSTEMD = os.path.join(HERE, "fake-systemd.py")
GEN_INSTANCE = os.path.join(SOURCE_ROOT, "tests", "gen-instance.py")

BUS_NAME = "org.opbackup.backup1"
MANAGER_PATH = "/org/opbackup/backup1"
IFACE_MANAGER = "org.opbackup.backup1.Manager"
IFACE_INSTANCE = "org.opbackup.backup1.Instance"
IFACE_JOB = "org.opbackup.backup1.Job"
IFACE_PROPERTIES = "org.freedesktop.DBus.Properties"
IFACE_INTROSPECTABLE = "org.freedesktop.DBus.Introspectable"
POLKIT_NAME = "org.freedesktop.PolicyKit1"
SYSTEMD_NAME = "org.freedesktop.systemd1"

ERROR_ACCESS_DENIED = "org.freedesktop.DBus.Error.AccessDenied"
ERROR_INTERACTIVE_AUTH = "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired"

USER_PRINTER = "opbackup-printer"       # owns the sample instances
USER_ALLOWED = "opbackup-allowed"       # member of group "opbackup": granted access/create/delete
USER_DENIED = "opbackup-denied"         # no grant at all
USER_SCHEDULER = "opbackup-scheduler"   # scheduled backups: granted by name in polkit/50-opbackup.rules
GROUP = "opbackup"

SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
START_TIMEOUT = 10.0


class DBusError(Exception):
        """A D-Bus method call answered with an error."""

        def __init__(self, name, message):
                super().__init__(f"{name}: {message}")
                self.name = name
                self.message = message


class Skip(Exception):
        """Raised by a test that cannot run here; reported as "skip", never as "ok"."""


def expect(cond, message):
        if not cond:
                raise AssertionError(message)


def expect_eq(actual, wanted, what):
        if actual != wanted:
                raise AssertionError(f"{what}: got {actual!r}, want {wanted!r}")


def sd_bus_path_encode(label):
        """The escaping of sd_bus_path_encode(): everything but [A-Za-z0-9] (and a leading digit) as _xx."""
        if label == "":
                return "_"
        out = []
        for i, b in enumerate(label.encode()):
                c = chr(b)
                if c.isascii() and (c.isalpha() or (i > 0 and c.isdigit())):
                        out.append(c)
                else:
                        out.append(f"_{b:02x}")
        return "".join(out)


def instance_path(name):
        return f"{MANAGER_PATH}/instance/{sd_bus_path_encode(name)}"


def parse_interfaces(xml_text, prefix="org.opbackup.backup1."):
        """{interface: {"methods": {name: {"args": [(name, type, direction)], "annotations": {...}}},
        "properties": {name: {"type", "access", "annotations"}}, "signals": {name: {"args": [(name, type)],
        "annotations"}}}} for the interfaces whose name starts with prefix. Member order is not part of the
        API; argument order is."""
        def annotations(el):
                return {a.get("name"): a.get("value") for a in el.findall("annotation")}

        out = {}
        for iface in ET.fromstring(xml_text).findall("interface"):
                name = iface.get("name")
                if not name.startswith(prefix):
                        continue
                out[name] = {
                        "methods": {m.get("name"): {
                                "args": [(a.get("name"), a.get("type"), a.get("direction", "in"))
                                         for a in m.findall("arg")],
                                "annotations": annotations(m)} for m in iface.findall("method")},
                        "properties": {p.get("name"): {
                                "type": p.get("type"), "access": p.get("access"),
                                "annotations": annotations(p)} for p in iface.findall("property")},
                        "signals": {s.get("name"): {
                                "args": [(a.get("name"), a.get("type")) for a in s.findall("arg")],
                                "annotations": annotations(s)} for s in iface.findall("signal")},
                }
        return out


def api_xml():
        with open(os.path.join(SOURCE_ROOT, "dbus", "org.opbackup.backup1.xml")) as f:
                return f.read()


# ------------------------------------------------------------------------------------------------------
# Test users

def ensure_users():
        """Create the test group and users if missing. They stay: cheap and idempotent."""
        try:
                grp.getgrnam(GROUP)
        except KeyError:
                subprocess.run(["groupadd", "-f", GROUP], check=True)
        for user, groups in ((USER_PRINTER, []), (USER_ALLOWED, [GROUP]), (USER_DENIED, []),
                             (USER_SCHEDULER, [])):
                try:
                        pwd.getpwnam(user)
                except KeyError:
                        cmd = ["useradd", "--create-home", "--shell", "/bin/sh", "--user-group"]
                        if groups:
                                cmd += ["--groups", ",".join(groups)]
                        subprocess.run(cmd + [user], check=True)
                # A user left from an earlier run with other groups: make membership what the tests assume.
                members = grp.getgrnam(GROUP).gr_mem
                if GROUP in groups and user not in members:
                        subprocess.run(["usermod", "-a", "-G", GROUP, user], check=True)
                elif GROUP not in groups and user in members:
                        subprocess.run(["gpasswd", "-d", user, GROUP], check=True,
                                       stdout=subprocess.DEVNULL)


def in_private_mount_namespace():
        # /proc/1/ns/mnt may be unreadable even for root (containers), so the launcher records the mount
        # namespace it started in (OPBACKUP_TEST_OUTER_MNTNS) and we check that we left it.
        outer = os.environ.get("OPBACKUP_TEST_OUTER_MNTNS")
        return bool(outer) and os.readlink("/proc/self/ns/mnt") != outer


def reexec_in_private_mount_namespace():
        os.environ["OPBACKUP_TEST_OUTER_MNTNS"] = os.readlink("/proc/self/ns/mnt")
        os.execvp("unshare", ["unshare", "-m", "--propagation", "private", "--", PYTHON] + sys.argv)


# A sanitizer build (tests/run-sanitizers.sh) reports through these: every process the tests start gets them.
SANITIZER_ENV = {k: v for k, v in os.environ.items() if k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS")}


def user_env(user, address):
        pw = pwd.getpwnam(user)
        env = {"PATH": SAFE_PATH, "LANG": "C.UTF-8", "HOME": pw.pw_dir, "USER": user, "LOGNAME": user,
               **SANITIZER_ENV}
        if address:
                env["DBUS_SYSTEM_BUS_ADDRESS"] = address
        return env


def as_user(user, argv):
        """argv wrapped to run as USER (with its real groups), or unchanged for root."""
        if user == "root":
                return list(argv)
        pw = pwd.getpwnam(user)
        return ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--init-groups", "--"] + list(argv)


def stop_process(proc):
        """SIGTERM, then SIGKILL if it has not exited within 5 s; waits for it either way."""
        if proc.poll() is not None:
                return
        proc.terminate()
        try:
                proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _die_with_parent():
        # A test killed hard must not leave a bus, polkitd or daemon behind (PR_SET_PDEATHSIG).
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)


def default_bus_policy():
        """The <policy> elements of the real system bus configuration, as XML text."""
        tree = ET.parse("/usr/share/dbus-1/system.conf")
        return "\n".join(ET.tostring(p, encoding="unicode") for p in tree.getroot().findall("policy"))


# ------------------------------------------------------------------------------------------------------

class PendingCall:
        """A D-Bus call (or opbackupctl run) still running in the background."""

        def __init__(self, proc, parse):
                self.proc = proc
                self._parse = parse

        def done(self):
                return self.proc.poll() is not None

        def wait(self, timeout=60):
                out, err = self.proc.communicate(timeout=timeout)
                return self._parse(self.proc, out, err)


class Fixture:
        """Per-test environment. Arguments:

        instances: {name: spec}. spec None/{} generates a sample instance with tests/gen-instance.py into
                DIR/<name> and configures it. A dict may set: size ("tiny"), user (opbackup-printer), seed,
                gen_args (list), generate (False: make nothing), conf (raw INI replacing the generated
                instances.d/<name>.conf), extra_conf (raw INI appended to it). A str is raw INI (no sample
                generated). In raw text "@DIR@" is the fixture dir and "@ROOT@" is DIR/<name>.
        extra_ini: raw text appended to opbackupd.conf.
        config_files: {relative path: text} more files in the config dir.
        rules: {file name: JavaScript} extra polkit rules in /etc/polkit-1/rules.d.
        polkit: start polkitd (False: the daemon finds no polkit on the bus).
        daemon: start opbackupd.
        prepare: callable(fx) run after the instances are made and before the daemon starts.
        daemon_env: extra environment for opbackupd.
        systemd: a configuration for tests/integration/fake-systemd.py (see there), started before the
                daemon as org.freedesktop.systemd1; None: no systemd on the bus (as on these machines).
        bus_config: raw XML added to the bus configuration (e.g. a <policy> a peer needs).
        """

        def __init__(self, instances=None, extra_ini="", config_files=None, rules=None, polkit=True,
                     daemon=True, prepare=None, daemon_env=None, systemd=None, bus_config=""):
                self.bus_config = bus_config
                self.instances = {"inst1": None} if instances is None else dict(instances)
                self.extra_ini = extra_ini
                self.config_files = config_files or {}
                self.rules = rules or {}
                self.want_polkit = polkit
                self.want_daemon = daemon
                self.prepare = prepare
                self.daemon_env = daemon_env or {}
                self.systemd_config = systemd
                self.systemd_proc = None
                self.daemon_exit_on_idle = False        # True: without --no-exit-on-idle
                self.dir = None
                self.address = None
                self.bus_proc = None
                self.polkit_proc = None
                self.daemon_proc = None
                self._mounts = []
                self._logs = {}
                self._saved_address = None

        # -- context manager -----------------------------------------------------------------------
        def __enter__(self):
                try:
                        self._setup()
                except BaseException:
                        self.dump_logs("fixture setup failed")
                        self._teardown()
                        raise
                return self

        def __exit__(self, exc_type, exc, tb):
                if exc_type is not None and not issubclass(exc_type, Skip):
                        self.dump_logs(f"test failed: {exc_type.__name__}: {exc}")
                self._teardown()
                return False

        def _setup(self):
                if os.geteuid() != 0:
                        raise Skip("needs root")
                if not in_private_mount_namespace():
                        raise RuntimeError("refusing to bind-mount over polkit's folders outside a private "
                                           "mount namespace: run the test with tests/integration/run.sh")
                ensure_users()
                self.dir = tempfile.mkdtemp(prefix="opbackup-it-")
                os.chmod(self.dir, 0o755)      # other users must reach the bus socket
                self.logdir = os.path.join(self.dir, "logs")
                os.mkdir(self.logdir)
                self.config_dir = os.path.join(self.dir, "etc")
                # The daemon's state directory (what systemd's StateDirectory= makes: root's, 0700).
                self.state_dir = os.path.join(self.dir, "state")
                os.mkdir(self.state_dir, 0o700)
                self._make_instances()
                self._write_config()
                if self.prepare:
                        self.prepare(self)
                self._install_polkit_files()
                self._start_bus()
                if self.want_polkit:
                        self.start_polkit()
                if self.systemd_config is not None:
                        self.start_systemd()
                if self.want_daemon:
                        self.start_daemon()

        def _teardown(self):
                for stop in (self.stop_daemon, self.stop_systemd, self.stop_polkit, self._stop_bus):
                        try:
                                stop()
                        except Exception:
                                traceback.print_exc()
                for target in reversed(self._mounts):
                        subprocess.run(["umount", "--lazy", target], check=False)
                self._mounts = []
                if self._saved_address is not None:
                        os.environ.pop("DBUS_SYSTEM_BUS_ADDRESS", None)
                        if self._saved_address:
                                os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = self._saved_address
                        self._saved_address = None
                if self.dir and not os.environ.get("OPBACKUP_TEST_KEEP"):
                        shutil.rmtree(self.dir, ignore_errors=True)
                elif self.dir:
                        print(f"# kept {self.dir}", file=sys.stderr)

        # -- instances and configuration -----------------------------------------------------------
        def instance_root(self, name):
                return os.path.join(self.dir, name)

        def basedir(self, name="inst1"):
                return os.path.join(self.instance_root(name), "basedir")

        def python(self, name="inst1"):
                return os.path.join(self.instance_root(name), "venv", "bin", "python")

        def expected(self, name="inst1"):
                """What gen-instance.py wrote about the sample: octoprint_version, plugin_list, basedir..."""
                with open(os.path.join(self.instance_root(name), "expected.json")) as f:
                        return json.load(f)

        def instance_path(self, name="inst1"):
                return instance_path(name)

        def _subst(self, text, name=None):
                text = text.replace("@DIR@", self.dir)
                if name is not None:
                        text = text.replace("@ROOT@", self.instance_root(name))
                return text

        def _make_instances(self):
                for name, spec in self.instances.items():
                        if isinstance(spec, dict) and spec.get("_made"):
                                continue
                        if isinstance(spec, str):
                                spec = {"generate": False, "conf": spec}
                        spec = dict(spec or {})
                        spec["_made"] = True
                        self.instances[name] = spec
                        if spec.get("generate", True):
                                self.generate_instance(name, size=spec.get("size", "tiny"),
                                                       user=spec.get("user", USER_PRINTER),
                                                       seed=spec.get("seed"), extra=spec.get("gen_args", []))

        def add_instance(self, name, spec=None):
                """Make and configure one more instance; it is seen after restart_daemon()."""
                self.instances[name] = spec
                self._make_instances()
                self.write_config_file(os.path.join("instances.d", f"{name}.conf"), self.instance_conf(name))

        def generate_instance(self, name, size="tiny", user=USER_PRINTER, seed=None, extra=()):
                if not os.path.exists(GEN_INSTANCE):
                        raise RuntimeError(f"{GEN_INSTANCE} is missing: cannot make a sample instance")
                cmd = [PYTHON, GEN_INSTANCE, "--root", self.instance_root(name), "--size", size,
                       "--user", user]
                if seed is not None:
                        cmd += ["--seed", str(seed)]
                cmd += list(extra)
                r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                if r.returncode != 0:
                        raise RuntimeError(f"gen-instance.py for {name} failed ({r.returncode}):\n{r.stdout}")

        def instance_conf(self, name):
                spec = self.instances[name]
                if spec.get("conf") is not None:
                        text = spec["conf"]
                else:
                        text = (f"[OctoPrint]\nBasedir={self.basedir(name)}\n"
                                f"Python={self.python(name)}\n")
                if spec.get("extra_conf"):
                        text += "\n" + spec["extra_conf"]
                return self._subst(text, name)

        def _write_config(self):
                os.makedirs(os.path.join(self.config_dir, "instances.d"))
                self.write_config_file("opbackupd.conf", self._subst(self.extra_ini))
                for name in self.instances:
                        self.write_config_file(os.path.join("instances.d", f"{name}.conf"),
                                               self.instance_conf(name))
                for rel, text in self.config_files.items():
                        self.write_config_file(rel, self._subst(text))

        def write_config_file(self, rel, text):
                path = os.path.join(self.config_dir, rel)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w") as f:
                        f.write(text)
                return path

        def write_remote(self, name, conf, credentials):
                """remotes.d/NAME.conf: [Remote] with CONF (its other keys, each line ending in a newline) and
                CredentialsFile= naming keys/NAME, which holds CREDENTIALS, mode 0600. Returns the key's path."""
                key = self.write_config_file(f"keys/{name}", credentials)
                os.chmod(key, 0o600)
                self.write_config_file(f"remotes.d/{name}.conf", f"[Remote]\n{conf}CredentialsFile={key}\n")
                return key

        # -- polkit files --------------------------------------------------------------------------
        def _bind(self, source, target):
                subprocess.run(["mount", "--bind", source, target], check=True)
                self._mounts.append(target)

        def _install_polkit_files(self):
                root = os.path.join(self.dir, "polkit")
                self.actions_dir = os.path.join(root, "actions")
                self.rules_dir = os.path.join(root, "etc-rules.d")          # admin rules, test rules
                self.vendor_rules_dir = os.path.join(root, "usr-rules.d")   # where the project installs
                for d in (root, self.actions_dir, self.rules_dir, self.vendor_rules_dir):
                        os.mkdir(d)
                        os.chmod(d, 0o755)      # polkitd runs as user polkitd
                self._copy_readable(os.path.join(SOURCE_ROOT, "polkit", "org.opbackup.backup1.policy"),
                                    self.actions_dir)
                self._copy_readable(os.path.join(SOURCE_ROOT, "polkit", "50-opbackup.rules"),
                                    self.vendor_rules_dir)
                for fname, text in self.rules.items():
                        self._write_rule(fname, text)
                self._bind(self.actions_dir, "/usr/share/polkit-1/actions")
                self._bind(self.rules_dir, "/etc/polkit-1/rules.d")
                self._bind(self.vendor_rules_dir, "/usr/share/polkit-1/rules.d")

        @staticmethod
        def _copy_readable(source, folder):
                target = os.path.join(folder, os.path.basename(source))
                shutil.copyfile(source, target)
                os.chmod(target, 0o644)

        def _write_rule(self, fname, text):
                # Written elsewhere and renamed in, so polkitd never reads half a file.
                tmp = os.path.join(self.dir, "polkit", f".{fname}.tmp")
                with open(tmp, "w") as f:
                        f.write(text)
                os.chmod(tmp, 0o644)
                os.rename(tmp, os.path.join(self.rules_dir, fname))

        def add_rule(self, fname, text, timeout=START_TIMEOUT):
                """Add a polkit rules file while polkitd runs; waits until polkitd has reloaded its rules."""
                before = self.log("polkitd").count("Finished loading, compiling and executing")
                self._write_rule(fname, text)
                if self.polkit_proc is None:
                        return
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline:
                        if self.log("polkitd").count("Finished loading, compiling and executing") > before:
                                return
                        time.sleep(0.05)
                raise RuntimeError(f"polkitd did not reload its rules within {timeout} s after adding {fname}")

        # -- processes -----------------------------------------------------------------------------
        def _logfile(self, what):
                path = os.path.join(self.logdir, f"{what}.log")
                self._logs[what] = path
                return open(path, "ab")

        def log(self, what):
                path = self._logs.get(what)
                if not path or not os.path.exists(path):
                        return ""
                with open(path, errors="replace") as f:
                        return f.read()

        def daemon_log(self):
                return self.log("daemon")

        def dump_logs(self, why):
                if not self._logs:
                        return
                err = sys.stderr
                print(f"==== {why}: logs from {self.dir}", file=err)
                for what in ("bus", "polkitd", "systemd", "daemon"):
                        text = self.log(what)
                        lines = text.splitlines()
                        if len(lines) > 400:
                                lines = [f"... ({len(lines) - 400} lines left out)"] + lines[-400:]
                        print(f"---- {what} log ----", file=err)
                        print("\n".join(lines) if lines else "(empty)", file=err)
                print("====", file=err)
                err.flush()

        def _start_bus(self):
                policy_dir = os.path.join(self.dir, "bus.d")
                os.mkdir(policy_dir)
                shutil.copyfile(os.path.join(SOURCE_ROOT, "dbus", "org.opbackup.backup1.conf"),
                                os.path.join(policy_dir, "org.opbackup.backup1.conf"))
                # What systemd's own policy says for root, for fake-systemd.py.
                with open(os.path.join(policy_dir, "org.freedesktop.systemd1.conf"), "w") as f:
                        f.write(f"""<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <policy user="root">
    <allow own="{SYSTEMD_NAME}"/>
    <allow send_destination="{SYSTEMD_NAME}"/>
  </policy>
</busconfig>
""")
                socket = os.path.join(self.dir, "system_bus_socket")
                conf = os.path.join(self.dir, "bus.conf")
                with open(conf, "w") as f:
                        f.write(f"""<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <auth>EXTERNAL</auth>
  <listen>unix:path={socket}</listen>
{default_bus_policy()}
  <include>/usr/share/dbus-1/system.d/org.freedesktop.PolicyKit1.conf</include>
  <includedir>{policy_dir}</includedir>
{self.bus_config}
</busconfig>
""")
                rfd, wfd = os.pipe()
                try:
                        self.bus_proc = subprocess.Popen(
                                ["dbus-daemon", f"--config-file={conf}", "--nofork", "--nopidfile",
                                 f"--print-address={wfd}"],
                                pass_fds=(wfd,), stdin=subprocess.DEVNULL, stdout=self._logfile("bus"),
                                stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
                        os.close(wfd)
                        wfd = -1
                        ready, _, _ = select.select([rfd], [], [], START_TIMEOUT)
                        line = os.read(rfd, 4096).decode().strip() if ready else ""
                finally:
                        os.close(rfd)
                        if wfd >= 0:
                                os.close(wfd)
                if not line:
                        raise RuntimeError("dbus-daemon did not print its address")
                # The address dbus-daemon prints has a guid; clients only need the path.
                self.address = f"unix:path={socket}"
                self._saved_address = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS", "")
                os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = self.address

        def _stop_bus(self):
                self._stop(self.bus_proc)
                self.bus_proc = None

        def start_polkit(self):
                # Without --no-debug: polkitd then logs rule loading (add_rule() waits for it) and errors
                # in rules to our log file instead of to a syslog that is not there.
                env = {"PATH": SAFE_PATH, "LANG": "C.UTF-8", "DBUS_SYSTEM_BUS_ADDRESS": self.address}
                self.polkit_proc = subprocess.Popen(["/usr/lib/polkit-1/polkitd", ], env=env,
                                                    stdin=subprocess.DEVNULL,
                                                    stdout=self._logfile("polkitd"),
                                                    stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
                self.wait_for_name(POLKIT_NAME, self.polkit_proc, "polkitd")

        def stop_polkit(self):
                if self.polkit_proc is not None:
                        self._stop(self.polkit_proc)
                        self.polkit_proc = None
                        self.wait_for_name_gone(POLKIT_NAME)

        def start_systemd(self, config=None):
                """fake-systemd.py as org.freedesktop.systemd1 (config: see there; default the Fixture's)."""
                if config is not None:
                        self.systemd_config = config
                path = os.path.join(self.dir, "fake-systemd.json")
                with open(path, "w") as f:
                        json.dump(self.systemd_config, f)
                self.systemd_log_path = os.path.join(self.dir, "fake-systemd.calls")
                env = {"PATH": SAFE_PATH, "LANG": "C.UTF-8", "DBUS_SYSTEM_BUS_ADDRESS": self.address}
                self.systemd_proc = subprocess.Popen([PYTHON, FAKE_SYSTEMD, path, self.systemd_log_path], env=env,
                                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                                     stderr=self._logfile("systemd"), preexec_fn=_die_with_parent)
                self.wait_for_name(SYSTEMD_NAME, self.systemd_proc, "fake-systemd.py")

        def stop_systemd(self):
                if self.systemd_proc is not None:
                        self._stop(self.systemd_proc)
                        self.systemd_proc = None
                        self.wait_for_name_gone(SYSTEMD_NAME)

        def systemd_calls(self):
                """What fake-systemd.py was asked and did: its log, as a list of dicts."""
                path = getattr(self, "systemd_log_path", None)
                if not path or not os.path.exists(path):
                        return []
                with open(path) as f:
                        return [json.loads(line) for line in f if line.strip()]

        def start_daemon(self):
                # --verbose: the daemon's debug messages end up in the log printed when a test fails.
                env = {"PATH": SAFE_PATH, "LANG": "C.UTF-8", "DBUS_SYSTEM_BUS_ADDRESS": self.address}
                # The opbackup-fetch the workers start when there is no helper socket (the built one, not
                # the installed one); the workers inherit the daemon's environment.
                env["OPBACKUP_FETCH"] = OPBACKUP_FETCH
                # Root's state (saved listings, files caches, the last uploads to remotes), as StateDirectory= gives it.
                env["STATE_DIRECTORY"] = self.state_dir
                env.update(SANITIZER_ENV)
                env.update(self.daemon_env)
                if not os.access(OPBACKUPD, os.X_OK):
                        raise RuntimeError(f"{OPBACKUPD} is not there: build first or set OPBACKUPD")
                argv = [OPBACKUPD, "--config-dir", self.config_dir, "--verbose"]
                if not self.daemon_exit_on_idle:
                        argv.append("--no-exit-on-idle")
                self.daemon_proc = subprocess.Popen(
                        argv, env=env,
                        stdin=subprocess.DEVNULL, stdout=self._logfile("daemon"), stderr=subprocess.STDOUT,
                        preexec_fn=_die_with_parent)
                self.wait_for_name(BUS_NAME, self.daemon_proc, "opbackupd")

        def stop_daemon(self):
                if self.daemon_proc is not None:
                        self._stop(self.daemon_proc)
                        self.daemon_proc = None
                        if self.bus_proc is not None:
                                self.wait_for_name_gone(BUS_NAME)

        def restart_daemon(self):
                self.stop_daemon()
                self.start_daemon()

        @staticmethod
        def _stop(proc):
                if proc is not None:
                        stop_process(proc)

        def name_has_owner(self, name):
                r = subprocess.run(["busctl", f"--address={self.address}", "call", "org.freedesktop.DBus",
                                    "/org/freedesktop/DBus", "org.freedesktop.DBus", "NameHasOwner", "s",
                                    name], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                return r.returncode == 0 and r.stdout.strip() == "b true"

        def wait_for_name(self, name, proc, what, timeout=START_TIMEOUT):
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline:
                        if proc.poll() is not None:
                                raise RuntimeError(f"{what} exited with status {proc.returncode} before "
                                                   f"{name} appeared on the bus")
                        if self.name_has_owner(name):
                                return
                        time.sleep(0.02)
                raise RuntimeError(f"{name} did not appear on the bus within {timeout} s ({what} still runs)")

        def wait_for_name_gone(self, name, timeout=START_TIMEOUT):
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline:
                        if not self.name_has_owner(name):
                                return
                        time.sleep(0.02)
                raise RuntimeError(f"{name} is still on the bus {timeout} s after its owner stopped")

        # -- clients -------------------------------------------------------------------------------
        def _ctl_argv(self, user, args):
                return as_user(user, [OPBACKUPCTL] + [str(a) for a in args])

        def ctl(self, user, *args, input=None, timeout=120):
                """Run opbackupctl as USER; returns the CompletedProcess (text)."""
                return subprocess.run(self._ctl_argv(user, args), env=user_env(user, self.address),
                                      input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True, timeout=timeout)

        def ctl_ok(self, user, *args, input=None, timeout=120):
                """Like ctl(), but a non-zero exit is a test failure showing what the client printed."""
                r = self.ctl(user, *args, input=input, timeout=timeout)
                if r.returncode != 0:
                        raise AssertionError(f"opbackupctl {' '.join(map(str, args))} as {user} exited "
                                             f"{r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}")
                return r

        def ctl_background(self, user, *args):
                proc = subprocess.Popen(self._ctl_argv(user, args), env=user_env(user, self.address),
                                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
                return PendingCall(proc, lambda p, out, err: subprocess.CompletedProcess(
                        p.args, p.returncode, out, err))

        def _call_argv(self, user, path, iface, method, signature, args, dest):
                return as_user(user, [PYTHON, BUSCLIENT, dest, path, iface, method, signature,
                                      json.dumps(list(args))])

        @staticmethod
        def _call_result(proc, out, err):
                if proc.returncode != 0:
                        raise RuntimeError(f"busclient.py failed ({proc.returncode}): {err.strip()}")
                reply = json.loads(out)
                if "error" in reply:
                        raise DBusError(reply["error"], reply["message"])
                return reply["result"]

        def call(self, user, path, iface, method, signature="", *args, dest=BUS_NAME, pass_fds=(),
                 timeout=150):
                """A D-Bus method call as USER. Returns the list of out arguments (plain Python values) or
                raises DBusError with .name and .message. "h" arguments: an inherited fd number (list it in
                pass_fds) or a path the caller opens."""
                proc = subprocess.run(self._call_argv(user, path, iface, method, signature, args, dest),
                                      env=user_env(user, self.address), pass_fds=pass_fds,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                      timeout=timeout)
                return self._call_result(proc, proc.stdout, proc.stderr)

        def call_error(self, user, path, iface, method, signature="", *args, **kw):
                """The D-Bus error name the call ends with, or None if it succeeds."""
                try:
                        self.call(user, path, iface, method, signature, *args, **kw)
                except DBusError as e:
                        return e
                return None

        def call_background(self, user, path, iface, method, signature="", *args, dest=BUS_NAME):
                proc = subprocess.Popen(self._call_argv(user, path, iface, method, signature, args, dest),
                                        env=user_env(user, self.address), stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                return PendingCall(proc, self._call_result)

        def get_property(self, user, path, iface, prop):
                return self.call(user, path, IFACE_PROPERTIES, "Get", "ss", iface, prop)[0]

        def get_all_properties(self, user, path, iface):
                return self.call(user, path, IFACE_PROPERTIES, "GetAll", "s", iface)[0]

        def introspect(self, user, path):
                return self.call(user, path, IFACE_INTROSPECTABLE, "Introspect", "")[0]


# ------------------------------------------------------------------------------------------------------
# A tiny test runner: a test file defines test_* functions and ends with fixture.main(globals()).

def main(namespace):
        if os.geteuid() != 0:
                print("skip: the integration tests need root (a private bus, polkitd, bind mounts)")
                sys.exit(77)
        if not in_private_mount_namespace():
                # run.sh normally does this; a direct run re-executes itself the same way.
                reexec_in_private_mount_namespace()
        # meson's timeout sends SIGTERM: unwind through the fixtures so they tear down.
        signal.signal(signal.SIGTERM, lambda signo, frame: sys.exit(128 + signo))
        tests = [(n, f) for n, f in namespace.items() if n.startswith("test_") and callable(f)]
        wanted = sys.argv[1:]
        if wanted:
                tests = [(n, f) for n, f in tests if n in wanted]
                if not tests:
                        print(f"no test named {' '.join(wanted)}")
                        sys.exit(2)
        failed = skipped = 0
        for name, fn in tests:
                start = time.monotonic()
                try:
                        fn()
                except Skip as e:
                        skipped += 1
                        print(f"skip {name}: {e}", flush=True)
                        continue
                except Exception as e:
                        failed += 1
                        sys.stdout.flush()
                        traceback.print_exc()
                        sys.stderr.flush()
                        reason = str(e) or type(e).__name__
                        print(f"FAIL {name}: {reason}", flush=True)
                        continue
                print(f"ok {name} ({time.monotonic() - start:.1f} s)", flush=True)
        print(f"# {len(tests) - failed - skipped} passed, {failed} failed, {skipped} skipped", flush=True)
        if failed:
                sys.exit(1)
        if skipped == len(tests):
                sys.exit(77)
        sys.exit(0)
