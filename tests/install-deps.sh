#!/usr/bin/env bash
# Installs what opbackup needs to build, run and test on Debian 12 (as root).
set -euo pipefail

packages=(
        # build (clang: the libFuzzer targets of tests/fuzz/, tests/run-fuzz.sh)
        gcc clang meson ninja-build pkg-config
        libsystemd-dev libzip-dev libjson-c-dev libcurl4-openssl-dev libssl-dev libyaml-dev libinih-dev libdeflate-dev zlib1g-dev
        # run: the system bus and polkit
        dbus-daemon polkitd
        # tests: real peers and tools
        python3 python3-venv python3-pip python3-dbus python3-gi unzip zip libarchive-tools
        util-linux passwd procps man-db groff-base bash-completion
        # bench/bench.py's peers (zip, unzip, bsdtar above)
        p7zip-full
        # tests/remote: real servers for remotes (WebDAV: apache2 mod_dav, rclone; SFTP: sshd; S3: s3rver from
        # npm, below) and curl as a client opbackup did not write
        apache2 apache2-utils rclone openssh-server curl
        # tests/integration/test-notify: a real notification server (dunst, with dunstctl) on a display (Xvfb);
        # tests/system: desktop-file-validate for opbackup-notify's autostart file
        xvfb dunst desktop-file-utils
        # tests/system: systemd-analyze; tests/integration: systemd-socket-activate (no systemd as PID 1 needed)
        systemd
        # tests/system/e2e: this machine's root booted with systemd as PID 1 in systemd-nspawn, with the
        # system bus (dbus) and polkitd inside, strace to watch the daemon there; overlayfs from the kernel,
        # mount/nsenter from util-linux
        systemd-container dbus strace
        # the Cockpit page (client/cockpit) and its browser test: cockpit-ws/bridge serve it, chromium shows it
        cockpit-ws cockpit-bridge chromium fonts-dejavu-core
)

if [ "$(id -u)" != 0 ]; then
        echo "install-deps.sh: run as root (it uses apt-get)." >&2
        exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${packages[@]}"
# npm for tests/remote's S3 server (its package-lock.json is installed with npm ci by the test). A machine
# with another Node.js (NodeSource) has npm already; Debian's npm would conflict with it.
command -v npm >/dev/null || apt-get install -y -q --no-install-recommends nodejs npm
# The Cockpit page's build (esbuild, React, PatternFly) and its browser test (puppeteer-core), from their
# committed package-lock.json files.
cd "$(dirname "$0")/.."
npm ci --no-audit --no-fund --prefix client/cockpit
npm ci --no-audit --no-fund --prefix tests/cockpit
