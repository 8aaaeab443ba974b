#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Writes the restore test's corpus: hostile and broken backups, and good ones made the way OctoPrint
makes them (CPython's zipfile, ZIP_DEFLATED, metadata.json first). Usage: make-hostile-zips.py OUTDIR ROOT

ROOT is a folder the test watches: absolute names point into it, so an escape would show there.
Each case is OUTDIR/<case>.zip; good-octoprint.expect.json says what extracting good-octoprint.zip must
give. Raw header edits (flags, methods, sizes, names zipfile cannot write) go through patch()."""

import io
import json
import os
import random
import stat
import struct
import sys
import time
import warnings
import zipfile
import zlib

OUT, ROOT = sys.argv[1], sys.argv[2]
VERSION = "1.11.8"
META = json.dumps({"version": VERSION, "excludes": []}).encode()
CONFIG = b"appearance:\n  name: Test\n"
USERS = b"admin:\n  active: true\n"

# Duplicate names are the point of some cases.
warnings.simplefilter("ignore", UserWarning)


def info(name, mode=None, date_time=(2023, 5, 6, 7, 8, 10), store=False):
    zi = zipfile.ZipInfo(name, date_time)
    zi.create_system = 3
    zi.compress_type = zipfile.ZIP_STORED if store else zipfile.ZIP_DEFLATED
    if mode is not None:
        zi.external_attr = (mode & 0xFFFF) << 16
        if stat.S_ISDIR(mode):
            zi.external_attr |= 0x10
    else:
        zi.external_attr = 0o100644 << 16
    return zi


def base(meta=META, config=True, users=True):
    e = [("metadata.json", meta)]
    if config:
        e.append(("basedir/config.yaml", CONFIG))
    if users:
        e.append(("basedir/users.yaml", USERS))
    return e


def build(entries):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries:
            zi = name if isinstance(name, zipfile.ZipInfo) else info(name)
            z.writestr(zi, data)
    return bytearray(buf.getvalue())


def write(case, data):
    with open(os.path.join(OUT, case + ".zip"), "wb") as f:
        f.write(data)


def make(case, entries):
    write(case, build(entries))


def headers(data):
    """(name, central offset, local offset) of every entry, from the central directory."""
    eocd = data.rfind(b"PK\x05\x06")
    n, size, cd = struct.unpack_from("<HII", data, eocd + 10)
    out, p = [], cd
    for _ in range(n):
        assert data[p:p + 4] == b"PK\x01\x02"
        nl, el, cl = struct.unpack_from("<HHH", data, p + 28)
        (lho,) = struct.unpack_from("<I", data, p + 42)
        out.append((bytes(data[p + 46:p + 46 + nl]), p, lho))
        p += 46 + nl + el + cl
    return out


def patch(data, name, local=None, central=None):
    """Applies {offset: (fmt, value)} to the local and central header of `name`, consistently."""
    for n, c, l in headers(data):
        if n == name.encode():
            for off, (fmt, v) in (local or {}).items():
                struct.pack_into(fmt, data, l + off, v)
            for off, (fmt, v) in (central or {}).items():
                struct.pack_into(fmt, data, c + off, v)
            return data
    raise KeyError(name)


def patch_both(data, name, field, fmt, value):
    # Local header offsets: flags 6, method 8, crc 14, csize 18, usize 22.
    # Central: flags 8, method 10, crc 16, csize 20, usize 24.
    lo = {"flags": 6, "method": 8, "crc": 14, "csize": 18, "usize": 22}[field]
    return patch(data, name, {lo: (fmt, value)}, {lo + 2: (fmt, value)})


def data_offset(data, name):
    for n, c, l in headers(data):
        if n == name.encode():
            nl, el = struct.unpack_from("<HH", data, l + 26)
            return l + 30 + nl + el
    raise KeyError(name)


def rename_raw(data, old, new):
    assert len(old) == len(new) and data.count(old) == 2
    return bytearray(bytes(data).replace(old, new))


def hostile():
    write("not-a-zip", b"This is not a zip file, just text.\n" * 20)
    write("empty", b"")
    good = build(base() + [("basedir/uploads/a.gcode", b"G28\n" * 1000)])
    write("truncated", good[: len(good) // 2])
    d = bytearray(good)
    eocd = d.rfind(b"PK\x05\x06")
    struct.pack_into("<HH", d, eocd + 8, 65535, 65535)     # the end record lies about the entry count
    write("entry-count-lies", d)

    # Names.
    make("slip-dotdot", base() + [("../evil.txt", b"evil")])
    make("slip-basedir-dotdot", base() + [("basedir/../../evil.txt", b"evil")])
    make("slip-basedir-only", base() + [("basedir/..", b"evil")])
    make("dotdot-inside", base() + [("basedir/uploads/../evil.txt", b"evil")])
    make("absolute", base() + [(os.path.join(ROOT, "evil.txt"), b"evil")])
    make("backslash", base() + [("basedir\\..\\..\\evil.txt", b"evil")])
    make("drive-letter", base() + [("C:/basedir/evil.txt", b"evil")])
    make("empty-component", base() + [("basedir//evil.txt", b"evil")])
    make("dot-component", base() + [("basedir/./evil.txt", b"evil")])
    make("control-char", base() + [("basedir/a\x01b", b"evil")])
    make("newline", base() + [("basedir/a\nb", b"evil")])
    make("del-char", base() + [("basedir/a\x7fb", b"evil")])
    write("invalid-utf8", rename_raw(build(base() + [("basedir/evil-X.txt", b"evil")]),
                                     b"basedir/evil-X.txt", b"basedir/evil-\xff.txt"))
    # libzip turns a NUL inside a name into a space; CPython cuts the name there. Either way the
    # name that is used is the one that is checked.
    write("nul-in-name", rename_raw(build(base() + [("basedir/evilXname", b"evil")]),
                                    b"basedir/evilXname", b"basedir/evil\x00name"))
    make("name-too-long", base() + [("basedir/" + "/".join(["n" * 200] * 21), b"long")])
    make("component-too-long", base() + [("basedir/" + "c" * 256, b"long")])
    make("outside-basedir", base() + [("evil.txt", b"evil")])
    make("outside-folder", base() + [("other/evil.txt", b"evil")])
    make("basedir-as-file", base() + [("basedir", b"evil")])

    # Types.
    make("symlink", base() + [(info("basedir/link", stat.S_IFLNK | 0o777), b"/etc/passwd")])
    make("char-device", base() + [(info("basedir/null", stat.S_IFCHR | 0o666), b"")])
    make("block-device", base() + [(info("basedir/sda", stat.S_IFBLK | 0o660), b"")])
    make("fifo", base() + [(info("basedir/fifo", stat.S_IFIFO | 0o644), b"")])
    make("socket", base() + [(info("basedir/sock", stat.S_IFSOCK | 0o755), b"")])
    make("unknown-type", base() + [(info("basedir/odd", 0o150644), b"")])
    make("dir-mode-file-name", base() + [(info("basedir/d", stat.S_IFDIR | 0o755), b"")])
    make("file-mode-dir-name", base() + [(info("basedir/d/", stat.S_IFREG | 0o644), b"")])
    make("dir-with-data", base() + [(info("basedir/d/", stat.S_IFDIR | 0o755), b"data")])

    # Clashes.
    make("file-dir-clash", base() + [("basedir/a", b"file"), ("basedir/a/b", b"in a folder")])
    make("file-direntry-clash", base() + [("basedir/a", b"file"), (info("basedir/a/", stat.S_IFDIR | 0o755), b"")])
    # "a-b" and "a.c" sort between "a" and "a/x" in plain byte order.
    make("clash-sorted-apart", base() + [("basedir/a/x", b"x"), ("basedir/a-b", b"1"), ("basedir/a.c", b"2"),
                                         ("basedir/a", b"file")])

    # Encryption and methods: the headers say so, consistently in both.
    for case, field, value in (("encrypted", "flags", 1), ("method-bzip2", "method", 12),
                               ("method-lzma", "method", 14), ("method-deflate64", "method", 9)):
        d = build(base() + [("basedir/secret.txt", b"secret data")])
        if field == "flags":
            for n, c, l in headers(d):
                if n == b"basedir/secret.txt":
                    (flags,) = struct.unpack_from("<H", d, l + 6)
            d = patch_both(d, "basedir/secret.txt", "flags", "<H", flags | 1)
        else:
            d = patch_both(d, "basedir/secret.txt", field, "<H", value)
        write(case, d)

    # metadata.json.
    make("no-metadata", base()[1:])
    make("metadata-not-json", base(meta=b"{version: 1.11.8"))
    make("metadata-trailing-garbage", base(meta=META + b" and more"))
    make("metadata-array", base(meta=b'["1.11.8"]'))
    make("metadata-no-version", base(meta=b'{"excludes": []}'))
    make("metadata-version-number", base(meta=b'{"version": 1.11}'))
    make("metadata-bad-version", base(meta=b'{"version": "banana"}'))
    make("metadata-too-large", base(meta=json.dumps({"version": VERSION, "pad": "x" * 70000}).encode()))
    make("metadata-directory", base()[1:] + [(info("metadata.json/", stat.S_IFDIR | 0o755), b"")])
    make("newer-version", base(meta=b'{"version": "1.12.0", "excludes": []}'))
    make("newer-major", base(meta=b'{"version": "2.0.0rc1", "excludes": []}'))
    # The last metadata.json counts, as for CPython's zipfile.
    make("duplicate-metadata-newer", base() + [("metadata.json", b'{"version": "1.99.0"}')])
    make("missing-config", base(config=False))
    make("missing-users", base(users=False))
    make("config-is-folder", base(config=False) + [(info("basedir/config.yaml/", stat.S_IFDIR | 0o755), b"")])

    # plugin_list.json.
    for case, text in (("plugins-not-json", b"[{"), ("plugins-not-array", b'{"key": "a"}'),
                       ("plugins-no-key", b'[{"name": "A"}]'), ("plugins-key-number", b'[{"key": 5}]'),
                       ("plugins-bad-url", b'[{"key": "a", "name": "A", "url": 5}]'),
                       ("plugins-not-object", b'["a"]')):
        make(case, base() + [("plugin_list.json", text)])

    # Read in several chunks; and one over the 1 MiB bound.
    many = [{"key": "plugin%05d" % i, "name": "Plugin \u00e9 %d" % i, "url": None if i % 2 else "https://x/%d" % i}
            for i in range(3000)]
    make("many-plugins", base() + [("plugin_list.json", json.dumps(many).encode())])
    huge = [{"key": "p%06d" % i, "name": "n" * 100, "url": None} for i in range(12000)]
    make("plugins-too-large", base() + [("plugin_list.json", json.dumps(huge).encode())])

    # Sizes.
    make("too-many-entries", base() + [("basedir/f%02d" % i, b"x") for i in range(20)])
    make("no-space", base() + [("basedir/big.bin", os.urandom(3 * 1024 * 1024))])
    d = build(base() + [("basedir/huge.bin", b"\0" * 1000)])
    write("declared-huge", patch_both(d, "basedir/huge.bin", "usize", "<I", 0xFFFFFFF0))

    # Found only while extracting.
    d = build(base() + [("basedir/a.txt", b"first"), ("basedir/bomb.bin", b"\0" * (4 * 1024 * 1024))])
    write("inflate-beyond-size", patch_both(d, "basedir/bomb.bin", "usize", "<I", 1000))
    d = build(base() + [("basedir/short.bin", b"abc" * 1000)])
    write("shorter-than-declared", patch_both(d, "basedir/short.bin", "usize", "<I", 5000))
    zi = info("basedir/stored.txt")
    zi.compress_type = zipfile.ZIP_STORED
    d = build(base() + [("basedir/a.txt", b"first"), (zi, b"stored data that will be damaged")])
    d[data_offset(d, "basedir/stored.txt") + 5] ^= 0x20
    write("crc-mismatch", d)
    d = build(base() + [("basedir/broken.txt", os.urandom(1000) + b"x" * 5000)])
    off = data_offset(d, "basedir/broken.txt")
    for k in range(16):
        d[off + k] = 0xFF     # an invalid deflate block type
    write("corrupt-deflate", d)


def good():
    """good-octoprint.zip, written as OctoPrint's backup plugin does (zipfile.write() of real files,
    metadata.json first, timelapse/tmp twice), plus what extracting it must give."""
    src = os.path.join(OUT, "good-src")
    files = {
        "config.yaml": (CONFIG, 0o644),
        "users.yaml": (USERS, 0o600),
        "uploads/a.gcode": (b"G28\nG1 X10\n" * 500, 0o664),
        "uploads/sub/b.gcode": (b"M117 hi\n", 0o640),
        "uploads/\u00dcn\u00efcode.gcode": (b"unicode name\n", 0o644),
        "scripts/suid.sh": (b"#!/bin/sh\necho hi\n", 0o6755),
        "timelapse/t1.mp4": (os.urandom(20000), 0o644),
        "data/plugin/empty": (b"", 0o644),
    }
    times = {}
    for i, (rel, (content, mode)) in enumerate(sorted(files.items())):
        p = os.path.join(src, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(content)
        os.chmod(p, mode)
        t = int(time.mktime((2022, 3, 4, 5, 6, 2 * i, 0, 0, -1)))
        os.utime(p, (t, t))
        times[rel] = t

    expect = {"files": {}, "dirs": {}}
    path = os.path.join(OUT, "good-octoprint.zip")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("metadata.json", json.dumps({"version": "1.11.0", "excludes": ["logs", "bogus"]}))
        for rel in sorted(files):
            z.write(os.path.join(src, rel), arcname="basedir/" + rel)
        # OctoPrint writes timelapse/tmp twice; the last copy wins.
        z.writestr(info("basedir/timelapse/tmp/frame1.jpg", 0o100644), b"first copy")
        z.writestr(info("basedir/timelapse/tmp/frame1.jpg", 0o100640, (2021, 1, 2, 3, 4, 6)), b"last copy")
        # A folder entry with a mode and a time of its own, listed before its contents.
        z.writestr(info("basedir/printerProfiles/", stat.S_IFDIR | 0o750, (2020, 2, 3, 4, 5, 8)), b"")
        z.writestr(info("basedir/printerProfiles/_default.profile", 0o100644), b"id: _default\n")
        z.writestr(info("basedir/", stat.S_IFDIR | 0o755), b"")
        z.writestr("extra.json", b'{"something": "new"}')
        z.writestr("plugin_list.json", json.dumps([
            {"key": "foo", "name": "OctoPrint-Foo", "url": "https://example.com/foo"},
            {"key": "bar", "name": "Bar", "url": None}]))

    total = 0
    for rel, (content, mode) in files.items():
        expect["files"][rel] = {"content": content.hex(), "mode": mode & 0o777,
                                "mtime": times[rel] & ~1}
        total += len(content)
    for rel, content, mode, dt in (("timelapse/tmp/frame1.jpg", b"last copy", 0o640, (2021, 1, 2, 3, 4, 6)),
                                   ("printerProfiles/_default.profile", b"id: _default\n", 0o644,
                                    (2023, 5, 6, 7, 8, 10))):
        expect["files"][rel] = {"content": content.hex(), "mode": mode,
                                "mtime": int(time.mktime(dt + (0, 0, -1)))}
        total += len(content)
    expect["dirs"]["printerProfiles"] = {"mode": 0o750, "mtime": int(time.mktime((2020, 2, 3, 4, 5, 8, 0, 0, -1)))}
    expect["total_size"] = total
    with open(os.path.join(OUT, "good-octoprint.expect.json"), "w") as f:
        json.dump(expect, f)


PIECE = 1024 * 1024      # restore-inflate.h: ENTRY_READER_CHUNK


def gcode(n, seed):
    """n bytes of G-code-like text (compresses about as real G-code does)."""
    rnd = random.Random(seed)
    out, size = [], 0
    while size < n:
        line = "G1 X%.3f Y%.3f E%.5f F%d\n" % (rnd.uniform(0, 220), rnd.uniform(0, 220), rnd.uniform(0, 9),
                                              rnd.choice((1200, 1800, 3000)))
        out.append(line)
        size += len(line)
    return "".join(out).encode()[:n]


def deflate_pieces(data, flush, level=6):
    """data as one raw deflate stream in pieces of PIECE bytes, each but the last ended by zlib's flush:
    Z_FULL_FLUSH makes pieces that stand alone, as opbackup's backups have them (deflate-pool.h);
    Z_SYNC_FLUSH ends them the same way, but later pieces refer back into earlier ones."""
    c = zlib.compressobj(level, zlib.DEFLATED, -15)
    out = []
    for k in range(0, len(data), PIECE):
        out.append(c.compress(data[k:k + PIECE]))
        if k + PIECE < len(data):
            out.append(c.flush(flush))
    out.append(c.flush(zlib.Z_FINISH))
    return b"".join(out)


def build_deflated(entries):
    """Like build(), with (name, data, stream) entries whose deflate data is given: written stored, then
    relabelled as deflated with data's CRC and size."""
    plain = [(n, d) for n, d, *rest in entries if not rest]
    raw = [(n, d, stream) for n, d, *rest in entries for stream in rest]
    z = build(plain + [(info(n, 0o100644, store=True), stream) for n, _, stream in raw])
    for name, data, _ in raw:
        z = patch_both(z, name, "method", "<H", zipfile.ZIP_DEFLATED)
        z = patch_both(z, name, "crc", "<I", zlib.crc32(data))
        z = patch_both(z, name, "usize", "<I", len(data))
    return z


def large():
    """good-large.zip: files of more than a piece, in every layout a restore reads differently, with
    their contents in good-large-src/ (the test compares); and large entries that must fail."""
    full = gcode(3 * PIECE + 500000, 1)
    exact = gcode(2 * PIECE, 2)
    synced = gcode(2 * PIECE + 123457, 3)
    one_more = gcode(PIECE + 1, 4)
    one_piece = gcode(PIECE, 5)
    noise = os.urandom(2 * PIECE + 999)
    # Stored data full of the bytes that end a piece: guesses that are wrong.
    decoys = b"".join(os.urandom(1000) + b"\0\0\xff\xff" for _ in range(2500))
    files = [
        ("uploads/pieces.gcode", full, deflate_pieces(full, zlib.Z_FULL_FLUSH)),
        ("uploads/exact.gcode", exact, deflate_pieces(exact, zlib.Z_FULL_FLUSH)),
        ("uploads/synced.gcode", synced, deflate_pieces(synced, zlib.Z_SYNC_FLUSH)),
        ("uploads/one-more.gcode", one_more, deflate_pieces(one_more, zlib.Z_FULL_FLUSH)),
        ("uploads/one-piece.gcode", one_piece, deflate_pieces(one_piece, zlib.Z_FULL_FLUSH)),
        ("data/noise.bin", noise, deflate_pieces(noise, zlib.Z_FULL_FLUSH)),
        ("data/decoys.bin", decoys, deflate_pieces(decoys, zlib.Z_FULL_FLUSH, level=0)),
    ]
    stream = gcode(2 * PIECE + 77, 6)           # one stream, as zipfile writes it
    video = os.urandom(2 * PIECE + 4097)        # stored
    vi = info("basedir/timelapse/video.mp4", 0o100644, store=True)
    z = build_deflated(base() + [("basedir/" + n, d, st) for n, d, st in files] +
                       [("basedir/uploads/stream.gcode", stream), (vi, video)])
    write("good-large", z)
    src = os.path.join(OUT, "good-large-src")
    names = []
    for rel, data in [(n, d) for n, d, _ in files] + [("uploads/stream.gcode", stream),
                                                         ("timelapse/video.mp4", video)]:
        os.makedirs(os.path.dirname(os.path.join(src, rel)), exist_ok=True)
        with open(os.path.join(src, rel), "wb") as f:
            f.write(data)
        names.append(rel)
    with open(os.path.join(OUT, "good-large.list"), "w") as f:
        f.write("\n".join(names) + "\n")

    # Found only while extracting, past the first piece.
    name = "basedir/uploads/pieces.gcode"
    one = [(name, full, deflate_pieces(full, zlib.Z_FULL_FLUSH))]
    write("large-inflate-beyond", patch_both(build_deflated(base() + one), name, "usize", "<I", len(full) - 1000))
    write("large-shorter", patch_both(build_deflated(base() + one), name, "usize", "<I", len(full) + 2 * PIECE))
    write("large-crc-mismatch", patch_both(build_deflated(base() + one), name, "crc", "<I", zlib.crc32(full) ^ 1))
    d = build_deflated(base() + one)
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    first = len(c.compress(full[:PIECE]) + c.flush(zlib.Z_FULL_FLUSH))    # where the second piece starts
    off = data_offset(d, name) + first
    for k in range(16):
        d[off + k] = 0xFF     # an invalid deflate block type
    write("large-corrupt-piece", d)
    d = build([("metadata.json", META), ("basedir/config.yaml", CONFIG), ("basedir/users.yaml", USERS),
               ("basedir/uploads/stream.gcode", stream)])
    write("large-stream-beyond", patch_both(d, "basedir/uploads/stream.gcode", "usize", "<I", PIECE + 5))


os.makedirs(OUT, exist_ok=True)
hostile()
good()
large()
