#!/usr/bin/python3
# Listens for opbackupd's signals on the system bus, for the integration tests: what a client of the user
# it runs as (the fixture runs it through setpriv) really receives. Debian package python3-dbus, with
# python3-gi for the GLib main loop.
#
# Usage: buslisten.py SECONDS [--subscribe | --watch] [--create-backup INSTANCE_PATH NAME]
#   --subscribe: call Manager.Subscribe() first (its outcome is reported, a refusal does not stop the
#   listening: a refused subscriber must still receive nothing). --watch: Manager.Watch() instead.
#   --create-backup: then call CreateBackup([], {"name": NAME}) on INSTANCE_PATH from this connection,
#   which makes it the job's starter (the daemon sends a job's signals to its starter too).
# Prints JSON lines on stdout:
#   {"ready": true, "unique_name": ":1.5", "subscribe": null | "ok" | {"error": NAME, "message": TEXT},
#    "created": null | [id, path] | {"error": NAME, "message": TEXT}}
#       once the match rule is in place (and Subscribe and CreateBackup answered);
#   {"signal": MEMBER, "interface": ..., "path": ..., "sender": ..., "destination": ... or null,
#    "args": [plain values]}
#       for every signal sent by org.opbackup.backup1's owner that reaches this connection, broadcast or
#       unicast.
# Exits 0 after SECONDS, or at once on SIGTERM/SIGINT (having printed everything received).

import argparse
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
IFACE_INSTANCE = "org.opbackup.backup1.Instance"


def emit(obj):
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def call(conn, path, iface, method, signature, args):
        """The reply's arguments as plain values, or {"error", "message"}."""
        try:
                reply = conn.call_blocking(BUS_NAME, path, iface, method, signature, args, timeout=60)
        except dbus.exceptions.DBusException as e:
                return {"error": e.get_dbus_name(), "message": e.get_dbus_message()}
        return from_dbus(reply) if reply is not None else "ok"


def main(argv):
        parser = argparse.ArgumentParser(prog="buslisten.py")
        parser.add_argument("seconds", type=float)
        parser.add_argument("--subscribe", action="store_true")
        parser.add_argument("--watch", action="store_true")
        parser.add_argument("--create-backup", nargs=2, metavar=("INSTANCE_PATH", "NAME"))
        args = parser.parse_args(argv[1:])
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

        subscribe = created = None
        if args.subscribe or args.watch:
                subscribe = call(conn, MANAGER_PATH, IFACE_MANAGER, "Watch" if args.watch else "Subscribe", "", [])
        if args.create_backup:
                path, name = args.create_backup
                created = call(conn, path, IFACE_INSTANCE, "CreateBackup", "asa{sv}",
                               [dbus.Array([], signature="s"), dbus.Dictionary({"name": name}, signature="sv")])
        emit({"ready": True, "unique_name": str(conn.get_unique_name()), "subscribe": subscribe,
              "created": created})

        def stop(*_):
                loop.quit()
                return False

        GLib.timeout_add(int(args.seconds * 1000), stop)
        GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGTERM, stop)
        GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGINT, stop)
        loop.run()
        return 0


if __name__ == '__main__':
        sys.exit(main(sys.argv))
