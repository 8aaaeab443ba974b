#!/usr/bin/python3
# Print-aware backups (opbackupd(8), PRINT-AWARE BACKUPS; CreateBackup option "when-idle"): against a
# stand-in for OctoPrint's REST API on 127.0.0.1 (octoprint-api.py) that answers GET /api/job with
# OctoPrint's JSON. The backup starts only after the printer's state changes from "Printing" to
# "Operational" (the server records, at each answer, which zips were in the backup folder); a wrong key, no
# server, a printer that keeps printing and a key file others could read are logged and handled as
# [Schedule] says; a printer that keeps printing is waited for the whole PrintWaitMaxSec, not a second less;
# the waiting can be canceled.
# The requests are made by the fetch helper (opbackup-fetch, run through systemd-socket-activate as an
# unprivileged user, as opbackup-fetch.socket runs it as a dynamic user) or, without it, by a worker that
# is the instance's user — never by root: the server looks up who connected.

import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture  # noqa: E402
from fixture import Fixture, expect, expect_eq, IFACE_INSTANCE, USER_ALLOWED, USER_PRINTER  # noqa: E402
from printapi import (ApiServer, Scratch, HELPER_USER, start_helper, uid_of, wait_until,  # noqa: E402
                      write_key)

LOCATED = re.compile(r"^Backup located at (/\S+\.zip)$", re.M)


def api_fixture(server=None, url=None, schedule="", key_owner="root", key_mode=0o600, fetch_socket=None):
        """inst1 with [OctoPrint] ApiUrl=/ApiKeyFile=; the server (if any) watches its backup folder."""
        def prepare(fx):
                key_file = os.path.join(fx.dir, "keys", "inst1.key")
                write_key(key_file, key_owner, key_mode)
                if server:
                        server.start(watch=backup_folder(fx))
                conf = fx.instance_conf("inst1") + (
                        f"\n[OctoPrint]\nApiUrl={url or server.url}\nApiKeyFile={key_file}\n"
                        f"[Schedule]\nPrintPollSec=1\n{schedule}")
                fx.write_config_file(os.path.join("instances.d", "inst1.conf"), conf)

        env = {"OPBACKUP_FETCH_SOCKET": fetch_socket or "/nonexistent/opbackup-fetch.socket"}
        return Fixture(prepare=prepare, daemon_env=env)


def backup_folder(fx, name="inst1"):
        return os.path.join(fx.basedir(name), "data", "backup")


def zips(fx):
        folder = backup_folder(fx)
        return sorted(n for n in os.listdir(folder) if n.endswith(".zip")) if os.path.isdir(folder) else []


def log_index(log, text):
        i = log.find(text)
        expect(i >= 0, f"the daemon log lacks {text!r}")
        return i


# ------------------------------------------------------------------------------------------------------

def test_waits_while_printing():
        with Scratch() as scratch:
                sock = start_helper(scratch)
                server = ApiServer(scratch, states="Printing,Printing,Printing,Operational")
                with api_fixture(server, fetch_socket=sock) as fx:
                        r = fx.ctl_ok(USER_ALLOWED, "backup", "--when-idle")
                        m = LOCATED.search(r.stdout)
                        expect(m, f"backup did not print its path:\n{r.stdout}")
                        recs = server.records()
                        expect_eq([x["state"] for x in recs], ["Printing"] * 3 + ["Operational"],
                                  "the states OctoPrint was asked for until it was idle")
                        expect(all(x["key_ok"] and x["path"] == "/api/job" for x in recs),
                               f"requests without the right key or to another path: {recs}")
                        # Nothing was written to the backup folder before the printer was idle.
                        expect_eq([x["backups"] for x in recs], [[]] * 4, "zips in the folder at each answer")
                        expect_eq(zips(fx), [os.path.basename(m.group(1))], "zips after the backup")
                        # Asked by the helper's user: not root, not the instance's user.
                        expect_eq({x["client_uid"] for x in recs}, {uid_of(HELPER_USER)}, "who connected")
                        log = fx.daemon_log()
                        waiting = log_index(log, 'OctoPrint reports "Printing": waiting until the printer is idle')
                        idle = log_index(log, 'OctoPrint reports "Operational" after')
                        started = log_index(log, "Instance inst1: backup ")
                        expect(waiting < idle < started, "the backup started before the printer was idle")


def test_asks_as_instance_user_without_helper():
        with Scratch() as scratch:
                server = ApiServer(scratch, states="Operational")
                with api_fixture(server) as fx:
                        fx.ctl_ok(USER_ALLOWED, "backup", "--when-idle")
                        recs = server.records()
                        expect_eq(len(recs), 1, "requests")
                        expect_eq(recs[0]["client_uid"], uid_of(USER_PRINTER), "who connected")
                        expect('OctoPrint reports "Operational": backing up now.' in fx.daemon_log(),
                               "the job log does not say the printer was idle")


def test_wrong_key_backs_up_and_says_why():
        with Scratch() as scratch:
                server = ApiServer(scratch, status=401)
                with api_fixture(server) as fx:
                        r = fx.ctl_ok(USER_ALLOWED, "backup", "--when-idle")
                        expect(LOCATED.search(r.stdout), "no backup was made")
                        expect("refused the API key (HTTP 401)" in r.stderr,
                               f"the client did not show why (warning lines):\n{r.stderr}")
                        log = fx.daemon_log()
                        expect("OctoPrint refused the API key (HTTP 401): check ApiKeyFile=; backing up without "
                               "knowing whether the printer is busy (OnPrinterUnknown=backup)." in log,
                               "the job log does not say why it backs up anyway")
                        expect_eq(len(server.records()), 1, "requests to the API")


def test_no_server_skips_when_configured():
        with api_fixture(url="http://127.0.0.1:1", schedule="OnPrinterUnknown=skip\n") as fx:
                r = fx.ctl(USER_ALLOWED, "backup", "--when-idle")
                expect_eq(r.returncode, 5, f"exit status of a skipped backup (stderr: {r.stderr})")
                expect("Backup skipped: Cannot reach OctoPrint at http://127.0.0.1:1/api/job" in r.stderr,
                       f"the client did not say why:\n{r.stderr}")
                expect("(OnPrinterUnknown=skip)" in r.stderr, r.stderr)
                expect_eq(zips(fx), [], "zips after a skipped backup")


def test_still_printing_is_skipped_after_the_limit():
        with Scratch() as scratch:
                server = ApiServer(scratch, states="Printing")
                with api_fixture(server, schedule="PrintWaitMaxSec=3\n") as fx:
                        start = time.monotonic()
                        r = fx.ctl(USER_ALLOWED, "backup", "--when-idle")
                        took = time.monotonic() - start
                        expect_eq(r.returncode, 5, f"exit status (stderr: {r.stderr})")
                        expect('Backup skipped: the printer is still busy ("Printing") after 3 s of waiting '
                               '(PrintWaitMaxSec=3)' in r.stderr, f"the client did not say why:\n{r.stderr}")
                        expect(3 <= took < 30, f"took {took:.1f} s for a 3 s limit")
                        expect(len(server.records()) >= 3, f"asked only {len(server.records())} times")
                        expect_eq(zips(fx), [], "zips after a skipped backup")


def test_waits_the_whole_limit():
        """PrintWaitMaxSec is a lower bound: the printer check gives up only after that much time passed. The
        server answers just after each whole second of CLOCK_MONOTONIC, the clock the worker measures with;
        a waiter counting whole seconds would then give up up to a second early. How early depends on where
        in a second the waiting began: only a start late in a second (the first request 0.6 s or more into
        it) tells, so the backup is asked for again until it starts there."""
        limit, slack = 3, 0.4
        with Scratch() as scratch:
                server = ApiServer(scratch, states="Printing", align=True)
                with api_fixture(server, schedule=f"PrintWaitMaxSec={limit}\n") as fx:
                        latency = 0.5      # from running the client to the first request; measured below
                        for attempt in range(8):
                                seen = len(server.records())
                                time.sleep(((0.7 - latency) - time.monotonic()) % 1.0)
                                started = time.monotonic()
                                r = fx.ctl(USER_ALLOWED, "backup", "--when-idle")
                                expect_eq(r.returncode, 5, f"exit status (stderr: {r.stderr})")
                                recs = server.records()[seen:]
                                expect(len(recs) >= 2, f"asked only {len(recs)} times")
                                latency = recs[0]["received"] - started
                                phase = recs[0]["received"] % 1.0
                                if not 0.6 <= phase <= 0.95:
                                        print(f"# attempt {attempt}: the first request came {phase:.2f} s into a "
                                              f"second, which cannot tell; again")
                                        continue
                                # The worker started before the first request and decided after the last answer.
                                waited = recs[-1]["answered"] - recs[0]["received"]
                                print(f"# attempt {attempt}: {len(recs)} requests, the first {phase:.2f} s into a "
                                      f"second; {waited:.2f} s from the first request to the last answer")
                                expect(waited >= limit - slack,
                                       f"gave up after {waited:.2f} s of waiting, PrintWaitMaxSec={limit}")
                                expect(f"after {limit} s of waiting (PrintWaitMaxSec={limit})" in r.stderr,
                                       f"the client did not say why:\n{r.stderr}")
                                expect_eq(zips(fx), [], "zips after a skipped backup")
                                return
                        raise AssertionError("the first request never came late enough in a second to tell")


def test_key_file_others_can_read_is_not_used():
        for owner, mode in (("root", 0o644), (USER_PRINTER, 0o600)):
                with Scratch() as scratch:
                        server = ApiServer(scratch, states="Printing")
                        with api_fixture(server, key_owner=owner, key_mode=mode) as fx:
                                fx.ctl_ok(USER_ALLOWED, "backup", "--when-idle")
                                expect_eq(server.records(), [], f"requests with a key file {owner} {mode:o}")
                                expect("must be root's and readable by root only" in fx.daemon_log(),
                                       "the log does not say why the key file was not used")


def test_cancel_while_waiting():
        with Scratch() as scratch:
                server = ApiServer(scratch, states="Printing")
                with api_fixture(server) as fx:
                        r = fx.ctl_ok(USER_ALLOWED, "--json", "backup", "--when-idle", "--no-wait")
                        job = json.loads(r.stdout)["id"]

                        def stage():
                                jobs = json.loads(fx.ctl_ok(USER_ALLOWED, "jobs", "--json").stdout)
                                return [j["stage"] for j in jobs if j["id"] == job]

                        wait_until(lambda: stage() == ["waiting-for-printer"] and len(server.records()) >= 2,
                                   "the job waiting for the printer")
                        fx.ctl_ok(USER_ALLOWED, "cancel", job)
                        wait_until(lambda: stage() == [], "the canceled job to end")
                        expect("Canceled while waiting for the printer." in fx.daemon_log(), "cancel not logged")
                        asked = len(server.records())
                        time.sleep(2.5)
                        expect_eq(len(server.records()), asked, "requests after the job was canceled")
                        expect_eq(zips(fx), [], "zips after canceling")


def test_without_api_backs_up_at_once():
        with Fixture() as fx:
                r = fx.ctl_ok(USER_ALLOWED, "backup", "--when-idle")
                expect(LOCATED.search(r.stdout), "no backup was made")
                expect("Not asking whether the printer is busy: the instance has no OctoPrint API configured"
                       in fx.daemon_log(), "the job log does not say why it did not ask")


def test_when_idle_must_be_boolean():
        with Fixture() as fx:
                e = fx.call_error("root", fx.instance_path(), IFACE_INSTANCE, "CreateBackup", "asa{sv}", [],
                                  {"when-idle": "yes"})
                expect(e is not None and e.name == "org.freedesktop.DBus.Error.InvalidArgs",
                       f"CreateBackup with when-idle as a string: {e}")


if __name__ == "__main__":
        fixture.main(globals())
