#!/usr/bin/python3
# A stand-in for systemd's manager on the private system bus, for the integration tests: it owns
# org.freedesktop.systemd1 and answers Manager.StopUnit/StartUnit the way PID 1 does — the object path of
# a queued job at once, then, when the job is over, the broadcast signal JobRemoved(u id, o job, s unit,
# s result). python3-dbus with the GLib main loop (Debian packages python3-dbus, python3-gi).
#
# It also runs transient services, as PID 1 runs them for systemd-run: Manager.StartTransientUnit with a
# Type=oneshot service's ExecStart=, User=, Group=, WorkingDirectory=, Environment= and
# StandardOutputFileDescriptor=/StandardErrorFileDescriptor= really runs the command as that user (setpriv),
# with that environment only, its output into the passed descriptors; the start job ends (JobRemoved "done",
# or "failed") when the command exits, or is stopped at TimeoutStartUSec= (Result "timeout") or by
# StopUnit ("canceled"). The unit's object answers Properties.GetAll for org.freedesktop.systemd1.Service
# (Result, ExecMainCode, ExecMainStatus) until UnrefUnit. The sandbox properties are not applied: they are
# logged, for a test to check what was asked.
#
# Usage: fake-systemd.py CONFIG.json LOG
#   CONFIG: {"units": {"NAME": {"stop": {"result": "done", "delay": 0.1}, "start": {...}}},
#            "watch": PATH, "transient": {"refuse": false}}
#     "transient": {"refuse": true} refuses every StartTransientUnit (org.freedesktop.DBus.Error.AccessDenied).
#     A unit not in "units" is refused with org.freedesktop.systemd1.NoSuchUnit, as systemd refuses a unit
#     it cannot load. "watch": for each call, whether PATH exists is logged (so a test can tell on which
#     side of a restore's swap a unit was stopped and started).
#   LOG: one JSON object a line: {"call": "StopUnit", "unit", "mode", "sender", "job", "watch_exists"} for
#     each call, {"job_removed": PATH, "unit", "result"} for each signal; {"call": "StartTransientUnit",
#     "unit", "mode", "properties": {NAME: VALUE}, "job"} (descriptors as "fd"), {"exited": UNIT, "pid",
#     "result", "code", "status"}, {"call": "UnrefUnit", "unit"}.
# Prints {"ready": true} on stdout once it owns the name; runs until SIGTERM.

import json
import os
import signal
import subprocess
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


class AccessDenied(dbus.exceptions.DBusException):
        _dbus_error_name = "org.freedesktop.DBus.Error.AccessDenied"


class UnitExists(dbus.exceptions.DBusException):
        _dbus_error_name = "org.freedesktop.systemd1.UnitExists"


CLD_EXITED, CLD_KILLED = 1, 2
UNIT_PREFIX = f"{PATH}/unit"


def unit_path(name):
        """sd_bus_path_encode(): every byte but [A-Za-z0-9] (and a leading digit) as _XX."""
        out = []
        for i, ch in enumerate(name.encode()):
                c = chr(ch)
                if (c.isascii() and c.isalnum()) and not (i == 0 and c.isdigit()):
                        out.append(c)
                else:
                        out.append(f"_{ch:02x}")
        return f"{UNIT_PREFIX}/{''.join(out)}"


def plain(v):
        """A D-Bus value as JSON: descriptors as "fd"."""
        if isinstance(v, dbus.types.UnixFd):
                return "fd"
        if isinstance(v, (dbus.Array, list)):
                return [plain(x) for x in v]
        if isinstance(v, (dbus.Struct, tuple)):
                return [plain(x) for x in v]
        if isinstance(v, dbus.Boolean):
                return bool(v)
        if isinstance(v, (dbus.String, dbus.ObjectPath)):
                return str(v)
        if isinstance(v, (dbus.Byte, dbus.Int16, dbus.Int32, dbus.Int64, dbus.UInt16, dbus.UInt32, dbus.UInt64)):
                return int(v)
        return v


class TransientUnit(dbus.service.Object):
        """A transient oneshot service: its command, then its properties until UnrefUnit."""

        def __init__(self, conn, name):
                super().__init__(conn, unit_path(name))
                self.name = name
                self.result = "success"
                self.code = 0
                self.status = 0
                self.proc = None
                self.timer = None
                self.stopping = False

        @dbus.service.method("org.freedesktop.DBus.Properties", in_signature="s", out_signature="a{sv}")
        def GetAll(self, interface):
                if interface != "org.freedesktop.systemd1.Service":
                        return dbus.Dictionary({}, signature="sv")
                return dbus.Dictionary({"Result": dbus.String(self.result), "ExecMainCode": dbus.Int32(self.code),
                                        "ExecMainStatus": dbus.Int32(self.status), "Type": dbus.String("oneshot")},
                                       signature="sv")


class Manager(dbus.service.Object):
        def __init__(self, conn, config, log):
                super().__init__(conn, PATH)
                self.conn = conn
                self.config = config
                self.log = log
                self.next_id = 1
                self.transient = {}

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
                t = self.transient.get(unit)
                if t is not None:
                        return self._stop_transient(t, mode, sender)
                return self._queue("stop", "StopUnit", unit, mode, sender)

        def _new_job(self):
                job_id = self.next_id
                self.next_id += 1
                return job_id, f"{PATH}/job/{job_id}"

        def _job_removed(self, job_id, job, unit, result):
                self._write({"job_removed": job, "unit": unit, "result": result})
                self.JobRemoved(dbus.UInt32(job_id), dbus.ObjectPath(job), unit, result)

        @dbus.service.method(MANAGER, in_signature="ssa(sv)a(sa(sv))", out_signature="o", sender_keyword="sender")
        def StartTransientUnit(self, unit, mode, properties, aux, sender=None):
                props = {str(k): v for k, v in properties}
                entry = {"call": "StartTransientUnit", "unit": str(unit), "mode": str(mode), "sender": sender,
                         "properties": {k: plain(v) for k, v in props.items()}}
                if self.config.get("transient", {}).get("refuse"):
                        entry["error"] = "AccessDenied"
                        self._write(entry)
                        raise AccessDenied("Refused by the test's configuration.")
                if unit in self.transient:
                        entry["error"] = "UnitExists"
                        self._write(entry)
                        raise UnitExists(f"Unit {unit} was already loaded or has a fragment file.")
                job_id, job = self._new_job()
                entry["job"] = job
                self._write(entry)
                t = TransientUnit(self.conn, str(unit))
                t.job_id, t.job = job_id, job
                self.transient[str(unit)] = t
                out = props["StandardOutputFileDescriptor"].take()
                err = props["StandardErrorFileDescriptor"].take()
                path, argv, _ = props["ExecStart"][0]
                env = {}
                for e in props.get("Environment", []):
                        k, _, v = str(e).partition("=")
                        env[k] = v
                user, group = str(props["User"]), str(props["Group"])
                pw = __import__("pwd").getpwnam(user) if not user.isdigit() else __import__("pwd").getpwuid(int(user))
                env.setdefault("HOME", pw.pw_dir)
                env.setdefault("USER", pw.pw_name)
                env.setdefault("LOGNAME", pw.pw_name)
                cmd = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={group if group.isdigit() else user}",
                       "--init-groups", "--", str(path)] + [str(a) for a in argv[1:]]
                t.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
                                          cwd=str(props.get("WorkingDirectory", "/")), start_new_session=True)
                os.close(out)
                if err != out:
                        os.close(err)
                GLib.child_watch_add(GLib.PRIORITY_DEFAULT, t.proc.pid, self._exited, t)
                timeout = int(props.get("TimeoutStartUSec", 0))
                if timeout:
                        t.timer = GLib.timeout_add(max(1, timeout // 1000), self._timed_out, t)
                return dbus.ObjectPath(job)

        def _timed_out(self, t):
                t.timer = None
                t.result = "timeout"
                t.stopping = True
                try:
                        os.killpg(t.proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                        pass
                return False

        def _exited(self, pid, wait_status, t):
                t.proc.returncode = 0      # reaped by GLib
                if t.timer is not None:
                        GLib.source_remove(t.timer)
                        t.timer = None
                if os.WIFEXITED(wait_status):
                        t.code, t.status = CLD_EXITED, os.WEXITSTATUS(wait_status)
                        if t.result == "success" and t.status != 0:
                                t.result = "exit-code"
                else:
                        t.code, t.status = CLD_KILLED, os.WTERMSIG(wait_status)
                        if t.result == "success":
                                t.result = "signal"
                self._write({"exited": t.name, "pid": pid, "result": t.result, "code": t.code, "status": t.status})
                # What is left of its process group goes with it, as with KillMode=control-group.
                try:
                        os.killpg(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                        pass
                if t.job is not None:
                        job_result = "canceled" if t.stopping and t.result != "timeout" else \
                                ("done" if t.result == "success" else "failed")
                        self._job_removed(t.job_id, t.job, t.name, job_result)
                        t.job = None
                if getattr(t, "stop_job", None):
                        self._job_removed(t.stop_job[0], t.stop_job[1], t.name, "done")
                        t.stop_job = None

        def _stop_transient(self, t, mode, sender):
                job_id, job = self._new_job()
                self._write({"call": "StopUnit", "unit": t.name, "mode": str(mode), "sender": sender, "job": job})
                if t.proc is not None and t.proc.returncode is None:
                        t.stopping = True
                        t.stop_job = (job_id, job)
                        try:
                                os.killpg(t.proc.pid, signal.SIGTERM)
                        except ProcessLookupError:
                                pass
                else:
                        GLib.timeout_add(10, lambda: self._job_removed(job_id, job, t.name, "done") and False)
                return dbus.ObjectPath(job)

        @dbus.service.method(MANAGER, in_signature="s", out_signature="")
        def UnrefUnit(self, unit):
                self._write({"call": "UnrefUnit", "unit": str(unit)})
                t = self.transient.pop(str(unit), None)
                if t is not None:
                        t.remove_from_connection()

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
