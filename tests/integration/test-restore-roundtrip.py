#!/usr/bin/python3
# Restore round trips through the real daemon and client (opbackupd(8), RESTORE):
# - back up (excluding uploads), change the instance (edit, add, delete, chmod files; change uploads,
#   logs, watched), `opbackupctl restore --yes NAME` as root: basedir is the backed-up state again
#   (content, mode, mtime, owner), while the backup folder with all its backups, the excluded uploads and
#   the always-excluded folders (logs, watched, generated, uploadtemp) are the ones from before the
#   restore, untouched (same inodes, same times);
# - RestoreBackupFromFile with a file the client passes, keep-previous: the same, the file is kept as a
#   new backup, and basedir.opbackup-old holds the pre-restore tree; a restore while that folder exists
#   is refused without changing anything;
# - a zip written by /usr/bin/python3's zipfile the way OctoPrint writes backups (duplicate
#   basedir/timelapse/tmp/* entries, the last copy different; a setuid file) restored with
#   `opbackupctl restore --yes FILE`: the last duplicate is on disk, setuid is gone.

import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture  # noqa: E402
from fixture import Fixture, expect, expect_eq, USER_PRINTER  # noqa: E402
import backuptest as bt  # noqa: E402
import restoretest as rt  # noqa: E402

INSTANCE = {"inst1": {"gen_args": ["--restart-command", "true"]}}


def backup_ctl(fx, *args):
        r = fx.ctl_ok("root", "backup", *args)
        m = re.search(r"^Backup located at (/\S+\.zip)$", r.stdout, re.M)
        expect(m, f"backup did not say where the backup is:\n{r.stdout}")
        return m.group(1)


def write(path, data, mode=0o644, mtime=None):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        bt.write_as_printer(path, data, mode)
        if mtime is not None:
                os.utime(path, (mtime, mtime))


def first_file(snap, prefix):
        names = sorted(r for r, a in snap.items() if a[0] == "f" and r.startswith(prefix))
        expect(names, f"the sample has no file under {prefix}")
        return names[0]


def expect_backed_up_state(fx, s0, carry, what):
        """Every file of the backed-up tree S0 outside CARRY is back exactly (content, mode, size, owner),
        with its mtime to the second (DOS time, which zips hold, counts in 2 s steps: an odd second may be
        one off)."""
        now = rt.snapshot(fx.basedir(), strict=True)
        bad = []
        for rel, a in s0.items():
                if a[0] != "f" or any(rel == c or rel.startswith(c + "/") for c in carry):
                        continue
                b = now.get(rel)
                if b is None:
                        bad.append(f"{rel}: missing")
                elif b[:6] != a[:6]:
                        bad.append(f"{rel}: {b[:6]} instead of {a[:6]}")
                elif b[6] != a[6] and not (a[6] % 2 == 1 and abs(b[6] - a[6]) <= 1):
                        bad.append(f"{rel}: mtime {b[6]} instead of {a[6]}")
        expect(not bad, f"{what}: files of the backed-up tree not restored as they were:\n  " + "\n  ".join(bad[:20]))


def old_tree_matches(old, before, carry, what):
        """basedir.opbackup-old is the pre-restore tree BEFORE (strict), less what was carried over: the
        same files (same inodes: the tree itself, moved aside) and folders."""
        want = {}
        for rel, a in before.items():
                if any(rel == c or rel.startswith(c + "/") for c in carry):
                        continue
                want[rel] = a if a[0] == "f" else a[:4]
        got = {rel: (a if a[0] == "f" else a[:4]) for rel, a in rt.snapshot(old, strict=True).items()}
        rt.expect_same(got, want, f"{what}: basedir.opbackup-old is not the tree from before the restore")


def test_roundtrip():
        with Fixture(instances=INSTANCE) as fx, bt.Listener(fx, "root") as lis:
                exp = fx.expected()
                base = fx.basedir()
                uid, gid = bt.uid_of(USER_PRINTER), os.stat(base).st_gid
                folder = exp["backup_folder"]
                folder_rel = os.path.relpath(folder, base)

                # Two backups: rt-1 without uploads, rt-2 of everything.
                rt1 = backup_ctl(fx, "--exclude", "uploads", "--name", "rt-1.zip")
                rt2 = backup_ctl(fx, "--name", "rt-2.zip")
                s0 = rt.snapshot(base, strict=True)
                parent_listing = sorted(os.listdir(os.path.dirname(base)))

                # The user changes things.
                conf = os.path.join(base, "config.yaml")
                with open(conf, "a") as f:
                        f.write("# edited after the backup\nappearance:\n  color: red\n")
                deleted = first_file(s0, "printerProfiles/")
                os.unlink(os.path.join(base, deleted))
                chmodded = first_file(s0, "scripts/")
                os.chmod(os.path.join(base, chmodded), 0o600)
                edited = first_file(s0, "data/")
                write(os.path.join(base, edited), b"overwritten after the backup\n", 0o664)
                write(os.path.join(base, "added-after-backup.txt"), b"new\n")
                write(os.path.join(base, "data", "newplugin", "state.json"), b"{}\n")
                # In the excluded and always-excluded folders: must survive the restore as they are now.
                up_new = os.path.join(base, "uploads", "after-backup.gcode")
                write(up_new, b"G28 ; uploaded after the backup\n", 0o640, mtime=1700000001)
                up_deleted = first_file(s0, "uploads/")
                os.unlink(os.path.join(base, up_deleted))
                write(os.path.join(base, "logs", "octoprint.log"), b"log line written after the backup\n")
                write(os.path.join(base, "watched", "dropped.gcode"), b"G1\n")
                write(os.path.join(base, "generated", "new", "cache.bin"), b"\0" * 100)
                s1 = rt.snapshot(base, strict=True)
                expect(rt.diff(s1, s0), "the changes did not change the tree")

                # --- opbackupctl restore --yes NAME, as root.
                r = fx.ctl("root", "restore", "--yes", "rt-1.zip")
                expect_eq(r.returncode, 0, f"opbackupctl restore exit status (stdout: {r.stdout}, stderr: {r.stderr})")
                expect("Restored rt-1.zip" in r.stdout, f"restore did not say it restored rt-1.zip:\n{r.stdout}")
                carry = rt.carried_paths(folder_rel, ["uploads"])
                model = rt.restored_model(rt1, s1, carry, uid, gid)
                rt.expect_restored(base, model, "restore rt-1.zip")
                expect_backed_up_state(fx, s0, carry, "restore rt-1.zip")
                # What a user would look at first.
                with open(conf) as f:
                        expect("edited after the backup" not in f.read(), "config.yaml still has the edit")
                expect(os.path.isfile(os.path.join(base, deleted)), f"deleted {deleted} is not back")
                expect_eq(os.stat(os.path.join(base, chmodded)).st_mode & 0o777, s0[chmodded][1],
                          f"mode of {chmodded}")
                expect(not os.path.exists(os.path.join(base, "added-after-backup.txt")), "a file added after the "
                       "backup survived the restore")
                expect(not os.path.exists(os.path.join(base, "data", "newplugin")), "data/newplugin survived")
                expect(os.path.isfile(up_new), "an upload made after the backup (uploads excluded) was lost")
                expect(not os.path.exists(os.path.join(base, up_deleted)), "an upload deleted after the backup "
                       "came back, though the backup excluded uploads")
                with open(os.path.join(base, "logs", "octoprint.log"), "rb") as f:
                        expect(f.read().endswith(b"log line written after the backup\n"), "logs/octoprint.log "
                               "is not the one from before the restore")
                expect_eq(sorted(os.listdir(folder)), ["rt-1.zip", "rt-2.zip"], "the backup folder")
                expect_eq(sorted(b["name"] for b in bt.list_backups(fx)), ["rt-1.zip", "rt-2.zip"],
                          "ListBackups after the restore")
                rt.expect_no_leftovers(base, "after restore rt-1.zip")
                expect_eq(sorted(os.listdir(os.path.dirname(base))), parent_listing, "the basedir's parent")

                # --- RestoreBackupFromFile: a file the client opens and passes; keep-previous.
                passed = rt.readable_copy(fx, rt2, "passed-rt-2.zip")
                os.unlink(os.path.join(base, "users.yaml"))
                write(os.path.join(base, "uploads", "second.gcode"), b"M84\n")
                write(os.path.join(base, "translations", "de", "messages.po"), b"msgid \"\"\n")
                s2 = rt.snapshot(base, strict=True)
                folder_before = rt.backup_folder_files(folder)
                o = rt.restore_ok(fx, lis, file=passed, options={"keep-previous": True})
                carry2 = rt.carried_paths(folder_rel, [])
                expect("uploads" not in carry2, "carried_paths keeps uploads for a backup that has them")
                # The backup folder is carried over and gets the passed file besides: left out of the model.
                model2 = rt.restored_model(rt2, s2, carry2, uid, gid)
                folder_after = rt.backup_folder_files(folder)
                new = {n: h for n, h in folder_after.items() if n not in folder_before}
                expect_eq(list(new.values()), [bt.sha256_file(rt2)], "what the passed file added to the backup folder")
                expect(not any(n.startswith(".") for n in folder_after), f"hidden files left: {sorted(folder_after)}")
                new_name = list(new)[0]
                model2[f"{folder_rel}/{new_name}"] = rt.snapshot(base, strict=True)[f"{folder_rel}/{new_name}"]
                model2[folder_rel] = rt.snapshot(base, strict=True)[folder_rel]     # its mtime changed: a new file
                rt.expect_restored(base, model2, "RestoreBackupFromFile of rt-2.zip")
                expect_backed_up_state(fx, s0, carry2, "RestoreBackupFromFile of rt-2.zip")
                expect(os.path.isfile(os.path.join(base, "users.yaml")), "users.yaml is not back")
                expect(not os.path.exists(os.path.join(base, "uploads", "second.gcode")),
                       "uploads/second.gcode survived a restore of a backup that has uploads")
                expect(os.path.isfile(os.path.join(base, "uploads", up_deleted[len("uploads/"):])),
                       "an upload the full backup has is not back")
                old = rt.old_path(base)
                expect(os.path.isdir(old), f"keep-previous: {old} is missing")
                old_tree_matches(old, s2, carry2, "keep-previous")
                expect(f"is kept as {old}" in o.log_text(), f"the job log does not say where the previous basedir "
                       f"is:\n{o.log_text()}")
                rt.expect_no_leftovers(base, "after the keep-previous restore", allow_old=True)

                # A restore while basedir.opbackup-old is there is refused, and changes nothing.
                s3 = rt.instance_state(base)
                o = rt.restore(fx, lis, name="rt-1.zip")
                expect(o.refused(), f"a restore over an existing {old} was not refused: {o}")
                expect(".opbackup-old" in o.message, f"the refusal does not name {old}: {o}")
                rt.expect_same(rt.instance_state(base), s3,
                               "a refused restore changed the instance")
                shutil.rmtree(old)
                rt.expect_no_leftovers(base, "after the refused restore")


def test_octoprint_written_zip():
        with Fixture(instances=INSTANCE) as fx:
                exp = fx.expected()
                base = fx.basedir()
                uid, gid = bt.uid_of(USER_PRINTER), os.stat(base).st_gid
                frames = sorted(os.listdir(exp["folders"]["timelapse_tmp"]))
                expect(frames, "the sample has no timelapse/tmp frames")
                dup = f"basedir/timelapse/tmp/{frames[0]}"
                suid = fixture_zipinfo("basedir/scripts/suid-helper.sh", 0o104755)
                path = rt.octoprint_zip(os.path.join(fx.dir, "octoprint-backup-20240101-120000.zip"), exp,
                                        plugin_list=exp["plugin_list"],
                                        extra_entries=[(dup, b"the LAST copy of the frame"),
                                                       (suid, b"#!/bin/sh\necho setuid\n")])
                # It is the zip we mean: zipfile reads it, with the duplicates OctoPrint writes.
                names = subprocess.run([fixture.PYTHON, "-c", "import sys, zipfile; print('\\n'.join("
                                        "zipfile.ZipFile(sys.argv[1]).namelist()))", path],
                                       stdout=subprocess.PIPE, text=True, check=True).stdout.split("\n")
                expect_eq(names[0], "metadata.json", "the first entry")
                expect(names.count(dup) == 3, f"{dup} is not written three times: {names.count(dup)}")

                s1 = rt.snapshot(base, strict=True)
                r = fx.ctl("root", "restore", "--yes", path)
                expect_eq(r.returncode, 0, f"opbackupctl restore FILE exit status (stdout: {r.stdout}, "
                          f"stderr: {r.stderr})")
                folder_rel = os.path.relpath(exp["backup_folder"], base)
                carry = rt.carried_paths(folder_rel, [])
                model = rt.restored_model(path, s1, carry, uid, gid)
                now = rt.snapshot(base, strict=True)
                for rel, a in now.items():       # the imported copy of the passed file
                        if rel == folder_rel or rel.startswith(folder_rel + "/"):
                                model[rel] = a
                rt.expect_restored(base, model, "the OctoPrint-written zip")
                with open(os.path.join(base, dup[len("basedir/"):]), "rb") as f:
                        expect_eq(f.read(), b"the LAST copy of the frame", f"{dup}: the last duplicate wins")
                st = os.stat(os.path.join(base, "scripts", "suid-helper.sh"))
                expect_eq(st.st_mode & 0o7777, 0o755, "mode of a file stored setuid (no setuid from a backup)")
                expect_eq(st.st_uid, uid, "owner of the restored files")
                imported = [b for b in bt.list_backups(fx) if b["name"].startswith("octoprint-backup-20240101-120000")]
                expect(len(imported) == 1 and imported[0]["version"] == exp["octoprint_version"],
                       f"the passed file is not listed as a backup: {bt.list_backups(fx)}")
                rt.expect_no_leftovers(base, "after restoring the OctoPrint-written zip")


def fixture_zipinfo(name, mode):
        import zipfile
        zi = zipfile.ZipInfo(name, (2023, 3, 4, 5, 6, 8))
        zi.create_system = 3
        zi.external_attr = mode << 16
        zi.compress_type = zipfile.ZIP_DEFLATED
        return zi


fixture.main(globals())
