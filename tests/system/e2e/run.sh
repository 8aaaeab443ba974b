#!/usr/bin/env bash
# opbackup end to end under a real systemd as PID 1 (opbackupd(8), SYSTEMD UNITS): the installed units, D-Bus activation
# through the real system dbus-daemon, polkit, the sandbox of opbackupd.service, the fetch socket with its
# DynamicUser, the timer of scheduled backups.
#
#   tests/system/e2e/run.sh [BUILD_DIR]        (as root; meson test --suite e2e runs it)
#
# This machine's PID 1 is not systemd, so its own root file system is booted in a container: a
# throwaway overlay of / (lower: /, upper: a tmpfs), systemd-nspawn --boot with a private network and a
# fresh, empty /home. (`systemd-nspawn --directory=/ --volatile=overlay` refuses to boot the host's root,
# hence the overlay made here.) The sources are built on the host in BUILD_DIR (default
# build/e2e, --prefix=/usr --sysconfdir=/etc, like a package), installed inside the container with the
# README's install section as written, and checked as root, as alice (member of group opbackup) and as
# bob (no grant). Nothing on the host changes but BUILD_DIR; the container, its overlay and the temporary
# folder are removed on exit (OPBACKUP_E2E_KEEP=1 keeps the folder, with the journal and every output).
#
# Prints one line per check, PASS or FAIL with its time, then "N passed, N failed"; exits 1 if a check
# failed or the container could not be booted (then the FAIL line says exactly why), 77 when not root.
set -uo pipefail

SRC=$(cd "$(dirname "$0")/../../.." && pwd)
BUILD=${1:-$SRC/build/e2e}
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LANG=C.UTF-8

PASSED=0
FAILED=0
T_CHECK=0
NSPAWN_PID=
LEADER=
WORK=
OV=
M=

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
secs() { printf '%d.%03d' $(( $1 / 1000 )) $(( $1 % 1000 )); }
begin() { T_CHECK=$(now_ms); }
# One line per check, with the time since its begin.
pass() { PASSED=$((PASSED + 1)); printf 'PASS  %s  [%s s]\n' "$*" "$(secs $(( $(now_ms) - T_CHECK )))"; }
fail() { FAILED=$((FAILED + 1)); printf 'FAIL  %s  [%s s]\n' "$*" "$(secs $(( $(now_ms) - T_CHECK )))"; }
detail() { sed 's/^/      | /'; }
oneline() { tr '\n' ' ' | sed 's/  */ /g; s/ $//' | cut -c1-400; }
summary() { echo "$PASSED passed, $FAILED failed"; }
# The container cannot be had: say why, count it, and stop (never a silent skip).
fatal() { fail "$*"; summary; exit 1; }

cleanup() {
        local rc=$?
        if [ -n "$NSPAWN_PID" ] && kill -0 "$NSPAWN_PID" 2>/dev/null; then
                # SIGTERM to systemd-nspawn makes the container's systemd shut down cleanly.
                kill -TERM "$NSPAWN_PID" 2>/dev/null
                for _ in $(seq 1 100); do kill -0 "$NSPAWN_PID" 2>/dev/null || break; sleep 0.1; done
                kill -0 "$NSPAWN_PID" 2>/dev/null && kill -KILL "$NSPAWN_PID" 2>/dev/null
                wait "$NSPAWN_PID" 2>/dev/null
        fi
        if [ -n "$M" ] && mountpoint -q "$M"; then umount "$M" || umount -l "$M"; fi
        if [ -n "$OV" ] && mountpoint -q "$OV"; then umount "$OV" || umount -l "$OV"; fi
        if [ -n "$WORK" ]; then
                if [ "${OPBACKUP_E2E_KEEP:-0}" = 1 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
        fi
        exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Runs a command in the container (all its namespaces), with a clean environment, as root.
cx() {
        nsenter -t "$LEADER" -a env -i -C / PATH="$PATH" LANG=C.UTF-8 HOME=/root "$@"
}
# As a user of the container; no logind session, so polkit's group rules decide, as for a timer or ssh.
cu() { local u=$1; shift; cx runuser -u "$u" -- "$@"; }
ctl() { cx opbackupctl --no-ask-password "$@"; }
uctl() { local u=$1; shift; cu "$u" opbackupctl --no-ask-password "$@"; }
json() { cx /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# ---------------------------------------------------------------------------------- prerequisites
if [ "$(id -u)" != 0 ]; then
        echo "skip: the end-to-end suite needs root (it mounts an overlay and boots a container)"
        exit 77
fi
begin
for tool in systemd-nspawn nsenter systemd-id128 meson ninja strace; do
        command -v "$tool" >/dev/null || fatal "prerequisites: $tool is not installed (bash tests/install-deps.sh installs systemd-container, util-linux, meson, ninja-build, strace)"
done
[ -x /usr/lib/systemd/systemd ] || fatal "prerequisites: /usr/lib/systemd/systemd is missing (package systemd)"
[ -f /usr/share/dbus-1/system.conf ] && command -v dbus-daemon >/dev/null \
        || fatal "prerequisites: no system dbus-daemon (package dbus)"
[ -x /usr/lib/polkit-1/polkitd ] || fatal "prerequisites: no polkitd (package polkitd)"
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null
grep -qw overlay /proc/filesystems || fatal "prerequisites: the kernel has no overlay file system (/proc/filesystems)"
pass "prerequisites: root, systemd-nspawn $(systemd-nspawn --version | head -1 | cut -d' ' -f2), overlayfs, dbus-daemon, polkitd"

WORK=$(mktemp -d /var/tmp/opbackup-e2e.XXXXXX) || fatal "mktemp in /var/tmp failed"
chmod 755 "$WORK"
mkdir -p "$WORK/home" "$WORK/ov" "$WORK/out"
OV=$WORK/ov
M=$OV/merged
OUT=$WORK/out

# ---------------------------------------------------------------------------------- build (host)
begin
if [ ! -f "$BUILD/build.ninja" ]; then
        meson setup "$BUILD" "$SRC" --prefix=/usr --sysconfdir=/etc >"$OUT/build.log" 2>&1
fi
if ninja -C "$BUILD" >>"$OUT/build.log" 2>&1 && [ -x "$BUILD/service/opbackupd" ]; then
        pass "build on the host: $BUILD (meson setup --prefix=/usr --sysconfdir=/etc, ninja)"
else
        fatal "build in $BUILD: $(tail -5 "$OUT/build.log" | oneline)"
fi
prefix=$(meson introspect --buildoptions "$BUILD" | /usr/bin/python3 -c 'import json,sys; o={x["name"]: x["value"] for x in json.load(sys.stdin)}; print(o["prefix"], o["sysconfdir"])')
[ "$prefix" = "/usr /etc" ] || fatal "build: $BUILD was configured with prefix/sysconfdir '$prefix', not '/usr /etc': remove it"

# ---------------------------------------------------------------------------------- the container
begin
mount -t tmpfs -o size=2G,mode=755 opbackup-e2e "$OV" || fatal "container: cannot mount a tmpfs on $OV"
mkdir -p "$OV/upper" "$OV/work" "$M"
mount -t overlay overlay -o "lowerdir=/,upperdir=$OV/upper,workdir=$OV/work" "$M" \
        || fatal "container: cannot mount an overlay of / on $M: $(dmesg 2>/dev/null | tail -1)"
systemd-id128 new >"$M/etc/machine-id"
# A minimal system: none of the host image's own services or timers (web servers, sshd, apt timers),
# only what comes with systemd itself (journald, logind, dbus, polkit by activation).
for d in multi-user.target.wants sockets.target.wants timers.target.wants getty.target.wants \
         sysinit.target.wants default.target.wants; do
        [ -d "$M/etc/systemd/system/$d" ] && find "$M/etc/systemd/system/$d" -mindepth 1 -maxdepth 1 -delete
done
for u in console-getty.service systemd-timesyncd.service apt-daily.timer apt-daily-upgrade.timer; do
        ln -sf /dev/null "$M/etc/systemd/system/$u"
done
# The host's own copy of the project, or test users of earlier runs, would make the install look done.
rm -rf "$M/etc/opbackup" "$M/etc/systemd/system/opbackup"* "$M/etc/systemd/system/opbackupd"*
MACHINE=opbackup-e2e-$$
# The sources and the build are bound in at their own path: the overlay shows the host's root, but not
# what lies under the container's own /tmp (a tmpfs nspawn mounts there), where a checkout may be.
systemd-nspawn --directory="$M" --boot --machine="$MACHINE" --register=no --keep-unit \
        --private-network --bind="$WORK/home:/home" --bind="$SRC" --bind="$BUILD" --console=passive \
        </dev/null >"$OUT/nspawn.log" 2>&1 &
NSPAWN_PID=$!
for _ in $(seq 1 100); do
        LEADER=$(ps -o pid= --ppid "$NSPAWN_PID" 2>/dev/null | tr -d ' ' | head -1)
        [ -n "$LEADER" ] && [ "$(cat "/proc/$LEADER/comm" 2>/dev/null)" = systemd ] && break
        kill -0 "$NSPAWN_PID" 2>/dev/null || fatal "container: systemd-nspawn exited: $(tail -5 "$OUT/nspawn.log" | oneline)"
        sleep 0.1
done
[ -n "$LEADER" ] && [ "$(cat "/proc/$LEADER/comm" 2>/dev/null)" = systemd ] \
        || fatal "container: no systemd as the container's PID 1 after 10 s: $(tail -5 "$OUT/nspawn.log" | oneline)"
# Until systemd's own bus is up, systemctl cannot connect: ask again.
state=
for _ in $(seq 1 60); do
        state=$(timeout 30 nsenter -t "$LEADER" -a systemctl is-system-running --wait 2>&1)
        case $state in running|degraded) break ;; esac
        sleep 0.5
done
case $state in
running|degraded)
        pass "boot: systemd $(cx systemctl --version | head -1 | cut -d' ' -f2) is PID 1 of the container ($state$( [ "$state" = degraded ] && echo ": $(cx systemctl --failed --plain --no-legend | cut -d' ' -f1 | oneline)")), private network, fresh /home" ;;
*)
        fatal "boot: the container's systemd did not come up (is-system-running: $(echo "$state" | oneline)); $(tail -5 "$OUT/nspawn.log" | oneline)" ;;
esac
# The host image's user database has the integration tests' users and group 'opbackup' (uid/gid >= 1000):
# in the container, sysusers must create its own.
for u in $(cx getent passwd | cut -d: -f1 | grep -E '^(opbackup|pi$|alice$|bob$)'); do cx userdel "$u" >/dev/null 2>&1; done
for g in $(cx getent group | cut -d: -f1 | grep -E '^(opbackup|pi$|alice$|bob$)'); do cx groupdel "$g" >/dev/null 2>&1; done

# ---------------------------------------------------------------------------------- install as the README says
begin
if cx ninja -C "$BUILD" install >"$OUT/install.log" 2>&1; then
        pass "ninja -C $BUILD install, inside the container ($(grep -c '^Installing' "$OUT/install.log") files)"
else
        fail "ninja install: $(tail -3 "$OUT/install.log" | oneline)"
fi
# The commands after the build in the README's "Installing on a systemd machine", as written there.
mapfile -t steps < <(awk '/^## Installing on a systemd machine/ {s=1; next} s && /^## / {exit}
        s && /^```/ {b=!b; if (!b) exit; next} s && b && /^(systemd-sysusers|systemctl)/' "$SRC/README.md" | sed 's/ *#.*//')
begin
ok=1
[ ${#steps[@]} -ge 2 ] || { ok=; echo "no systemd-sysusers/systemctl lines found in README.md" >"$OUT/steps.log"; }
for s in "${steps[@]}"; do
        echo "# $s" >>"$OUT/steps.log"
        cx sh -c "$s" >>"$OUT/steps.log" 2>&1 || { ok=; echo "(failed)" >>"$OUT/steps.log"; break; }
done
sched=$(cx getent passwd opbackup-scheduler)
if [ -n "$ok" ] && [ -n "$sched" ] && [ "$(echo "$sched" | cut -d: -f3)" -lt 1000 ] && cx getent group opbackup >/dev/null; then
        pass "README install steps: $(printf '%s; ' "${steps[@]}" | sed 's/; $//') (opbackup-scheduler uid $(echo "$sched" | cut -d: -f3))"
else
        fail "README install steps: $(tail -4 "$OUT/steps.log" | oneline)"
fi
begin
act=$(cx systemctl is-active opbackup-fetch.socket opbackup-backup.timer | oneline)
en=$(cx systemctl is-enabled opbackup-fetch.socket opbackup-backup.timer | oneline)
[ "$act" = "active active" ] && [ "$en" = "enabled enabled" ] \
        && pass "opbackup-fetch.socket and opbackup-backup.timer enabled and active" \
        || fail "socket/timer: is-active '$act', is-enabled '$en'"

# ---------------------------------------------------------------------------------- people, instances, stand-ins
begin
cx useradd -m -s /bin/bash pi && cx useradd -m -s /bin/bash -G opbackup alice && cx useradd -m -s /bin/bash bob
# A real venv (python3 -m venv, with pip): a restore below reinstalls a plugin into it.
cx /usr/bin/python3 "$SRC/tests/gen-instance.py" --root /home/pi/octo --size tiny --user pi --name "E2E Printer" --real-venv >"$OUT/gen.log" 2>&1
# Outside the unit's ReadWritePaths=: status must say so, with the fix (opbackupd(8)).
cx /usr/bin/python3 "$SRC/tests/gen-instance.py" --root /data/octoprint --size tiny --user pi --seed 2 >>"$OUT/gen.log" 2>&1
gen_rc=$?
# A stand-in for OctoPrint's own unit: the restore stops and starts it (Unit=).
cx sh -c 'cat >/etc/systemd/system/octoprint.service <<EOF
[Unit]
Description=Stand-in for OctoPrint (opbackup end-to-end test)
[Service]
User=pi
ExecStart=/bin/sleep infinity
EOF
systemctl daemon-reload && systemctl start octoprint.service'
# A stand-in for OctoPrint's REST API, reached only through opbackup-fetch (opbackupd has no network).
cx systemd-run -q --unit=opbackup-e2e-api -p User=nobody -p StateDirectory=opbackup-e2e-api \
        /usr/bin/python3 "$SRC/tests/integration/octoprint-api.py" --port-file /var/lib/opbackup-e2e-api/port \
        --log /var/lib/opbackup-e2e-api/log --key E2EKEY0123456789 --states Operational
for _ in $(seq 1 50); do cx test -s /var/lib/opbackup-e2e-api/port && break; sleep 0.1; done
PORT=$(cx cat /var/lib/opbackup-e2e-api/port 2>/dev/null)
cx sh -c "install -d -m 700 /etc/opbackup/keys && echo E2EKEY0123456789 >/etc/opbackup/keys/pi.key && chmod 600 /etc/opbackup/keys/pi.key
mkdir -p /etc/opbackup/instances.d
cat >/etc/opbackup/instances.d/pi.conf <<EOF
[OctoPrint]
Basedir=/home/pi/octo/basedir
Python=/home/pi/octo/venv/bin/python
Unit=octoprint.service
ApiUrl=http://127.0.0.1:$PORT
ApiKeyFile=/etc/opbackup/keys/pi.key

[Backup]
Keep=3

[Schedule]
Exclude=timelapse
EOF
printf '[OctoPrint]\nBasedir=/data/octoprint/basedir\nPython=/data/octoprint/venv/bin/python\n' >/etc/opbackup/instances.d/data.conf
# Short, so that idle exit is seen within the suite's time (default 30 s).
printf '[Daemon]\nIdleTimeoutSec=5\n' >/etc/opbackup/opbackupd.conf"
if [ $gen_rc = 0 ] && [ -n "$PORT" ] && [ "$(cx systemctl is-active octoprint.service)" = active ] \
   && cx test -f /etc/opbackup/instances.d/pi.conf; then
        pass "setup: users pi (owner), alice (group opbackup), bob; instances pi (/home/pi/octo) and data (/data/octoprint); octoprint.service and API stand-ins (127.0.0.1:$PORT)"
else
        fail "setup: gen-instance rc=$gen_rc ($(tail -2 "$OUT/gen.log" | oneline)), API port '$PORT', octoprint.service $(cx systemctl is-active octoprint.service)"
fi

# ---------------------------------------------------------------------------------- D-Bus activation
# Time from a call to a stopped service to its first reply, through dbus-daemon's activation of
# opbackupd.service (Type=dbus); the first as root right after the install, then as each kind of caller.
begin
times=()
bad=
for who in root root root alice bob; do
        cx systemctl stop opbackupd.service
        before=$(cx systemctl is-active opbackupd.service)
        t1=$(date +%s%N)
        if [ "$who" = root ]; then
                v=$(cx busctl --system get-property org.opbackup.backup1 /org/opbackup/backup1 org.opbackup.backup1.Manager Version 2>&1)
        else
                v=$(cu "$who" busctl --system get-property org.opbackup.backup1 /org/opbackup/backup1 org.opbackup.backup1.Manager Version 2>&1)
        fi
        t2=$(date +%s%N)
        after=$(cx systemctl is-active opbackupd.service)
        times+=($(( (t2 - t1) / 1000000 )))
        if [ "$before" != inactive ] || [ "$after" != active ] || [[ "$v" != s\ * ]]; then
                bad+="$who: $before -> $after, reply '$v'; "
        fi
done
ACT_MEDIAN=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 3p)
[ -z "$bad" ] \
        && pass "D-Bus activation: inactive -> active, first reply (Version $v) in ${times[*]} ms (root x3, alice, bob); median $ACT_MEDIAN ms" \
        || fail "D-Bus activation: $bad"

# ---------------------------------------------------------------------------------- status, and the /data instance
begin
st=$(ctl status 2>&1); rc=$?
ctl --json status >"$OUT/status.json" 2>&1
pi_ok=$(json '[i for i in d["instances"] if i["name"]=="pi"][0]["usable"] and [i for i in d["instances"] if i["name"]=="pi"][0]["restore_supported"]' <"$OUT/status.json" 2>&1)
[ $rc = 0 ] && [ "$pi_ok" = True ] && [[ "$st" == *"Restore:        supported"* ]] \
        && pass "root: status (pi usable, restore supported, OctoPrint $(echo "$st" | sed -n 's/ *OctoPrint: *//p' | head -1))" \
        || fail "root: status rc=$rc: $(echo "$st" | oneline)"
begin
echo "$st" | sed -n '/^data$/,/^$/p' >"$OUT/status-data.txt"
json '[i for i in d["instances"] if i["name"]=="data"][0]' <"$OUT/status.json" >"$OUT/status-data.json" 2>&1
json 'json.dumps([i for i in d["instances"] if i["name"]=="data"][0], indent=1)' <"$OUT/status.json" >"$OUT/status-data.pretty.json" 2>&1
data_usable=$(json '[i for i in d["instances"] if i["name"]=="data"][0]["usable"]' <"$OUT/status.json" 2>&1)
data_reason=$(json '[i for i in d["instances"] if i["name"]=="data"][0]["unusable_reason"]' <"$OUT/status.json" 2>&1)
if [ "$data_usable" = False ] && [[ "$data_reason" == *"read-only file system"* ]] \
   && [[ "$data_reason" == *'"ReadWritePaths=/data/octoprint"'* ]] && [[ "$data_reason" == *"systemctl edit opbackupd.service"* ]]; then
        pass "data (/data, outside ReadWritePaths=): status says UNUSABLE, read-only for opbackupd, and names the drop-in:"
else
        fail "data (/data): usable=$data_usable, reason: $data_reason"
fi
detail <"$OUT/status-data.txt"
detail <"$OUT/status-data.pretty.json"
begin
b=$(ctl -i data backup 2>&1); rc=$?
if [ $rc != 0 ] && [[ "$b" == *"ReadWritePaths=/data/octoprint"* ]] && ! cx sh -c 'ls /data/octoprint/basedir/data/backup 2>/dev/null | grep -q .'; then
        pass "data: backup refused up front with the same advice (exit $rc), nothing written"
else
        fail "data: backup rc=$rc: $(echo "$b" | oneline)"
fi
# The fix, as the reason gives it: `systemctl edit opbackupd.service` with its lines, then a restart.
begin
lines=$(echo "$data_reason" | grep -o '"\[Service\]" and "ReadWritePaths=[^"]*"' | sed 's/^"//; s/" and "/\n/; s/"$//')
printf '%s\n' "$lines" >"$OUT/dropin.txt"
cx sh -c "printf '#!/bin/sh\ncat /etc/opbackup-e2e-dropin >\"\$1\"\n' >/usr/local/bin/opbackup-e2e-editor && chmod 755 /usr/local/bin/opbackup-e2e-editor"
cx sh -c "cat >/etc/opbackup-e2e-dropin" <"$OUT/dropin.txt"
# systemctl edit wants a terminal ("Cannot edit units if not on a tty"): script(1) gives it one, and
# SYSTEMD_EDITOR an "editor" that types the lines.
cx env SYSTEMD_EDITOR=/usr/local/bin/opbackup-e2e-editor script -qec "systemctl edit opbackupd.service" /dev/null \
        </dev/null >"$OUT/edit.log" 2>&1
cx systemctl restart opbackupd.service
st2=$(ctl -i data --json status 2>&1)
b=$(ctl -i data backup 2>&1); rc=$?
if [ "$(echo "$st2" | json '[i for i in d["instances"] if i["name"]=="data"][0]["usable"]' 2>&1)" = True ] && [ $rc = 0 ]; then
        pass "data: after 'systemctl edit opbackupd.service' with \"$(echo "$lines" | oneline)\" and a restart: usable, backup works ($(echo "$b" | sed -n 's/^Created backup \([^ ]*\).*/\1/p'))"
else
        fail "data: after the drop-in ($(cx cat /etc/systemd/system/opbackupd.service.d/override.conf 2>&1 | oneline)): $(echo "$st2" | oneline | cut -c1-200); backup rc=$rc: $(echo "$b" | oneline)"
fi

# ---------------------------------------------------------------------------------- root: backup, list, inspect, export/import, delete, prune
begin
b=$(ctl -i pi backup 2>&1); rc=$?
NAME=$(echo "$b" | sed -n 's/^Created backup \([^ ]*\.zip\).*/\1/p')
[ $rc = 0 ] && [ -n "$NAME" ] && pass "root: backup -> $NAME" || fail "root: backup rc=$rc: $(echo "$b" | oneline)"
begin
l=$(ctl -i pi list 2>&1); rc=$?
[ $rc = 0 ] && [[ "$l" == *"$NAME"* ]] && pass "root: list shows it" || fail "root: list rc=$rc: $(echo "$l" | oneline)"
begin
# What the listing read is kept in the StateDirectory= systemd made: root's, 0600, in a 0700 folder.
saved=$(cx stat -c '%U %a' /var/lib/opbackup /var/lib/opbackup/list-pi.cache 2>&1 | oneline)
[ "$saved" = "root 700 root 600" ] && pass "root: the listing is saved in /var/lib/opbackup ($saved)" \
        || fail "root: the saved listing: $saved"
begin
i=$(ctl -i pi inspect "$NAME" 2>&1); rc=$?
[ $rc = 0 ] && [[ "$i" == *alid* ]] && pass "root: inspect $NAME ($(echo "$i" | grep -iE -m1 'valid' | sed 's/^ *//'))" \
        || fail "root: inspect rc=$rc: $(echo "$i" | oneline)"
begin
e=$(ctl -i pi export "$NAME" -o "/root/$NAME" 2>&1); rc1=$?
d=$(ctl -i pi delete "$NAME" 2>&1); rc2=$?
gone=$(ctl -i pi list 2>&1 | grep -c "$NAME")
im=$(ctl -i pi import "/root/$NAME" 2>&1); rc3=$?
back=$(ctl -i pi list 2>&1 | grep -c "$NAME")
if [ $rc1 = 0 ] && [ $rc2 = 0 ] && [ "$gone" = 0 ] && [ $rc3 = 0 ] && [ "$back" = 1 ] && cx unzip -tq "/root/$NAME" >/dev/null; then
        pass "root: export to /root (unzip -t clean), delete (gone from list), import (back under its name)"
else
        fail "root: export rc=$rc1 ($e), delete rc=$rc2 ($d, listed $gone), import rc=$rc3 ($im, listed $back)"
fi

# ---------------------------------------------------------------------------------- alice (group opbackup)
begin
ok=1; why=
for c in status "backup --name alice-1.zip" "backup --name alice-2.zip" list "inspect $NAME"; do
        o=$(uctl alice -i pi $c 2>&1) || { ok=; why+="$c: $(echo "$o" | oneline); "; }
done
o=$(uctl alice -i pi export "$NAME" -o /home/alice/copy-of-backup.zip 2>&1) || { ok=; why+="export: $o; "; }
o=$(uctl alice -i pi import /home/alice/copy-of-backup.zip 2>&1) || { ok=; why+="import: $o; "; }
o=$(uctl alice -i pi delete copy-of-backup.zip 2>&1) || { ok=; why+="delete: $o; "; }
o=$(uctl alice -i pi prune --keep 1 --match 'alice-*' 2>&1) || { ok=; why+="prune: $o; "; }
left=$(ctl -i pi --json list | json '"\n".join(b["name"] for b in d)' | sort | oneline)
[ -n "$ok" ] && [ "$left" = "$(printf '%s\n' alice-2.zip "$NAME" | sort | oneline)" ] \
        && pass "alice (group opbackup): status, backup x2, list, inspect, export, import, delete, prune --keep 1 --match 'alice-*' (left: $left)" \
        || fail "alice: $why(backups left: $left)"

# ---------------------------------------------------------------------------------- bob (no grant)
begin
refused=(); wrong=
cx cp "/root/$NAME" /home/bob/b.zip && cx chown bob: /home/bob/b.zip
for c in status backup list "inspect $NAME" "export $NAME -o /home/bob/x.zip" "import /home/bob/b.zip" \
         "delete $NAME" "prune --keep 1" "restore --yes $NAME"; do
        o=$(uctl bob -i pi $c 2>&1); rc=$?
        if [ $rc = 3 ]; then refused+=("${c%% *}"); else wrong+="$c: rc=$rc $(echo "$o" | oneline); "; fi
done
n=$(ctl -i pi --json list | json 'len(d)')
[ -z "$wrong" ] && [ "$n" = 2 ] \
        && pass "bob (no grant): refused with exit 3: ${refused[*]}" \
        || fail "bob: $wrong(backups: $n)"

# ---------------------------------------------------------------------------------- restore
begin
cx sh -c 'echo "# changed after the backup" >>/home/pi/octo/basedir/config.yaml; echo G28 >/home/pi/octo/basedir/uploads/added-later.gcode; chown pi: /home/pi/octo/basedir/uploads/added-later.gcode'
oldpid=$(cx systemctl show -p MainPID --value octoprint.service)
r=$(ctl -i pi restore --yes "$NAME" 2>&1); rc=$?
newpid=$(cx systemctl show -p MainPID --value octoprint.service)
owner=$(cx stat -c %U /home/pi/octo/basedir/config.yaml)
if [ $rc = 0 ] && ! cx grep -q "changed after the backup" /home/pi/octo/basedir/config.yaml \
   && ! cx test -e /home/pi/octo/basedir/uploads/added-later.gcode && [ "$owner" = pi ] \
   && [ "$oldpid" != "$newpid" ] && [ "$newpid" != 0 ] && [ "$(cx systemctl is-active octoprint.service)" = active ]; then
        pass "root: restore --yes $NAME: edits undone, files owned by pi, Unit=octoprint.service stopped and started (PID $oldpid -> $newpid)"
else
        fail "root: restore rc=$rc, owner $owner, octoprint.service PID $oldpid -> $newpid ($(cx systemctl is-active octoprint.service)): $(echo "$r" | tail -3 | oneline)"
fi
begin
o=$(uctl alice -i pi restore --yes "$NAME" 2>&1); rc=$?
if [ $rc = 3 ] && [[ "$o" == *"org.opbackup.backup1.restore"* ]] && [[ "$o" == *administrator* ]] \
   && [[ "$o" != *"add you to the group"* ]]; then
        pass "alice: restore refused (exit 3) with the right advice: $(echo "$o" | oneline)"
else
        fail "alice: restore rc=$rc (want 3, advice naming an administrator or a rule for org.opbackup.backup1.restore, not the group): $(echo "$o" | oneline)"
fi
begin
p=$(ctl -i pi prune --keep 1 2>&1); rc=$?
left=$(ctl -i pi --json list | json '" ".join(b["name"] for b in d)')
[ $rc = 0 ] && [ "$(echo "$left" | wc -w)" = 1 ] && pass "root: prune --keep 1 (left: $left)" \
        || fail "root: prune rc=$rc: $(echo "$p" | oneline) (left: $left)"

# ---------------------------------------------------------------------------------- plugins with dependencies
# A plugin (in a plugin repository) that needs a Python package only a package index has, both served on the
# container's 127.0.0.1: opbackupd.service has no network (PrivateNetwork=yes), so pip must run elsewhere —
# as a transient unit of systemd, as pi, with the network (opbackupd(8), RESTORE, step 5). The index is
# named by the venv's own pip.conf, as a user would configure pip.
begin
IDX=/srv/opbackup-e2e-index
cx sh -c "rm -rf $IDX && mkdir -p $IDX/simple/opbackup-e2edep \
  && /usr/bin/python3 $SRC/tests/plugins/plugin-fixture.py wheel $IDX/simple/opbackup-e2edep opbackup_e2edep 1.0 e2edep \
  && /usr/bin/python3 $SRC/tests/plugins/plugin-fixture.py wheel $IDX OctoPrint_E2EPlug 1.0 e2eplug opbackup-e2edep \
  && chmod -R a+rX $IDX" >"$OUT/index.log" 2>&1
printf '%s\n' '[{"id": "e2eplug", "title": "E2E Plug", "archive": "http://127.0.0.1:8765/OctoPrint_E2EPlug-1.0-py3-none-any.whl",' \
        '  "compatibility": {"octoprint": [">=1.4.0,<2"], "os": ["linux"]}}]' | cx sh -c "cat >$IDX/plugins.json"
cx systemd-run -q --unit=opbackup-e2e-index -p User=nobody /usr/bin/python3 -m http.server --bind 127.0.0.1 \
        --directory "$IDX" 8765
cx sh -c 'printf "[global]\nindex-url = http://127.0.0.1:8765/simple/\nretries = 0\ntimeout = 10\n" >/home/pi/octo/venv/pip.conf
printf "\n[Restore]\nPluginRepository=http://127.0.0.1:8765/plugins.json\n" >>/etc/opbackup/instances.d/pi.conf
systemctl restart opbackupd.service'
for _ in $(seq 1 50); do cx bash -c 'exec 3<>/dev/tcp/127.0.0.1/8765' 2>/dev/null && break; sleep 0.1; done
ctl -i pi backup --name e2e-pip.zip >>"$OUT/index.log" 2>&1
# The backup lists the plugin, as OctoPrint's would on a machine that had it installed.
cx /usr/bin/python3 -c '
import json, zipfile
src = "/home/pi/octo/basedir/data/backup/e2e-pip.zip"
with zipfile.ZipFile(src) as z, zipfile.ZipFile("/root/e2e-pip.zip", "w", zipfile.ZIP_DEFLATED) as out:
    for i in z.infolist():
        if i.filename != "plugin_list.json":
            out.writestr(i, z.read(i))
    out.writestr("plugin_list.json", json.dumps([{"key": "e2eplug", "name": "E2E Plug", "url": "https://example.org/e2eplug"}]))
' >>"$OUT/index.log" 2>&1
before=$(cu pi /home/pi/octo/venv/bin/python -c 'import octoprint_e2eplug' 2>&1 | tail -1)
r=$(ctl -i pi restore --yes /root/e2e-pip.zip 2>&1); rc=$?
echo "$r" >"$OUT/restore-pip.log"
imp=$(cu pi /home/pi/octo/venv/bin/python -c 'import octoprint_e2eplug, octoprint_e2edep; print(octoprint_e2edep.__file__)' 2>&1)
owner=$(cx sh -c 'stat -c %U /home/pi/octo/venv/lib/python3*/site-packages/octoprint_e2edep' 2>&1)
unit=$(cx journalctl -b -o cat --no-pager | grep -o 'opbackup-pip-[0-9a-f-]*\.service' | tail -1)
left=$(cx systemctl list-units --all --plain --no-legend 'opbackup-pip-*' | oneline)
if [ $rc = 0 ] && [[ "$before" == *ModuleNotFoundError* ]] && [[ "$imp" == /home/pi/octo/venv/* ]] && [ "$owner" = pi ] \
   && [ -n "$unit" ] && [ -z "$left" ] && [[ "$r" == *"pip: Successfully installed"* ]]; then
        pass "restore reinstalls plugin e2eplug with its dependency from a package index only the container's 127.0.0.1 has (the venv's pip.conf): pip ran as $unit (User=pi, with the network), e2eplug and its dependency import as pi, the unit is gone"
else
        fail "restore with a plugin that needs a package index: rc=$rc, before '$before', import '$imp', owner '$owner', unit '$unit', left '$left': $(echo "$r" | grep -iE 'pip|plugin|error|fail' | tail -8 | oneline)"
fi
echo "$r" | grep -E 'pip: (Successfully|Collecting)|Installed plugin' | detail
cx systemctl stop opbackup-e2e-index.service

# ---------------------------------------------------------------------------------- production's symlink-safe opens
# Under the unit, openat2() answers ENOSYS (RestrictSUIDSGID=yes): a backup's every open of an instance's
# file takes open_no_symlinks()'s O_NOFOLLOW + /proc/self/fd fallback. Seen from outside the sandbox with
# strace, following the daemon into its workers.
begin
ctl -i pi list >/dev/null
DPID=$(cx systemctl show -p MainPID --value opbackupd.service)
cx sh -c "strace -f -qq -e trace=openat2 -e signal=none -o /root/openat2.log -p $DPID 2>/dev/null & echo \$! >/root/strace.pid"
for _ in $(seq 1 50); do cx grep -q '^TracerPid:[[:space:]]*[1-9]' "/proc/$DPID/status" && break; sleep 0.1; done
b=$(ctl -i pi backup --name openat2-check.zip 2>&1); rc=$?
cx sh -c 'kill $(cat /root/strace.pid); sleep 0.2'
enosys=$(cx grep -c 'openat2(.*= -1 ENOSYS' /root/openat2.log)
opened=$(cx grep -cE 'openat2\(.*= [0-9]+$' /root/openat2.log)
d=$(ctl -i pi delete openat2-check.zip 2>&1)
if [ $rc = 0 ] && [ "$enosys" -gt 0 ] && [ "$opened" = 0 ]; then
        pass "symlink-safe opens under the unit: openat2() answered ENOSYS $enosys times (RestrictSUIDSGID=yes), the backup took the O_NOFOLLOW + /proc/self/fd fallback and succeeded"
else
        fail "openat2 under the unit: backup rc=$rc ($(echo "$b" | tail -1)), ENOSYS $enosys, opened $opened"
fi

# ---------------------------------------------------------------------------------- the fetch socket
begin
cx sh -c ': >/var/lib/opbackup-e2e-api/log'
b=$(ctl -i pi backup --when-idle 2>&1); rc=$?
fl=$(cx tail -1 /var/lib/opbackup-e2e-api/log 2>/dev/null)
fuid=$(echo "$fl" | /usr/bin/python3 -c 'import json,sys; print(json.loads(sys.stdin.read() or "{}").get("client_uid", ""))' 2>/dev/null)
keyok=$(echo "$fl" | /usr/bin/python3 -c 'import json,sys; print(json.loads(sys.stdin.read() or "{}").get("key_ok", ""))' 2>/dev/null)
fetch=$(cx journalctl -b -o cat --no-pager | grep -m1 -o 'Started opbackup-fetch@[^ ]*')
if [ $rc = 0 ] && [ "$keyok" = True ] && [ -n "$fuid" ] && [ "$fuid" -ge 61184 ] && [ "$fuid" -le 65519 ] && [ -n "$fetch" ]; then
        pass "fetch socket: backup --when-idle asked the API stand-in (key accepted) from uid $fuid, a DynamicUser of ${fetch#Started }"
else
        fail "fetch socket: backup rc=$rc ($(echo "$b" | tail -1)), API log '$fl', journal '$fetch'"
fi

# ---------------------------------------------------------------------------------- a remote (WebDAV)
# A WebDAV server (rclone serve webdav, password in an htpasswd file) on the container's 127.0.0.1: opbackupd has
# no network (PrivateNetwork=yes), so the copy of CopyTo= goes through opbackup-fetch, which gets the
# credentials over its socket. The backup must appear there byte-identical, and restore --remote must bring the
# instance back from it after the local copy is gone.
begin
DAVSECRET=e2e-dav-Secret-5b1c
cx sh -c "rm -rf /srv/opbackup-e2e-dav && mkdir -p /srv/opbackup-e2e-dav/data && htpasswd -bc /srv/opbackup-e2e-dav/htpasswd e2e $DAVSECRET && chown -R nobody: /srv/opbackup-e2e-dav" >"$OUT/dav.log" 2>&1
cx systemd-run -q --unit=opbackup-e2e-dav -p User=nobody rclone serve webdav /srv/opbackup-e2e-dav/data \
        --addr 127.0.0.1:8766 --htpasswd /srv/opbackup-e2e-dav/htpasswd >>"$OUT/dav.log" 2>&1
cx sh -c "mkdir -p /etc/opbackup/remotes.d && printf 'User=e2e\nPassword=$DAVSECRET\n' >/etc/opbackup/keys/dav && chmod 600 /etc/opbackup/keys/dav
printf '[Remote]\nType=webdav\nURL=http://127.0.0.1:8766/backups\nCredentialsFile=/etc/opbackup/keys/dav\n' >/etc/opbackup/remotes.d/dav.conf
printf '\n[Backup]\nCopyTo=dav\n' >>/etc/opbackup/instances.d/pi.conf
systemctl restart opbackupd.service"
for _ in $(seq 1 50); do cx bash -c 'exec 3<>/dev/tcp/127.0.0.1/8766' 2>/dev/null && break; sleep 0.1; done
b=$(ctl -i pi backup --name e2e-remote.zip 2>&1); rc=$?
local_sum=$(cx sha256sum /home/pi/octo/basedir/data/backup/e2e-remote.zip 2>&1 | cut -d' ' -f1)
remote_sum=$(cx sha256sum /srv/opbackup-e2e-dav/data/backups/pi/e2e-remote.zip 2>&1 | cut -d' ' -f1)
rl=$(uctl alice -i pi list --remote dav 2>&1)
if [ $rc = 0 ] && [ -n "$local_sum" ] && [ "$local_sum" = "$remote_sum" ] && [[ "$rl" == *e2e-remote.zip* ]]; then
        pass "remote: backup with CopyTo=dav copied it to a WebDAV server on the container's 127.0.0.1 through opbackup-fetch (opbackupd has PrivateNetwork=yes), byte-identical (sha256 ${local_sum:0:12}), list --remote dav shows it to alice"
else
        fail "remote: backup rc=$rc ($(echo "$b" | tail -2 | oneline)), sha256 local '$local_sum' remote '$remote_sum', list --remote: $(echo "$rl" | oneline)"
fi
begin
cx sh -c 'echo "# changed after the remote backup" >>/home/pi/octo/basedir/config.yaml'
d=$(ctl -i pi delete e2e-remote.zip 2>&1)
r=$(ctl -i pi restore --yes --remote dav latest 2>&1); rc=$?
echo "$r" >"$OUT/restore-remote.log"
back=$(ctl -i pi list 2>&1 | grep -c e2e-remote.zip)
if [ $rc = 0 ] && ! cx grep -q "changed after the remote backup" /home/pi/octo/basedir/config.yaml && [ "$back" = 1 ]; then
        pass "remote: restore --remote dav latest fetched e2e-remote.zip back into the backup folder and restored it (the edit undone)"
else
        fail "remote: restore --remote rc=$rc, fetched back: $back: $(echo "$r" | tail -3 | oneline)"
fi
begin
leaks=$(cx journalctl -b -o cat --no-pager | grep -c "$DAVSECRET")
[ "$leaks" = 0 ] && pass "remote: the WebDAV password appears nowhere in the journal" \
        || fail "remote: the WebDAV password is in the journal $leaks times"

# ---------------------------------------------------------------------------------- the timer
begin
inv0=$(cx systemctl show -p InvocationID --value opbackup-backup.service)
cx sh -c 'mkdir -p /etc/systemd/system/opbackup-backup.timer.d && printf "[Timer]\nOnCalendar=\nOnCalendar=*:*:0/5\nRandomizedDelaySec=0\nAccuracySec=1s\n" >/etc/systemd/system/opbackup-backup.timer.d/e2e.conf && systemctl daemon-reload && systemctl restart opbackup-backup.timer'
done_=
for _ in $(seq 1 150); do
        inv=$(cx systemctl show -p InvocationID --value opbackup-backup.service)
        st=$(cx systemctl show -p ActiveState --value opbackup-backup.service)
        if [ -n "$inv" ] && [ "$inv" != "$inv0" ] && { [ "$st" = inactive ] || [ "$st" = failed ]; }; then done_=1; break; fi
        sleep 0.2
done
res=$(cx systemctl show -p Result --value opbackup-backup.service)
user=$(cx systemctl show -p User --value opbackup-backup.service)
newest=$(ctl -i pi --json list | json 'd[0]["name"] + " (excludes " + ",".join(d[0]["excludes"]) + ")"' 2>&1)
T_LAST_CALL=$(now_ms)
if [ -n "$done_" ] && [ "$res" = success ] && [ "$user" = opbackup-scheduler ] && [[ "$newest" == *timelapse* ]]; then
        pass "opbackup-backup.timer (drop-in OnCalendar=*:*:0/5) ran opbackup-backup.service as $user: $res, newest $newest"
else
        fail "timer: ran=${done_:-no} result=$res user=$user newest=$newest journal: $(cx journalctl -b -o cat --no-pager -u opbackup-backup.service | tail -4 | oneline)"
fi
cx rm -rf /etc/systemd/system/opbackup-backup.timer.d
cx systemctl daemon-reload
cx systemctl restart opbackup-backup.timer

# ---------------------------------------------------------------------------------- security exposure
begin
worst=; scores=
for u in opbackupd.service opbackup-fetch@e2e.service opbackup-backup.service; do
        s=$(cx systemd-analyze security --no-pager "$u" 2>&1 | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
        scores+="$u $s; "
        if [ -z "$s" ] || ! awk -v s="$s" 'BEGIN { exit !(s <= 2.0) }'; then worst+="$u ${s:-?}; "; fi
done
[ -z "$worst" ] && pass "systemd-analyze security (online, in the container) <= 2.0: ${scores%; }" \
        || fail "systemd-analyze security above 2.0 or unreadable: $worst"

# ---------------------------------------------------------------------------------- idle exit, re-activation
begin
idle=
for _ in $(seq 1 150); do
        [ "$(cx systemctl is-active opbackupd.service)" = inactive ] && { idle=1; break; }
        sleep 0.2
done
after=$(( $(now_ms) - T_LAST_CALL ))
msg=$(cx journalctl -b -u opbackupd -o cat --no-pager | grep 'Idle for' | tail -1)
[ -n "$idle" ] && [ -n "$msg" ] \
        && pass "idle exit: inactive $(secs $after) s after the last call (IdleTimeoutSec=5): \"$msg\"" \
        || fail "idle exit: opbackupd still $(cx systemctl is-active opbackupd.service) $(secs $after) s after the last call"
begin
t1=$(date +%s%N)
li=$(uctl alice -i pi list 2>&1); rc=$?
t2=$(date +%s%N)
[ $rc = 0 ] && [ "$(cx systemctl is-active opbackupd.service)" = active ] \
        && pass "re-activation after idle exit: alice's list answered in $(( (t2 - t1) / 1000000 )) ms" \
        || fail "re-activation: rc=$rc $(echo "$li" | oneline)"

begin
rs=$(ctl -i pi --json status | json '",".join(x["remote"] + ":" + x["result"] for i in d["instances"] if i["name"] == "pi" for x in i["remote_status"])' 2>&1)
perm=$(cx stat -c '%U %a' /var/lib/opbackup /var/lib/opbackup/remote-status.json 2>&1 | oneline)
[[ "$rs" == *dav:done* ]] && [ "$perm" = "root 700 root 600" ] \
        && pass "remote: the last upload to dav is still known after the idle exit (RemoteStatus: $rs; /var/lib/opbackup and remote-status.json: $perm)" \
        || fail "remote: RemoteStatus after the idle exit: '$rs', state files: $perm"

# ---------------------------------------------------------------------------------- the journal
begin
cx journalctl -b -o short-precise --no-pager -u opbackupd >"$OUT/journal-opbackupd.txt" 2>&1
errs=$(cx journalctl -b -o cat --no-pager -p err -u opbackupd)
# ... nor, at any priority, what the sandbox says when it gets in the way (strerror texts).
errs+=$(cx journalctl -b -o cat --no-pager -u opbackupd | grep -E 'Read-only file system|Permission denied|Operation not permitted|Bad system call|Function not implemented|core dumped')
starts=$(grep -c 'Started opbackupd.service' "$OUT/journal-opbackupd.txt")
[ -z "$errs" ] && [ "$starts" -ge 5 ] \
        && pass "journalctl -u opbackupd: no message of priority err or worse, no sandbox denial ($(wc -l <"$OUT/journal-opbackupd.txt") lines, $starts activations)" \
        || fail "journalctl -u opbackupd -p err: $(echo "$errs" | head -5 | oneline)"

summary
[ "$FAILED" = 0 ]
