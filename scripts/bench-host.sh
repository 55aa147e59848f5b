#!/usr/bin/env bash
# Measures the host backend with real Kubernetes: the control plane's cold start, one scenario
# without a dropped-packet timeout cold (control plane started by the run) and warm (control
# plane already up: the second scenario of a run), and the whole catalog with --parallel 4.
# Needs root, the packages .ci/run installs and `just kubernetes`. Prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${BENCH_RUNS:-5}
one=${BENCH_SCENARIO:-image-tag-not-found}
first=${BENCH_FIRST:-acrpull-role-missing}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
pp=target/debug/pullproof

field() { python3 - "$@" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
what, name = sys.argv[2], (sys.argv[3] if len(sys.argv) > 3 else None)
if what == "run":
    print(r["millis"])
elif what == "controlplane":
    print(r["kubernetes"]["controlPlaneStartupMillis"])
else:
    print(next(s["millis"] for s in r["scenarios"] if s["scenario"] == name and s["status"] == "passed"))
PY
}
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

"$pp" run --parallel 4 --report-dir "$out/catalog" >/dev/null 2>&1 || { echo "catalog run failed: see $out/catalog" >&2; exit 1; }
catalog=$(field "$out/catalog/run.json" run)

cp=(); cold=(); warm=()
for i in $(seq "$runs"); do
  "$pp" run "$one" --report-dir "$out/cold-$i" >/dev/null 2>&1
  cold+=("$(field "$out/cold-$i/run.json" scenario "$one")")
  cp+=("$(field "$out/cold-$i/run.json" controlplane)")
  "$pp" run --parallel 1 "$first" "$one" --report-dir "$out/warm-$i" >/dev/null 2>&1
  warm+=("$(field "$out/warm-$i/run.json" scenario "$one")")
done

s() { python3 -c 'import sys; print("%.1f s" % (int(sys.argv[1]) / 1000))' "$1"; }
echo "| measurement (median of $runs where repeated) | wall time |"
echo "|---|---|"
echo "| control plane cold start (etcd, kube-apiserver ready, controller-manager, scheduler) | $(s "$(median "${cp[@]}")") |"
echo "| one scenario ($one), control plane already up | $(s "$(median "${warm[@]}")") |"
echo "| one scenario ($one), cold (its run starts the control plane) | $(s "$(median "${cold[@]}")") |"
echo "| whole catalog (17 scenarios), cold, --parallel 4 | $(s "$catalog") |"
echo
echo "samples (ms): control plane ${cp[*]}; warm ${warm[*]}; cold ${cold[*]}"
