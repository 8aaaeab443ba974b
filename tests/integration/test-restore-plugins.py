#!/usr/bin/python3
# Plugin reinstallation during a restore, for real (opbackupd(8), RESTORE, step 5; org.opbackup.backup1(5),
# JobRemoved's details and Get/ClearUnknownPlugins): a venv made by `python3 -m venv` (gen-instance.py
# --real-venv), its real pip, and a plugin repository served over HTTP on 127.0.0.1 by
# tests/plugins/plugin-fixture.py with wheels it builds. The backups are the daemon's own with a
# plugin_list.json written by CPython's zipfile.
# - a compatible plugin the repository has is installed into the venv, by the instance user;
# - an incompatible one is skipped with a log line (and reported as unknown, as OctoPrint does);
# - one the repository does not know is reported: JobRemoved details, the client's output with its
#   homepage, GetUnknownPlugins, <backup folder>/unknown_plugins_from_restore.json; ClearUnknownPlugins
#   forgets them; one installed since drops out of the list;
# - a plugin whose install fails (a wheel that is no zip) fails the restore and basedir stays as it was;
#   with --ignore-plugin-errors the restore goes on and reports it failed;
# - the repository unreachable (a closed port): every plugin is unknown and the restore succeeds;
# - who downloads: without the fetch helper, the worker as the instance user; with one (opbackup-fetch
#   behind systemd-socket-activate as an unprivileged user, at OPBACKUP_FETCH_SOCKET, as opbackup-fetch.socket
#   runs it under opbackupd.service, which has no network), the repository and the archive come through it;
# - a venv without pip: restore is supported; a backup whose plugins need installing is refused at once,
#   before anything is unpacked or changed, naming them and the ways out; with --skip-plugins it restores,
#   with --ignore-plugin-errors too (they are reported failed, nothing is downloaded); one whose plugins
#   need no pip (installed already, or unknown to the repository) restores as usual.

import json
import os
import socket
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture  # noqa: E402
from fixture import Fixture, expect, expect_eq, IFACE_INSTANCE, USER_ALLOWED, USER_PRINTER  # noqa: E402
import backuptest as bt  # noqa: E402
import restoretest as rt  # noqa: E402
from printapi import HELPER_USER, Scratch, start_helper  # noqa: E402

PLUGIN_FIXTURE = os.path.join(fixture.SOURCE_ROOT, "tests", "plugins", "plugin-fixture.py")
UNKNOWN_FILE = "unknown_plugins_from_restore.json"


class Repository:
        """plugin-fixture.py serving a folder on 127.0.0.1 (until stdin closes), logging who asked for what."""

        def __init__(self):
                self.dir = tempfile.mkdtemp(prefix="opbackup-repo-")
                self.www = os.path.join(self.dir, "www")
                self.log = os.path.join(self.dir, "requests.jsonl")
                os.chmod(self.dir, 0o755)
                os.mkdir(self.www, 0o755)
                self.proc = subprocess.Popen([fixture.PYTHON, PLUGIN_FIXTURE, "serve", self.www, self.log],
                                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                self.port = int(self.proc.stdout.readline())

        def requests(self):
                """[(path, uid of the client)], in order."""
                if not os.path.exists(self.log):
                        return []
                with open(self.log) as f:
                        return [(r["path"], r["client_uid"]) for r in map(json.loads, f) if r]

        def url(self, path):
                return f"http://127.0.0.1:{self.port}/{path}"

        def wheel(self, dist, key):
                out = subprocess.run([fixture.PYTHON, PLUGIN_FIXTURE, "wheel", self.www, dist, "1.0", key],
                                     stdout=subprocess.PIPE, text=True, check=True).stdout.strip()
                return self.url(out)

        def write(self, name, data):
                with open(os.path.join(self.www, name), "w") as f:
                        f.write(data)

        def close(self):
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
                subprocess.run(["rm", "-rf", self.dir])

        def __enter__(self):
                return self

        def __exit__(self, *exc):
                self.close()
                return False


def closed_port():
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        return port


def entry(key, name, url):
        return {"key": key, "name": name, "url": url}


def with_plugins(fx, src, name, plugins):
        """A copy of the backup SRC whose plugin_list.json lists PLUGINS, readable by everybody."""
        d = os.path.join(fx.dir, "files")
        os.makedirs(d, exist_ok=True)
        os.chmod(d, 0o755)
        path = os.path.join(d, name)
        rt.rewrite_zip(src, path, drop=("plugin_list.json",), add=[("plugin_list.json", json.dumps(plugins).encode())])
        os.chmod(path, 0o644)
        return path


def dist_infos(site):
        return {n for n in os.listdir(site) if n.endswith(".dist-info")}


def unknown_keys(fx, user="root"):
        return sorted(p[0] for p in fx.call(user, fx.instance_path(), IFACE_INSTANCE, "GetUnknownPlugins", "")[0])


def next_removed(lis, seen):
        """The first JobRemoved of a job not in SEEN (ids), waited for; adds its id to SEEN."""
        e = lis.wait_for(lambda e: e["signal"] == "JobRemoved" and e["args"][0] not in seen, "JobRemoved", timeout=60)
        seen.add(e["args"][0])
        return e["args"]


def details_keys(o, key):
        v = o.details.get(key, [])
        return sorted(x[0] if isinstance(x, list) else x for x in v)


def test_plugins():
        with Repository() as repo:
                good = repo.wheel("OctoPrint_GoodPlug", "goodplug")
                other = repo.wheel("OctoPrint_OtherPlug", "otherplug")
                future = repo.wheel("OctoPrint_FuturePlug", "futureplug")
                third = repo.wheel("OctoPrint_ThirdPlug", "thirdplug")
                repo.write("broken-1.0-py3-none-any.whl", "this is not a zip file\n")
                linux = {"octoprint": [">=1.4.0,<2"], "os": ["linux"]}
                repo.write("plugins.json", json.dumps([
                        {"id": "goodplug", "title": "Good Plug", "homepage": "https://example.org/goodplug",
                         "archive": good, "compatibility": linux},
                        {"id": "otherplug", "title": "Other Plug", "archive": other, "compatibility": linux},
                        {"id": "futureplug", "title": "Future Plug", "archive": future,
                         "compatibility": {"octoprint": [">=9.0"]}},
                        {"id": "thirdplug", "title": "Third Plug", "archive": third, "compatibility": linux},
                        {"id": "badplug", "title": "Bad Plug", "archive": repo.url("broken-1.0-py3-none-any.whl"),
                         "compatibility": linux},
                ]))
                spec = {"inst1": {"gen_args": ["--real-venv", "--restart-command", "true"],
                                  "extra_conf": f"[Restore]\nPluginRepository={repo.url('plugins.json')}\n"}}
                # No fetch helper (as a daemon started by hand): the worker downloads.
                env = {"OPBACKUP_FETCH_SOCKET": "/nonexistent/opbackup-fetch.socket"}
                with Fixture(instances=spec, daemon_env=env) as fx, bt.Listener(fx, "root") as lis:
                        run(fx, lis, repo)


def run(fx, lis, repo):
        exp = fx.expected()
        base = fx.basedir()
        site = exp["site_packages"]
        folder = exp["backup_folder"]
        folder_rel = os.path.relpath(folder, os.path.dirname(base))
        printer = bt.uid_of(USER_PRINTER)
        expect(os.path.isfile(os.path.join(exp["venv"], "bin", "pip")), "the venv has no pip")
        installed = exp["plugin_list"][0]
        res = bt.run_backup_ok(fx, name="base.zip")
        src = res.details["path"]
        # Our listener has seen that backup end too: later JobRemoved signals are the restores'.
        lis.wait_for(lambda e: e["signal"] == "JobRemoved" and e["args"][1] == res.job_path, "the backup's JobRemoved",
                     timeout=30)

        # --- known + compatible, incompatible, unknown, already installed; through the client.
        b1 = with_plugins(fx, src, "plugins-1.zip", [
                entry("goodplug", "Good Plug", "https://example.org/goodplug"),
                entry("futureplug", "Future Plug", "https://example.org/futureplug"),
                entry("mysteryplug", "Mystery Plug", "https://example.com/mystery"),
                installed])
        before = dist_infos(site)
        seen = {e["args"][0] for e in lis.signals("JobRemoved")}
        r = fx.ctl("root", "restore", "--yes", b1)
        expect_eq(r.returncode, 0, f"restore with plugins: exit status (stdout: {r.stdout}, stderr: {r.stderr})")
        _, jpath, result, error, details = next_removed(lis, seen)
        expect_eq(result, "done", f"the restore's result ({error})")
        log = "\n".join(line for _, line in bt.job_log(lis, jpath))
        # Installed, into the venv, by the instance user.
        new = dist_infos(site) - before
        expect_eq(new, {"OctoPrint_GoodPlug-1.0.dist-info"}, "dist-infos the restore added to the venv")
        # Downloaded by the instance user too: there is no helper, and the worker is that user.
        expect_eq(repo.requests(), [("/plugins.json", printer), ("/OctoPrint_GoodPlug-1.0-py3-none-any.whl", printer)],
                  "requests to the plugin repository without a fetch helper, and who made them")
        for dirpath, dirnames, filenames in os.walk(os.path.join(site, "OctoPrint_GoodPlug-1.0.dist-info")):
                for n in [dirpath] + [os.path.join(dirpath, f) for f in filenames]:
                        expect_eq(os.stat(n).st_uid, printer, f"owner of {n}")
        expect_eq(os.stat(os.path.join(site, "octoprint_goodplug")).st_uid, printer, "owner of the plugin package")
        expect_eq(sorted(details["installed-plugins"]), ["goodplug"], "installed-plugins in JobRemoved")
        expect_eq(details["failed-plugins"], [], "failed-plugins in JobRemoved")
        unknown = {k: (n, u) for k, n, u in details["unknown-plugins"]}
        expect_eq(sorted(unknown), ["futureplug", "mysteryplug"], "unknown-plugins in JobRemoved")
        expect_eq(unknown["mysteryplug"], ("Mystery Plug", "https://example.com/mystery"), "the unknown plugin's details")
        # The incompatible one is skipped with a log line; the installed one is left alone.
        expect("Plugin futureplug is not compatible with this OctoPrint version" in log,
               f"no log line says futureplug is incompatible:\n{log}")
        expect(f"Plugin {installed['key']} is already installed" in log, f"no log line about {installed['key']}:\n{log}")
        expect("Installed plugin goodplug" in log, f"no log line says goodplug was installed:\n{log}")
        # What the user is told: the unknown plugins with their homepages.
        expect("Mystery Plug: https://example.com/mystery" in r.stdout,
               f"the client does not show the unknown plugin and its homepage:\n{r.stdout}")
        expect("Reinstalled plugin goodplug" in r.stdout, f"the client does not say goodplug was reinstalled:\n{r.stdout}")
        # Persisted as OctoPrint does, and served by GetUnknownPlugins (to users with access too).
        with open(os.path.join(folder, UNKNOWN_FILE)) as f:
                persisted = json.load(f)
        expect_eq(os.stat(os.path.join(folder, UNKNOWN_FILE)).st_mode & 0o777, 0o600, f"mode of {UNKNOWN_FILE}")
        expect_eq(sorted(p["key"] for p in persisted), ["futureplug", "mysteryplug"], UNKNOWN_FILE)
        expect_eq([p for p in persisted if p["key"] == "mysteryplug"],
                  [entry("mysteryplug", "Mystery Plug", "https://example.com/mystery")], f"mysteryplug in {UNKNOWN_FILE}")
        expect_eq(unknown_keys(fx), ["futureplug", "mysteryplug"], "GetUnknownPlugins")
        expect_eq(unknown_keys(fx, USER_ALLOWED), ["futureplug", "mysteryplug"], "GetUnknownPlugins as a user with access")
        r = fx.ctl_ok("root", "unknown-plugins")
        expect("https://example.com/mystery" in r.stdout, f"unknown-plugins does not show the homepage:\n{r.stdout}")
        # One installed since drops out (a dist-info declaring it, as pip would leave).
        di = os.path.join(site, "Mystery_Plug-2.0.dist-info")
        os.mkdir(di)
        with open(os.path.join(di, "METADATA"), "w") as f:
                f.write("Metadata-Version: 2.1\nName: Mystery-Plug\nVersion: 2.0\n")
        with open(os.path.join(di, "entry_points.txt"), "w") as f:
                f.write("[octoprint.plugin]\nmysteryplug = octoprint_mysteryplug\n")
        rt.chown_tree(di)
        expect_eq(unknown_keys(fx), ["futureplug"], "GetUnknownPlugins after mysteryplug was installed")
        # ClearUnknownPlugins.
        fx.ctl_ok("root", "unknown-plugins", "--clear")
        expect_eq(unknown_keys(fx), [], "GetUnknownPlugins after ClearUnknownPlugins")
        expect(not os.path.exists(os.path.join(folder, UNKNOWN_FILE)), f"{UNKNOWN_FILE} is still there after the clear")

        # --- A failing install fails the restore; basedir and everything next to it stay as they were (the
        # venv apart: what pip did there is pip's).
        b2 = with_plugins(fx, src, "plugins-2.zip", [entry("badplug", "Bad Plug", None)])
        with open(os.path.join(base, "config.yaml"), "a") as f:
                f.write("# changed before the failing restore\n")
        state = rt.instance_state(base, skip=["venv"])
        o = rt.restore(fx, lis, file=b2)
        expect_eq(o.result, "failed", f"a restore whose plugin install fails: {o}")
        expect("plugin(s) failed to install" in o.message and "ignore-plugin-errors" in o.message,
               f"the failure does not say a plugin failed and how to go on: {o}")
        expect("Installing plugin badplug failed" in o.log_text(), f"no log line about badplug:\n{o.log_text()}")
        # The passed file was copied into the backup folder for the restore, and taken out again when it
        # failed: only the folder's own times may differ.
        state_now = rt.instance_state(base, skip=["venv"])
        imported = [r for r in state_now if r.startswith(folder_rel + "/") and r not in state]
        expect_eq(imported, [], "what the failed restore left in the backup folder")
        state[folder_rel] = state_now[folder_rel]
        rt.expect_same(state_now, state, "a restore whose plugin install failed changed the instance")
        rt.expect_no_leftovers(base, "after the failed plugin install")

        # --- The same with --ignore-plugin-errors (through the client): restored, badplug reported failed.
        b3 = with_plugins(fx, src, "plugins-3.zip", [entry("badplug", "Bad Plug", None),
                                                     entry("otherplug", "Other Plug", None)])
        seen = {e["args"][0] for e in lis.signals("JobRemoved")}
        r = fx.ctl("root", "restore", "--yes", "--ignore-plugin-errors", b3)
        expect_eq(r.returncode, 0, f"--ignore-plugin-errors: exit status (stdout: {r.stdout}, stderr: {r.stderr})")
        _, jpath, result, error, details = next_removed(lis, seen)
        expect_eq(result, "done", "--ignore-plugin-errors: the result")
        expect_eq(details["failed-plugins"], ["badplug"], "--ignore-plugin-errors: failed-plugins")
        expect_eq(details["installed-plugins"], ["otherplug"], "--ignore-plugin-errors: installed-plugins")
        expect("OctoPrint_OtherPlug-1.0.dist-info" in dist_infos(site), "otherplug is not in the venv")
        with open(os.path.join(base, "config.yaml")) as f:
                expect("changed before the failing restore" not in f.read(), "--ignore-plugin-errors: not restored")

        # --- The repository unreachable: every plugin unknown, the restore succeeds.
        fx.instances["inst1"]["extra_conf"] = f"[Restore]\nPluginRepository=http://127.0.0.1:{closed_port()}/plugins.json\n"
        fx.write_config_file(os.path.join("instances.d", "inst1.conf"), fx.instance_conf("inst1"))
        fx.restart_daemon()
        lis2 = bt.Listener(fx, "root")
        try:
                b4 = with_plugins(fx, src, "plugins-4.zip", [entry("thirdplug", "Third Plug", "https://example.org/third"),
                                                             entry("goodplug", "Good Plug", None)])
                before = dist_infos(site)
                o = rt.restore(fx, lis2, file=b4)
                expect_eq(o.result, "done", f"a restore with the repository unreachable: {o}\n{o.log_text()}")
                expect_eq(details_keys(o, "unknown-plugins"), ["thirdplug"],
                          "unknown-plugins with the repository unreachable (goodplug is installed already)")
                expect_eq(o.details["installed-plugins"], [], "installed-plugins with the repository unreachable")
                expect("Cannot use the plugin repository" in o.log_text(),
                       f"the log does not say the repository could not be used:\n{o.log_text()}")
                expect_eq(dist_infos(site), before, "the venv after a restore with the repository unreachable")
                expect_eq(unknown_keys(fx), ["thirdplug"], "GetUnknownPlugins with the repository unreachable")
                rt.expect_no_leftovers(base, "after the restore with the repository unreachable")
        finally:
                lis2.stop()


def test_plugins_through_helper():
        with Scratch() as scratch, Repository() as repo:
                sock = start_helper(scratch)
                good = repo.wheel("OctoPrint_GoodPlug", "goodplug")
                repo.write("plugins.json", json.dumps([
                        {"id": "goodplug", "title": "Good Plug", "archive": good,
                         "compatibility": {"octoprint": [">=1.4.0,<2"], "os": ["linux"]}}]))
                spec = {"inst1": {"gen_args": ["--real-venv", "--restart-command", "true"],
                                  "extra_conf": f"[Restore]\nPluginRepository={repo.url('plugins.json')}\n"}}
                with Fixture(instances=spec, daemon_env={"OPBACKUP_FETCH_SOCKET": sock}) as fx, \
                     bt.Listener(fx, "root") as lis:
                        site = fx.expected()["site_packages"]
                        res = bt.run_backup_ok(fx, name="base.zip")
                        lis.wait_for(lambda e: e["signal"] == "JobRemoved" and e["args"][1] == res.job_path,
                                     "the backup's JobRemoved", timeout=30)
                        b = with_plugins(fx, res.details["path"], "plugins-helper.zip",
                                         [entry("goodplug", "Good Plug", "https://example.org/goodplug")])
                        o = rt.restore(fx, lis, file=b)
                        expect_eq(o.result, "done", f"a restore with plugins through the fetch helper: {o}\n{o.log_text()}")
                        expect_eq(o.details["installed-plugins"], ["goodplug"], "installed-plugins through the helper")
                        expect("OctoPrint_GoodPlug-1.0.dist-info" in dist_infos(site), "goodplug is not in the venv")
                        # Both downloads made by the helper's user: not root, not the instance's user.
                        expect_eq(repo.requests(), [("/plugins.json", bt.uid_of(HELPER_USER)),
                                                    ("/OctoPrint_GoodPlug-1.0-py3-none-any.whl", bt.uid_of(HELPER_USER))],
                                  "requests to the plugin repository with a fetch helper, and who made them")


def test_without_pip():
        with Repository() as repo:
                good = repo.wheel("OctoPrint_GoodPlug", "goodplug")
                linux = {"octoprint": [">=1.4.0,<2"], "os": ["linux"]}
                repo.write("plugins.json", json.dumps([
                        {"id": "goodplug", "title": "Good Plug", "archive": good, "compatibility": linux}]))
                spec = {"inst1": {"gen_args": ["--restart-command", "true"],
                                  "extra_conf": f"[Restore]\nPluginRepository={repo.url('plugins.json')}\n"}}

                def prepare(fx):
                        os.unlink(os.path.join(fx.instance_root("inst1"), "venv", "bin", "pip"))

                env = {"OPBACKUP_FETCH_SOCKET": "/nonexistent/opbackup-fetch.socket"}
                with Fixture(instances=spec, daemon_env=env, prepare=prepare) as fx, bt.Listener(fx, "root") as lis:
                        run_without_pip(fx, lis, repo)


def run_without_pip(fx, lis, repo):
        exp = fx.expected()
        base = fx.basedir()
        folder = exp["backup_folder"]
        path = fx.instance_path()
        expect_eq(fx.get_property("root", path, IFACE_INSTANCE, "RestoreSupported"), True, "RestoreSupported without pip")
        expect_eq(fx.get_property("root", path, IFACE_INSTANCE, "RestoreUnsupportedReason"), "",
                  "RestoreUnsupportedReason without pip")
        installed = exp["plugin_list"][0]
        res = bt.run_backup_ok(fx, name="base.zip")
        src = res.details["path"]
        lis.wait_for(lambda e: e["signal"] == "JobRemoved" and e["args"][1] == res.job_path, "the backup's JobRemoved",
                     timeout=30)
        needs = with_plugins(fx, src, "needs-pip.zip", [entry("goodplug", "Good Plug", "https://example.org/goodplug"),
                                                        installed])

        # Refused before anything is unpacked: what is missing, and what to do.
        with open(os.path.join(base, "config.yaml"), "a") as f:
                f.write("# changed before the restores\n")
        state = rt.instance_state(base)
        o = rt.restore(fx, lis, file=needs)
        expect_eq(o.result, "failed", f"a restore that needs pip, without pip: {o}")
        for words in ("goodplug", "no pip", "--skip-plugins", "--ignore-plugin-errors", "nothing was changed"):
                expect(words in o.message, f"the failure does not say {words!r}: {o.message}")
        expect("Unpacking" not in o.log_text(), f"the backup was unpacked before the refusal:\n{o.log_text()}")
        expect_eq([p for p, _ in repo.requests()], ["/plugins.json"], "requests to the repository")
        state_now = rt.instance_state(base)
        folder_rel = os.path.relpath(folder, os.path.dirname(base))
        state[folder_rel] = state_now[folder_rel]
        rt.expect_same(state_now, state, "a restore refused for want of pip changed the instance")
        rt.expect_no_leftovers(base, "after the restore refused for want of pip")

        # The client's --skip-plugins: restored (the brief's case: it used to be refused outright).
        r = fx.ctl("root", "restore", "--yes", "--skip-plugins", needs)
        expect_eq(r.returncode, 0, f"restore --skip-plugins without pip: exit status (stdout: {r.stdout}, "
                  f"stderr: {r.stderr})")
        with open(os.path.join(base, "config.yaml")) as f:
                expect("changed before the restores" not in f.read(), "--skip-plugins: not restored")

        # --ignore-plugin-errors: restored, goodplug reported failed, nothing downloaded.
        o = rt.restore(fx, lis, file=needs, options={"ignore-plugin-errors": True})
        expect_eq(o.result, "done", f"--ignore-plugin-errors without pip: {o}\n{o.log_text()}")
        expect_eq(o.details["failed-plugins"], ["goodplug"], "failed-plugins without pip")
        expect_eq(o.details["installed-plugins"], [], "installed-plugins without pip")
        expect("no pip" in o.log_text(), f"the log does not say why goodplug was not installed:\n{o.log_text()}")
        expect(all(p == "/plugins.json" for p, _ in repo.requests()), f"downloads without pip: {repo.requests()}")

        # Plugins that need no pip: installed already, or unknown to the repository.
        nothing = with_plugins(fx, src, "needs-nothing.zip", [entry("mysteryplug", "Mystery Plug", None), installed])
        o = rt.restore(fx, lis, file=nothing)
        expect_eq(o.result, "done", f"a restore whose plugins need no pip, without pip: {o}\n{o.log_text()}")
        expect_eq(details_keys(o, "unknown-plugins"), ["mysteryplug"], "unknown-plugins without pip")


fixture.main(globals())
