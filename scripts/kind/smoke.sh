#!/usr/bin/env bash
# The kind backend's parts, end to end, by hand: a kind cluster from the offline node image, a
# local registry container on kind's network answering as an ACR login server over TLS (a CA
# made for the run), an image pushed to it, and a pod that pulls and runs it. Everything is
# deleted at the end, on failure and on Ctrl-C. Prints each step's time.
#
# Needs: scripts/kind/docker.sh start, scripts/kind/node-image.sh, skopeo, openssl.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../kubernetes.env"
cache=${PULLPROOF_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pullproof}
kind=$cache/kind/$KIND_VERSION/bin/kind
kubectl=$cache/kubernetes/$KUBERNETES_VERSION/bin/kubectl
node_image=pullproof/kind-node:$KUBERNETES_VERSION
login=${LOGIN_SERVER:-pullproofacr.azurecr.io}
cluster=pp-smoke-$$
registry=pp-registry-$$
say() { printf 'smoke.sh: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
[[ -x $kind ]] || die "kind is missing: scripts/kubernetes.sh --kind"
docker image inspect "$node_image" >/dev/null 2>&1 || die "$node_image is missing: scripts/kind/node-image.sh (just kind-image)"
for t in skopeo openssl; do command -v "$t" >/dev/null || die "$t is missing: apt-get install $t"; done

work=$(mktemp -d)
export KUBECONFIG=$work/kubeconfig
export KUBECACHEDIR=$work/kube-cache
cleanup() {
  "$kind" delete cluster --name "$cluster" --kubeconfig "$KUBECONFIG" >/dev/null 2>&1 || true
  docker rm -f -v "$registry" >/dev/null 2>&1 || true
  docker rmi pullproof/smoke-app:1 pullproof/registry:smoke >/dev/null 2>&1 || true
  # kind's network, once nothing of anyone's is on it
  [[ -z $(docker network inspect kind -f '{{range .Containers}}x{{end}}' 2>/dev/null) ]] && docker network rm kind >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
t0=$(date +%s.%N)
step() { say "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%6.1f s", b - a }')  $*"; }

# The cluster: no default CNI (a bridge config is in the image), no kube-proxy, no CoreDNS;
# cgroup v1 allowed; containerd may not lower oom_score_adj (root lacks CAP_SYS_RESOURCE here)
# and reads registry hosts from certs.d.
cat >"$work/cluster.yaml" <<YAML
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
networking:
  disableDefaultCNI: true
  kubeProxyMode: none
nodes:
- role: control-plane
  labels: { pullproof.io/owner: smoke }
kubeadmConfigPatches:
- |
  kind: InitConfiguration
  skipPhases: [preflight, addon/kube-proxy, addon/coredns]
- |
  kind: KubeletConfiguration
  failCgroupV1: false
containerdConfigPatches:
- |-
  [plugins."io.containerd.grpc.v1.cri"]
    restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "/etc/containerd/certs.d"
YAML
"$kind" create cluster --name "$cluster" --image "$node_image" --config "$work/cluster.yaml" \
  --kubeconfig "$KUBECONFIG" --wait 120s >"$work/create.log" 2>&1 || { cat "$work/create.log" >&2; die "kind create cluster failed"; }
step "cluster $cluster created"
"$kubectl" wait --for=condition=Ready node --all --timeout=120s >/dev/null
step "node Ready"

# The registry: Debian's docker-registry in an image of its own, TLS for the login server name.
mkdir -p "$work/pki" "$work/rootfs"/{usr/bin,lib/x86_64-linux-gnu,lib64,etc/docker/registry,var/lib/registry,certs}
(cd "$work/pki"
  openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=pullproof smoke CA" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign -keyout ca.key -out ca.crt 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$login" -keyout server.key -out server.csr 2>/dev/null
  printf 'subjectAltName=DNS:%s,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' "$login" >ext.cnf
  openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 -extfile ext.cnf -out server.crt 2>/dev/null)
r=$work/rootfs
install -m 0755 /usr/bin/docker-registry "$r/usr/bin/"
cp -L /lib/x86_64-linux-gnu/libc.so.6 "$r/lib/x86_64-linux-gnu/"; cp -L /lib64/ld-linux-x86-64.so.2 "$r/lib64/"
cp "$work/pki/server.crt" "$work/pki/server.key" "$r/certs/"
printf 'version: 0.1\nstorage:\n  filesystem: {rootdirectory: /var/lib/registry}\nhttp:\n  addr: :443\n  tls: {certificate: /certs/server.crt, key: /certs/server.key}\n' >"$r/etc/docker/registry/config.yml"
tar -C "$r" -c . | docker import --change 'ENTRYPOINT ["/usr/bin/docker-registry","serve","/etc/docker/registry/config.yml"]' \
  --change 'LABEL pullproof.io/owner=smoke' - "pullproof/registry:smoke" >/dev/null
docker run -d --name "$registry" --label pullproof.io/owner=smoke --network kind --network-alias "$login" \
  -p 127.0.0.1::443 pullproof/registry:smoke >/dev/null
port=$(docker port "$registry" 443/tcp | head -1 | sed 's/.*://')
for _ in $(seq 1 50); do curl -fsS --cacert "$work/pki/ca.crt" --resolve "$login:$port:127.0.0.1" "https://$login:$port/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
step "registry $login up (127.0.0.1:$port)"

# An image: Debian's busybox-static, one layer, pushed with skopeo.
mkdir -p "$work/app/bin"; cp /bin/busybox "$work/app/bin/busybox"
tar -C "$work/app" -c . | docker import --change 'ENTRYPOINT ["/bin/busybox"]' - pullproof/smoke-app:1 >/dev/null
mkdir -p "$work/certs"; cp "$work/pki/ca.crt" "$work/certs/"
skopeo copy --quiet --dest-cert-dir "$work/certs" docker-daemon:pullproof/smoke-app:1 "docker://127.0.0.1:$port/app:1"
step "image pushed"

# The node trusts the registry's CA for its name, the way kind documents local registries.
n=$cluster-control-plane
docker exec "$n" mkdir -p "/etc/containerd/certs.d/$login"
docker cp "$work/pki/ca.crt" "$n:/etc/containerd/certs.d/$login/ca.crt"
printf 'server = "https://%s"\n\n[host."https://%s"]\n  capabilities = ["pull", "resolve"]\n  ca = "/etc/containerd/certs.d/%s/ca.crt"\n' \
  "$login" "$login" "$login" | docker exec -i "$n" tee "/etc/containerd/certs.d/$login/hosts.toml" >/dev/null
"$kubectl" apply -f - >/dev/null <<YAML
apiVersion: v1
kind: ConfigMap
metadata: { name: local-registry-hosting, namespace: kube-public }
data:
  localRegistryHosting.v1: |
    host: "127.0.0.1:$port"
    hostFromClusterNetwork: "$login"
    help: "https://kind.sigs.k8s.io/docs/user/local-registry/"
YAML

"$kubectl" run app --image="$login/app:1" --restart=Never --command -- /bin/busybox sh -c 'echo pulled-from-the-local-registry; sleep 3600' >/dev/null
"$kubectl" wait --for=condition=Ready pod/app --timeout=120s >/dev/null || { "$kubectl" describe pod app >&2; die "the pod did not start"; }
out=$("$kubectl" logs app)
[[ $out == pulled-from-the-local-registry ]] || die "unexpected output: $out"
step "pod ran the image: $out"
