#!/usr/bin/python3
# The Cockpit page "OctoPrint backups" in a real browser (Debian's chromium, puppeteer-core) against
# cockpit-ws --local-session=cockpit-bridge on the fixture's bus, with the real polkitd and the real daemon.
# As a member of the group opbackup: the instance and its backups are listed, a backup is created from the
# page (its stage and progress bar seen, then the new backup listed), one is downloaded (same bytes as in
# the backup folder) and one deleted after its confirmation. As an outsider: refused, and the page says so.
# As root (administrative access): the restore confirmation names what is replaced, the restore runs and
# its log and outcome are shown. Screenshots of each state go to BUILD/cockpit-screenshots/.

import filecmp
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "cockpit"))
import fixture  # noqa: E402
from fixture import Fixture, Skip, expect, expect_eq, USER_ALLOWED, USER_DENIED  # noqa: E402
import cockpitws  # noqa: E402

SHOTS = os.path.join(cockpitws.BUILD_ROOT, "cockpit-screenshots")
# Big enough that the backup's stages and progress bar are on screen for a while.
INSTANCE = {"inst1": {"size": "60M", "gen_args": ["--restart-command", "true"]}}


def page(fx):
        try:
                cockpitws.check_prerequisites()
        except cockpitws.Unavailable as e:
                raise AssertionError(str(e))
        p = cockpitws.CockpitPage(fx, SHOTS)
        return p


def backup_folder(fx):
        return fx.get_property("root", fx.instance_path("inst1"), fixture.IFACE_INSTANCE, "BackupFolder")


def first_backup(fx):
        out = fx.ctl_ok(USER_ALLOWED, "-i", "inst1", "backup", "--name", "first-backup.zip", "--json").stdout
        expect("first-backup.zip" in out, f"the first backup: {out}")
        return "first-backup.zip"


def check_session(r, what):
        if r.get("error"):
                raise AssertionError(f"{what}: {r['error']}\nconsole: {r.get('console')}\npage errors: {r.get('pageErrors')}")
        expect(not r.get("pageErrors"), f"{what}: errors in the page: {r.get('pageErrors')}")


def test_member_and_outsider():
        with Fixture(instances=INSTANCE, bus_config=cockpitws.BUS_CONFIG) as fx:
                p = page(fx)
                existing = first_backup(fx)
                # The manifest's condition hides the page where the service is not installed.
                # (Cockpit 287, Debian 12's, does not evaluate conditions yet: then the page is served and
                # shows that the service is not available.)
                if not os.path.exists(cockpitws.condition_path()) and not cockpitws.bridge_has_conditions():
                        print("# this cockpit-bridge does not evaluate manifest conditions: not checked")
                elif not os.path.exists(cockpitws.condition_path()):
                        expect_eq(p.http_status(USER_ALLOWED), 404, "the page without the service installed")
                p.satisfy_condition()
                expect_eq(p.http_status(USER_ALLOWED), 200, "the page with the service installed")

                downloads = os.path.join(fx.dir, "downloads")
                os.mkdir(downloads)
                folder = backup_folder(fx)
                uploads = os.path.join(fx.dir, "uploads")
                os.mkdir(uploads)
                upload = os.path.join(uploads, "uploaded-backup.zip")
                fixture.shutil.copyfile(os.path.join(folder, existing), upload)
                bad_upload = os.path.join(uploads, "not-a-backup.zip")
                with open(bad_upload, "wb") as f:
                        f.write(b"this is not a zip file\n" * 100)
                r = p.session(USER_ALLOWED, "member", instance="inst1", existing=existing, exclude="timelapse",
                              downloads=downloads, upload=upload, badUpload=bad_upload,
                              liveMarker=os.path.join(fx.dir, "page-listed"), liveName="made-elsewhere.zip",
                              during=lambda: fx.ctl_ok(USER_ALLOWED, "-i", "inst1", "backup", "--name",
                                                       "made-elsewhere.zip"))
                check_session(r, "member")
                expect_eq(r["status"], "Ready", "the instance's status")
                expect(fx.expected("inst1")["octoprint_version"] in r["facts"], f"the OctoPrint version in {r['facts']}")
                expect_eq(r["rows"], [existing], "the backups listed")
                # Live: a backup made with opbackupctl while the page is open is listed without a reload.
                expect(r.get("liveSeen"), "the backup made elsewhere was not listed")
                expect(r.get("keyboard"), "the create dialog could not be opened and closed by keyboard")
                # Restore needs an administrator: the button says so instead of failing.
                expect_eq(r["restoreDisabled"], "true", "the member's restore button is disabled")
                expect(r["restoreNote"] and "administrative access" in r["restoreNote"],
                       f"the member is told why restore is not possible: {r['restoreNote']}")
                # Create: the job's stage and progress bar were on screen, then the outcome and the new row.
                stages = [s["stage"] for s in r["jobStates"] if s["bar"]]
                values = sorted({int(s["value"]) for s in r["jobStates"] if s["bar"] and s["value"] is not None})
                print(f"# the backup job as the page showed it: stages {list(dict.fromkeys(stages))}, progress {values}")
                expect(stages, f"no progress bar of the backup job was seen: {r['jobStates'][:5]}")
                expect(any(s in ("scanning", "writing", "syncing", "preparing", "starting", "queued") for s in stages),
                       f"the stages seen: {sorted(set(stages))}")
                expect_eq(r["outcome"]["variant"], "success", f"the backup's outcome ({r['outcome']['text']})")
                created = r["created"]
                expect(created and created != existing, f"the new backup's name in the outcome: {r['outcome']}")
                expect_eq(r["firstRow"], created, "the new backup is listed first (newest first)")
                expect("timelapse" in r["createdExcludes"], f"the new backup's excludes in the list: {r['createdExcludes']}")
                # Download: the same bytes as the file in the backup folder.
                expect_eq(r["downloaded"], [existing], "the downloaded files")
                # (upload is a copy of it made before the session: the prune below deletes the backup)
                expect(filecmp.cmp(os.path.join(downloads, existing), upload, shallow=False),
                       "the download has other bytes than the backup")
                # Upload from the browser: stored under its name, the same bytes; a zip that is not a backup
                # is refused in words, and leaves nothing behind.
                expect("uploaded-backup.zip" in r["uploadOutcome"], f"the upload's outcome: {r['uploadOutcome']}")
                expect(filecmp.cmp(upload, os.path.join(folder, "uploaded-backup.zip"), shallow=False),
                       "the uploaded backup has other bytes than the file chosen")
                expect("not-a-backup.zip could not be imported" in r["badUploadError"] and
                       "backup" in r["badUploadError"].split("imported", 1)[1],
                       f"the refused upload's error: {r['badUploadError']}")
                expect(not any(n.startswith("not-a-backup") for n in os.listdir(folder)),
                       f"the refused upload left a file: {os.listdir(folder)}")
                # Delete, after the confirmation naming it.
                expect(created in r["deleteDialog"] and "cannot be undone" in r["deleteDialog"],
                       f"the delete confirmation: {r['deleteDialog']}")
                expect_eq(r["rowsAfterDelete"], sorted([existing, "made-elsewhere.zip", "uploaded-backup.zip"]),
                          "the backups listed after the delete")
                expect(not os.path.exists(os.path.join(folder, created)), "the deleted backup is still in the folder")
                # Prune to the newest: the dialog named the older ones, and they are gone.
                expect_eq(sorted(r["pruneDoomed"]), sorted([existing, "made-elsewhere.zip"]), "the backups the prune dialog names")
                expect_eq(r["rowsAfterPrune"], ["uploaded-backup.zip"], "the backups listed after the prune")
                expect_eq(sorted(n for n in os.listdir(folder) if n.endswith(".zip")), ["uploaded-backup.zip"],
                          "the backup folder after the prune")

                # An outsider: refused by polkit, and the page says so (no broken controls).
                r = p.session(USER_DENIED, "outsider")
                check_session(r, "outsider")
                expect_eq(r["phase"], "denied", f"the outsider's page ({r['text']})")
                expect("not allowed" in r["text"] and USER_DENIED in r["text"],
                       f"the outsider is told who was refused: {r['text']}")
                expect_eq(r["buttons"], [], "buttons shown to the outsider")

                # The service not there (and not activatable on this bus): the page says so.
                fx.stop_daemon()
                r = p.session(USER_ALLOWED, "outsider", shot="service-unavailable")
                check_session(r, "without the service")
                expect_eq(r["phase"], "unavailable", f"the page without the service ({r['text']})")
                expect("not available" in r["text"] and "opbackupd is not running" in r["text"],
                       f"the page without the service: {r['text']}")


def remotes(fx):
        """A WebDAV remote (no server needed to list it) and a broken remote file."""
        fx.write_remote("nas", "Type=webdav\nURL=http://127.0.0.1:9/farm\n", "User=opb\nPassword=secret-not-shown\n")
        fx.write_config_file("remotes.d/broken.conf", "[Remote]\nType=carrier-pigeon\n")


def test_admin_restore():
        with Fixture(instances=INSTANCE, bus_config=cockpitws.BUS_CONFIG, prepare=remotes) as fx:
                p = page(fx)
                existing = first_backup(fx)
                p.satisfy_condition()
                basedir = fx.basedir("inst1")
                marker = os.path.join(basedir, "made-after-the-backup")
                with open(marker, "w") as f:
                        f.write("lost by the restore\n")
                fixture.shutil.chown(marker, fixture.USER_PRINTER, fixture.USER_PRINTER)
                # What OctoPrint's restore (and opbackup's) leaves when a plugin could not be reinstalled.
                unknown = os.path.join(backup_folder(fx), "unknown_plugins_from_restore.json")
                with open(unknown, "w") as f:
                        json.dump([{"key": "ghostplugin", "name": "Ghost Plugin", "url": "https://plugins.example/ghost"}], f)
                fixture.shutil.chown(unknown, fixture.USER_PRINTER, fixture.USER_PRINTER)
                r = p.session("root", "admin", instance="inst1", existing=existing, dark=True, unknownPlugin=True)
                check_session(r, "admin")
                expect(r["darkTheme"], "the page is not dark in a browser that prefers dark")
                expect_eq(r["remotes"], [["broken", "broken configuration", ""], ["nas", "webdav", "http://127.0.0.1:9/farm"]],
                          "the remotes listed")
                expect_eq(r["unknownPlugins"], [{"text": "Ghost Plugin", "href": "https://plugins.example/ghost"}],
                          "the unknown plugins shown, with their homepages")
                expect(basedir in r["restoreDialog"] and "replaced" in r["restoreDialog"],
                       f"the restore confirmation names what is replaced: {r['restoreDialog']}")
                expect_eq(r["outcome"]["variant"], "success", f"the restore's outcome ({r['outcome']['text']})")
                expect(r["logLinesLive"] > 0, "the restore's log was not shown while it ran")
                expect(r["logLinesKept"] > 0, "the restore's log is not kept with its outcome")
                expect(not os.path.exists(marker), "the restore did not replace basedir")



def test_copy_to_remote():
        sys.path.insert(0, os.path.join(HERE, "..", "remote"))
        from servers import Servers
        s = Servers()
        try:
                url, data, _ = s.rclone("opb", "dav-secret-cockpit")

                def prepare(fx):
                        fx.write_remote("dav", f"Type=webdav\nURL={url}/farm\n", "User=opb\nPassword=dav-secret-cockpit\n")

                with Fixture(instances={"inst1": {}}, bus_config=cockpitws.BUS_CONFIG, prepare=prepare) as fx:
                        p = page(fx)
                        existing = first_backup(fx)
                        p.satisfy_condition()
                        r = p.session(USER_ALLOWED, "copy", instance="inst1", existing=existing, remote="dav")
                        check_session(r, "copy")
                        expect("dav" in r["copyDialog"] and url in r["copyDialog"], f"the copy dialog: {r['copyDialog']}")
                        expect_eq(r["outcome"]["variant"], "success", f"the copy's outcome ({r['outcome']['text']})")
                        expect(f"{existing} copied to dav" in r["outcome"]["text"], f"the copy's outcome: {r['outcome']['text']}")
                        expect(existing in r["remotesText"], f"the remote's last upload: {r['remotesText']}")
                        there = os.path.join(data, "farm", "inst1", existing)
                        expect(filecmp.cmp(there, os.path.join(backup_folder(fx), existing), shallow=False),
                               "the copy on the WebDAV server has other bytes than the backup")
        finally:
                s.close()



# An additional-excludes hook (opbackupd(8), ARCHIVE FORMAT) that keeps a backup "preparing" for 20 s.
SLOW_HOOK = "#!/bin/sh\ncat >/dev/null\nsleep 20\necho '[]'\n"


def test_cancel_running_backup():
        def prepare(fx):
                os.chmod(os.path.join(fx.config_dir, "hooks", "additional-excludes.d", "slow"), 0o755)

        with Fixture(instances={"inst1": {}}, bus_config=cockpitws.BUS_CONFIG, prepare=prepare,
                     config_files={"hooks/additional-excludes.d/slow": SLOW_HOOK}) as fx:
                p = page(fx)
                p.satisfy_condition()
                r = p.session(USER_ALLOWED, "cancel", instance="inst1")
                check_session(r, "cancel")
                expect("Preparing" in r["jobText"], f"the running backup's stage on the page: {r['jobText']}")
                expect_eq(r["outcome"]["variant"], "info", f"the canceled backup's outcome ({r['outcome']['text']})")
                expect("canceled" in r["outcome"]["text"], f"the canceled backup's outcome: {r['outcome']['text']}")
                expect_eq(r["jobsLeft"], 0, "jobs shown after the cancel")
                expect_eq(r["rows"], [], "backups listed after the cancel")
                folder = backup_folder(fx)
                expect_eq([n for n in os.listdir(folder) if n.endswith(".zip")], [], "the canceled backup left a zip")


if __name__ == "__main__" and fixture.in_private_mount_namespace():
        # Each run's screenshots only: none left from an earlier run (a failure's) to mislead.
        fixture.shutil.rmtree(SHOTS, ignore_errors=True)
fixture.main(globals())
