#!/bin/bash
# The bash completion of opbackupctl (opbackupctl(1)): it loads in a plain bash, registers for opbackupctl, and
# completes commands ("opbackupctl de" → delete), options before and after the command (the global ones
# with every command), folder ids, and instance and backup names and job IDs — those from a stand-in
# opbackupctl that prints the JSON of `--json status`, `--json list` and `--json jobs`.
#
#   check-completion.sh COMPLETION_FILE        exit 0 ok, 1 fail, 77 skip (no python3 for the names)
set -u

completion=${1:?usage: check-completion.sh COMPLETION_FILE}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failed=0

# shellcheck source=/dev/null
source "$completion" || { echo "FAIL: $completion does not load"; exit 1; }

# complete WORD... : the completions bash offers for the last word of the command line.
complete_line() {
        COMP_WORDS=("$@")
        COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
        COMP_LINE="$*"
        COMP_POINT=${#COMP_LINE}
        COMPREPLY=()
        _opbackupctl
        printf '%s\n' "${COMPREPLY[@]}" | LC_ALL=C sort | tr '\n' ' ' | sed 's/ $//'
}

expect() {
        local want=$1
        shift
        local got
        got=$(complete_line "$@")
        if [[ $got == "$want" ]]; then
                echo "ok '$*' → $got"
        else
                echo "FAIL '$*': got '$got', want '$want'"
                failed=1
        fi
}

spec=$(complete -p opbackupctl 2>/dev/null)
if [[ $spec == *"-F _opbackupctl"* ]]; then
        echo "ok complete -p opbackupctl: $spec"
else
        echo "FAIL complete -p opbackupctl: '$spec'"
        failed=1
fi

expect "delete" opbackupctl de
expect "scheduled-backup status" opbackupctl s
expect "import inspect" opbackupctl i
expect "--when-idle" opbackupctl backup --w
expect "--exclude" opbackupctl backup --exc
expect "timelapse" opbackupctl backup --exclude time
expect "plugins printerProfiles" opbackupctl backup -e p
expect "--ignore-plugin-errors" opbackupctl restore --ig
expect "--instance" opbackupctl --inst
expect "--keep" opbackupctl prune --ke
expect "" opbackupctl bogus x
# Global options go after the command too, with the command's own.
expect "--json" opbackupctl list --js
expect "--no-ask-password --no-legend --no-pager" opbackupctl jobs --no-
expect "--no-ask-password --no-legend --no-pager --no-restart" opbackupctl restore --no-
expect "--clear" opbackupctl unknown-plugins --cl
# An option's value before the command is not taken for the command.
expect "backup" opbackupctl -e uploads b
expect "uploads" opbackupctl --json -e upl

if ! command -v python3 >/dev/null; then
        echo "skip: no python3 to read instance and backup names"
        exit $((failed ? 1 : 77))
fi
# A stand-in opbackupctl: instances pi and farm-1 (a job's backup name must not be taken for one), and
# the backups of whichever instance it is asked about.
cat >"$scratch/opbackupctl" <<'STUB'
#!/bin/sh
echo "$*" >>"${0%/*}/calls"
case "$*" in
*status*) echo '{"version": "0.1.0", "instances": [{"name": "pi", "object": "/o/pi"}, {"name": "farm-1"}],
 "jobs": [{"id": 1, "name": "job-backup.zip"}]}' ;;
*list*) echo '[{"name": "octoprint-backup-20260101-040000.zip"}, {"name": "before-upgrade.zip"}]' ;;
*jobs*) echo '[{"id": 7, "name": "x.zip"}, {"id": 12, "name": "y.zip"}]' ;;
esac
STUB
chmod +x "$scratch/opbackupctl"
stub=$scratch/opbackupctl

expect "farm-1 pi" "$stub" -i ""
expect "pi" "$stub" --instance p
expect "before-upgrade.zip octoprint-backup-20260101-040000.zip" "$stub" -i pi delete ""
expect "octoprint-backup-20260101-040000.zip" "$stub" -i pi export oct
# -i after the command counts as much as before it.
expect "before-upgrade.zip" "$stub" delete -i farm-1 b
expect "12 7" "$stub" cancel ""
if grep -q -- "--no-ask-password --instance pi --json list" "$scratch/calls" &&
   grep -q -- "--no-ask-password --instance farm-1 --json list" "$scratch/calls"; then
        echo "ok backup names are asked of the instance given with -i, without asking for a password"
else
        echo "FAIL the stand-in was called with: $(cat "$scratch/calls")"
        failed=1
fi
exit $failed
