# SPDX-License-Identifier: GPL-2.0-or-later
"""Who is at the other end of a TCP connection on 127.0.0.1: for the test servers (octoprint-api.py,
tests/plugins/plugin-fixture.py), which log it so that a test can tell who asked, the fetch helper or a
worker."""


def client_uid(client, server):
        """The uid owning the client's end of the connection client -> server (both (host, port) on
        127.0.0.1), from /proc/net/tcp, or None. Matched on both addresses and never a TIME_WAIT entry (uid
        0): an earlier connection from the same client port to another server may still be listed."""
        if client[0] != "127.0.0.1":
                return None
        local, remote = f"0100007F:{client[1]:04X}", f"0100007F:{server[1]:04X}"
        try:
                with open("/proc/net/tcp") as f:
                        next(f)
                        for line in f:
                                fields = line.split()
                                if fields[1] == local and fields[2] == remote and fields[3] != "06":
                                        return int(fields[7])
        except OSError:
                return None
        return None
