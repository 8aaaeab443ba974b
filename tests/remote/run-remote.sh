#!/bin/sh
# Runs one test against real servers (tests/remote/servers.py). Root: the servers drop to their own users
# (www-data, an SSH account). Exit 77 (meson: skipped) otherwise.
set -e
if [ "$(id -u)" != 0 ]; then
        echo "skip: the remote tests need root (they start apache2, sshd as root)"
        exit 77
fi
exec /usr/bin/python3 "$@"
