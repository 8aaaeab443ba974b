#!/usr/bin/python3
# ImportBackup (and the copy RestoreBackupFromFile makes) against everything else that writes into the
# backup folder (opbackupd(8), ARCHIVE FORMAT: temp files; org.opbackup.backup1(5): ImportBackup,
# RestoreBackupFromFile):
# - an import and a backup of the same name at the same time: the backup is refused while the import
#   copies, the import stores exactly the passed file; an import while a backup of its name runs takes a
#   free name, and the backup ends as it should;
# - a killed import worker leaves nothing in the backup folder (not even a hidden file), and the next
#   import of that name works; a leftover of the named fallback is removed when its worker dies, and at
#   daemon start;
# - imported backups, and the copy of a file passed for a restore, are private to the instance's user
#   (0600), as created backups are;
# - what is not a zip is refused at once, before anything is copied: a 2 GiB sparse file of zeros, and one
#   with a zip's end record pointing nowhere; nothing ever appears in the backup folder, which a refused
#   import does not make either.

import io
import os
import signal
import sys
import time
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture  # noqa: E402
from fixture import Fixture, expect, expect_eq, IFACE_INSTANCE, USER_ALLOWED  # noqa: E402
import backuptest as bt  # noqa: E402
import restoretest as rt  # noqa: E402

WORKER_IMPORT = "opbackup-import"
GIB = 1 << 30

# An additional-excludes hook that makes a backup take a while, when the flag file exists.
SLOW_HOOK = "#!/bin/sh\ncat >/dev/null\n[ -e @DIR@/slow ] && sleep 4\necho '[]'\n"


class _Holes(io.RawIOBase):
        """A file that turns long runs of zero bytes into holes: a zip of gigabytes made in a moment."""

        def __init__(self, f):
                self.f = f

        def writable(self):
                return True

        def seekable(self):
                return True

        def write(self, b):
                b = bytes(b)
                if len(b) >= 4096 and not b.strip(b"\0"):
                        self.f.seek(len(b), os.SEEK_CUR)
                        return len(b)
                return self.f.write(b)

        def tell(self):
                return self.f.tell()

        def seek(self, offset, whence=os.SEEK_SET):
                return self.f.seek(offset, whence)

        def flush(self):
                self.f.flush()


def files_dir(fx):
        d = os.path.join(fx.dir, "files")
        os.makedirs(d, exist_ok=True)
        os.chmod(d, 0o755)
        return d


def big_backup(fx, src, name, size):
        """A valid backup: SRC's entries plus a stored file of SIZE zero bytes (a hole on disk), readable by
        everybody. Copying it takes a while; making it does not."""
        path = os.path.join(files_dir(fx), name)
        with open(path, "wb") as raw, zipfile.ZipFile(src) as zin, \
             zipfile.ZipFile(_Holes(raw), "w", allowZip64=True) as zout:
                for info in zin.infolist():
                        zout.writestr(info, zin.read(info))
                info = zipfile.ZipInfo("basedir/uploads/big.bin", date_time=(2024, 1, 2, 3, 4, 6))
                info.compress_type = zipfile.ZIP_STORED
                with zout.open(info, "w", force_zip64=size >= zipfile.ZIP64_LIMIT) as w:
                        chunk = bytes(16 << 20)
                        for _ in range(size // len(chunk)):
                                w.write(chunk)
        os.chmod(path, 0o644)
        return path


def import_background(fx, path, name, user="root"):
        return fx.call_background(user, fx.instance_path(), IFACE_INSTANCE, "ImportBackup", "hs", path, name)


def wait_for_import_worker(fx, pending):
        return bt.wait_until(lambda: bt.worker_pids(fx, WORKER_IMPORT) or pending.done(), "the import worker",
                             timeout=30)


def hidden(folder):
        return [n for n in os.listdir(folder) if n.startswith(".")]


def mode_of(path):
        return os.stat(path).st_mode & 0o7777


def test_import_and_backup_of_one_name():
        def prepare(fx):
                os.chmod(os.path.join(fx.config_dir, "hooks", "additional-excludes.d", "slow"), 0o755)

        with Fixture(config_files={"hooks/additional-excludes.d/slow": SLOW_HOOK}, prepare=prepare) as fx, \
             bt.Listener(fx, "root") as lis:
                folder = fx.expected()["backup_folder"]
                src = bt.run_backup_ok(fx, name="src.zip").details["path"]
                big = big_backup(fx, src, "big.zip", 2 * GIB)
                digest = bt.sha256_file(big)

                # A backup of the name an import is copying to is refused; one with a generated name is not.
                pending = import_background(fx, big, "race.zip")
                expect(wait_for_import_worker(fx, pending) and not pending.done(), "the import ended before "
                       f"the backup could be asked for: {pending.done() and pending.wait()}")
                err = fx.call_error("root", fx.instance_path(), IFACE_INSTANCE, "CreateBackup", "asa{sv}", [],
                                    {"name": "race.zip"})
                if err is None:
                        # What the adversary did: let it run and see whose data race.zip holds.
                        stored = pending.wait(timeout=600)[0]
                        expect_eq(bt.sha256_file(os.path.join(folder, stored)), digest,
                                  f"the imported {stored} (a backup of that name was accepted during the import)")
                expect(err is not None and err.name == bt.ERROR_INVALID_ARGS and "import" in err.message,
                       f"CreateBackup(race.zip) during the import of race.zip: {err}")
                # A generated name: accepted, and done while the import copies.
                jid, _ = bt.create_backup(fx)
                removed = bt.job_removed(lis, jid, timeout=300)
                expect_eq(removed["args"][2], "done", f"a backup during an import ({removed['args'][3]})")
                stored = pending.wait(timeout=600)[0]
                expect_eq(stored, "race.zip", "the name the import was stored under")
                expect_eq(bt.sha256_file(os.path.join(folder, "race.zip")), digest, "the imported race.zip")
                expect_eq(hidden(folder), [], "hidden files in the backup folder")
                os.unlink(big)

                # An import of the name a running backup will take gets a free name; the backup is done.
                with open(os.path.join(fx.dir, "slow"), "w"):
                        pass
                jid, _ = bt.create_backup(fx, name="taken.zip")
                bt.wait_until(lambda: any(j[0] == jid and j[3] == "taken.zip" for j in bt.list_jobs(fx)), "the backup job")
                stored = fx.call("root", fx.instance_path(), IFACE_INSTANCE, "ImportBackup", "hs", src, "taken.zip")[0]
                expect_eq(stored, "taken.1.zip", "an import of the name a running backup makes")
                removed = bt.job_removed(lis, jid, timeout=300)
                expect_eq(removed["args"][2], "done", f"the backup taken.zip ({removed['args'][3]})")
                expect_eq(bt.sha256_file(os.path.join(folder, "taken.1.zip")), bt.sha256_file(src), "the import")
                bt.read_zip(os.path.join(folder, "taken.zip"))
                os.unlink(os.path.join(fx.dir, "slow"))


def test_killed_import_leaves_nothing():
        with Fixture() as fx:
                folder = fx.expected()["backup_folder"]
                src = bt.run_backup_ok(fx, name="src.zip").details["path"]
                big = big_backup(fx, src, "big.zip", GIB)
                before = bt.folder_listing(folder)

                pending = import_background(fx, big, "killed.zip")
                pids = wait_for_import_worker(fx, pending)
                expect(pids and not pending.done(), "the import ended before it could be killed")
                time.sleep(0.3)         # well into the copy
                for pid in pids:
                        os.kill(pid, signal.SIGKILL)
                try:
                        pending.wait(timeout=60)
                        raise AssertionError("ImportBackup succeeded although its worker was killed")
                except fixture.DBusError as e:
                        print(f"# the killed import: {e.name}: {e.message}")
                bt.wait_until(lambda: not bt.worker_pids(fx, WORKER_IMPORT), "the end of the import worker")
                expect_eq(bt.folder_listing(folder), before, "the backup folder after a killed import")
                stored = fx.call("root", fx.instance_path(), IFACE_INSTANCE, "ImportBackup", "hs", src, "killed.zip")[0]
                expect_eq(stored, "killed.zip", "an import of the same name after the killed one")


def test_named_fallback_leftovers_removed():
        """Where the file system has no O_TMPFILE, the copy has a name no backup uses; the daemon removes it
        when its worker dies, and at start. OPBACKUP_TEST_NO_TMPFILE makes the worker take that way."""
        with Fixture(daemon_env={"OPBACKUP_TEST_NO_TMPFILE": "1"}) as fx:
                folder = fx.expected()["backup_folder"]
                src = bt.run_backup_ok(fx, name="src.zip").details["path"]
                big = big_backup(fx, src, "big.zip", GIB)
                before = bt.folder_listing(folder)

                pending = import_background(fx, big, "killed.zip")
                pids = wait_for_import_worker(fx, pending)
                expect(pids and not pending.done(), "the import ended before it could be killed")
                bt.wait_until(lambda: hidden(folder), "the named copy")
                temp = hidden(folder)
                expect(len(temp) == 1 and temp[0].startswith(".import-") and temp[0].endswith(".tmp"),
                       f"the fallback's copy: {temp}")
                expect_eq(mode_of(os.path.join(folder, temp[0])), 0o600, "mode of the copy being made")
                for pid in pids:
                        os.kill(pid, signal.SIGKILL)
                err = None
                try:
                        pending.wait(timeout=60)
                except fixture.DBusError as e:
                        err = e
                expect(err is not None, "ImportBackup succeeded although its worker was killed")
                expect_eq(bt.folder_listing(folder), before, "the backup folder after a killed import")

                # Left by a daemon that died with its worker; the hidden file of a backup too.
                for name in (".import-0123456789abcdef.tmp", ".src.zip"):
                        with open(os.path.join(folder, name), "wb") as f:
                                f.write(b"partial")
                        bt.chown_user(os.path.join(folder, name))
                fx.restart_daemon()
                expect_eq(bt.folder_listing(folder), before, "the backup folder after the daemon started again")
                stored = fx.call("root", fx.instance_path(), IFACE_INSTANCE, "ImportBackup", "hs", src, "n.zip")[0]
                expect_eq((stored, mode_of(os.path.join(folder, stored))), ("n.zip", 0o600), "an import without O_TMPFILE")


def test_private_like_created_backups():
        spec = {"inst1": {"gen_args": ["--restart-command", "true"],
                          "extra_conf": "[Restore]\nPluginRepository=http://127.0.0.1:9/plugins.json\n"}}
        with Fixture(instances=spec) as fx, bt.Listener(fx, "root") as lis:
                folder = fx.expected()["backup_folder"]
                made = bt.run_backup_ok(fx, name="made.zip").details["path"]
                expect_eq(mode_of(made), 0o600, "mode of a created backup")
                passed = rt.readable_copy(fx, made, "passed.zip")
                expect_eq(mode_of(passed), 0o644, "mode of the file passed")
                stored = fx.call(USER_ALLOWED, fx.instance_path(), IFACE_INSTANCE, "ImportBackup", "hs", passed,
                                 "imported.zip")[0]
                expect_eq(mode_of(os.path.join(folder, stored)), 0o600, "mode of an imported backup")
                o = rt.restore_ok(fx, lis, file=passed, options={"name": "for-restore.zip", "restart": False})
                expect_eq(mode_of(os.path.join(folder, "for-restore.zip")), 0o600,
                          f"mode of the copy of the file passed for a restore ({o})")


def test_not_a_zip_refused_at_once():
        with Fixture() as fx:
                folder = fx.expected()["backup_folder"]
                d = files_dir(fx)
                zeros = os.path.join(d, "zeros.zip")
                with open(zeros, "wb") as f:
                        f.truncate(2 * GIB)
                # A zip's end record, but its central directory would lie beyond the file.
                lying = os.path.join(d, "lying.zip")
                with open(lying, "wb") as f:
                        f.truncate(2 * GIB)
                        f.seek(0, os.SEEK_END)
                        f.write(b"PK\x05\x06" + bytes(4) + (1).to_bytes(2, "little") * 2 +
                                (46).to_bytes(4, "little") + (3 * GIB).to_bytes(4, "little") + bytes(2))
                for path in (zeros, lying):
                        os.chmod(path, 0o644)
                before = bt.folder_listing(folder)
                for path, words in ((zeros, "not a zip"), (lying, "not a zip")):
                        seen = set()
                        start = time.monotonic()
                        pending = import_background(fx, path, "x.zip", user=USER_ALLOWED)
                        while not pending.done():
                                seen.update(os.listdir(folder))
                                time.sleep(0.005)
                        took = time.monotonic() - start
                        try:
                                pending.wait()
                                raise AssertionError(f"ImportBackup of {path} succeeded")
                        except fixture.DBusError as e:
                                err = e
                        print(f"# {os.path.basename(path)}: {took:.2f} s: {err.name}: {err.message}")
                        expect_eq(err.name, bt.ERROR_INVALID_BACKUP, f"error of importing {path}")
                        expect(words in err.message, f"the error does not say {words!r}: {err.message}")
                        expect_eq(sorted(seen | set(os.listdir(folder))), before,
                                  f"names seen in the backup folder while {path} was refused")
                        # The client starts python3-dbus for the call: a second is plenty; copying 2 GiB is not.
                        expect(took < 2.0, f"refusing {os.path.basename(path)} took {took:.1f} s")

                # Without a backup folder, a refusal does not make one.
                os.rmdir(folder)
                err = fx.call_error(USER_ALLOWED, fx.instance_path(), IFACE_INSTANCE, "ImportBackup", "hs", zeros, "x.zip")
                expect_eq(err and err.name, bt.ERROR_INVALID_BACKUP, "error of importing zeros.zip without a backup folder")
                expect(not os.path.exists(folder), "a refused import made the backup folder")


fixture.main(globals())
