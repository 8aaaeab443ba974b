#!/usr/bin/python3
# pip as a transient unit of systemd (opbackupd(8), RESTORE, step 5): a daemon that runs under systemd
# ($INVOCATION_ID) asks org.freedesktop.systemd1 — here tests/integration/fake-systemd.py on the private
# bus, which really runs the command as the given user — to run each plugin's pip install, instead of
# running it in the restore's worker (inside opbackupd.service that has no network).
# - a plugin whose dependency is only on a package index (the venv's pip.conf names it) is installed with
#   it, by the instance user; StartTransientUnit asked for a oneshot service as that user with the sandbox
#   (ProtectSystem=strict, ReadWritePaths= the venv and the work folder inside staging only, ...), the time
#   limit, output into the job's log line by line; the unit was released (UnrefUnit); no work folder is
#   left in the restored basedir;
# - Job.Cancel while pip hangs on a package index that never answers: the unit is stopped (StopUnit), the
#   restore is canceled at once, nothing changed;
# - systemd refuses StartTransientUnit: the log says so, and the worker runs pip itself (the plugin is
#   installed: this machine has the network).

import json
import os
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture  # noqa: E402
from fixture import Fixture, expect, expect_eq, IFACE_JOB, USER_PRINTER  # noqa: E402
import backuptest as bt  # noqa: E402
import restoretest as rt  # noqa: E402

PLUGIN_FIXTURE = os.path.join(fixture.SOURCE_ROOT, "tests", "plugins", "plugin-fixture.py")
LINUX = {"octoprint": [">=1.4.0,<2"], "os": ["linux"]}


def wheel(outdir, dist, key, *requires):
        return subprocess.run([fixture.PYTHON, PLUGIN_FIXTURE, "wheel", outdir, dist, "1.0", key, *requires],
                              stdout=subprocess.PIPE, text=True, check=True).stdout.strip()


def with_plugins(fx, src, name, keys):
        d = os.path.join(fx.dir, "files")
        os.makedirs(d, exist_ok=True)
        os.chmod(d, 0o755)
        path = os.path.join(d, name)
        plugins = [{"key": k, "name": k, "url": None} for k in keys]
        rt.rewrite_zip(src, path, drop=("plugin_list.json",), add=[("plugin_list.json", json.dumps(plugins).encode())])
        os.chmod(path, 0o644)
        return path


def write_pip_conf(venv, index_url, timeout=30):
        path = os.path.join(venv, "pip.conf")
        with open(path, "w") as f:
                f.write(f"[global]\nindex-url = {index_url}\nretries = 0\ntimeout = {timeout}\n")
        os.chmod(path, 0o644)


def transient_calls(fx):
        return [c for c in fx.systemd_calls() if c.get("call") == "StartTransientUnit"]


def test_pip_unit():
        www = tempfile.mkdtemp(prefix="opbackup-pipunit-")
        os.chmod(www, 0o755)
        dep_dir = os.path.join(www, "simple", "opbackup-depdist")
        os.makedirs(dep_dir)
        # The dependency exists only on the index; the plugins only in the repository.
        wheel(dep_dir, "opbackup_depdist", "depdist")
        needs = wheel(www, "OctoPrint_NeedsDep", "needsdep", "opbackup-depdist")
        hangs = wheel(www, "OctoPrint_HangsDep", "hangsdep", "opbackup-neverdist")
        plain = wheel(www, "OctoPrint_PlainPlug", "plainplug")
        for dirpath, dirnames, filenames in os.walk(www):
                for n in dirnames:
                        os.chmod(os.path.join(dirpath, n), 0o755)
        server = subprocess.Popen([fixture.PYTHON, PLUGIN_FIXTURE, "serve", www], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        port = int(server.stdout.readline())
        url = f"http://127.0.0.1:{port}"
        with open(os.path.join(www, "plugins.json"), "w") as f:
                json.dump([{"id": "needsdep", "title": "Needs Dep", "archive": f"{url}/{needs}", "compatibility": LINUX},
                           {"id": "hangsdep", "title": "Hangs Dep", "archive": f"{url}/{hangs}", "compatibility": LINUX},
                           {"id": "plainplug", "title": "Plain", "archive": f"{url}/{plain}", "compatibility": LINUX}], f)
        # A package index that accepts connections and never answers.
        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        try:
                spec = {"inst1": {"gen_args": ["--real-venv", "--restart-command", "true"],
                                  "extra_conf": f"[Restore]\nPluginRepository={url}/plugins.json\n"}}
                env = {"OPBACKUP_FETCH_SOCKET": "/nonexistent/opbackup-fetch.socket",
                       "INVOCATION_ID": "0123456789abcdef0123456789abcdef"}
                with Fixture(instances=spec, daemon_env=env, systemd={"units": {}}) as fx, \
                     bt.Listener(fx, "root") as lis:
                        run(fx, lis, url, silent.getsockname()[1])
        finally:
                silent.close()
                server.stdin.close()
                server.wait(timeout=10)
                subprocess.run(["rm", "-rf", www])


def run(fx, lis, url, silent_port):
        exp = fx.expected()
        base = fx.basedir()
        venv = exp["venv"]
        site = exp["site_packages"]
        printer = bt.uid_of(USER_PRINTER)
        src = bt.run_backup_ok(fx, name="base.zip").details["path"]
        write_pip_conf(venv, f"{url}/simple/")

        # --- Through systemd: the plugin and its dependency from the index.
        o = rt.restore_ok(fx, lis, file=with_plugins(fx, src, "needs.zip", ["needsdep"]))
        log = o.log_text()
        for d in ("OctoPrint_NeedsDep-1.0.dist-info", "opbackup_depdist-1.0.dist-info"):
                expect(os.path.isdir(os.path.join(site, d)), f"{d} is not in the venv after the restore:\n{log}")
                expect_eq(os.stat(os.path.join(site, d)).st_uid, printer, f"owner of {d}")
        expect_eq(o.details["installed-plugins"], ["needsdep"], "installed-plugins")
        r = subprocess.run([os.path.join(venv, "bin", "python"), "-c", "import octoprint_needsdep, octoprint_depdist"],
                           capture_output=True, text=True)
        expect_eq(r.returncode, 0, f"the plugin and its dependency import in the venv: {r.stderr}")
        calls = transient_calls(fx)
        expect_eq(len(calls), 1, f"StartTransientUnit calls: {calls}")
        c = calls[0]
        p = c["properties"]
        expect(c["unit"].startswith("opbackup-pip-") and c["unit"].endswith(".service"), f"unit name {c['unit']}")
        expect_eq(c["mode"], "fail", "StartTransientUnit's mode")
        expect_eq((p["Type"], p["User"], p["Group"]), ("oneshot", str(printer), str(os.stat(base).st_gid)),
                  "Type=, User=, Group=")
        argv = p["ExecStart"][0][1]
        work = p["WorkingDirectory"]
        expect_eq(argv[:-1], [os.path.join(venv, "bin", "python"), "-m", "pip", "install", "--no-cache-dir",
                              "--disable-pip-version-check", "--no-input"], "pip's command line")
        expect(argv[-1].startswith(work + "/") and argv[-1].endswith(needs_name()), f"pip's file {argv[-1]} in {work}")
        staging_parent = os.path.dirname(base)
        expect(os.path.dirname(os.path.dirname(work)).startswith(staging_parent) and
               os.path.basename(work).startswith(".opbackup-pip-"), f"the work folder {work} is not inside staging")
        expect_eq(p["ReadWritePaths"], [venv, work], "ReadWritePaths=")
        expect_eq((p["ProtectSystem"], p["ProtectHome"], p["PrivateTmp"], p["NoNewPrivileges"],
                   p["CapabilityBoundingSet"], p["RestrictAddressFamilies"]),
                  ("strict", "read-only", True, True, 0, [True, ["AF_UNIX", "AF_INET", "AF_INET6"]]), "the sandbox")
        expect_eq(p["TimeoutStartUSec"], 600 * 1000000, "TimeoutStartUSec= (the per-plugin limit)")
        expect(f"TMPDIR={work}" in p["Environment"], f"TMPDIR: {p['Environment']}")
        expect_eq((p["StandardOutputFileDescriptor"], p["StandardErrorFileDescriptor"], p["AddRef"]),
                  ("fd", "fd", True), "output descriptors, AddRef=")
        done = [x for x in fx.systemd_calls() if x.get("exited") == c["unit"]]
        expect(done and done[0]["result"] == "success", f"the unit's end: {done}")
        expect({"call": "UnrefUnit", "unit": c["unit"]} in fx.systemd_calls(), "the unit was not released (UnrefUnit)")
        expect("  pip: Successfully installed" in log, f"pip's output is not in the job's log:\n{log}")
        expect(not [n for n in os.listdir(base) if n.startswith(".opbackup-pip-")], "a work folder is left in basedir")
        print(f"ok: needsdep and its dependency installed through {c['unit']} as uid {printer}")

        # --- Job.Cancel while pip waits for an index that never answers.
        write_pip_conf(venv, f"http://127.0.0.1:{silent_port}/simple/", timeout=120)
        before = basedir_state(base)
        b = with_plugins(fx, src, "hangs.zip", ["hangsdep"])
        jid, jpath = fx.call("root", fx.instance_path(), fixture.IFACE_INSTANCE, "RestoreBackupFromFile", "ha{sv}",
                             b, {})
        lis.wait_for(lambda e: e["signal"] == "Log" and e["path"] == jpath and "Installing plugin hangsdep" in e["args"][1],
                     "the install of hangsdep", timeout=60)
        deadline = time.monotonic() + 30
        while len(transient_calls(fx)) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
        t0 = time.monotonic()
        fx.call("root", jpath, IFACE_JOB, "Cancel", "")
        removed = bt.job_removed(lis, jid, timeout=60)
        took = time.monotonic() - t0
        expect_eq(removed["args"][2], "canceled", f"the canceled restore's result ({removed['args'][3]})")
        expect(took < 10, f"the cancel took {took:.1f} s")
        unit = transient_calls(fx)[1]["unit"]
        expect([x for x in fx.systemd_calls() if x.get("call") == "StopUnit" and x.get("unit") == unit],
               f"{unit} was not stopped")
        deadline = time.monotonic() + 10
        while not [x for x in fx.systemd_calls() if x.get("exited") == unit] and time.monotonic() < deadline:
                time.sleep(0.05)
        ended = [x for x in fx.systemd_calls() if x.get("exited") == unit]
        expect(ended and ended[0]["code"] == 2, f"pip was not killed: {ended}")
        after = basedir_state(base)
        expect(after == before, f"basedir changed with the canceled restore: {sorted(set(after.items()) ^ set(before.items()))[:5]}")
        expect(not [n for n in os.listdir(os.path.dirname(base)) if "staging" in n], "staging is left")
        print(f"ok: canceled in {took:.1f} s, {unit} stopped")

        # --- systemd refuses: the worker runs pip itself.
        write_pip_conf(venv, f"{url}/simple/")
        fx.stop_systemd()
        fx.start_systemd({"units": {}, "transient": {"refuse": True}})
        o = rt.restore_ok(fx, lis, file=with_plugins(fx, src, "plain.zip", ["plainplug"]))
        log = o.log_text()
        expect("Cannot run pip as a transient unit of systemd: systemd refused" in log, f"no word of the refusal:\n{log}")
        expect(os.path.isdir(os.path.join(site, "OctoPrint_PlainPlug-1.0.dist-info")), f"plainplug not installed:\n{log}")
        expect_eq(o.details["installed-plugins"], ["plainplug"], "installed-plugins after the fallback")
        print("ok: refused by systemd, pip ran in the worker")


def basedir_state(base):
        """basedir's files, the backup folder (a passed file is copied in, and removed again) apart."""
        return {k: v for k, v in rt.instance_state(base, skip=["venv"]).items()
                if k.startswith("basedir/") and not k.startswith("basedir/data/backup")}


def needs_name():
        return "OctoPrint_NeedsDep-1.0-py3-none-any.whl"


fixture.main(globals())
