# SPDX-License-Identifier: GPL-2.0-or-later
"""S3 remotes against @20minutes/s3rver, which checks SigV4 signatures: single PUT, multipart upload (many
parts, watched on the server; the helper's memory bounded), ListObjectsV2, GET, DELETE, refusals."""

import json
import os
import subprocess
import threading

from remotecheck import NAME, credentials_mode, killed_mid_upload, refused_credentials, roundtrip, secret_not_shown
from servers import Check, Servers, descendants, random_file, sha256

KEY, SECRET = "OPBTESTKEY", "s3-Secret-9c1e77"


def stored_via_curl(s, url, prefix):
    """What the server holds, fetched with curl's own SigV4 (a client opbackup did not write)."""
    def stored(instance, name):
        out = os.path.join(s.dir, "curl-get.bin")
        code = subprocess.run(["curl", "-sS", "-o", out, "-w", "%{http_code}", "--aws-sigv4", "aws:amz:us-east-1:s3",
                               "--user", f"{KEY}:{SECRET}", "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD",
                               f"{url}/{prefix}/{instance}/{name}"], capture_output=True, text=True).stdout
        return out if code == "200" else None
    return stored


def vm_hwm_kb(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def upload_watched(s, remote, name, path, data):
    """An upload through remote-tool, watching the server's part files (s3rver keeps each part of a multipart
    upload as a file until the upload completes) and the helper's peak RSS (VmHWM of opbackup-fetch)."""
    p = s.tool_background(remote, "put", "pi", name, path)
    seen = {"parts": 0, "hwm_kb": 0}
    done = threading.Event()

    def watch():
        while not done.is_set():
            for root, dirs, files in os.walk(data):
                if "uploads" in root.split(os.sep)[-2:] or os.path.basename(os.path.dirname(root)).endswith("uploads"):
                    seen["parts"] = max(seen["parts"], len([f for f in files if f.isdigit()]))
            for pid in descendants(p.pid):
                try:
                    if open(f"/proc/{pid}/comm").read().strip() == "opbackup-fetch":
                        seen["hwm_kb"] = max(seen["hwm_kb"], vm_hwm_kb(pid))
                except OSError:
                    pass
            done.wait(0.01)
    t = threading.Thread(target=watch, daemon=True)
    t.start()
    out, err = p.communicate(timeout=600)
    done.set()
    t.join()
    s.tool_output = getattr(s, "tool_output", "") + out + err
    return json.loads(out.strip().splitlines()[-1]), seen


def main():
    check = Check()
    s = Servers()
    try:
        url, data, s3 = s.s3rver(KEY, SECRET)
        text = f"Type=s3\nURL={url}/backups/farm/\nRegion=us-east-1\n"
        cred = f"AccessKeyId={KEY}\nSecretAccessKey={SECRET}\n"
        s.remote("s3", text, cred)
        stored = stored_via_curl(s, url, "backups/farm")
        roundtrip(s, check, "s3", stored)

        # Above MultipartThreshold=: a multipart upload of 30 parts of PartSize=, byte-identical, listed with its
        # size; the server saw the parts.
        big = os.path.join(s.dir, "big.zip")
        size = 150 * 1024 * 1024 - 12345
        random_file(big, size)
        s.remote("s3-parts", text + "MultipartThreshold=5M\nPartSize=5M\n", cred)
        r, seen = upload_watched(s, "s3-parts", NAME, big, data)
        check(r["rc"] == 0 and r["size"] == size, "s3: multipart upload of 150 MiB", r)
        check(seen["parts"] >= 25, "s3: ... in 30 parts of 5 MiB (as the server saw them)", seen)
        got = stored("pi", NAME)
        check(got is not None and sha256(got) == sha256(big), "s3: the multipart object is byte-identical")
        r = s.tool("s3", "list", "pi")
        check([(e["name"], e["size"]) for e in r.get("entries", [])] == [(NAME, size)],
              "s3: list shows the multipart object", r)

        # The helper's memory does not grow with the part size (the parts are read from the file as they are
        # sent, not held): parts of 32 MiB, the helper's peak RSS well below one part. Not under AddressSanitizer,
        # whose shadow memory makes RSS meaningless.
        if "ASAN_OPTIONS" not in os.environ:
            s.remote("s3-bigparts", text + "MultipartThreshold=32M\nPartSize=32M\n", cred)
            r, seen = upload_watched(s, "s3-bigparts", "b2.zip", big, data)
            check(r["rc"] == 0 and seen["parts"] >= 4, "s3: multipart upload in parts of 32 MiB", (r, seen))
            check(0 < seen["hwm_kb"] < 28 * 1024, "s3: the helper's peak RSS stays below 28 MB with 32 MiB parts",
                  seen)
            s.tool("s3", "delete", "pi", "b2.zip")
        os.unlink(big)

        # Below the threshold: one PUT, no parts on the server.
        r, seen = upload_watched(s, "s3", "b3.zip", os.path.join(s.dir, "src.zip"), data)
        check(r["rc"] == 0 and seen["parts"] == 0, "s3: an archive below MultipartThreshold= goes in one PUT",
              (r, seen))
        s.tool("s3", "delete", "pi", "b3.zip")

        # Sizes S3 does not allow are refused when the file is read, saying what is expected.
        s.remote("s3-tiny", text + "PartSize=1M\n", cred)
        r = s.tool("s3-tiny", "list", "pi")
        check(r["rc"] != 0 and "PartSize=1M: expected a size from 5M to 5G" in r.get("error", ""),
              "s3: PartSize= below S3's 5 MiB refused", r)

        # Verify=full reads the object back.
        s.remote("s3-full", text + "Verify=full\n", cred)
        src = os.path.join(s.dir, "src.zip")
        random_file(src, 500_000)
        r = s.tool("s3-full", "put", "pi", "b.zip", src)
        check(r["rc"] == 0, "s3: upload with Verify=full", r)

        refused_credentials(s, check, "s3-bad", text, f"AccessKeyId={KEY}\nSecretAccessKey=wrong\n",
                            lambda i, n: stored(i, n) if n != NAME else None)
        r = s.tool("s3-bad", "list", "pi")
        check(r["rc"] != 0 and r.get("kind") == "auth", "s3: listing with a wrong secret refused", r)
        credentials_mode(s, check, "s3-mode", text, cred)

        s.tool("s3", "delete", "pi", NAME)

        # The server dies during a multipart upload: nothing under the backup's name in its store (looked at on
        # disk: the server is gone). s3rver writes a single PUT straight to the object's file, unlike S3, so
        # only a multipart upload can show this here.
        def on_disk(instance, name):
            hits = [os.path.join(root, f) for root, _, files in os.walk(os.path.join(data, "backups", "farm"))
                    for f in files if f.startswith(name)]
            return hits[0] if hits else None
        killed_mid_upload(s, check, "s3-parts", s3, on_disk)
        secret_not_shown(s, check, SECRET)
    finally:
        s.close()
    check.exit()


main()
