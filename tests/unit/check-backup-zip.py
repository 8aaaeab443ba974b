#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Checks a backup zip the way OctoPrint would read it (CPython's zipfile), plus unzip -t.

Usage: python3 -W error check-backup-zip.py EXPECTATION.json
       python3 -W error check-backup-zip.py --gen-instance EXPECTED.json ZIP

EXPECTATION: {"zip": path, "metadata": exact metadata.json text, "plugin_list": exact text or null,
              "level": 0..9, "entries": {entry name: source file path or {"content": text}}, "forbidden": [bytes as text that no
              entry may contain]}
EXPECTED.json: what tests/gen-instance.py wrote: "entries" {name: {"size", "mode"}}, "metadata_json",
              "plugin_list_json" for a backup without excludes.
Exit status 0 when everything matches; otherwise the differences are printed and the status is 1.
"""

import json
import os
import struct
import subprocess
import sys
import time
import zipfile
import zlib

FOLDERS = ["uploads", "timelapse", "timelapse_tmp", "logs", "virtualSd", "watched", "plugins",
           "slicingProfiles", "printerProfiles", "scripts", "translations", "generated", "data", "uploadtemp"]

# Entries the engine stores instead of deflating (data compressed already), archive-write.c's rule: at
# level 0 everything; files under TRIAL_MIN bytes with these suffixes; files of TRIAL_MIN bytes or more
# whose first TRIAL bytes do not compress, whatever their name.
STORED_SUFFIXES = (".mp4", ".mkv", ".avi", ".mov", ".webm", ".mpg", ".mpeg", ".h264", ".jpg", ".jpeg", ".png",
                   ".gif", ".webp", ".zip", ".gz", ".tgz", ".bz2", ".xz", ".zst", ".7z", ".whl")
TRIAL_MIN = 64 * 1024
TRIAL = 32 * 1024

errors = []


def fail(msg):
    errors.append(msg)


def extra_ids(extra):
    ids, i = [], 0
    while i + 4 <= len(extra):
        hid, size = struct.unpack("<HH", extra[i:i + 4])
        ids.append(hid)
        i += 4 + size
    return ids


def group(name):
    """Index of the folder id an entry belongs to (most specific prefix), len(FOLDERS) for the rest."""
    best, best_len = len(FOLDERS), 0
    for i, f in enumerate(FOLDERS):
        prefix = "basedir/" + f.replace("_", "/") + "/"
        if name.startswith(prefix) and len(prefix) > best_len:
            best, best_len = i, len(prefix)
    return best


def expected_methods(name, data, level):
    """The compression methods the engine may have chosen for an entry. The engine judges the first block
    with libdeflate, this with zlib: near its threshold (2% saved) both answers are accepted."""
    if level == 0:
        return {zipfile.ZIP_STORED}
    if len(data) < TRIAL_MIN:
        return {zipfile.ZIP_STORED if name.lower().endswith(STORED_SUFFIXES) else zipfile.ZIP_DEFLATED}
    sample = data[:TRIAL]
    co = zlib.compressobj(1, zlib.DEFLATED, -15)
    ratio = len(co.compress(sample) + co.flush()) / len(sample)
    if ratio > 0.99:
        return {zipfile.ZIP_STORED}
    if ratio < 0.95:
        return {zipfile.ZIP_DEFLATED}
    return {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED}


def dos_time(t):
    lt = time.localtime(t)
    if lt.tm_year < 1980:
        return (1980, 1, 1, 0, 0, 0)
    return (lt.tm_year, lt.tm_mon, lt.tm_mday, lt.tm_hour, lt.tm_min, lt.tm_sec // 2 * 2)


def from_gen_instance(expected, zip_path):
    """Turns gen-instance.py's expected.json into an expectation without source paths."""
    with open(expected, encoding="utf-8") as f:
        g = json.load(f)
    entries = {n: v for n, v in g["entries"].items() if n not in ("metadata.json", "plugin_list.json")}
    return {"zip": zip_path, "metadata": g["metadata_json"], "plugin_list": g["plugin_list_json"] or None,
            "level": 6, "entries": entries}


def main():
    if sys.argv[1] == "--gen-instance":
        exp = from_gen_instance(sys.argv[2], sys.argv[3])
    else:
        with open(sys.argv[1], encoding="utf-8") as f:
            exp = json.load(f)
    path = exp["zip"]
    level = exp.get("level", 6)
    with open(path, "rb") as f:
        raw = f.read()

    with zipfile.ZipFile(path) as z:
        bad = z.testzip()
        if bad is not None:
            fail(f"testzip: bad CRC in {bad}")
        if z.comment != b"":
            fail(f"archive comment {z.comment!r}")
        infos = z.infolist()
        names = [i.filename for i in infos]
        if len(names) != len(set(names)):
            fail("duplicate names: " + ", ".join(sorted({n for n in names if names.count(n) > 1})))
        if not names or names[0] != "metadata.json":
            fail(f"first entry is {names[:1]}, not metadata.json")
        if len(names) < 2 or names[1] != "basedir/config.yaml":
            fail(f"second entry is {names[1:2]}, not basedir/config.yaml")

        meta = z.read("metadata.json").decode("utf-8") if "metadata.json" in names else None
        if meta != exp["metadata"]:
            fail(f"metadata.json is {meta!r}, expected {exp['metadata']!r}")
        json.loads(meta or "null")

        pl = exp.get("plugin_list")
        if pl is None:
            if "plugin_list.json" in names:
                fail("plugin_list.json present but not expected")
        else:
            if names[-1] != "plugin_list.json":
                fail(f"last entry is {names[-1]}, not plugin_list.json")
            elif z.read("plugin_list.json").decode("utf-8") != pl:
                fail(f"plugin_list.json is {z.read('plugin_list.json')!r}, expected {pl!r}")

        files = [n for n in names if n not in ("metadata.json", "plugin_list.json")]
        want = exp["entries"]
        for n in sorted(set(files) - set(want)):
            fail(f"unexpected entry {n}")
        for n in sorted(set(want) - set(files)):
            fail(f"missing entry {n}")

        groups = [group(n) for n in files[1:]]
        if groups != sorted(groups):
            fail("entries not in folder order: " + ", ".join(f"{n}({g})" for n, g in zip(files[1:], groups)))

        forbidden = [s.encode() for s in exp.get("forbidden", [])]
        for i in infos:
            n = i.filename
            if n.endswith("/"):
                fail(f"directory entry {n}")
            if i.create_system != 3:
                fail(f"{n}: create_system {i.create_system}, expected 3 (Unix)")
            if n.isascii() == bool(i.flag_bits & 0x800):
                fail(f"{n}: UTF-8 flag is {bool(i.flag_bits & 0x800)} for an {'ASCII' if n.isascii() else 'non-ASCII'} name")
            if 0x0001 in extra_ids(i.extra):
                fail(f"{n}: ZIP64 extra field in the central directory")
            lh = raw[i.header_offset:i.header_offset + 30]
            nlen, elen = struct.unpack("<HH", lh[26:30])
            if 0x0001 in extra_ids(raw[i.header_offset + 30 + nlen:i.header_offset + 30 + nlen + elen]):
                fail(f"{n}: ZIP64 extra field in the local header")
            data = z.read(n)
            methods = expected_methods(n, data, level)
            if i.compress_type not in methods:
                fail(f"{n}: compression method {i.compress_type}, expected {' or '.join(map(str, sorted(methods)))}")
            for s in forbidden:
                if s in data:
                    fail(f"{n}: contains forbidden content {s!r}")
            if n in ("metadata.json", "plugin_list.json"):
                if i.external_attr >> 16 != 0o600:
                    fail(f"{n}: mode {i.external_attr >> 16:o}, expected 600")
                continue
            src = want.get(n)
            if isinstance(src, dict) and "content" in src:     # what the entry must hold, exactly
                if data != src["content"].encode():
                    fail(f"{n}: content {data[:60]!r}, expected {src['content'][:60]!r}")
                continue
            if isinstance(src, dict):       # gen-instance.py: size and mode only
                if len(data) != src["size"]:
                    fail(f"{n}: {len(data)} bytes, expected {src['size']}")
                if src.get("mode") and i.external_attr >> 16 & 0o7777 != int(src["mode"], 8):
                    fail(f"{n}: mode {i.external_attr >> 16 & 0o7777:o}, expected {src['mode']}")
                continue
            if src is None:
                continue
            st = os.stat(src)
            with open(src, "rb") as f:
                if f.read() != data:
                    fail(f"{n}: content differs from {src}")
            if i.external_attr >> 16 != st.st_mode:
                fail(f"{n}: mode {i.external_attr >> 16:o}, expected {st.st_mode:o}")
            if i.date_time != dos_time(st.st_mtime):
                fail(f"{n}: date_time {i.date_time}, expected {dos_time(st.st_mtime)}")

    r = subprocess.run(["unzip", "-t", "-qq", path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        fail(f"unzip -t failed ({r.returncode}): {r.stdout.decode(errors='replace')}")

    for e in errors:
        print(f"check-backup-zip: {e}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
