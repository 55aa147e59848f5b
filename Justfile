# pullproof task runner. `just` lists the recipes.

set shell := ["bash", "-euo", "pipefail", "-c"]

pullproof := "cargo run -q -p pullproof --"
pulldoctor := "cargo run -q -p pulldoctor --"

# Arguments reach the programs as they were given (`[positional-arguments]`): quotes, `$`
# and spaces in a message stay text, never shell code.

# List the recipes.
default:
    @just --list

# Run one scenario end to end (host backend, needs root), e.g. `just scenario private-dns-missing`.
[positional-arguments]
scenario NAME *ARGS: build kubernetes
    target/debug/pullproof run "$@"

# Run every scenario (or those matching ARGS: globs, --tag), four at a time.
[positional-arguments]
scenarios *ARGS: build kubernetes
    target/debug/pullproof run --parallel 4 "$@"

# Build pullproof and pulldoctor.
build:
    cargo build -q -p pullproof -p pulldoctor

# Build the pinned Kubernetes, etcd, containerd and acr-credential-provider from their Go modules
# (scripts/kubernetes.env) into ~/.cache/pullproof, once per version.
kubernetes:
    scripts/kubernetes.sh >/dev/null

# Start Debian's Docker engine for kind, set up for these machines (scripts/kind/docker.sh).
docker-up:
    scripts/kind/docker.sh start

# Stop it, removing kind clusters and pullproof containers first.
docker-down:
    scripts/kind/docker.sh stop

# Build the kind node image offline (kubeadm and kind from their Go modules, a Debian root
# file system, the pinned binaries and control-plane images): pullproof/kind-node:VERSION.
kind-image: docker-up
    scripts/kubernetes.sh --kind >/dev/null
    scripts/kind/node-image.sh

# A kind cluster, a local TLS registry named like ACR, and a pod pulling from it; all removed after.
kind-smoke: kind-image
    scripts/kind/smoke.sh

# List the scenario catalog.
[positional-arguments]
list *ARGS:
    {{pullproof}} list "$@"

# Check every scenario and baseline file.
[positional-arguments]
validate *ARGS:
    {{pullproof}} validate "$@"

# Show what a scenario run does, without doing it.
[positional-arguments]
plan NAME *ARGS:
    {{pullproof}} plan "$@"

# Explain one image-pull error message.
[positional-arguments]
explain MESSAGE *ARGS:
    {{pulldoctor}} explain "$@"

# Regenerate the JSON Schemas from the Rust types.
schema:
    {{pullproof}} schema scenario --write
    {{pullproof}} schema baseline --write
    {{pulldoctor}} schema report > engine/schema/report.schema.json
    {{pulldoctor}} schema explain > engine/schema/explain.schema.json

# Run the whole test suite (what CI runs).
test:
    cargo test --workspace --doc -q
    cargo nextest run --workspace --no-fail-fast

# Formatting and lints, as CI checks them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Fuzz one target (or `all`) for SECONDS (default 30), seeded from the fixtures; fails on a crash.
fuzz TARGET="all" SECONDS="30":
    scripts/fuzz.sh {{TARGET}} {{SECONDS}}

# The whole catalog at several --parallel values (BENCH_PARALLEL="1 2 3 4 6"): where wall time
# stops improving (README "Performance").
bench-parallel: build kubernetes
    scripts/bench-parallel.sh

# Soak: the catalog in a loop for MINUTES, with flakes, open files, memory and leftovers after
# each loop (README "Reliability").
soak MINUTES="30": build kubernetes
    scripts/soak.sh {{MINUTES}}

# Benchmarks (see README "Performance"): pulldoctor on a 5,000-pod dump, and the host backend.
bench: build kubernetes
    cargo bench -p pulldoctor --bench diagnose
    scripts/bench-host.sh
