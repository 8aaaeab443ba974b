#!/usr/bin/python3
# ListBackups of a large folder, and what it keeps across restarts of the daemon (org.opbackup.backup1(5),
# opbackupd(8) FILES). 10,000 backups — hard links of one zip of 20,000 entries, as a folder of nightly
# backups of a grown instance would hold — are listed completely and correctly, the first time (nothing
# known) and again after the daemon restarted, then without reading any zip (what the daemon read is kept
# in its state directory). That file never makes a listing wrong: damaged (random bytes, cut short, another
# format version), the backups are read again; a backup replaced behind the daemon's back by another zip
# of the same name — even of the same size and mtime — is read again; a deleted one is gone.

import os
import re
import shutil
import sys
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture  # noqa: E402
from fixture import Fixture, expect, expect_eq, USER_ALLOWED  # noqa: E402
import backuptest as bt  # noqa: E402

MANY = 10_000
ENTRIES = 20_000


def make_zip(path, version, n_files=2, filler=b""):
        """An OctoPrint-style zip: metadata.json first, then n_files small files. Returns the sum of the
        uncompressed sizes."""
        total = 0
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
                meta = ('{"version": "%s", "excludes": ["timelapse"]}' % version).encode()
                z.writestr("metadata.json", meta)
                total += len(meta)
                for k in range(n_files):
                        data = b"G1 X%d\n" % k + filler
                        z.writestr(f"basedir/uploads/f{k:05d}.gcode", data)
                        total += len(data)
        bt.chown_user(path)
        return total


def listed(fx):
        return {b["name"]: b for b in bt.list_backups(fx, USER_ALLOWED)}


def want_of(path, uncompressed, version):
        st = os.stat(path)
        return {"name": os.path.basename(path), "size": st.st_size, "uncompressed": uncompressed,
                "created_usec": st.st_mtime_ns // 1000, "version": version, "excludes": ["timelapse"]}


def reads_logged(fx, since):
        """(files, read) of each listing the daemon logged after the first since characters of its log."""
        return [(int(a), int(b) if b else 0) for a, b in
                re.findall(r"Listed \S+: (\d+) files(?:, (\d+) of them read|, unchanged)", fx.daemon_log()[since:])]


def restart(fx, between=None):
        """Stops the daemon, calls between(), starts it: returns where its log is then."""
        fx.stop_daemon()
        if between:
                between()
        mark = len(fx.daemon_log())
        fx.start_daemon()
        return mark


def test_ten_thousand_backups_across_a_restart():
        with Fixture() as fx:
                folder = fx.expected()["backup_folder"]
                first = os.path.join(folder, "many-000000.zip")
                n = make_zip(first, "1.10.2", ENTRIES)
                for k in range(1, MANY):
                        os.link(first, os.path.join(folder, f"many-{k:06d}.zip"))
                one = want_of(first, n, "1.10.2")
                want = {f"many-{k:06d}.zip": dict(one, name=f"many-{k:06d}.zip") for k in range(MANY)}

                got = bt.list_backups(fx, USER_ALLOWED)
                expect_eq(len(got), MANY, "backups listed the first time")
                expect_eq({b["name"]: b for b in got}, want, "ListBackups of 10,000 backups, nothing known")
                # Same mtime: newest first, then by name, backwards.
                expect_eq([b["name"] for b in got], sorted(want, reverse=True), "the order of the listing")

                cache = os.path.join(fx.state_dir, "list-inst1.cache")
                st = os.lstat(cache)
                expect_eq((st.st_uid, st.st_mode & 0o7777), (0, 0o600), "owner and mode of the saved listing")

                mark = restart(fx)
                expect_eq(listed(fx), want, "ListBackups of 10,000 backups after a restart")
                expect_eq(reads_logged(fx, mark), [(MANY, 0)], "zips read by the first listing after the restart")


def test_the_saved_listing_never_makes_a_listing_wrong():
        with Fixture() as fx:
                folder = fx.expected()["backup_folder"]
                p = lambda name: os.path.join(folder, name)  # noqa: E731
                want = {}
                for k, version in enumerate(("1.9.0", "1.9.1", "1.9.2")):
                        n = make_zip(p(f"b{k}.zip"), version)
                        want[f"b{k}.zip"] = want_of(p(f"b{k}.zip"), n, version)
                expect_eq(listed(fx), want, "the first listing")
                cache = os.path.join(fx.state_dir, "list-inst1.cache")
                good = open(cache, "rb").read()

                damages = {
                        "random bytes": os.urandom(len(good)),
                        "cut short": good[:len(good) // 2],
                        "empty": b"",
                        "another format version": good[:8] + b"\x63\x00\x00\x00" + good[12:],
                        "one byte changed": good[:-3] + bytes([good[-3] ^ 0x20]) + good[-2:],
                }
                for what, data in damages.items():
                        def damage():
                                with open(cache, "wb") as f:
                                        f.write(data)
                        mark = restart(fx, damage)
                        expect_eq(listed(fx), want, f"ListBackups with a saved listing {what}")
                        expect_eq(reads_logged(fx, mark), [(3, 3)], f"zips read with a saved listing {what}")
                        expect_eq(open(cache, "rb").read()[:8], b"OPBLIST\n", f"the listing saved again ({what})")

                # Replaced behind the daemon's back by another zip with the same name, size and mtime (a new
                # inode): read again, while it runs and after a restart.
                st = os.stat(p("b1.zip"))
                n = make_zip(p(".new"), "1.9.9")
                os.utime(p(".new"), ns=(st.st_atime_ns, st.st_mtime_ns))
                os.rename(p(".new"), p("b1.zip"))
                expect_eq(os.path.getsize(p("b1.zip")), st.st_size, "the size of the new b1.zip")
                want["b1.zip"] = want_of(p("b1.zip"), n, "1.9.9")
                expect_eq(listed(fx), want, "ListBackups after b1.zip was replaced")

                def change():
                        n = make_zip(p(".new"), "2.0.0", filler=b"longer")
                        os.rename(p(".new"), p("b2.zip"))
                        want["b2.zip"] = want_of(p("b2.zip"), n, "2.0.0")
                        # Deleted while the daemon was not running.
                        os.remove(p("b0.zip"))
                        del want["b0.zip"]
                mark = restart(fx, change)
                expect_eq(listed(fx), want, "ListBackups after a restart, b2.zip replaced and b0.zip deleted")
                expect_eq(reads_logged(fx, mark), [(2, 1)], "zips read after b2.zip was replaced")

                # Edited in place with its size and mtime put back: the ctime tells.
                st = os.stat(p("b2.zip"))
                make_zip(p(".new"), "2.0.1", filler=b"longer")
                with open(p(".new"), "rb") as f:
                        data = f.read()
                os.remove(p(".new"))
                expect_eq(len(data), st.st_size, "the size of the edited b2.zip")
                with open(p("b2.zip"), "r+b") as f:
                        f.write(data)
                os.utime(p("b2.zip"), ns=(st.st_atime_ns, st.st_mtime_ns))
                want["b2.zip"]["version"] = "2.0.1"
                expect_eq(listed(fx), want, "ListBackups after b2.zip was edited in place (touch -r)")


fixture.main(globals())
