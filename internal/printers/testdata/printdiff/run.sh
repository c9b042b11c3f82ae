#!/usr/bin/env bash
# Runs the differential test of internal/printers against kube-apiserver v1.37.2's printers
# (see doc.go). Arguments are passed to `go test`, e.g. -iterations=3000 or -raw.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../../.." && pwd)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

cp "$ROOT/hack/peers/go.mod" "$ROOT/hack/peers/go.sum" "$WORK/"
sed -i 's|^module .*|module printdiff|' "$WORK/go.mod"
cp "$HERE/doc.go" "$HERE/printdiff_test.go" "$WORK/"
mkdir "$WORK/ours"
for f in "$ROOT"/internal/printers/*.go; do
  case "$f" in *_test.go) ;; *) cp "$f" "$WORK/ours/" ;; esac
done

cd "$WORK"
GOFLAGS=-mod=mod GOPROXY=off GOSUMDB=off go test . "$@"
