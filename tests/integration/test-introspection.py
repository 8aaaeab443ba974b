#!/usr/bin/python3
# The daemon's introspection of its org.opbackup.backup1.* interfaces equals the API contract in
# dbus/org.opbackup.backup1.xml: methods with their ordered arguments (name, type, direction), properties
# (type, access, annotations), signals with their arguments. Member order does not matter; the XML's
# <doc:doc> elements are documentation, not API, and are not compared.
#
# Job objects exist only while a job runs: the Job interface is compared on a backup job (of a 200 MiB
# instance if the tiny sample's job is over before we look). While CreateBackup answers NotSupported, only
# Manager and Instance are compared, and test_job reports "skip" saying it did not compare Job.
#
# test_documented: everything the daemon introspects is documented, in the XML (a <doc:doc> for every
# interface, method, argument, property and signal, a polkit permission for every method, every error of
# common/errors.h among the documented errors) and in org.opbackup.backup1(5) (its synopsis lists exactly
# the daemon's members with their arguments, types and annotations; each member has a description; each
# method is in AUTHORIZATION; each error in ERRORS). A member added to the daemon without documentation
# fails here; the test also proves that on a made-up member.

import copy
import os
import re
import sys
import time
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture  # noqa: E402
from fixture import (Fixture, DBusError, Skip, expect, expect_eq, MANAGER_PATH, IFACE_MANAGER,  # noqa: E402
                     IFACE_INSTANCE, IFACE_JOB, parse_interfaces, api_xml)

NOT_SUPPORTED = "org.freedesktop.DBus.Error.NotSupported"
DOC = "{http://www.freedesktop.org/dbus/1.0/doc.dtd}"
API_PAGE = os.path.join(fixture.SOURCE_ROOT, "man", "org.opbackup.backup1.5")
ERRORS_H = os.path.join(fixture.SOURCE_ROOT, "common", "errors.h")
KINDS = (("methods", "method"), ("properties", "property"), ("signals", "signal"))

# Run as the instance user by each backup: keeps a job (and its object) there for seconds.
SLOW_HOOK = "#!/bin/sh\ncat >/dev/null\nsleep 5\necho '[]'\n"


def diff_interface(name, got, want):
        """Human-readable differences between two parsed interfaces."""
        out = []
        for kind in ("methods", "properties", "signals"):
                g, w = got[kind], want[kind]
                for member in sorted(set(w) - set(g)):
                        out.append(f"{name}: {kind[:-1]} {member} is missing")
                for member in sorted(set(g) - set(w)):
                        out.append(f"{name}: {kind[:-1]} {member} is not in the XML")
                for member in sorted(set(g) & set(w)):
                        if g[member] != w[member]:
                                out.append(f"{name}: {kind[:-1]} {member}: daemon {g[member]}, XML {w[member]}")
        return out


def compare(fx, path, interfaces, got=None):
        if got is None:
                got = parse_interfaces(fx.introspect("root", path))
        want = parse_interfaces(api_xml())
        problems = []
        for iface in interfaces:
                if iface not in got:
                        problems.append(f"{path} does not introspect {iface}")
                        continue
                problems += diff_interface(iface, got[iface], want[iface])
                n = want[iface]
                print(f"# compared {iface} on {path}: {len(n['methods'])} methods, "
                      f"{len(n['properties'])} properties, {len(n['signals'])} signals")
        return problems


def introspect_job(fx, job):
        """The parsed interfaces of the job object, or None when the job is over (object gone)."""
        try:
                got = parse_interfaces(fx.introspect("root", job))
        except DBusError as e:
                print(f"# introspecting {job}: {e.name}")
                return None
        return got if IFACE_JOB in got else None


def test_manager_and_instance():
        with Fixture() as fx:
                problems = compare(fx, MANAGER_PATH, [IFACE_MANAGER])
                problems += compare(fx, fx.instance_path("inst1"), [IFACE_INSTANCE])
                if problems:
                        raise AssertionError("introspection differs from dbus/org.opbackup.backup1.xml:\n  " +
                                             "\n  ".join(problems))


def create_job(fx, name):
        _, job = fx.call("root", fx.instance_path(name), IFACE_INSTANCE, "CreateBackup", "asa{sv}", [],
                         {"name": f"introspection-{name}.zip"})
        return job


def test_job():
        with Fixture() as fx:
                try:
                        job = create_job(fx, "inst1")
                except DBusError as e:
                        if e.name != NOT_SUPPORTED:
                                raise
                        raise Skip(f"Job interface NOT compared: CreateBackup answers {e.name} ({e.message}); "
                                   "only Manager and Instance were compared (test_manager_and_instance)")
                expect(job.startswith(MANAGER_PATH + "/job/"), f"job path {job} is not under {MANAGER_PATH}/job/")
                got = introspect_job(fx, job)
                if got is None:
                        # The tiny sample's job was already done: again with 200 MiB of data, which keeps a
                        # backup job alive for a while even on a fast machine.
                        print("# the tiny sample's job was over before it could be introspected; "
                              "trying a 200 MiB instance")
                        fx.add_instance("big", {"size": "200M"})
                        fx.restart_daemon()
                        job = create_job(fx, "big")
                        start = time.monotonic()
                        got = introspect_job(fx, job)
                        expect(got is not None, f"job {job} was gone {time.monotonic() - start:.2f} s after "
                                                "CreateBackup, before it could be introspected")
                        try:
                                fx.call("root", job, IFACE_JOB, "Cancel", "")
                        except DBusError as e:
                                print(f"# cancelling {job}: {e}")
                problems = compare(fx, job, [IFACE_JOB], got)
                if problems:
                        raise AssertionError("Job introspection differs from dbus/org.opbackup.backup1.xml:\n  " +
                                             "\n  ".join(problems))



# ---------------------------------------------------------------------------------------------------------
# Documentation

def read(path):
        with open(path) as f:
                return f.read()


def error_names():
        """The daemon's own errors, from common/errors.h."""
        return set(re.findall(r'^#define BUS_ERROR_\w+ "([^"]+)"', read(ERRORS_H), re.M))


def doc_of(el):
        """The text of an element's own <doc:doc> (summary and description), "" without one."""
        d = el.find(DOC + "doc") if el is not None else None
        return " ".join("".join(d.itertext()).split()) if d is not None else ""


def xml_doc_problems(got, xml_text):
        """What the daemon's interfaces (got, as parse_interfaces() reads them) lack in the XML's docs."""
        root = ET.fromstring(xml_text)
        problems = []
        for iface_name, members in sorted(got.items()):
                iface = root.find(f"interface[@name='{iface_name}']")
                if iface is None or not doc_of(iface):
                        problems.append(f"interface {iface_name} has no <doc:doc> in the XML")
                        continue
                for kind, tag in KINDS:
                        for name in sorted(members[kind]):
                                el = iface.find(f"{tag}[@name='{name}']")
                                if not doc_of(el):
                                        problems.append(f"{tag} {iface_name}.{name} has no <doc:doc> in the XML")
                                        continue
                                if tag == "method" and not (el.findtext(f"{DOC}doc/{DOC}permission") or "").strip():
                                        problems.append(f"method {iface_name}.{name} has no <doc:permission> "
                                                        "(its polkit action) in the XML")
                                for arg in el.findall("arg"):
                                        if not doc_of(arg):
                                                problems.append(f"argument {arg.get('name')} of {tag} "
                                                                f"{iface_name}.{name} has no <doc:doc> in the XML")
        node_errors = root.findall(f"{DOC}doc/{DOC}errors/{DOC}error")
        documented = {e.get("name") for e in node_errors if " ".join("".join(e.itertext()).split())}
        for e in sorted(error_names() - documented):
                problems.append(f"error {e} (common/errors.h) is not documented in the XML's <doc:errors>")
        for e in sorted({e for e in documented if e.startswith("org.opbackup.")} - error_names()):
                problems.append(f"the XML documents the error {e}, which common/errors.h does not have")
        for e in root.iter(f"{DOC}error"):
                if e.get("name") not in documented:
                        problems.append(f"the XML names the error {e.get('name')} where a method can return it, "
                                        "but does not describe it in the node's <doc:errors>")
        return problems


def roff_plain(text):
        return re.sub(r"\\f[BIRP]", "", text.replace("\\-", "-").replace("\\(dq", '"').replace("\\e", "\\"))


def man_sections(text):
        """{.SH title: its lines}."""
        out, title = {}, None
        for line in roff_plain(text).splitlines():
                m = re.match(r'^\.SH "?([^"]*)"?$', line)
                if m:
                        title = m.group(1)
                        out[title] = []
                elif title is not None:
                        out[title].append(line)
        return out


def parse_synopsis(lines):
        """The interfaces of the code-like synopses (.nf blocks) in LINES, as parse_interfaces() reads XML;
        plus, under "described", the member names each .SS Methods/Properties/Signals describes."""
        out, iface, kind, stmt, annotations = {}, None, None, "", {}
        in_block = False
        for line in lines:
                if line.startswith(".nf"):
                        in_block = True
                        continue
                if line.startswith(".fi"):
                        in_block = False
                        continue
                if not in_block:
                        continue
                m = re.match(r"^\s*interface (\S+) \{$", line)
                if m:
                        iface = out.setdefault(m.group(1), {"methods": {}, "properties": {}, "signals": {}})
                        kind = None
                        continue
                if iface is None:
                        continue
                if re.match(r"^\s*};$", line):
                        iface = None
                        continue
                m = re.match(r"^\s*(methods|properties|signals):$", line)
                if m:
                        kind = m.group(1)
                        continue
                m = re.match(r'^\s*@(\S+)\("([^"]*)"\)$', line)
                if m:
                        annotations[m.group(1)] = m.group(2)
                        continue
                stmt += " " + line.strip()
                if not stmt.endswith(";"):
                        continue
                stmt, text = "", stmt.strip()
                if kind == "properties":
                        m = re.match(r"^readonly (\S+) (\w+) = .*;$", text)
                        if m:
                                iface["properties"][m.group(2)] = {"type": m.group(1), "access": "read",
                                                                   "annotations": annotations}
                else:
                        m = re.match(r"^(\w+)\((.*)\);$", text)
                        if m:
                                args = [a.split() for a in m.group(2).split(",") if a.strip()]
                                if kind == "methods":
                                        args = [(a[2], a[1], a[0]) if len(a) == 3 else tuple(a) for a in args]
                                        iface["methods"][m.group(1)] = {"args": args, "annotations": {}}
                                else:
                                        args = [(a[1], a[0]) if len(a) == 2 else tuple(a) for a in args]
                                        iface["signals"][m.group(1)] = {"args": args, "annotations": {}}
                annotations = {}
        described, sub = {"methods": set(), "properties": set(), "signals": set()}, None
        previous = ""
        for line in lines:
                m = re.match(r"^\.SS (\w+)$", line)
                if m:
                        sub = m.group(1).lower() if m.group(1).lower() in described else None
                elif sub and previous in (".TP", ".TQ"):
                        m = re.match(r"^\.B (\w+)(\(\))?$", line)
                        if m:
                                described[sub].add(m.group(1))
                previous = line.strip()
        return out, described


def man_doc_problems(got, page_text):
        """What the daemon's interfaces (got) lack in org.opbackup.backup1(5), or it has that they lack."""
        sections = man_sections(page_text)
        problems = []
        seen = set()
        for title, lines in sections.items():
                synopsis, described = parse_synopsis(lines)
                for iface_name, want in synopsis.items():
                        if not iface_name.startswith("org.opbackup.backup1."):
                                continue
                        seen.add(iface_name)
                        if iface_name not in got:
                                problems.append(f"org.opbackup.backup1(5) shows an interface {iface_name} the daemon "
                                                "does not have")
                                continue
                        problems += [p.replace("XML", "org.opbackup.backup1(5)")
                                     for p in diff_interface(iface_name, got[iface_name], want)]
                        for kind, tag in KINDS:
                                for name in sorted(set(got[iface_name][kind]) - described[kind]):
                                        problems.append(f"org.opbackup.backup1(5), {title}: no description of the "
                                                        f"{tag} {iface_name}.{name}")
        for iface_name in sorted(set(got) - seen):
                problems.append(f"org.opbackup.backup1(5) has no synopsis of {iface_name}")
        authorization = "\n".join(sections.get("AUTHORIZATION", []))
        for iface_name in sorted(got):
                for name in sorted(got[iface_name]["methods"]):
                        if f"{name}()" not in authorization:
                                problems.append(f"org.opbackup.backup1(5), AUTHORIZATION: nothing about {name}()")
        errors = "\n".join(sections.get("ERRORS", []))
        for e in sorted(error_names()):
                if not re.search(rf"^\.B {re.escape(e)}$", errors, re.M):
                        problems.append(f"org.opbackup.backup1(5), ERRORS: the error {e} is not described")
        for e in sorted(set(re.findall(r"^\.B (org\.opbackup\.\S+)$", errors, re.M)) - error_names()):
                problems.append(f"org.opbackup.backup1(5) describes the error {e}, which common/errors.h does not have")
        return problems


def introspect_all(fx):
        """The daemon's org.opbackup.backup1.* interfaces: of the manager, an instance and a running job."""
        got = {}
        got.update(parse_interfaces(fx.introspect("root", MANAGER_PATH)))
        got.update(parse_interfaces(fx.introspect("root", fx.instance_path("inst1"))))
        job = create_job(fx, "inst1")
        try:
                job_ifaces = introspect_job(fx, job)
                expect(job_ifaces is not None, f"job {job} was gone before it could be introspected (the slow "
                                               "exclude hook should keep it for seconds)")
                got.update(job_ifaces)
        finally:
                try:
                        fx.call("root", job, IFACE_JOB, "Cancel", "")
                except DBusError as e:
                        print(f"# cancelling {job}: {e}")
        expect(set(got) == {IFACE_MANAGER, IFACE_INSTANCE, IFACE_JOB}, f"introspected interfaces: {sorted(got)}")
        return got


def test_xml_parses_with_gdbus():
        # Introspection tooling must accept the documented XML: GDBus's parser, as gdbus-codegen and
        # every GLib client use it, skips the doc elements and finds every member.
        import gi
        gi.require_version("Gio", "2.0")
        from gi.repository import Gio
        node = Gio.DBusNodeInfo.new_for_xml(api_xml())
        want = parse_interfaces(api_xml())
        for info in node.interfaces:
                w = want[info.name]
                expect_eq(sorted(m.name for m in info.methods), sorted(w["methods"]), f"GDBus: methods of {info.name}")
                expect_eq(sorted(p.name for p in info.properties), sorted(w["properties"]),
                          f"GDBus: properties of {info.name}")
                expect_eq(sorted(s.name for s in info.signals), sorted(w["signals"]), f"GDBus: signals of {info.name}")
        expect_eq(sorted(i.name for i in node.interfaces), sorted(want), "GDBus: interfaces")


def test_documented():
        def prepare(fx):
                os.chmod(os.path.join(fx.config_dir, "hooks", "additional-excludes.d", "slow"), 0o755)

        with Fixture(config_files={"hooks/additional-excludes.d/slow": SLOW_HOOK}, prepare=prepare) as fx:
                got = introspect_all(fx)
        xml_text, page = api_xml(), read(API_PAGE)
        problems = xml_doc_problems(got, xml_text) + man_doc_problems(got, page)
        if problems:
                raise AssertionError("the daemon's API is not fully documented:\n  " + "\n  ".join(problems))
        n = sum(len(got[i][k]) for i in got for k, _ in KINDS)
        print(f"# {n} members of {len(got)} interfaces and {len(error_names())} errors are documented in the "
              "XML and in org.opbackup.backup1(5)")

        # The checks must be able to fail: a member the daemon would have, documented nowhere.
        extra = copy.deepcopy(got)
        extra[IFACE_JOB]["methods"]["Frobnicate"] = {"args": [("how", "s", "in")], "annotations": {}}
        extra[IFACE_MANAGER]["properties"]["Frobs"] = {"type": "u", "access": "read", "annotations": {}}
        xml_p, man_p = xml_doc_problems(extra, xml_text), man_doc_problems(extra, page)
        for name in ("Frobnicate", "Frobs"):
                expect(any(name in p for p in xml_p), f"the XML check does not notice an undocumented {name}: {xml_p}")
                expect(any(name in p for p in man_p), f"the man page check does not notice an undocumented {name}: "
                                                      f"{man_p}")


fixture.main(globals())
