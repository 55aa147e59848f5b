#!/usr/bin/env bash
# Soak: the whole catalog in a loop for MINUTES (default 30) at --parallel 4. After each loop it
# prints the catalog's wall time, scenarios that did not pass, the machine's open file handles
# (/proc/sys/fs/file-nr), available memory, the harness's peak resident size, and what of ours is
# still on the machine (network namespaces, processes, run folders, leases). A summary at the end
# names flaky scenarios and the growth of each figure from the first loop to the last.
# Needs root, the packages .ci/run installs and `just kubernetes`.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-30}
parallel=${SOAK_PARALLEL:-4}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
pp=target/debug/pullproof
end=$(( $(date +%s) + minutes * 60 ))
loop=0
echo "loop,seconds,passed,total,not_passed,open_files,mem_available_mib,harness_max_rss_mib,namespaces,processes,run_folders,leases" > "$out/soak.csv"
while [ "$(date +%s)" -lt "$end" ]; do
  loop=$((loop + 1))
  rss=$(python3 - "$pp" "$parallel" "$out/loop$loop" <<'PY'
import resource, subprocess, sys
pp, j, d = sys.argv[1:]
subprocess.run([pp, "run", "--parallel", j, "--report-dir", d], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)
PY
)
  files=$(cut -f1 /proc/sys/fs/file-nr)
  mem=$(awk '/MemAvailable/ {print int($2/1024)}' /proc/meminfo)
  ns=$(ls /run/netns 2>/dev/null | grep -c '^pp-' || true)
  procs=$(python3 -c '
import os
n = 0
for p in filter(str.isdigit, os.listdir("/proc")):
    if int(p) == os.getpid():
        continue
    try:
        c = open("/proc/%s/cmdline" % p, "rb").read()
    except OSError:
        continue
    n += b"/pullproof-" in c or b"docker-registry\0serve" in c
print(n)')
  folders=$(ls -d "${TMPDIR:-/tmp}"/pullproof-* 2>/dev/null | wc -l || true)
  leases=$(ls /run/pullproof/runs 2>/dev/null | wc -l || true)
  python3 - "$out/loop$loop/run.json" "$loop" "$files" "$mem" "$rss" "$ns" "$procs" "$folders" "$leases" >> "$out/soak.csv" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
bad = [s["scenario"] for s in r["scenarios"] if s["status"] != "passed"]
passed = len(r["scenarios"]) - len(bad)
print(",".join([sys.argv[2], "%.1f" % (r["millis"] / 1000), str(passed), str(len(r["scenarios"])), " ".join(bad) or "-"] + sys.argv[3:]))
PY
  tail -1 "$out/soak.csv"
done
python3 - "$out/soak.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
if not rows:
    sys.exit("no loop finished")
flaky = sorted({n for r in rows for n in r["not_passed"].split() if n != "-"})
print("\n%d loops; scenarios that did not pass at least once: %s" % (len(rows), ", ".join(flaky) or "none"))
for k in ["seconds", "open_files", "mem_available_mib", "harness_max_rss_mib", "namespaces", "processes", "run_folders", "leases"]:
    vals = [float(r[k]) for r in rows]
    print("%-20s first %8.1f  last %8.1f  min %8.1f  max %8.1f" % (k, vals[0], vals[-1], min(vals), max(vals)))
PY
