#!/usr/bin/python3
# Remotes through the daemon (org.opbackup.backup1(5), REMOTES): a backup of an instance with CopyTo= is
# copied to each remote as a stage of its job, against real servers on 127.0.0.1 (apache2 mod_dav, the S3
# server s3rver, OpenSSH's sshd: tests/remote/servers.py); a remote with a wrong secret fails with a reason and
# leaves the local backup as it was; ListRemotes, ListRemoteBackups, UploadBackup, DeleteRemoteBackup and
# who may call them; the secrets appear in no log.

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "remote"))
import fixture  # noqa: E402
from backuptest import Listener, sha256_file, uid_of  # noqa: E402
from fixture import (IFACE_INSTANCE, IFACE_MANAGER, MANAGER_PATH, USER_ALLOWED, USER_DENIED, Fixture,  # noqa: E402
                     expect, expect_eq)
from servers import SFTP_USER, Servers  # noqa: E402

DAV_SECRET = "dav-Secret-77aa31"
S3_KEY, S3_SECRET = "OPBITKEY", "s3-Secret-0be42c"
NAME = "octoprint-backup-20261204-220000.zip"
ERROR_ACCESS_DENIED = "org.freedesktop.DBus.Error.AccessDenied"


def start_servers(s):
        """The three servers and remotes.d text for each: {remote: (conf, credentials, where(name) -> path)}."""
        dav_url, dav_data, _ = s.apache("opb", DAV_SECRET)
        s3_url, _, _ = s.s3rver(S3_KEY, S3_SECRET)
        port, home, key, fingerprint, _ = s.sshd()
        sftp_data = os.path.join(home, "backups")

        def s3_where(name):
                out = os.path.join(s.dir, "s3-get.bin")
                import subprocess
                code = subprocess.run(["curl", "-sS", "-o", out, "-w", "%{http_code}", "--aws-sigv4",
                                       "aws:amz:us-east-1:s3", "--user", f"{S3_KEY}:{S3_SECRET}", "-H",
                                       "x-amz-content-sha256: UNSIGNED-PAYLOAD",
                                       f"{s3_url}/backups/host1/inst1/{name}"], capture_output=True, text=True).stdout
                return out if code == "200" else None

        def in_dir(d):
                return lambda name: (lambda p: p if os.path.exists(p) else None)(os.path.join(d, "inst1", name))

        return {
                "dav": (f"Type=webdav\nURL={dav_url}/octoprint\n", f"User=opb\nPassword={DAV_SECRET}\n",
                        in_dir(os.path.join(dav_data, "octoprint"))),
                "s3": (f"Type=s3\nURL={s3_url}/backups/host1\n",
                       f"AccessKeyId={S3_KEY}\nSecretAccessKey={S3_SECRET}\n", s3_where),
                "nas": (f"Type=sftp\nURL=sftp://{SFTP_USER}@127.0.0.1:{port}/~/backups\nHostKeySHA256={fingerprint}\n",
                        open(key).read(), in_dir(sftp_data)),
                # The S3 server with a wrong secret.
                "bad": (f"Type=s3\nURL={s3_url}/backups/bad\n", f"AccessKeyId={S3_KEY}\nSecretAccessKey=wrong\n",
                        lambda name: None),
        }


def remotes_fixture(s, remotes, copy_to):
        def prepare(fx):
                for name, (conf, cred, _) in remotes.items():
                        fx.write_remote(name, conf, cred)
        return Fixture(instances={"inst1": {"extra_conf": f"[Backup]\nCopyTo={copy_to}\n"}}, prepare=prepare)


def test_backup_copies_to_every_remote():
        s = Servers()
        try:
                remotes = start_servers(s)
                with remotes_fixture(s, remotes, "dav s3 nas bad") as fx:
                        path = fx.instance_path("inst1")
                        expect_eq(fx.get_property(USER_ALLOWED, path, IFACE_INSTANCE, "Remotes"),
                                  ["dav", "s3", "nas", "bad"], "the Remotes property")
                        listener = Listener(fx, create_backup=(path, NAME))
                        try:
                                done = listener.wait_for(lambda e: e["signal"] == "JobRemoved", "the backup's end")
                        finally:
                                listener.stop()
                        _, _, result, error, details = done["args"]
                        expect_eq(result, "done", f"the job's result (error: {error})")
                        uploads = {u[0]: u for u in details.get("uploads", [])}
                        expect_eq(sorted(uploads), ["bad", "dav", "nas", "s3"], "one upload result per remote")
                        for r in ("dav", "s3", "nas"):
                                expect_eq(uploads[r][1:], ["done", ""], f"upload to {r}")
                        expect(uploads["bad"][1] == "failed" and "CredentialsFile=" in uploads["bad"][2],
                               f"the wrong secret fails with a reason naming CredentialsFile=: {uploads['bad']}")
                        local = os.path.join(fx.basedir("inst1"), "data", "backup", NAME)
                        expect(os.path.exists(local), "the local backup is kept when an upload fails")
                        for r in ("dav", "s3", "nas"):
                                got = remotes[r][2](NAME)
                                expect(got and sha256_file(got) == sha256_file(local),
                                       f"the copy on {r} is byte-identical to the local backup")
                        uploaded = [e["args"] for e in listener.signals("BackupUploaded")]
                        expect_eq(sorted(a[2] for a in uploaded), ["dav", "nas", "s3"], "BackupUploaded per remote")
                        expect(all(a[0] == "inst1" and a[1] == NAME and a[3].endswith(f"/inst1/{NAME}")
                                   for a in uploaded), f"BackupUploaded's arguments: {uploaded}")

                        # The last upload to each remote: the RemoteStatus property, status and status --json.
                        st = {x[0]: x for x in fx.get_property(USER_ALLOWED, path, IFACE_INSTANCE, "RemoteStatus")}
                        expect_eq(sorted(st), ["bad", "dav", "nas", "s3"], "RemoteStatus has each remote")
                        for r in ("dav", "s3", "nas"):
                                expect(st[r][1] == NAME and st[r][3:] == ["done", ""] and
                                       abs(st[r][2] / 1e6 - time.time()) < 600, f"RemoteStatus of {r}: {st[r]}")
                        expect(st["bad"][3] == "failed" and "CredentialsFile=" in st["bad"][4],
                               f"RemoteStatus of the failed remote: {st['bad']}")
                        js = json.loads(fx.ctl_ok(USER_ALLOWED, "status", "--json").stdout)
                        rs = {x["remote"]: x for x in js["instances"][0]["remote_status"]}
                        expect(sorted(rs) == ["bad", "dav", "nas", "s3"] and rs["dav"]["backup"] == NAME and
                               rs["dav"]["result"] == "done" and rs["bad"]["result"] == "failed" and
                               set(rs["dav"]) == {"remote", "backup", "time", "result", "error"},
                               f"status --json: remote_status: {rs}")
                        text = fx.ctl_ok(USER_ALLOWED, "status").stdout
                        expect("Last uploads:" in text and "FAILED" in text and f"{NAME} uploaded" in text,
                               f"status shows the last uploads: {text}")

                        # They outlive the daemon (which exits when idle): kept in root's state folder, 0600.
                        state = os.path.join(fx.state_dir, "remote-status.json")
                        st_file = os.stat(state)
                        expect(st_file.st_uid == 0 and (st_file.st_mode & 0o777) == 0o600,
                               f"the last uploads are in {state}, root's, mode 0600: {oct(st_file.st_mode)}")
                        expect(DAV_SECRET not in open(state).read() and S3_SECRET not in open(state).read(),
                               "no secret in the state file")
                        before = sorted(fx.get_property(USER_ALLOWED, path, IFACE_INSTANCE, "RemoteStatus"))
                        fx.restart_daemon()
                        after = sorted(fx.get_property(USER_ALLOWED, path, IFACE_INSTANCE, "RemoteStatus"))
                        expect_eq(after, before, "RemoteStatus after the daemon restarted")

                        # Listing: a member of group opbackup may, an outsider may not.
                        listed = fx.call(USER_ALLOWED, MANAGER_PATH, IFACE_MANAGER, "ListRemotes", "")[0]
                        expect_eq(sorted(x[0] for x in listed), ["bad", "dav", "nas", "s3"], "ListRemotes")
                        expect(all(DAV_SECRET not in str(x) and S3_SECRET not in str(x) for x in listed),
                               "ListRemotes shows no secret")
                        e = fx.call_error(USER_DENIED, MANAGER_PATH, IFACE_MANAGER, "ListRemotes", "")
                        expect(e and e.name == ERROR_ACCESS_DENIED, f"an outsider is refused ListRemotes: {e}")
                        for r in ("dav", "s3", "nas"):
                                got = fx.call(USER_ALLOWED, path, IFACE_INSTANCE, "ListRemoteBackups", "s", r)[0]
                                expect(any(b[0] == NAME and b[1] == os.path.getsize(local) and b[2] > 0 for b in got),
                                       f"ListRemoteBackups {r} shows the backup: {got}")
                        e = fx.call_error(USER_DENIED, path, IFACE_INSTANCE, "ListRemoteBackups", "s", "dav")
                        expect(e and e.name == ERROR_ACCESS_DENIED, f"an outsider is refused ListRemoteBackups: {e}")
                        e = fx.call_error(USER_ALLOWED, path, IFACE_INSTANCE, "ListRemoteBackups", "s", "bad")
                        expect(e and "CredentialsFile=" in e.message, f"a refused listing says why: {e}")

                        # Delete on one remote, then upload again with UploadBackup.
                        fx.call(USER_ALLOWED, path, IFACE_INSTANCE, "DeleteRemoteBackup", "ss", "dav", NAME)
                        expect(remotes["dav"][2](NAME) is None, "DeleteRemoteBackup removed the copy")
                        e = fx.call_error(USER_ALLOWED, path, IFACE_INSTANCE, "DeleteRemoteBackup", "ss", "dav", NAME)
                        expect(e and e.name == "org.opbackup.backup1.Error.NoSuchBackup",
                               f"deleting it again: NoSuchBackup: {e}")
                        listener = Listener(fx)
                        try:
                                job = fx.call(USER_ALLOWED, path, IFACE_INSTANCE, "UploadBackup", "sas", NAME, ["dav"])
                                done = listener.wait_for(lambda e: e["signal"] == "JobRemoved" and e["args"][0] == job[0],
                                                         "the upload job's end")
                        finally:
                                listener.stop()
                        expect_eq(done["args"][2], "done", f"UploadBackup's job ({done['args'][3]})")
                        expect_eq(done["args"][4].get("uploads"), [["dav", "done", ""]], "its uploads")
                        expect(sha256_file(remotes["dav"][2](NAME)) == sha256_file(local), "uploaded again, identical")
                        e = fx.call_error(USER_DENIED, path, IFACE_INSTANCE, "UploadBackup", "sas", NAME, ["dav"])
                        expect(e and e.name == ERROR_ACCESS_DENIED, f"an outsider is refused UploadBackup: {e}")
                        e = fx.call_error(USER_ALLOWED, path, IFACE_INSTANCE, "UploadBackup", "sas", NAME, ["nope"])
                        expect(e and e.name == "org.opbackup.backup1.Error.NoSuchRemote", f"an unknown remote: {e}")

                        # Fetch it back from S3 into the backup folder, after the local one is gone.
                        fx.call(USER_ALLOWED, path, IFACE_INSTANCE, "DeleteBackup", "s", NAME)
                        expect(not os.path.exists(local), "the local backup is deleted")
                        listener = Listener(fx)
                        try:
                                job = fx.call(USER_ALLOWED, path, IFACE_INSTANCE, "FetchRemoteBackup", "ss", "s3", NAME)
                                done = listener.wait_for(lambda e: e["signal"] == "JobRemoved" and e["args"][0] == job[0],
                                                         "the fetch job's end")
                        finally:
                                listener.stop()
                        expect_eq(done["args"][2], "done", f"FetchRemoteBackup's job ({done['args'][3]})")
                        expect_eq(done["args"][4].get("name"), NAME, "stored under its name")
                        expect(sha256_file(local) == sha256_file(remotes["s3"][2](NAME)),
                               "the fetched backup is byte-identical to the remote's")
                        expect_eq(os.stat(local).st_uid, uid_of(fixture.USER_PRINTER),
                                  "the owner of the fetched backup (the instance's user)")
                        names = [b[0] for b in fx.call(USER_ALLOWED, path, IFACE_INSTANCE, "ListBackups", "")[0]]
                        expect(NAME in names, f"ListBackups shows the fetched backup: {names}")
                        e = fx.call_error(USER_DENIED, path, IFACE_INSTANCE, "FetchRemoteBackup", "ss", "s3", NAME)
                        expect(e and e.name == ERROR_ACCESS_DENIED, f"an outsider is refused FetchRemoteBackup: {e}")
                        listener = Listener(fx)
                        try:
                                job = fx.call(USER_ALLOWED, path, IFACE_INSTANCE, "FetchRemoteBackup", "ss", "s3",
                                              "missing.zip")
                                done = listener.wait_for(lambda e: e["signal"] == "JobRemoved" and e["args"][0] == job[0],
                                                         "the failed fetch's end")
                        finally:
                                listener.stop()
                        expect(done["args"][2] == "failed" and "not found" in done["args"][3],
                               f"fetching a backup the remote lacks fails saying so: {done['args'][3]}")

                        log = fx.daemon_log()
                        for secret in (DAV_SECRET, S3_SECRET, remotes["nas"][1].splitlines()[1]):
                                expect(secret not in log, "a secret appears in the daemon's log")
        finally:
                s.close()


def big_backup(fx, name, size):
        """A real backup of inst1 under name, with a stored entry of size random bytes added (a large archive)."""
        import shutil
        import zipfile
        fx.ctl_ok(USER_ALLOWED, "backup", "--name", "small.zip", timeout=600)
        folder = os.path.join(fx.basedir("inst1"), "data", "backup")
        big = os.path.join(folder, name)
        shutil.copy(os.path.join(folder, "small.zip"), big)
        with zipfile.ZipFile(big, "a", compression=zipfile.ZIP_STORED) as z:
                with z.open("timelapse/big.bin", "w", force_zip64=True) as f:
                        block = os.urandom(1 << 20)
                        for _ in range(size >> 20):
                                f.write(block)
        st = os.stat(os.path.join(folder, "small.zip"))
        os.chown(big, st.st_uid, st.st_gid)
        return big


def test_cancel_removes_what_was_uploaded():
        """Job.Cancel while an upload runs: the job ends canceled, nothing is under the backup's name, the
        multipart upload is aborted (no parts stay stored) and WebDAV's temporary file is removed."""
        s = Servers()
        try:
                dav_url, dav_data, _ = s.apache("opb", DAV_SECRET)
                s3_url, s3_data, _ = s.s3rver(S3_KEY, S3_SECRET)
                remotes = {
                        # Parts of 5 MiB: the upload is multipart and takes long enough to be caught mid-way.
                        "s3": (f"Type=s3\nURL={s3_url}/backups/host1\nMultipartThreshold=5M\nPartSize=5M\n",
                               f"AccessKeyId={S3_KEY}\nSecretAccessKey={S3_SECRET}\n", None),
                        "dav": (f"Type=webdav\nURL={dav_url}/octoprint\n", f"User=opb\nPassword={DAV_SECRET}\n", None),
                }
                with remotes_fixture(s, remotes, "") as fx:
                        path = fx.instance_path("inst1")
                        big_backup(fx, NAME, 800 << 20)

                        def s3_files():
                                return [os.path.join(r, f) for r, _, fs in os.walk(os.path.join(s3_data, "backups"))
                                        for f in fs]

                        def dav_files():
                                return [os.path.join(r, f) for r, _, fs in os.walk(dav_data) for f in fs]

                        def s3_parts():
                                return [f for f in s3_files() if os.path.basename(f).isdigit()]

                        for remote, under_way, files in (("s3", lambda: len(s3_parts()) >= 2, s3_files),
                                                         # apache2 receives into a temporary file of its own
                                                         # (.davfs.tmp*) and gives it the name at the end.
                                                         ("dav", lambda: any(os.path.getsize(f) > (20 << 20)
                                                                             for f in dav_files()), dav_files)):
                                listener = Listener(fx)
                                try:
                                        job = fx.call(USER_ALLOWED, path, IFACE_INSTANCE, "UploadBackup", "sas", NAME,
                                                      [remote])
                                        end = time.time() + 120
                                        while not under_way() and time.time() < end:
                                                time.sleep(0.02)
                                        expect(under_way(), f"{remote}: the upload is under way on the server")
                                        fx.call(USER_ALLOWED, job[1], fixture.IFACE_JOB, "Cancel", "")
                                        done = listener.wait_for(lambda e: e["signal"] == "JobRemoved" and
                                                                 e["args"][0] == job[0], "the canceled job's end")
                                finally:
                                        listener.stop()
                                expect_eq(done["args"][2], "canceled", f"{remote}: the job's result ({done['args'][3]})")
                                left = files()
                                expect(not any(os.path.basename(f).startswith(NAME) or f.endswith("/" + NAME)
                                               for f in left), f"{remote}: nothing under the backup's name: {left}")
                                if remote == "s3":
                                        # s3rver keeps a multipart upload's parts in a folder until it completes or
                                        # is aborted (it has no ListMultipartUploads to ask).
                                        expect_eq(s3_parts(), [], "s3: the multipart upload is aborted, no part "
                                                  "stays stored")
                                else:
                                        expect_eq([f for f in left if ".part-" in f or ".davfs.tmp" in f], [],
                                                  "dav: no temporary upload is left")
                        log = fx.daemon_log()
                        for secret in (DAV_SECRET, S3_SECRET):
                                expect(secret not in log, "a secret appears in the daemon's log")
        finally:
                s.close()


fixture.main(globals())
