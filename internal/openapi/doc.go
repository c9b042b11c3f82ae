// Package openapi serves the OpenAPI documents of kubesvc the way kube-apiserver does:
// /openapi/v3 (a discovery document), /openapi/v3/<path> (one document per group/version and
// per discovery root: api, api/v1, apis, apis/apps, apis/apps/v1, ..., version) and /openapi/v2
// (one Swagger 2.0 document, in JSON or protobuf).
//
// The schemas come from zz_generated.openapi.go, which openapi-gen writes from the k8s.io/api
// types (hack/update-openapi.sh); the paths come from internal/resource.All. Paths, operation
// IDs, parameters and x-kubernetes-* extensions mirror kube-apiserver's REST installer
// (k8s.io/apiserver/pkg/endpoints/installer.go), re-implemented here over go-restful route
// descriptions that are only ever fed to kube-openapi's builders, never served.
//
// Nothing is built until a document is first requested; afterwards only the serialized bytes
// are kept (JSON, and protobuf once asked for), so the server holds a few MB, not the object
// trees. Schemas returns the same schemas for server-side apply's type converter.
//
// Imported by the API server (internal/apiserver); it imports only internal/resource, k8s.io/api,
// apimachinery, kube-openapi and go-restful (as kube-openapi's route description).
package openapi
