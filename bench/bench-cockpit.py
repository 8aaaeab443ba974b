#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The Cockpit page's load time with many backups, measured in the browser.

Usage (as root, after a build with the page, and tests/install-deps.sh's packages):

    bench/bench-cockpit.py [--backups 1000] [--runs 5] [--user opbackup-allowed]

Brings up the integration tests' private bus, polkitd and opbackupd (tests/integration/fixture.py) with a
sample instance whose backup folder holds --backups backups (hard links of one real backup), and
cockpit-ws --local-session as --user (tests/cockpit/cockpitws.py). For each run, a fresh cockpit-ws and
chromium load the page; the figure is performance.now() in the page (ms since the navigation started) when
the instance's first page of backups is on screen, all of them listed; also the page's own
time from its first call to the list (data-loaded-ms). The same with one backup, for comparison. Medians
printed. Not a test: timings depend on the machine and on what else runs on it.
"""

import argparse
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SOURCE_ROOT, "tests", "integration"))
sys.path.insert(0, os.path.join(SOURCE_ROOT, "tests", "cockpit"))
import fixture  # noqa: E402
import cockpitws  # noqa: E402


def measure(count, runs, user):
        with fixture.Fixture(instances={"inst1": {"size": "tiny"}}, bus_config=cockpitws.BUS_CONFIG) as fx:
                fx.ctl_ok(fixture.USER_ALLOWED, "-i", "inst1", "backup", "--name", "b.zip")
                folder = fx.get_property("root", fx.instance_path("inst1"), fixture.IFACE_INSTANCE, "BackupFolder")
                first = os.path.join(folder, "b.zip")
                for k in range(1, count):
                        os.link(first, os.path.join(folder, f"many-{k:05d}.zip"))
                page = cockpitws.CockpitPage(fx, os.path.join(fx.dir, "shots"))
                page.satisfy_condition()
                listed, app = [], []
                for i in range(runs):
                        r = page.session(user, "bench", count=count)
                        if r.get("error"):
                                raise SystemExit(f"run {i + 1}: {r['error']}")
                        listed.append(r["listedMs"])
                        app.append(r["appMs"])
                        print(f"  {count} backup{'s' if count != 1 else ''}, run {i + 1}: listed at {r['listedMs']:.0f} ms after navigation "
                              f"(DOMContentLoaded {r['navigation']['domContentLoaded']:.0f} ms; the page's calls "
                              f"{r['appMs']:.0f} ms)", flush=True)
                return statistics.median(listed), statistics.median(app)


def main():
        ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
        ap.add_argument("--backups", type=int, default=1000)
        ap.add_argument("--runs", type=int, default=5)
        ap.add_argument("--user", default=fixture.USER_ALLOWED)
        args = ap.parse_args()
        if os.geteuid() != 0:
                raise SystemExit("bench-cockpit.py: run as root (a private bus, polkitd, test users)")
        if not fixture.in_private_mount_namespace():
                fixture.reexec_in_private_mount_namespace()
        try:
                cockpitws.check_prerequisites()
        except cockpitws.Unavailable as e:
                raise SystemExit(f"bench-cockpit.py: {e}")
        print(f"# The Cockpit page as {args.user}: time to the listed instance (median of {args.runs})")
        many = measure(args.backups, args.runs, args.user)
        one = measure(1, args.runs, args.user)
        print(f"{args.backups} backups: {many[0]:.0f} ms after navigation (the page's calls: {many[1]:.0f} ms)")
        print(f"1 backup: {one[0]:.0f} ms after navigation (the page's calls: {one[1]:.0f} ms)")
        print(f"ratio {args.backups}/1: {many[0] / one[0]:.2f}")


if __name__ == "__main__":
        main()
