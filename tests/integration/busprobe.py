#!/usr/bin/python3
# Measures how fast opbackupd answers cheap calls while it does something else, for the integration
# tests: the Manager's Version property (Properties.Get) and ListInstances, called in turn at a fixed rate.
# Python3-dbus with the GLib main loop (Debian packages python3-dbus, python3-gi).
#
# The calls are sent on a clock, whether or not earlier ones were answered ("open loop"): a daemon that
# stops answering for 10 s then leaves hundreds of slow calls in the figures. A probe that waited for
# each answer before the next call would record that stall as one slow call among thousands, and a p99
# would not show it.
#
# Usage: busprobe.py INTERVAL_MS
#   Prints {"ready": true} once connected, then samples until SIGTERM/SIGINT; it then waits (at most
#   60 s) for the answers still due and prints one JSON object:
#   {"Version": [ms, ...], "ListInstances": [ms, ...], "errors": ["...", ...], "unanswered": N}

import json
import os
import signal
import sys
import time

import dbus
import dbus.mainloop.glib
from gi.repository import GLib

sys.dont_write_bytecode = True

BUS_NAME = "org.opbackup.backup1"
MANAGER_PATH = "/org/opbackup/backup1"
IFACE_MANAGER = "org.opbackup.backup1.Manager"
IFACE_PROPERTIES = "org.freedesktop.DBus.Properties"
DRAIN_TIMEOUT_S = 60
# The system bus allows 128 calls awaiting a reply per connection. Calls due while this many are
# outstanding wait in the probe and are sent as answers come in; their latency still counts from when
# they were due.
INFLIGHT_MAX = 100


def main(argv):
        if len(argv) != 2:
                print("usage: busprobe.py INTERVAL_MS", file=sys.stderr)
                return 2
        interval_ms = int(argv[1])
        address = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")
        if not address:
                print("busprobe: DBUS_SYSTEM_BUS_ADDRESS is not set", file=sys.stderr)
                return 2

        dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
        conn = dbus.bus.BusConnection(address)
        loop = GLib.MainLoop()
        out = {"Version": [], "ListInstances": [], "errors": []}
        state = {"pending": 0, "stopping": False, "turn": 0}

        calls = {
                "Version": (MANAGER_PATH, IFACE_PROPERTIES, "Get", "ss", [IFACE_MANAGER, "Version"],
                            lambda r: isinstance(r, str) and r != ""),
                "ListInstances": (MANAGER_PATH, IFACE_MANAGER, "ListInstances", "", [],
                                  lambda r: len(r) >= 1),
        }

        due = []

        def send(what, start):
                path, iface, method, sig, args, check = calls[what]

                def done(*result):
                        state["pending"] -= 1
                        value = result[0] if len(result) == 1 else result
                        if check(value):
                                out[what].append((time.monotonic() - start) * 1000.0)
                        else:
                                out["errors"].append(f"{what}: unexpected answer {value!r}")
                        flush()

                def failed(e):
                        state["pending"] -= 1
                        out["errors"].append(f"{what}: {e.get_dbus_name()}: {e.get_dbus_message()}")
                        flush()

                state["pending"] += 1
                conn.call_async(BUS_NAME, path, iface, method, sig, args, done, failed, timeout=120.0)

        def flush():
                while due and state["pending"] < INFLIGHT_MAX:
                        send(*due.pop(0))
                if state["stopping"] and state["pending"] == 0 and not due:
                        loop.quit()

        def tick():
                if state["stopping"]:
                        return False
                due.append((("Version", "ListInstances")[state["turn"] % 2], time.monotonic()))
                state["turn"] += 1
                flush()
                return True

        def stop(*_):
                state["stopping"] = True
                flush()
                GLib.timeout_add(DRAIN_TIMEOUT_S * 1000, loop.quit)
                return False

        # The first call also checks that the daemon is there at all.
        try:
                conn.call_blocking(BUS_NAME, MANAGER_PATH, IFACE_PROPERTIES, "Get", "ss",
                                   [IFACE_MANAGER, "Version"], timeout=30)
        except dbus.exceptions.DBusException as e:
                print(f"busprobe: {BUS_NAME} does not answer: {e}", file=sys.stderr)
                return 2
        print(json.dumps({"ready": True}), flush=True)
        GLib.timeout_add(interval_ms, tick)
        GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGTERM, stop)
        GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGINT, stop)
        loop.run()
        out["unanswered"] = state["pending"] + len(due)
        print(json.dumps(out), flush=True)
        return 0


if __name__ == '__main__':
        sys.exit(main(sys.argv))
