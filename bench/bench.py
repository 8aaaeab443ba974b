#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""opbackup's benchmark: backups and restores against the tools people would use instead (issue 6).

Usage (as root; it brings up a private bus, polkitd and opbackupd like the integration tests do):

    bench/bench.py [--build DIR] [--size bench|<N>M] [--runs N] [--level N] [--only PARTS]
                   [--big-file SIZE] [--workdir DIR] [--json FILE] [--peer-priority idle|normal]

    quick smoke test:   bench/bench.py --build build --size 20M --runs 1
    repeat backups:     bench/bench.py --build build --only repeat   (root; drops the page cache, throttles reads)
    memory check only:  bench/bench.py --build build --size 20M --only "" --big-file 4G

It generates the reference corpus with tests/gen-instance.py (--size bench: ~500 MB: ~290 MB of G-code,
~200 MB of timelapse video, ~2,000 small files, sqlite databases) and times, --runs times each, medians:

  backup   opbackup through the daemon, as a user would (`opbackupctl backup` as a member of group
           opbackup, polkit asked), against CPython's zipfile written the way OctoPrint writes backups
           (ZIP_DEFLATED at zlib's default level 6, the same entries), Info-ZIP `zip -r -6`,
           `bsdtar --format zip` and `7z a -tzip -mmt=2`; archive sizes. opbackup's timed backups have no
           previous backup to reuse data from; then opbackup again with the previous one there and nothing
           changed (what a nightly backup mostly is).
  restore  `opbackupctl restore NAME --yes --skip-plugins --no-restart` (validation, extraction, fsync,
           swap) against `zipfile.extractall`, `unzip` and `bsdtar -x` of the same archive.
  repeat   a backup after a backup with nothing changed, with the files cache and without it (as before it
           existed: every file read and CRC-checked against the previous backup): page cache warm, dropped
           (echo 3 > /proc/sys/vm/drop_caches), and dropped with reads of the instance's disk throttled to
           --throttle MB/s (30: an SD card) for the daemon and its workers by a cgroup (v1 blkio or v2 io).
           Bytes read by the workers (/proc/PID/io of the daemon, which counts the workers it reaped:
           rchar = what read() returned, read_bytes = what came from the disk) and bytes of the instance's
           files read (inotify IN_ACCESS). --backups-dir puts the backup folder on another disk.
  list     ListBackups on a folder of 1,000 backups (first call and cached), and the idle daemon's RSS.

Every timed run starts with the inputs in the page cache (read right before) and ends with sync(), since a
backup or restore is only done once it is on disk (opbackup fsyncs; the others are followed by `sync`).
opbackup's workers run at idle CPU and I/O priority, so the other tools do too (--peer-priority normal:
not): on a busy machine every tool then gets what the rest leaves. The tools take turns, in a different
order each run; the table shows the median and the best run, and the CPU time (user + system), which
depends least on what else runs.
The peak RSS of the daemon and of its worker processes (opbackup-backup, opbackup-restore) is sampled from
/proc/PID/status (VmHWM) all along. --big-file 4G adds a corpus with one file of that size (G-code
repeated) for the memory check: its backup (and restore) with their peak RSS, and the archive checked with
unzip -t and for ZIP64 only on that entry.

Prints a table with each peer's time and its ratio to opbackup's. Nothing is installed: missing tools are
named with their Debian package (tests/install-deps.sh installs them). Not a test: timings depend on the
machine and on what else runs on it.
"""

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SOURCE_ROOT, "tests", "integration"))
from benchlib import Sampler, parse_size, proc_cpu, proc_io, proc_status_kb

PEER_TOOLS = {"zip": "zip", "unzip": "unzip", "bsdtar": "libarchive-tools", "7z": "p7zip-full",
              "dbus-daemon": "dbus-daemon", "setpriv": "util-linux", "unshare": "util-linux", "chrt": "util-linux",
              "ionice": "util-linux"}
MB = 1000 * 1000


class Failed(Exception):
        pass


def fail(msg):
        print(f"bench: {msg}", file=sys.stderr)
        sys.exit(1)


def preflight(args):
        if os.geteuid() != 0:
                fail("run as root: the benchmark brings up a private bus, polkitd and opbackupd "
                     "(like tests/integration/run.sh)")
        missing = sorted({pkg for tool, pkg in PEER_TOOLS.items() if not shutil.which(tool)})
        if not os.path.exists("/usr/lib/polkit-1/polkitd"):
                missing.append("polkitd")
        try:
                import dbus  # noqa: F401
        except ImportError:
                missing.append("python3-dbus")
        if missing:
                fail("missing: " + " ".join(missing) + " (apt-get install them, or run tests/install-deps.sh)")
        for exe in ("service/opbackupd", "client/opbackupctl"):
                if not os.access(os.path.join(args.build, exe), os.X_OK):
                        fail(f"{os.path.join(args.build, exe)} is missing: build first (meson setup BUILD && "
                             f"ninja -C BUILD) and pass --build BUILD")
        corpus = parse_size(args.size.replace("bench", "500M")) if args.size != "tiny" else 1 << 20
        need = corpus * 4 + (parse_size(args.big_file) * 3 if args.big_file else 0)
        st = os.statvfs(args.workdir)
        free = st.f_bavail * st.f_frsize
        if free < need:
                fail(f"{args.workdir} has {free / MB:.0f} MB free, the benchmark needs about {need / MB:.0f} MB "
                     f"(corpus, archives, extracted copies): use --workdir or a smaller --size")


# ------------------------------------------------------------------------------------------------------
# Measuring

class MemorySampler(Sampler):
        """Peak RSS (VmHWM, kB) of the daemon and of each worker it forks, sampled every 20 ms. VmHWM is the
        kernel's own high-water mark, so sampling only has to catch each worker before it exits; the sampler
        must stay cheap, since it competes for the CPU with the (idle-priority) workers it watches."""

        WORKERS = ("opbackup-backup", "opbackup-restor")    # comm: 15 characters at most
        interval = 0.02

        def __init__(self, daemon_pid):
                self.daemon_pid = daemon_pid
                self.worker_peak = 0
                self.daemon_peak = 0
                self.both_peak = 0           # daemon RSS + workers' RSS at the same moment

        def sample(self):
                import backuptest as bt
                d_hwm = proc_status_kb(self.daemon_pid, "VmHWM")
                d_rss = proc_status_kb(self.daemon_pid, "VmRSS")
                w_rss = 0
                for pid, comm in bt.children(self.daemon_pid):
                        if comm in self.WORKERS:
                                self.worker_peak = max(self.worker_peak, proc_status_kb(pid, "VmHWM"))
                                w_rss += proc_status_kb(pid, "VmRSS")
                self.daemon_peak = max(self.daemon_peak, d_hwm)
                self.both_peak = max(self.both_peak, d_rss + w_rss)


def warm(paths):
        """Reads files into the page cache (what each timed run starts from)."""
        for p in paths:
                with open(p, "rb") as f:
                        while f.read(1 << 20):
                                pass


# opbackup's workers run at idle CPU and I/O priority (so that a print is not disturbed); the peers run
# the same way unless --peer-priority normal, so that they all get what the rest of the machine leaves.
PEER_PREFIX = ["chrt", "--idle", "0", "ionice", "-c", "3"]


def die_with_parent():
        import ctypes
        import signal
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)      # PR_SET_PDEATHSIG


def timed(argv, cwd=None):
        """Runs argv (at the peers' priority) then sync(); returns (seconds, cpu seconds of the children)."""
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.monotonic()
        r = subprocess.run(PEER_PREFIX + argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           preexec_fn=die_with_parent)
        if r.returncode != 0:
                fail(f"{' '.join(argv)} failed ({r.returncode}):\n{r.stdout[-3000:]}")
        os.sync()
        dt = time.monotonic() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        return dt, cpu


def drop_caches():
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
                f.write("3\n")


class ReadWatch:
        """Which of PATHS any process read while it is on (inotify IN_ACCESS on their folders)."""

        def __init__(self, paths):
                import ctypes
                import struct
                self.struct = struct
                libc = ctypes.CDLL(None, use_errno=True)
                self.fd = libc.inotify_init1(0o4000 | 0o2000000)         # IN_NONBLOCK | IN_CLOEXEC
                self.paths = paths
                self.dirs = {}
                for d in sorted({os.path.dirname(p) for p in paths}):
                        wd = libc.inotify_add_watch(self.fd, d.encode(), 1)    # IN_ACCESS
                        if wd >= 0:
                                self.dirs[wd] = d
                self.read = set()

        def stop(self):
                """Bytes of the files read (a file read at all counts whole)."""
                while True:
                        try:
                                buf = os.read(self.fd, 1 << 16)
                        except BlockingIOError:
                                break
                        i = 0
                        while i < len(buf):
                                wd, _, _, n = self.struct.unpack_from("iIII", buf, i)
                                name = buf[i + 16:i + 16 + n].rstrip(b"\0").decode(errors="replace")
                                if name and wd in self.dirs:
                                        self.read.add(os.path.join(self.dirs[wd], name))
                                i += 16 + n
                os.close(self.fd)
                return sum(os.path.getsize(p) for p in self.paths if p in self.read)


class Throttle:
        """Reads of the processes moved in limited to BPS bytes/s on the disk holding PATH: a blkio (cgroup v1)
        or io (cgroup v2) throttle; the daemon's workers inherit it. Writes are not limited (cgroup v1 cannot
        throttle buffered writes, which the flusher threads do)."""

        def __init__(self, path, bps):
                st = os.stat(path)
                dev = f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
                sys_dev = f"/sys/dev/block/{dev}"
                if os.path.exists(os.path.join(sys_dev, "partition")):
                        with open(os.path.join(os.path.realpath(sys_dev), "..", "dev")) as f:
                                dev = f.read().strip()
                self.dev, self.bps = dev, bps
                if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
                        self.v2 = True
                        self.dir = f"/sys/fs/cgroup/opbackup-bench-{os.getpid()}"
                        with open("/sys/fs/cgroup/cgroup.subtree_control", "w") as f:
                                f.write("+io")
                        os.makedirs(self.dir, exist_ok=True)
                        with open(os.path.join(self.dir, "io.max"), "w") as f:
                                f.write(f"{dev} rbps={bps}")
                else:
                        self.v2 = False
                        self.dir = f"/sys/fs/cgroup/blkio/opbackup-bench-{os.getpid()}"
                        os.makedirs(self.dir, exist_ok=True)
                        with open(os.path.join(self.dir, "blkio.throttle.read_bps_device"), "w") as f:
                                f.write(f"{dev} {bps}")
                self.root = os.path.dirname(self.dir)

        def describe(self):
                kind = "cgroup v2 io.max rbps" if self.v2 else "cgroup v1 blkio.throttle.read_bps_device"
                return f"{kind} {self.bps / MB:.0f} MB/s on {self.dev}"

        def add(self, pid):
                with open(os.path.join(self.dir, "cgroup.procs"), "w") as f:
                        f.write(str(pid))

        def remove(self, pid):
                with open(os.path.join(self.root, "cgroup.procs"), "w") as f:
                        f.write(str(pid))

        def close(self):
                try:
                        os.rmdir(self.dir)
                except OSError:
                        pass


def deflate_floor(archive, sources_by_name, level):
        """CPU seconds libdeflate alone takes (one thread, this process) to deflate the entries ARCHIVE holds
        deflated, from their source files, in the pool's 1 MiB chunks at LEVEL: what a fresh backup cannot
        do with less CPU. Returns (seconds, bytes deflated)."""
        import ctypes
        lib = ctypes.CDLL("libdeflate.so.0")
        lib.libdeflate_alloc_compressor.restype = ctypes.c_void_p
        lib.libdeflate_deflate_compress.restype = ctypes.c_size_t
        lib.libdeflate_deflate_compress.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t,
                                                    ctypes.c_void_p, ctypes.c_size_t]
        lib.libdeflate_free_compressor.argtypes = [ctypes.c_void_p]
        comp = lib.libdeflate_alloc_compressor(level)
        out = ctypes.create_string_buffer(2 << 20)
        with zipfile.ZipFile(archive) as z:
                names = [i.filename for i in z.infolist() if i.compress_type == zipfile.ZIP_DEFLATED]
        cpu, total = 0.0, 0
        for name in names:
                src = sources_by_name.get(name)
                if not src:
                        continue
                with open(src, "rb") as f:
                        while True:
                                chunk = f.read(1 << 20)
                                if not chunk:
                                        break
                                t = time.thread_time()
                                lib.libdeflate_deflate_compress(comp, chunk, len(chunk), out, len(out))
                                cpu += time.thread_time() - t
                                total += len(chunk)
        lib.libdeflate_free_compressor(comp)
        return cpu, total


# ------------------------------------------------------------------------------------------------------
# The corpus as the peers see it

def archive_entries(exp):
        """[(entry name, source path)] of a backup without excludes, in OctoPrint's order (config.yaml, the
        folder ids in order, the rest of basedir)."""
        import backuptest as bt
        names = [n for n in exp["entries"] if n not in ("metadata.json", "plugin_list.json")]

        def group(name):
                best, best_len = len(bt.FOLDER_IDS), 0
                for i, fid in enumerate(bt.FOLDER_IDS):
                        prefix = "basedir/" + fid.replace("_", "/") + "/"
                        if name.startswith(prefix) and len(prefix) > best_len:
                                best, best_len = i, len(prefix)
                return (0 if name == "basedir/config.yaml" else 1, best, name)

        return [(n, bt.source_path(exp, n)) for n in sorted(names, key=group)]


def make_stage(exp, entries, stage):
        """STAGE/{metadata.json, basedir/..., plugin_list.json}: hard links to the corpus, so that zip, bsdtar
        and 7z archive the same entries under the same names as the others."""
        shutil.rmtree(stage, ignore_errors=True)
        os.makedirs(stage)
        with open(os.path.join(stage, "metadata.json"), "w") as f:
                f.write(exp["metadata_json"])
        if exp.get("plugin_list_json"):
                with open(os.path.join(stage, "plugin_list.json"), "w") as f:
                        f.write(exp["plugin_list_json"])
        for name, src in entries:
                dst = os.path.join(stage, name)
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                os.link(src, dst)
        listing = ["metadata.json"] + [n for n, _ in entries] + (["plugin_list.json"] if exp.get("plugin_list_json") else [])
        with open(os.path.join(stage, ".list"), "w") as f:
                f.write("\n".join(listing) + "\n")
        return listing


def octoprint_way(expected_json, out):
        """What OctoPrint's backup plugin does: zipfile.ZipFile(path, "w", ZIP_DEFLATED, allowZip64=True),
        metadata.json with writestr, each file with write() (zlib level 6), plugin_list.json last."""
        with open(expected_json) as f:
                exp = json.load(f)
        with zipfile.ZipFile(out, mode="w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as z:
                z.writestr("metadata.json", exp["metadata_json"])
                for name, src in archive_entries(exp):
                        z.write(src, arcname=name)
                if exp.get("plugin_list_json"):
                        z.writestr("plugin_list.json", exp["plugin_list_json"])


def extract_with_zipfile(archive, dest):
        with zipfile.ZipFile(archive) as z:
                z.extractall(dest)


# ------------------------------------------------------------------------------------------------------
# The parts

class Bench:
        def __init__(self, args, fx):
                import fixture
                self.args = args
                self.fx = fx
                self.fixture = fixture
                self.exp = fx.expected("bench")
                self.work = os.path.join(fx.dir, "work")
                os.makedirs(self.work)
                os.chmod(self.work, 0o755)
                self.entries = archive_entries(self.exp)
                self.sources = [src for _, src in self.entries]
                self.results = {"machine": machine(), "corpus": corpus_summary(self.exp, self.entries)}
                self.backup_name = None

        def opbackup_cpu(self):
                return proc_cpu(self.fx.daemon_proc.pid) or 0.0

        def ctl_timed(self, user, *args):
                before = self.opbackup_cpu()
                ru = resource.getrusage(resource.RUSAGE_CHILDREN)
                t = time.monotonic()
                r = self.fx.ctl(user, *args, timeout=3600)
                if r.returncode != 0:
                        raise Failed(f"opbackupctl {' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}\n"
                                     f"daemon log:\n{self.fx.daemon_log()[-4000:]}")
                os.sync()
                dt = time.monotonic() - t
                ru2 = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu = self.opbackup_cpu() - before + ru2.ru_utime + ru2.ru_stime - ru.ru_utime - ru.ru_stime
                return dt, cpu

        # -- backup --------------------------------------------------------------------------------
        def backup(self):
                stage = os.path.join(self.work, "stage")
                make_stage(self.exp, self.entries, stage)
                # Linking changed the files' ctime: the files cache leaves out what changed in the 2 s before a
                # backup, and the backups "again" below are meant to find them in it, as a nightly one would.
                time.sleep(2.5)
                out = os.path.join(self.work, "peer.zip")
                expected = os.path.join(self.fx.instance_root("bench"), "expected.json")
                peers = {
                        "OctoPrint way (zipfile, level 6)": [sys.executable, os.path.abspath(__file__),
                                                             "--octoprint-way", expected, out],
                        "zip -r -6": ["sh", "-c", f"zip -q -6 -D '{out}' -@ < .list"],
                        "bsdtar --format zip": ["bsdtar", "--format", "zip", "-cf", out, "-n", "-T", ".list"],
                        "7z a -tzip -mmt=2": ["7z", "a", "-bd", "-tzip", "-mmt=2", out, "@.list"],
                }
                tools = ["opbackup"] + list(peers)
                times = {t: [] for t in tools}
                cpus = {t: [] for t in tools}
                sizes = {}
                mem = MemorySampler(self.fx.daemon_proc.pid)
                with mem:
                        for run in range(self.args.runs):
                                order = tools[run % len(tools):] + tools[:run % len(tools)]
                                for tool in order:
                                        if os.path.exists(out):
                                                os.unlink(out)
                                        warm(self.sources)
                                        if tool == "opbackup":
                                                name = f"bench-{run}.zip"
                                                dt, cpu = self.ctl_timed(self.fixture.USER_ALLOWED, "-i", "bench", "backup", "--name", name)
                                                path = os.path.join(self.exp["backup_folder"], name)
                                                sizes[tool] = os.path.getsize(path)
                                                if run == self.args.runs - 1:
                                                        self.backup_name = name
                                                else:
                                                        os.unlink(path)
                                        else:
                                                dt, cpu = timed(peers[tool], cwd=stage)
                                                sizes[tool] = os.path.getsize(out)
                                                if tool.startswith("OctoPrint"):
                                                        shutil.copyfile(out, os.path.join(self.work, "octoprint.zip"))
                                        times[tool].append(dt)
                                        cpus[tool].append(cpu)
                                        print(f"  backup run {run + 1}: {tool}: {dt:.2f} s", flush=True)
                        # The usual case for a scheduled backup: the previous one is there and nothing changed
                        # since. opbackup copies its compressed data without reading the files (the files
                        # cache); the peers have no such mode, so this is compared with their fresh backups.
                        again = []
                        again_cpu = []
                        for run in range(self.args.runs):
                                warm(self.sources)
                                name = f"bench-again-{run}.zip"
                                dt, cpu = self.ctl_timed(self.fixture.USER_ALLOWED, "-i", "bench", "backup", "--name", name)
                                os.unlink(os.path.join(self.exp["backup_folder"], name))
                                again.append(dt)
                                again_cpu.append(cpu)
                                print(f"  backup run {run + 1}: opbackup again, nothing changed: {dt:.2f} s", flush=True)
                shutil.rmtree(stage, ignore_errors=True)
                # The codec floor: libdeflate alone on what opbackup deflated, spread over the pool's threads.
                level = self.args.level if self.args.level is not None else 5
                cpu, nbytes = deflate_floor(os.path.join(self.exp["backup_folder"], self.backup_name),
                                            dict(self.entries), level)
                threads = min(len(os.sched_getaffinity(0)), 4)
                self.results["deflate_floor"] = {"cpu_seconds": cpu, "bytes": nbytes, "threads": threads,
                                                 "level": level}
                self.results["backup_again"] = {"seconds": statistics.median(again), "best": min(again), "runs": again,
                                                "cpu_seconds": statistics.median(again_cpu)}
                self.results["backup"] = {t: {"seconds": statistics.median(times[t]), "best": min(times[t]),
                                              "runs": times[t], "cpu_seconds": statistics.median(cpus[t]),
                                              "bytes": sizes[t]}
                                          for t in tools}
                self.results["backup_memory_kb"] = {"daemon": mem.daemon_peak, "worker": mem.worker_peak,
                                                    "daemon_plus_worker": mem.both_peak}

        # -- restore -------------------------------------------------------------------------------
        def restore(self):
                if not self.backup_name:
                        name = "bench-restore.zip"
                        self.ctl_timed(self.fixture.USER_ALLOWED, "-i", "bench", "backup", "--name", name)
                        self.backup_name = name
                archive = os.path.join(self.exp["backup_folder"], self.backup_name)
                dest = os.path.join(self.work, "extract")
                peers = {
                        "zipfile.extractall": [sys.executable, os.path.abspath(__file__), "--extract", archive, dest],
                        "unzip": ["unzip", "-q", "-o", archive, "-d", dest],
                        "bsdtar -x": ["bsdtar", "-xf", archive, "-C", dest],
                }
                tools = ["opbackup"] + list(peers)
                times = {t: [] for t in tools}
                cpus = {t: [] for t in tools}
                failed = {}
                mem = MemorySampler(self.fx.daemon_proc.pid)
                with mem:
                        for run in range(self.args.runs):
                                order = tools[run % len(tools):] + tools[:run % len(tools)]
                                for tool in order:
                                        shutil.rmtree(dest, ignore_errors=True)
                                        os.makedirs(dest)
                                        os.sync()
                                        warm([archive])
                                        if tool == "opbackup":
                                                if "opbackup" in failed:
                                                        continue
                                                try:
                                                        dt, cpu = self.ctl_timed("root", "-i", "bench", "restore", self.backup_name, "--yes",
                                                                                 "--skip-plugins", "--no-restart")
                                                except Failed as e:
                                                        failed["opbackup"] = str(e)
                                                        print(f"  restore run {run + 1}: opbackup FAILED:\n{e}", flush=True)
                                                        continue
                                        else:
                                                dt, cpu = timed(peers[tool])
                                        times[tool].append(dt)
                                        cpus[tool].append(cpu)
                                        print(f"  restore run {run + 1}: {tool}: {dt:.2f} s", flush=True)
                shutil.rmtree(dest, ignore_errors=True)
                self.results["restore"] = {t: {"seconds": statistics.median(times[t]), "best": min(times[t]),
                                               "runs": times[t], "cpu_seconds": statistics.median(cpus[t])}
                                           for t in tools if times[t]}
                if failed:
                        self.results["restore_failed"] = failed
                self.results["restore_memory_kb"] = {"daemon": mem.daemon_peak, "worker": mem.worker_peak,
                                                     "daemon_plus_worker": mem.both_peak}

        # -- repeat backups: the files cache ------------------------------------------------------
        def repeat(self):
                """A backup after a backup with nothing changed, with the files cache (unchanged files not read)
                and without it (every file read and its CRC compared with the previous backup's, as before the
                cache): warm page cache, cold (drop_caches), and cold on storage throttled to --throttle MB/s
                of reads. Bytes read: by the daemon and its workers (/proc/PID/io: rchar = read() calls,
                read_bytes = from the disk), and of the instance's files (inotify)."""
                pid = self.fx.daemon_proc.pid
                folder = self.exp["backup_folder"]
                cache = os.path.join(self.fx.state_dir, "files-cache", "bench")
                total = sum(os.path.getsize(p) for p in self.sources)
                time.sleep(2.5)         # the cache leaves out files changed in the 2 s before a backup
                seq = [0]

                def backup():
                        name = f"repeat-{seq[0]}.zip"
                        seq[0] += 1
                        self.ctl_timed(self.fixture.USER_ALLOWED, "-i", "bench", "backup", "--name", name)
                        for other in os.listdir(folder):        # the new one is the previous one from now on
                                if other.startswith("repeat-") and other != name:
                                        os.unlink(os.path.join(folder, other))
                        return os.path.join(folder, name)

                backup()
                # The disk the instance's files are on (where the backups are, too, unless --backups-dir).
                throttle = Throttle(self.sources[0], int(self.args.throttle * MB))
                same = os.stat(folder).st_dev == os.stat(self.sources[0]).st_dev
                self.results["repeat_throttle"] = throttle.describe() + (", the instance's and the backups' disk" if same
                                                                          else ", the instance's disk only (backups elsewhere)")
                rows = {}
                try:
                        for condition in ("warm", "cold", "throttled"):
                                for mode in ("files cache", "no files cache (as before)"):
                                        runs = []
                                        for run in range(self.args.runs):
                                                if mode.startswith("no") and os.path.exists(cache):
                                                        os.unlink(cache)
                                                if condition == "warm":
                                                        warm(self.sources + [os.path.join(folder, f) for f in os.listdir(folder)])
                                                else:
                                                        drop_caches()
                                                if condition == "throttled":
                                                        throttle.add(pid)
                                                io0 = proc_io(pid)
                                                watch = ReadWatch(self.sources)
                                                name = f"repeat-{seq[0]}.zip"
                                                try:
                                                        dt, cpu = self.ctl_timed(self.fixture.USER_ALLOWED, "-i", "bench", "backup",
                                                                                 "--name", name)
                                                finally:
                                                        if condition == "throttled":
                                                                throttle.remove(pid)
                                                got = watch.stop()
                                                io1 = proc_io(pid)
                                                seq[0] += 1
                                                for other in os.listdir(folder):
                                                        if other.startswith("repeat-") and other != name:
                                                                os.unlink(os.path.join(folder, other))
                                                runs.append({"seconds": dt, "cpu_seconds": cpu, "instance_bytes_read": got,
                                                             "rchar": io1["rchar"] - io0["rchar"],
                                                             "read_bytes": io1["read_bytes"] - io0["read_bytes"],
                                                             "archive_bytes": os.path.getsize(os.path.join(folder, name))})
                                                print(f"  repeat backup, {condition}, {mode}: {dt:.2f} s, instance files read "
                                                      f"{got / MB:.1f} MB, rchar {runs[-1]['rchar'] / MB:.1f} MB, read_bytes "
                                                      f"{runs[-1]['read_bytes'] / MB:.1f} MB", flush=True)
                                        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
                                        med["best"] = min(r["seconds"] for r in runs)
                                        rows[f"{condition}/{mode}"] = med
                finally:
                        throttle.close()
                self.results["repeat"] = {"instance_bytes": total, "rows": rows}

        # -- ListBackups, idle RSS -----------------------------------------------------------------
        def list_backups(self, count=1000):
                import backuptest as bt
                import dbus
                exp = self.fx.expected("many")
                folder = exp["backup_folder"]
                os.makedirs(folder, exist_ok=True)
                template = os.path.join(self.work, "template.zip")
                with zipfile.ZipFile(template, "w", zipfile.ZIP_DEFLATED) as z:
                        z.writestr("metadata.json", exp["metadata_json"])
                        z.writestr("basedir/config.yaml", "appearance:\n  name: many\n")
                        z.writestr("basedir/users.yaml", "admin: {}\n")
                for i in range(count):
                        p = os.path.join(folder, f"many-backup-2024{i // 28 % 12 + 1:02d}{i % 28 + 1:02d}-{i:06d}.zip")
                        shutil.copyfile(template, p)
                        bt.chown_user(p)
                bus = dbus.bus.BusConnection(self.fx.address)
                inst = dbus.Interface(bus.get_object(self.fixture.BUS_NAME, self.fx.instance_path("many")),
                                      self.fixture.IFACE_INSTANCE)
                t = time.monotonic()
                first = inst.ListBackups(timeout=120)
                cold = time.monotonic() - t
                if len(first) != count:
                        fail(f"ListBackups returned {len(first)} backups, {count} expected")
                warm_times = []
                for _ in range(7):
                        t = time.monotonic()
                        inst.ListBackups(timeout=120)
                        warm_times.append(time.monotonic() - t)
                self.results["list_backups"] = {"count": count, "first_ms": cold * 1000,
                                                "cached_ms": statistics.median(warm_times) * 1000}
                bus.close()

        def idle_rss(self, key):
                import backuptest as bt
                time.sleep(1)
                pid = self.fx.daemon_proc.pid
                self.results.setdefault("idle_daemon_rss_kb", {})[key] = {
                        f: bt.status_field(pid, f) for f in ("VmRSS", "RssAnon", "RssFile", "RssShmem")}


def big_file_check(args):
        """One file of --big-file bytes: backup (and restore) through the daemon, peak RSS, archive checks."""
        import backuptest as bt
        import fixture
        size = parse_size(args.big_file)
        res = {"file_bytes": size}
        with fixture.Fixture(instances={"big": {"size": "small", "extra_conf": level_conf(args)}}) as fx:
                exp = fx.expected("big")
                big = os.path.join(exp["folders"]["uploads"], "big.gcode")
                gcode = [bt.source_path(exp, n) for n in exp["entries"] if n.endswith(".gcode")]
                block = b"".join(open(p, "rb").read() for p in gcode)
                with open(big, "wb") as f:
                        written = 0
                        while written < size:
                                n = min(len(block), size - written)
                                f.write(block[:n])
                                written += n
                bt.chown_user(big)
                os.sync()
                print(f"  made {big} ({size / MB:.0f} MB)", flush=True)
                mem = MemorySampler(fx.daemon_proc.pid)
                with mem:
                        t = time.monotonic()
                        r = fx.ctl(fixture.USER_ALLOWED, "backup", "--name", "big.zip", timeout=7200)
                        res["backup_seconds"] = time.monotonic() - t
                if r.returncode != 0:
                        fail(f"backup of the big file failed:\n{r.stdout}\n{r.stderr}")
                res["backup_memory_kb"] = {"daemon": mem.daemon_peak, "worker": mem.worker_peak,
                                           "daemon_plus_worker": mem.both_peak}
                archive = os.path.join(exp["backup_folder"], "big.zip")
                res["archive_bytes"] = os.path.getsize(archive)
                with zipfile.ZipFile(archive) as z:
                        zip64 = [i.filename for i in z.infolist() if 0x0001 in bt_extra_ids(i.extra)]
                res["zip64_entries"] = zip64
                u = subprocess.run(["unzip", "-tqq", archive], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                res["unzip_t"] = "ok" if u.returncode == 0 else u.stdout[-500:]
                print(f"  backup {res['backup_seconds']:.1f} s, unzip -t: {res['unzip_t']}, ZIP64: {zip64}", flush=True)
                os.unlink(big)
                mem = MemorySampler(fx.daemon_proc.pid)
                with mem:
                        t = time.monotonic()
                        r = fx.ctl("root", "restore", "big.zip", "--yes", "--skip-plugins", "--no-restart", timeout=7200)
                        res["restore_seconds"] = time.monotonic() - t
                res["restore_result"] = "ok" if r.returncode == 0 else (r.stderr or r.stdout)[-500:]
                res["restore_memory_kb"] = {"daemon": mem.daemon_peak, "worker": mem.worker_peak,
                                            "daemon_plus_worker": mem.both_peak}
        return res


def bt_extra_ids(extra):
        ids, i = [], 0
        while i + 4 <= len(extra):
                hid = int.from_bytes(extra[i:i + 2], "little")
                size = int.from_bytes(extra[i + 2:i + 4], "little")
                ids.append(hid)
                i += 4 + size
        return ids


def level_conf(args):
        return f"[Backup]\nCompressionLevel={args.level}\n" if args.level is not None else ""


def machine():
        model = ""
        with open("/proc/cpuinfo") as f:
                for line in f:
                        if line.startswith("model name"):
                                model = line.split(":", 1)[1].strip()
                                break
        with open("/proc/meminfo") as f:
                mem_kb = int(f.readline().split()[1])
        return {"cpu": model, "cpus": os.cpu_count(), "memory_gib": round(mem_kb / (1 << 20), 1),
                "date": time.strftime("%Y-%m-%d"), "load_before": os.getloadavg()[0],
                "kernel": os.uname().release}


def corpus_summary(exp, entries):
        total = sum(os.path.getsize(src) for _, src in entries)
        return {"files": len(entries), "bytes": total}


# ------------------------------------------------------------------------------------------------------
# Report

def report(res, args):
        m, c = res["machine"], res.get("corpus", {})
        out = [f"opbackup benchmark, {m['date']}: {m['cpu']}, {m['cpus']} CPUs, {m['memory_gib']} GiB; "
               f"load average before: {m['load_before']:.2f}"]
        if c:
                out.append(f"corpus: {c['files']} files, {c['bytes'] / MB:.0f} MB; {args.runs} runs each, medians; "
                           f"warm page cache; every run ends with sync; other tools at {args.peer_priority} priority "
                           f"(opbackup's worker: idle)")

        def table(title, rows, with_size):
                base = rows.get("opbackup") or min(rows.values(), key=lambda r: r["seconds"])
                out.append("")
                out.append(title)
                head = f"  {'':34} {'median':>8} {'ratio':>7} {'best':>8} {'ratio':>7} {'CPU':>7} {'ratio':>7}"
                if with_size:
                        head += f" {'archive':>10} {'vs OctoPrint':>13}"
                out.append(head)
                octo = rows.get("OctoPrint way (zipfile, level 6)", {}).get("bytes")
                for tool, r in rows.items():
                        line = (f"  {tool:34} {r['seconds']:7.2f}s {r['seconds'] / base['seconds']:6.1f}x"
                                f" {r['best']:7.2f}s {r['best'] / base['best']:6.1f}x"
                                f" {r['cpu_seconds']:6.1f}s {r['cpu_seconds'] / max(base['cpu_seconds'], 0.01):6.1f}x")
                        if with_size:
                                rel = f"{(r['bytes'] / octo - 1) * 100:+.1f}%" if octo else ""
                                line += f" {r['bytes'] / MB:8.1f}MB {rel:>13}"
                        out.append(line)
                out.append("  (ratio: the tool's figure divided by opbackup's; CPU: user + system time of all its "
                           "processes)")

        if "backup" in res:
                table("Backup", res["backup"], True)
                if "backup_again" in res:
                        a, octo = res["backup_again"], res["backup"].get("OctoPrint way (zipfile, level 6)")
                        ratio = f"; OctoPrint's way is {octo['seconds'] / a['seconds']:.1f}x slower" if octo else ""
                        out.append(f"  opbackup again, nothing changed since its last backup (files cache): "
                                   f"{a['seconds']:.2f}s median, best {a['best']:.2f}s, CPU {a['cpu_seconds']:.1f}s{ratio}")
                if "deflate_floor" in res:
                        fl, op = res["deflate_floor"], res["backup"]["opbackup"]
                        floor = fl["cpu_seconds"] / fl["threads"]
                        out.append(f"  codec floor: libdeflate level {fl['level']} alone takes {fl['cpu_seconds']:.2f} s of CPU for the "
                                   f"{fl['bytes'] / MB:.0f} MB opbackup deflates, {floor:.2f} s on {fl['threads']} threads; opbackup's "
                                   f"fresh backup: {op['seconds']:.2f} s wall = {op['seconds'] / floor:.2f}x that (best "
                                   f"{op['best'] / floor:.2f}x), CPU {op['cpu_seconds']:.2f} s = {op['cpu_seconds'] / fl['cpu_seconds']:.2f}x")
                mem = res["backup_memory_kb"]
                out.append(f"  peak RSS during backups: daemon {mem['daemon'] / 1024:.1f} MB, worker {mem['worker'] / 1024:.1f} MB, "
                           f"both at once {mem['daemon_plus_worker'] / 1024:.1f} MB")
        if "repeat" in res:
                r = res["repeat"]
                total = r["instance_bytes"]
                out.append("")
                out.append(f"Repeat backup, nothing changed, with and without the files cache ({total / MB:.0f} MB instance; "
                           f"throttled: {res.get('repeat_throttle', '')}, page cache dropped first)")
                out.append(f"  {'':40} {'median':>8} {'best':>8} {'CPU':>6} {'instance read':>14} {'rchar':>9} {'read_bytes':>11}")
                for key, v in r["rows"].items():
                        out.append(f"  {key:40} {v['seconds']:7.2f}s {v['best']:7.2f}s {v['cpu_seconds']:5.1f}s "
                                   f"{v['instance_bytes_read'] / MB:9.1f} MB ({v['instance_bytes_read'] / total * 100:4.1f}%) "
                                   f"{v['rchar'] / MB:6.0f} MB {v['read_bytes'] / MB:8.0f} MB")
                for condition in ("warm", "cold", "throttled"):
                        a, b = r["rows"].get(f"{condition}/files cache"), r["rows"].get(f"{condition}/no files cache (as before)")
                        if a and b:
                                out.append(f"  {condition}: the files cache makes the repeat backup {b['seconds'] / a['seconds']:.1f}x "
                                           f"faster, reads {a['instance_bytes_read'] / total * 100:.2f}% of the instance's bytes "
                                           f"(without: {b['instance_bytes_read'] / total * 100:.0f}%), and {a['rchar'] / max(b['rchar'], 1) * 100:.0f}% "
                                           f"of the bytes read() in all")
        for tool, why in res.get("restore_failed", {}).items():
                out.append("")
                out.append(f"Restore with {tool} failed: {why.splitlines()[0] if why else ''}")
        if res.get("restore"):
                rows = res["restore"]
                table("Restore (+ sync)" + ("" if "opbackup" in rows else ": ratios to the fastest"), rows, False)
                mem = res["restore_memory_kb"]
                out.append(f"  peak RSS during restores: daemon {mem['daemon'] / 1024:.1f} MB, worker {mem['worker'] / 1024:.1f} MB, "
                           f"both at once {mem['daemon_plus_worker'] / 1024:.1f} MB")
        if "list_backups" in res:
                lb = res["list_backups"]
                out.append("")
                out.append(f"ListBackups with {lb['count']} backups: first call {lb['first_ms']:.0f} ms, "
                           f"cached {lb['cached_ms']:.1f} ms")
        if "idle_daemon_rss_kb" in res:
                out.append("idle daemon RSS: " + ", ".join(
                        f"{k} {v['VmRSS'] / 1024:.1f} MB (anonymous {v['RssAnon'] / 1024:.1f}, files {v['RssFile'] / 1024:.1f})"
                        for k, v in res["idle_daemon_rss_kb"].items()))
        if "big_file" in res:
                b = res["big_file"]
                out.append("")
                out.append(f"One {b['file_bytes'] / MB:.0f} MB file: backup {b['backup_seconds']:.1f} s "
                           f"({b['archive_bytes'] / MB:.0f} MB, unzip -t {b['unzip_t']}, ZIP64 entries {b['zip64_entries']}), "
                           f"peak RSS daemon {b['backup_memory_kb']['daemon'] / 1024:.1f} MB + worker "
                           f"{b['backup_memory_kb']['worker'] / 1024:.1f} MB")
                out.append(f"  restore {b['restore_seconds']:.1f} s ({b['restore_result']}), peak RSS daemon "
                           f"{b['restore_memory_kb']['daemon'] / 1024:.1f} MB + worker {b['restore_memory_kb']['worker'] / 1024:.1f} MB")
        print("\n".join(out))


def main():
        ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
        ap.add_argument("--build", default=os.environ.get("OPBACKUP_BUILD", os.path.join(SOURCE_ROOT, "build")),
                        help="meson build directory with service/opbackupd and client/opbackupctl")
        ap.add_argument("--size", default="bench", help="corpus size: bench (~500 MB) or <N>M (gen-instance.py)")
        ap.add_argument("--runs", type=int, default=3, help="timed runs of each tool (median reported)")
        ap.add_argument("--level", type=int, help="opbackup's CompressionLevel (default: the daemon's default)")
        ap.add_argument("--only", default="backup,repeat,restore,list",
                        help="parts: backup, repeat, restore, list ('': none)")
        ap.add_argument("--throttle", type=float, default=30, help="MB/s of reads for the throttled repeat backups")
        ap.add_argument("--big-file", help="also back up (and restore) one file of this size, e.g. 4G")
        ap.add_argument("--workdir", default="/var/tmp", help="where the corpus and archives go")
        ap.add_argument("--backups-dir", help="where the backup folder goes (default: --workdir)")
        ap.add_argument("--json", help="also write the results to this file")
        ap.add_argument("--peer-priority", choices=("idle", "normal"), default="idle",
                        help="CPU and I/O priority of the other tools (opbackup's workers always run at idle)")
        ap.add_argument("--octoprint-way", nargs=2, metavar=("EXPECTED_JSON", "OUT"), help=argparse.SUPPRESS)
        ap.add_argument("--extract", nargs=2, metavar=("ZIP", "DEST"), help=argparse.SUPPRESS)
        args = ap.parse_args()

        # The peers, run as children so that their time and CPU are theirs alone.
        if args.octoprint_way:
                octoprint_way(*args.octoprint_way)
                return
        if args.extract:
                extract_with_zipfile(*args.extract)
                return

        if os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3") and os.path.exists("/usr/bin/python3"):
                # Debian's python3 (python3-dbus, and the interpreter the test users may run).
                os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
        preflight(args)
        if args.peer_priority == "normal":
                PEER_PREFIX.clear()
        import signal
        signal.signal(signal.SIGTERM, lambda signo, frame: sys.exit(128 + signo))    # tear the fixture down
        os.environ["OPBACKUPD"] = os.path.join(os.path.abspath(args.build), "service", "opbackupd")
        os.environ["OPBACKUPCTL"] = os.path.join(os.path.abspath(args.build), "client", "opbackupctl")
        os.environ["OPBACKUP_SOURCE_ROOT"] = SOURCE_ROOT
        import tempfile
        tempfile.tempdir = args.workdir
        import fixture
        if not fixture.in_private_mount_namespace():
                fixture.reexec_in_private_mount_namespace()      # like tests/integration/run.sh
        parts = set(args.only.split(",")) - {""}
        results = {}
        # The backups go outside basedir: a restore then has no backup folder to carry over, like the peers.
        backups = os.path.join(args.backups_dir or args.workdir, f"opbackup-bench-backups-{os.getpid()}")
        instances = {"bench": {"size": args.size, "extra_conf": level_conf(args),
                               "gen_args": ["--backup-path", backups]},
                     "many": {"size": "tiny"}}
        print(f"bench: generating the corpus (--size {args.size}) ...", flush=True)
        try:
                with fixture.Fixture(instances=instances) as fx:
                        b = Bench(args, fx)
                        b.idle_rss("after start")
                        if "backup" in parts:
                                b.backup()
                        if "repeat" in parts:
                                b.repeat()
                        if "restore" in parts:
                                b.restore()
                        if "list" in parts:
                                b.list_backups()
                        b.idle_rss("after the runs")
                        results = b.results
        finally:
                shutil.rmtree(backups, ignore_errors=True)
        results["peer_priority"] = args.peer_priority
        if args.big_file:
                print(f"bench: one {args.big_file} file ...", flush=True)
                results["big_file"] = big_file_check(args)
        print()
        report(results, args)
        if args.json:
                with open(args.json, "w") as f:
                        json.dump(results, f, indent=2)


if __name__ == "__main__":
        main()
