#!/usr/bin/env bash
# Starts and stops the Docker engine the kind backend needs, on a machine where nothing else
# runs one (CI, these machines). Debian's docker.io, with three settings:
#   - a runtime wrapper (runc-wrapper.sh) that drops capabilities the machine's bounding set
#     lacks, without which no --privileged container (every kind node) starts here;
#   - --iptables=false --ip6tables=false --ip-forward=false: Docker leaves the host's firewall,
#     forwarding and NAT alone (kind's nodes and the registry share one bridge; published ports
#     go through docker-proxy on loopback);
#   - --dns 127.0.0.1: names Docker's embedded resolver cannot answer are never forwarded off
#     the machine (kind's entrypoint looks up host.docker.internal on every node start).
#
# Usage: scripts/kind/docker.sh start    start dockerd unless one answers; prints its socket
#        scripts/kind/docker.sh stop     stop the dockerd this script started (containers of
#                                        ours removed first), and remove what it left behind
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
state=${PULLPROOF_DOCKER_STATE:-/run/pullproof-docker}
say() { printf 'docker.sh: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

start() {
  if docker info >/dev/null 2>&1; then say "a Docker engine already answers: using it"; return; fi
  command -v dockerd >/dev/null || die "dockerd is missing: apt-get install docker.io"
  command -v jq >/dev/null || die "jq is missing (the runtime wrapper edits OCI specs with it): apt-get install jq"
  mkdir -p "$state"
  # Docker turns IPv6 forwarding on for kind's dual-stack network; `stop` puts both back.
  sysctl -n net.ipv4.ip_forward net.ipv6.conf.all.forwarding >"$state/forwarding"
  setsid dockerd --add-runtime "pprunc=$here/runc-wrapper.sh" --default-runtime pprunc \
    --iptables=false --ip6tables=false --ip-forward=false --dns 127.0.0.1 --pidfile "$state/dockerd.pid" \
    >>"$state/dockerd.log" 2>&1 </dev/null &
  for _ in $(seq 1 150); do
    docker info >/dev/null 2>&1 && { say "dockerd started (log: $state/dockerd.log)"; return; }
    sleep 0.2
  done
  tail -20 "$state/dockerd.log" >&2
  die "dockerd did not answer within 30 s (log above)"
}

stop() {
  [[ -f $state/dockerd.pid ]] || { say "no dockerd of ours is running"; return; }
  local pid; pid=$(cat "$state/dockerd.pid")
  if docker info >/dev/null 2>&1; then
    local ids; ids=$(docker ps -aq --filter label=io.x-k8s.kind.cluster; docker ps -aq --filter label=pullproof.io/owner)
    [[ -n $ids ]] && docker rm -f -v $ids >/dev/null
    docker network rm kind >/dev/null 2>&1 || true
  fi
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -0 "$pid" 2>/dev/null && die "dockerd $pid is still running after 30 s"
  # the bridges it made (veths went with the containers)
  for l in docker0 $(ip -br link | awk '{print $1}' | grep -E '^br-[0-9a-f]{12}$'); do ip link del "$l" 2>/dev/null || true; done
  grep -E ' (/run/docker|/var/lib/docker)' /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount 2>/dev/null || true
  if [[ -f $state/forwarding ]]; then
    { read -r v4; read -r v6; } <"$state/forwarding"
    sysctl -qw "net.ipv4.ip_forward=$v4" "net.ipv6.conf.all.forwarding=$v6" || true
    rm -f "$state/forwarding"
  fi
  rm -f "$state/dockerd.pid"
  say "dockerd stopped"
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  *) die "usage: $0 start|stop" ;;
esac
