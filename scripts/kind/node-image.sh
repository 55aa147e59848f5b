#!/usr/bin/env bash
# Builds the kind node image offline: pullproof/kind-node:KUBERNETES_VERSION, from Debian
# packages and the pinned builds in the cache, with every image kubeadm needs already inside.
#
# kind's own `kind build node-image` cannot run here: after the control-plane images it fetches
# every other image (etcd, pause, CoreDNS, kindnetd, local-path) with `ctr content fetch` inside
# the build container. So the image is assembled the way that command does it, by hand:
#   1. a Debian bookworm root file system (debootstrap) with what kind's base image installs;
#   2. kind's own static files (entrypoint, /kind/bin, containerd config, kubelet unit), taken
#      from the kind module in the Go module cache at build time;
#   3. the pinned containerd 2.1.5, kubelet, kubectl, kubeadm, Debian's runc and CNI plugins at
#      kind's paths, and a bridge CNI config (kind's own CNI, kindnetd, is disabled);
#   4. the images kubeadm expects (kube-apiserver, kube-controller-manager, kube-scheduler,
#      etcd, pause), each built from the same pinned binaries (pause from the release's own
#      pause.c), imported into the node's containerd and pinned.
#
# Needs: a running Docker engine (scripts/kind/docker.sh start), debootstrap, gcc, jq, and
# `scripts/kubernetes.sh --kind` (kubeadm and kind). Rebuilds only when an input changed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../kubernetes.env"
cache=${PULLPROOF_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pullproof}
say() { printf 'node-image.sh: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

kb=$cache/kubernetes/$KUBERNETES_VERSION/bin
cb=$cache/containerd/$CONTAINERD_VERSION/bin
eb=$cache/etcd/$ETCD_VERSION/bin
kubeadm=$cache/kubeadm/$KUBERNETES_VERSION/bin/kubeadm
node=pullproof/kind-node:$KUBERNETES_VERSION
base=pullproof/kind-base:$KUBERNETES_VERSION
for f in "$kb/kubelet" "$kb/kubectl" "$cb/containerd" "$eb/etcd" "$kubeadm"; do
  [[ -x $f ]] || die "$f is missing: run scripts/kubernetes.sh --kind (just kind-image does)"
done
for t in docker debootstrap gcc jq; do command -v "$t" >/dev/null || die "$t is missing: apt-get install docker.io debootstrap gcc jq"; done
docker info >/dev/null 2>&1 || die "no Docker engine answers: scripts/kind/docker.sh start (just docker-up)"
kind_files=$(go env GOMODCACHE)/sigs.k8s.io/kind@$KIND_VERSION/images/base/files
if [[ ! -d $kind_files ]]; then
  probe=$(mktemp -d); (cd "$probe" && go mod init probe >/dev/null 2>&1 && go mod download "sigs.k8s.io/kind@$KIND_VERSION"); rm -rf "$probe"
fi
[[ -d $kind_files ]] || die "kind $KIND_VERSION's files are not in the Go module cache"
pause_c=$(go env GOMODCACHE)/k8s.io/kubernetes@$KUBERNETES_VERSION/build/pause/linux/pause.c
[[ -f $pause_c ]] || die "$pause_c is missing: run scripts/kubernetes.sh first"

packages=systemd,dbus,conntrack,iptables,nftables,iproute2,ethtool,util-linux,mount,kmod,libseccomp2,pigz,e2fsprogs,bash,ca-certificates,jq,procps,runc,containernetworking-plugins,socat,iputils-ping,less
images=$(PATH=$kb:$PATH "$kubeadm" config images list --kubernetes-version "$KUBERNETES_VERSION")
etcd_ref=$(grep '/etcd:' <<<"$images"); pause_ref=$(grep '/pause:' <<<"$images")
inputs=$(cat "$0" "$here/../kubernetes.env" "$kb/../SHA256SUMS" "$cb/../SHA256SUMS" "$eb/../SHA256SUMS" \
  "$kubeadm" "$pause_c" <(echo "$packages") | sha256sum | cut -c1-16)
if [[ $(docker image inspect -f '{{index .Config.Labels "pullproof.io/inputs"}}' "$node" 2>/dev/null) == "$inputs" ]]; then
  say "$node is up to date"; exit 0
fi
work=$(mktemp -d); cid=""
cleanup() { [[ -n $cid ]] && docker rm -f "$cid" >/dev/null 2>&1; rm -rf "$work"; }
trap cleanup EXIT
start=$(date +%s)

# 1. root file system (cached by package list)
rootfs_tar=$cache/kind-rootfs/bookworm-$(sha256sum <<<"$packages" | cut -c1-12).tar
if [[ ! -f $rootfs_tar ]]; then
  say "debootstrap bookworm (minutes, once)"
  # The machine's own Debian mirror (the one apt reaches), else Debian's.
  mirror=$(cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
    | sed -n 's#^URIs: *\(http[^ ]*/debian\)/*$#\1#p; s#^deb \(http[^ ]*/debian\)/* bookworm .*#\1#p' | head -1 || true)
  debootstrap --variant=minbase --include="$packages" bookworm "$work/rootfs" "${mirror:-http://deb.debian.org/debian}" >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
  mkdir -p "$(dirname "$rootfs_tar")"; tar -C "$work/rootfs" --numeric-owner -cf "$rootfs_tar.tmp" . && mv "$rootfs_tar.tmp" "$rootfs_tar"
  rm -rf "$work/rootfs"
fi
r=$work/node; mkdir -p "$r"; tar -C "$r" -xf "$rootfs_tar"

# 2. kind's static files, with the modes its Dockerfile gives them; systemd trimmed as it does
install -D -m 0755 -t "$r/usr/local/bin" "$kind_files"/usr/local/bin/*
install -d -m 0755 "$r/kind/bin"
install -m 0755 -t "$r/kind/bin" "$kind_files"/kind/bin/*
install -m 0644 "$kind_files/etc/crictl.yaml" "$r/etc/"
install -D -m 0644 -t "$r/etc/containerd" "$kind_files"/etc/containerd/*
install -D -m 0644 -t "$r/etc/default" "$kind_files"/etc/default/*
install -D -m 0644 -t "$r/etc/sysctl.d" "$kind_files"/etc/sysctl.d/*
install -D -m 0644 -t "$r/etc/systemd/system" "$kind_files"/etc/systemd/system/*.service "$kind_files"/etc/systemd/system/*.slice
install -D -m 0644 -t "$r/etc/systemd/system/kubelet.service.d" "$kind_files"/etc/systemd/system/kubelet.service.d/*
find "$r/lib/systemd/system/sysinit.target.wants/" -name systemd-tmpfiles-setup.service -delete
rm -f "$r"/lib/systemd/system/multi-user.target.wants/* "$r"/etc/systemd/system/*.wants/* \
  "$r"/lib/systemd/system/local-fs.target.wants/* "$r"/lib/systemd/system/sockets.target.wants/*udev* \
  "$r"/lib/systemd/system/sockets.target.wants/*initctl* "$r"/lib/systemd/system/basic.target.wants/*
echo "ReadKMsg=no" >>"$r/etc/systemd/journald.conf"
ln -sf /usr/lib/systemd/systemd "$r/sbin/init"
chroot "$r" systemctl enable kubelet.service containerd.service undo-mount-hacks.service >/dev/null 2>&1
chroot "$r" systemctl mask systemd-binfmt.service >/dev/null 2>&1
mkdir -p "$r/etc/kubernetes/manifests"

# 3. the pinned binaries at kind's paths, and a CNI config
install -m 0755 -t "$r/usr/local/bin" "$cb/containerd" "$cb/containerd-shim-runc-v2" "$cb/ctr"
install -D -m 0755 "$r/usr/sbin/runc" "$r/usr/local/sbin/runc"
mkdir -p "$r/opt/cni/bin"; cp -a "$r"/usr/lib/cni/* "$r/opt/cni/bin/"
install -m 0755 -t "$r/usr/bin" "$kb/kubelet" "$kb/kubectl" "$kubeadm"
"$cb/ctr" oci spec \
  | jq '.hooks.createContainer[.hooks.createContainer | length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' \
  | jq 'del(.process.rlimits)' >"$r/etc/containerd/cri-base.json"
sed -i "s#sandbox_image = .*#sandbox_image = \"$pause_ref\"#" "$r/etc/containerd/config.toml"
echo -n "$KUBERNETES_VERSION" >"$r/kind/version"
mkdir -p "$r/etc/cni/net.d"
cat >"$r/etc/cni/net.d/10-bridge.conflist" <<'CNI'
{
  "cniVersion": "0.4.0",
  "name": "bridge",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.0.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
CNI
: >"$r/etc/machine-id"
rm -rf "$r"/var/cache/apt/archives/*.deb "$r"/var/lib/apt/lists/*
tar -C "$r" --numeric-owner -c . | docker import --change 'ENV container=docker' \
  --change 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' - "$base" >/dev/null
rm -rf "$r"

# 4. the images kubeadm expects, from the same binaries
image() { # REF ENTRYPOINT_JSON FILE...
  local ref=$1 ep=$2 d=$work/img; shift 2
  rm -rf "$d"; mkdir -p "$d/usr/local/bin" "$d/etc" "$d/tmp"; chmod 1777 "$d/tmp"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n' >"$d/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$d/etc/group"
  echo 'hosts: files dns' >"$d/etc/nsswitch.conf"
  for f in "$@"; do install -m 0755 "$f" "$d/usr/local/bin/"; done
  [[ -f $d/usr/local/bin/pause ]] && mv "$d/usr/local/bin/pause" "$d/pause"
  tar -C "$d" -c . | docker import --change "ENTRYPOINT $ep" --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' - "$ref" >/dev/null
  docker save "$ref" -o "$work/$(basename "${ref%%:*}").tar"
  docker rmi "$ref" >/dev/null
}
for c in kube-apiserver kube-controller-manager kube-scheduler; do
  image "registry.k8s.io/$c:$KUBERNETES_VERSION" "[\"/usr/local/bin/$c\"]" "$kb/$c"
done
image "$etcd_ref" '["/usr/local/bin/etcd"]' "$eb/etcd"
gcc -Os -Wall -Werror -static -DVERSION="${pause_ref##*:}" -o "$work/pause" "$pause_c"
image "$pause_ref" '["/pause"]' "$work/pause"

# import them into the node's containerd (k8s.io namespace, pinned), then commit the node image.
# Docker rejects STOPSIGNAL in --change; a container created with --stop-signal carries it.
cid=$(docker run -d --privileged --stop-signal SIGRTMIN+3 --entrypoint /bin/sleep "$base" infinity)
docker exec "$cid" bash -c 'nohup /usr/local/bin/containerd >/var/log/containerd-build.log 2>&1 & echo $! >/run/containerd-build.pid'
docker exec "$cid" bash -c 'for i in $(seq 1 50); do ctr version >/dev/null 2>&1 && exit 0; sleep 0.2; done; cat /var/log/containerd-build.log; exit 1'
for t in "$work"/*.tar; do
  docker exec -i "$cid" ctr --namespace=k8s.io images import --label=io.cri-containerd.pinned=pinned \
    --all-platforms --no-unpack --digests - <"$t" >/dev/null
done
# sleep is PID 1 and reaps nothing: containerd has exited once its state is Z.
docker exec "$cid" bash -c 'p=$(cat /run/containerd-build.pid); kill $p; for i in $(seq 1 100); do st=$(awk "{print \$3}" /proc/$p/stat 2>/dev/null); [[ -z $st || $st == Z ]] && exit 0; sleep 0.2; done; exit 1'
docker exec "$cid" rm -f /run/containerd-build.pid /var/log/containerd-build.log
docker commit --change 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' --change 'CMD []' \
  --change "LABEL pullproof.io/inputs=$inputs" "$cid" "$node" >/dev/null
docker rm -f "$cid" >/dev/null; cid=""
docker rmi "$base" >/dev/null
say "$node built in $(($(date +%s) - start)) s ($(docker image inspect -f '{{.Size}}' "$node" | numfmt --to=iec))"
