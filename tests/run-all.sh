#!/usr/bin/env bash
# The whole test suite from a fresh Debian 12 machine: dependencies, build, unit and integration tests.
# Run as root (integration tests bring up a private system bus and the real polkitd; as another user
# they are skipped).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ]; then
        bash tests/install-deps.sh
fi
bash tests/build.sh

set +e
meson test -C build --print-errorlogs --num-processes 2 "$@"
rc=$?
set -e

# One closing line that any reader of the log understands.
python3 - build/meson-logs/testlog.json <<'PY'
import json, sys
counts = {"passed": 0, "failed": 0, "skipped": 0}
with open(sys.argv[1]) as f:
    for line in f:
        r = json.loads(line)["result"]
        if r in ("OK", "EXPECTEDFAIL"):
            counts["passed"] += 1
        elif r == "SKIP":
            counts["skipped"] += 1
        else:
            counts["failed"] += 1
print(f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped")
PY
exit $rc
