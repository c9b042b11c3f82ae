package openapi

import (
	"slices"
	"testing"

	restful "github.com/emicklei/go-restful/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/kube-openapi/pkg/common/restfuladapter"

	"kubesvc/internal/resource"
)

func TestRoutes_AddObjectParams(t *testing.T) {
	tests := []struct {
		name     string
		obj      interface{}
		excluded []string
		want     map[string]string // parameter name → data type
		absent   []string
	}{
		{
			name:   "pod log options skip sinceTime like the installer",
			obj:    &corev1.PodLogOptions{},
			want:   map[string]string{"container": "string", "follow": "boolean", "sinceSeconds": "integer", "tailLines": "integer", "limitBytes": "integer", "stream": "string"},
			absent: []string{"sinceTime", "kind", "apiVersion"},
		},
		{
			name:     "list options for deletecollection",
			obj:      &metav1.ListOptions{},
			excluded: []string{"watch", "allowWatchBookmarks"},
			want:     map[string]string{"labelSelector": "string", "resourceVersionMatch": "string", "timeoutSeconds": "integer", "limit": "integer", "sendInitialEvents": "boolean"},
			absent:   []string{"watch", "allowWatchBookmarks"},
		},
		{
			name:   "delete options",
			obj:    &metav1.DeleteOptions{},
			want:   map[string]string{"gracePeriodSeconds": "integer", "propagationPolicy": "string", "dryRun": "string", "orphanDependents": "boolean"},
			absent: []string{"preconditions"},
		},
		{
			name: "exec options",
			obj:  &corev1.PodExecOptions{},
			want: map[string]string{"command": "string", "stdin": "boolean", "tty": "boolean", "container": "string"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ws := new(restful.WebService)
			route := ws.GET("/x").To(noop)
			if err := addObjectParams(ws, route, tt.obj, tt.excluded...); err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, p := range route.Build().ParameterDocs {
				got[p.Data().Name] = p.Data().DataType
				if p.Data().Description == "" {
					t.Errorf("%s has no description", p.Data().Name)
				}
			}
			for name, typ := range tt.want {
				if got[name] != typ {
					t.Errorf("%s: type %q, want %q (all: %v)", name, got[name], typ, got)
				}
			}
			for _, name := range tt.absent {
				if _, ok := got[name]; ok {
					t.Errorf("%s should not be a parameter", name)
				}
			}
		})
	}
}

func TestRoutes_ArticleForNoun(t *testing.T) {
	tests := []struct {
		name, noun, want string
	}{
		{name: "consonant", noun: "Service", want: " a "},
		{name: "vowel", noun: "Ingress", want: " an "},
		{name: "plural", noun: "Endpoints", want: " "},
		{name: "double s", noun: "IngressClass", want: " an "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := articleForNoun(tt.noun, " "); got != tt.want {
				t.Errorf("articleForNoun(%q) = %q, want %q", tt.noun, got, tt.want)
			}
		})
	}
}

func TestRoutes_ConnectMethods(t *testing.T) {
	tests := []struct {
		name  string
		verbs []string
		proxy bool
		want  []string
	}{
		{name: "exec", verbs: resource.VerbsConnect, want: []string{"GET", "POST"}},
		{name: "proxy", verbs: []string{"create", "delete", "get", "patch", "update"}, proxy: true, want: []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			has := map[string]bool{}
			for _, v := range tt.verbs {
				has[v] = true
			}
			if got := connectMethodsFor(has, tt.proxy); !slices.Equal(got, tt.want) {
				t.Errorf("methods = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRoutes_OperationID(t *testing.T) {
	tests := []struct {
		name, op, path, wantID, wantTag string
	}{
		{name: "core", op: "readNamespacedService", path: "/api/v1/namespaces/{namespace}/services/{name}", wantID: "readCoreV1NamespacedService", wantTag: "core_v1"},
		{name: "dotted group", op: "listIngressClass", path: "/apis/networking.k8s.io/v1/ingressclasses", wantID: "listNetworkingV1IngressClass", wantTag: "networking_v1"},
		{name: "deletecollection takes the shortest verb", op: "deletecollectionNamespacedLease", path: "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases", wantID: "deleteCoordinationV1CollectionNamespacedLease", wantTag: "coordination_v1"},
		{name: "group root", op: "getAPIGroup", path: "/apis/apps/", wantID: "getAppsAPIGroup", wantTag: "apps"},
		{name: "apis root", op: "getAPIVersions", path: "/apis/", wantID: "getAPIVersions", wantTag: "apis"},
		{name: "core root", op: "getAPIVersions", path: "/api/", wantID: "getCoreAPIVersions", wantTag: "core"},
		{name: "version", op: "getCode", path: "/version/", wantID: "getCode", wantTag: "version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ws := new(restful.WebService)
			r := ws.GET(tt.path).To(noop).Operation(tt.op).Build()
			id, tags, err := operationIDAndTags(&restfuladapter.RouteAdapter{Route: &r})
			if err != nil {
				t.Fatal(err)
			}
			if id != tt.wantID || len(tags) != 1 || tags[0] != tt.wantTag {
				t.Errorf("got %q %v, want %q [%s]", id, tags, tt.wantID, tt.wantTag)
			}
		})
	}
}
