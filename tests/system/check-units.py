#!/usr/bin/python3
# The systemd units as installed (opbackupd(8), SYSTEMD UNITS): `systemd-analyze security --offline=yes` of
# each service, with opbackupd.service at an exposure of at most 2.0 (and the others too), and
# `systemd-analyze verify` clean for every unit — on the files `meson install --destdir` puts in place, with
# nothing substituted. verify runs with --root= on a copy of that tree plus the host's own units
# (sysinit.target, dbus.socket, ...), and with MANPATH pointing at the installed man pages (it checks
# Documentation=); user units (opbackup-notify.service) with `verify --user`, which has no --root.
#
#   check-units.py BUILD_DIR        prints the exposure of each service; exit 0 ok, 1 fail, 77 skip

import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import installtree  # noqa: E402

MAX_EXPOSURE = 2.0
UNIT_SUFFIXES = (".service", ".socket", ".timer")
HOST_UNIT_DIRS = ("/lib/systemd/system", "/usr/lib/systemd/system")


def exposure(unit_file):
        r = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager", unit_file],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", r.stdout)
        if not m:
                raise AssertionError(f"systemd-analyze security printed no exposure for {unit_file}:\n{r.stdout}")
        return float(m.group(1)), r.stdout


def verify(dest, units):
        root = tempfile.mkdtemp(prefix="opbackup-verify-")
        try:
                shutil.copytree(dest, root, dirs_exist_ok=True, symlinks=True)
                for d in HOST_UNIT_DIRS:
                        if os.path.isdir(d) and not os.path.islink(d):
                                target = installtree.in_tree(root, d)
                                os.makedirs(target, exist_ok=True)
                                for n in os.listdir(d):
                                        if not os.path.lexists(os.path.join(target, n)):
                                                src = os.path.join(d, n)
                                                if os.path.islink(src):
                                                        os.symlink(os.readlink(src), os.path.join(target, n))
                                                elif os.path.isfile(src):
                                                        shutil.copyfile(src, os.path.join(target, n))
                mandirs = [os.path.join(r, d) for r, ds, _ in os.walk(root) for d in ds if d == "man"
                           and os.path.isdir(os.path.join(r, d, "man8"))]
                env = dict(os.environ, MANPATH=":".join(mandirs), SYSTEMD_LOG_COLOR="0")
                r = subprocess.run(["systemd-analyze", "verify", f"--root={root}"] +
                                   [installtree.in_tree(root, u) for u in units],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
                return r.returncode, r.stdout.strip()
        finally:
                shutil.rmtree(root, ignore_errors=True)


def verify_user(dest, unit, files):
        """`systemd-analyze verify --user` of a user unit (it has no --root): a copy whose Exec lines name the
        binaries of the installed tree, with the installed man pages for Documentation=."""
        tmp = tempfile.mkdtemp(prefix="opbackup-verify-user-")
        try:
                runtime = os.path.join(tmp, "runtime")
                os.mkdir(runtime, 0o700)
                with open(installtree.in_tree(dest, unit)) as f:
                        text = f.read()
                for exe in files:
                        if "/bin/" in exe:
                                text = text.replace("=" + exe, "=" + installtree.in_tree(dest, exe))
                copy = os.path.join(tmp, os.path.basename(unit))
                with open(copy, "w") as f:
                        f.write(text)
                mandirs = [os.path.join(r, d) for r, ds, _ in os.walk(dest) for d in ds if d == "man"]
                env = dict(os.environ, MANPATH=":".join(mandirs), XDG_RUNTIME_DIR=runtime, SYSTEMD_LOG_COLOR="0")
                r = subprocess.run(["systemd-analyze", "verify", "--user", copy], stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, env=env)
                return r.returncode, r.stdout.strip()
        finally:
                shutil.rmtree(tmp, ignore_errors=True)


def main():
        if len(sys.argv) != 2:
                print("usage: check-units.py BUILD_DIR", file=sys.stderr)
                return 2
        if not shutil.which("systemd-analyze"):
                print("skip: systemd-analyze is not installed (package systemd)")
                return 77
        dest = tempfile.mkdtemp(prefix="opbackup-units-")
        failed = False
        try:
                files = installtree.install(sys.argv[1], dest)
                units = [f for f in files if "/systemd/system/" in f and f.endswith(UNIT_SUFFIXES)]
                if not any(u.endswith("/opbackupd.service") for u in units):
                        print(f"FAIL: opbackupd.service is not installed (installed: {files})")
                        return 1
                for u in units:
                        if not u.endswith(".service"):
                                continue
                        value, text = exposure(installtree.in_tree(dest, u))
                        ok = value <= MAX_EXPOSURE
                        failed |= not ok
                        print(f"{'ok' if ok else 'FAIL'} {os.path.basename(u)}: exposure {value:.1f} "
                              f"(at most {MAX_EXPOSURE})")
                        if not ok or os.path.basename(u) == "opbackupd.service":
                                print("\n".join("    " + line for line in text.splitlines()
                                                if line.startswith("✗") or "Overall" in line))
                rc, text = verify(dest, units)
                names = " ".join(os.path.basename(u) for u in units)
                if rc != 0 or text:
                        failed = True
                        print(f"FAIL systemd-analyze verify {names} (exit {rc}):\n{text}")
                else:
                        print(f"ok systemd-analyze verify {names}: clean")
                for u in [f for f in files if "/systemd/user/" in f and f.endswith(UNIT_SUFFIXES)]:
                        rc, text = verify_user(dest, u, files)
                        if rc != 0 or text:
                                failed = True
                                print(f"FAIL systemd-analyze verify --user {os.path.basename(u)} (exit {rc}):\n{text}")
                        else:
                                print(f"ok systemd-analyze verify --user {os.path.basename(u)}: clean")
        finally:
                shutil.rmtree(dest, ignore_errors=True)
        return 1 if failed else 0


if __name__ == "__main__":
        sys.exit(main())
