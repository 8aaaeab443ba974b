#!/usr/bin/env bash
# The whole suite again, built with AddressSanitizer and UndefinedBehaviorSanitizer (in build-sanitize/).
# Every process the tests start (daemon, workers, helper, client, unit tests) writes any report into one
# folder; a report fails the run even when the test that caused it passed. Leaks count (LeakSanitizer).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -f build-sanitize/build.ninja ]; then
        # b_lundef=false: the sanitizer runtimes are linked into executables, not into static libraries.
        meson setup build-sanitize -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false
fi
ninja -C build-sanitize

logs=$(mktemp -d /tmp/opbackup-sanitizer-logs.XXXXXX)
# Workers run as the instance's user, the helper as others: all must be able to write their report.
chmod 1777 "$logs"
export ASAN_OPTIONS="log_path=$logs/asan:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="log_path=$logs/ubsan:print_stacktrace=1"
export LSAN_OPTIONS="log_path=$logs/lsan"

set +e
meson test -C build-sanitize --print-errorlogs --num-processes 2 "$@"
rc=$?
set -e

reports=$(find "$logs" -type f | sort)
if [ -n "$reports" ]; then
        echo "Sanitizer reports:"
        for f in $reports; do
                echo "==> $f"
                cat "$f"
        done
        rc=1
else
        echo "Sanitizers: no reports."
fi
rm -rf "$logs"
exit $rc
