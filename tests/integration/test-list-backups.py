#!/usr/bin/python3
# ListBackups (org.opbackup.backup1(5)): which files of the backup folder it lists and what it says of them,
# and that its cache (name + size + mtime) follows the folder. A folder with OctoPrint backups next to
# everything that is not one — a text file, zips without or with a broken metadata.json, a truncated and an
# empty file, an unreadable backup, a symlink, a directory, a FIFO, hidden and foreign names — lists the
# backups only, with their sizes, uncompressed sizes, mtimes, versions and excludes, a zip whose metadata.json
# lies past a large entry and a long archive comment included. Then the folder changes behind the daemon's
# back (a backup overwritten, one repaired, one touched, one removed, one added; one deleted through the
# daemon and made again with the same name, size and mtime): each call lists what is there, and a call with
# nothing changed lists the same again.

import os
import shutil
import sys
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture  # noqa: E402
from fixture import Fixture, expect_eq, IFACE_INSTANCE, USER_ALLOWED  # noqa: E402
import backuptest as bt  # noqa: E402


def make_zip(path, metadata, files=(), comment=b"", metadata_last=False, compression=zipfile.ZIP_DEFLATED):
        """A zip with metadata.json (text, or None for none) and files [(name, bytes)]. Returns the sum of
        the uncompressed sizes, which ListBackups reports."""
        entries = list(files)
        if metadata is not None:
                entries.insert(len(entries) if metadata_last else 0, ("metadata.json", metadata.encode()))
        with zipfile.ZipFile(path, "w", compression) as z:
                for name, data in entries:
                        z.writestr(name, data)
                z.comment = comment
        bt.chown_user(path)
        return sum(len(data) for _, data in entries)


def described(path, uncompressed, version, excludes):
        st = os.stat(path)
        return {"name": os.path.basename(path), "size": st.st_size, "uncompressed": uncompressed,
                "created_usec": st.st_mtime_ns // 1000, "version": version, "excludes": excludes}


def listed(fx):
        got = bt.list_backups(fx, USER_ALLOWED)
        mtimes = [b["created_usec"] for b in got]
        expect_eq(mtimes, sorted(mtimes, reverse=True), "ListBackups order (newest first)")
        return {b["name"]: b for b in got}


def test_what_is_listed_and_the_cache_follows_the_folder():
        with Fixture() as fx:
                folder = fx.expected()["backup_folder"]
                real = bt.run_backup_ok(fx, name="real.zip").details["path"]
                p = lambda name: os.path.join(folder, name)  # noqa: E731
                meta = '{"version": "1.9.3", "excludes": ["timelapse", "uploads"]}'
                config = ("basedir/config.yaml", b"appearance:\n  name: x\n")

                want = {"real.zip": described(real, None, bt.SAMPLE_VERSION, [])}
                with zipfile.ZipFile(real) as z:
                        want["real.zip"]["uncompressed"] = sum(i.file_size for i in z.infolist())
                n = make_zip(p("made.zip"), meta, [config, ("basedir/users.yaml", b"admin: {}\n")])
                want["made.zip"] = described(p("made.zip"), n, "1.9.3", ["timelapse", "uploads"])
                # metadata.json last, after 300 kB of data, and a 60 kB comment before the end of the
                # central directory: the reader cannot find it all in one block.
                n = make_zip(p("far.zip"), meta, [config, ("basedir/uploads/big.gcode", os.urandom(300_000))],
                             comment=b"c" * 60_000, metadata_last=True, compression=zipfile.ZIP_STORED)
                want["far.zip"] = described(p("far.zip"), n, "1.9.3", ["timelapse", "uploads"])

                # Nothing of this is a backup.
                with open(p("text.zip"), "w") as f:
                        f.write("This is not a zip file.\n" * 100)
                bt.chown_user(p("text.zip"))
                make_zip(p("no-metadata.zip"), None, [config])
                make_zip(p("bad-metadata.zip"), '["not", "an", "object"]', [config])
                make_zip(p("no-version.zip"), '{"excludes": []}', [config])
                with open(real, "rb") as f:
                        data = f.read()
                with open(p("truncated.zip"), "wb") as f:
                        f.write(data[:len(data) // 2])
                bt.chown_user(p("truncated.zip"))
                open(p("empty.zip"), "wb").close()
                bt.chown_user(p("empty.zip"))
                shutil.copyfile(real, p("unreadable.zip"))
                bt.chown_user(p("unreadable.zip"))
                os.chmod(p("unreadable.zip"), 0)
                os.symlink("real.zip", p("link.zip"))
                bt.chown_user(p("link.zip"))
                os.mkdir(p("dir.zip"))
                bt.chown_user(p("dir.zip"))
                os.mkfifo(p("fifo.zip"))
                bt.chown_user(p("fifo.zip"))
                for name in (".hidden.zip", "foreign.txt", "-dash.zip"):
                        shutil.copyfile(real, p(name))
                        bt.chown_user(p(name))

                first = listed(fx)
                expect_eq(first, want, "ListBackups of the folder")
                expect_eq(listed(fx), want, "ListBackups again (cached)")

                # Behind the daemon's back.
                with open(p("made.zip"), "w") as f:            # overwritten: no backup any more
                        f.write("garbage\n")
                del want["made.zip"]
                n = make_zip(p("bad-metadata.zip"), '{"version": "1.10.0"}', [config])   # repaired
                want["bad-metadata.zip"] = described(p("bad-metadata.zip"), n, "1.10.0", [])
                st = os.stat(p("far.zip"))                      # touched: same size, new mtime
                os.utime(p("far.zip"), ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
                want["far.zip"]["created_usec"] = os.stat(p("far.zip")).st_mtime_ns // 1000
                os.remove(p("real.zip"))                        # removed
                del want["real.zip"]
                n = make_zip(p("new.zip"), meta, [config], compression=zipfile.ZIP_STORED)     # added
                want["new.zip"] = described(p("new.zip"), n, "1.9.3", ["timelapse", "uploads"])
                expect_eq(listed(fx), want, "ListBackups after the folder changed")
                expect_eq(listed(fx), want, "ListBackups after the folder changed, again (cached)")

                # Deleted through the daemon, then made again with the same name, size and mtime before the
                # next call: read again, not taken from the cache.
                st = os.stat(p("new.zip"))
                fx.call(USER_ALLOWED, fx.instance_path(), IFACE_INSTANCE, "DeleteBackup", "s", "new.zip")
                make_zip(p("new.zip"), meta.replace("1.9.3", "1.9.4"), [config], compression=zipfile.ZIP_STORED)
                os.utime(p("new.zip"), ns=(st.st_atime_ns, st.st_mtime_ns))
                expect_eq(os.path.getsize(p("new.zip")), st.st_size, "the size of the new new.zip")
                want["new.zip"] = described(p("new.zip"), n, "1.9.4", ["timelapse", "uploads"])
                expect_eq(listed(fx), want, "ListBackups after new.zip was deleted and made again")

fixture.main(globals())
