#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""How opbackup's costs grow with the instance: a scaling run.

Usage (as root, after a build; it brings up a private bus, polkitd and opbackupd like the integration
tests do):

    bench/bench-scale.py [--build DIR] [--files 2000,20000] [--gcode 0.5G,1G,2G,5G] [--gcode-max SIZE]
                         [--backups 100,1000,10000] [--only files,gcode,backups] [--workdir DIR]
                         [--json FILE] [--svg FILE]

    quick run:   bench/bench-scale.py --files 500,5000 --gcode 64M,128M --backups 10,100,1000

Three series, each on an instance that grows step by step:

  files    the small files of an instance (text of 1-3 kB each, in uploads/), 1x and 10x: 2,000 and
           20,000 by default.
  gcode    a G-code library (generated text: realistic G-code lines, not sparse files, which would
           compress to nothing) growing to 5 GB by default: 0.5, 1, 2, 5 GB. --gcode-max caps the steps.
  backups  100, 1,000, 10,000 backups in the backup folder (hard links of one backup of the instance as the
           files series left it).

At each step, through the daemon as a user would (`opbackupctl`, polkit asked):
  backup          a backup with no previous backup in the folder
  repeat backup   another, nothing changed since (the previous one is there)
  restore         `opbackupctl restore NAME --yes --skip-plugins --no-restart` of the first one
and for the backups series:
  daemon start    from exec to its name on the bus (a saved listing on disk)
  list (cold)     the first ListBackups ever: nothing saved, every zip read
  list (restart)  the first ListBackups after a restart, the daemon's saved listing on disk
  list (warm)     ListBackups again (median of 5)
During the cold listing another process pings the daemon over and over (busctl, org.freedesktop.DBus.Peer.Ping):
the slowest answer says how long other callers had to wait meanwhile (busctl's own start included).

--only spawn measures the cost of a short worker: ListBackups of a folder with one backup, known to the
daemon, --calls times on one connection (the worker forks, becomes the instance user, lists the folder and
answers "unchanged"): median, p10 and p90 latency and the service's CPU time per call. Compare builds with
--build.

For each: wall time, CPU time of the service (the daemon and every worker it reaped: /proc/PID/stat),
peak RSS (the highest VmHWM of the daemon and of each of its descendants, sampled every 10 ms: a worker
that lives less than that may be missed) and the bytes the service read (rchar of /proc/DAEMON/io, which
includes reaped workers: read() and pread() calls, from the page cache or not). The page cache is warm.

Prints a table per series with the growth of each cost against the growth of its input (the ratio of
the two: 1.0 is linear, more is worse) and writes an SVG plot of the times (--svg, default
bench/scaling.svg). Not a test: timings depend on the machine and on what else runs on it.
"""

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SOURCE_ROOT, "tests", "integration"))
from backuptest import descendants
from benchlib import Sampler, parse_size, proc_cpu, proc_io, proc_status_kb

MB = 1000 * 1000
RSS_LIMIT_MB = 64


def fail(msg):
        print(f"bench-scale: {msg}", file=sys.stderr)
        sys.exit(1)


def human(n):
        for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
                if n >= size:
                        return f"{n / size:.3g} {unit}"
        return f"{n} B"


def filesystem_note(path):
        """The filesystem under path, in words, e.g. "ext4 on /dev/loop0, with a journal". An ext4 without a
        journal checks the inode table for recently deleted inodes on every file it creates, so restoring
        many small files right after deleting as many grows faster than linearly there: say so."""
        dev = os.stat(path).st_dev
        fstype, source = "?", "?"
        with open("/proc/self/mountinfo") as f:
                for line in f:
                        left, right = line.split(" - ", 1)
                        major, minor = left.split()[2].split(":")
                        if os.makedev(int(major), int(minor)) == dev:
                                fstype, source = right.split()[:2]
        note = f"{fstype} on {source}"
        if fstype == "ext4":
                journal = os.path.exists(f"/proc/fs/jbd2/{os.path.basename(source)}-8")
                note += ", with a journal" if journal else (
                        ", WITHOUT a journal: creating files right after many were deleted costs more there")
        return note


# ------------------------------------------------------------------------------------------------------
# Measuring

class PeakRss(Sampler):
        """The highest VmHWM (kB) of the daemon and of any of its descendants while it runs."""

        def __init__(self, pid):
                self.pid = pid
                self.peak = 0

        def sample(self):
                for p in [self.pid] + descendants(self.pid):
                        self.peak = max(self.peak, proc_status_kb(p, "VmHWM"))


class Pinger(Sampler):
        """org.freedesktop.DBus.Peer.Ping to the daemon, over and over, from another process (busctl: a
        thread of this one would wait for the GIL while the main thread parses a large listing): the
        slowest answer says how long the daemon's event loop kept other callers waiting."""

        interval = 0

        def __init__(self, address, name):
                self.argv = ["busctl", f"--address={address}", "call", name, "/", "org.freedesktop.DBus.Peer", "Ping"]
                self.worst, self.count = 0.0, 0

        def sample(self):
                import subprocess
                t = time.monotonic()
                subprocess.run(self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                self.worst = max(self.worst, time.monotonic() - t)
                self.count += 1


class Scale:
        def __init__(self, args, fx):
                import fixture
                import backuptest
                self.args = args
                self.fx = fx
                self.fixture = fixture
                self.bt = backuptest
                self.exp = fx.expected("scale")
                self.folder = self.exp["backup_folder"]
                self.uploads = self.exp["folders"]["uploads"]
                self.results = {}

        def measure(self, fn):
                """Runs fn(); returns its wall time, the service's CPU time, peak RSS (MB) and bytes read."""
                pid = self.fx.daemon_proc.pid
                cpu, rchar = (proc_cpu(pid) or 0.0), proc_io(pid).get("rchar", 0)
                with PeakRss(pid) as peak:
                        t = time.monotonic()
                        fn()
                        dt = time.monotonic() - t
                        time.sleep(0.1)         # the worker reaped: its CPU and reads are the daemon's now
                return {"seconds": dt, "cpu": (proc_cpu(pid) or 0.0) - cpu, "rss_mb": peak.peak / 1024,
                        "read_bytes": proc_io(pid).get("rchar", 0) - rchar}

        def ctl(self, user, *args):
                r = self.fx.ctl(user, "-i", "scale", *args, timeout=7200)
                if r.returncode != 0:
                        fail(f"opbackupctl {' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}\n"
                             f"daemon log:\n{self.fx.daemon_log()[-3000:]}")

        def clear_backups(self):
                for name in os.listdir(self.folder):
                        os.unlink(os.path.join(self.folder, name))

        def backup_restore(self, series, step, size):
                """backup, repeat backup and restore at this step."""
                self.clear_backups()
                os.sync()
                # The files were just written (and chowned): the files cache leaves out what changed in the
                # 2 s before a backup starts, and the repeat backup is meant to find them in it, as the next
                # nightly one would.
                time.sleep(2.5)
                row = {"input": size, "step": step}
                row["backup"] = self.measure(lambda: self.ctl(self.fixture.USER_ALLOWED, "backup", "--name", "fresh.zip"))
                os.sync()
                row["repeat backup"] = self.measure(lambda: self.ctl(self.fixture.USER_ALLOWED, "backup", "--name", "again.zip"))
                os.unlink(os.path.join(self.folder, "again.zip"))
                os.sync()
                row["restore"] = self.measure(lambda: self.ctl("root", "restore", "fresh.zip", "--yes", "--skip-plugins",
                                                               "--no-restart"))
                os.sync()
                row["archive_bytes"] = os.path.getsize(os.path.join(self.folder, "fresh.zip"))
                self.results.setdefault(series, []).append(row)
                print(f"  {series} {step}: " + ", ".join(f"{k} {v['seconds']:.2f} s" for k, v in row.items()
                                                          if isinstance(v, dict)), flush=True)

        # -- the series ------------------------------------------------------------------------------
        def files(self, counts):
                folder = os.path.join(self.uploads, "small")
                os.makedirs(folder, exist_ok=True)
                rnd = random.Random(1)
                have = 0
                for count in counts:
                        while have < count:
                                sub = os.path.join(folder, f"d{have // 1000:03d}")
                                os.makedirs(sub, exist_ok=True)
                                lines = [f"; part {have} line {k}\nG1 X{rnd.uniform(0, 220):.3f} Y{rnd.uniform(0, 220):.3f} "
                                         f"E{rnd.uniform(0, 9):.5f}" for k in range(rnd.randint(20, 60))]
                                with open(os.path.join(sub, f"part-{have:06d}.gcode"), "w") as f:
                                        f.write("\n".join(lines) + "\n")
                                have += 1
                        self.fx_chown(folder)
                        self.backup_restore("files", f"{count:,} files", count)

        def gcode(self, sizes):
                folder = os.path.join(self.uploads, "library")
                os.makedirs(folder, exist_ok=True)
                block = gcode_block(16 << 20)
                have = 0
                k = 0
                for size in sizes:
                        while have < size:
                                n = min(256 << 20, size - have)
                                with open(os.path.join(folder, f"print-{k:04d}.gcode"), "wb") as f:
                                        f.write(f"; print {k}\n".encode())
                                        written = 0
                                        while written < n:
                                                f.write(block[:n - written])
                                                written += min(len(block), n - written)
                                have += n
                                k += 1
                        self.fx_chown(folder)
                        os.sync()
                        self.backup_restore("gcode", f"G-code {human(size)}", size)
                shutil.rmtree(folder)

        def backups(self, counts):
                import dbus
                self.clear_backups()
                self.ctl(self.fixture.USER_ALLOWED, "backup", "--name", "one.zip")
                one = os.path.join(self.folder, "one.zip")
                import zipfile
                with zipfile.ZipFile(one) as z:
                        entries = len(z.infolist())
                have = 1
                for count in counts:
                        while have < count:
                                os.link(one, os.path.join(self.folder, f"many-{have:06d}.zip"))
                                have += 1
                        row = {"input": count, "step": f"{count:,} backups", "zip_entries": entries}
                        cache = os.path.join(self.fx.state_dir, "list-scale.cache")

                        def call():
                                bus = dbus.bus.BusConnection(self.fx.address)
                                inst = dbus.Interface(bus.get_object(self.fixture.BUS_NAME, self.fx.instance_path("scale")),
                                                      self.fixture.IFACE_INSTANCE)
                                got = inst.ListBackups(timeout=3600)
                                bus.close()
                                if len(got) != count:
                                        fail(f"ListBackups listed {len(got)} backups, {count} expected")

                        self.fx.stop_daemon()
                        if os.path.exists(cache):
                                os.unlink(cache)
                        self.fx.start_daemon()
                        with Pinger(self.fx.address, self.fixture.BUS_NAME) as ping:
                                row["list (cold)"] = self.measure(call)
                        row["ping_during_cold_list_ms"] = {"max": ping.worst * 1000, "count": ping.count}
                        self.fx.stop_daemon()
                        t = time.monotonic()
                        self.fx.start_daemon()
                        start = time.monotonic() - t
                        pid = self.fx.daemon_proc.pid
                        row["daemon start"] = {"seconds": start, "cpu": (proc_cpu(pid) or 0.0), "rss_mb": proc_status_kb(pid, "VmHWM") / 1024,
                                               "read_bytes": proc_io(pid).get("rchar", 0)}
                        row["list (restart)"] = self.measure(call)
                        warm = [self.measure(call) for _ in range(5)]
                        row["list (warm)"] = {k: statistics.median(w[k] for w in warm) for k in warm[0]}
                        row["cache_file_bytes"] = os.path.getsize(cache) if os.path.exists(cache) else 0
                        self.results.setdefault("backups", []).append(row)
                        print(f"  backups {count}: " + ", ".join(f"{k} {v['seconds'] * 1000:.0f} ms" for k, v in row.items()
                                                                  if isinstance(v, dict) and "seconds" in v), flush=True)

        def spawn(self, calls):
                """The cost of a short worker: ListBackups with one backup, known to the cache (a worker that
                forks, becomes the instance user, lists the folder and answers "unchanged"), calls times on one
                connection. The time is the caller's; the CPU is the service's, per call."""
                import dbus
                self.clear_backups()
                self.ctl(self.fixture.USER_ALLOWED, "backup", "--name", "one.zip")
                bus = dbus.bus.BusConnection(self.fx.address)
                inst = dbus.Interface(bus.get_object(self.fixture.BUS_NAME, self.fx.instance_path("scale")),
                                      self.fixture.IFACE_INSTANCE)
                inst.ListBackups()
                pid = self.fx.daemon_proc.pid
                times = []
                cpu = (proc_cpu(pid) or 0.0)
                for _ in range(calls):
                        t = time.monotonic()
                        inst.ListBackups()
                        times.append(time.monotonic() - t)
                cpu = (proc_cpu(pid) or 0.0) - cpu
                bus.close()
                times.sort()
                self.results["spawn"] = {"calls": calls, "median_ms": statistics.median(times) * 1000,
                                         "p10_ms": times[len(times) // 10] * 1000, "p90_ms": times[len(times) * 9 // 10] * 1000,
                                         "service_cpu_ms_per_call": cpu / calls * 1000}
                print("  short worker (ListBackups, 1 backup, warm): median {median_ms:.2f} ms, p10 {p10_ms:.2f} ms, "
                      "p90 {p90_ms:.2f} ms, service CPU {service_cpu_ms_per_call:.2f} ms a call".format(**self.results["spawn"]),
                      flush=True)

        def fx_chown(self, top):
                import pwd
                pw = pwd.getpwnam(self.fixture.USER_PRINTER)
                for root, dirs, files in os.walk(top):
                        os.chown(root, pw.pw_uid, pw.pw_gid)
                        for n in files:
                                os.chown(os.path.join(root, n), pw.pw_uid, pw.pw_gid)


def gcode_block(size):
        """size bytes of G-code as slicers write it (moves with 3-5 decimals), random enough that deflate
        compresses it about as much as real G-code."""
        rnd = random.Random(7)
        out, n, x, y, e = [], 0, 100.0, 100.0, 0.0
        while n < size:
                x = min(max(x + rnd.uniform(-2, 2), 0), 220)
                y = min(max(y + rnd.uniform(-2, 2), 0), 220)
                e += rnd.uniform(0.01, 0.09)
                line = f"G1 X{x:.3f} Y{y:.3f} E{e:.5f}\n" if rnd.random() > 0.05 else f"G0 F9000 X{x:.3f} Y{y:.3f}\n"
                out.append(line)
                n += len(line)
        return "".join(out).encode()[:size]


# ------------------------------------------------------------------------------------------------------
# Reporting

OPS = {"files": ["backup", "repeat backup", "restore"], "gcode": ["backup", "repeat backup", "restore"],
       "backups": ["daemon start", "list (cold)", "list (restart)", "list (warm)"]}
TITLES = {"files": "small files", "gcode": "G-code library", "backups": "backups in the folder"}


def growth(prev, row, op):
        """How much an operation's time grew from the step before, per unit of input growth (1.0: linear,
        less: better than linear). Times under 10 ms count as 10 ms: below that, noise decides."""
        x = row["input"] / prev["input"]
        return (max(row[op]["seconds"], 0.01) / max(prev[op]["seconds"], 0.01)) / x


def report(results):
        out = []
        worst_rss = 0.0
        m = results.get("machine", {})
        if m:
                out.append(f"{m.get('date', '?')}, {m.get('cpus', '?')} CPUs, load average before {m.get('load_before', 0):.2f}; "
                           f"work directory: {m.get('workdir_fs', '?')}")
        for series, rows in results.items():
                if series not in OPS:
                        continue
                out.append(f"\n{TITLES[series]}")
                out.append("| step | operation | time | CPU | peak RSS | read | time growth / input growth |")
                out.append("| --- | --- | --- | --- | --- | --- | --- |")
                for i, row in enumerate(rows):
                        for op in OPS[series]:
                                m = row[op]
                                g = ""
                                if i > 0:
                                        g = f"{growth(rows[i - 1], row, op):.2f}"
                                worst_rss = max(worst_rss, m["rss_mb"])
                                t = f"{m['seconds']:.2f} s" if m["seconds"] >= 1 else f"{m['seconds'] * 1000:.0f} ms"
                                out.append(f"| {row['step']} | {op} | {t} | {m['cpu']:.2f} s | {m['rss_mb']:.1f} MB | "
                                           f"{human(m['read_bytes'])} | {g} |")
        for row in results.get("backups", []):
                if "ping_during_cold_list_ms" in row:
                        p = row["ping_during_cold_list_ms"]
                        out.append(f"{row['step']}: during the cold listing, the slowest of {p['count']} pings took "
                                   f"{p['max']:.1f} ms")
        if "spawn" in results:
                out.append("short worker (ListBackups, 1 backup, warm): median {median_ms:.2f} ms, p10 {p10_ms:.2f} ms, "
                           "p90 {p90_ms:.2f} ms, service CPU {service_cpu_ms_per_call:.2f} ms a call".format(**results["spawn"]))
        out.append(f"\nhighest peak RSS of any process of the service: {worst_rss:.1f} MB "
                   f"({'under' if worst_rss < RSS_LIMIT_MB else 'OVER'} {RSS_LIMIT_MB} MB)")
        print("\n".join(out))
        return "\n".join(out)


def svg_plot(results, path):
        """Time against input, log-log, one panel per series: written by hand, no plotting library."""
        series = [s for s in ("files", "gcode", "backups") if results.get(s)]
        w, h, pad = 330, 260, 48
        colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]
        parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w * len(series)}" height="{h + 70}" '
                 f'font-family="sans-serif" font-size="11">',
                 f'<rect width="100%" height="100%" fill="white"/>']
        import math
        for n, s in enumerate(series):
                rows = results[s]
                x0 = n * w
                xs = [r["input"] for r in rows]
                ys = [max(r[op]["seconds"], 0.001) for r in rows for op in OPS[s]]
                lx = (math.log10(min(xs)), math.log10(max(xs)) if max(xs) > min(xs) else math.log10(min(xs)) + 1)
                ly = (math.floor(math.log10(min(ys))), math.ceil(math.log10(max(ys))) + (0 if max(ys) > min(ys) else 1))
                if ly[1] == ly[0]:
                        ly = (ly[0], ly[0] + 1)

                def px(v, lx=lx, x0=x0):
                        return x0 + pad + (math.log10(v) - lx[0]) / (lx[1] - lx[0]) * (w - pad - 30)

                def py(v, ly=ly):
                        return h - 30 - (math.log10(v) - ly[0]) / (ly[1] - ly[0]) * (h - 60)
                parts.append(f'<text x="{x0 + w / 2}" y="16" text-anchor="middle" font-size="13">{TITLES[s]}</text>')
                parts.append(f'<line x1="{x0 + pad}" y1="{h - 30}" x2="{x0 + w - 30}" y2="{h - 30}" stroke="black"/>')
                parts.append(f'<line x1="{x0 + pad}" y1="30" x2="{x0 + pad}" y2="{h - 30}" stroke="black"/>')
                for e in range(ly[0], ly[1] + 1):
                        v = 10 ** e
                        label = f"{v:g} s" if v >= 1 else f"{v * 1000:g} ms"
                        parts.append(f'<line x1="{x0 + pad - 4}" y1="{py(v):.1f}" x2="{x0 + w - 30}" y2="{py(v):.1f}" '
                                     f'stroke="#ddd"/>')
                        parts.append(f'<text x="{x0 + pad - 6}" y="{py(v) + 4:.1f}" text-anchor="end">{label}</text>')
                for r in rows:
                        label = human(r["input"]) if s == "gcode" else f"{r['input']:,}"
                        parts.append(f'<text x="{px(r["input"]):.1f}" y="{h - 16}" text-anchor="middle">{label}</text>')
                # A dashed line of slope 1 from the first point of the first operation: linear growth.
                first = max(rows[0][OPS[s][0]]["seconds"], 0.001)
                parts.append(f'<line x1="{px(xs[0]):.1f}" y1="{py(first):.1f}" x2="{px(xs[-1]):.1f}" '
                             f'y2="{py(first * xs[-1] / xs[0]):.1f}" stroke="#999" stroke-dasharray="4 3"/>')
                for k, op in enumerate(OPS[s]):
                        pts = " ".join(f"{px(r['input']):.1f},{py(max(r[op]['seconds'], 0.001)):.1f}" for r in rows)
                        parts.append(f'<polyline points="{pts}" fill="none" stroke="{colors[k]}" stroke-width="2"/>')
                        for r in rows:
                                parts.append(f'<circle cx="{px(r["input"]):.1f}" cy="{py(max(r[op]["seconds"], 0.001)):.1f}" '
                                             f'r="3" fill="{colors[k]}"/>')
                        parts.append(f'<rect x="{x0 + pad + 8}" y="{h + 2 + 14 * k}" width="10" height="3" fill="{colors[k]}"/>')
                        parts.append(f'<text x="{x0 + pad + 22}" y="{h + 7 + 14 * k}">{op}</text>')
                parts.append(f'<text x="{x0 + w - 30}" y="{h + 7}" text-anchor="end" fill="#777">dashed: linear</text>')
        parts.append("</svg>")
        with open(path, "w") as f:
                f.write("\n".join(parts) + "\n")


def main():
        ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
        ap.add_argument("--build", default=os.environ.get("OPBACKUP_BUILD", os.path.join(SOURCE_ROOT, "build")),
                        help="meson build directory with service/opbackupd and client/opbackupctl")
        ap.add_argument("--files", default="2000,20000", help="steps of the small-files series")
        ap.add_argument("--gcode", default="0.5G,1G,2G,5G", help="steps of the G-code series")
        ap.add_argument("--gcode-max", help="leave out G-code steps above this size (e.g. 2G)")
        ap.add_argument("--backups", default="100,1000,10000", help="steps of the backups series")
        ap.add_argument("--only", default="files,gcode,backups",
                        help="series to run: files, gcode, backups, and spawn (the cost of a short worker)")
        ap.add_argument("--calls", type=int, default=500, help="ListBackups calls of the spawn measurement")
        ap.add_argument("--workdir", default="/var/tmp", help="where the instance and its backups go")
        ap.add_argument("--json", help="also write the results to this file")
        ap.add_argument("--svg", default=os.path.join(HERE, "scaling.svg"), help="the plot ('' for none)")
        ap.add_argument("--from-json", help="only report (table, plot) from a --json file of an earlier run")
        args = ap.parse_args()

        if args.from_json:
                with open(args.from_json) as f:
                        results = json.load(f)
                report(results)
                if args.svg:
                        svg_plot(results, args.svg)
                return
        if os.geteuid() != 0:
                fail("run as root: the benchmark brings up a private bus, polkitd and opbackupd")
        if os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3") and os.path.exists("/usr/bin/python3"):
                os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
        for exe in ("service/opbackupd", "client/opbackupctl"):
                if not os.access(os.path.join(args.build, exe), os.X_OK):
                        fail(f"{os.path.join(args.build, exe)} is missing: build first and pass --build BUILD")
        gsteps = [parse_size(s) for s in args.gcode.split(",") if s]
        if args.gcode_max:
                gsteps = [s for s in gsteps if s <= parse_size(args.gcode_max)]
        parts = set(args.only.split(",")) - {""}
        need = (max(gsteps) * 3 if "gcode" in parts and gsteps else 0) + (2 << 30)
        st = os.statvfs(args.workdir)
        if st.f_bavail * st.f_frsize < need:
                fail(f"{args.workdir} has {st.f_bavail * st.f_frsize / MB:.0f} MB free, this run needs about "
                     f"{need / MB:.0f} MB: use --workdir or --gcode-max")

        import signal
        signal.signal(signal.SIGTERM, lambda signo, frame: sys.exit(128 + signo))
        os.environ["OPBACKUPD"] = os.path.join(os.path.abspath(args.build), "service", "opbackupd")
        os.environ["OPBACKUPCTL"] = os.path.join(os.path.abspath(args.build), "client", "opbackupctl")
        os.environ["OPBACKUP_SOURCE_ROOT"] = SOURCE_ROOT
        import tempfile
        tempfile.tempdir = args.workdir
        import fixture
        if not fixture.in_private_mount_namespace():
                fixture.reexec_in_private_mount_namespace()
        backups = os.path.join(args.workdir, f"opbackup-scale-backups-{os.getpid()}")
        instances = {"scale": {"size": "tiny", "gen_args": ["--backup-path", backups]}}
        results = {}
        load_before = os.getloadavg()[0]
        try:
                with fixture.Fixture(instances=instances) as fx:
                        s = Scale(args, fx)
                        if "files" in parts:
                                s.files([int(x) for x in args.files.split(",") if x])
                        if "gcode" in parts and gsteps:
                                s.gcode(gsteps)
                        if "spawn" in parts:
                                s.spawn(args.calls)
                        if "backups" in parts:
                                s.backups([int(x) for x in args.backups.split(",") if x])
                        results = s.results
        finally:
                shutil.rmtree(backups, ignore_errors=True)
        results["machine"] = {"cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d"),
                              "load_before": load_before, "args": " ".join(sys.argv[1:]),
                              "workdir_fs": filesystem_note(args.workdir)}
        report(results)
        if args.json:
                with open(args.json, "w") as f:
                        json.dump(results, f, indent=2)
        if args.svg:
                svg_plot(results, args.svg)


if __name__ == "__main__":
        main()
