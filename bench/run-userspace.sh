#!/usr/bin/env bash
# Userspace service proxy benchmark: kubesvc's --proxy-mode userspace data path vs HAProxy 2.6
# (Debian), same backends, same run (see docs/benchmarks.md, "Service proxy: userspace mode vs
# HAProxy"). Builds bench/userspace, then runs it inside a fresh network namespace that has
# only loopback. Each proxy runs one thread of work (GOMAXPROCS 1, nbthread 1); nothing is
# pinned unless -proxy-cpu says so. Not part of CI.
#
#   bench/run-userspace.sh                          # 3 rounds of 5 s per test and target
#   bench/run-userspace.sh -rounds 1 -duration 2s   # quick smoke run
#
# Needs: haproxy (apt-get install haproxy).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v haproxy >/dev/null || { echo "haproxy not installed (apt-get install haproxy)" >&2; exit 1; }
bin=$(mktemp -d /tmp/bench-userspace.XXXXXX)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/bench-userspace" ./bench/userspace
echo "== machine: $(nproc) CPUs, $(uname -r), $(go version | cut -d' ' -f3), $(haproxy -v | head -1), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
unshare --net -- bash -c "ip link set lo up; ulimit -n $(ulimit -Hn); exec '$bin/bench-userspace' $*"
