#!/usr/bin/python3
# Scheduled backups and remotes (opbackupctl(1), scheduled-backup): a backup whose upload failed because
# the SFTP server was down (killed during the run) is copied by the next scheduled run, once the server is
# back; each remote is pruned to its own Keep= (the schedule's own backups only: what a person made stays),
# as the scheduler user with the shipped polkit rules. Real servers on 127.0.0.1: apache2 mod_dav and sshd (tests/remote/servers.py).

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "remote"))
import fixture  # noqa: E402
from backuptest import sha256_file  # noqa: E402
from fixture import USER_ALLOWED, USER_SCHEDULER, Fixture, expect, expect_eq  # noqa: E402
from servers import SFTP_USER, Servers, kill  # noqa: E402

SECRET = "dav-Secret-sched-8e2"


def test_scheduled_copies_what_remotes_lack_and_prunes_them():
        s = Servers()
        try:
                dav_url, dav_data, _ = s.apache("opb", SECRET)
                port, home, key, fingerprint, sshd = s.sshd()
                remotes = {
                        "dav": (f"Type=webdav\nURL={dav_url}/s\nKeep=2\n", f"User=opb\nPassword={SECRET}\n"),
                        "nas": (f"Type=sftp\nURL=sftp://{SFTP_USER}@127.0.0.1:{port}/~/sched\n"
                                f"HostKeySHA256={fingerprint}\n", open(key).read()),
                }

                def prepare(fx):
                        for name, (conf, cred) in remotes.items():
                                path = os.path.join(fx.config_dir, "keys", name)
                                os.makedirs(os.path.dirname(path), exist_ok=True)
                                with open(path, "w") as f:
                                        f.write(cred)
                                os.chmod(path, 0o600)
                                fx.write_config_file(f"remotes.d/{name}.conf",
                                                     f"[Remote]\n{conf}CredentialsFile={path}\n")

                inst = {"extra_conf": "[Backup]\nCopyTo=dav nas\n"}
                with Fixture(instances={"inst1": inst}, prepare=prepare) as fx:
                        folder = os.path.join(fx.basedir("inst1"), "data", "backup")
                        on_dav = lambda: sorted(os.listdir(os.path.join(dav_data, "s", "inst1")))  # noqa: E731
                        on_nas = lambda: sorted(n for n in os.listdir(os.path.join(home, "sched", "inst1"))  # noqa: E731
                                                if not n.startswith("."))

                        first = json.loads(fx.ctl_ok(USER_ALLOWED, "backup", "--json").stdout)["name"]
                        expect_eq(on_nas(), [first], "the first backup is on the SFTP server")
                        r = fx.ctl(USER_SCHEDULER, "--no-ask-password", "scheduled-backup", timeout=300)
                        expect_eq(r.returncode, 0, f"a scheduled run with both servers up ({r.stdout} {r.stderr})")
                        before = on_nas()
                        expect_eq(len(before), 2, f"the scheduled backup is on the SFTP server too: {before}")
                        # The SFTP server goes down: the next backups are made, their upload there fails.
                        kill(sshd)
                        made = [first]
                        for _ in range(2):
                                r = fx.ctl(USER_ALLOWED, "backup", "--json")
                                expect_eq(r.returncode, 0, f"a backup while the SFTP server is down ({r.stderr})")
                                made.append(json.loads(r.stdout)["name"])
                        expect_eq(on_nas(), before, "nothing new on the SFTP server while it is down")
                        expect(all(os.path.exists(os.path.join(folder, n)) for n in made), "every local backup kept")
                        # A name a person chose: never pruned by Keep=.
                        fx.ctl_ok(USER_ALLOWED, "backup", "--name", "before-upgrade.zip")
                        r = fx.ctl("root", "--no-ask-password", "scheduled-backup", "--json", timeout=300)
                        expect_eq(r.returncode, 1, f"scheduled-backup with a remote down: exit 1 ({r.stderr})")

                        s.sshd_restart()
                        r = fx.ctl(USER_SCHEDULER, "--no-ask-password", "scheduled-backup", "--json", timeout=300)
                        expect_eq(r.returncode, 0, f"scheduled-backup once the server is back ({r.stdout} {r.stderr})")
                        out = json.loads(r.stdout)["instances"][0]
                        local = sorted(n for n in os.listdir(folder) if n.endswith(".zip") and not n.startswith("."))
                        expect_eq(on_nas(), local, "the SFTP server has every local backup after the scheduled run")
                        for n in local:
                                expect(sha256_file(os.path.join(folder, n)) ==
                                       sha256_file(os.path.join(home, "sched", "inst1", n)), f"{n} identical on nas")
                        scheduled = sorted(n for n in local if n.endswith("-scheduled.zip"))
                        expect_eq(len(scheduled), 3, f"three scheduled backups made: {local}")
                        by_hand = [n for n in local if n not in scheduled]
                        expect_eq(on_dav(), sorted(by_hand + scheduled[-2:]),
                                  "the WebDAV remote pruned to its Keep=2 (the schedule's backups only)")
                        by_remote = {x["remote"]: x for x in out["remotes"]}
                        expect(set(by_remote["nas"]["uploaded"]) >= set(made[1:]),
                               f"the JSON says what was copied to nas: {by_remote['nas']}")
                        expect(len(by_remote["dav"]["pruned"]) >= 1, f"the JSON says what was pruned: {by_remote['dav']}")
        finally:
                s.close()


fixture.main(globals())
