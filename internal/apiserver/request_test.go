package apiserver

import (
	"net/http/httptest"
	"testing"
)

func TestParseResourcePath(t *testing.T) {
	for _, tc := range []struct {
		name, method, path                   string
		ok                                   bool
		resource, ns, obj, subresource, verb string
	}{
		{name: "core list", method: "GET", path: "/api/v1/namespaces/default/services", ok: true, resource: "services", ns: "default", verb: "list"},
		{name: "cluster-wide list", method: "GET", path: "/api/v1/services", ok: true, resource: "services", verb: "list"},
		{name: "get object", method: "GET", path: "/api/v1/namespaces/default/services/web", ok: true, resource: "services", ns: "default", obj: "web", verb: "get"},
		{name: "watch param", method: "GET", path: "/api/v1/pods?watch=true", ok: true, resource: "pods", verb: "watch"},
		{name: "legacy watch path", method: "GET", path: "/api/v1/watch/namespaces/default/pods", ok: true, resource: "pods", ns: "default", verb: "watch"},
		{name: "status subresource", method: "PUT", path: "/api/v1/namespaces/default/pods/p/status", ok: true, resource: "pods", ns: "default", obj: "p", subresource: "status", verb: "update"},
		{name: "namespace get", method: "GET", path: "/api/v1/namespaces/default", ok: true, resource: "namespaces", obj: "default", verb: "get"},
		{name: "namespace finalize", method: "PUT", path: "/api/v1/namespaces/foo/finalize", ok: true, resource: "namespaces", obj: "foo", subresource: "finalize", verb: "update"},
		{name: "namespace status", method: "GET", path: "/api/v1/namespaces/foo/status", ok: true, resource: "namespaces", obj: "foo", subresource: "status", verb: "get"},
		{name: "group resource", method: "PATCH", path: "/apis/apps/v1/namespaces/d/deployments/x/scale", ok: true, resource: "deployments", ns: "d", obj: "x", subresource: "scale", verb: "patch"},
		{name: "deletecollection", method: "DELETE", path: "/api/v1/namespaces/default/pods", ok: true, resource: "pods", ns: "default", verb: "deletecollection"},
		{name: "unknown resource", method: "GET", path: "/api/v1/namespaces/default/widgets", ok: false},
		{name: "unknown subresource", method: "GET", path: "/api/v1/namespaces/default/services/web/log", ok: false},
		{name: "cluster-scoped under namespace", method: "GET", path: "/api/v1/namespaces/default/nodes", ok: false},
		{name: "namespace with resource path", method: "GET", path: "/api/v1/namespaces/default/namespaces", ok: false},
		{name: "too deep", method: "GET", path: "/api/v1/namespaces/default/pods/p/log/x", ok: false},
		{name: "unknown group", method: "GET", path: "/apis/foo/v1/bars", ok: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ri, ok := parseResourcePath(httptest.NewRequest(tc.method, tc.path, nil))
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if !ok {
				return
			}
			if ri.info.Resource != tc.resource || ri.namespace != tc.ns || ri.name != tc.obj || ri.subresource != tc.subresource || ri.verb != tc.verb {
				t.Fatalf("got %s ns=%q name=%q sub=%q verb=%s", ri.info.Resource, ri.namespace, ri.name, ri.subresource, ri.verb)
			}
		})
	}
}
