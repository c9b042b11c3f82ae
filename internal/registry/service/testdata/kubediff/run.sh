#!/usr/bin/env bash
# Differential test of the registry strategies in internal/registry/{service,endpoints,
# endpointslice,ingress} against kube-apiserver v1.37.2's own code (validation, defaulting,
# strategies, declarative validation, and the service storage's allocation logic driven by
# kube's in-memory ip/port allocators). Random and mutated objects go through both; results
# (objects, error causes, allocator state) must be identical.
#
# It builds a throwaway module in $WORK (default /tmp/kubediff) from hack/peers/go.mod (the
# k8s.io/kubernetes v1.37.2 dependency set), copies our registry sources into it, and
# extracts from the module cache the unexported parts of kube's service storage it needs
# (alloc.go, transaction.go, normalizeClusterIPs/patchAllocatedValues/defaultOnRead) —
# nothing from k8s.io/kubernetes is committed here. Needs the peers' modules in the module
# cache (hack/peers/build.sh downloads them). Usage: run.sh [go test flags], e.g.
#   KUBEDIFF_SEED=42 internal/registry/service/testdata/kubediff/run.sh -run TestAllocDiff -v
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../../../.." && pwd)"
WORK="${WORK:-/tmp/kubediff}"
K="$(go env GOMODCACHE)/k8s.io/kubernetes@v1.37.2/pkg/registry/core/service/storage"
[[ -d "$K" ]] || { echo "run.sh: $K missing; run hack/peers/build.sh first" >&2; exit 1; }

rm -rf "$WORK" && mkdir -p "$WORK/internal"
sed 's#^module .*#module kubediff#' "$ROOT/hack/peers/go.mod" > "$WORK/go.mod"
cp "$ROOT/hack/peers/go.sum" "$WORK/"
cp "$HERE"/*.go "$WORK/"
cp -r "$ROOT/internal/registry" "$WORK/internal/"
find "$WORK/internal" -name '*_test.go' -delete
rm -rf "$WORK/internal/registry/service/testdata"
find "$WORK/internal" -name '*.go' -exec sed -i 's#"kubesvc/internal/#"kubediff/internal/#' {} +

sed 's/^package storage/package kubediff/' "$K/alloc.go" > "$WORK/kalloc.go"
sed 's/^package storage/package kubediff/' "$K/transaction.go" > "$WORK/ktxn.go"
{
  printf 'package kubediff\n\nimport (\n\tapi "k8s.io/kubernetes/pkg/apis/core"\n\t"k8s.io/apimachinery/pkg/util/sets"\n\tnetutil "k8s.io/utils/net"\n)\n\n'
  sed -n '/^type Before struct/,/^}/p;/^type After struct/,/^}/p;/^func normalizeClusterIPs/,/^}/p;/^func patchAllocatedValues/,/^}/p;/^func needsClusterIP/,/^}/p;/^func needsNodePort/,/^}/p;/^func needsHCNodePort/,/^}/p;/^func defaultOnReadInternalTrafficPolicy/,/^}/p;/^func otherFamily/,/^}/p' "$K/storage.go"
  sed -n '/^func (r \*REST) defaultOnReadIPFamilies/,/^}/p;/^func (r \*REST) defaultOnReadService(/,/^}/p' "$K/storage.go" | sed 's/func (r \*REST) /func (r *fakeREST) /'
  printf 'type fakeREST struct{ primaryIPFamily api.IPFamily }\n'
} > "$WORK/kstorage.go"

cd "$WORK"
GOFLAGS=-mod=mod GOPROXY=off GOSUMDB=off go test "$@" . 2>&1 | grep -v '^[IWE][0-9]\{4\} '
