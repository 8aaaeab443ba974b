# SPDX-License-Identifier: GPL-2.0-or-later
"""S3 remotes against @20minutes/s3rver, which checks SigV4 signatures: single PUT, multipart upload (64 MiB
parts), ListObjectsV2, GET, DELETE, refusals."""

import os
import subprocess

from remotecheck import NAME, credentials_mode, killed_mid_upload, refused_credentials, roundtrip, secret_not_shown
from servers import Check, Servers, random_file, sha256

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

        # Larger than one part: a multipart upload of three parts, byte-identical, listed with its size.
        big = os.path.join(s.dir, "big.zip")
        random_file(big, 150 * 1024 * 1024)
        r = s.tool("s3", "put", "pi", NAME, big)
        check(r["rc"] == 0 and r["size"] == 150 * 1024 * 1024, "s3: multipart upload of 150 MiB", r)
        got = stored("pi", NAME)
        check(got is not None and sha256(got) == sha256(big), "s3: the multipart object is byte-identical")
        r = s.tool("s3", "list", "pi")
        check([(e["name"], e["size"]) for e in r.get("entries", [])] == [(NAME, 150 * 1024 * 1024)],
              "s3: list shows the multipart object", r)
        os.unlink(big)

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
        killed_mid_upload(s, check, "s3", s3, stored)
        secret_not_shown(s, check, SECRET)
    finally:
        s.close()
    check.exit()


main()
