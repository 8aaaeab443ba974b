#!/usr/bin/env bash
# The demo from a fresh Debian 12 machine: dependencies, build, then opbackup at work on a private system
# bus with the real polkitd, against a generated sample OctoPrint instance. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
        echo "demo.sh: run as root (it installs packages and starts a private bus with polkitd)." >&2
        exit 1
fi
bash tests/install-deps.sh
bash tests/build.sh
OPBACKUPD="$PWD/build/service/opbackupd" OPBACKUPCTL="$PWD/build/client/opbackupctl" \
OPBACKUP_SOURCE_ROOT="$PWD" exec tests/integration/run.sh tests/demo.py
