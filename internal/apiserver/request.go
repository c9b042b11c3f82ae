package apiserver

import (
	"net/http"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"kubesvc/internal/resource"
)

// requestInfo is what the URL says about a resource request.
type requestInfo struct {
	gv          schema.GroupVersion
	info        *resource.Info
	namespace   string
	name        string
	subresource string
	// verb: get, list, watch, create, update, patch, delete, deletecollection, or a connect
	// verb for log/exec/attach/portforward (the subresource says which).
	verb string
}

// parseResourcePath parses /api/v1/... and /apis/g/v/... resource paths. ok is false when the
// path is not a resource path of a served group/version (the caller answers 404).
func parseResourcePath(r *http.Request) (ri requestInfo, ok bool) {
	p := strings.Trim(r.URL.Path, "/")
	parts := strings.Split(p, "/")
	switch {
	case len(parts) >= 3 && parts[0] == "api" && parts[1] == "v1":
		ri.gv = schema.GroupVersion{Version: "v1"}
		parts = parts[2:]
	case len(parts) >= 4 && parts[0] == "apis":
		ri.gv = schema.GroupVersion{Group: parts[1], Version: parts[2]}
		parts = parts[3:]
	default:
		return ri, false
	}
	watchPath := false
	if parts[0] == "watch" {
		watchPath = true
		parts = parts[1:]
		if len(parts) == 0 {
			return ri, false
		}
	}
	// namespaces/{ns}/{resource}... unless the resource is namespaces itself.
	if parts[0] == "namespaces" && len(parts) == 3 && (parts[2] == "status" || parts[2] == "finalize") {
		// /api/v1/namespaces/{name}/status|finalize
		ri.name, ri.subresource = parts[1], parts[2]
		parts = parts[:1]
	} else if parts[0] == "namespaces" && len(parts) >= 3 {
		ri.namespace = parts[1]
		parts = parts[2:]
	} else if parts[0] == "namespaces" && len(parts) == 2 {
		// /api/v1/namespaces/{name}
		ri.name = parts[1]
		parts = parts[:1]
	}
	ri.info = resource.Lookup(ri.gv.WithResource(parts[0]))
	if ri.info == nil {
		return ri, false
	}
	if ri.info.Resource == "namespaces" && ri.namespace != "" {
		return ri, false
	}
	switch len(parts) {
	case 1:
		if ri.subresource != "" {
			break
		}
	case 2:
		ri.name = parts[1]
	case 3:
		ri.name, ri.subresource = parts[1], parts[2]
	default:
		return ri, false
	}
	if !ri.info.Namespaced && ri.namespace != "" {
		return ri, false
	}
	if ri.subresource != "" && !ri.info.HasSubresource(ri.subresource) {
		return ri, false
	}
	q := r.URL.Query()
	isWatch := watchPath || q.Get("watch") == "true" || q.Get("watch") == "1"
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		switch {
		case ri.name == "" && isWatch:
			ri.verb = "watch"
		case ri.name == "":
			ri.verb = "list"
		case isWatch:
			ri.verb = "watch"
		default:
			ri.verb = "get"
		}
	case http.MethodPost:
		ri.verb = "create"
	case http.MethodPut:
		ri.verb = "update"
	case http.MethodPatch:
		ri.verb = "patch"
	case http.MethodDelete:
		if ri.name == "" {
			ri.verb = "deletecollection"
		} else {
			ri.verb = "delete"
		}
	default:
		ri.verb = strings.ToLower(r.Method)
	}
	return ri, true
}
