#!/usr/bin/python3
# Authorization checks are asynchronous (org.opbackup.backup1(5), AUTHORIZATION): while polkit takes its time
# over one caller, the daemon keeps answering everybody else. A rule makes polkit think for 3 s about
# opbackup-denied's access (and then refuse); meanwhile root's ListInstances and a property read by
# opbackup-denied are answered. polkitd itself is busy running that rule, so the other calls are ones that
# need no polkit: root's, and a property read.

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture  # noqa: E402
from fixture import (Fixture, DBusError, expect, expect_eq, MANAGER_PATH, IFACE_MANAGER,  # noqa: E402
                     IFACE_INSTANCE, USER_DENIED, ERROR_ACCESS_DENIED)

HOLD = 3.0
SLOW_RULE = """// test-polkit-async: keep polkit busy over one caller, then refuse.
polkit.addRule(function(action, subject) {
        if (action.id == "org.opbackup.backup1.access" && subject.user == "%s") {
                polkit.spawn(["/bin/sleep", "%g"]);
                return polkit.Result.NO;
        }
});
""" % (USER_DENIED, HOLD)


def test_others_are_served_while_polkit_thinks():
        with Fixture() as fx:
                fx.add_rule("10-slow.rules", SLOW_RULE)
                start = time.monotonic()
                held = fx.call_background(USER_DENIED, MANAGER_PATH, IFACE_MANAGER, "ListInstances", "")
                time.sleep(0.8)         # let the call reach the daemon and the daemon reach polkit
                if held.done():
                        raise AssertionError("the held call ended before polkit's rule could have run: "
                                             f"{held.proc.communicate()}")

                t = time.monotonic()
                got = fx.call("root", MANAGER_PATH, IFACE_MANAGER, "ListInstances", "")[0]
                expect_eq(got, [["inst1", fx.instance_path("inst1")]], "root's ListInstances")
                print(f"# root's ListInstances answered in {time.monotonic() - t:.2f} s")
                t = time.monotonic()
                name = fx.get_property(USER_DENIED, fx.instance_path("inst1"), IFACE_INSTANCE, "Name")
                expect_eq(name, "inst1", f"Name read by {USER_DENIED}")
                print(f"# property read by {USER_DENIED} answered in {time.monotonic() - t:.2f} s")
                if held.done():
                        try:
                                outcome = held.wait()
                        except DBusError as e:
                                outcome = e
                        raise AssertionError(f"the held call had already ended {time.monotonic() - start:.2f} s "
                                             f"after it started, when the other calls were answered: {outcome}")

                try:
                        result = held.wait(timeout=30)
                except DBusError as e:
                        err = e
                else:
                        raise AssertionError(f"the held call succeeded: {result}")
                elapsed = time.monotonic() - start
                expect_eq(err.name, ERROR_ACCESS_DENIED, "error of the held call")
                expect(elapsed >= HOLD - 0.5,
                       f"the held call ended after {elapsed:.2f} s: polkit's slow rule did not hold it")
                print(f"# held call ended after {elapsed:.2f} s with {err.name}: {err.message}")


fixture.main(globals())
