#!/usr/bin/python3
# Backup names and passed files as an attacker would pick them (opbackupd(8), ARCHIVE FORMAT): DeleteBackup
# and OpenBackup with names that leave the backup folder, hidden or foreign names, an overlong name and a
# symlink planted in the backup folder are refused, and nothing outside the folder is read or removed;
# ImportBackup of what is not an OctoPrint backup (not a zip, a zip without metadata.json, a directory, a
# pipe) is refused with the reason, leaving the folder as it was. Then ListBackups with 1,000 backups in the
# folder: all listed; the times of a first and a second (cached) call are printed, not asserted.

import hashlib
import os
import shutil
import subprocess
import sys
import time
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture  # noqa: E402
from fixture import Fixture, expect, expect_eq, IFACE_INSTANCE, USER_ALLOWED  # noqa: E402
import backuptest as bt  # noqa: E402

BAD_NAMES = ["../x.zip", "a/b.zip", ".hidden.zip", "x.txt", "n" * 9996 + ".zip", "", "x.zip/", "/etc/passwd",
             "..", "x\n.zip"]


def file_digest(path):
        with open(path, "rb") as f:
                return hashlib.sha256(f.read()).hexdigest()


def test_bad_names_refused():
        with Fixture() as fx:
                exp = fx.expected()
                folder = exp["backup_folder"]
                res = bt.run_backup_ok(fx, name="real.zip")
                real = res.details["path"]

                # Valid backups where a name that escapes the folder or is not a backup name would lead.
                decoys = {
                        "../x.zip": os.path.join(os.path.dirname(folder), "x.zip"),
                        "a/b.zip": os.path.join(folder, "a", "b.zip"),
                        ".hidden.zip": os.path.join(folder, ".hidden.zip"),
                        "x.txt": os.path.join(folder, "x.txt"),
                }
                os.mkdir(os.path.join(folder, "a"))
                bt.chown_user(os.path.join(folder, "a"))
                for path in decoys.values():
                        shutil.copyfile(real, path)
                        bt.chown_user(path)
                os.symlink("/etc/passwd", os.path.join(folder, "evil.zip"))
                bt.chown_user(os.path.join(folder, "evil.zip"))
                passwd = file_digest("/etc/passwd")
                digests = {p: file_digest(p) for p in decoys.values()}
                listing = bt.folder_listing(folder)

                for name in BAD_NAMES:
                        for method in ("OpenBackup", "DeleteBackup"):
                                err = fx.call_error("root", fx.instance_path(), IFACE_INSTANCE, method, "s", name)
                                expect(err is not None, f"{method}({name[:40]!r}) succeeded")
                                expect_eq(err.name, bt.ERROR_INVALID_ARGS, f"error of {method}({name[:40]!r})")
                                expect(len(err.message) < 1000, f"the error of {method} quotes the whole long name")
                # The symlink has a valid name: it is simply no backup.
                for method in ("OpenBackup", "DeleteBackup"):
                        err = fx.call_error(USER_ALLOWED, fx.instance_path(), IFACE_INSTANCE, method, "s", "evil.zip")
                        expect(err is not None, f"{method}(evil.zip -> /etc/passwd) succeeded")
                        expect_eq(err.name, bt.ERROR_NO_SUCH_BACKUP, f"error of {method}(evil.zip -> /etc/passwd)")
                err = fx.call_error(USER_ALLOWED, fx.instance_path(), IFACE_INSTANCE, "OpenBackup", "s", "missing.zip")
                expect_eq(err and err.name, bt.ERROR_NO_SUCH_BACKUP, "error of OpenBackup(missing.zip)")

                expect_eq(file_digest("/etc/passwd"), passwd, "/etc/passwd after the calls")
                for path, digest in digests.items():
                        expect(os.path.isfile(path) and file_digest(path) == digest, f"{path} was changed or removed")
                expect(os.path.islink(os.path.join(folder, "evil.zip")), "the evil.zip symlink was removed")
                expect_eq(bt.folder_listing(folder), listing, "the backup folder after the refused calls")
                expect_eq([b["name"] for b in bt.list_backups(fx)], ["real.zip"], "ListBackups")

                # The real backup: opened read-only with its exact bytes, then deleted.
                fd = fx.call(USER_ALLOWED, fx.instance_path(), IFACE_INSTANCE, "OpenBackup", "s", "real.zip")[0]
                expect_eq(fd["unix_fd"], {"size": os.path.getsize(real), "sha256": file_digest(real), "writable": False},
                          "the fd OpenBackup(real.zip) returns")
                fx.call(USER_ALLOWED, fx.instance_path(), IFACE_INSTANCE, "DeleteBackup", "s", "real.zip")
                expect(not os.path.exists(real), "DeleteBackup(real.zip) left the file")
                for path, digest in digests.items():
                        expect(os.path.isfile(path) and file_digest(path) == digest, f"{path} was changed or removed")


def write_file(path, data):
        with open(path, "wb") as f:
                f.write(data)
        os.chmod(path, 0o644)
        return path


def test_import_refusals():
        with Fixture() as fx:
                folder = fx.expected()["backup_folder"]
                src = os.path.join(fx.dir, "import")
                os.mkdir(src, 0o755)
                not_zip = write_file(os.path.join(src, "not-a-zip.zip"), b"This is not a zip file.\n" * 100)
                no_meta = os.path.join(src, "no-metadata.zip")
                with zipfile.ZipFile(no_meta, "w", zipfile.ZIP_DEFLATED) as z:
                        z.writestr("basedir/config.yaml", "appearance:\n  name: x\n")
                        z.writestr("basedir/users.yaml", "{}\n")
                os.chmod(no_meta, 0o644)
                bad_meta = os.path.join(src, "bad-metadata.zip")
                with zipfile.ZipFile(bad_meta, "w", zipfile.ZIP_DEFLATED) as z:
                        z.writestr("metadata.json", '["not", "an", "object"]')
                        z.writestr("basedir/config.yaml", "appearance:\n  name: x\n")
                os.chmod(bad_meta, 0o644)
                before = bt.folder_listing(folder)

                def refused(arg, wanted_error, words, what, pass_fds=()):
                        err = fx.call_error(USER_ALLOWED, fx.instance_path(), IFACE_INSTANCE, "ImportBackup", "hs",
                                            arg, "imported.zip", pass_fds=pass_fds)
                        expect(err is not None, f"ImportBackup of {what} succeeded")
                        expect_eq(err.name, wanted_error, f"error of ImportBackup of {what} ({err.message})")
                        for w in words:
                                expect(w in err.message, f"the error for {what} does not say {w!r}: {err.message}")
                        expect_eq(bt.folder_listing(folder), before, f"the backup folder after importing {what}")
                        print(f"# {what}: {err.name}: {err.message}")

                refused(not_zip, bt.ERROR_INVALID_BACKUP, ["not a zip"], "a text file")
                refused(no_meta, bt.ERROR_INVALID_BACKUP, ["metadata.json"], "a zip without metadata.json")
                refused(bad_meta, bt.ERROR_INVALID_BACKUP, ["metadata.json"], "a zip whose metadata.json is no object")
                refused(src, bt.ERROR_INVALID_ARGS, ["directory"], "a directory")
                r, w = os.pipe()
                try:
                        os.write(w, open(not_zip, "rb").read()[:1000])
                        refused(r, bt.ERROR_INVALID_ARGS, ["pipe"], "a pipe", pass_fds=(r,))
                finally:
                        os.close(r)
                        os.close(w)
                expect_eq(bt.list_backups(fx), [], "ListBackups after the refused imports")

                # A real backup is imported (the positive control of the checks above).
                res = bt.run_backup_ok(fx, name="made.zip")
                good = os.path.join(src, "good.zip")
                shutil.copyfile(res.details["path"], good)
                os.chmod(good, 0o644)
                stored = fx.call(USER_ALLOWED, fx.instance_path(), IFACE_INSTANCE, "ImportBackup", "hs", good,
                                 "imported.zip")[0]
                expect_eq(stored, "imported.zip", "name of the imported backup")
                expect_eq(bt.folder_listing(folder), ["imported.zip", "made.zip"], "the backup folder after an import")
                expect_eq(file_digest(os.path.join(folder, "imported.zip")), file_digest(good), "the imported copy")


def test_list_thousand_backups():
        n = 1000
        with Fixture() as fx:
                folder = fx.expected()["backup_folder"]
                res = bt.run_backup_ok(fx, name="original.zip")
                for k in range(n):
                        path = os.path.join(folder, f"octoprint-backup-2024{k // 28 % 12 + 1:02d}{k % 28 + 1:02d}-"
                                                    f"{k // 336:02d}0000-{k:04d}.zip")
                        shutil.copy2(res.details["path"], path)
                        bt.chown_user(path)
                        os.utime(path, (1717236000 + k, 1717236000 + k))
                names = set(bt.folder_listing(folder))
                expect_eq(len(names), n + 1, "files in the backup folder")

                start = time.monotonic()
                first = bt.list_backups(fx, USER_ALLOWED)
                t_first = time.monotonic() - start
                start = time.monotonic()
                second = bt.list_backups(fx, USER_ALLOWED)
                t_second = time.monotonic() - start
                expect_eq({b["name"] for b in first}, names, "names ListBackups returns (first call)")
                expect_eq(second, first, "the second (cached) ListBackups")
                expect_eq(first[0]["name"], "original.zip", "the newest backup comes first")
                expect(all(b["version"] == bt.SAMPLE_VERSION and b["excludes"] == [] and
                           b["size"] == res.details["size"] for b in first), "every backup is described correctly")
                mtimes = [b["created_usec"] for b in first]
                expect_eq(mtimes, sorted(mtimes, reverse=True), "ListBackups order (newest first)")

                # The same client's cost of a call that does nothing much, to compare with.
                start = time.monotonic()
                bt.list_jobs(fx, USER_ALLOWED)
                t_base = time.monotonic() - start
                print(f"# ListBackups of {n + 1} backups: first call {t_first * 1000:.0f} ms, second (cached) "
                      f"{t_second * 1000:.0f} ms; ListJobs for comparison {t_base * 1000:.0f} ms (each time "
                      f"includes starting the python3-dbus client)")
                # busctl starts in a few ms: closer to the daemon's own time for a cached call.
                for method in ("ListBackups", "ListBackups", "ListJobs"):
                        path, iface = ((fx.instance_path(), IFACE_INSTANCE) if method == "ListBackups"
                                       else (fixture.MANAGER_PATH, fixture.IFACE_MANAGER))
                        start = time.monotonic()
                        r = subprocess.run(["busctl", f"--address={fx.address}", "call", fixture.BUS_NAME, path,
                                            iface, method], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                        took = time.monotonic() - start
                        expect_eq(r.returncode, 0, f"busctl call {method} ({r.stderr.decode().strip()})")
                        print(f"# busctl call {method}{' (cached)' if method == 'ListBackups' else ''}: "
                              f"{took * 1000:.1f} ms, {len(r.stdout)} bytes of output")
                print(f"# daemon VmHWM after listing: {bt.status_field(fx.daemon_proc.pid, 'VmHWM')} kB, "
                      f"VmRSS: {bt.status_field(fx.daemon_proc.pid, 'VmRSS')} kB")


fixture.main(globals())
