# SPDX-License-Identifier: GPL-2.0-or-later
"""WebDAV remotes against apache2 mod_dav and rclone serve webdav."""

import os

from remotecheck import NAME, credentials_mode, killed_mid_upload, refused_credentials, roundtrip, secret_not_shown
from servers import Check, Servers

SECRET = "dav-Secret-4f7d9a"


def stored_in(data, prefix=""):
    def stored(instance, name):
        p = os.path.join(data, prefix, instance, name)
        return p if os.path.exists(p) else None
    return stored


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
        secret_not_shown(s, check, SECRET)
    finally:
        s.close()
    check.exit()


main()
