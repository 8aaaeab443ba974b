#!/usr/bin/python3
# `meson install --destdir` (README, "Installing"): every expected file (installed-files.txt) at its expected
# path and nothing else, for the build under test (whatever its --prefix: then everything must be under it),
# and for a second build of the same sources configured with --prefix=/usr, the way a Debian package is built,
# where the paths must be those Debian's systemd (system and user managers), dbus-daemon, polkitd and desktops
# (XDG autostart) read. Also: the units and the D-Bus activation file name the installed binaries, not build or
# source paths.
#
#   check-install.py BUILD_DIR SOURCE_DIR        exit 0 ok, 1 fail

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import installtree  # noqa: E402

# Where Debian 12's D-Bus and polkit look (dbus-daemon's system.conf, polkitd's built-in paths).
DEBIAN_DIRS = {
        "dbus system services": "/usr/share/dbus-1/system-services",
        "dbus system policy": "/usr/share/dbus-1/system.d",
        "polkit actions": "/usr/share/polkit-1/actions",
        "polkit rules": "/usr/share/polkit-1/rules.d",
        "bash completion": "/usr/share/bash-completion/completions",
        "XDG autostart": "/etc/xdg/autostart",
}


def pkgconfig_systemd(var):
        r = subprocess.run(["pkg-config", f"--variable={var}", "systemd"], stdout=subprocess.PIPE, text=True)
        return r.stdout.strip() if r.returncode == 0 else ""


def has_cockpit_page(build_dir):
        """Whether the build makes the Cockpit page (-Dcockpit=auto without node or its npm packages does not)."""
        with open(os.path.join(build_dir, "build.ninja")) as f:
                return re.search(r"^build client/cockpit/index\.js[ :]", f.read(), re.M) is not None


def expected(options, cockpit=True):
        prefix = options["prefix"]

        def under(d):
                return d if os.path.isabs(d) else os.path.join(prefix, d)

        dirs = {k: under(options[k]) for k in ("bindir", "libexecdir", "datadir", "mandir", "sysconfdir")}
        unitdir, sysusersdir = options.get("systemunitdir", ""), options.get("sysusersdir", "")
        userunitdir = options.get("userunitdir", "")
        if prefix == "/usr":
                unitdir = unitdir or pkgconfig_systemd("systemdsystemunitdir")
                userunitdir = userunitdir or pkgconfig_systemd("systemduserunitdir")
                sysusersdir = sysusersdir or pkgconfig_systemd("sysusersdir")
        dirs["unitdir"] = unitdir or os.path.join(prefix, "lib", "systemd", "system")
        dirs["userunitdir"] = userunitdir or os.path.join(prefix, "lib", "systemd", "user")
        dirs["sysusersdir"] = sysusersdir or os.path.join(prefix, "lib", "sysusers.d")
        dirs["xdgautostartdir"] = under(options.get("xdgautostartdir") or
                                        os.path.join(options["sysconfdir"], "xdg", "autostart"))
        with open(os.path.join(HERE, "installed-files.txt")) as f:
                lines = [line.strip() for line in f if line.strip() and not line.startswith("#")]
        if not cockpit:
                lines = [line for line in lines if not line.startswith("{datadir}/cockpit/")]
        return sorted(os.path.normpath(line.format(**dirs)) for line in lines), dirs


def systemd_unit_paths(user=False):
        r = subprocess.run(["systemd-analyze"] + (["--user"] if user else []) + ["unit-paths"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        return r.stdout.split() if r.returncode == 0 else None


def desktop_file_problems(label, f, path, got):
        """An XDG desktop file (opbackup-notify's autostart file): valid, and running an installed binary."""
        problems = []
        with open(path) as fh:
                text = fh.read()
        for line in text.splitlines():
                if line.startswith(("Exec=", "TryExec=")):
                        exe = line.split("=", 1)[1].split()[0]
                        if exe not in got:
                                problems.append(f"{label}: {f} runs {exe}, which is not installed")
        if re.search(r"@[a-z_]+@", text):
                problems.append(f"{label}: {f} has an unsubstituted @variable@")
        if shutil.which("desktop-file-validate"):
                r = subprocess.run(["desktop-file-validate", path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True)
                if r.returncode != 0 or r.stdout.strip():
                        problems.append(f"{label}: desktop-file-validate {f}: {r.stdout.strip()}")
        else:
                print(f"# {label}: desktop-file-validate is not installed (package desktop-file-utils): {f} not validated")
        return problems


def check_tree(label, build_dir, problems):
        options = installtree.build_options(build_dir)
        cockpit = has_cockpit_page(build_dir)
        want, dirs = expected(options, cockpit)
        dest = tempfile.mkdtemp(prefix="opbackup-install-")
        try:
                got = installtree.install(build_dir, dest)
                for f in sorted(set(want) - set(got)):
                        problems.append(f"{label}: {f} is not installed")
                for f in sorted(set(got) - set(want)):
                        problems.append(f"{label}: {f} is installed but not expected (add it to installed-files.txt)")
                prefix = options["prefix"]
                if prefix != "/usr":
                        for f in got:
                                if not f.startswith(prefix.rstrip("/") + "/"):
                                        problems.append(f"{label}: {f} is outside --prefix={prefix}")
                # What the units and the activation file run is where the binaries went.
                for f in got:
                        if f.endswith((".service", ".socket", ".timer")):
                                with open(installtree.in_tree(dest, f)) as fh:
                                        text = fh.read()
                                for line in text.splitlines():
                                        if line.startswith(("ExecStart=", "Exec=")):
                                                exe = line.split("=", 1)[1].split()[0]
                                                if exe not in got:
                                                        problems.append(f"{label}: {f} runs {exe}, which is not "
                                                                        "installed")
                                if re.search(r"@[a-z_]+@", text):
                                        problems.append(f"{label}: {f} has an unsubstituted @variable@")
                        if f.endswith(".desktop"):
                                problems += desktop_file_problems(label, f, installtree.in_tree(dest, f), got)
                # The Cockpit page is shown where the service's activation file is: the one installed.
                manifest = os.path.join(dirs["datadir"], "cockpit", "opbackup", "manifest.json")
                if manifest in got:
                        with open(installtree.in_tree(dest, manifest)) as fh:
                                condition = json.load(fh)["conditions"][0]["path-exists"]
                        if condition not in got:
                                problems.append(f"{label}: the Cockpit page's condition {condition} is not an "
                                                "installed file")
                print(f"# {label}: prefix {prefix}, {len(got)} files installed")
                for f in got:
                        print(f"#   {f}")
                return dirs
        finally:
                shutil.rmtree(dest, ignore_errors=True)


def check_debian_dirs(dirs, problems):
        paths = {
                "dbus system services": os.path.join(dirs["datadir"], "dbus-1", "system-services"),
                "dbus system policy": os.path.join(dirs["datadir"], "dbus-1", "system.d"),
                "polkit actions": os.path.join(dirs["datadir"], "polkit-1", "actions"),
                "polkit rules": os.path.join(dirs["datadir"], "polkit-1", "rules.d"),
                "bash completion": os.path.join(dirs["datadir"], "bash-completion", "completions"),
                "XDG autostart": dirs["xdgautostartdir"],
        }
        for what, path in paths.items():
                if path != DEBIAN_DIRS[what]:
                        problems.append(f"prefix /usr: {what} go to {path}, Debian reads {DEBIAN_DIRS[what]}")
        search = systemd_unit_paths()
        if search is not None and dirs["unitdir"] not in search:
                problems.append(f"prefix /usr: units go to {dirs['unitdir']}, not a folder systemd reads ({search})")
        search = systemd_unit_paths(user=True)
        if search is not None and dirs["userunitdir"] not in search:
                problems.append(f"prefix /usr: user units go to {dirs['userunitdir']}, not a folder systemd's user "
                                f"manager reads ({search})")


def main():
        if len(sys.argv) != 3:
                print("usage: check-install.py BUILD_DIR SOURCE_DIR", file=sys.stderr)
                return 2
        build_dir, source_dir = sys.argv[1:]
        problems = []
        check_tree("build under test", build_dir, problems)

        usr_build = tempfile.mkdtemp(prefix="opbackup-build-usr-")
        try:
                subprocess.run(["meson", "setup", "--prefix=/usr", usr_build, source_dir], check=True,
                               stdout=subprocess.DEVNULL)
                targets = ["service/opbackupd", "service/opbackup-fetch", "client/opbackupctl",
                           "client/notify/opbackup-notify"]
                if has_cockpit_page(usr_build):
                        targets.append("client/cockpit/index.js")
                subprocess.run(["ninja", "-C", usr_build] + targets, check=True, stdout=subprocess.DEVNULL)
                dirs = check_tree("--prefix=/usr", usr_build, problems)
                check_debian_dirs(dirs, problems)
        finally:
                shutil.rmtree(usr_build, ignore_errors=True)

        for p in problems:
                print(f"FAIL {p}")
        if not problems:
                print("ok every expected file, and nothing else, at its expected path")
        return 1 if problems else 0


if __name__ == "__main__":
        sys.exit(main())
