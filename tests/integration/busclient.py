#!/usr/bin/python3
# One D-Bus method call on the system bus, made with python3-dbus (Debian package python3-dbus), for the
# integration tests. The fixture runs this as the calling test user (setpriv), so the daemon sees that
# user's credentials.
#
# Why not busctl: busctl prints only the error *message* ("Access denied") for a failed call, not the
# error name, and tests must tell AccessDenied from, say, NoSuchBackup. gdbus shows the name but prints
# results as GVariant text and cannot pass file descriptors. python3-dbus gives the error name, typed
# results and passes fds.
#
# Usage: busclient.py DEST PATH INTERFACE METHOD SIGNATURE JSON-ARGS
#   JSON-ARGS is a JSON array with one value per argument of SIGNATURE. For an "h" argument give either
#   an integer (a file descriptor this process inherited) or a string (a path this process opens read-only,
#   as the calling user, the way opbackupctl does).
# Prints one JSON object on stdout and exits 0 when the call completed (either way):
#   {"result": [out values...]}            (unix fds returned are read: {"unix_fd": {"size", "sha256",
#                                            "writable"}})
#   {"error": "org.x.Error.Name", "message": "..."}
# Exits 2 if the call could not be made at all (bad arguments, no bus).

import fcntl
import hashlib
import json
import os
import sys

import dbus


def split_signature(sig):
        """Split a D-Bus signature into its complete types."""
        out = []
        i = 0
        while i < len(sig):
                start = i
                i = skip_type(sig, i)
                out.append(sig[start:i])
        return out


def skip_type(sig, i):
        c = sig[i]
        if c == 'a':
                return skip_type(sig, i + 1)
        if c in '({':
                close = ')' if c == '(' else '}'
                i += 1
                while sig[i] != close:
                        i = skip_type(sig, i)
                return i + 1
        return i + 1


def to_dbus(sig, value):
        """Turn a JSON value into what python3-dbus marshals as SIG (only the non-obvious cases)."""
        if sig == 'h':
                if isinstance(value, int):
                        return dbus.types.UnixFd(value)
                fd = os.open(value, os.O_RDONLY | os.O_CLOEXEC)
                try:
                        return dbus.types.UnixFd(fd)
                finally:
                        os.close(fd)
        if sig.startswith('a{'):
                ktype, vtype = split_signature(sig[2:-1])
                return dbus.Dictionary({to_dbus(ktype, k): to_dbus(vtype, v) for k, v in value.items()},
                                       signature=ktype + vtype)
        if sig.startswith('a'):
                return dbus.Array([to_dbus(sig[1:], v) for v in value], signature=sig[1:])
        if sig.startswith('('):
                return dbus.Struct([to_dbus(t, v) for t, v in zip(split_signature(sig[1:-1]), value)],
                                   signature=sig[1:-1])
        return value


def from_dbus(value):
        """Plain JSON-able Python values from what python3-dbus returns."""
        if isinstance(value, dbus.Boolean):
                return bool(value)
        if isinstance(value, dbus.types.UnixFd):
                fd = value.take()
                try:
                        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
                        h = hashlib.sha256()
                        size = 0
                        while True:
                                chunk = os.pread(fd, 1 << 20, size)
                                if not chunk:
                                        break
                                h.update(chunk)
                                size += len(chunk)
                        return {"unix_fd": {"size": size, "sha256": h.hexdigest(),
                                            "writable": (flags & os.O_ACCMODE) != os.O_RDONLY}}
                finally:
                        os.close(fd)
        if isinstance(value, (dbus.Dictionary, dict)):
                return {from_dbus(k): from_dbus(v) for k, v in value.items()}
        if isinstance(value, (dbus.Array, dbus.Struct, list, tuple)):
                return [from_dbus(v) for v in value]
        if isinstance(value, (dbus.String, dbus.ObjectPath, dbus.Signature, str)):
                return str(value)
        if isinstance(value, dbus.Double):
                return float(value)
        if isinstance(value, int):
                return int(value)
        if isinstance(value, bytes):
                return list(value)
        return value


def main(argv):
        if len(argv) != 7:
                print("usage: busclient.py DEST PATH INTERFACE METHOD SIGNATURE JSON-ARGS", file=sys.stderr)
                return 2
        dest, path, iface, method, sig, args_json = argv[1:]
        args = json.loads(args_json)
        types = split_signature(sig)
        if len(types) != len(args):
                print(f"busclient: signature {sig!r} wants {len(types)} arguments, got {len(args)}",
                      file=sys.stderr)
                return 2
        address = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")
        if not address:
                print("busclient: DBUS_SYSTEM_BUS_ADDRESS is not set", file=sys.stderr)
                return 2
        conn = dbus.bus.BusConnection(address)
        call_args = [to_dbus(t, a) for t, a in zip(types, args)]
        timeout = float(os.environ.get("BUSCLIENT_TIMEOUT", "120"))
        try:
                reply = conn.call_blocking(dest, path, iface, method, sig, call_args, timeout=timeout,
                                           byte_arrays=False)
        except dbus.exceptions.DBusException as e:
                print(json.dumps({"error": e.get_dbus_name(), "message": e.get_dbus_message()}))
                return 0
        if reply is None:
                out = []
        elif type(reply) is tuple:  # several out args (a single struct is a dbus.Struct, a tuple subclass)
                out = [from_dbus(v) for v in reply]
        else:
                out = [from_dbus(reply)]
        print(json.dumps({"result": out}))
        return 0


if __name__ == '__main__':
        sys.exit(main(sys.argv))
