#!/usr/bin/env bash
# Builds the reference peers (upstream Kubernetes components, etcd, CoreDNS) that
# kubesvc's differential tests and benchmarks run as processes.
#
# Usage: hack/peers/build.sh [-f] [name...]
#   names: kube-apiserver kube-controller-manager kube-proxy etcd coredns (default: all)
#   -f     rebuild even when a cached binary is up to date
#
# Output directory: ${KUBESVC_PEERS_DIR:-$HOME/.cache/kubesvc/peers/v1.37.2}.
# A binary that already exists there and is newer than the go.mod, go.sum and main.go
# that define it is kept, so CI can restore the directory from a cache and skip the
# ~10 minute cold build. The last line printed is the output directory.
set -euo pipefail

KUBE_VERSION=v1.37.2
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="${KUBESVC_PEERS_DIR:-$HOME/.cache/kubesvc/peers/${KUBE_VERSION}}"
ALL=(kube-apiserver kube-controller-manager kube-proxy etcd coredns)

force=0
names=()
for arg in "$@"; do
  case "$arg" in
    -f|--force) force=1 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    kube-apiserver|kube-controller-manager|kube-proxy|etcd|coredns) names+=("$arg") ;;
    *) echo "build.sh: unknown peer '$arg' (want one of: ${ALL[*]})" >&2; exit 2 ;;
  esac
done
[[ ${#names[@]} -eq 0 ]] && names=("${ALL[@]}")

mkdir -p "$OUT"
export CGO_ENABLED="${CGO_ENABLED:-0}"
export GOFLAGS="${GOFLAGS:-} -mod=readonly"

# module_dir NAME: the module that defines the peer.
module_dir() {
  case "$1" in
    coredns) echo "$HERE/coredns" ;;
    *) echo "$HERE" ;;
  esac
}

# kube_ldflags: the -X flags hack/lib/version.sh sets, so /version reports KUBE_VERSION.
kube_ldflags() {
  local minor date flags=""
  minor="${KUBE_VERSION#v1.}"; minor="${minor%%.*}"
  # Stamp the module's publication time instead of "now" so rebuilds are reproducible.
  date="$(cd "$HERE" && go list -m -f '{{if .Time}}{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}{{end}}' k8s.io/kubernetes 2>/dev/null || true)"
  [[ -n "$date" ]] || date="1970-01-01T00:00:00Z"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X ${pkg}.gitVersion=${KUBE_VERSION}"
    flags+=" -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=${minor}"
    flags+=" -X ${pkg}.gitTreeState=clean -X ${pkg}.buildDate=${date}"
  done
  echo "$flags"
}

# inputs_sum NAME: a digest of every file that defines the binary. Content, not mtimes: a fresh
# clone (CI) has new mtimes but the same content, and must reuse the cached binary.
inputs_sum() {
  local dir
  dir="$(module_dir "$1")"
  cat "$dir/go.mod" "$dir/go.sum" "$dir/cmd/$1/main.go" "$HERE/build.sh" | sha256sum | cut -d' ' -f1
}

# up_to_date NAME: the binary exists and was built from the current inputs.
up_to_date() {
  local bin="$OUT/$1"
  [[ -x "$bin" && -f "$OUT/.$1.inputs" ]] || return 1
  [[ "$(cat "$OUT/.$1.inputs")" == "$(inputs_sum "$1")" ]]
}

for name in "${names[@]}"; do
  if [[ $force -eq 0 ]] && up_to_date "$name"; then
    echo "peers: $name up to date"
    continue
  fi
  dir="$(module_dir "$name")"
  ldflags="-s -w"
  case "$name" in
    kube-*) ldflags+="$(kube_ldflags)" ;;
    coredns) ldflags+=" -X github.com/coredns/coredns/coremain.GitCommit=v$(cd "$dir" && go list -m -f '{{.Version}}' github.com/coredns/coredns | sed 's/^v//')" ;;
  esac
  echo "peers: building $name ..."
  start=$SECONDS
  # Build to a temporary name and rename, so an interrupted build never leaves a
  # truncated binary that looks up to date.
  (cd "$dir" && go build -trimpath -ldflags="$ldflags" -o "$OUT/.$name.tmp" "./cmd/$name")
  mv -f "$OUT/.$name.tmp" "$OUT/$name"
  inputs_sum "$name" > "$OUT/.$name.inputs"
  echo "peers: built $name in $((SECONDS - start))s"
done

echo "peers: binaries in $OUT"
echo "$OUT"
