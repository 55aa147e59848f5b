#!/usr/bin/env bash
# Runs one cargo-fuzz target (fuzz/fuzz_targets/TARGET.rs) for SECONDS, seeded from the
# project's own fixtures, and fails on any crash (the crashing input is kept in
# fuzz/artifacts/TARGET/ and printed as a command to reproduce it).
#
# Usage: scripts/fuzz.sh TARGET [SECONDS]      one target (default 30 s)
#        scripts/fuzz.sh all [SECONDS]         every target, one after another
# Needs the nightly toolchain and cargo-fuzz (installed when missing).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
target=${1:?usage: scripts/fuzz.sh TARGET|all [SECONDS]}
seconds=${2:-30}
say() { printf 'fuzz.sh: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz

# Seeds: the texts each parser reads in real use, taken from the repository at run time.
seed() { # TARGET
  local dir=$root/fuzz/corpus/$1 i=0 f
  mkdir -p "$dir"
  case $1 in
    symptom)
      # every kubelet and containerd message the tests hold, one per file
      grep -rhoE '"(Failed to pull image|failed to pull and unpack|rpc error|Back-off pulling)[^"]*"' \
        "$root/engine/tests" "$root/fixtures" 2>/dev/null | sort -u | while read -r line; do
        i=$((i + 1)); printf '%s' "${line:1:${#line}-2}" >"$dir/seed-$i"
      done ;;
    scenario) cp "$root"/scenarios/*.yaml "$dir/" ;;
    pull_secret)
      for f in "$root"/fixtures/evidence/*/dump/*/secrets.json; do
        python3 - "$f" "$dir" <<'PY'
import base64, json, sys, os
items = json.load(open(sys.argv[1])).get("items", [])
for n, s in enumerate(items):
    for k, v in (s.get("data") or {}).items():
        if k in (".dockerconfigjson", ".dockercfg"):
            open(os.path.join(sys.argv[2], f"{os.path.basename(os.path.dirname(os.path.dirname(sys.argv[1])))}-{n}"), "wb").write(base64.b64decode(v))
PY
      done ;;
    inventory) for f in "$root"/fixtures/evidence/*/azure.json; do cp "$f" "$dir/$(basename "$(dirname "$f")").json"; done ;;
    emulator_request)
      printf '%s' '/subscriptions/s/resourceGroups/g/providers/Microsoft.Network/routeTables/t/routes/r' >"$dir/route"
      printf '%s' '/subscriptions/s/resourceGroups/g/providers/Microsoft.ContainerRegistry/registries/r/providers/Microsoft.Authorization/roleAssignments/a' >"$dir/assignment"
      printf '%s' 'repository:team/app:pull,push&registry:catalog:*' >"$dir/scopes"
      printf '%s' 'Bearer eyJhbGciOiJFUzI1NiJ9.eyJhdWQiOiJ4In0.c2ln' >"$dir/bearer" ;;
    *) die "unknown target $1 (see fuzz/fuzz_targets/)" ;;
  esac
}

run() { # TARGET
  seed "$1"
  say "$1: ${seconds}s, corpus $(ls "$root/fuzz/corpus/$1" | wc -l) files"
  (cd "$root/fuzz" && cargo +nightly fuzz run -s none --release "$1" "corpus/$1" -- \
    -max_total_time="$seconds" -max_len=65536 -print_final_stats=1 2>&1) | tee "$root/fuzz/last-$1.log" | grep -E '^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss|INFO: seed corpus|==|SUMMARY|thread .* panicked|Test unit written)' || true
  grep -qE 'SUMMARY|panicked|deadly signal|Test unit written' "$root/fuzz/last-$1.log" && die "$1 crashed: see fuzz/last-$1.log and fuzz/artifacts/$1/"
  return 0
}

if [[ $target == all ]]; then
  for t in symptom scenario pull_secret inventory emulator_request; do run "$t"; done
else
  run "$target"
fi
