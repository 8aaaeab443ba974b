#!/usr/bin/python3
# Listens for opbackupd's signals on the system bus, for the integration tests: what a client of the user
# it runs as (the fixture runs it through setpriv) really receives. Debian package python3-dbus, with
# python3-gi for the GLib main loop.
#
# Usage: buslisten.py SECONDS [--subscribe]
#   --subscribe: call Manager.Subscribe() first (its outcome is reported, a refusal does not stop the
#   listening: a refused subscriber must still receive nothing).
# Prints JSON lines on stdout:
#   {"ready": true, "unique_name": ":1.5", "subscribe": null | "ok" | {"error": NAME, "message": TEXT}}
#       once the match rule is in place (and Subscribe answered);
#   {"signal": MEMBER, "interface": ..., "path": ..., "sender": ..., "destination": ... or null,
#    "args": [plain values]}
#       for every signal sent by org.opbackup.backup1's owner that reaches this connection, broadcast or
#       unicast.
# Exits 0 after SECONDS, or at once on SIGTERM/SIGINT (having printed everything received).

import json
import os
import signal
import sys

import dbus
import dbus.mainloop.glib
from gi.repository import GLib

sys.dont_write_bytecode = True         # run as root too: leave no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from busclient import from_dbus  # noqa: E402

BUS_NAME = "org.opbackup.backup1"
MANAGER_PATH = "/org/opbackup/backup1"
IFACE_MANAGER = "org.opbackup.backup1.Manager"


def emit(obj):
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def main(argv):
        if len(argv) < 2 or len(argv) > 3 or (len(argv) == 3 and argv[2] != "--subscribe"):
                print("usage: buslisten.py SECONDS [--subscribe]", file=sys.stderr)
                return 2
        seconds = float(argv[1])
        address = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")
        if not address:
                print("buslisten: DBUS_SYSTEM_BUS_ADDRESS is not set", file=sys.stderr)
                return 2

        dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
        conn = dbus.bus.BusConnection(address)
        loop = GLib.MainLoop()
        try:
                owner = str(conn.get_name_owner(BUS_NAME))
        except dbus.exceptions.DBusException as e:
                print(f"buslisten: {BUS_NAME} is not on the bus: {e}", file=sys.stderr)
                return 2

        def on_message(c, msg):
                if msg.get_type() != 4:         # DBUS_MESSAGE_TYPE_SIGNAL
                        return
                if msg.get_sender() != owner:
                        return
                emit({"signal": msg.get_member(), "interface": msg.get_interface(), "path": msg.get_path(),
                      "sender": msg.get_sender(), "destination": msg.get_destination(),
                      "args": [from_dbus(a) for a in msg.get_args_list()]})

        # Every signal of the daemon's connection that the bus lets through: broadcasts match this rule,
        # unicast signals addressed to us arrive without one.
        conn.add_match_string(f"type='signal',sender='{BUS_NAME}'")
        conn.add_message_filter(on_message)

        subscribe = None
        if len(argv) == 3:
                try:
                        conn.call_blocking(BUS_NAME, MANAGER_PATH, IFACE_MANAGER, "Subscribe", "", [], timeout=60)
                        subscribe = "ok"
                except dbus.exceptions.DBusException as e:
                        subscribe = {"error": e.get_dbus_name(), "message": e.get_dbus_message()}
        emit({"ready": True, "unique_name": str(conn.get_unique_name()), "subscribe": subscribe})

        def stop(*_):
                loop.quit()
                return False

        GLib.timeout_add(int(seconds * 1000), stop)
        GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGTERM, stop)
        GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGINT, stop)
        loop.run()
        return 0


if __name__ == '__main__':
        sys.exit(main(sys.argv))
