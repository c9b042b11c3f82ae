#!/usr/bin/env bash
# The test suite: static checks, build, then every test inside a fresh network namespace that
# has only loopback (nothing a test opens can reach the host's interfaces or the outside).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== gofmt"
bad=$(gofmt -l cmd internal bench test 2>/dev/null || true)
if [ -n "$bad" ]; then echo "gofmt needed:"; echo "$bad"; exit 1; fi
echo "== go vet"
go vet ./...
echo "== build"
make build
export KUBESVC_BIN="$PWD/bin/kubesvc"
# Compile the tests before entering the namespace (module downloads need the network).
go test -race -count=1 -run XXX_compile_only ./... >/dev/null

echo "== tests (each package in a private network namespace)"
# The outer namespace keeps `go test` itself off the host's network; -exec gives every test
# binary a namespace of its own (hack/netns-exec.sh).
unshare --net -- bash -c '
  set -euo pipefail
  ip link set lo up
  go test -race -count=1 -timeout 25m -exec "$PWD/hack/netns-exec.sh" ${GOTEST_FLAGS:-} ./...
'
