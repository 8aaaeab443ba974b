#!/usr/bin/python3
# A backup that cannot finish leaves nothing behind, and a backup reads nothing it should not (opbackupd(8)):
# - symlinks in the instance that lead outside it (/etc/shadow, a folder elsewhere) are skipped and
#   reported; one that stays inside is followed;
# - the backup worker killed (SIGKILL) mid-write: the job fails, no backup is listed, no hidden temp file;
# - the daemon killed mid-backup: its worker dies with it, and the next daemon start removes the hidden
#   temp file;
# - a backup folder too small (a 1 MiB tmpfs) or filling up while the backup is written: the job fails
#   with a message about the free space, nothing is left in the folder, the daemon keeps serving.
# The kill tests use a 200 MB instance so that the backup takes long enough to be caught in the middle.

import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture  # noqa: E402
from fixture import Fixture, expect, expect_eq, USER_PRINTER  # noqa: E402
import backuptest as bt  # noqa: E402

MB = 1000 * 1000
BIG = {"inst1": {"size": "200M"}}


def wait_mid_write(fx, folder, name):
        """Waits until the backup worker writes the hidden ".NAME" and it holds some data; returns the worker's
        pid and the temp file's path."""
        pid = bt.wait_until(lambda: bt.worker_pids(fx), "the backup worker (a child of the daemon named "
                            f"{bt.WORKER_BACKUP})", timeout=60)[0]
        tmp = os.path.join(folder, "." + name)
        bt.wait_until(lambda: os.path.exists(tmp) and os.path.getsize(tmp) > 2 * MB,
                      f"{tmp} to be written", timeout=120, interval=0.02)
        expect(bt.pid_alive(pid), "the backup worker finished before it could be interrupted")
        expect(not os.path.exists(os.path.join(folder, name)), f"{name} is finished already: the instance is "
               "too small to interrupt its backup")
        return pid, tmp


# ---------------------------------------------------------------------------------------------------------

def test_symlinks_outside_instance_skipped():
        with Fixture() as fx:
                exp = fx.expected()
                uploads = exp["folders"]["uploads"]
                # A folder elsewhere, readable by everybody (so only the daemon's rule keeps it out).
                outside = os.path.join(fx.dir, "outside")
                os.mkdir(outside, 0o755)
                marker = b"MARKER-outside-the-instance-5f1d2c\n"
                with open(os.path.join(outside, "marker.txt"), "wb") as f:
                        f.write(marker)
                os.chmod(os.path.join(outside, "marker.txt"), 0o644)
                links = {"shadow-link": "/etc/shadow", "outside-dir": outside,
                         "outside-file": os.path.join(outside, "marker.txt"),
                         "inside-link.profile": "../printerProfiles/prusa_mk3s.profile"}
                for link, target in links.items():
                        os.symlink(target, os.path.join(uploads, link))
                        bt.chown_user(os.path.join(uploads, link))

                res = bt.run_backup_ok(fx)
                z = bt.read_zip(res.details["path"])
                for link in ("shadow-link", "outside-dir", "outside-file"):
                        hits = [n for n in z.names() if n.startswith(f"basedir/uploads/{link}")]
                        expect_eq(hits, [], f"entries for uploads/{link} -> {links[link]}")
                expect_eq(set(z.names()) - set(exp["entries"]), {"basedir/uploads/inside-link.profile"},
                          "entries beyond the sample's")
                # No entry holds the marker's or /etc/shadow's bytes, under whatever name.
                forbidden = {bt.sha256_file(os.path.join(outside, "marker.txt")): "the marker outside",
                             bt.sha256_file("/etc/shadow"): "/etc/shadow"}
                for e in z.entry_list:
                        expect(e["sha256"] not in forbidden, f"entry {e['name']} holds {forbidden.get(e['sha256'])}")
                # The link that stays inside is followed: the profile's content under the link's name.
                bt.check_contents(exp, z, extra_sources={
                        "basedir/uploads/inside-link.profile": os.path.join(exp["folders"]["printerProfiles"],
                                                                            "prusa_mk3s.profile")})
                log = res.log_text() + "\n" + fx.daemon_log()
                for link in ("shadow-link", "outside-dir", "outside-file"):
                        expect(f"uploads/{link}" in log, f"neither the job log nor the daemon log mentions the skipped "
                               f"symlink uploads/{link}:\n{res.log_text()}")
                expect(any(level == "warning" and "shadow-link" in line for level, line in res.log),
                       f"the skipped /etc/shadow link is not a warning in the job log:\n{res.log_text()}")


def test_worker_killed_mid_backup():
        with Fixture(instances=BIG) as fx:
                folder = fx.expected()["backup_folder"]
                expect_eq(bt.folder_listing(folder), [], "backup folder before the backup")
                with bt.Listener(fx) as lis:
                        jid, _ = bt.create_backup(fx, name="killed.zip")
                        pid, tmp = wait_mid_write(fx, folder, "killed.zip")
                        print(f"# killing worker {pid} with {os.path.getsize(tmp)} bytes written")
                        os.kill(pid, signal.SIGKILL)
                        removed = bt.job_removed(lis, jid)
                _, _, result, error, details = removed["args"]
                expect_eq(result, "failed", "result of the job whose worker was killed")
                expect("signal 9" in error, f"the error does not say the worker was killed by signal 9: {error!r}")
                expect_eq(bt.list_backups(fx), [], "ListBackups after the killed backup")
                expect_eq(bt.list_jobs(fx), [], "ListJobs after the killed backup")
                expect_eq(bt.folder_listing(folder), [], "files in the backup folder after the killed backup")

                # The name is free again, and the next backup works.
                res = bt.run_backup_ok(fx, name="killed.zip")
                expect_eq(bt.folder_listing(folder), ["killed.zip"], "files in the backup folder after a new backup")
                bt.unzip_test(res.details["path"])


def test_daemon_killed_mid_backup():
        with Fixture(instances=BIG) as fx:
                folder = fx.expected()["backup_folder"]
                bt.create_backup(fx, name="orphan.zip")
                pid, tmp = wait_mid_write(fx, folder, "orphan.zip")
                fx.daemon_proc.kill()
                fx.daemon_proc.wait()
                # PR_SET_PDEATHSIG: the worker must not go on writing for a daemon that is gone.
                try:
                        bt.wait_until(lambda: not bt.pid_alive(pid), f"the worker {pid} to die with the daemon",
                                      timeout=10)
                finally:
                        if bt.pid_alive(pid):
                                os.kill(pid, signal.SIGKILL)
                expect(os.path.exists(tmp), f"{tmp} is gone before the daemon restarted: nothing to test")
                fx.restart_daemon()
                expect_eq(bt.list_backups(fx), [], "ListBackups after the daemon restarted")
                expect_eq(bt.list_jobs(fx), [], "ListJobs after the daemon restarted")
                expect_eq(bt.folder_listing(folder), [], "files in the backup folder after the daemon restarted")
                expect(".orphan.zip" in fx.daemon_log(), "the daemon does not log the removal of .orphan.zip")


def open_sockets(pid):
        out = set()
        for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                        target = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                        continue
                if target.startswith("socket:"):
                        out.add(target)
        return out


def test_daemon_killed_while_worker_waits():
        # The worker is waiting for a slow additional-excludes hook and writes nothing meanwhile, so only
        # PR_SET_PDEATHSIG (not a broken pipe) can end it when the daemon dies.
        def prepare(fx):
                for d in ("", "hooks", "hooks/additional-excludes.d"):
                        os.chmod(os.path.join(fx.config_dir, d), 0o755)
                os.chmod(os.path.join(fx.config_dir, "hooks/additional-excludes.d/slow"), 0o755)

        slow = "#!/bin/sh\ncat >/dev/null\nsleep 8\necho '[]'\n"
        with Fixture(config_files={"hooks/additional-excludes.d/slow": slow}, prepare=prepare) as fx:
                bt.create_backup(fx, name="waiting.zip")
                pid = bt.wait_until(lambda: bt.worker_pids(fx), "the backup worker", timeout=30)[0]
                bt.wait_until(lambda: any(c == "sleep" for _, c in bt.children(pid)) or
                              any(bt.children(p) for p, _ in bt.children(pid)), "the hook to run", timeout=30)
                # The worker holds none of the daemon's descriptors: not its bus connection, not a socket
                # of another worker (each end of a socketpair is a socket of its own).
                shared = open_sockets(fx.daemon_proc.pid) & open_sockets(pid)
                expect(not shared, f"the backup worker holds sockets of the daemon: {shared}")
                fx.daemon_proc.kill()
                fx.daemon_proc.wait()
                start = time.monotonic()
                try:
                        bt.wait_until(lambda: not bt.pid_alive(pid), f"the worker {pid} to die with the daemon",
                                      timeout=4)
                finally:
                        print(f"# the worker lived {time.monotonic() - start:.1f} s after the daemon died")
                        if bt.pid_alive(pid):
                                os.kill(pid, signal.SIGKILL)


def small_folder_fixture(size, mb):
        """An instance of SIZE whose backup folder is a tmpfs of MB MiB owned by the instance user."""
        def prepare(fx):
                d = os.path.join(fx.dir, "small")
                os.mkdir(d)
                subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={mb}m,mode=0755", "tmpfs", d], check=True)
                fx._mounts.append(d)
                bt.chown_user(d)

        return Fixture(instances={"inst1": {"size": size, "extra_conf": "[Backup]\nFolder=@DIR@/small\n"}},
                       prepare=prepare)


def check_space_failure(fx, res, folder):
        expect_eq(res.result, "failed", f"result of a backup into a full folder (error: {res.error})")
        expect("free" in res.error and "MiB" in res.error,
               f"the error does not tell how much space is free: {res.error!r}")
        expect(folder in res.error, f"the error does not name the folder {folder}: {res.error!r}")
        expect_eq(bt.folder_listing(folder), [], "files in the backup folder after the failed backup")
        # The daemon keeps serving.
        expect_eq(bt.list_backups(fx), [], "ListBackups after the failed backup")
        expect_eq(bt.list_jobs(fx), [], "ListJobs after the failed backup")


def test_backup_folder_too_small():
        with small_folder_fixture("5M", 1) as fx:
                folder = os.path.join(fx.dir, "small")
                expect_eq(fx.get_property("root", fx.instance_path(), fixture.IFACE_INSTANCE, "BackupFolder"), folder,
                          "BackupFolder")
                res = bt.run_backup(fx)
                print(f"# error: {res.error}")
                check_space_failure(fx, res, folder)


def test_backup_folder_fills_up_while_writing():
        # Enough space when the backup starts; then something else fills the disk.
        with small_folder_fixture("100M", 150) as fx:
                folder = os.path.join(fx.dir, "small")
                filler = os.path.join(folder, "filler")
                with bt.Listener(fx) as lis:
                        jid, jpath = bt.create_backup(fx, name="full.zip")
                        wait_mid_write(fx, folder, "full.zip")
                        fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                        try:
                                while os.write(fd, b"\0" * (1 << 20)) > 0:
                                        pass
                        except OSError:         # ENOSPC: the disk is full now
                                pass
                        finally:
                                os.close(fd)
                        res = bt.BackupResult(bt.job_removed(lis, jid), bt.job_log(lis, jpath))
                print(f"# error: {res.error}")
                os.unlink(filler)
                check_space_failure(fx, res, folder)


def test_memory_of_a_big_backup():
        # opbackupd(8), DESCRIPTION: memory stays bounded whatever the size of the data. Figures are printed
        # for the record; the bounds asserted are generous (a worker holding the data in memory would break
        # them).
        with Fixture(instances={"inst1": {"size": "300M"}}) as fx:
                exp = fx.expected()
                data_mb = exp["total_bytes"] / MB
                with bt.Listener(fx) as lis:
                        start = time.monotonic()
                        jid, _ = bt.create_backup(fx, name="big.zip")
                        pid = bt.wait_until(lambda: bt.worker_pids(fx), "the backup worker", timeout=60)[0]
                        hwm = 0
                        while True:     # VmHWM only grows: the last value read is the peak (to ~50 ms)
                                v = bt.status_field(pid, "VmHWM")
                                if v is None or not bt.pid_alive(pid):
                                        break
                                hwm = max(hwm, v)
                                time.sleep(0.05)
                        removed = bt.job_removed(lis, jid)
                        took = time.monotonic() - start
                expect_eq(removed["args"][2:4], ["done", ""], "result of the big backup")
                details = removed["args"][4]
                bt.unzip_test(details["path"])
                daemon_hwm = bt.status_field(fx.daemon_proc.pid, "VmHWM")
                print(f"# backup of {data_mb:.0f} MB ({exp['files']} files) took {took:.1f} s, zip {details['size'] / MB:.0f} MB")
                print(f"# peak RSS (VmHWM): backup worker {hwm / 1024:.1f} MiB, daemon {daemon_hwm / 1024:.1f} MiB")
                expect(hwm > 0, "the worker's VmHWM was never read")
                expect(hwm * 1024 < 128 * 1024 * 1024, f"the backup worker peaked at {hwm} kB for {data_mb:.0f} MB of data")
                expect(daemon_hwm * 1024 < 256 * 1024 * 1024, f"the daemon peaked at {daemon_hwm} kB")


fixture.main(globals())
