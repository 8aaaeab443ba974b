# SPDX-License-Identifier: GPL-2.0-or-later
"""SFTP remotes against OpenSSH's sshd (internal-sftp) with an ed25519 key and a real account; the host key
pinned by SHA-256."""

import os
import shutil

from remotecheck import NAME, credentials_mode, killed_mid_upload, refused_credentials, roundtrip, secret_not_shown
from servers import SFTP_USER, Check, Servers, random_file, sha256


def main():
    check = Check()
    s = Servers()
    try:
        port, home, key, fingerprint, sshd = s.sshd()
        secret = open(key).read()
        data = os.path.join(home, "backups")

        def stored(instance, name):
            p = os.path.join(data, "farm", instance, name)
            return p if os.path.exists(p) else None

        # Home-relative (/~/), with folders that do not exist yet.
        text = f"Type=sftp\nURL=sftp://{SFTP_USER}@127.0.0.1:{port}/~/backups/farm\nHostKeySHA256={fingerprint}\n"
        s.remote("nas", text, secret)
        roundtrip(s, check, "nas", stored)
        st = os.stat(os.path.join(data, "farm", "pi"))
        check(st.st_uid != 0 and (st.st_mode & 0o077) == 0, "sftp: the instance's folder is the user's, mode 0700",
              oct(st.st_mode))

        # Uploading a backup the remote has already replaces it (the older copy set aside, then removed), and
        # leaves no hidden file behind.
        src = os.path.join(s.dir, "src.zip")
        for size in (200_000, 300_000):
            random_file(src, size)
            r = s.tool("nas", "put", "pi", NAME, src)
        got = stored("pi", NAME)
        check(r["rc"] == 0 and got and sha256(got) == sha256(src), "sftp: an upload again replaces the copy", r)
        left = os.listdir(os.path.join(data, "farm", "pi"))
        check(left == [NAME], "sftp: ... leaving nothing else", left)
        s.tool("nas", "delete", "pi", NAME)

        # An absolute path, Verify=full.
        text_abs = f"Type=sftp\nURL=sftp://{SFTP_USER}@127.0.0.1:{port}{home}/backups/abs\n" \
                   f"HostKeySHA256={fingerprint}\nVerify=full\n"
        s.remote("nas-abs", text_abs, secret)
        roundtrip(s, check, "nas-abs",
                  lambda i, n: (lambda p: p if os.path.exists(p) else None)(os.path.join(data, "abs", i, n)),
                  label="sftp absolute path, Verify=full")

        # Another key than the authorized one.
        other = os.path.join(s.dir, "other")
        os.system(f"ssh-keygen -q -t ed25519 -N '' -f {other}")
        refused_credentials(s, check, "nas-wrongkey", text, open(other).read(), stored)
        # A server whose host key is not the pinned one.
        wrong = "SHA256:" + "A" * 43
        s.remote("nas-hostkey", text.replace(fingerprint, wrong), secret)
        src = os.path.join(s.dir, "src.zip")
        random_file(src, 100_000)
        r = s.tool("nas-hostkey", "put", "pi", NAME, src)
        check(r["rc"] != 0 and r.get("kind") == "hostkey" and "HostKeySHA256=" in r.get("error", ""),
              "sftp: a host key other than HostKeySHA256= is refused", r)
        check(stored("pi", NAME) is None, "sftp: nothing stored on a server with the wrong host key")
        credentials_mode(s, check, "nas-mode", text, secret)

        killed_mid_upload(s, check, "nas", sshd, stored)
        leftovers = os.listdir(os.path.join(data, "farm", "pi"))
        check(all(n.startswith(".") for n in leftovers), "sftp: only a hidden temporary file may be left", leftovers)
        secret_not_shown(s, check, secret.splitlines()[1])
        shutil.rmtree(data, ignore_errors=True)
    finally:
        s.close()
    check.exit()


main()
