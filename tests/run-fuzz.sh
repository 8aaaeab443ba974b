#!/usr/bin/env bash
# Runs each libFuzzer target of tests/fuzz/ for SECONDS (default 20), one after the other, on a copy of its
# seed corpus (tests/fuzz/corpus/<name>/). Sets up build-fuzz/ (clang, -Dfuzz=true) if needed and builds
# the targets. Prints per target execs/s, coverage (cov/ft) and crashes; a crash's input is kept and its
# path printed. Exits non-zero if any target crashed (or would not run). Usage: tests/run-fuzz.sh [SECONDS]
set -uo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-20}
targets=(archive-validate zip-directory backup-metadata octoconfig config distinfo fetch-frame deflate-join)
build=build-fuzz

if [ ! -f "$build/build.ninja" ]; then
        CC=${FUZZ_CC:-clang} meson setup "$build" -Dfuzz=true -Db_lundef=false >/dev/null || exit 1
fi
ninja -C "$build" "${targets[@]/#/tests/fuzz/fuzz-}" >/dev/null || exit 1

work=$(mktemp -d "${TMPDIR:-/tmp}/opbackup-fuzz.XXXXXX")
crashdir=$build/fuzz-crashes
mkdir -p "$crashdir"
passed=0
failed=0

for t in "${targets[@]}"; do
        corpus=$work/corpus-$t
        log=$work/$t.log
        mkdir -p "$corpus" "$work/tmp-$t"
        cp tests/fuzz/corpus/"$t"/* "$corpus"/ 2>/dev/null
        # The targets' scratch folders (distinfo, config) go to $TMPDIR, removed with $work.
        TMPDIR=$work/tmp-$t "$build"/tests/fuzz/fuzz-"$t" "$corpus" \
                -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
                -artifact_prefix="$crashdir/$t-" >"$log" 2>&1
        rc=$?
        # The last status line, e.g. "#123456 DONE cov: 812 ft: 2190 corp: 90/1Mb lim: 4096 exec/s: 5000 ...".
        last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
        cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
        ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
        execs=$(sed -nE 's/^stat::average_exec_per_sec: *([0-9]+)/\1/p' "$log")
        runs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "$log")
        crash=$(sed -nE 's/.*Test unit written to (.*)$/\1/p' "$log" | tail -n 1)
        if [ "$rc" = 0 ] && [ -z "$crash" ]; then
                status=ok
                passed=$((passed + 1))
        else
                status=FAILED
                failed=$((failed + 1))
                cp "$log" "$crashdir/$t.log"
        fi
        printf '%-18s %-6s runs: %-9s exec/s: %-7s cov: %-6s ft: %-6s crashes: %s\n' "$t" "$status" \
                "${runs:-?}" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$([ -n "$crash" ] && echo 1 || echo 0)"
        if [ "$status" != ok ]; then
                grep -m1 -E '^==[0-9]+==ERROR|runtime error|deadly signal|ERROR: libFuzzer' "$log" | sed 's/^/        /'
                echo "        crash input: ${crash:-none (exit status $rc)}; log: $crashdir/$t.log"
        fi
done

rm -rf "$work"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
