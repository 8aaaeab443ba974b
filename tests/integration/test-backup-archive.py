#!/usr/bin/python3
# What a backup made through the daemon contains (opbackupd(8), ARCHIVE FORMAT): the sample instance of
# tests/gen-instance.py backed up with CreateBackup, then read back the way OctoPrint reads it (CPython's
# zipfile, with warnings as errors) and with unzip -t: exact entry names, metadata.json and plugin_list.json
# byte for byte, every file's bytes, size and mode equal to its source (timelapse configured outside basedir
# but stored under basedir/timelapse/), the result owned by the instance user. Then excludes, refused
# excludes, and the additional_excludes of plugins (admin drop-ins and executable hooks) run by the daemon's
# worker.

import json
import os
import stat
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture  # noqa: E402
from fixture import Fixture, expect, expect_eq, IFACE_INSTANCE, USER_ALLOWED, USER_PRINTER  # noqa: E402
import backuptest as bt  # noqa: E402

PLUGIN = "myplugin"     # a plugin data folder made for the additional-excludes tests: data/myplugin/

DROPIN = """\
# The examples of OctoPrint's additional_excludes documentation, declaratively.
[Exclude]
Paths=foo.txt
[Exclude.uploads]
Paths=.
"""

# The same as an executable hook: gets the current excludes (JSON) on stdin, prints paths relative to
# data/myplugin/. What it got goes to stderr, which the daemon logs as the job's log lines.
HOOK = """\
#!/bin/sh
input=$(cat)
echo "stdin: $input" >&2
case "$input" in
*'"uploads"'*) echo '["."]' ;;
*) echo '["foo.txt"]' ;;
esac
"""

# A second hook, run after the first (sorted by plugin name): reports what it was given.
WITNESS_HOOK = """\
#!/bin/sh
echo "witness stdin: $(cat)" >&2
echo '[]'
"""


def check_backup_file(fx, res, exp):
        """The backup a finished job names: where and whose it is; returns its path."""
        path = res.details["path"]
        expect_eq(os.path.dirname(path), exp["backup_folder"], "folder of the backup the job names")
        expect_eq(os.path.basename(path), res.details["name"], "name of the backup the job names")
        expect(os.path.isfile(path), f"the backup the job names does not exist: {path}")
        expect_eq(res.details["size"], os.path.getsize(path), "size in the job's details")
        printer = bt.uid_of(USER_PRINTER)
        expect_eq(os.stat(path).st_uid, printer, f"owner uid of {path} ({USER_PRINTER} is {printer})")
        expect_eq(os.stat(exp["backup_folder"]).st_uid, printer, f"owner uid of the backup folder")
        return path


def plugin_data_prepare(fx):
        """data/myplugin/{foo,bar}.txt, as the instance user would have them."""
        d = os.path.join(fx.basedir(), "data", PLUGIN)
        os.mkdir(d)
        bt.chown_user(d)
        bt.write_as_printer(os.path.join(d, "foo.txt"), "foo: excluded by the plugin\n")
        bt.write_as_printer(os.path.join(d, "bar.txt"), "bar: kept\n")


def entry_group(name):
        """The rank of an entry's group in the order of opbackupd(8), ARCHIVE FORMAT: metadata.json,
        config.yaml, each folder id in order (the deepest default location holding it decides), the rest of
        basedir, plugin_list.json."""
        if name == "metadata.json":
                return 0
        if name == "basedir/config.yaml":
                return 1
        if name == "plugin_list.json":
                return len(bt.FOLDER_IDS) + 3
        rel = name[len("basedir/"):]
        best = None
        for k, fid in enumerate(bt.FOLDER_IDS):
                d = fid.replace("_", "/")
                if rel.startswith(d + "/") and (best is None or len(d) > len(bt.FOLDER_IDS[best].replace("_", "/"))):
                        best = k
        return len(bt.FOLDER_IDS) + 2 if best is None else 2 + best


def plugin_names(archive):
        return sorted(n for n in archive.names() if n.startswith(f"basedir/data/{PLUGIN}/"))


# ---------------------------------------------------------------------------------------------------------

def test_backup_of_sample_instance():
        with Fixture() as fx:
                exp = fx.expected()
                res = bt.run_backup_ok(fx, user=USER_ALLOWED)
                path = check_backup_file(fx, res, exp)
                expect(res.details["name"].startswith(exp["backup_prefix"] + "-backup-"),
                       f"name {res.details['name']} does not start with {exp['backup_prefix']}-backup-")

                bt.unzip_test(path)
                z = bt.read_zip(path)
                expect_eq(z.testzip, None, "zipfile testzip()")
                expect_eq(z.comment, b"", "archive comment")
                expect_eq(set(z.names()), set(exp["entries"]), "entry names of a backup without excludes")
                expect_eq(len(z.names()), len(set(z.names())), "entries stored once each")
                expect_eq(z.names()[0], "metadata.json", "first entry")
                expect_eq(z.names()[1], "basedir/config.yaml", "second entry")
                expect_eq(z.names()[-1], "plugin_list.json", "last entry")
                groups = [entry_group(n) for n in z.names()]
                out_of_order = [(a, b) for a, b, ga, gb in zip(z.names(), z.names()[1:], groups, groups[1:]) if ga > gb]
                expect_eq(out_of_order[:3], [], "entries out of order (metadata, config.yaml, folder ids in "
                          "order, the rest of basedir, plugin_list.json)")
                expect_eq(z.data("metadata.json"), bt.metadata_json([]), "metadata.json")
                expect_eq(z.data("metadata.json"), exp["metadata_json"].encode(), "metadata.json (expected.json)")
                expect_eq(z.data("plugin_list.json").decode(), exp["plugin_list_json"], "plugin_list.json")
                for e in z.entry_list:
                        expect(not e["is_dir"], f"a directory entry: {e['name']}")
                        expect(e["compress_type"] in (0, 8), f"{e['name']}: compression method {e['compress_type']}")
                        expect(e["create_system"] == 3, f"{e['name']}: made by system {e['create_system']}, not Unix")
                        if e["name"].startswith("basedir/"):
                                expect_eq(e["file_type"], stat.S_IFREG, f"file type bits of {e['name']}")
                expect(any(e["compress_type"] == 8 for e in z.entry_list), "no entry is deflated")
                expect_eq(z.entries["basedir/data/appkeys/keys.yaml"]["mode"], 0o600, "mode of data/appkeys/keys.yaml")
                bt.check_contents(exp, z)
                tl = [n for n in z.names() if n.startswith("basedir/timelapse/")]
                expect(any(n.startswith("basedir/timelapse/tmp/") for n in tl) and len(tl) > 2,
                       f"the timelapse folder outside basedir is not stored under basedir/timelapse/: {tl}")

                # ListBackups describes it the same way.
                listed = bt.list_backups(fx, USER_ALLOWED)
                expect_eq([(b["name"], b["size"], b["version"], b["excludes"]) for b in listed],
                          [(res.details["name"], os.path.getsize(path), bt.SAMPLE_VERSION, [])], "ListBackups")
                expect_eq(listed[0]["uncompressed"], sum(e["size"] for e in z.entry_list), "uncompressed size")


def test_backup_excludes():
        with Fixture() as fx:
                exp = fx.expected()
                res = bt.run_backup_ok(fx, ["uploads", "timelapse"])
                path = check_backup_file(fx, res, exp)
                z = bt.read_zip(path)
                bt.unzip_test(path)
                want_meta = bt.metadata_json(["uploads", "timelapse", "timelapse_tmp"])
                expect_eq(z.data("metadata.json"), want_meta, "metadata.json with uploads and timelapse excluded")
                want = bt.expected_entries(exp, ["uploads", "timelapse"])
                expect(not any(n.startswith(("basedir/uploads/", "basedir/timelapse/")) for n in want),
                       "the expected set still has uploads or timelapse")
                expect_eq(set(z.names()), want, "entry names with uploads and timelapse excluded")
                bt.check_contents(exp, z)
                expect_eq(bt.list_backups(fx)[0]["excludes"], ["uploads", "timelapse", "timelapse_tmp"],
                          "excludes in ListBackups")

                # An unknown folder id: refused at once, no job, no file.
                before = bt.folder_listing(exp["backup_folder"])
                for bad in (["nonsense"], ["uploads", "nonsense"], ["logs"], ["uploads", "uploads"]):
                        err = fx.call_error(USER_ALLOWED, fx.instance_path(), IFACE_INSTANCE, "CreateBackup",
                                            "asa{sv}", bad, {})
                        expect(err is not None, f"CreateBackup with excludes {bad} was accepted")
                        expect_eq(err.name, bt.ERROR_INVALID_ARGS, f"error of CreateBackup with excludes {bad}")
                        culprit = "nonsense" if "nonsense" in bad else bad[0]
                        expect(culprit in err.message, f"the error does not name {culprit!r}: {err.message}")
                        expect_eq(bt.list_jobs(fx), [], f"jobs after CreateBackup with excludes {bad}")
                expect_eq(bt.folder_listing(exp["backup_folder"]), before, "backup folder after refused backups")


def test_additional_excludes_dropin():
        cfg = {f"excludes.d/{PLUGIN}.conf": DROPIN}
        with Fixture(config_files=cfg, prepare=plugin_data_prepare) as fx:
                exp = fx.expected()
                # Example 1: data/myplugin/foo.txt always excluded, bar.txt kept.
                res = bt.run_backup_ok(fx, name="dropin-1.zip")
                z = bt.read_zip(check_backup_file(fx, res, exp))
                expect_eq(plugin_names(z), [f"basedir/data/{PLUGIN}/bar.txt"], "data/myplugin entries (no excludes)")
                expect_eq(set(z.names()) - {f"basedir/data/{PLUGIN}/bar.txt"}, set(exp["entries"]),
                          "other entries with the drop-in")
                bt.check_contents(exp, z)
                expect_eq(z.data("metadata.json"), bt.metadata_json([]), "metadata.json: plugin excludes are not listed")

                # Example 2: the whole folder, only when uploads is excluded.
                res = bt.run_backup_ok(fx, ["uploads"], name="dropin-2.zip")
                z = bt.read_zip(check_backup_file(fx, res, exp))
                expect_eq(plugin_names(z), [], "data/myplugin entries with uploads excluded")
                expect_eq(set(z.names()), bt.expected_entries(exp, ["uploads"]), "entries with uploads excluded")
                expect("basedir/data/octolapse/settings.json" in z.names(), "other plugins' data went with it")

                # Example 2 does not fire for another folder.
                res = bt.run_backup_ok(fx, ["timelapse"], name="dropin-3.zip")
                z = bt.read_zip(check_backup_file(fx, res, exp))
                expect_eq(plugin_names(z), [f"basedir/data/{PLUGIN}/bar.txt"], "data/myplugin with timelapse excluded")


def hooks_prepare(fx):
        plugin_data_prepare(fx)
        # Run as the instance user: the hooks must be readable and executable by it, and every folder on
        # the way traversable (the fixture dir is 0755; mkdtemp's 0700 would not do).
        for d in ("", "hooks", "hooks/additional-excludes.d"):
                os.chmod(os.path.join(fx.config_dir, d), 0o755)
        for h in (PLUGIN, "zzwitness"):
                os.chmod(os.path.join(fx.config_dir, "hooks", "additional-excludes.d", h), 0o755)


def test_additional_excludes_hook():
        cfg = {f"hooks/additional-excludes.d/{PLUGIN}": HOOK, "hooks/additional-excludes.d/zzwitness": WITNESS_HOOK}
        with Fixture(config_files=cfg, prepare=hooks_prepare) as fx:
                exp = fx.expected()
                res = bt.run_backup_ok(fx, name="hook-1.zip")
                z = bt.read_zip(check_backup_file(fx, res, exp))
                expect_eq(plugin_names(z), [f"basedir/data/{PLUGIN}/bar.txt"], "data/myplugin entries (no excludes)")
                expect_eq(set(z.names()) - {f"basedir/data/{PLUGIN}/bar.txt"}, set(exp["entries"]),
                          "other entries with the hook")
                log = res.log_text()
                expect("stdin: []" in log, f"the hook's stdin ([]) is not in the job log:\n{log}")
                # Results accumulate: the next hook sees the first one's path.
                expect(f'witness stdin: ["data/{PLUGIN}/foo.txt"]' in log,
                       f"the second hook was not given the first one's result:\n{log}")

                res = bt.run_backup_ok(fx, ["uploads"], name="hook-2.zip")
                z = bt.read_zip(check_backup_file(fx, res, exp))
                expect_eq(plugin_names(z), [], "data/myplugin entries with uploads excluded")
                expect_eq(set(z.names()), bt.expected_entries(exp, ["uploads"]), "entries with uploads excluded")
                log = res.log_text()
                expect('stdin: ["uploads"]' in log, f"the hook's stdin ([\"uploads\"]) is not in the job log:\n{log}")
                expect(f'witness stdin: ["uploads", "data/{PLUGIN}"]' in log
                       or f'witness stdin: ["uploads","data/{PLUGIN}"]' in log,
                       f"the second hook was not given the whole folder:\n{log}")


def test_hook_not_run_when_writable_by_others():
        # A hook anybody could change must not run (it runs for every instance): the backup goes on as if
        # it were not there, and says so.
        cfg = {f"hooks/additional-excludes.d/{PLUGIN}": HOOK, "hooks/additional-excludes.d/zzwitness": WITNESS_HOOK}

        def prepare(fx):
                hooks_prepare(fx)
                os.chmod(os.path.join(fx.config_dir, "hooks", "additional-excludes.d", PLUGIN), 0o757)

        with Fixture(config_files=cfg, prepare=prepare) as fx:
                res = bt.run_backup_ok(fx)
                z = bt.read_zip(res.details["path"])
                expect_eq(plugin_names(z), [f"basedir/data/{PLUGIN}/bar.txt", f"basedir/data/{PLUGIN}/foo.txt"],
                          "data/myplugin entries when its hook is writable by others")
                log = res.log_text()
                expect(f"Not running hook" in log and PLUGIN in log,
                       f"the job log does not say the hook was not run:\n{log}")
                expect("witness stdin: []" in log, f"the trusted hook did not run:\n{log}")


fixture.main(globals())
