#!/usr/bin/env bash
# Service-proxy benchmark: kubesvc's nftables proxy vs kube-proxy v1.37.2 (nftables mode),
# side by side on one API server and one world (see docs/benchmarks.md, "Service proxy:
# nftables mode vs kube-proxy"). Builds bin/kubesvc and bench/proxy, then runs the program as
# PID 1 of fresh network, mount and PID namespaces: the node network (bridge, pod namespaces,
# nft tables) and every process it starts vanish with it, even if it crashes. Not part of CI.
#
#   bench/run-proxy.sh                                      # 10, 1k, 10k Services; 3 rounds
#   bench/run-proxy.sh -levels 10,1000 -rounds 1 -plus1 3   # quick smoke run
#   bench/run-proxy.sh -proxies kube-proxy                  # one proxy only
#
# Needs: nft (apt-get install nftables), hack/peers/build.sh kube-proxy.
# Environment: WORKDIR (default a new temp dir: logs, API server data, results.json; removed
# on success unless KEEP=1), KUBESVC_PEERS_DIR, NOBUILD=1 (use bin/kubesvc as it is),
# KUBESVC_BIN (use this kubesvc binary instead of building bin/kubesvc).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v nft >/dev/null || { echo "nft not installed (apt-get install nftables)" >&2; exit 1; }
workdir=${WORKDIR:-$(mktemp -d /tmp/bench-proxy.XXXXXX)}
mkdir -p "$workdir"

echo "== build" >&2
if [ -z "${KUBESVC_BIN:-}" ]; then
  [ "${NOBUILD:-0}" = 1 ] || make build >&2
  KUBESVC_BIN=bin/kubesvc
fi
go build -o "$workdir/bench-proxy" ./bench/proxy
go build -o "$workdir/kubesvcproxy" ./bench/proxy/kubesvcproxy
# Run a private copy: other work may rebuild bin/kubesvc while the benchmark runs.
cp "$KUBESVC_BIN" "$workdir/kubesvc"
peers=${KUBESVC_PEERS_DIR:-$HOME/.cache/kubesvc/peers/v1.37.2}
[ -x "$peers/kube-proxy" ] || hack/peers/build.sh kube-proxy >&2

echo "== machine: $(nproc) CPUs, $(uname -r), $(go version | cut -d' ' -f3), $(nft --version), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "== kubesvc $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- cmd internal go.mod || echo '+dirty'), kube-proxy $("$peers/kube-proxy" --version 2>/dev/null | cut -d' ' -f2)" >&2

status=0
unshare --net --mount --pid --fork --kill-child --mount-proc -- \
  "$workdir/bench-proxy" -kube-proxy "$peers/kube-proxy" -kubesvc "$workdir/kubesvc" -kubesvcproxy "$workdir/kubesvcproxy" \
  -workdir "$workdir/run" -json "$workdir/results.json" "$@" || status=$?

echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg); results: $workdir/results.json; logs: $workdir/run/logs" >&2
if [ "$status" -eq 0 ] && [ "${KEEP:-0}" != 1 ]; then
  rm -rf "$workdir/run/apiserver" "$workdir/run/netns"
fi
exit "$status"
