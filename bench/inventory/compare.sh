#!/usr/bin/env bash
# Compare npmir's inventory scanner with osv-scanner v2.6.0 on the same
# corpus, offline, for the same three targets: wall time, peak RSS and the
# files each reports. Not part of `make test`: it installs osv-scanner (a
# few minutes the first time) and needs the shared fixtures next to the repo.
#
#   bash bench/inventory/compare.sh            # keeps its work dir under $TMPDIR
#   RUNS=5 bash bench/inventory/compare.sh     # timed runs per tool (median reported)
#   OSV_SCANNER=/path/to/osv-scanner bash bench/inventory/compare.sh
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
fixtures="${FIXTURES:-$repo/../shared/fixtures/lockfiles/real}"
runs="${RUNS:-3}"
work="${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/npmir-invbench.XXXXXX")}"
targets=(debug@4.4.2 chalk@5.6.1 ansi-styles@6.2.2)
targs=()
for t in "${targets[@]}"; do targs+=(-target "$t"); done

[ -d "$fixtures" ] || { echo "fixtures not found at $fixtures" >&2; exit 1; }
if [ ! -x /usr/bin/time ]; then
	echo "installing GNU time (for peak RSS)" >&2
	apt-get install -y time >/dev/null
fi

echo "work dir: $work" >&2
mkdir -p "$work/bin"

# npmir's scanner, built from this checkout.
(cd "$repo" && go build -o "$work/bin/invbench" ./bench/inventory/cmd/invbench)

# osv-scanner v2.6.0 needs a newer Go than this module's.
osv="${OSV_SCANNER:-$work/bin/osv-scanner}"
if [ ! -x "$osv" ]; then
	echo "installing osv-scanner v2.6.0 (takes a few minutes)" >&2
	(cd "$work" && GOBIN="$work/bin" GOTOOLCHAIN=go1.27.3 GOFLAGS= \
		go install github.com/google/osv-scanner/v2/cmd/osv-scanner@v2.6.0)
fi
"$osv" --version | head -1

# The corpus: 200 folders from the five real lockfiles, targets injected.
rm -rf "$work/corpus"
"$work/bin/invbench" corpus -src "$fixtures" -out "$work/corpus" -folders 200 "${targs[@]}"
du -sh "$work/corpus" | awk '{print "corpus size: " $1}'

# The local OSV database holding the same targets.
export OSV_SCANNER_LOCAL_DB_CACHE_DIRECTORY="$work/osvdb"
rm -rf "$OSV_SCANNER_LOCAL_DB_CACHE_DIRECTORY"
"$work/bin/invbench" osvdb -out "$OSV_SCANNER_LOCAL_DB_CACHE_DIRECTORY" "${targs[@]}"

run_npmir() { "$work/bin/invbench" scan "${targs[@]}" "$work/corpus" >"$work/npmir.files" 2>"$work/npmir.log"; }
run_osv() {
	# Exit code 1 means "vulnerabilities found".
	"$osv" scan source -r --offline --offline-vulnerabilities --format json \
		--output-file "$work/osv.json" "$work/corpus" >"$work/osv.log" 2>&1 || [ $? -eq 1 ]
}

# One warm-up run each (page cache, database unzip), then timed runs.
measure() {
	local name=$1 fn=$2 i
	$fn
	: >"$work/$name.times"
	for ((i = 0; i < runs; i++)); do
		/usr/bin/time -f '%e %M' -o "$work/$name.time1" bash -c "$(declare -f "$fn"); work='$work'; osv='$osv'; targs=(${targs[*]}); $fn"
		cat "$work/$name.time1" >>"$work/$name.times"
	done
	sort -n "$work/$name.times" | awk -v n="$runs" 'NR == int((n+1)/2) {print $1, $2}' | {
		read -r secs rss
		max_rss=$(sort -k2 -n "$work/$name.times" | tail -1 | awk '{print $2}')
		echo "$secs $max_rss"
	}
}

read -r npmir_s npmir_kb < <(measure npmir run_npmir)
read -r osv_s osv_kb < <(measure osv run_osv)
"$work/bin/invbench" osvfiles <"$work/osv.json" >"$work/osv.files"

echo
echo "npmir inventory: median ${npmir_s}s over $runs runs, peak RSS $((npmir_kb / 1024)) MB"
echo "  $(cat "$work/npmir.log" | head -1)"
echo "osv-scanner:     median ${osv_s}s over $runs runs, peak RSS $((osv_kb / 1024)) MB"
awk -v a="$osv_s" -v b="$npmir_s" 'BEGIN { printf "speed-up: %.1fx\n", a / (b > 0 ? b : 0.001) }'
echo "files with a finding: npmir $(wc -l <"$work/npmir.files"), osv-scanner $(wc -l <"$work/osv.files")"
if diff -u "$work/osv.files" "$work/npmir.files" >"$work/files.diff"; then
	echo "file-level findings: identical"
else
	echo "file-level findings: DIFFERENT (see $work/files.diff)"
	head -20 "$work/files.diff"
	exit 1
fi
