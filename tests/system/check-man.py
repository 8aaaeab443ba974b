#!/usr/bin/python3
# The manual pages: each renders with `man --warnings -l` without a single warning (groff warnings go to
# stderr), and together they document every command and option of opbackupctl, every exit code, every
# configuration key, every D-Bus interface, method, property, signal and error (org.opbackup.backup1(5)),
# every polkit action and every unit — checked against the sources, so a new option without
# documentation fails here. opbackupd(8) describes the archive format and the restore, and no file of the
# repository refers to a specification outside it.
#
#   check-man.py SOURCE_DIR OPBACKUPCTL        exit 0 ok, 1 fail, 77 skip (no man)

import glob
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET


API_PAGE = "org.opbackup.backup1(5)"
API_PAGE_FILE = "org.opbackup.backup1.5"


def render_warnings(page):
        env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8", MAN_KEEP_STDERR="1")
        r = subprocess.run(["man", "--warnings", "-l", page], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, env=env)
        out = r.stderr.strip()
        if r.returncode != 0:
                out = f"exit {r.returncode}\n{out}"
        if not r.stdout.strip():
                out += "\nrendered nothing"
        return out.strip()


def plain(roff):
        """The page's text, as a reader searches it: escapes of dashes and fonts undone."""
        text = roff.replace("\\-", "-").replace("\\(aq", "'").replace("\\(dq", '"')
        return re.sub(r"\\f[BIRP]", "", text)


def read(path):
        with open(path) as f:
                return f.read()


def documented(problems, page_name, text, items, what, form="{}"):
        for item in sorted(set(items)):
                if form.format(item) not in text:
                        problems.append(f"{page_name} does not document {what} {form.format(item)}")


def main():
        if len(sys.argv) != 3:
                print("usage: check-man.py SOURCE_DIR OPBACKUPCTL", file=sys.stderr)
                return 2
        src, ctl = sys.argv[1:]
        if not shutil.which("man"):
                print("skip: man is not installed (package man-db)")
                return 77
        problems = []
        pages = sorted(glob.glob(os.path.join(src, "man", "*.[1-8]")))
        for page in pages:
                w = render_warnings(page)
                if w:
                        problems.append(f"man --warnings -l {os.path.basename(page)}:\n{w}")
                else:
                        print(f"ok {os.path.basename(page)} renders without warnings")

        if not os.path.isfile(os.path.join(src, "man", API_PAGE_FILE)):
                problems.append(f"man/{API_PAGE_FILE} is missing")
                return report(problems)
        api_page = plain(read(os.path.join(src, "man", API_PAGE_FILE)))
        ctl_page = plain(read(os.path.join(src, "man", "opbackupctl.1")))
        conf_page = plain(read(os.path.join(src, "man", "opbackupd.conf.5")))
        daemon_page = plain(read(os.path.join(src, "man", "opbackupd.8")))

        # opbackupctl: commands from its --help, long options from every option table.
        help_text = subprocess.run([ctl, "--help"], stdout=subprocess.PIPE, text=True, check=True).stdout
        commands = re.findall(r"^  ([a-z][a-z-]+)", help_text.split("Commands:")[1].split("Options:")[0], re.M)
        for cmd in commands:
                # Each command is the tag of a .TP paragraph in COMMANDS.
                if not re.search(rf'^\.TP\n\.B[RI]? "?{re.escape(cmd)}\b', ctl_page, re.M):
                        problems.append(f"opbackupctl(1) does not document the command {cmd}")
        options = []
        for f in glob.glob(os.path.join(src, "client", "*.c")):
                options += re.findall(r'\{ "([a-z][a-z-]*)", (?:no|required)_argument', read(f))
        documented(problems, "opbackupctl(1)", ctl_page, options, "the option", "--{}")
        for code in range(6):
                if not re.search(rf"^\.B {code}$", ctl_page, re.M):
                        problems.append(f"opbackupctl(1) does not document exit status {code}")

        # Configuration keys, from config.c's key table and [Daemon].
        config_c = read(os.path.join(src, "service", "instance", "config.c"))
        keys = re.findall(r'KEY\("[A-Za-z]+", "([A-Za-z]+)"', config_c) + ["IdleTimeoutSec"]
        documented(problems, "opbackupd.conf(5)", conf_page, keys, "the key", "{}=")
        sections = re.findall(r'KEY\("([A-Za-z]+)", ', config_c)
        documented(problems, "opbackupd.conf(5)", conf_page, sections, "the section", ".SH [{}]")

        # D-Bus API (org.opbackup.backup1(5); test-introspection compares it with the daemon, member by
        # member and argument by argument), errors, polkit actions, units.
        api = ET.fromstring(read(os.path.join(src, "dbus", "org.opbackup.backup1.xml")))
        for iface in api.findall("interface"):
                documented(problems, API_PAGE, api_page, [iface.get("name")], "the interface")
                members = [m.get("name") for kind in ("method", "property", "signal") for m in iface.findall(kind)]
                documented(problems, API_PAGE, api_page, members, "the member")
        errors = re.findall(r'^#define BUS_ERROR_\w+ "([^"]+)"', read(os.path.join(src, "common", "errors.h")), re.M)
        documented(problems, API_PAGE, api_page, errors, "the error")
        policy = ET.fromstring(read(os.path.join(src, "polkit", "org.opbackup.backup1.policy")))
        actions = [a.get("id") for a in policy.findall("action")]
        documented(problems, "opbackupd(8)", daemon_page, actions, "the polkit action")
        documented(problems, API_PAGE, api_page, actions, "the polkit action")
        for page_name, text in (("opbackupd(8)", daemon_page), ("opbackupctl(1)", ctl_page),
                                ("opbackupd.conf(5)", conf_page)):
                documented(problems, page_name, text, ["org.opbackup.backup1 (5)"], "a pointer to", ".BR {}")
        for section in ("ARCHIVE FORMAT", "RESTORE", "D-BUS INTERFACES"):
                if not re.search(rf"^\.SH \"?{section}\"?$", daemon_page, re.M):
                        problems.append(f"opbackupd(8) has no section {section}")
        units = [os.path.basename(u).removesuffix(".in") for u in glob.glob(os.path.join(src, "systemd", "*"))
                 if re.search(r"\.(service|socket|timer)(\.in)?$", u)]
        documented(problems, "opbackupd(8)", daemon_page, units, "the unit")

        problems += outside_references(src)
        if not problems:
                print(f"ok {len(commands)} commands, {len(set(options))} options, {len(set(keys))} keys, "
                      f"the D-Bus API, {len(errors)} errors, polkit actions and {len(units)} units are documented")
        return report(problems)


def report(problems):
        for p in problems:
                print(f"FAIL {p}")
        return 1 if problems else 0


def outside_references(src):
        """The repository's documentation stands alone: no file refers to the project's external
        specification by its name; what the code cited there is in the manual pages now."""
        problems = []
        pattern = re.compile(r"\bSPEC(?:\.md\b| §|'s)")
        for root, dirs, files in os.walk(src):
                dirs[:] = [d for d in dirs if not d.startswith(".") and d != "build" and
                           not os.path.isfile(os.path.join(root, d, "meson-private", "coredata.dat"))]
                for f in files:
                        path = os.path.join(root, f)
                        try:
                                text = read(path)
                        except (UnicodeDecodeError, OSError):
                                continue
                        for n, line in enumerate(text.splitlines(), 1):
                                if pattern.search(line):
                                        problems.append(f"{os.path.relpath(path, src)}:{n} refers to a specification "
                                                        f"outside the repository: {line.strip()}")
        return problems


if __name__ == "__main__":
        sys.exit(main())
