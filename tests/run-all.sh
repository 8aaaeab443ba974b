#!/usr/bin/env bash
# The whole test suite from a fresh Debian 12 machine: dependencies, build, unit and integration tests;
# then the same suite built with AddressSanitizer + UndefinedBehaviorSanitizer (tests/run-sanitizers.sh)
# and a 20 s run of every fuzz target from its seed corpus (tests/run-fuzz.sh). Run as root (integration
# tests bring up a private system bus and the real polkitd; as another user they are skipped).
# Arguments go to `meson test` (e.g. a test's name). OPBACKUP_QUICK=1 runs the plain suite only.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ]; then
        bash tests/install-deps.sh
fi
bash tests/build.sh

failed_parts=()
set +e
meson test -C build --print-errorlogs --num-processes 2 "$@" || failed_parts+=("tests")
# What the end-to-end suite under systemd checked, with times (meson keeps it in its log).
python3 - build/meson-logs/testlog.json <<'PY'
import json, sys
with open(sys.argv[1]) as f:
    for line in f:
        t = json.loads(line)
        if t["name"].endswith("/ e2e") and t.get("stdout"):
            print("== The end-to-end suite under systemd as PID 1 (" + t["result"] + ")")
            print(t["stdout"].rstrip())
PY
if [ "${OPBACKUP_QUICK:-0}" != 1 ]; then
        echo "== The suite again under AddressSanitizer and UndefinedBehaviorSanitizer"
        bash tests/run-sanitizers.sh "$@" || failed_parts+=("sanitizers")
        if [ $# = 0 ]; then
                echo "== Every fuzz target for 20 s from its seed corpus"
                bash tests/run-fuzz.sh 20 | tee build-fuzz.log || failed_parts+=("fuzz")
        fi
fi
set -e

# One closing line that any reader of the log understands: every test of every run.
python3 - "${OPBACKUP_QUICK:-0}" "${failed_parts[*]:-}" <<'PY'
import json, os, re, sys
counts = {"passed": 0, "failed": 0, "skipped": 0}
logs = ["build/meson-logs/testlog.json"]
if sys.argv[1] != "1":
    logs.append("build-sanitize/meson-logs/testlog.json")
for log in logs:
    if not os.path.exists(log):
        counts["failed"] += 1
        continue
    with open(log) as f:
        for line in f:
            r = json.loads(line)["result"]
            if r in ("OK", "EXPECTEDFAIL"):
                counts["passed"] += 1
            elif r == "SKIP":
                counts["skipped"] += 1
            else:
                counts["failed"] += 1
# The fuzz targets, one each.
if os.path.exists("build-fuzz.log"):
    with open("build-fuzz.log") as f:
        m = re.findall(r"^(\d+) passed, (\d+) failed$", f.read(), re.M)
    if m:
        counts["passed"] += int(m[-1][0])
        counts["failed"] += int(m[-1][1])
    os.unlink("build-fuzz.log")
# Sanitizer reports fail the run even when every test passed: count them as one failure.
if "sanitizers" in sys.argv[2].split() and counts["failed"] == 0:
    counts["failed"] += 1
print(f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped")
PY
if [ ${#failed_parts[@]} -gt 0 ]; then
        echo "Failed: ${failed_parts[*]}" >&2
        exit 1
fi
