#!/usr/bin/env bash
# Cluster DNS benchmark: kubesvc's DNS vs CoreDNS v1.15.0 on one cluster state, with dnsperf
# (see docs/benchmarks.md, "Cluster DNS"). Builds bench/dns, then runs it inside a fresh
# network namespace that has only loopback: each DNS server a process pinned to CPU 0, dnsperf
# and the API server on CPU 1. Not part of CI.
#
#   bench/run-dns.sh                         # 3 rounds of 10 s runs
#   bench/run-dns.sh -rounds 1 -duration 5s  # quick smoke run
#
# Needs: dnsperf (apt-get install dnsperf), the coredns peer (hack/peers/build.sh coredns).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v dnsperf >/dev/null || { echo "dnsperf not installed (apt-get install dnsperf)" >&2; exit 1; }
bin=$(mktemp -d /tmp/bench-dns.XXXXXX)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/bench-dns" ./bench/dns
echo "== machine: $(nproc) CPUs, $(uname -r), $(go version | cut -d' ' -f3), dnsperf $(dnsperf -h 2>&1 | sed -n 's/^Version //p'), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
unshare --net -- bash -c "ip link set lo up; exec taskset -c 1 '$bin/bench-dns' $*"
