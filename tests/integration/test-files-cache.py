#!/usr/bin/python3
# The files cache through the daemon (opbackupd.conf(5), FilesCache=): the cache is in root's state directory
# (0700), the instance user's file (what its worker writes counts against its quota), replaced only by a
# backup that was made; a backup after a backup with nothing changed reads less than 1% of the instance's
# bytes (inotify IN_ACCESS on every folder of the instance: any read by any process); a file edited with its
# mtime put back (touch -r) is read again and stored as it is now; FilesCache=no reads every file and removes
# the instance's cache. Every archive is read back with CPython's zipfile (each entry against its source) and
# unzip -t.

import ctypes
import os
import pwd
import stat
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture  # noqa: E402
from fixture import Fixture, expect, expect_eq  # noqa: E402
import backuptest as bt  # noqa: E402

IN_ACCESS = 0x00000001
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000


class ReadWatch:
        """Which of the instance's files any process read while it was on (inotify, IN_ACCESS)."""

        def __init__(self, exp):
                self.libc = ctypes.CDLL(None, use_errno=True)
                self.fd = self.libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
                expect(self.fd >= 0, "inotify_init1 failed")
                self.sources = [bt.source_path(exp, n) for n in exp["entries"] if n not in ("metadata.json", "plugin_list.json")]
                self.dirs = {}
                for d in sorted({os.path.dirname(p) for p in self.sources}):
                        wd = self.libc.inotify_add_watch(self.fd, d.encode(), IN_ACCESS)
                        expect(wd >= 0, f"inotify_add_watch {d} failed")
                        self.dirs[wd] = d
                self.read = set()

        def stop(self):
                """(bytes of the files read, each counted whole; bytes of all the files)."""
                while True:
                        try:
                                buf = os.read(self.fd, 65536)
                        except BlockingIOError:
                                break
                        i = 0
                        while i < len(buf):
                                wd, mask, cookie, n = struct.unpack_from("iIII", buf, i)
                                name = buf[i + 16:i + 16 + n].rstrip(b"\0").decode()
                                if name:
                                        self.read.add(os.path.join(self.dirs[wd], name))
                                i += 16 + n
                os.close(self.fd)
                total = sum(os.path.getsize(p) for p in self.sources)
                got = sum(os.path.getsize(p) for p in self.sources if p in self.read)
                return got, total


def check_archive(fx, exp, res):
        path = res.details["path"]
        archive = bt.read_zip(path)
        expect(archive.testzip is None, f"zipfile's testzip() found a bad entry in {path}: {archive.testzip}")
        bt.check_contents(exp, archive)
        bt.unzip_test(path)


def settle():
        """Files changed in the last 2 s are left out of the cache (their stamp may not show the next change)."""
        time.sleep(2.5)


def test_files_cache():
        instances = {"inst1": {"size": "small"},
                     "nocache": {"size": "small", "extra_conf": "[Backup]\nFilesCache=no\n"}}
        with Fixture(instances=instances) as fx:
                settle()
                cache_dir = os.path.join(fx.state_dir, "files-cache")
                exp = fx.expected("inst1")

                res = bt.run_backup_ok(fx)
                check_archive(fx, exp, res)
                cache = os.path.join(cache_dir, "inst1")
                expect(os.path.isfile(cache), f"no files cache at {cache} after a backup")
                st = os.stat(cache)
                expect_eq((st.st_uid, stat.S_IMODE(st.st_mode)), (pwd.getpwnam(fixture.USER_PRINTER).pw_uid, 0o600),
                          f"owner and mode of {cache}")
                expect_eq(stat.S_IMODE(os.stat(cache_dir).st_mode), 0o700, f"mode of {cache_dir}")
                expect_eq(sorted(os.listdir(cache_dir)), ["inst1"], f"files in {cache_dir}")

                # Nothing changed: (almost) nothing is read.
                watch = ReadWatch(exp)
                res = bt.run_backup_ok(fx)
                got, total = watch.stop()
                print(f"# repeat backup: {got} of {total} bytes of the instance's files read")
                expect("(files cache)" in res.log_text(), f"the log does not mention the files cache:\n{res.log_text()}")
                expect(got * 100 < total, f"the repeat backup read {got} of {total} bytes of the instance's files: "
                       f"{sorted(watch.read)}")
                check_archive(fx, exp, res)

                # Edited in place, same size, mtime put back: ctime tells, the file is read again.
                gcode = sorted(p for p in watch.sources if p.endswith(".gcode"))[0]
                ref = os.path.join(fx.dir, "mtime-ref")
                subprocess.run(["touch", "-r", gcode, ref], check=True)
                with open(gcode, "r+b") as f:
                        data = bytearray(f.read())
                        data[len(data) // 2] ^= 0x01
                        f.seek(0)
                        f.write(data)
                subprocess.run(["touch", "-r", ref, gcode], check=True)
                expect_eq(os.stat(gcode).st_mtime_ns, os.stat(ref).st_mtime_ns, "mtime put back")
                watch = ReadWatch(exp)
                res = bt.run_backup_ok(fx)
                watch.stop()
                expect(gcode in watch.read, f"{gcode}, edited with its mtime put back, was not read again")
                check_archive(fx, exp, res)

                # FilesCache=no: every file is read, and an old cache of the instance is removed.
                os.makedirs(cache_dir, exist_ok=True)
                old = os.path.join(cache_dir, "nocache")
                with open(old, "wb") as f:
                        f.write(b"an old cache")
                exp2 = fx.expected("nocache")
                bt.run_backup_ok(fx, instance="nocache")
                watch = ReadWatch(exp2)
                res = bt.run_backup_ok(fx, instance="nocache")
                got, total = watch.stop()
                print(f"# FilesCache=no: {got} of {total} bytes read")
                expect_eq(got, total, "bytes of the instance read with FilesCache=no")
                expect(not os.path.exists(old), f"{old} is still there with FilesCache=no")
                expect("(files cache)" not in res.log_text(), f"FilesCache=no, yet:\n{res.log_text()}")
                check_archive(fx, exp2, res)

                # An instance no longer configured: what the state directory keeps for it (its saved listing,
                # files cache, an unfinished next cache) goes at the next start; the other instance's stays.
                listing = {n: os.path.join(fx.state_dir, f"list-{n}.cache") for n in ("inst1", "nocache")}
                for name, path in listing.items():
                        fx.ctl_ok(fixture.USER_ALLOWED, "-i", name, "list")
                        expect(os.path.isfile(path), f"no saved listing {path} after opbackupctl -i {name} list")
                leftovers = [os.path.join(cache_dir, "nocache"), os.path.join(cache_dir, ".nocache.new")]
                for path in leftovers:
                        with open(path, "wb") as f:
                                f.write(b"what a removed instance left")
                with open(cache, "rb") as f:
                        kept = f.read()
                os.unlink(os.path.join(fx.config_dir, "instances.d", "nocache.conf"))
                fx.restart_daemon()
                for path in leftovers + [listing["nocache"]]:
                        expect(not os.path.exists(path), f"{path} is still there after its instance was removed")
                expect(os.path.isfile(listing["inst1"]), f"{listing['inst1']} of a configured instance was removed")
                with open(cache, "rb") as f:
                        expect(f.read() == kept, f"{cache} of a configured instance changed at start")
                expect("instance nocache is no longer configured" in fx.daemon_log(),
                       f"the daemon did not say why it removed them:\n{fx.daemon_log()[-2000:]}")
                res = bt.run_backup_ok(fx)
                expect("(files cache)" in res.log_text(), f"inst1's files cache was not used after the restart:\n"
                       f"{res.log_text()}")
                check_archive(fx, exp, res)


fixture.main(globals())
