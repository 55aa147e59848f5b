#!/usr/bin/env bash
# Measures the host backend: the whole catalog from cold with --parallel 4, and the median wall
# time of one scenario without a dropped-packet timeout (set-up and teardown included).
# Needs root and the packages .ci/run installs. Prints a Markdown table for the README.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${BENCH_RUNS:-7}
one=${BENCH_SCENARIO:-acrpull-role-missing}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
pp=target/debug/pullproof

ms() { python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["millis"] if sys.argv[2]=="run" else r["scenarios"][0]["millis"])' "$1" "$2"; }

"$pp" run --parallel 4 --report-dir "$out/catalog" >/dev/null 2>&1 || { echo "catalog run failed: see $out/catalog" >&2; exit 1; }
catalog=$(ms "$out/catalog/run.json" run)

samples=()
for i in $(seq "$runs"); do
  "$pp" run "$one" --report-dir "$out/one-$i" >/dev/null 2>&1
  samples+=("$(ms "$out/one-$i/run.json" scenario)")
done
median=$(printf '%s\n' "${samples[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')

echo "| measurement | wall time |"
echo "|---|---|"
python3 -c 'import sys; print("| whole catalog (17 scenarios), cold, --parallel 4 | %.1f s |" % (int(sys.argv[1]) / 1000))' "$catalog"
python3 -c 'import sys; print("| one scenario (%s), median of %s, set-up and teardown included | %.2f s |" % (sys.argv[1], sys.argv[2], int(sys.argv[3]) / 1000))' "$one" "$runs" "$median"
echo
echo "samples (ms): ${samples[*]}"
