# SPDX-License-Identifier: GPL-2.0-or-later
"""WebDAV remotes against apache2 mod_dav and rclone serve webdav."""

import os
import signal
import subprocess
import time

from remotecheck import NAME, credentials_mode, killed_mid_upload, refused_credentials, roundtrip, secret_not_shown
from servers import Check, Servers, random_file, sha256

SECRET = "dav-Secret-4f7d9a"


def stored_in(data, prefix=""):
    def stored(instance, name):
        p = os.path.join(data, prefix, instance, name)
        return p if os.path.exists(p) else None
    return stored


def leftovers(data):
    return [os.path.join(r, f) for r, _, fs in os.walk(data) for f in fs]


def tls_without_ca(s, check):
    """https with a self-signed certificate: refused without CAFile=, saying so; accepted with it."""
    url, data, _ = s.rclone("opb", SECRET, tls=True, name="rclone-tls")
    text = f"Type=webdav\nURL={url}/dav\n"
    s.remote("tls", text, f"User=opb\nPassword={SECRET}\n")
    src = os.path.join(s.dir, "src.zip")
    random_file(src, 200_000)
    r = s.tool("tls", "put", "pi", NAME, src)
    print("  tls error:", r.get("error"))
    check(r["rc"] != 0 and r.get("kind") == "tls", "tls: a self-signed certificate without CAFile= is refused", r)
    check("certificate" in r.get("error", "") and "CAFile= in remote tls" in r.get("error", ""),
          "tls: the error names the certificate and CAFile=", r.get("error"))
    check(leftovers(data) == [], "tls: nothing stored", leftovers(data))
    s.remote("tls-ca", text + f"CAFile={s.cert['rclone-tls']}\n", f"User=opb\nPassword={SECRET}\n")
    r = s.tool("tls-ca", "put", "pi", NAME, src)
    got = os.path.join(data, "dav", "pi", NAME)
    check(r["rc"] == 0 and os.path.exists(got) and sha256(got) == sha256(src),
          "tls: with CAFile= naming the certificate the upload works", r)


def remote_full(s, check):
    """A WebDAV server whose disk is full (apache2 on an 8 MiB tmpfs): 'no room', nothing under the name, no
    temporary file left."""
    full = os.path.join(s.dir, "full")
    os.makedirs(full)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0755", "tmpfs", full], check=True)
    url, _, _ = s.apache("opb", SECRET, data=full, name="apache-full")
    s.remote("full", f"Type=webdav\nURL={url}/octoprint\n", f"User=opb\nPassword={SECRET}\n")
    src = os.path.join(s.dir, "src.zip")
    random_file(src, 20_000_000)
    r = s.tool("full", "put", "pi", NAME, src)
    print("  full error:", r.get("error"))
    check(r["rc"] != 0 and r.get("kind") == "quota", "full: an upload to a full server fails as 'quota'", r)
    check("no room" in r.get("error", "") or "full" in r.get("error", ""), "full: the error says the remote is full",
          r.get("error"))
    left = leftovers(full)
    check(not any(NAME in f for f in left), "full: nothing under the backup's name, no temporary upload", left)


def stalled_server(s, check):
    """A server that stops answering mid-upload (SIGSTOP): a timeout after Timeout= seconds, saying so, nothing
    under the name; once it answers again, the upload works."""
    url, data, apache = s.apache("opb", SECRET, name="apache-stall")
    s.remote("stall", f"Type=webdav\nURL={url}/octoprint\nTimeout=3\n", f"User=opb\nPassword={SECRET}\n")
    src = os.path.join(s.dir, "big.zip")
    random_file(src, 400_000_000)
    p = s.tool_background("stall", "put", "pi", NAME, src)
    end = time.time() + 60
    while time.time() < end and not any(os.path.getsize(f) > (10 << 20) for f in leftovers(data)):
        time.sleep(0.01)
    os.killpg(apache.pid, signal.SIGSTOP)
    t = time.monotonic()
    try:
        out, err = p.communicate(timeout=120)
        took = time.monotonic() - t
    finally:
        os.killpg(apache.pid, signal.SIGCONT)
    s.tool_output = getattr(s, "tool_output", "") + out + err
    import json
    r = json.loads(out.strip().splitlines()[-1])
    print("  stall error:", r.get("error"), f"after {took:.1f} s")
    check(r["rc"] != 0 and r.get("kind") == "timeout" and "Timeout= of remote stall" in r.get("error", ""),
          "stall: a server that stops answering is given up, saying so", r)
    # 3 s without progress for the upload, as long again for removing the temporary upload.
    check(took < 20, f"stall: ... within seconds of Timeout=3 ({took:.1f} s)")
    check(not os.path.exists(os.path.join(data, "octoprint", "pi", NAME)), "stall: nothing under the backup's name")
    r = s.tool("stall", "put", "pi", NAME, src)
    check(r["rc"] == 0 and sha256(os.path.join(data, "octoprint", "pi", NAME)) == sha256(src),
          "stall: once the server answers again, the upload works", r)
    os.unlink(src)


def main():
    check = Check()
    s = Servers()
    try:
        url, data, apache = s.apache("opb", SECRET)
        # A URL below folders that do not exist yet: MKCOL makes them.
        text = f"Type=webdav\nURL={url}/octoprint/farm/\n"
        s.remote("apache", text, f"User=opb\nPassword={SECRET}\n")
        roundtrip(s, check, "apache", stored_in(data, "octoprint/farm"))
        refused_credentials(s, check, "apache-bad", text, "User=opb\nPassword=wrong\n", stored_in(data, "octoprint/farm"))
        credentials_mode(s, check, "apache-mode", text, f"User=opb\nPassword={SECRET}\n")

        url2, data2, rclone = s.rclone("opb", SECRET)
        text2 = f"Type=webdav\nURL={url2}/dav\nVerify=full\n"
        s.remote("rclone", text2, f"User=opb\nPassword={SECRET}\n")
        roundtrip(s, check, "rclone", stored_in(data2, "dav"), label="rclone (Verify=full)")
        killed_mid_upload(s, check, "rclone", rclone, stored_in(data2, "dav"))
        r = s.tool("rclone", "list", "pi")
        check(r["rc"] != 0 and r.get("kind") == "network" and "cannot connect" in r.get("error", ""),
              "rclone: a server that is down: 'cannot connect'", r)
        killed_mid_upload(s, check, "apache", apache, stored_in(data, "octoprint/farm"))

        tls_without_ca(s, check)
        remote_full(s, check)
        stalled_server(s, check)
        secret_not_shown(s, check, SECRET)
    finally:
        if os.path.ismount(os.path.join(s.dir, "full")):
            subprocess.run(["umount", "-l", os.path.join(s.dir, "full")])
        s.close()
    check.exit()


main()
