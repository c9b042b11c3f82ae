#!/usr/bin/env bash
# Regenerates internal/openapi/zz_generated.openapi.go: the OpenAPI definitions of every Go type
# kubesvc serves, produced by k8s.io/kube-openapi's openapi-gen at the version pinned in go.mod.
#
# Inputs mirror kube-apiserver's pkg/generated/openapi (hack/update-codegen.sh, codegen::openapi):
# the packages tagged +k8s:openapi-gen=true, restricted to the group/versions of
# internal/resource.All plus the apimachinery packages they reference. openapi-gen reads the
# markers on the types itself (+listType, +listMapKey, +patchStrategy, +patchMergeKey, +enum,
# +k8s:openapi-model-package), so the schemas carry the same x-kubernetes-* extensions and the
# same model names (io.k8s.api.core.v1.Service, ...) as upstream.
#
# Usage: hack/update-openapi.sh          (rewrites the file)
#        hack/update-openapi.sh --verify (fails if the committed file is stale)
set -o errexit -o nounset -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "${ROOT}"

OUT_DIR=internal/openapi
OUT_FILE=zz_generated.openapi.go
OUT_PKG=kubesvc/internal/openapi

# Keep in sync with the group/versions of internal/resource/resource.go (autoscaling/v1 is
# there for the Scale subresource).
PKGS=(
	k8s.io/api/core/v1
	k8s.io/api/apps/v1
	k8s.io/api/autoscaling/v1
	k8s.io/api/coordination/v1
	k8s.io/api/discovery/v1
	k8s.io/api/networking/v1
	k8s.io/apimachinery/pkg/apis/meta/v1
	k8s.io/apimachinery/pkg/runtime
	k8s.io/apimachinery/pkg/util/intstr
	k8s.io/apimachinery/pkg/api/resource
	k8s.io/apimachinery/pkg/version
)

KUBE_OPENAPI_VERSION=$(go list -m -f '{{.Version}}' k8s.io/kube-openapi)

TMP=$(mktemp -d)
trap 'rm -rf "${TMP}"' EXIT
: >"${TMP}/boilerplate.go.txt"

GEN_DIR="${TMP}/out"
if [[ "${1:-}" != "--verify" ]]; then
	GEN_DIR="${OUT_DIR}"
fi
mkdir -p "${GEN_DIR}"

# No --output-model-name-file: the k8s.io/api and apimachinery packages already ship their
# zz_generated.model_name.go files, and the module cache is read-only.
go run "k8s.io/kube-openapi/cmd/openapi-gen@${KUBE_OPENAPI_VERSION}" \
	--go-header-file "${TMP}/boilerplate.go.txt" \
	--output-dir "${GEN_DIR}" \
	--output-pkg "${OUT_PKG}" \
	--output-file "${OUT_FILE}" \
	--report-filename "${TMP}/api_violations.report" \
	"${PKGS[@]}"

if [[ "${1:-}" == "--verify" ]]; then
	if ! diff -q "${GEN_DIR}/${OUT_FILE}" "${OUT_DIR}/${OUT_FILE}" >/dev/null; then
		echo "${OUT_DIR}/${OUT_FILE} is stale: run hack/update-openapi.sh" >&2
		exit 1
	fi
	echo "${OUT_DIR}/${OUT_FILE} is up to date"
fi
