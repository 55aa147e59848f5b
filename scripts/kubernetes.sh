#!/usr/bin/env bash
# Builds the real components of a host world from their Go modules, at the versions pinned in
# scripts/kubernetes.env, into a cache keyed by component and version:
#
#   ${PULLPROOF_CACHE:-~/.cache/pullproof}/kubernetes/VERSION/bin/{kube-apiserver,kube-controller-manager,kube-scheduler,kubelet,kubectl}
#   ${PULLPROOF_CACHE:-~/.cache/pullproof}/etcd/VERSION/bin/etcd
#   ${PULLPROOF_CACHE:-~/.cache/pullproof}/acr-credential-provider/VERSION/bin/acr-credential-provider
#   ${PULLPROOF_CACHE:-~/.cache/pullproof}/containerd/VERSION/bin/{containerd,containerd-shim-runc-v2}
#
# Each folder has a SHA256SUMS manifest and a BUILDINFO; a folder whose manifest verifies is
# reused as it is. No source is copied anywhere: each build is a throw-away wrapper module that
# requires the release and pins the modules the release's own go.mod replaces with local paths.
#
# Usage: scripts/kubernetes.sh            build what is missing, then print the cache folders
#        scripts/kubernetes.sh --kind     also kubeadm and the kind CLI (the kind backend)
#        scripts/kubernetes.sh --check    exit 0 only if every component is cached and verifies
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/kubernetes.env
source "$here/kubernetes.env"
cache=${PULLPROOF_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pullproof}

say() { printf 'kubernetes.sh: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

dir_of() { echo "$cache/$1/$2"; }

verified() { # DIR: the manifest exists and every binary in it matches
  [[ -f "$1/SHA256SUMS" ]] && (cd "$1/bin" && sha256sum --quiet --status -c ../SHA256SUMS)
}

seal() { # DIR NAME VERSION SECONDS: write the manifest and build info of a finished build
  (cd "$1/bin" && sha256sum -- * >../SHA256SUMS)
  {
    echo "component=$2"
    echo "version=$3"
    echo "go=$(go env GOVERSION)"
    echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "seconds=$4"
  } >"$1/BUILDINFO"
}

# --check: report, build nothing.
if [[ ${1:-} == --check ]]; then
  ok=0
  for c in "kubernetes $KUBERNETES_VERSION" "etcd $ETCD_VERSION" \
    "acr-credential-provider $ACR_CREDENTIAL_PROVIDER_VERSION" "containerd $CONTAINERD_VERSION"; do
    set -- $c
    if verified "$(dir_of "$1" "$2")"; then say "$1 $2: cached"; else say "$1 $2: missing"; ok=1; fi
  done
  exit $ok
fi

command -v go >/dev/null 2>&1 || die "Go is not installed (needed to build Kubernetes, etcd,
  containerd and acr-credential-provider from their modules). Install Go 1.25 or newer
  (Debian: a release from the Go module proxy's toolchain, or 'apt-get install golang' where it
  is new enough), then run this script again."
command -v sha256sum >/dev/null 2>&1 || die "sha256sum is missing: apt-get install coreutils"

export GOFLAGS="${GOFLAGS:-} -mod=mod"
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}

module_info() { # MODULE@VERSION -> prints the JSON of 'go mod download -json', or dies naming the proxy
  local out
  if ! out=$(cd "$work" && go mod download -json "$1" 2>&1); then
    die "cannot download $1 from the Go module proxy ($(go env GOPROXY)):
$out
  Check that the proxy is reachable (GOPROXY, network) and that this version is served."
  fi
  printf '%s\n' "$out"
}

json_field() { python3 -c 'import json,sys; d=json.load(sys.stdin); v=d
for k in sys.argv[1].split("."):
    v=v.get(k, {}) if isinstance(v, dict) else {}
print(v if isinstance(v, str) else "")' "$1"; }

go_line() { awk '$1=="go"{print $2; exit}' "$1"; }
godebug_lines() { awk '/^godebug /{print} /^godebug \(/{f=1} f{print} f&&/\)/{f=0}' "$1"; }

check_go_version() { # MODULE_GO_LINE NAME
  local need=$1 have
  have=$(go env GOVERSION | sed 's/^go//')
  if [[ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | head -1)" != "$need" ]]; then
    die "$2 needs Go $need, this machine has Go $have. Install a newer Go, or
  export GOTOOLCHAIN=go$need (the go command then fetches that toolchain from the module proxy)."
  fi
}

# A wrapper module: requires MODULE@VERSION, repeats its go and godebug lines, and replaces every
# module the release's go.mod points at a local folder with that module at PIN (a version).
wrapper() { # DIR MODULE VERSION GOMOD_FILE PIN_FN [EXTRA_REQUIRE...]
  local dir=$1 module=$2 version=$3 gomod=$4 pin_fn=$5 extra
  shift 5
  mkdir -p "$dir"
  {
    echo "module pullproof.local/build"
    echo
    echo "go $(go_line "$gomod")"
    echo
    godebug_lines "$gomod"
    echo
    echo "require $module $version"
    for extra in "$@"; do echo "require $extra"; done
    echo
    echo "replace ("
    awk '$2=="=>" && $3 ~ /^\.\.?\// {print $1}' "$gomod" | sort -u | while read -r dep; do
      pin=$("$pin_fn" "$dep")
      [[ -n "$pin" ]] && echo "	$dep => $dep $pin"
    done
    echo ")"
  } >"$dir/go.mod"
}

build() { # NAME VERSION FN: run FN OUT_BIN into a fresh folder, seal it, move it into place
  local name=$1 version=$2 fn=$3 dest tmp start
  dest=$(dir_of "$name" "$version")
  if verified "$dest"; then say "$name $version: cached in $dest"; return; fi
  say "$name $version: building (this takes minutes on a cold cache)"
  start=$(date +%s)
  tmp="$cache/.build-$name-$$"
  rm -rf "$tmp"; mkdir -p "$tmp/bin"
  "$fn" "$tmp/bin" "$tmp/src"
  rm -rf "$tmp/src"
  seal "$tmp" "$name" "$version" $(($(date +%s) - start))
  rm -rf "$dest"; mkdir -p "$(dirname "$dest")"; mv "$tmp" "$dest"
  say "$name $version: built in $(($(date +%s) - start)) s into $dest"
}

work=$(mktemp -d)
trap 'rm -rf "$work"; rm -rf "$cache"/.build-*-$$' EXIT
mkdir -p "$cache"
echo 'module pullproof.local/probe' >"$work/go.mod"

# --- Kubernetes -----------------------------------------------------------------------------
staging_pin() { [[ $1 == k8s.io/* ]] && echo "v0.${KUBERNETES_VERSION#v1.}"; }
# A wrapper module for the release, and the -ldflags that stamp it (into $ldflags).
kubernetes_module() { # SRC
  local src=$1 info gomod commit date minor pkg
  info=$(module_info "k8s.io/kubernetes@$KUBERNETES_VERSION")
  gomod=$(json_field GoMod <<<"$info")
  check_go_version "$(go_line "$gomod")" "Kubernetes $KUBERNETES_VERSION"
  wrapper "$src" k8s.io/kubernetes "$KUBERNETES_VERSION" "$gomod" staging_pin
  # The proxy's .info carries the release commit when it knows it (Origin.Hash); the release
  # time is always there and is the build date, so rebuilds are byte-for-byte the same.
  commit=$(json_field Origin.Hash <<<"$(cd "$work" && go list -m -json "k8s.io/kubernetes@$KUBERNETES_VERSION")")
  date=$(cd "$work" && go list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' "k8s.io/kubernetes@$KUBERNETES_VERSION")
  minor=${KUBERNETES_VERSION#v1.}; minor=${minor%%.*}
  ldflags=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitCommit=$commit -X $pkg.gitTreeState=archive -X $pkg.buildDate=$date"
  done
}

# `go get` of the release's commands, each at the pinned release: a bare `go get PKG` means
# PKG@upgrade, which moves the module to the newest release the proxy serves (seen: v1.37.2
# beside v0.35.4 staging modules).
kubernetes_get() { # SRC CMD...
  local src=$1; shift
  local pinned=("${@/#/k8s.io/kubernetes/cmd/}"); pinned=("${pinned[@]/%/@$KUBERNETES_VERSION}")
  (cd "$src" && go get "${pinned[@]}" 2>&1 | grep -v '^go: \(downloading\|added\|upgraded\)' >&2 || true)
  local got; got=$(cd "$src" && go list -m -f '{{.Version}}' k8s.io/kubernetes)
  [[ $got == "$KUBERNETES_VERSION" ]] || die "the build module resolved k8s.io/kubernetes to $got, not $KUBERNETES_VERSION"
}

build_kubernetes() {
  local out=$1 src=$2 ldflags
  kubernetes_module "$src"
  kubernetes_get "$src" kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet
  # Upstream's release flags: static for all but the kubelet (before 1.36), selinux and notest tags.
  (cd "$src" && CGO_ENABLED=0 go build -trimpath -tags=selinux,notest -ldflags "-s -w $ldflags" \
    -o "$out/" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl)
  (cd "$src" && CGO_ENABLED=1 go build -trimpath -tags=selinux,notest -ldflags "-s -w $ldflags" \
    -o "$out/kubelet" k8s.io/kubernetes/cmd/kubelet)
}

# kubeadm (only with --kind: kind's node image runs kubeadm init).
build_kubeadm() {
  local out=$1 src=$2 ldflags
  kubernetes_module "$src"
  kubernetes_get "$src" kubeadm
  (cd "$src" && CGO_ENABLED=0 go build -trimpath -tags=selinux,notest -ldflags "-s -w $ldflags" \
    -o "$out/kubeadm" k8s.io/kubernetes/cmd/kubeadm)
}

# The kind CLI (only with --kind). Its go.mod has no local replaces: built as released.
build_kind() {
  local out=$1 src=$2
  mkdir -p "$src"
  (cd "$src" && GOBIN=$out CGO_ENABLED=0 go install -trimpath "sigs.k8s.io/kind@$KIND_VERSION")
}

# --- etcd -------------------------------------------------------------------------------------
etcd_pin() { [[ $1 == go.etcd.io/etcd/* ]] && echo "$ETCD_VERSION"; }
build_etcd() {
  local out=$1 src=$2 info gomod
  info=$(module_info "go.etcd.io/etcd/server/v3@$ETCD_VERSION")
  gomod=$(json_field GoMod <<<"$info")
  check_go_version "$(go_line "$gomod")" "etcd $ETCD_VERSION"
  wrapper "$src" go.etcd.io/etcd/server/v3 "$ETCD_VERSION" "$gomod" etcd_pin
  (cd "$src" && go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" 2>&1 | grep -v '^go: \(downloading\|added\|upgraded\)' >&2 || true)
  (cd "$src" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3)
}

# --- acr-credential-provider (its go.mod has no local replaces: built as released) -----------
none_pin() { :; }
build_acr() {
  local out=$1 src=$2 info gomod pkg=sigs.k8s.io/cloud-provider-azure/cmd/acr-credential-provider
  info=$(module_info "sigs.k8s.io/cloud-provider-azure@$ACR_CREDENTIAL_PROVIDER_VERSION")
  gomod=$(json_field GoMod <<<"$info")
  check_go_version "$(go_line "$gomod")" "acr-credential-provider $ACR_CREDENTIAL_PROVIDER_VERSION"
  wrapper "$src" sigs.k8s.io/cloud-provider-azure "$ACR_CREDENTIAL_PROVIDER_VERSION" "$gomod" none_pin \
    "sigs.k8s.io/cloud-provider-azure/pkg/azclient $ACR_AZCLIENT_VERSION"
  (cd "$src" && go get "$pkg@$ACR_CREDENTIAL_PROVIDER_VERSION" 2>&1 | grep -v '^go: \(downloading\|added\|upgraded\)' >&2 || true)
  (cd "$src" && CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X sigs.k8s.io/cloud-provider-azure/pkg/version.gitVersion=$ACR_CREDENTIAL_PROVIDER_VERSION" \
    -o "$out/acr-credential-provider" "$pkg")
}

# --- containerd ---------------------------------------------------------------------------------
build_containerd() {
  local out=$1 src=$2 info gomod m=github.com/containerd/containerd/v2
  info=$(module_info "$m@$CONTAINERD_VERSION")
  gomod=$(json_field GoMod <<<"$info")
  check_go_version "$(go_line "$gomod")" "containerd $CONTAINERD_VERSION"
  wrapper "$src" "$m" "$CONTAINERD_VERSION" "$gomod" none_pin
  (cd "$src" && go get "$m/cmd/containerd@$CONTAINERD_VERSION" "$m/cmd/containerd-shim-runc-v2@$CONTAINERD_VERSION" \
    "$m/cmd/ctr@$CONTAINERD_VERSION" 2>&1 | grep -v '^go: \(downloading\|added\|upgraded\)' >&2 || true)
  local ld="-s -w -X $m/version.Version=$CONTAINERD_VERSION -X $m/version.Package=$m"
  # The btrfs snapshotter needs C headers and is never used here; upstream's static shim.
  (cd "$src" && CGO_ENABLED=1 go build -trimpath -tags no_btrfs -ldflags "$ld" -o "$out/" "$m/cmd/containerd" "$m/cmd/ctr")
  (cd "$src" && CGO_ENABLED=0 go build -trimpath -ldflags "$ld" -o "$out/containerd-shim-runc-v2" "$m/cmd/containerd-shim-runc-v2")
}

build etcd "$ETCD_VERSION" build_etcd
build acr-credential-provider "$ACR_CREDENTIAL_PROVIDER_VERSION" build_acr
build containerd "$CONTAINERD_VERSION" build_containerd
build kubernetes "$KUBERNETES_VERSION" build_kubernetes
built=("kubernetes $KUBERNETES_VERSION" "etcd $ETCD_VERSION" \
  "acr-credential-provider $ACR_CREDENTIAL_PROVIDER_VERSION" "containerd $CONTAINERD_VERSION")
if [[ ${1:-} == --kind ]]; then
  build kubeadm "$KUBERNETES_VERSION" build_kubeadm
  build kind "$KIND_VERSION" build_kind
  built+=("kubeadm $KUBERNETES_VERSION" "kind $KIND_VERSION")
fi

for c in "${built[@]}"; do
  set -- $c
  echo "$(dir_of "$1" "$2")/bin"
done
