#!/usr/bin/env bash
# The whole catalog on the host backend at several --parallel values (default 1 2 3 4 6, or
# BENCH_PARALLEL="2 4"), cold each time: where does the wall time stop improving on this machine?
# Needs root, the packages .ci/run installs and `just kubernetes`. Prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
levels=${BENCH_PARALLEL:-1 2 3 4 6}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
pp=target/debug/pullproof
echo "| --parallel | wall time | passed | slowest scenario | sum of scenario times |"
echo "|---|---|---|---|---|"
for j in $levels; do
  if ! "$pp" run --parallel "$j" --report-dir "$out/j$j" >/dev/null 2>"$out/j$j.err"; then
    echo "catalog run at --parallel $j failed: $(tail -3 "$out/j$j.err")" >&2
  fi
  python3 - "$out/j$j/run.json" "$j" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
s = r["scenarios"]
passed = sum(1 for x in s if x["status"] == "passed")
slow = max(s, key=lambda x: x["millis"])
print("| %s | %.1f s | %d/%d | %s %.1f s | %.1f s |" % (
    sys.argv[2], r["millis"] / 1000, passed, len(s), slow["scenario"], slow["millis"] / 1000,
    sum(x["millis"] for x in s) / 1000))
PY
done
