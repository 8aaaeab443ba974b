#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""What OctoPrint's own backup would store for an instance: the walk of its Backup plugin
(octoprint/plugins/backup/__init__.py, _create_backup), written again from its description, to compare the
engine's entry list with (test-backup-engine.c).

Usage: python3 octoprint-backup-model.py INSTANCE.json
INSTANCE: {"basedir", "config_file", "backup_folder", "folders": {id: configured path}, "excludes": [ids]}
Prints {entry name: source file} as JSON. OctoPrint may write a name twice (basedir/timelapse/tmp/* under
"timelapse" and again under "timelapse_tmp"); extracting such a zip leaves the later entry's data, so the
later source is the one printed: what a restore of OctoPrint's backup gives back.

Where opbackup deliberately differs (opbackupd(8), ARCHIVE FORMAT: symlinks out of the instance, FIFOs, hidden temp files of
backups, "uploadtemp"), the model follows opbackup: keep such things out of a tree compared with it.
"""

import json
import os
import sys

# OctoPrint's folder ids in the order of its default settings.
FOLDERS = ["uploads", "timelapse", "timelapse_tmp", "logs", "virtualSd", "watched", "plugins",
           "slicingProfiles", "printerProfiles", "scripts", "translations", "generated", "data", "uploadtemp"]
# OctoPrint's exclude_by_default, plus uploadtemp, which opbackup leaves out too (opbackupd(8), ARCHIVE FORMAT).
ALWAYS_EXCLUDED = ("generated", "logs", "watched", "uploadtemp")


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        inst = json.load(f)
    basedir = inst["basedir"]
    excludes = list(inst.get("excludes", []))
    if "timelapse" in excludes:
        excludes.append("timelapse_tmp")
    own_folder = inst["backup_folder"]

    def location(folder):
        return inst.get("folders", {}).get(folder) or os.path.join(basedir, folder.replace("_", "/"))

    entries = {}

    def add(source, target, ignored):
        if source in ignored:
            return
        if os.path.isdir(source):
            for entry in sorted(os.scandir(source), key=lambda e: e.name):
                add(entry.path, target + "/" + entry.name, ignored)
        elif os.path.isfile(source):
            entries.pop(target, None)       # a name written again: the later data is what is extracted
            entries[target] = source

    add(inst["config_file"], "basedir/config.yaml", [own_folder])
    for folder in FOLDERS:
        if folder in excludes or folder in ALWAYS_EXCLUDED:
            continue
        add(location(folder), "basedir/" + folder.replace("_", "/"), [own_folder])
    # As OctoPrint does: the ids joined as they are ("basedir/timelapse_tmp", which never exists), so of
    # timelapse's default place only "basedir/timelapse" as a whole is left to the folder walks.
    defaults = [os.path.join(basedir, "config.yaml")] + [os.path.join(basedir, folder) for folder in FOLDERS]
    add(basedir, "basedir", defaults + [own_folder])
    json.dump(entries, sys.stdout, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
