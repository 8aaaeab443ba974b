#!/usr/bin/python3
# Remotes through opbackupctl(1) (remotes, list --remote, upload, delete --remote, fetch, restore --remote)
# against real servers on 127.0.0.1 (apache2 mod_dav and sshd: tests/remote/servers.py): what a member of
# group opbackup and an outsider see, and a fresh machine with only the remote configured brought back with
# `restore --remote R latest`.

import json
import os
import sys
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "remote"))
import fixture  # noqa: E402
from backuptest import sha256_file  # noqa: E402
from fixture import USER_ALLOWED, USER_DENIED, Fixture, expect, expect_eq  # noqa: E402
from servers import SFTP_USER, Servers  # noqa: E402

DAV_SECRET = "dav-Secret-ctl-5d1"
INSTANCE = {"gen_args": ["--restart-command", "true"]}


def remotes_prepare(remotes):
        def prepare(fx):
                for name, (conf, cred) in remotes.items():
                        fx.write_remote(name, conf, cred)
        return prepare


def differences(base, zip_path):
        """The files of the backup that the basedir does not hold as they are in it."""
        out = []
        with zipfile.ZipFile(zip_path) as z:
                for e in z.infolist():
                        if not e.filename.startswith("basedir/"):
                                continue
                        p = os.path.join(base, e.filename[len("basedir/"):])
                        try:
                                with open(p, "rb") as f:
                                        same = f.read() == z.read(e)
                        except OSError:
                                same = False
                        if not same:
                                out.append(e.filename)
        return out


def test_ctl_remotes_and_restore_on_a_fresh_machine():
        s = Servers()
        try:
                dav_url, dav_data, _ = s.apache("opb", DAV_SECRET)
                port, home, key, fingerprint, _ = s.sshd()
                remotes = {
                        "dav": (f"Type=webdav\nURL={dav_url}/farm\n", f"User=opb\nPassword={DAV_SECRET}\n"),
                        "nas": (f"Type=sftp\nURL=sftp://{SFTP_USER}@127.0.0.1:{port}/~/ctl\nHostKeySHA256={fingerprint}\n",
                                open(key).read()),
                }
                inst = dict(INSTANCE, extra_conf="[Backup]\nCopyTo=dav\n")
                with Fixture(instances={"inst1": inst}, prepare=remotes_prepare(remotes)) as fx:
                        r = fx.ctl_ok(USER_ALLOWED, "remotes", "--json")
                        listed = json.loads(r.stdout)
                        expect_eq([(x["name"], x["type"]) for x in listed], [("dav", "webdav"), ("nas", "sftp")],
                                  "remotes --json")
                        expect(DAV_SECRET not in r.stdout, "remotes shows no secret")
                        r = fx.ctl(USER_DENIED, "remotes")
                        expect_eq(r.returncode, 3, f"remotes as an outsider: exit 3 ({r.stderr.strip()})")

                        st = json.loads(fx.ctl_ok(USER_ALLOWED, "status", "--json").stdout)
                        expect_eq(st["instances"][0]["remotes"], ["dav"], "status --json: the instance's remotes")
                        expect("Copies to:      dav" in fx.ctl_ok(USER_ALLOWED, "status").stdout,
                               "status shows where the instance copies to")

                        # A backup made by `opbackupctl backup` is copied to CopyTo= (dav).
                        r = fx.ctl_ok(USER_ALLOWED, "backup", "--json")
                        made = json.loads(r.stdout)
                        name, local = made["name"], made["path"]
                        copy = os.path.join(dav_data, "farm", "inst1", name)
                        expect(os.path.exists(copy) and sha256_file(copy) == sha256_file(local),
                               "the backup is on the WebDAV server, byte-identical")
                        r = fx.ctl_ok(USER_ALLOWED, "list", "--remote", "dav", "--json")
                        on_dav = json.loads(r.stdout)
                        expect_eq([(b["name"], b["size"]) for b in on_dav], [(name, os.path.getsize(local))],
                                  "list --remote dav --json")
                        r = fx.ctl(USER_DENIED, "list", "--remote", "dav")
                        expect_eq(r.returncode, 3, f"list --remote as an outsider: exit 3 ({r.stderr.strip()})")

                        # upload to the other one, by hand; then delete it there.
                        r = fx.ctl(USER_ALLOWED, "upload", name, "--remote", "nas")
                        expect_eq(r.returncode, 0, f"upload --remote nas ({r.stdout} {r.stderr})")
                        expect(f"Uploaded {name} to nas." in r.stdout, f"upload says so: {r.stdout}")
                        on_nas = os.path.join(home, "ctl", "inst1", name)
                        expect(sha256_file(on_nas) == sha256_file(local), "the backup is on the SFTP server")
                        r = fx.ctl_ok(USER_ALLOWED, "delete", "--remote", "nas", name)
                        expect(not os.path.exists(on_nas), "delete --remote nas removed it there")
                        expect(os.path.exists(local), "delete --remote leaves the local backup")
                        r = fx.ctl(USER_ALLOWED, "delete", "--remote", "nas", name)
                        expect_eq(r.returncode, 4, f"deleting it again on the remote: exit 4 ({r.stderr.strip()})")

                        # A remote whose server refuses the key: the upload fails saying why, exit 1.
                        fx.write_config_file("remotes.d/bad.conf", "[Remote]\n" + remotes["dav"][0] +
                                             f"CredentialsFile={os.path.join(fx.config_dir, 'keys', 'bad')}\n")
                        bad = os.path.join(fx.config_dir, "keys", "bad")
                        with open(bad, "w") as f:
                                f.write("User=opb\nPassword=wrong\n")
                        os.chmod(bad, 0o600)
                        fx.restart_daemon()
                        r = fx.ctl(USER_ALLOWED, "upload", name, "--remote", "bad")
                        expect(r.returncode == 1 and "refused the credentials" in r.stderr,
                               f"an upload with a wrong password fails saying so: {r.returncode} {r.stderr}")
                        expect(os.path.exists(local), "the local backup is intact after the failed upload")

                        saved = os.path.join(s.dir, "made.zip")
                        with open(local, "rb") as f, open(saved, "wb") as o:
                                o.write(f.read())
                        log = fx.daemon_log()
                        expect(DAV_SECRET not in log and remotes["nas"][1].splitlines()[1] not in log,
                               "no secret in the daemon's log")

                # A fresh machine: the same instance name, another (new) OctoPrint, only the remote configured.
                fresh = dict(INSTANCE, seed=99, extra_conf="")
                with Fixture(instances={"inst1": fresh}, prepare=remotes_prepare({"dav": remotes["dav"]})) as fx:
                        base = fx.basedir("inst1")
                        expect(differences(base, saved), "the fresh instance already holds the backup's files")
                        r = fx.ctl("root", "restore", "--yes", "--skip-plugins", "--remote", "dav", "latest")
                        expect_eq(r.returncode, 0, f"restore --remote dav latest ({r.stdout} {r.stderr})")
                        expect(f"Restored {name}." in r.stdout, f"restore names the backup it fetched: {r.stdout}")
                        expect(os.path.exists(os.path.join(base, "data", "backup", name)),
                               "the fetched backup is in the backup folder")
                        expect_eq(differences(base, saved), [], "files of the backup not restored by restore --remote latest")
        finally:
                s.close()


fixture.main(globals())
