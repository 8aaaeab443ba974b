#!/usr/bin/python3
"""Generate a realistic OctoPrint instance for opbackup's tests and benchmarks.

Standalone, standard library only (runs with Debian 12's /usr/bin/python3).

Usage:
    gen-instance.py --root DIR [--size tiny|small|bench|<N>M] [--seed N]
                    [--user USER] [--name "My Printer"] [--octoprint-version 1.11.8]
                    [--restart-command CMD] [--backup-path PATH] [--python /usr/bin/python3]
                    [--real-venv] [--force]

Layout produced under DIR (opbackupd(8), ARCHIVE FORMAT and RESTORE, say what each part means to a backup):

    DIR/basedir/                      OctoPrint basedir (~/.octoprint)
        config.yaml                   appearance.name, folder.timelapse(_tmp) -> DIR/timelapse-elsewhere,
                                      server.commands, plugins.*, serial, webcam, ... (PyYAML block style)
        users.yaml  logging.yaml  lastPluginCheck.json
        uploads/                      G-code (Cura and PrusaSlicer flavoured, compresses ~3x), two
                                      subfolders, a non-ASCII name, .metadata.json per folder
        logs/ generated/ watched/ uploadtemp/ virtualSd/     (always excluded from backups but logs/watched
                                      etc. must survive a restore)
        data/<plugin>/                json, sqlite databases, png/jpg files, yaml (data/appkeys/keys.yaml
                                      is 0600); data/backup/ is EMPTY (it is the backup folder unless
                                      --backup-path is given)
        plugins/*.py                  single-file plugins
        printerProfiles/*.profile  slicingProfiles/cura/*.profile  scripts/gcode/*  scripts/*.sh (0755)
        translations/                 empty
    DIR/timelapse-elsewhere/          the configured timelapse folder (outside basedir): *.mp4 + *.jpg
        tmp/                          the configured timelapse_tmp folder: *.jpg frames
    DIR/venv/                         a Python venv: bin/python -> /usr/bin/python3, pyvenv.cfg, bin/pip
                                      (a pip launcher script; pip itself is there only with --real-venv,
                                      which runs `python3 -m venv`, ~3 s, for tests that pip-install)
        lib/python3.X/site-packages/  OctoPrint-<v>.dist-info + octoprint/, plugin dists with
                                      [octoprint.plugin] entry points (incl. the bundled file_check,
                                      firmware_check, pi_support), non-plugin dists
    DIR/expected.json                 what a backup without excludes must contain (see write_expected)

Sizes: tiny (< 1 MB, for unit/integration tests), small (~20 MB), bench (~500 MB), <N>M (bench mix
scaled to about N megabytes). Output is deterministic for a given --seed (file contents, names, modes
and mtimes); only the absolute paths under DIR end up in file contents.

Directories are 0755, files 0644 except scripts/notify-done.sh and venv/bin scripts (0755) and
data/appkeys/keys.yaml (0600); mtimes are seeded and before 2024-06-01. --user USER (as root) chowns
DIR and everything generated to USER and its primary group, and warns if USER cannot traverse to DIR.

A one-line JSON summary is printed on stdout: the paths of expected.json, total_bytes, files, seconds.
"""

import argparse
import base64
import hashlib
import json
import math
import os
import pwd
import random
import re
import shutil
import sqlite3
import stat
import subprocess
import sys
import time
import uuid

MB = 1000 * 1000

# OctoPrint's folder identifiers, in the order backups store them (opbackupd(8), ARCHIVE FORMAT).
FOLDER_IDS = ["uploads", "timelapse", "timelapse_tmp", "logs", "virtualSd", "watched", "plugins",
              "slicingProfiles", "printerProfiles", "scripts", "translations", "generated", "data",
              "uploadtemp"]
ALWAYS_EXCLUDED = {"generated", "logs", "watched", "uploadtemp"}
BUNDLED_PLUGIN_KEYS = {"file_check", "firmware_check", "pi_support"}

# All generated mtimes lie before this (2024-06-01 10:00:00 UTC), so zips made from them are reproducible.
MTIME_BASE = 1717236000


# --------------------------------------------------------------------------------------------------
# Size plans

class Plan:
        """How much of what to generate."""

        def __init__(self, gcode_bytes, gcode_files, video_bytes, video_files, frames, frame_bytes,
                     small_files, small_avg, sqlite_dbs, sqlite_rows, log_bytes, generated_bytes):
                self.gcode_bytes = gcode_bytes
                self.gcode_files = gcode_files
                self.video_bytes = video_bytes
                self.video_files = video_files
                self.frames = frames
                self.frame_bytes = frame_bytes
                self.small_files = small_files
                self.small_avg = small_avg
                self.sqlite_dbs = sqlite_dbs
                self.sqlite_rows = sqlite_rows
                self.log_bytes = log_bytes
                self.generated_bytes = generated_bytes


def clamp(v, lo, hi):
        return max(lo, min(hi, v))


def plan_for(size):
        if size == "tiny":
                return Plan(gcode_bytes=240_000, gcode_files=5, video_bytes=100_000, video_files=2,
                            frames=3, frame_bytes=4_000, small_files=30, small_avg=1_500, sqlite_dbs=1,
                            sqlite_rows=20, log_bytes=12_000, generated_bytes=12_000)
        if size == "small":
                size = "20M"
        elif size == "bench":
                size = "500M"
        m = re.fullmatch(r"(\d+(?:\.\d+)?)M", size)
        if not m or float(m.group(1)) < 2:
                raise SystemExit(f"gen-instance: bad --size {size!r}: use tiny, small, bench or <N>M (N >= 2)")
        total = float(m.group(1)) * MB
        scale = total / (500 * MB)
        small_files = int(clamp(round(2000 * scale), 60, 200_000))
        small_avg = 5_000
        log_bytes = int(clamp(total * 0.004, 20_000, 4 * MB))
        generated_bytes = int(clamp(total * 0.002, 20_000, 2 * MB))
        frames = int(clamp(round(24 * math.sqrt(scale)), 3, 200))
        video_total = total * 0.4
        frame_bytes = int(clamp(video_total * 0.05 / frames, 4_000, 120_000))
        video_bytes = int(video_total - frames * frame_bytes)
        gcode_bytes = int(total - video_total - small_files * small_avg - log_bytes - generated_bytes
                          - 300_000 * min(scale, 1) - 120_000)
        return Plan(gcode_bytes=max(gcode_bytes, 200_000),
                    gcode_files=int(clamp(round(30 * math.sqrt(scale)), 5, 80)),
                    video_bytes=video_bytes,
                    video_files=int(clamp(round(8 * math.sqrt(scale)), 2, 40)),
                    frames=frames, frame_bytes=frame_bytes,
                    small_files=small_files, small_avg=small_avg,
                    sqlite_dbs=3 if scale >= 0.05 else 2,
                    sqlite_rows=int(clamp(2000 * scale, 50, 50_000)),
                    log_bytes=log_bytes, generated_bytes=generated_bytes)


# --------------------------------------------------------------------------------------------------
# Helpers

class Gen:
        """Shared state: paths, seeded randomness, special file modes."""

        def __init__(self, args):
                self.args = args
                self.seed = args.seed
                self.root = os.path.abspath(args.root)
                self.basedir = os.path.join(self.root, "basedir")
                self.timelapse = os.path.join(self.root, "timelapse-elsewhere")
                self.timelapse_tmp = os.path.join(self.timelapse, "tmp")
                self.venv = os.path.join(self.root, "venv")
                self.backup_folder = args.backup_path or os.path.join(self.basedir, "data", "backup")
                self.modes = {}          # path -> mode, for files that are not 0644
                self.created_backup_path = False
                self.plan = plan_for(args.size)

        def rng(self, label):
                """An independent PRNG per part, so changing one part leaves the others alone."""
                return random.Random(f"{self.seed}:{label}")

        def path(self, *parts):
                return os.path.join(self.basedir, *parts)

        def write(self, path, data, mode=None):
                os.makedirs(os.path.dirname(path), exist_ok=True)
                if isinstance(data, str):
                        data = data.encode("utf-8")
                with open(path, "wb") as f:
                        f.write(data)
                if mode is not None:
                        self.modes[path] = mode

        def write_json(self, path, obj, **kw):
                kw.setdefault("indent", 2)
                self.write(path, json.dumps(obj, **kw) + "\n")


def random_stream(seed, label, n):
        """Yield n incompressible, deterministic bytes in chunks (SHAKE-128 in counter mode: ~0.5 GB/s)."""
        chunk = 4 << 20
        i = 0
        while n > 0:
                k = min(chunk, n)
                yield hashlib.shake_128(f"{seed}:{label}:{i}".encode()).digest(k)
                n -= k
                i += 1


def random_bytes(seed, label, n):
        return b"".join(random_stream(seed, label, n))


def fake_jpeg(seed, label, n):
        head = bytes.fromhex("ffd8ffe000104a46494600010101004800480000")
        return head + random_bytes(seed, label, max(n - len(head) - 2, 0)) + b"\xff\xd9"


def fake_png(seed, label, n, w=300, h=300):
        import struct
        import zlib

        def chunk(kind, data):
                return (struct.pack(">I", len(data)) + kind + data
                        + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff))
        ihdr = chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0))
        body = random_bytes(seed, label, max(n - 57, 16))
        return b"\x89PNG\r\n\x1a\n" + ihdr + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def fake_mp4_stream(seed, label, n):
        """An ISO-BMFF 'ftyp' box, then an 'mdat' box of random bytes."""
        ftyp = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41"
        mdat_len = max(n - len(ftyp), 8)
        yield ftyp + mdat_len.to_bytes(4, "big") + b"mdat"
        yield from random_stream(seed, label, mdat_len - 8)


def sanitize_prefix(name):
        """Backup file name prefix from appearance.name (opbackupd(8), ARCHIVE FORMAT)."""
        return re.sub(r"[^A-Za-z0-9._-]+", "-", name) if name else "octoprint"


# --------------------------------------------------------------------------------------------------
# YAML, written the way OctoPrint writes it (PyYAML safe_dump: block style, indent 2, sorted keys,
# indentless sequences, allow_unicode). Quoting errs on the safe side.

_YAML_SPECIAL = re.compile(
        r"""^(?:~|null|Null|NULL|true|True|TRUE|false|False|FALSE|yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF
        |=|<<
        |[-+]?(?:0|[1-9][0-9_]*)|[-+]?0o?[0-7_]+|[-+]?0x[0-9a-fA-F_]+|[-+]?0b[01_]+
        |[-+]?(?:[0-9][0-9_]*)?\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[-+]?[0-9][0-9_]*(?:[eE][-+]?[0-9]+)
        |[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)
        |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?
        |\d\d\d\d-\d\d?-\d\d?.*)$""", re.X)


def yaml_scalar(v, indent=0):
        if v is None:
                return "null"
        if v is True:
                return "true"
        if v is False:
                return "false"
        if isinstance(v, (int, float)):
                return repr(v)
        s = str(v)
        if (any(ord(c) < 32 and c != "\n" for c in s)
                        or any(not ln or ln != ln.strip() for ln in s.split("\n"))):
                return json.dumps(s, ensure_ascii=False)
        if "\n" in s:
                # PyYAML's single-quoted style: each line break becomes an empty line, then indentation.
                return "'" + s.replace("'", "''").replace("\n", "\n\n" + " " * (indent + 2)) + "'"
        if (s == "" or s != s.strip() or s[0] in ":,[]{}#&*!|>'\"%@`" or ": " in s or " #" in s
                        or (s[0] in "-?" and (len(s) == 1 or s[1] == " "))
                        or s.endswith(":") or _YAML_SPECIAL.match(s)):
                return "'" + s.replace("'", "''") + "'"
        return s


def yaml_dump(obj, indent=0):
        pad = " " * indent
        out = []
        if isinstance(obj, dict):
                for k in sorted(obj):
                        v = obj[k]
                        key = yaml_scalar(k)
                        if isinstance(v, dict) and v:
                                out.append(f"{pad}{key}:\n" + yaml_dump(v, indent + 2))
                        elif isinstance(v, list) and v:
                                out.append(f"{pad}{key}:\n" + yaml_dump(v, indent))
                        else:
                                out.append(f"{pad}{key}: {yaml_inline(v, indent)}\n")
        elif isinstance(obj, list):
                for v in obj:
                        if isinstance(v, (dict, list)) and v:
                                inner = yaml_dump(v, indent + 2)
                                out.append(f"{pad}- " + inner[indent + 2:])
                        else:
                                out.append(f"{pad}- {yaml_inline(v, indent)}\n")
        return "".join(out)


def yaml_inline(v, indent):
        if isinstance(v, dict):
                return "{}"
        if isinstance(v, list):
                return "[]"
        return yaml_scalar(v, indent)


# --------------------------------------------------------------------------------------------------
# Config files in basedir

def make_config(g):
        r = g.rng("config")
        a = g.args
        plugins = {
            "announcements": {"_config_version": 1,
                              "channels": {"_blog": {"read_until": 1714480200},
                                           "_important": {"read_until": 1521111600},
                                           "_octopi": {"read_until": 1709200800},
                                           "_plugins": {"read_until": 1716768000},
                                           "_releases": {"read_until": 1716390000}}},
            "backup": {},
            "bedlevelvisualizer": {"command": "G28\nG29 T", "graph_z_limits": "-2,2",
                                   "save_mesh": True, "screw_hub": 0.5, "stored_mesh": []},
            "classicwebcam": {"snapshot": "http://127.0.0.1:8080/?action=snapshot",
                              "stream": "/webcam/?action=stream"},
            "discovery": {"upnpUuid": str(uuid.UUID(int=r.getrandbits(128), version=4))},
            "errortracking": {"unique_id": str(uuid.UUID(int=r.getrandbits(128), version=4))},
            "gcodeviewer": {"_config_version": 1},
            "octolapse": {"load_settings_from_file": True},
            "PrintJobHistory": {"pluginCheckActivated": False, "showPrintJobDialogAfterPrint": True},
            "PrintTimeGenius": {"analyzers": [{"analyzerCommand": "{python} -u {analyzer} {gcode}",
                                               "description": "Marlin GCode Analyzer",
                                               "enabled": True}],
                                "enableOctoPrintAnalyzer": False},
            "softwareupdate": {"_config_version": 9, "check_overlay_ttl": 360,
                               "notify_users": True, "pip_enable_check": True},
            "tracking": {"enabled": False, "unique_id": str(uuid.UUID(int=r.getrandbits(128),
                                                                      version=4))},
            "virtual_printer": {"enabled": False},
            "workshop_lights": {"gpio": 17, "on_at_print_start": True, "turn_off_delay": 300},
        }
        if a.backup_path:
                plugins["backup"] = {"path": a.backup_path}
        cfg = {
            "accessControl": {"salt": "".join(r.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
                                              for _ in range(32))},
            "api": {"key": "%032X" % r.getrandbits(128)},
            "appearance": {"color": "orange", "colorTransparent": False, "name": a.name},
            "events": {"enabled": True,
                       "subscriptions": [{"command": g.path("scripts", "notify-done.sh") + " {name}",
                                          "event": "PrintDone", "type": "system"}]},
            "feature": {"modelSizeDetection": True, "sdSupport": False},
            "folder": {"timelapse": g.timelapse, "timelapse_tmp": g.timelapse_tmp},
            "plugins": plugins,
            "printerProfiles": {"default": "prusa_mk3s"},
            "serial": {"additionalPorts": ["/dev/ttyUSB*", "/dev/serial/by-id/*"],
                       "autoconnect": True, "baudrate": 115200, "port": "/dev/ttyACM0",
                       "timeout": {"temperatureAutoreport": 2}},
            "server": {"commands": {"serverRestartCommand": a.restart_command,
                                    "systemRestartCommand": "sudo shutdown -r now",
                                    "systemShutdownCommand": "sudo shutdown -h now"},
                       "firstRun": False,
                       "onlineCheck": {"enabled": True},
                       "pluginBlacklist": {"enabled": True},
                       "secretKey": "%032x" % r.getrandbits(128),
                       "seenWizards": {"backup": None, "classicwebcam": 1, "corewizard": 4,
                                       "tracking": None}},
            "temperature": {"profiles": [{"bed": 60, "chamber": None, "extruder": 215, "name": "PLA"},
                                         {"bed": 85, "chamber": None, "extruder": 240, "name": "PETG"},
                                         {"bed": 100, "chamber": 40, "extruder": 255, "name": "ABS"}]},
            "webcam": {"ffmpeg": "/usr/bin/ffmpeg", "ffmpegThreads": 1, "watermark": False},
        }
        g.write(g.path("config.yaml"), yaml_dump(cfg))


def make_users(g):
        r = g.rng("users")
        salt = base64.b64encode(r.randbytes(16)).decode().rstrip("=")
        digest = base64.b64encode(r.randbytes(32)).decode().rstrip("=")
        users = {
            "admin": {"active": True, "apikey": None, "groups": ["admins", "users"],
                      "password": f"$argon2id$v=19$m=65536,t=3,p=4${salt}${digest}",
                      "permissions": [], "roles": ["user", "admin"],
                      "settings": {"interface": {"language": "de"}}},
            "werkstatt": {"active": True, "apikey": "%032X" % r.getrandbits(128), "groups": ["users"],
                          "password": "%0128x" % r.getrandbits(512), "permissions": [],
                          "roles": ["user"], "settings": {}},
        }
        g.write(g.path("users.yaml"), yaml_dump(users))


def make_logging(g):
        g.write(g.path("logging.yaml"), yaml_dump({
            "loggers": {"octoprint.plugins.octolapse": {"level": "INFO"},
                        "octoprint.plugins.softwareupdate": {"level": "DEBUG"}},
            "root": {"level": "INFO"}}))
        g.write_json(g.path("lastPluginCheck.json"),
                     {"checked": 1716992400.25, "octoprint": g.args.octoprint_version,
                      "plugins": ["PrintJobHistory", "PrintTimeGenius", "bedlevelvisualizer",
                                  "octolapse", "workshop_lights"]})


def make_profiles_scripts(g):
        prof = {"axes": {"e": {"inverted": False, "speed": 300}, "x": {"inverted": False, "speed": 6000},
                         "y": {"inverted": False, "speed": 6000}, "z": {"inverted": False, "speed": 200}},
                "color": "default", "extruder": {"count": 1, "defaultExtrusionLength": 5,
                                                 "nozzleDiameter": 0.4, "offsets": [[0.0, 0.0]],
                                                 "sharedNozzle": False},
                "heatedBed": True, "heatedChamber": False, "id": "prusa_mk3s", "model": "Original Prusa i3 MK3S+",
                "name": "Prusa MK3S+", "volume": {"custom_box": False, "depth": 210.0, "formFactor": "rectangular",
                                                  "height": 210.0, "origin": "lowerleft", "width": 250.0}}
        g.write(g.path("printerProfiles", "prusa_mk3s.profile"), yaml_dump(prof))
        prof2 = dict(prof, id="ender3v2", model="Creality Ender-3 V2", name="Ender 3 V2 (Keller)",
                     volume={"custom_box": False, "depth": 220.0, "formFactor": "rectangular",
                             "height": 250.0, "origin": "lowerleft", "width": 220.0})
        g.write(g.path("printerProfiles", "ender3v2.profile"), yaml_dump(prof2))

        cura = {"_display_name": "PLA 0.2mm", "_description": "Imported from Cura 15.04",
                "bottom_layer_speed": 20.0, "bottom_thickness": 0.3, "fill_density": 20, "filament_diameter": [1.75],
                "layer_height": 0.2, "nozzle_size": 0.4, "print_speed": 50.0, "print_temperature": [210.0],
                "retraction_amount": 4.5, "retraction_speed": 40.0, "solid_layer_thickness": 0.8,
                "support": "none", "wall_thickness": 1.2}
        g.write(g.path("slicingProfiles", "cura", "pla_02.profile"), yaml_dump(cura))
        g.write(g.path("slicingProfiles", "cura", "petg_fine.profile"),
                yaml_dump(dict(cura, _display_name="PETG 0.1mm", layer_height=0.1, print_temperature=[240.0])))

        sg = ("scripts", "gcode")
        g.write(g.path(*sg, "afterPrintCancelled"),
                ";disablemotors\nM84\n\n;disable all heaters\n{% snippet 'disable_hotends' %}\n"
                "{% snippet 'disable_bed' %}\n;disable fan\nM106 S0\n")
        g.write(g.path(*sg, "afterPrintDone"), "G91\nG1 Z10 F600\nG90\nG1 X0 Y200 F3000\nM84\n")
        g.write(g.path(*sg, "beforePrintStarted"), "; {{ printer_profile.name }}\nM117 Printing...\n")
        g.write(g.path(*sg, "afterPrinterConnected"), "M115\nM155 S2\n")
        g.write(g.path("scripts", "notify-done.sh"),
                "#!/bin/sh\n# Called by OctoPrint's PrintDone event subscription.\n"
                "logger -t octoprint \"Print done: $1\"\n",
                mode=0o755)
        os.makedirs(g.path("translations"), exist_ok=True)


def make_single_file_plugins(g):
        g.write(g.path("plugins", "m73_progress.py"), '''\
# coding=utf-8
"""Sends M73 progress messages to the printer display."""
import octoprint.plugin


class M73ProgressPlugin(octoprint.plugin.ProgressPlugin):
    def on_print_progress(self, storage, path, progress):
        self._printer.commands("M73 P{}".format(int(progress)))


__plugin_name__ = "M73 Progress"
__plugin_pythoncompat__ = ">=3.7,<4"
__plugin_implementation__ = M73ProgressPlugin()
''')
        g.write(g.path("plugins", "fan_guard.py"), '''\
# coding=utf-8
"""Refuses M106 above S200 while the enclosure door is open (Werkstatt-Regel)."""
import octoprint.plugin


def limit_fan(comm, phase, cmd, cmd_type, gcode, *args, **kwargs):
    if gcode == "M106" and " S" in cmd:
        speed = int(float(cmd.split(" S", 1)[1].split()[0]))
        if speed > 200:
            return "M106 S200"
    return cmd


__plugin_name__ = "Fan Guard"
__plugin_pythoncompat__ = ">=3.7,<4"
__plugin_hooks__ = {"octoprint.comm.protocol.gcode.queuing": limit_fan}
''')


# --------------------------------------------------------------------------------------------------
# G-code: a pool of distinct ~48 KB blocks per slicer flavour, built once with a seeded PRNG, then
# assembled into files in random order between per-layer headers. Blocks are longer than deflate's
# 32 KB window, so a repeated block does not compress better than fresh G-code (about 3x with gzip -6).

BLOCK = 48 * 1024


def _num(v, places):
        s = f"{v:.{places}f}".rstrip("0").rstrip(".")
        return s if s not in ("", "-0") else "0"


def _gcode_block(r, flavour):
        lines = []
        size = 0
        cura = flavour == "cura"
        types = (["WALL-OUTER", "WALL-INNER", "SKIN", "FILL", "SUPPORT"] if cura else
                 ["External perimeter", "Perimeter", "Solid infill", "Internal infill", "Support material"])
        x, y = r.uniform(40, 180), r.uniform(40, 180)
        while size < BLOCK:
                kind = r.choice(types)
                if cura:
                        lines.append(f";TYPE:{kind}\n")
                else:
                        lines.append(f";TYPE:{kind}\n;WIDTH:{r.choice(('0.45', '0.42', '0.5'))}\n")
                feed = r.choice((1200, 1500, 1800, 2400, 2700, 3600))
                tx, ty = r.uniform(20, 200), r.uniform(20, 200)
                lines.append(f"G0 F7200 X{_num(tx, 3)} Y{_num(ty, 3)}\n" if cura
                             else f"G1 X{_num(tx, 3)} Y{_num(ty, 3)} F7200\n")
                x, y = tx, ty
                lines.append(f"G1 F{feed}\n")
                infill = "FILL" in kind.upper() or "INFILL" in kind.upper()
                n = r.randint(40, 160)
                ang = r.uniform(0, 2 * math.pi)
                for _ in range(n):
                        if infill:
                                step = r.uniform(5, 60)
                                ang = -ang + r.uniform(-0.05, 0.05)
                        else:
                                step = r.uniform(0.2, 4)
                                ang += r.uniform(-0.6, 0.6)
                        x = clamp(x + step * math.cos(ang), 1, 219)
                        y = clamp(y + step * math.sin(ang), 1, 219)
                        e = step * r.uniform(0.031, 0.036)
                        es = _num(e, 5)
                        if not cura and es.startswith("0."):
                                es = es[1:]
                        lines.append(f"G1 X{_num(x, 3)} Y{_num(y, 3)} E{es}\n")
                if r.random() < 0.5:
                        lines.append("G1 F2700 E-4.5\n" if cura else "G1 E-.8 F2100\n")
                        lines.append("G1 F2700 E4.5\n" if cura else "G1 E.8 F2100\n")
                size += sum(len(s) for s in lines[-n - 5:])
        return "".join(lines).encode("ascii")


class GcodePool:
        def __init__(self, g, total_bytes):
                r = g.rng("gcode-pool")
                per_flavour = clamp(total_bytes // 2, BLOCK, 4 << 20)
                n = max(1, per_flavour // BLOCK)
                self.blocks = {f: [_gcode_block(r, f) for _ in range(n)] for f in ("cura", "prusa")}


def _cura_header(r, name, layers, secs):
        return (f";FLAVOR:Marlin\n;TIME:{secs}\n;Filament used: {r.uniform(1, 40):.5f}m\n;Layer height: 0.2\n"
                f";MINX:{r.uniform(20, 60):.3f}\n;MINY:{r.uniform(20, 60):.3f}\n;MINZ:0.2\n"
                f";MAXX:{r.uniform(120, 200):.3f}\n;MAXY:{r.uniform(120, 200):.3f}\n;MAXZ:{layers * 0.2:.1f}\n"
                ";TARGET_MACHINE.NAME:Creality Ender-3 V2\n;Generated with Cura_SteamEngine 5.6.0\n"
                "M140 S60\nM105\nM190 S60\nM104 S210\nM105\nM109 S210\nM82 ;absolute extrusion mode\n"
                "; Ender 3 Custom Start G-code\nG92 E0 ; Reset Extruder\nG28 ; Home all axes\n"
                "G1 Z2.0 F3000 ; Move Z Axis up little to prevent scratching of Heat Bed\n"
                "G1 X0.1 Y20 Z0.3 F5000.0 ; Move to start position\n"
                "G1 X0.1 Y200.0 Z0.3 F1500.0 E15 ; Draw the first line\n"
                "G1 X0.4 Y200.0 Z0.3 F5000.0 ; Move to side a little\n"
                "G1 X0.4 Y20 Z0.3 F1500.0 E30 ; Draw the second line\n"
                "G92 E0 ; Reset Extruder\nG1 Z2.0 F3000\nG1 X5 Y20 Z0.3 F5000.0 ; Move over to prevent blob squish\n"
                f"M83 ;relative extrusion mode\n;LAYER_COUNT:{layers}\n")


def _cura_footer(r, name):
        settings = json.dumps({"global_quality": f"[general]\\nversion = 4\\nname = {name}\\n"
                                                 "definition = creality_ender3\\n\\n[metadata]\\n"
                                                 "quality_type = standard\\nsetting_version = 22\\n"
                                                 "\\n[values]\\nadhesion_type = skirt\\n"
                                                 f"layer_height = 0.2\\ninfill_sparse_density = {r.randint(10, 40)}\\n",
                               "extruder_quality": ["[general]\\nversion = 4\\n\\n[values]\\nspeed_print = 60\\n"
                                                    "retraction_amount = 4.5\\nmaterial_print_temperature = 210\\n"]})
        lines = [";SETTING_3 " + settings[i:i + 60] for i in range(0, len(settings), 60)]
        return ("G91 ;Relative positioning\nG1 E-2 F2700 ;Retract a bit\nG1 E-2 Z0.2 F2400\n"
                "G1 X5 Y5 F3000 ;Wipe out\nG1 Z10 ;Raise Z more\nG90 ;Absolute positioning\n"
                "G1 X0 Y220 ;Present print\nM106 S0 ;Turn-off fan\nM104 S0 ;Turn-off hotend\n"
                "M140 S0 ;Turn-off bed\nM84 X Y E ;Disable all steppers but Z\nM82 ;absolute extrusion mode\n"
                "M104 S0\n;End of Gcode\n" + "\n".join(lines) + "\n")


def _prusa_header(g, r, name, layers, secs):
        thumb = base64.b64encode(fake_png(g.seed, "thumb:" + name, 1800, 16, 16)).decode()
        tl = [f"; {thumb[i:i + 78]}" for i in range(0, len(thumb), 78)]
        return ("; generated by PrusaSlicer 2.7.1+linux-x64-GTK3 on 2024-03-02 at 14:21:10 UTC\n\n; \n\n"
                "; external perimeters extrusion width = 0.45mm\n; perimeters extrusion width = 0.45mm\n"
                "; infill extrusion width = 0.45mm\n; solid infill extrusion width = 0.45mm\n"
                "; top infill extrusion width = 0.40mm\n; first layer extrusion width = 0.42mm\n\n"
                f"; thumbnail begin 16x16 {len(thumb)}\n" + "\n".join(tl) + "\n; thumbnail end\n\n"
                f"M73 P0 R{secs // 60}\nM201 X1000 Y1000 Z200 E5000 ; sets maximum accelerations, mm/sec^2\n"
                "M203 X200 Y200 Z12 E120 ; sets maximum feedrates, mm / sec\n"
                "M204 P1250 R1250 T1250 ; sets acceleration (P, T) and retract acceleration (R), mm/sec^2\n"
                "M205 X8.00 Y8.00 Z0.40 E4.50 ; sets the jerk limits, mm/sec\n"
                "M205 S0 T0 ; sets the minimum extruding and travel feed rate, mm/sec\n"
                ";TYPE:Custom\nM862.3 P \"MK3S\" ; printer model check\nM862.1 P0.4 ; nozzle diameter check\n"
                "M115 U3.13.2 ; tell printer latest fw version\nG90 ; use absolute coordinates\n"
                "M83 ; extruder relative mode\nM104 S215 ; set extruder temp\nM140 S60 ; set bed temp\n"
                "M190 S60 ; wait for bed temp\nM109 S215 ; wait for extruder temp\n"
                "G28 W ; home all without mesh bed level\nG80 ; mesh bed leveling\n"
                "G1 Z0.2 F720\nG1 Y-3 F1000 ; go outside print area\nG92 E0\n"
                "G1 X60 E9 F1000 ; intro line\nG1 X100 E12.5 F1000 ; intro line\nG92 E0\n"
                "M221 S95\nG21 ; set units to millimeters\nG90 ; use absolute coordinates\n"
                "M83 ; use relative distances for extrusion\nM900 K0.05 ; Filament gcode LA 1.5\n"
                "M107\n")


_PRUSA_CONFIG = [
    "avoid_crossing_perimeters = 0", "bed_shape = 0x0,250x0,250x210,0x210", "bed_temperature = 60",
    "bottom_solid_layers = 4", "bridge_fan_speed = 100", "bridge_speed = 25", "brim_width = 0",
    "complete_objects = 0", "cooling = 1", "default_acceleration = 1000", "extrusion_multiplier = 1",
    "fan_always_on = 1", "filament_diameter = 1.75", "filament_settings_id = \"Prusament PLA\"",
    "filament_type = PLA", "fill_density = 15%", "fill_pattern = grid", "first_layer_height = 0.2",
    "first_layer_speed = 20", "first_layer_temperature = 215", "gcode_flavor = marlin2",
    "infill_speed = 200", "layer_height = 0.2", "max_print_speed = 200", "nozzle_diameter = 0.4",
    "perimeter_speed = 45", "perimeters = 2", "print_settings_id = 0.20mm QUALITY @MK3",
    "printer_model = MK3S", "printer_settings_id = Original Prusa i3 MK3S & MK3S+",
    "retract_length = 0.8", "retract_speed = 35", "skirts = 1", "solid_infill_speed = 200",
    "support_material = 0", "temperature = 215", "top_solid_layers = 5", "travel_speed = 180",
    "wipe = 1", "z_offset = 0",
]


def _prusa_footer(r, name):
        used = r.uniform(1000, 40000)
        return ("G1 E-.8 F2100\nG1 Z25 F720\nM104 S0 ; turn off temperature\nM140 S0 ; turn off heatbed\n"
                "M107 ; turn off fan\nG1 X0 Y200 F3000 ; home X axis\nM84 ; disable motors\nM73 P100 R0\n\n"
                f"; filament used [mm] = {used:.2f}\n; filament used [cm3] = {used * 0.0024:.2f}\n"
                f"; filament used [g] = {used * 0.003:.2f}\n; filament cost = {used * 0.00007:.2f}\n"
                "; total filament used [g] = {:.2f}\n".format(used * 0.003)
                + "\n; prusaslicer_config = begin\n" + "".join(f"; {c}\n" for c in _PRUSA_CONFIG)
                + "; prusaslicer_config = end\n")


def write_gcode(g, pool, path, target, label):
        """Write a G-code file of about target bytes; returns (size, sha1 hex, analysis dict)."""
        r = g.rng("gcode:" + label)
        flavour = r.choice(("cura", "prusa"))
        blocks = pool.blocks[flavour]
        name = os.path.basename(path)
        layers_est = max(2, target // (BLOCK * 2))
        secs = int(target / 3000) + r.randint(60, 600)
        head = (_cura_header(r, name, layers_est, secs) if flavour == "cura"
                else _prusa_header(g, r, name, layers_est, secs)).encode()
        foot = (_cura_footer(r, name) if flavour == "cura" else _prusa_footer(r, name)).encode()
        h = hashlib.sha1()
        size = 0
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
                buf = [head]
                size = len(head)
                layer = 0
                while size + len(foot) < target:
                        z = 0.2 * (layer + 1)
                        if flavour == "cura":
                                lh = (f";LAYER:{layer}\nM107\nG0 F7200 X{r.uniform(20, 200):.3f} "
                                      f"Y{r.uniform(20, 200):.3f} Z{z:.1f}\n")
                        else:
                                lh = (f";LAYER_CHANGE\n;Z:{z:.1f}\n;HEIGHT:0.2\nG1 Z{z:.1f} F720\n"
                                      f"M73 P{min(99, 100 * size // target)} "
                                      f"R{secs * (target - size) // target // 60}\n")
                        lh = lh.encode()
                        blk = blocks[r.randrange(len(blocks))]
                        room = target - len(foot) - size - len(lh)
                        if room < len(blk):
                                # Cut the last block at a line end so the file ends cleanly.
                                blk = blk[:blk.rfind(b"\n", 0, max(room, 1)) + 1]
                                if not blk:
                                        break
                        buf += (lh, blk)
                        size += len(lh) + len(blk)
                        layer += 1
                        if len(buf) > 128:
                                data = b"".join(buf)
                                h.update(data)
                                f.write(data)
                                buf = []
                buf.append(foot)
                size += len(foot)
                data = b"".join(buf)
                h.update(data)
                f.write(data)
        w, d = r.uniform(20, 180), r.uniform(20, 180)
        minx, miny = r.uniform(5, 200 - w if w < 195 else 5), r.uniform(5, 200 - d if d < 195 else 5)
        height = round(layer * 0.2, 2)
        length = round(size * 0.0009 + r.uniform(0, 200), 5)
        analysis = {
            "dimensions": {"depth": round(d, 3), "height": height, "width": round(w, 3)},
            "estimatedPrintTime": round(secs * r.uniform(0.95, 1.1), 4),
            "filament": {"tool0": {"length": length, "volume": round(length * 0.0024, 6)}},
            "printingArea": {"maxX": round(minx + w, 3), "maxY": round(miny + d, 3), "maxZ": height,
                             "minX": round(minx, 3), "minY": round(miny, 3), "minZ": 0.2},
        }
        return size, h.hexdigest(), analysis


GCODE_NAMES = [
    "Benchy_0.2mm_PLA_MK3S_1h23m.gcode", "CE3V2_calibration_cube.gcode", "Halterung_v3.gcode",
    "Phone stand (v2).gcode", "spool_holder_PETG.gcode", "cable_chain_x10.gcode",
    "raspberry_pi_4_case_lid.gcode", "Filamentführung.gcode", "lithophane_oma.gcode",
    "gridfinity_2x3_bin.gcode", "voron_cube_0.2mm.gcode", "headphone_hook.gcode",
    "enclosure_hinge_left.gcode", "enclosure_hinge_right.gcode", "fan_duct_5015.gcode",
    "desk_organizer_v7.gcode", "plant_pot_spiral_vase.gcode", "knob_M8.gcode",
    "SD_card_holder.gcode", "wall_mount_router.gcode",
]
UPLOAD_FOLDERS = ["", "prototypes", "Ersatzteile"]


def gcode_sizes(r, total, n):
        """n file sizes, log-uniformly spread (many small, a few large), summing to about total."""
        weights = [math.exp(r.uniform(0, 3.5)) for _ in range(n)]
        s = sum(weights)
        return [max(2_000, int(total * w / s)) for w in weights]


def make_uploads(g, pool):
        """G-code files in uploads/ and two subfolders, plus each folder's .metadata.json."""
        p = g.plan
        r = g.rng("uploads")
        sizes = gcode_sizes(r, p.gcode_bytes, p.gcode_files)
        files = []      # (folder, name, size, sha1, analysis)
        for i, size in enumerate(sizes):
                if i == 0:
                        folder, name = "", "Würfel_äöü.gcode"
                else:
                        folder = UPLOAD_FOLDERS[i % len(UPLOAD_FOLDERS)]
                        base = GCODE_NAMES[(i - 1) % len(GCODE_NAMES)]
                        name = base if i <= len(GCODE_NAMES) else base.replace(".gcode", f"_{i}.gcode")
                path = g.path("uploads", folder, name)
                got, sha1, analysis = write_gcode(g, pool, path, size, f"upload:{i}")
                files.append((folder, name, got, sha1, analysis))
        for folder in UPLOAD_FOLDERS:
                meta = {}
                for fol, name, size, sha1, analysis in files:
                        if fol != folder:
                                continue
                        ts = MTIME_BASE - r.randint(3600, 200 * 86400) + round(r.random(), 4)
                        ok = r.random() < 0.85
                        hist = {"printerProfile": "prusa_mk3s", "success": ok, "timestamp": ts}
                        if ok:
                                hist["printTime"] = round(analysis["estimatedPrintTime"] * r.uniform(0.9, 1.2), 4)
                        meta[name] = {"analysis": analysis, "display": name, "hash": sha1, "history": [hist]}
                        if ok:
                                meta[name]["statistics"] = {"averagePrintTime": {"prusa_mk3s": hist["printTime"]},
                                                            "lastPrintTime": {"prusa_mk3s": hist["printTime"]}}
                g.write_json(g.path("uploads", folder, ".metadata.json"), meta, sort_keys=True)
        return files


def make_misc_folders(g, pool):
        """watched/, virtualSd/, uploadtemp/, logs/, generated/."""
        p = g.plan
        r = g.rng("misc")
        write_gcode(g, pool, g.path("watched", "Ersatzteil_Lüfterhalter.gcode"),
                    clamp(p.gcode_bytes // 50, 20_000, 2 * MB), "watched")
        write_gcode(g, pool, g.path("virtualSd", "test.gco"), 8_000, "virtualSd")
        g.write(g.path("uploadtemp", "tmpk3l_9x2q.gcode"),
                b"".join(pool.blocks["cura"])[:min(30_000, p.gcode_bytes // 20)])

        levels = ["INFO"] * 12 + ["DEBUG"] * 3 + ["WARNING", "ERROR"]
        loggers = ["octoprint.server", "octoprint.plugin.core", "octoprint.plugins.octolapse",
                   "octoprint.filemanager.analysis", "octoprint.printer.standard", "tornado.access",
                   "octoprint.plugins.softwareupdate", "octoprint.util.comm"]
        msgs = ["Connected to: Serial<id=0x7f3a, open=True>(port='/dev/ttyACM0', baudrate=115200)",
                "Changing monitoring state from \"Operational\" to \"Printing\"", "Finished analysis of {f}",
                "Starting analysis of local:{f}", "User admin logged in on the socket from client ::ffff:192.168.1.23",
                "Checking for updates for octolapse", "200 GET /api/printer?exclude=sd (::1) 4.12ms",
                "Printer reported temperature 214.8/215.0", "Plugin backup: Creating backup zip at {f}"]
        t = MTIME_BASE - 86400 * 3
        for name, share in (("octoprint.log", 0.6), ("octoprint.log.2024-05-29", 0.2),
                            ("serial.log", 0.1), ("plugin_octolapse.log", 0.1)):
                lines, n = [], 0
                while n < p.log_bytes * share:
                        t += r.uniform(0.01, 30)
                        ts = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) + ",%03d" % r.randrange(1000)
                        if name == "serial.log":
                                line = (f"{ts} - Recv: T:{r.uniform(200, 216):.2f} /215.00 "
                                        f"B:{r.uniform(58, 61):.2f} /60.00 "
                                        f"@:{r.randint(20, 127)} B@:{r.randint(0, 127)}\n")
                        else:
                                line = (f"{ts} - {r.choice(loggers)} - {r.choice(levels)} - "
                                        + r.choice(msgs).format(f=r.choice(GCODE_NAMES)) + "\n")
                        lines.append(line)
                        n += len(line)
                g.write(g.path("logs", name), "".join(lines))

        half = max(p.generated_bytes // 2, 1000)
        js = "".join(f"(function(){{var v{i}=ko.observable({r.randint(0, 9999)});"
                     f"OctoPrint.coreui.viewmodels.push(v{i});}})();\n" for i in range(half // 90))
        g.write(g.path("generated", "webassets", "packed_core.js"), js)
        css = "".join(f".octoprint-container .row-{i}{{margin:{r.randint(0, 20)}px;color:#{r.getrandbits(24):06x}}}\n"
                      for i in range(half // 60))
        g.write(g.path("generated", "webassets", "packed_core.css"), css)
        g.write(g.path("generated", ".webassets-manifest"),
                json.dumps({"packed_core.js": r.getrandbits(64), "packed_core.css": r.getrandbits(64)}))


# --------------------------------------------------------------------------------------------------
# Timelapse folder (configured outside basedir)

def make_timelapse(g):
        p = g.plan
        r = g.rng("timelapse")
        n = p.video_files
        weights = [r.uniform(0.5, 2) for _ in range(n)]
        ws = sum(weights)
        thumb = clamp(p.video_bytes // (n * 40), 3_000, 60_000)
        for i in range(n):
                job = os.path.splitext(GCODE_NAMES[i % len(GCODE_NAMES)])[0]
                stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(MTIME_BASE - 86400 * (n - i) - r.randint(0, 86000)))
                base = f"{job}_{stamp}"
                size = int(p.video_bytes * weights[i] / ws) - thumb
                path = os.path.join(g.timelapse, base + ".mp4")
                os.makedirs(g.timelapse, exist_ok=True)
                with open(path, "wb") as f:
                        for chunk in fake_mp4_stream(g.seed, "mp4:" + base, max(size, 1000)):
                                f.write(chunk)
                g.write(os.path.join(g.timelapse, base + ".jpg"), fake_jpeg(g.seed, "thumb:" + base, thumb))
        job = "Filamentführung"
        for i in range(p.frames):
                g.write(os.path.join(g.timelapse_tmp, f"{job}-{i}.jpg"),
                        fake_jpeg(g.seed, f"frame:{i}", int(p.frame_bytes * r.uniform(0.8, 1.2))))


# --------------------------------------------------------------------------------------------------
# Plugin data folders (data/<plugin>/)

def make_sqlite(path, r, rows, kind):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if os.path.exists(path):
                os.unlink(path)
        db = sqlite3.connect(path)
        c = db.cursor()
        if kind == "printjobhistory":
                c.executescript("""
                CREATE TABLE pluginmetadatamodel (id INTEGER PRIMARY KEY, key VARCHAR(255) NOT NULL,
                        value VARCHAR(255) NOT NULL);
                CREATE TABLE printjobmodel (databaseId INTEGER PRIMARY KEY, userName VARCHAR(255),
                        fileName VARCHAR(255) NOT NULL, filePathName VARCHAR(255), fileSize INTEGER,
                        printStartDateTime DATETIME NOT NULL, printEndDateTime DATETIME,
                        duration INTEGER, printStatusResult VARCHAR(255) NOT NULL, noteText TEXT,
                        slicerSettingsAsText TEXT);
                CREATE TABLE filamentmodel (databaseId INTEGER PRIMARY KEY,
                        printJob_id INTEGER NOT NULL REFERENCES printjobmodel (databaseId),
                        spoolName VARCHAR(255), material VARCHAR(255), usedLength REAL, usedWeight REAL,
                        usedCost REAL);
                CREATE TABLE temperaturemodel (databaseId INTEGER PRIMARY KEY,
                        printJob_id INTEGER NOT NULL REFERENCES printjobmodel (databaseId),
                        sensorName VARCHAR(255), sensorValue VARCHAR(255));
                CREATE INDEX filamentmodel_printJob_id ON filamentmodel (printJob_id);
                """)
                c.execute("INSERT INTO pluginmetadatamodel (key, value) VALUES ('databaseSchemeVersion', '11')")
                for i in range(1, rows + 1):
                        start = MTIME_BASE - r.randint(0, 300 * 86400)
                        dur = r.randint(600, 30 * 3600)
                        name = r.choice(GCODE_NAMES)
                        c.execute("INSERT INTO printjobmodel VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                                  (i, "admin", name, name, r.randint(10_000, 50 * MB),
                                   time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(start)),
                                   time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(start + dur)), dur,
                                   r.choice(["success"] * 8 + ["canceled", "failed"]),
                                   r.choice(["", "Warping an der linken Ecke", "Perfekt!",
                                             "Stringing, retract erhöhen"]),
                                   "; " + "\n; ".join(_PRUSA_CONFIG[:r.randint(5, 20)])))
                        length = r.uniform(500, 40000)
                        c.execute("INSERT INTO filamentmodel VALUES (NULL,?,?,?,?,?,?)",
                                  (i, r.choice(["Prusament Galaxy Black", "eSun PLA+ weiß", "Extrudr PETG"]),
                                   r.choice(["PLA", "PETG"]), length, length * 0.003, length * 0.00007))
                        c.execute("INSERT INTO temperaturemodel VALUES (NULL,?,?,?)", (i, "bed", "60"))
                        c.execute("INSERT INTO temperaturemodel VALUES (NULL,?,?,?)", (i, "tool0", "215"))
        elif kind == "spoolmanager":
                c.executescript("""
                CREATE TABLE spoolmodel (databaseId INTEGER PRIMARY KEY, displayName VARCHAR(255),
                        vendor VARCHAR(255), material VARCHAR(255), color VARCHAR(32),
                        totalWeight REAL, usedWeight REAL, firstUse DATETIME, lastUse DATETIME,
                        isActive INTEGER NOT NULL);
                CREATE TABLE pluginmetadatamodel (id INTEGER PRIMARY KEY, key VARCHAR(255), value VARCHAR(255));
                """)
                c.execute("INSERT INTO pluginmetadatamodel (key, value) VALUES ('databaseSchemeVersion', '12')")
                for i in range(1, max(rows // 10, 5) + 1):
                        c.execute("INSERT INTO spoolmodel VALUES (NULL,?,?,?,?,?,?,?,?,?)",
                                  (f"Spule {i}", r.choice(["Prusament", "eSun", "Extrudr", "Polymaker"]),
                                   r.choice(["PLA", "PETG", "ASA", "TPU"]), "#%06x" % r.getrandbits(24),
                                   1000.0, r.uniform(0, 1000), "2024-01-%02d 10:00:00" % r.randint(1, 28),
                                   "2024-05-%02d 18:00:00" % r.randint(1, 28), int(r.random() < 0.7)))
        else:
                c.executescript("""
                CREATE TABLE schedule (id INTEGER PRIMARY KEY, weekday INTEGER, on_time TEXT, off_time TEXT);
                CREATE TABLE events (id INTEGER PRIMARY KEY, ts REAL, state INTEGER, reason TEXT);
                """)
                for d in range(7):
                        c.execute("INSERT INTO schedule VALUES (NULL,?,?,?)", (d, "07:30", "22:00"))
                for i in range(rows):
                        c.execute("INSERT INTO events VALUES (NULL,?,?,?)",
                                  (MTIME_BASE - r.uniform(0, 1e7), r.randint(0, 1),
                                   r.choice(["print started", "print done", "manual", "schedule"])))
        db.commit()
        db.close()


def make_data(g, uploads):
        p = g.plan
        r = g.rng("data")
        os.makedirs(g.path("data", "backup"), exist_ok=True)       # the backup folder: empty
        os.makedirs(g.path("data", "discovery"), exist_ok=True)    # empty, as OctoPrint leaves it

        # Fixed per-plugin files.
        cameras = {str(uuid.UUID(int=r.getrandbits(128), version=4)): {
            "name": f"Webcam {i}", "snapshot_request_template": "{camera_address}?action=snapshot",
            "timeout_ms": 5000} for i in (1, 2)}
        stabilizations = {f"stab-{i}": {"x_fixed_coordinate": r.randint(0, 250),
                                        "y_fixed_coordinate": r.randint(0, 210)} for i in range(40)}
        g.write_json(g.path("data", "octolapse", "settings.json"), {
            "main_settings": {"is_octolapse_enabled": True, "show_navbar_icon": True, "version": "0.4.5"},
            "profiles": {"cameras": cameras, "stabilizations": stabilizations,
                         "printers": {"current_profile_guid": str(uuid.UUID(int=r.getrandbits(128), version=4))}}})
        g.write_json(g.path("data", "bedlevelvisualizer", "settings.json"),
                     {"stored_mesh": [[round(r.uniform(-0.3, 0.3), 3) for _ in range(7)] for _ in range(7)]})
        g.write_json(g.path("data", "PrintTimeGenius", "printer_config.json"),
                     {"M203": [200, 200, 12, 120], "M204": [1250, 1250, 1250], "M205": [8, 8, 0.4, 4.5]})
        g.write(g.path("data", "appkeys", "keys.yaml"),
                yaml_dump({"admin": [{"api_key": "%032X" % r.getrandbits(128), "app_id": "Cura"},
                                     {"api_key": "%032X" % r.getrandbits(128), "app_id": "PrusaSlicer"}]}),
                mode=0o600)
        g.write_json(g.path("data", "pluginmanager", "plugins.json"),
                     [{"id": k, "title": k, "archive": f"https://github.com/example/{k}/archive/master.zip",
                       "compatibility": {"octoprint": [">=1.4.0"], "os": ["linux"]}}
                      for k in ("octolapse", "bedlevelvisualizer", "PrintTimeGenius", "PrintJobHistory")])
        g.write_json(g.path("data", "announcements", "_releases.json"),
                     {"entries": [{"title": f"OctoPrint 1.11.{i} released", "published": 1700000000 + i * 86400 * 30}
                                  for i in range(9)]})
        g.write_json(g.path("data", "workshop_lights", "state.json"), {"on": False, "last_change": MTIME_BASE - 3600})

        # Thumbnails for the uploaded files (the Slicer Thumbnails plugin keeps them here).
        for folder, name, *_ in uploads:
                png = os.path.splitext(name)[0] + ".png"
                g.write(g.path("data", "prusaslicerthumbnails", folder, png),
                        fake_png(g.seed, "pst:" + folder + name, r.randint(3_000, 12_000)))

        # SQLite databases.
        kinds = [("PrintJobHistory", "printJobHistory.db", "printjobhistory"),
                 ("SpoolManager", "SpoolManager.db", "spoolmanager"),
                 ("workshop_lights", "schedule.db", "lights")][:p.sqlite_dbs]
        for plugin, fname, kind in kinds:
                make_sqlite(g.path("data", plugin, fname), g.rng("sqlite:" + fname), p.sqlite_rows, kind)

        # The many small files.
        jobs = [str(uuid.UUID(int=r.getrandbits(128), version=4)) for _ in range(max(1, p.small_files // 150))]
        cam = str(uuid.UUID(int=r.getrandbits(128), version=4))
        avg = p.small_avg
        for i in range(p.small_files):
                kind = r.random()
                n = int(avg * r.uniform(0.3, 1.7))
                if kind < 0.35:
                        job = jobs[i % len(jobs)]
                        g.write(g.path("data", "octolapse", "snapshots", job, cam, f"{i:06d}.jpg"),
                                fake_jpeg(g.seed, f"ol:{i}", n))
                elif kind < 0.55:
                        g.write(g.path("data", "PrintJobHistory", "snapshots", f"{i}.jpg"),
                                fake_jpeg(g.seed, f"pjh:{i}", n))
                elif kind < 0.65:
                        g.write(g.path("data", "PrintJobHistory", "thumbnails", f"{i}.png"),
                                fake_png(g.seed, f"pjht:{i}", n))
                elif kind < 0.80:
                        mesh = [[round(r.uniform(-0.35, 0.35), 3) for _ in range(7)] for _ in range(7)]
                        g.write_json(g.path("data", "bedlevelvisualizer", "meshes", f"mesh_{i:05d}.json"),
                                     {"mesh": mesh, "bed": {"x_min": 0, "x_max": 250, "y_min": -4, "y_max": 210},
                                      "timestamp": MTIME_BASE - r.randint(0, 10**7)})
                else:
                        g.write_json(g.path("data", "PrintTimeGenius", "analysis", "%040x.json" % r.getrandbits(160)),
                                     {"progress": [[round(k / 20, 2), round(r.uniform(0, 1e4), 1)] for k in range(21)],
                                      "firstFilament": round(r.uniform(5, 60), 3),
                                      "lastFilament": round(r.uniform(600, 30000), 3),
                                      "analysisPrintTime": round(r.uniform(600, 1e5), 3)})


# --------------------------------------------------------------------------------------------------
# The venv

OCTOPRINT_INIT = '''\
#!/usr/bin/env python3
__author__ = "Gina Häußge <gina@octoprint.org>"
__license__ = "GNU Affero General Public License http://www.gnu.org/licenses/agpl.html"
__copyright__ = "Copyright (C) 2014 The OctoPrint Project - Released under terms of the AGPLv3 License"

from ._version import get_versions

__version__ = get_versions()["version"]


def main():
    # A stand-in generated for opbackup's tests (tests/gen-instance.py), not OctoPrint itself.
    import sys
    if sys.argv[1:] == ["--version"]:
        print("octoprint, version " + __version__)
        return 0
    sys.exit("octoprint: test stand-in generated by opbackup's tests/gen-instance.py")
'''


def plugin_dists(version):
        """Distributions in site-packages: (name, version, [octoprint.plugin] key or None, module, METADATA headers)."""
        return [
            ("OctoPrint", version, None, "octoprint",
             ["Home-page: https://octoprint.org", "Author: Gina Häußge", "Author-email: gina@octoprint.org",
              "License: GNU Affero General Public License v3",
              "Project-URL: Community Forum, https://community.octoprint.org",
              "Project-URL: Bug Reports, https://github.com/OctoPrint/OctoPrint/issues",
              "Project-URL: Source, https://github.com/OctoPrint/OctoPrint",
              "Requires-Python: >=3.7, <3.14", "Requires-Dist: requests>=2.31.0"]),
            ("Octolapse", "0.4.5", "octolapse", "octoprint_octolapse",
             ["Home-page: https://github.com/FormerLurker/Octolapse", "Author: Brad Hochgesang",
              "Author-email: FormerLurker@pm.me", "License: AGPLv3"]),
            ("OctoPrint-BedLevelVisualizer", "1.1.1", "bedlevelvisualizer", "octoprint_bedlevelvisualizer",
             ["Home-page: https://github.com/jneilliii/OctoPrint-BedLevelVisualizer", "Author: jneilliii",
              "License: AGPLv3"]),
            ("OctoPrint-PrintTimeGenius", "2.3.3", "PrintTimeGenius", "octoprint_PrintTimeGenius",
             ["Author-email: Eyal Soha <eyalsoha@gmail.com>", "License: AGPLv3",
              "Project-URL: Homepage, https://github.com/eyal0/OctoPrint-PrintTimeGenius"]),
            ("OctoPrint-PrintJobHistory", "1.17.2", "PrintJobHistory", "octoprint_PrintJobHistory",
             ["Author: OllisGit", "License: AGPLv3",
              "Project-URL: Source, https://github.com/OllisGit/OctoPrint-PrintJobHistory",
              "Project-URL: Bug Tracker, https://github.com/OllisGit/OctoPrint-PrintJobHistory/issues"]),
            ("OctoPrint-WorkshopLights", "0.3.0", "workshop_lights", "octoprint_workshop_lights",
             ["Author: Jürgen Müller", "License: MIT"]),
            ("OctoPrint-FileCheck", "2024.3.27", "file_check", "octoprint_file_check",
             ["Home-page: https://github.com/OctoPrint/OctoPrint-FileCheck", "Author: Gina Häußge",
              "License: AGPLv3"]),
            ("OctoPrint-FirmwareCheck", "2021.10.11", "firmware_check", "octoprint_firmware_check",
             ["Home-page: https://github.com/OctoPrint/OctoPrint-FirmwareCheck", "Author: Gina Häußge",
              "License: AGPLv3"]),
            ("OctoPrint-PiSupport", "2023.10.10", "pi_support", "octoprint_pi_support",
             ["Home-page: https://github.com/OctoPrint/OctoPrint-PiSupport", "Author: Gina Häußge",
              "License: AGPLv3"]),
            ("requests", "2.31.0", None, "requests",
             ["Home-page: https://requests.readthedocs.io", "Author: Kenneth Reitz",
              "License: Apache 2.0", "Project-URL: Source, https://github.com/psf/requests"]),
            ("Flask", "2.2.5", None, "flask",
             ["Home-page: https://palletsprojects.com/p/flask", "Author: Armin Ronacher",
              "License: BSD-3-Clause"]),
        ]


def python_version(python):
        out = subprocess.run([python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                             check=True, capture_output=True, text=True).stdout.strip()
        return out


def make_venv(g):
        a = g.args
        pyver = python_version(a.python)
        short = ".".join(pyver.split(".")[:2])
        bindir = os.path.join(g.venv, "bin")
        site = os.path.join(g.venv, "lib", f"python{short}", "site-packages")
        if a.real_venv:
                subprocess.run([a.python, "-m", "venv", g.venv], check=True)
        else:
                os.makedirs(bindir, exist_ok=True)
                os.makedirs(site, exist_ok=True)
                os.symlink(a.python, os.path.join(bindir, "python"))
                os.symlink("python", os.path.join(bindir, "python3"))
                os.symlink("python", os.path.join(bindir, f"python{short}"))
                os.symlink("lib", os.path.join(g.venv, "lib64"))
                g.write(os.path.join(g.venv, "pyvenv.cfg"),
                        f"home = {os.path.dirname(a.python)}\ninclude-system-site-packages = false\n"
                        f"version = {pyver}\nexecutable = {os.path.realpath(a.python)}\n"
                        f"command = {a.python} -m venv {g.venv}\n")
                g.write(os.path.join(bindir, "pip"),
                        f"#!{bindir}/python\n# -*- coding: utf-8 -*-\nimport re\nimport sys\n"
                        "from pip._internal.cli.main import main\nif __name__ == '__main__':\n"
                        "    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n"
                        "    sys.exit(main())\n", mode=0o755)
                g.write(os.path.join(bindir, "activate"),
                        f"# This file must be used with \"source bin/activate\" *from bash*\n"
                        f"VIRTUAL_ENV=\"{g.venv}\"\nexport VIRTUAL_ENV\nPATH=\"$VIRTUAL_ENV/bin:$PATH\"\nexport PATH\n")
        g.write(os.path.join(bindir, "octoprint"),
                f"#!{bindir}/python\n# -*- coding: utf-8 -*-\nimport re\nimport sys\nfrom octoprint import main\n"
                "if __name__ == '__main__':\n"
                "    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n"
                "    sys.exit(main())\n", mode=0o755)

        for name, version, key, module, headers in plugin_dists(a.octoprint_version):
                dist = f"{re.sub(r'[-_.]+', '_', name)}-{version}.dist-info"
                d = os.path.join(site, dist)
                summary = f"{name} for OctoPrint" if key else f"The {name} package"
                g.write(os.path.join(d, "METADATA"),
                        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: {summary}\n"
                        + "".join(h + "\n" for h in headers)
                        + "Classifier: Programming Language :: Python :: 3\n"
                        + "Description-Content-Type: text/markdown\nLicense-File: LICENSE\n\n"
                        + f"# {name}\n\n{summary}. See the documentation for details.\n")
                if module == "octoprint":
                        eps = "[console_scripts]\noctoprint = octoprint:main\n"
                elif key:
                        eps = f"[octoprint.plugin]\n{key} = {module}\n"
                elif name == "Flask":
                        eps = "[console_scripts]\nflask = flask.cli:main\n"
                else:
                        eps = None
                files = [f"{module}/__init__.py", f"{dist}/METADATA", f"{dist}/WHEEL", f"{dist}/top_level.txt",
                         f"{dist}/INSTALLER"]
                if eps:
                        g.write(os.path.join(d, "entry_points.txt"), eps)
                        files.append(f"{dist}/entry_points.txt")
                g.write(os.path.join(d, "WHEEL"),
                        "Wheel-Version: 1.0\nGenerator: bdist_wheel (0.41.2)\nRoot-Is-Purelib: true\n"
                        "Tag: py3-none-any\n")
                g.write(os.path.join(d, "top_level.txt"), module + "\n")
                g.write(os.path.join(d, "INSTALLER"), "pip\n")
                g.write(os.path.join(d, "RECORD"), "".join(f"{f},,\n" for f in files) + f"{dist}/RECORD,,\n")
                if module == "octoprint":
                        g.write(os.path.join(site, module, "__init__.py"), OCTOPRINT_INIT)
                        g.write(os.path.join(site, module, "_version.py"),
                                f"def get_versions():\n    return {{'version': '{version}', 'full-revisionid': None,"
                                " 'dirty': False, 'error': None}\n")
                elif key:
                        g.write(os.path.join(site, module, "__init__.py"),
                                f"# coding=utf-8\nimport octoprint.plugin\n\n__plugin_name__ = \"{name}\"\n"
                                f"__plugin_version__ = \"{version}\"\n__plugin_pythoncompat__ = \">=3.7,<4\"\n")
                else:
                        g.write(os.path.join(site, module, "__init__.py"), f"__version__ = \"{version}\"\n")
        return site


def expected_plugin_list(version):
        out = []
        for name, _version, key, _module, headers in plugin_dists(version):
                if not key or key in BUNDLED_PLUGIN_KEYS:
                        continue
                url = None
                for h in headers:
                        if h.startswith("Home-page: "):
                                url = h.split(": ", 1)[1]
                                break
                if url is None:
                        for h in headers:
                                if h.startswith("Project-URL: "):
                                        url = h.split(": ", 1)[1].split(", ", 1)[1]
                                        break
                out.append({"key": key, "name": name, "url": url})
        return sorted(out, key=lambda e: e["key"])


# --------------------------------------------------------------------------------------------------
# Finishing: modes, mtimes, ownership; the expected backup content.

def walk_all(top):
        """All paths below top (not top itself), bottom-up, without following symlinks."""
        for dirpath, dirnames, filenames in os.walk(top, topdown=False):
                for n in filenames:
                        yield os.path.join(dirpath, n)
                for n in dirnames:
                        yield os.path.join(dirpath, n)


def finish_tree(g, tops):
        r = g.rng("mtimes")
        for top in tops:
                for p in list(walk_all(top)) + [top]:
                        st = os.lstat(p)
                        if stat.S_ISLNK(st.st_mode):
                                continue
                        if stat.S_ISDIR(st.st_mode):
                                os.chmod(p, 0o755)
                        else:
                                os.chmod(p, g.modes.get(p, 0o755 if st.st_mode & 0o100 else 0o644))
                        t = MTIME_BASE - r.randrange(0, 200 * 86400, 2)
                        os.utime(p, (t, t))


def check_traversable(path, uid, groups):
        """Warn when uid cannot reach path through its ancestors."""
        if uid == 0:
                return
        parent = os.path.dirname(path)
        while True:
                st = os.stat(parent)
                if st.st_uid == uid:
                        ok = st.st_mode & 0o100
                elif st.st_gid in groups:
                        ok = st.st_mode & 0o010
                else:
                        ok = st.st_mode & 0o001
                if not ok:
                        print(f"gen-instance: warning: {parent} is not traversable by uid {uid} "
                              f"(mode {stat.S_IMODE(st.st_mode):04o}); the instance user cannot reach {path}",
                              file=sys.stderr)
                if parent == "/":
                        break
                parent = os.path.dirname(parent)


def chown_tree(g, user):
        try:
                pw = pwd.getpwnam(user) if not user.isdigit() else pwd.getpwuid(int(user))
        except KeyError:
                raise SystemExit(f"gen-instance: unknown user {user!r}")
        uid, gid = pw.pw_uid, pw.pw_gid
        for top in (g.basedir, g.timelapse, g.venv):
                for p in list(walk_all(top)) + [top]:
                        os.chown(p, uid, gid, follow_symlinks=False)
        os.chown(g.root, uid, gid)
        if g.created_backup_path:
                os.chown(g.backup_folder, uid, gid)
        os.chown(os.path.join(g.root, "expected.json"), uid, gid)
        groups = set(os.getgrouplist(pw.pw_name, gid))
        check_traversable(g.root, uid, groups)
        return pw.pw_name


def tree_files(top):
        for dirpath, dirnames, filenames in os.walk(top):
                dirnames.sort()
                for n in sorted(filenames):
                        yield os.path.join(dirpath, n)


def expected_entries(g, plugin_list_json, metadata_json):
        """Archive entries of a backup without excludes (see opbackupd(8)): name -> {size, mode}."""
        folders = g.folders
        backup = os.path.normpath(g.backup_folder)
        entries = {}

        def add(path, arcname):
                st = os.lstat(path)
                if not stat.S_ISREG(st.st_mode):
                        return
                entries[arcname] = {"size": st.st_size, "mode": "%04o" % stat.S_IMODE(st.st_mode)}

        def inside(path, folder):
                return path == folder or path.startswith(folder + os.sep)

        entries["metadata.json"] = {"size": len(metadata_json), "mode": None}
        add(g.path("config.yaml"), "basedir/config.yaml")
        for fid in FOLDER_IDS:
                if fid in ALWAYS_EXCLUDED:
                        continue
                src = folders[fid]
                if not os.path.isdir(src):
                        continue
                for p in tree_files(src):
                        if inside(p, backup):
                                continue
                        add(p, "basedir/" + fid.replace("_", "/") + "/" + os.path.relpath(p, src))
        defaults = [g.path(*fid.split("_")) for fid in FOLDER_IDS]
        for p in tree_files(g.basedir):
                if (p == g.path("config.yaml") or inside(p, backup)
                                or any(inside(p, d) for d in defaults)):
                        continue
                add(p, "basedir/" + os.path.relpath(p, g.basedir))
        if plugin_list_json:
                entries["plugin_list.json"] = {"size": len(plugin_list_json), "mode": None}
        return dict(sorted(entries.items()))


def write_expected(g, site, user):
        """DIR/expected.json: paths, version, plugin list and the entries of a backup without excludes.

        {"octoprint_version": "1.11.8", "name": ..., "backup_prefix": ..., "user": ... or null,
         "root", "basedir", "config", "venv", "python", "site_packages", "timelapse", "timelapse_tmp",
         "backup_folder": absolute paths,
         "folders": {folder id: configured absolute path},
         "bundled_plugin_keys": [...],
         "plugin_list": [{"key", "name", "url" or null}, ...] sorted by key,
         "plugin_list_json": the exact plugin_list.json text, "metadata_json": metadata.json text (no excludes),
         "entries": {archive name: {"size": bytes, "mode": "0644" (null for generated entries)}},
         "total_bytes", "files": size and count of the regular files generated}
        """
        v = g.args.octoprint_version
        plugins = expected_plugin_list(v)
        plugin_list_json = json.dumps(plugins) if plugins else ""
        metadata_json = json.dumps({"version": v, "excludes": []})
        exp = {
            "octoprint_version": v,
            "name": g.args.name,
            "backup_prefix": sanitize_prefix(g.args.name),
            "user": user,
            "root": g.root,
            "basedir": g.basedir,
            "config": g.path("config.yaml"),
            "venv": g.venv,
            "python": os.path.join(g.venv, "bin", "python"),
            "site_packages": site,
            "timelapse": g.timelapse,
            "timelapse_tmp": g.timelapse_tmp,
            "backup_folder": g.backup_folder,
            "folders": g.folders,
            "bundled_plugin_keys": sorted(BUNDLED_PLUGIN_KEYS),
            "plugin_list": plugins,
            "plugin_list_json": plugin_list_json,
            "metadata_json": metadata_json,
            "entries": expected_entries(g, plugin_list_json.encode(), metadata_json.encode()),
        }
        total = files = 0
        for top in (g.basedir, g.timelapse, g.venv):
                for p in tree_files(top):
                        st = os.lstat(p)
                        if stat.S_ISREG(st.st_mode):
                                total += st.st_size
                                files += 1
        exp["total_bytes"] = total
        exp["files"] = files
        path = os.path.join(g.root, "expected.json")
        with open(path, "w", encoding="utf-8") as f:
                json.dump(exp, f, indent=1, ensure_ascii=False)
                f.write("\n")
        os.chmod(path, 0o644)
        return exp


# --------------------------------------------------------------------------------------------------

def parse_args(argv):
        ap = argparse.ArgumentParser(description="Generate a realistic OctoPrint instance for opbackup tests.")
        ap.add_argument("--root", required=True, help="directory to create the instance in")
        ap.add_argument("--size", default="tiny", help="tiny (<1 MB), small (~20 MB), bench (~500 MB) or <N>M")
        ap.add_argument("--user", help="chown everything to this user and its primary group (needs root)")
        ap.add_argument("--seed", type=int, default=1)
        ap.add_argument("--name", default="My Printer", help="appearance.name in config.yaml")
        ap.add_argument("--octoprint-version", default="1.11.8")
        ap.add_argument("--restart-command", default="sudo service octoprint restart",
                        help="server.commands.serverRestartCommand in config.yaml")
        ap.add_argument("--backup-path", help="set plugins.backup.path (absolute) instead of using data/backup")
        ap.add_argument("--python", default="/usr/bin/python3", help="interpreter the venv points at")
        ap.add_argument("--real-venv", action="store_true",
                        help="create the venv with '<python> -m venv' (real pip; takes a few seconds)")
        ap.add_argument("--force", action="store_true",
                        help="replace an existing basedir/, venv/, timelapse-elsewhere/ and expected.json in DIR")
        a = ap.parse_args(argv)
        if a.backup_path and not os.path.isabs(a.backup_path):
                ap.error("--backup-path must be absolute")
        return a


def prepare_root(g):
        parts = [g.basedir, g.timelapse, g.venv, os.path.join(g.root, "expected.json")]
        existing = [p for p in parts if os.path.lexists(p)]
        if existing and not g.args.force:
                raise SystemExit(f"gen-instance: {existing[0]} exists; use --force to replace it")
        for p in existing:
                if os.path.isdir(p) and not os.path.islink(p):
                        shutil.rmtree(p)
                else:
                        os.unlink(p)
        os.makedirs(g.root, exist_ok=True)
        os.chmod(g.root, 0o755)


def main(argv):
        t0 = time.monotonic()
        g = Gen(parse_args(argv))
        if g.args.user and os.geteuid() != 0:
                raise SystemExit("gen-instance: --user needs root (to chown)")
        prepare_root(g)
        g.folders = {fid: g.path(*fid.split("_")) for fid in FOLDER_IDS}
        g.folders["timelapse"] = g.timelapse
        g.folders["timelapse_tmp"] = g.timelapse_tmp

        make_config(g)
        make_users(g)
        make_logging(g)
        make_profiles_scripts(g)
        make_single_file_plugins(g)
        pool = GcodePool(g, g.plan.gcode_bytes)
        uploads = make_uploads(g, pool)
        make_misc_folders(g, pool)
        make_timelapse(g)
        make_data(g, uploads)
        if g.args.backup_path and not os.path.isdir(g.args.backup_path):
                os.makedirs(g.args.backup_path)
                os.chmod(g.args.backup_path, 0o755)
                g.created_backup_path = True
        site = make_venv(g)
        finish_tree(g, [g.basedir, g.timelapse, g.venv])

        exp = write_expected(g, site, g.args.user)
        user = chown_tree(g, g.args.user) if g.args.user else None
        summary = {k: exp[k] for k in ("root", "basedir", "config", "venv", "python", "timelapse",
                                       "timelapse_tmp", "backup_folder", "octoprint_version")}
        summary.update(expected=os.path.join(g.root, "expected.json"), user=user,
                       total_bytes=exp["total_bytes"], files=exp["files"],
                       seconds=round(time.monotonic() - t0, 2))
        print(json.dumps(summary, ensure_ascii=False))


if __name__ == "__main__":
        main(sys.argv[1:])
