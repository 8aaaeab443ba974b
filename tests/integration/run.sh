#!/bin/sh
# Runs one integration test: as root, in a private mount namespace, so the bind mounts the fixture puts
# over polkit's folders vanish with the test. Exit 77 (meson: skipped) when not root.
set -e
if [ "$#" -lt 1 ]; then
        echo "usage: run.sh TEST.py [TEST-FUNCTION...]" >&2
        exit 2
fi
if [ "$(id -u)" != 0 ]; then
        echo "skip: integration tests need root"
        exit 77
fi
# The fixture refuses to bind-mount unless it runs in another mount namespace than this one.
OPBACKUP_TEST_OUTER_MNTNS=$(readlink /proc/self/ns/mnt)
export OPBACKUP_TEST_OUTER_MNTNS
exec unshare -m --propagation private -- /usr/bin/python3 "$@"
