# SPDX-License-Identifier: GPL-2.0-or-later
"""What every remote type must do, checked against a real server (servers.py)."""

import os

import json
import time

from servers import kill, random_file, sha256

NAME = "octoprint-backup-20261204-210000.zip"


def roundtrip(s, check, remote, stored, size=3_000_000, instance="pi", label=""):
    """Upload, list, download, delete. stored(instance, name) -> the path of what the server holds (or None)."""
    label = label or remote
    src = os.path.join(s.dir, "src.zip")
    random_file(src, size)
    r = s.tool(remote, "put", instance, NAME, src)
    check(r["rc"] == 0, f"{label}: upload of {size} bytes", r)
    check(r.get("size") == size and r.get("url", "").endswith(f"/{instance}/{NAME}"), f"{label}: upload reports "
          "size and URL", r)
    check(r.get("progress") == size, f"{label}: progress reaches the size", r)
    path = stored(instance, NAME)
    check(path is not None and sha256(path) == sha256(src), f"{label}: the server holds the same bytes (sha256)")
    leftovers = [n for n in (os.listdir(os.path.dirname(path)) if path else []) if n.startswith(".")]
    check(not leftovers, f"{label}: no temporary file left", leftovers)

    r = s.tool(remote, "list", instance)
    names = {e["name"]: e for e in r.get("entries", [])}
    check(r["rc"] == 0 and list(names) == [NAME], f"{label}: list shows the backup alone", r)
    e = names.get(NAME, {})
    check(e.get("size") == size and e.get("mtime", 0) > 1_700_000_000_000_000, f"{label}: list has size and mtime", e)
    r = s.tool(remote, "list", "other")
    check(r["rc"] == 0 and r["entries"] == [], f"{label}: an instance with nothing uploaded lists nothing", r)

    dst = os.path.join(s.dir, "dst.zip")
    r = s.tool(remote, "get", instance, NAME, dst)
    check(r["rc"] == 0 and sha256(dst) == sha256(src), f"{label}: download gives the same bytes", r)
    r = s.tool(remote, "get", instance, NAME, dst, max_size=size // 2)
    check(r["rc"] != 0 and r.get("kind") == "quota" and "larger than" in r.get("error", ""),
          f"{label}: a download larger than the room for it is refused", r)
    check(os.path.getsize(dst) <= size // 2, f"{label}: ... having written no more than the room")
    r = s.tool(remote, "get", instance, "missing.zip", dst)
    check(r["rc"] != 0 and r.get("kind") == "notfound", f"{label}: download of a missing backup: notfound", r)

    r = s.tool(remote, "delete", instance, NAME)
    check(r["rc"] == 0, f"{label}: delete", r)
    r = s.tool(remote, "list", instance)
    check(r["rc"] == 0 and r["entries"] == [], f"{label}: deleted backup no longer listed", r)
    r = s.tool(remote, "delete", instance, NAME)
    check(r["rc"] != 0 and r.get("kind") == "notfound" and NAME in r.get("error", "") or "not found" in
          r.get("error", ""), f"{label}: deleting it again: notfound", r)


def refused_credentials(s, check, remote, text, bad_credentials, stored, kind="auth"):
    """Wrong credentials: refused in words that point at CredentialsFile=, nothing stored."""
    s.remote(remote, text, bad_credentials)
    src = os.path.join(s.dir, "src.zip")
    random_file(src, 100_000)
    r = s.tool(remote, "put", "pi", NAME, src)
    check(r["rc"] != 0 and r.get("kind") == kind, f"{remote}: wrong credentials refused ({kind})", r)
    check("CredentialsFile=" in r.get("error", "") or kind != "auth", f"{remote}: the error names CredentialsFile=",
          r.get("error"))
    check(stored("pi", NAME) is None, f"{remote}: nothing stored with wrong credentials")


def credentials_mode(s, check, remote, text, credentials):
    """A credentials file others may read is not used, and the message says how to fix it."""
    s.remote(remote, text, credentials, mode=0o644)
    r = s.tool(remote, "list", "pi")
    check(r["rc"] != 0 and "chmod 600" in r.get("error", ""), f"{remote}: a 0644 credentials file is refused", r)


def killed_mid_upload(s, check, remote, proc, stored, size=600_000_000):
    """The server dies during the upload: a failure saying so, and nothing under the backup's name."""
    src = os.path.join(s.dir, "big.zip")
    random_file(src, size)
    p = s.tool_background(remote, "put", "pi", NAME, src)
    # Once the transfer is under way.
    time.sleep(0.3)
    kill(proc)
    out, err = p.communicate(timeout=180)
    r = json.loads(out.strip().splitlines()[-1])
    check(r["rc"] != 0 and r.get("kind") in ("network", "timeout"), f"{remote}: server killed mid-upload: a network "
          "failure", r)
    check(stored("pi", NAME) is None, f"{remote}: nothing under the backup's name after the server died")
    os.unlink(src)
    return r


def secret_not_shown(s, check, secret, logs=()):
    out = getattr(s, "tool_output", "")
    for path in list(s.logs) + list(logs):
        try:
            out += open(path, errors="replace").read()
        except OSError:
            pass
    check(secret not in out, "the secret appears in no output of the client, the helper or the servers' logs")
