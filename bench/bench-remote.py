#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""opbackup's remote benchmark: uploads to WebDAV, S3 and SFTP against curl -T (issue: uploads at >= 80% of
curl's throughput).

Usage (as root, after a build; it brings up a private bus, polkitd and opbackupd like bench.py, and the
servers of the remote tests: tests/remote/servers.py):

    bench/bench-remote.py [--build DIR] [--size 1G] [--runs N] [--only dav,s3,sftp] [--workdir DIR] [--json FILE]

    quick smoke test:   bench/bench-remote.py --size 64M --runs 1
    memory at 6 GiB:    bench/bench-remote.py --big

--big uploads a 6 GiB backup (ZIP64; its large entry is one random MiB repeated, so that making it is quick) once
to each server and reports the peak RSS of the daemon and its helpers (without curl: the disk would need twice
the room and the time). For S3 that is a multipart upload (above MultipartThreshold=, 2 GiB).

A backup of --size (a real backup of a tiny instance with one large incompressible entry stored in it) is
uploaded through the daemon as a user would (`opbackupctl upload NAME --remote R`: the job, the remote worker,
opbackup-fetch with its credentials over its socket, the temporary name then the rename, Verify=size), and the
same file with `curl -T` to the same server with the same credentials (-u for WebDAV, --aws-sigv4 and
x-amz-content-sha256: UNSIGNED-PAYLOAD for S3, sftp:// with the same key for SFTP). The servers: apache2 mod_dav,
s3rver (node), OpenSSH's sshd, all on 127.0.0.1, so the numbers compare the clients, not a network. The tools take
turns, --runs times each; medians, the ratio of curl's time to opbackup's (opbackup's share of curl's throughput)
and the peak RSS (VmHWM) of the daemon and of every process it starts (the remote worker, opbackup-fetch), sampled
from /proc every 20 ms. Not a test: timings depend on the machine and on what else runs on it.

opbackup's workers and the helper they start run at idle priority (SCHED_IDLE, nice 19, idle I/O class), so that a
backup never slows the printer's host down: on a machine where other work runs, they get only the CPU left over.
curl runs at the same priority (chrt --idle 0 nice -n 19 ionice -c 3), unless --curl-priority normal.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SOURCE_ROOT, "tests", "integration"))
sys.path.insert(0, os.path.join(SOURCE_ROOT, "tests", "remote"))
from backuptest import descendants
from benchlib import Sampler, parse_size, proc_status_kb

MB = 1000 * 1000
DAV_SECRET = "bench-dav-secret"
S3_KEY, S3_SECRET = "OPBBENCHKEY", "bench-s3-secret"
NAME = "octoprint-backup-20261204-230000.zip"


def fail(msg):
        print(f"bench-remote: {msg}", file=sys.stderr)
        sys.exit(1)


class MemorySampler(Sampler):
        """Peak of (sum of VmRSS of the daemon and its descendants) and the largest VmHWM of one of them."""

        interval = 0.02

        def __init__(self, pid):
                self.pid = pid
                self.sum_peak = 0
                self.procs = {}

        def sample(self):
                total = 0
                for pid in [self.pid] + descendants(self.pid):
                        try:
                                comm = open(f"/proc/{pid}/comm").read().strip()
                        except OSError:
                                continue
                        total += proc_status_kb(pid, "VmRSS")
                        self.procs[comm] = max(self.procs.get(comm, 0), proc_status_kb(pid, "VmHWM"))
                self.sum_peak = max(self.sum_peak, total)


def make_big_backup(fx, user, size, repeat=False):
        """A real backup of the instance, then a copy of it under NAME with one stored entry of SIZE random bytes
        (repeat: one random MiB over and over)."""
        fx.ctl_ok(user, "backup", "--name", "small.zip", timeout=600)
        folder = os.path.join(fx.basedir("inst1"), "data", "backup")
        small = os.path.join(folder, "small.zip")
        big = os.path.join(folder, NAME)
        shutil.copy(small, big)
        with zipfile.ZipFile(big, "a", compression=zipfile.ZIP_STORED, allowZip64=True) as z:
                with z.open("timelapse/bench.bin", "w", force_zip64=True) as f:
                        left = size
                        block = os.urandom(1 << 20)
                        while left > 0:
                                n = min(left, len(block))
                                f.write(block[:n] if repeat or left % 7 else os.urandom(n))
                                left -= n
        st = os.stat(small)
        os.chown(big, st.st_uid, st.st_gid)
        os.chmod(big, st.st_mode & 0o7777)
        return big


def main():
        ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
        ap.add_argument("--build", default=os.environ.get("OPBACKUP_BUILD", os.path.join(SOURCE_ROOT, "build")))
        ap.add_argument("--size", default="1G", help="size of the uploaded file (default 1G)")
        ap.add_argument("--runs", type=int, default=3, help="timed runs of each tool (median reported)")
        ap.add_argument("--only", default="dav,s3,sftp", help="protocols: dav, s3, sftp")
        ap.add_argument("--workdir", default="/var/tmp", help="where the instance, the file and the servers' data go")
        ap.add_argument("--json", help="also write the results to this file")
        ap.add_argument("--curl-priority", choices=("idle", "normal"), default="idle",
                        help="curl's priority: idle as opbackup's helper (default), or normal")
        ap.add_argument("--big", action="store_true", help="6 GiB, one run, no curl: the peak RSS at that size")
        args = ap.parse_args()
        if args.big:
                args.size, args.runs = "6G", 1

        if os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3") and os.path.exists("/usr/bin/python3"):
                os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
        if os.geteuid() != 0:
                fail("run as root: it brings up a private bus, polkitd, opbackupd, apache2 and sshd")
        for exe in ("service/opbackupd", "client/opbackupctl", "service/opbackup-fetch"):
                if not os.access(os.path.join(args.build, exe), os.X_OK):
                        fail(f"{os.path.join(args.build, exe)} is missing: build first (bash tests/build.sh)")
        missing = [t for t in ("curl", "apache2", "node", "npm", "/usr/sbin/sshd") if not shutil.which(t)]
        if missing:
                fail("missing: " + " ".join(missing) + " (tests/install-deps.sh installs them)")
        size = parse_size(args.size)
        st = os.statvfs(args.workdir)
        need = size * (5 if args.big else 8)
        if st.f_bavail * st.f_frsize < need:
                fail(f"{args.workdir} needs about {need / MB:.0f} MB free (the file, the copies on each server)")
        build = os.path.abspath(args.build)
        os.environ["OPBACKUPD"] = os.path.join(build, "service", "opbackupd")
        os.environ["OPBACKUPCTL"] = os.path.join(build, "client", "opbackupctl")
        os.environ["OPBACKUP_FETCH"] = os.path.join(build, "service", "opbackup-fetch")
        os.environ["OPBACKUP_BUILD_ROOT"] = build
        os.environ["OPBACKUP_SOURCE_ROOT"] = SOURCE_ROOT
        import tempfile
        tempfile.tempdir = args.workdir
        import signal
        signal.signal(signal.SIGTERM, lambda signo, frame: sys.exit(128 + signo))
        import fixture
        if not fixture.in_private_mount_namespace():
                fixture.reexec_in_private_mount_namespace()
        from servers import SFTP_USER, Servers

        protos = [p for p in args.only.split(",") if p]
        s = Servers()
        results = {"size": size, "runs": args.runs, "protocols": {}}
        try:
                print("bench-remote: starting the servers ...", flush=True)
                remotes, curl = {}, {}
                if "dav" in protos:
                        url, _, _ = s.apache("opb", DAV_SECRET)
                        remotes["dav"] = (f"Type=webdav\nURL={url}/octoprint\n", f"User=opb\nPassword={DAV_SECRET}\n")
                        curl["dav"] = lambda n, url=url: ["curl", "-sSf", "-u", f"opb:{DAV_SECRET}", "-T", "{file}",
                                                          f"{url}/curl-{n}.zip"]
                if "s3" in protos:
                        url, _, _ = s.s3rver(S3_KEY, S3_SECRET)
                        remotes["s3"] = (f"Type=s3\nURL={url}/backups/host1\n",
                                         f"AccessKeyId={S3_KEY}\nSecretAccessKey={S3_SECRET}\n")
                        curl["s3"] = lambda n, url=url: ["curl", "-sSf", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user",
                                                         f"{S3_KEY}:{S3_SECRET}", "-H",
                                                         "x-amz-content-sha256: UNSIGNED-PAYLOAD", "-T", "{file}",
                                                         f"{url}/backups/curl-{n}.zip"]
                if "sftp" in protos:
                        port, home, key, fingerprint, _ = s.sshd()
                        remotes["sftp"] = (f"Type=sftp\nURL=sftp://{SFTP_USER}@127.0.0.1:{port}/~/backups\n"
                                           f"HostKeySHA256={fingerprint}\n", open(key).read())
                        # -k: curl checks no host key here (opbackup checks HostKeySHA256=).
                        curl["sftp"] = lambda n, port=port, key=key: ["curl", "-sSfk", "-u", f"{SFTP_USER}:", "--key", key,
                                                                      "--pubkey", key + ".pub", "-T", "{file}",
                                                                      f"sftp://127.0.0.1:{port}/~/curl-{n}.zip"]

                def prepare(fx):
                        for name, (conf, cred) in remotes.items():
                                path = os.path.join(fx.config_dir, "keys", name)
                                os.makedirs(os.path.dirname(path), exist_ok=True)
                                with open(path, "w") as f:
                                        f.write(cred)
                                os.chmod(path, 0o600)
                                fx.write_config_file(f"remotes.d/{name}.conf", f"[Remote]\n{conf}CredentialsFile={path}\n")

                with fixture.Fixture(instances={"inst1": {"size": "tiny"}}, prepare=prepare) as fx:
                        print(f"bench-remote: a backup of {size / MB:.0f} MB ...", flush=True)
                        big = make_big_backup(fx, fixture.USER_ALLOWED, size, repeat=args.big)
                        real = os.path.getsize(big)
                        results["file_bytes"] = real
                        for proto in protos:
                                times = {"opbackup": [], "curl": []}
                                mem = MemorySampler(fx.daemon_proc.pid)
                                for run in range(args.runs):
                                        order = ["opbackup", "curl"] if run % 2 == 0 else ["curl", "opbackup"]
                                        if args.big:
                                                order = ["opbackup"]
                                        for tool in order:
                                                with open(big, "rb") as f:      # warm: both start from the page cache
                                                        while f.read(1 << 22):
                                                                pass
                                                if tool == "opbackup":
                                                        # curl writes a new name each run: opbackup too, not a
                                                        # replacement the server must first delete the old copy of.
                                                        fx.ctl(fixture.USER_ALLOWED, "delete", "--remote", proto, NAME,
                                                               timeout=600)
                                                t = time.monotonic()
                                                if tool == "opbackup":
                                                        with mem:
                                                                r = fx.ctl(fixture.USER_ALLOWED, "upload", NAME, "--remote",
                                                                           proto, timeout=3600)
                                                else:
                                                        argv = [big if a == "{file}" else a for a in curl[proto](run)]
                                                        if args.curl_priority == "idle":
                                                                argv = ["chrt", "--idle", "0", "nice", "-n", "19",
                                                                        "ionice", "-c", "3"] + argv
                                                        r = subprocess.run(argv, capture_output=True, text=True, timeout=3600)
                                                dt = time.monotonic() - t
                                                if r.returncode != 0:
                                                        fail(f"{proto}: {tool} failed ({r.returncode}): {r.stdout} {r.stderr}\n"
                                                             + (fx.daemon_log()[-3000:] if tool == "opbackup" else ""))
                                                times[tool].append(dt)
                                                print(f"  {proto} {tool:8} run {run + 1}: {dt:6.2f} s "
                                                      f"({real / MB / dt:6.1f} MB/s)", flush=True)
                                o = statistics.median(times["opbackup"])
                                c = statistics.median(times["curl"]) if times["curl"] else float("nan")
                                results["protocols"][proto] = {
                                        "opbackup_s": times["opbackup"], "curl_s": times["curl"],
                                        "opbackup_median_s": o, "curl_median_s": c, "ratio": c / o if times["curl"] else None,
                                        "peak_rss_sum_kb": mem.sum_peak, "peak_hwm_kb": mem.procs}
        finally:
                s.close()

        print()
        print(f"upload of a {results.get('file_bytes', size) / MB:.0f} MB backup over 127.0.0.1, "
              f"median of {args.runs} run(s)")
        print(f"{'remote':28} {'opbackup':>10} {'MB/s':>7} {'curl -T':>10} {'MB/s':>7} {'opbackup/curl':>14} "
              f"{'peak RSS':>9}")
        server = {"dav": "WebDAV (apache2 mod_dav)", "s3": "S3 (s3rver)", "sftp": "SFTP (OpenSSH sshd)"}
        for proto, p in results["protocols"].items():
                mb = results["file_bytes"] / MB
                if p["curl_s"]:
                        curl_cols = (f"{p['curl_median_s']:9.2f}s {mb / p['curl_median_s']:7.1f} "
                                     f"{p['ratio'] * 100:13.0f}%")
                else:
                        curl_cols = f"{'-':>10} {'-':>7} {'-':>14}"
                print(f"{server[proto]:28} {p['opbackup_median_s']:9.2f}s {mb / p['opbackup_median_s']:7.1f} "
                      f"{curl_cols} {p['peak_rss_sum_kb'] / 1024:7.1f}MB")
                print(f"{'':28} peak VmHWM per process: " + ", ".join(
                        f"{k} {v / 1024:.1f} MB" for k, v in sorted(p["peak_hwm_kb"].items())))
        if args.json:
                with open(args.json, "w") as f:
                        json.dump(results, f, indent=2)


if __name__ == "__main__":
        main()
