#!/usr/bin/python3
# A stand-in for systemd's manager on the private system bus, for the integration tests: it owns
# org.freedesktop.systemd1 and answers Manager.StopUnit/StartUnit the way PID 1 does — the object path of
# a queued job at once, then, when the job is over, the broadcast signal JobRemoved(u id, o job, s unit,
# s result). python3-dbus with the GLib main loop (Debian packages python3-dbus, python3-gi).
#
# Usage: fake-systemd.py CONFIG.json LOG
#   CONFIG: {"units": {"NAME": {"stop": {"result": "done", "delay": 0.1}, "start": {...}}},
#            "watch": PATH}
#     A unit not in "units" is refused with org.freedesktop.systemd1.NoSuchUnit, as systemd refuses a unit
#     it cannot load. "watch": for each call, whether PATH exists is logged (so a test can tell on which
#     side of a restore's swap a unit was stopped and started).
#   LOG: one JSON object a line: {"call": "StopUnit", "unit", "mode", "sender", "job", "watch_exists"} for
#     each call, {"job_removed": PATH, "unit", "result"} for each signal.
# Prints {"ready": true} on stdout once it owns the name; runs until SIGTERM.

import json
import os
import signal
import sys

import dbus
import dbus.mainloop.glib
import dbus.service
from gi.repository import GLib

sys.dont_write_bytecode = True

NAME = "org.freedesktop.systemd1"
PATH = "/org/freedesktop/systemd1"
MANAGER = "org.freedesktop.systemd1.Manager"


class NoSuchUnit(dbus.exceptions.DBusException):
        _dbus_error_name = "org.freedesktop.systemd1.NoSuchUnit"


class Manager(dbus.service.Object):
        def __init__(self, conn, config, log):
                super().__init__(conn, PATH)
                self.config = config
                self.log = log
                self.next_id = 1

        def _write(self, obj):
                self.log.write(json.dumps(obj) + "\n")
                self.log.flush()

        def _queue(self, verb, method, unit, mode, sender):
                behaviour = self.config.get("units", {}).get(unit)
                watch = self.config.get("watch")
                entry = {"call": method, "unit": unit, "mode": mode, "sender": sender,
                         "watch_exists": os.path.exists(watch) if watch else None}
                if behaviour is None:
                        entry["error"] = "NoSuchUnit"
                        self._write(entry)
                        raise NoSuchUnit(f"Unit {unit} not found.")
                job_id = self.next_id
                self.next_id += 1
                job = f"{PATH}/job/{job_id}"
                entry["job"] = job
                self._write(entry)
                how = behaviour.get(verb, {})

                def finish():
                        result = how.get("result", "done")
                        self._write({"job_removed": job, "unit": unit, "result": result})
                        self.JobRemoved(dbus.UInt32(job_id), dbus.ObjectPath(job), unit, result)
                        return False

                # Like systemd, the answer goes out before the job can end.
                GLib.timeout_add(int(how.get("delay", 0.05) * 1000), finish)
                return dbus.ObjectPath(job)

        @dbus.service.method(MANAGER, in_signature="ss", out_signature="o", sender_keyword="sender")
        def StopUnit(self, unit, mode, sender=None):
                return self._queue("stop", "StopUnit", unit, mode, sender)

        @dbus.service.method(MANAGER, in_signature="ss", out_signature="o", sender_keyword="sender")
        def StartUnit(self, unit, mode, sender=None):
                return self._queue("start", "StartUnit", unit, mode, sender)

        @dbus.service.method(MANAGER, in_signature="", out_signature="")
        def Subscribe(self):
                self._write({"call": "Subscribe"})

        @dbus.service.signal(MANAGER, signature="uoss")
        def JobRemoved(self, job_id, job, unit, result):
                pass


def main(argv):
        if len(argv) != 3:
                print("usage: fake-systemd.py CONFIG.json LOG", file=sys.stderr)
                return 2
        with open(argv[1]) as f:
                config = json.load(f)
        address = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")
        if not address:
                print("fake-systemd: DBUS_SYSTEM_BUS_ADDRESS is not set", file=sys.stderr)
                return 2
        dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
        conn = dbus.bus.BusConnection(address)
        log = open(argv[2], "a")
        manager = Manager(conn, config, log)  # noqa: F841 (exported while it exists)
        name = dbus.service.BusName(NAME, conn, do_not_queue=True)  # noqa: F841 (owned while it exists)
        loop = GLib.MainLoop()
        GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGTERM, loop.quit)
        GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGINT, loop.quit)
        print(json.dumps({"ready": True}), flush=True)
        loop.run()
        return 0


if __name__ == '__main__':
        sys.exit(main(sys.argv))
