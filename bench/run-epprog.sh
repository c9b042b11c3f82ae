#!/usr/bin/env bash
# Network-programming latency benchmark: kubesvc's endpoint controllers vs
# kube-controller-manager v1.37.2 (see docs/benchmarks.md, "Network programming"). Builds the
# bench program and runs it inside a fresh network namespace that has only loopback. Not part
# of CI.
#
#   bench/run-epprog.sh                                  # 1k Services × 10 pods, 50 changes/s, 60s
#   bench/run-epprog.sh -services 100 -duration 20s      # quick smoke run
#
# Environment: WORKDIR (default a new temp dir; etcd data and peer logs), KUBESVC_PEERS_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
workdir=${WORKDIR:-$(mktemp -d /tmp/bench-epprog.XXXXXX)}
mkdir -p "$workdir"
go build -o "$workdir/epprog" ./bench/epprog
peers=${KUBESVC_PEERS_DIR:-$HOME/.cache/kubesvc/peers/v1.37.2}
for b in etcd kube-apiserver kube-controller-manager; do
  [ -x "$peers/$b" ] || hack/peers/build.sh "$b" >&2
done
echo "== machine: $(nproc) CPUs, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
unshare --net -- bash -c 'ip link set lo up && exec "$@"' bench \
  "$workdir/epprog" -workdir "$workdir/run" -json "$workdir/results.json" "$@"
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg); results: $workdir/results.json" >&2
