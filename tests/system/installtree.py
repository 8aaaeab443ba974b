# Shared by the system tests: `meson install --destdir` of a build into a temporary folder, and the
# build's directory options. Standard library only.

import json
import os
import subprocess


def build_options(build_dir):
        """{option name: value} of a configured build (prefix, bindir, datadir, ...)."""
        out = subprocess.run(["meson", "introspect", "--buildoptions", build_dir], check=True,
                             stdout=subprocess.PIPE, text=True).stdout
        return {o["name"]: o["value"] for o in json.loads(out)}


def install(build_dir, destdir):
        """Installs the (already built) build into destdir; returns the installed files as absolute paths
        of the target system ("/usr/bin/opbackupctl"), sorted."""
        env = dict(os.environ)
        env.pop("DESTDIR", None)
        subprocess.run(["meson", "install", "-C", build_dir, "--destdir", destdir, "--no-rebuild", "--quiet"],
                       check=True, env=env, stdout=subprocess.DEVNULL)
        files = []
        for root, dirs, names in os.walk(destdir):
                for n in names:
                        files.append("/" + os.path.relpath(os.path.join(root, n), destdir))
        return sorted(files)


def in_tree(destdir, path):
        return os.path.join(destdir, path.lstrip("/"))
