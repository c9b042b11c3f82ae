#!/usr/bin/env bash
# API-server benchmark: kubesvc vs kube-apiserver v1.37.2 on one shared etcd (see
# docs/benchmarks.md, "API server"). Builds bin/kubesvc and the bench program, then runs
# ROUNDS rounds inside a fresh network namespace that has only loopback, and prints a table of
# medians and ratios. Not part of CI.
#
#   bench/run-apiserver.sh                       # 5 rounds, 10k Services
#   ROUNDS=3 bench/run-apiserver.sh -headless    # extra flags go to bench/apiserver
#   bench/run-apiserver.sh -services 1000 -rounds 1 -list-reps 1   # quick smoke run
#
# Environment: ROUNDS (default 5), WORKDIR (default a new temp dir; etcd data and server
# logs, removed on success unless KEEP=1), KUBESVC_PEERS_DIR (peer binaries).
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${ROUNDS:-5}
workdir=${WORKDIR:-$(mktemp -d /tmp/bench-apiserver.XXXXXX)}
mkdir -p "$workdir"

echo "== build" >&2
make build >&2
go build -o "$workdir/bench-apiserver" ./bench/apiserver
# Run a private copy: other work may rebuild bin/kubesvc while the benchmark runs.
cp bin/kubesvc "$workdir/kubesvc"
peers=${KUBESVC_PEERS_DIR:-$HOME/.cache/kubesvc/peers/v1.37.2}
if [ ! -x "$peers/kube-apiserver" ] || [ ! -x "$peers/etcd" ]; then
  hack/peers/build.sh kube-apiserver etcd >&2
fi

echo "== machine: $(nproc) CPUs, $(uname -r), $(go version | cut -d' ' -f3), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "== kubesvc $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- cmd internal go.mod || echo '+dirty'), kube-apiserver $("$peers/kube-apiserver" --version 2>/dev/null | cut -d' ' -f2), etcd $("$peers/etcd" --version 2>/dev/null | sed -n 's/^etcd Version: //p')" >&2

# Everything that opens a socket runs in a network namespace with only loopback.
status=0
unshare --net -- bash -c 'ip link set lo up && exec "$@"' bench \
  "$workdir/bench-apiserver" -rounds "$rounds" -kubesvc "$workdir/kubesvc" \
  -workdir "$workdir/run" -json "$workdir/results.json" "$@" || status=$?

echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg); results: $workdir/results.json" >&2
if [ "$status" -eq 0 ] && [ "${KEEP:-0}" != 1 ]; then
  rm -rf "$workdir/run"
fi
exit "$status"
