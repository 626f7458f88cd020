#!/bin/sh
# Issue 5's contain benchmark: `npmir contain --maintainer … --since … --yes` of 800 packages
# against the simulated registry at 50 ms per request, at each concurrency, then one summary
# line: requests, concurrency, wall time, ideal (requests × 50 ms ÷ concurrency) and the ratio
# against the issue's 1.5 bound.
#
#   bench/contain/run.sh                      # concurrency 32 and 64, one run each
#   BENCH_CONCURRENCY=64 BENCH_COUNT=3 bench/contain/run.sh
#   BENCH_AFFECTED=100 bench/contain/run.sh   # 800 packages of which 100 have bad versions
#   BENCH_STRICT=1 bench/contain/run.sh       # exit 1 when a ratio exceeds 1.5
#
# Extra arguments go to `go test` (for example -cpuprofile cpu.out).
set -eu
cd "$(dirname "$0")/../.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! go test ./bench/contain -run '^$' -bench . -benchtime 1x -count "${BENCH_COUNT:-1}" -timeout 60m "$@" >"$log" 2>&1; then
	cat "$log"
	exit 1
fi
cat "$log"
grep 'SUMMARY' "$log" | sed 's/.*SUMMARY //' | awk -v strict="${BENCH_STRICT:-0}" '
{
	for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
	verdict = (v["ratio"] + 0 <= 1.5) ? "within 1.5" : "OVER 1.5"
	if (v["ratio"] + 0 > 1.5) over = 1
	line = line sep sprintf("c=%s: %s requests, wall %s, ideal %s, ratio %s (%s)", v["concurrency"], v["requests"], v["wall"], v["ideal"], v["ratio"], verdict)
	sep = "; "
	pk = v["packages"]; af = v["affected"]
}
END {
	printf "contain %s packages (%s affected) at 50 ms/request: %s\n", pk, af, line
	if (strict == 1 && over) exit 1
}'
