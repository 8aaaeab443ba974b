#!/usr/bin/python3
# Hostile and broken backups through the real daemon (opbackupd(8), RESTORE, step 3: the whole archive is
# checked, entry names included, before anything changes). The corpus is tests/unit/make-hostile-zips.py's
# (zip slip, absolute and backslash names, symlink/device/FIFO entries, encrypted entries, unknown methods,
# truncated and damaged zips, bad metadata, newer versions, missing files, name limits, file/folder
# clashes, ...)
# plus a few made here: more than the free space (the instance lives on a small tmpfs), and more than
# 1,000,000 entries (test_million_entries, written raw with ZIP64 end records: ~110 MB, ~20 s).
#
# Each is passed to RestoreBackupFromFile as a file the client opened. It must be refused, as an error of
# the call (the import finds no OctoPrint backup in it) or as a failed job (validation finds the problem
# before anything changes), with a message that names the problem. Afterwards the instance is exactly as
# before (every file, folder, mode, owner, inode and time of basedir and next to it; nothing written
# outside), nothing is left in the staging location, no journal. A file the import refused is not in the
# backup folder, hidden or not; one it accepted (its metadata is fine) is stored there as a copy, and
# restoring that copy by name (RestoreBackup) is refused the same way.
# A good backup from the same corpus restores, as a control that the checks can see a change.

import os
import re
import struct
import subprocess
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture  # noqa: E402
from fixture import Fixture, expect, expect_eq, IFACE_INSTANCE  # noqa: E402
import backuptest as bt  # noqa: E402
import restoretest as rt  # noqa: E402

MAKE_HOSTILE = os.path.join(fixture.SOURCE_ROOT, "tests", "unit", "make-hostile-zips.py")
MIB = 1024 * 1024
# Free space the instance's tmpfs has beyond what the sample uses: a small backup fits with the 50 MiB a
# restore wants to spare; 4 GiB (declared-huge) and 60 MiB of zeros (over-free-space) do not.
TMPFS_SPARE = 80 * MIB
# Nothing here may reach the network: plugin lists name plugins that are not installed.
NO_REPOSITORY = "[Restore]\nPluginRepository=http://127.0.0.1:9/plugins.json\n"

# case: what the message must say (a regular expression, case-insensitive). Left out of the corpus:
# too-many-entries (20 entries, fine here: see test_million_entries), no-space (3 MiB: fits this tmpfs,
# over-free-space replaces it), many-plugins (a good backup), nul-in-name (libzip reads the NUL as a space; see test_nul_in_name).
CASES = {
        "not-a-zip": r"not a (readable )?zip",
        "empty": r"empty|not a (readable )?zip",
        "truncated": r"truncated|not a (readable )?zip|damaged",
        "entry-count-lies": r"not a (readable )?zip|inconsistent|damaged",
        "slip-dotdot": r"'\.\./evil\.txt' (leaves basedir|is outside basedir)",
        "slip-basedir-dotdot": r"'basedir/\.\./\.\./evil\.txt' leaves basedir",
        "slip-basedir-only": r"'basedir/\.\.' leaves basedir",
        "dotdot-inside": r"'basedir/uploads/\.\./evil\.txt' has a '\.\.' path component",
        "absolute": r"evil\.txt' is an absolute path",
        "backslash": r"contains a backslash",
        "drive-letter": r"'C:/basedir/evil\.txt' starts with a drive letter",
        "empty-component": r"'basedir//evil\.txt' has an empty path component",
        "dot-component": r"'basedir/\./evil\.txt' has a '\.' path component",
        "control-char": r"'basedir/a\\x01b' contains a control character",
        "newline": r"'basedir/a\\x0ab' contains a control character",
        "del-char": r"'basedir/a\\x7fb' contains a control character",
        "invalid-utf8": r"is not valid UTF-8",
        "name-too-long": r"is longer than 4096 bytes",
        "component-too-long": r"path component longer than 255 bytes",
        "outside-basedir": r"'evil\.txt' is outside basedir/",
        "outside-folder": r"'other/evil\.txt' is outside basedir/",
        "basedir-as-file": r"'basedir' is outside basedir/",
        "symlink": r"'basedir/link' is a symbolic link",
        "char-device": r"'basedir/null' is a character device",
        "block-device": r"'basedir/sda' is a block device",
        "fifo": r"'basedir/fifo' is a FIFO",
        "socket": r"'basedir/sock' is a socket",
        "unknown-type": r"'basedir/odd' has an unknown file type",
        "dir-mode-file-name": r"'basedir/d' has a directory's mode",
        "file-mode-dir-name": r"'basedir/d/' is a directory entry with a regular file's mode",
        "dir-with-data": r"'basedir/d/' is a directory entry with data",
        "file-dir-clash": r"'basedir/a' is a file, but entry 'basedir/a/b' needs it to be a folder",
        "file-direntry-clash": r"'basedir/a' is a file, but entry 'basedir/a/' needs it to be a folder",
        "clash-sorted-apart": r"'basedir/a' is a file, but entry 'basedir/a/x' needs it to be a folder",
        "encrypted": r"'basedir/secret\.txt' is encrypted",
        "method-bzip2": r"compression method 12 \(bzip2\)",
        "method-lzma": r"compression method 14 \(LZMA\)",
        "method-deflate64": r"compression method 9 \(deflate64\)",
        "no-metadata": r"no metadata\.json|lacks metadata\.json",
        "metadata-not-json": r"metadata\.json is not (valid JSON|a JSON object)",
        "metadata-trailing-garbage": r"metadata\.json is not (valid JSON|a JSON object)",
        "metadata-array": r"metadata\.json is not a JSON object",
        "metadata-no-version": r"metadata\.json has no (\"version\" string|version)",
        "metadata-version-number": r"metadata\.json has no (\"version\" string|version)",
        "metadata-bad-version": r"\"banana\", which is not a version number",
        "metadata-too-large": r"metadata\.json is (implausibly large|larger than 64 KiB)",
        "metadata-directory": r"metadata\.json",
        "newer-version": r"newer version of OctoPrint.*at least OctoPrint 1\.12\.0",
        "newer-major": r"newer version of OctoPrint.*at least OctoPrint 2\.0\.0",
        "duplicate-metadata-newer": r"newer version of OctoPrint.*at least OctoPrint 1\.99\.0",
        "missing-config": r"lacks basedir/config\.yaml",
        "missing-users": r"lacks basedir/users\.yaml",
        "config-is-folder": r"lacks basedir/config\.yaml",
        "plugins-not-json": r"plugin_list\.json is not a JSON list",
        "plugins-not-array": r"plugin_list\.json is not a JSON list",
        "plugins-no-key": r"plugin_list\.json is malformed \(entry 1 has no \"key\" string\)",
        "plugins-key-number": r"plugin_list\.json is malformed \(entry 1 has no \"key\" string\)",
        "plugins-bad-url": r"plugin_list\.json is malformed \(entry 1 has a \"url\"",
        "plugins-not-object": r"plugin_list\.json is malformed \(entry 1 is not an object\)",
        "plugins-too-large": r"plugin_list\.json is larger than",
        "declared-huge": r"Not enough free space to restore this backup",
        "inflate-beyond-size": r"'basedir/bomb\.bin' inflates beyond its declared size",
        "shorter-than-declared": r"'basedir/short\.bin' is shorter than its declared size",
        "crc-mismatch": r"'basedir/stored\.txt' fails its CRC check",
        "corrupt-deflate": r"'basedir/broken\.txt' is damaged",
        "large-inflate-beyond": r"'basedir/uploads/pieces\.gcode' inflates beyond its declared size",
        "large-shorter": r"'basedir/uploads/pieces\.gcode' is shorter than its declared size",
        "large-crc-mismatch": r"'basedir/uploads/pieces\.gcode' fails its CRC check",
        "large-corrupt-piece": r"'basedir/uploads/pieces\.gcode' is damaged",
        "large-stream-beyond": r"'basedir/uploads/stream\.gcode' inflates beyond its declared size",
        # Made here.
        "over-free-space": r"Not enough free space to restore this backup: it needs 11\d MiB",
        "deep-slip": r"leaves basedir",
        "symlink-dir": r"'basedir/uploads/' is (a symbolic link|a directory entry with data)",
}


def make_extra_cases(out):
        """Cases made here, with CPython's zipfile like make-hostile-zips.py."""
        import json
        import stat
        import zipfile
        meta = json.dumps({"version": "1.11.8", "excludes": []}).encode()

        def base(z):
                z.writestr("metadata.json", meta)
                z.writestr("basedir/config.yaml", b"appearance:\n  name: Test\n")
                z.writestr("basedir/users.yaml", b"admin:\n  active: true\n")

        # 60 MiB of zeros: a few KB compressed, but 110 MiB with the 50 MiB a restore keeps free.
        with zipfile.ZipFile(os.path.join(out, "over-free-space.zip"), "w", zipfile.ZIP_DEFLATED) as z:
                base(z)
                with z.open("basedir/uploads/zeros.bin", "w") as f:
                        chunk = b"\0" * MIB
                        for _ in range(60):
                                f.write(chunk)
        # Up and out through a plausible folder.
        with zipfile.ZipFile(os.path.join(out, "deep-slip.zip"), "w", zipfile.ZIP_DEFLATED) as z:
                base(z)
                z.writestr("basedir/uploads/a/b/../../../../etc/cron.d/evil", b"* * * * * root id\n")
        # A folder entry that is a symlink (to /etc): what later entries would be written through.
        with zipfile.ZipFile(os.path.join(out, "symlink-dir.zip"), "w", zipfile.ZIP_DEFLATED) as z:
                base(z)
                zi = zipfile.ZipInfo("basedir/uploads/")
                zi.create_system = 3
                zi.external_attr = (stat.S_IFLNK | 0o777) << 16
                z.writestr(zi, b"/etc")
                z.writestr("basedir/uploads/passwd", b"evil\n")


def tmpfs_instance(fx):
        """inst1 on a tmpfs with TMPFS_SPARE bytes free (the fixture made nothing: generate False)."""
        root = fx.instance_root("inst1")
        os.makedirs(root)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256m,mode=0755", "tmpfs", root], check=True)
        fx._mounts.append(root)
        fx.generate_instance("inst1", extra=["--restart-command", "true"])
        st = os.statvfs(root)
        used = (st.f_blocks - st.f_bfree) * st.f_frsize
        subprocess.run(["mount", "-o", f"remount,size={used + TMPFS_SPARE}", root], check=True)


class Corpus:
        def __init__(self, fx):
                self.dir = os.path.join(fx.dir, "corpus")
                self.watch = os.path.join(fx.dir, "watch")      # absolute names in the corpus point here
                os.makedirs(self.dir)
                os.makedirs(self.watch)
                os.chmod(fx.dir, 0o755)
                subprocess.run([fixture.PYTHON, "-W", "error", MAKE_HOSTILE, self.dir, self.watch], check=True)
                make_extra_cases(self.dir)
                for n in os.listdir(self.dir):
                        p = os.path.join(self.dir, n)
                        if os.path.isfile(p):
                                os.chmod(p, 0o644)

        def path(self, case):
                return os.path.join(self.dir, case + ".zip")


class Watcher:
        """Everything a refused restore must leave as it was: the instance (basedir, and next to it venv,
        timelapse folder, no staging, no journal; the backup folder apart), the fixture dir's listing, the
        folder the corpus's absolute names point into, and the backup folder's files."""

        def __init__(self, fx, corpus):
                self.fx = fx
                self.base = fx.basedir()
                self.folder = fx.expected()["backup_folder"]
                self.folder_rel = os.path.relpath(self.folder, os.path.dirname(self.base))
                self.corpus = corpus

        def state(self):
                return {"instance": rt.instance_state(self.base, skip=[self.folder_rel]),
                        "fixture dir": sorted(os.listdir(self.fx.dir)),
                        "watched folder": sorted(os.listdir(self.corpus.watch)),
                        "/": sorted(os.listdir("/"))}

        def expect_unchanged(self, before, what):
                after = self.state()
                for k in before:
                        if k == "instance":
                                rt.expect_same(after[k], before[k], f"{what}: the instance changed")
                        else:
                                expect_eq(after[k], before[k], f"{what}: listing of the {k}")
                rt.expect_no_leftovers(self.base, what)


def refused(o, case, pattern, how):
        expect(o.refused(), f"{case} ({how}): not refused: {o}\n{o.log_text()}")
        expect(re.search(pattern, o.message, re.I | re.S), f"{case} ({how}): the message does not name the "
               f"problem (want /{pattern}/): {o}")


def test_hostile_corpus():
        fx_spec = {"inst1": {"generate": False, "extra_conf": NO_REPOSITORY}}
        with Fixture(instances=fx_spec, prepare=tmpfs_instance) as fx, bt.Listener(fx, "root") as lis:
                corpus = Corpus(fx)
                w = Watcher(fx, corpus)
                missing = [c for c in CASES if not os.path.exists(corpus.path(c))]
                expect(not missing, f"the corpus lacks {missing}")
                expect(len(CASES) >= 25, "fewer than 25 cases")
                by_call = by_job = 0
                for case, pattern in CASES.items():
                        before = w.state()
                        files_before = rt.backup_folder_files(w.folder)
                        o = rt.restore(fx, lis, file=corpus.path(case))
                        print(f"# {case}: {o}", flush=True)
                        refused(o, case, pattern, "RestoreBackupFromFile")
                        w.expect_unchanged(before, case)
                        files_after = rt.backup_folder_files(w.folder)
                        new = {n: h for n, h in files_after.items() if n not in files_before}
                        expect(all(files_after.get(n) == h for n, h in files_before.items()),
                               f"{case}: backups in the folder changed")
                        # A refused restore takes its copy of the passed file out again: the folder is as it was.
                        expect_eq(new, {}, f"{case}: what the refused restore left in the backup folder")
                        if o.error_name:
                                by_call += 1
                                continue
                        by_job += 1
                        # The same archive imported on its own, then restored by name, is refused the same way.
                        r = fx.ctl("root", "import", corpus.path(case))
                        expect_eq(r.returncode, 0, f"{case}: import on its own ({r.stderr})")
                        stored = r.stdout.strip().rsplit(" ", 1)[-1]
                        before = w.state()
                        o2 = rt.restore(fx, lis, name=stored)
                        refused(o2, case, pattern, "RestoreBackup")
                        w.expect_unchanged(before, case + " by name")
                        fx.call("root", fx.instance_path(), IFACE_INSTANCE, "DeleteBackup", "s", stored)
                print(f"# {by_call} refused by the call, {by_job} by the job", flush=True)
                expect(by_job >= 20, f"only {by_job} cases reached the job's validation")
                expect(lis.proc.poll() is None, "the listener died")

                # The control: a good backup from the same corpus restores, and the watcher sees it.
                before = w.state()
                good = corpus.path("good-octoprint")
                o = rt.restore(fx, lis, file=good, options={"skip-plugins": True})
                expect_eq(o.result, "done", f"the good backup of the corpus: {o}\n{o.log_text()}")
                with open(os.path.join(fx.basedir(), "timelapse", "tmp", "frame1.jpg"), "rb") as f:
                        expect_eq(f.read(), b"last copy", "the good backup's duplicate entry")
                expect_eq(os.stat(os.path.join(fx.basedir(), "scripts", "suid.sh")).st_mode & 0o7777, 0o755,
                          "mode of a file the good backup stores as 06755 (no setuid/setgid from a backup)")
                try:
                        w.expect_unchanged(before, "good")
                except AssertionError:
                        pass
                else:
                        raise AssertionError("the checks saw no change after a restore that succeeded")


def test_nul_in_name():
        # opbackupd(8), RESTORE, step 3: no NUL (a control character) in a name. libzip reads a NUL inside a
        # name as a space (CPython cuts the name there), so the daemon may see "basedir/evil name": it must
        # then restore that name and nothing else, or refuse.
        fx_spec = {"inst1": {"extra_conf": NO_REPOSITORY, "gen_args": ["--restart-command", "true"]}}
        with Fixture(instances=fx_spec) as fx, bt.Listener(fx, "root") as lis:
                corpus = Corpus(fx)
                w = Watcher(fx, corpus)
                before = w.state()
                o = rt.restore(fx, lis, file=corpus.path("nul-in-name"), options={"skip-plugins": True})
                print(f"# nul-in-name: {o}", flush=True)
                if o.refused():
                        w.expect_unchanged(before, "nul-in-name")
                        return
                expect_eq(sorted(os.listdir(fx.basedir())), sorted(["config.yaml", "users.yaml", "evil name", "data",
                                                                    "logs", "watched", "generated", "uploadtemp"]),
                          "basedir after restoring nul-in-name")
                expect_eq(sorted(os.listdir(fx.dir)), before["fixture dir"], "the fixture dir")


def many_entries_zip(path, n_files):
        """A backup with 3 + n_files entries (empty files), written directly: zipfile would take minutes.
        ZIP64 end records, as more than 65535 entries need."""
        import json
        out = bytearray()
        central = bytearray()

        def add(name, data):
                off = len(out)
                crc = zlib.crc32(data)
                nb = name.encode()
                out.extend(struct.pack("<IHHHHHIIIHH", 0x04034b50, 20, 0, 0, 0, 0x21, crc, len(data), len(data),
                                       len(nb), 0))
                out.extend(nb)
                out.extend(data)
                central.extend(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014b50, (3 << 8) | 20, 20, 0, 0, 0, 0x21, crc,
                                           len(data), len(data), len(nb), 0, 0, 0, 0, 0o100644 << 16, off))
                central.extend(nb)

        add("metadata.json", json.dumps({"version": "1.11.8", "excludes": []}).encode())
        add("basedir/config.yaml", b"appearance:\n  name: Many\n")
        add("basedir/users.yaml", b"admin:\n  active: true\n")
        for i in range(n_files):
                add("basedir/e/%07d" % i, b"")
        total = n_files + 3
        cd_off = len(out)
        out.extend(central)
        z64 = len(out)
        out.extend(struct.pack("<IQHHIIQQQQ", 0x06064b50, 44, 45, 45, 0, 0, total, total, len(central), cd_off))
        out.extend(struct.pack("<IIQI", 0x07064b50, 0, z64, 1))
        out.extend(struct.pack("<IHHHHIIH", 0x06054b50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0))
        with open(path, "wb") as f:
                f.write(out)
        os.chmod(path, 0o644)


def test_million_entries():
        fx_spec = {"inst1": {"extra_conf": NO_REPOSITORY, "gen_args": ["--restart-command", "true"]}}
        with Fixture(instances=fx_spec) as fx, bt.Listener(fx, "root") as lis:
                path = os.path.join(fx.dir, "million.zip")
                many_entries_zip(path, 1000001 - 3)
                corpus = type("C", (), {"watch": os.path.join(fx.dir, "watch")})
                os.makedirs(corpus.watch)
                w = Watcher(fx, corpus)
                before = w.state()
                o = rt.restore(fx, lis, file=path)
                print(f"# million: {o}", flush=True)
                refused(o, "1000001 entries", r"1000001 entries, more than the 1000000", "RestoreBackupFromFile")
                w.expect_unchanged(before, "1000001 entries")
                os.unlink(path)


fixture.main(globals())
