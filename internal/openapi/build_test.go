package openapi

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/managedfields"
	cliresource "k8s.io/cli-runtime/pkg/resource"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/openapi3"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/kube-openapi/pkg/spec3"
	kubectlexplain "k8s.io/kubectl/pkg/explain"
	explainv2 "k8s.io/kubectl/pkg/explain/v2"
	kubectlopenapi "k8s.io/kubectl/pkg/util/openapi"

	kubediscovery "kubesvc/internal/discovery"
	"kubesvc/internal/resource"
)

// newAPIServer serves discovery and OpenAPI on 127.0.0.1, like the API server's router, and
// returns a discovery client for it.
func newAPIServer(t *testing.T) *discovery.DiscoveryClient {
	t.Helper()
	_, dc := newAPIServerURL(t)
	return dc
}

func newAPIServerURL(t *testing.T) (string, *discovery.DiscoveryClient) {
	t.Helper()
	oa, err := NewHandler()
	if err != nil {
		t.Fatalf("NewHandler: %v", err)
	}
	disc := kubediscovery.NewHandler(kubediscovery.Config{}).(*kubediscovery.Handler)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/openapi/"):
			oa.ServeHTTP(w, r)
		case disc.Handles(r.URL.Path):
			disc.ServeHTTP(w, r)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	dc, err := discovery.NewDiscoveryClientForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return srv.URL, dc
}

// gvSpecs fetches every catalog group/version's document through client-go's openapi3 root.
func gvSpecs(t *testing.T, dc *discovery.DiscoveryClient) map[schema.GroupVersion]*spec3.OpenAPI {
	t.Helper()
	root := openapi3.NewRoot(dc.OpenAPIV3())
	gvs, err := root.GroupVersions()
	if err != nil {
		t.Fatalf("GroupVersions: %v", err)
	}
	out := map[schema.GroupVersion]*spec3.OpenAPI{}
	for _, gv := range gvs {
		doc, err := root.GVSpec(gv)
		if err != nil {
			t.Fatalf("GVSpec(%s): %v", gv, err)
		}
		out[gv] = doc
	}
	for _, gv := range resource.GroupVersions() {
		if out[gv] == nil {
			t.Fatalf("no OpenAPI v3 document for %s (have %v)", gv, gvs)
		}
	}
	return out
}

// operation returns the operation of method on p, or nil.
func operation(p *spec3.Path, method string) *spec3.Operation {
	if p == nil {
		return nil
	}
	switch method {
	case http.MethodGet:
		return p.Get
	case http.MethodPost:
		return p.Post
	case http.MethodPut:
		return p.Put
	case http.MethodPatch:
		return p.Patch
	case http.MethodDelete:
		return p.Delete
	}
	return nil
}

var verbMethods = map[string][]struct{ method, where string }{
	"list":             {{http.MethodGet, "collection"}},
	"create":           {{http.MethodPost, "collection"}},
	"deletecollection": {{http.MethodDelete, "collection"}},
	"watch":            {{http.MethodGet, "watch"}},
	"get":              {{http.MethodGet, "item"}},
	"update":           {{http.MethodPut, "item"}},
	"patch":            {{http.MethodPatch, "item"}},
	"delete":           {{http.MethodDelete, "item"}},
}

var subVerbMethods = map[string]string{
	"get": http.MethodGet, "create": http.MethodPost, "update": http.MethodPut, "patch": http.MethodPatch, "delete": http.MethodDelete,
}

// TestBuild_CatalogPaths checks that every catalog resource and subresource has its paths and
// operations, each with kube's x-kubernetes-action and x-kubernetes-group-version-kind.
func TestBuild_CatalogPaths(t *testing.T) {
	specs := gvSpecs(t, newAPIServer(t))
	for _, info := range resource.All {
		t.Run(info.GroupResource().String(), func(t *testing.T) {
			doc := specs[info.GroupVersion()]
			prefix := apiPrefix(info.GroupVersion())
			coll := prefix + "/" + info.Resource
			if info.Namespaced {
				coll = prefix + "/namespaces/{namespace}/" + info.Resource
			}
			item := coll + "/{name}"
			paths := map[string]string{
				"collection": coll,
				"item":       item,
				"watch":      prefix + "/watch" + strings.TrimPrefix(item, prefix),
			}
			check := func(path, method, wantKind string) {
				t.Helper()
				op := operation(doc.Paths.Paths[path], method)
				if op == nil {
					t.Errorf("no %s %s", method, path)
					return
				}
				if op.OperationId == "" || op.Extensions[extensionAction] == nil {
					t.Errorf("%s %s: operationId %q, action %v", method, path, op.OperationId, op.Extensions[extensionAction])
				}
				gvk, _ := op.Extensions[extensionGVK].(map[string]interface{})
				if gvk["kind"] != wantKind {
					t.Errorf("%s %s: x-kubernetes-group-version-kind %v, want kind %s", method, path, op.Extensions[extensionGVK], wantKind)
				}
			}
			for _, verb := range info.Verbs {
				for _, m := range verbMethods[verb] {
					check(paths[m.where], m.method, info.Kind)
				}
			}
			if info.Namespaced && slices.Contains(info.Verbs, "list") {
				check(prefix+"/"+info.Resource, http.MethodGet, info.Kind)
			}
			for _, sub := range info.Subresources {
				for _, verb := range sub.Verbs {
					check(item+"/"+sub.Name, subVerbMethods[verb], sub.Kind.Kind)
				}
			}
			if s := doc.Components.Schemas[definitionName(info)]; s == nil || s.Extensions[extensionGVK] == nil {
				t.Errorf("schema %s missing or without x-kubernetes-group-version-kind", definitionName(info))
			}
		})
	}
}

// definitionName is the OpenAPI model name of a resource's kind, e.g. io.k8s.api.apps.v1.Deployment.
func definitionName(info *resource.Info) string {
	pkg := map[string]string{"": "core", "networking.k8s.io": "networking", "discovery.k8s.io": "discovery", "coordination.k8s.io": "coordination"}
	g, ok := pkg[info.Group]
	if !ok {
		g = info.Group
	}
	return "io.k8s.api." + g + "." + info.Version + "." + info.Kind
}

func TestBuild_ServiceDocument(t *testing.T) {
	doc := gvSpecs(t, newAPIServer(t))[schema.GroupVersion{Version: "v1"}]

	t.Run("schema", func(t *testing.T) {
		svc := doc.Components.Schemas["io.k8s.api.core.v1.Service"]
		if svc == nil {
			t.Fatal("no io.k8s.api.core.v1.Service")
		}
		gvks, _ := svc.Extensions[extensionGVK].([]interface{})
		if len(gvks) != 1 || gvks[0].(map[string]interface{})["kind"] != "Service" {
			t.Errorf("x-kubernetes-group-version-kind = %v", svc.Extensions[extensionGVK])
		}
		ports := doc.Components.Schemas["io.k8s.api.core.v1.ServiceSpec"].Properties["ports"]
		tests := []struct {
			name string
			key  string
			want interface{}
		}{
			{name: "merge key", key: "x-kubernetes-patch-merge-key", want: "port"},
			{name: "patch strategy", key: "x-kubernetes-patch-strategy", want: "merge"},
			{name: "list type", key: "x-kubernetes-list-type", want: "map"},
			{name: "list map keys", key: "x-kubernetes-list-map-keys", want: "[port protocol]"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got := ports.Extensions[tt.key]
				if l, ok := got.([]interface{}); ok {
					var s []string
					for _, v := range l {
						s = append(s, v.(string))
					}
					got = "[" + strings.Join(s, " ") + "]"
				}
				if got != tt.want {
					t.Errorf("ports %s = %v, want %v", tt.key, got, tt.want)
				}
			})
		}
	})

	t.Run("patch operation", func(t *testing.T) {
		op := doc.Paths.Paths["/api/v1/namespaces/{namespace}/services/{name}"].Patch
		if op == nil {
			t.Fatal("no PATCH on services/{name}")
		}
		if op.OperationId != "patchCoreV1NamespacedService" {
			t.Errorf("operationId = %q", op.OperationId)
		}
		var params []string
		for _, p := range op.Parameters {
			params = append(params, p.Name)
		}
		for _, want := range []string{"dryRun", "fieldManager", "fieldValidation", "force"} {
			if !slices.Contains(params, want) {
				t.Errorf("parameters %v lack %s", params, want)
			}
		}
		for _, ct := range []string{"application/strategic-merge-patch+json", "application/merge-patch+json", "application/json-patch+json", "application/apply-patch+yaml"} {
			if op.RequestBody == nil || op.RequestBody.Content[ct] == nil {
				t.Errorf("request body lacks %s", ct)
			}
		}
		if op.Extensions[extensionAction] != "patch" {
			t.Errorf("x-kubernetes-action = %v", op.Extensions[extensionAction])
		}
	})
}

// TestBuild_Operations checks operation IDs, tags, actions and parameters against kube-apiserver's
// (api/openapi-spec/v3/*.json).
func TestBuild_Operations(t *testing.T) {
	specs := gvSpecs(t, newAPIServer(t))
	core := schema.GroupVersion{Version: "v1"}
	apps := schema.GroupVersion{Group: "apps", Version: "v1"}
	net := schema.GroupVersion{Group: "networking.k8s.io", Version: "v1"}
	coord := schema.GroupVersion{Group: "coordination.k8s.io", Version: "v1"}
	tests := []struct {
		name       string
		gv         schema.GroupVersion
		path       string
		method     string
		wantID     string
		wantTag    string
		wantAction string
		wantParams []string // operation-level parameters that must be present
	}{
		{name: "list namespaced", gv: coord, path: "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases", method: "GET", wantID: "listCoordinationV1NamespacedLease", wantTag: "coordination_v1", wantAction: "list"},
		{name: "deletecollection", gv: apps, path: "/apis/apps/v1/namespaces/{namespace}/deployments", method: "DELETE", wantID: "deleteAppsV1CollectionNamespacedDeployment", wantTag: "apps_v1", wantAction: "deletecollection", wantParams: []string{"labelSelector", "gracePeriodSeconds", "propagationPolicy"}},
		{name: "create", gv: core, path: "/api/v1/namespaces/{namespace}/services", method: "POST", wantID: "createCoreV1NamespacedService", wantTag: "core_v1", wantAction: "post", wantParams: []string{"dryRun", "fieldManager", "fieldValidation"}},
		{name: "all namespaces", gv: net, path: "/apis/networking.k8s.io/v1/ingresses", method: "GET", wantID: "listNetworkingV1IngressForAllNamespaces", wantTag: "networking_v1", wantAction: "list"},
		{name: "cluster scoped watch list", gv: core, path: "/api/v1/watch/namespaces", method: "GET", wantID: "watchCoreV1NamespaceList", wantTag: "core_v1", wantAction: "watchlist"},
		{name: "watch item", gv: core, path: "/api/v1/watch/namespaces/{namespace}/services/{name}", method: "GET", wantID: "watchCoreV1NamespacedService", wantTag: "core_v1", wantAction: "watch"},
		{name: "log", gv: core, path: "/api/v1/namespaces/{namespace}/pods/{name}/log", method: "GET", wantID: "readCoreV1NamespacedPodLog", wantTag: "core_v1", wantAction: "get"},
		{name: "exec", gv: core, path: "/api/v1/namespaces/{namespace}/pods/{name}/exec", method: "POST", wantID: "connectCoreV1PostNamespacedPodExec", wantTag: "core_v1", wantAction: "connect"},
		{name: "portforward", gv: core, path: "/api/v1/namespaces/{namespace}/pods/{name}/portforward", method: "GET", wantID: "connectCoreV1GetNamespacedPodPortforward", wantTag: "core_v1", wantAction: "connect"},
		{name: "scale", gv: apps, path: "/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale", method: "PATCH", wantID: "patchAppsV1NamespacedDeploymentScale", wantTag: "apps_v1", wantAction: "patch"},
		{name: "status", gv: core, path: "/api/v1/nodes/{name}/status", method: "PUT", wantID: "replaceCoreV1NodeStatus", wantTag: "core_v1", wantAction: "put"},
		{name: "finalize", gv: core, path: "/api/v1/namespaces/{name}/finalize", method: "PUT", wantID: "replaceCoreV1NamespaceFinalize", wantTag: "core_v1", wantAction: "put"},
		{name: "discovery", gv: core, path: "/api/v1/", method: "GET", wantID: "getCoreV1APIResources", wantTag: "core_v1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := specs[tt.gv].Paths.Paths[tt.path]
			op := operation(p, tt.method)
			if op == nil {
				t.Fatalf("no %s %s", tt.method, tt.path)
			}
			if op.OperationId != tt.wantID {
				t.Errorf("operationId = %q, want %q", op.OperationId, tt.wantID)
			}
			if len(op.Tags) != 1 || op.Tags[0] != tt.wantTag {
				t.Errorf("tags = %v, want [%s]", op.Tags, tt.wantTag)
			}
			if got, _ := op.Extensions[extensionAction].(string); got != tt.wantAction {
				t.Errorf("x-kubernetes-action = %q, want %q", got, tt.wantAction)
			}
			var params []string
			for _, prm := range append(op.Parameters, p.Parameters...) {
				params = append(params, prm.Name)
			}
			for _, want := range tt.wantParams {
				if !slices.Contains(params, want) {
					t.Errorf("parameters %v lack %s", params, want)
				}
			}
		})
	}
}

// TestBuild_KubectlExplain runs kubectl explain's code paths against the server: the v3 renderer
// kubectl ≥1.27 uses and the v2 (protobuf) one older kubectl uses.
func TestBuild_KubectlExplain(t *testing.T) {
	dc := newAPIServer(t)
	cached := memory.NewMemCacheClient(dc)
	mapper := restmapper.NewShortcutExpander(restmapper.NewDeferredDiscoveryRESTMapper(cached), cached, nil)
	gvr, fields, err := kubectlexplain.SplitAndParseResourceRequest("svc.spec.ports.port", mapper)
	if err != nil {
		t.Fatalf("SplitAndParseResourceRequest: %v", err)
	}
	if gvr.Resource != "services" || strings.Join(fields, ".") != "spec.ports.port" {
		t.Fatalf("parsed %v %v", gvr, fields)
	}

	tests := []struct {
		name    string
		explain func(*bytes.Buffer) error
	}{
		{
			name: "openapi v3",
			explain: func(out *bytes.Buffer) error {
				return explainv2.PrintModelDescription(fields, out, dc.OpenAPIV3(), gvr, false, 0, "plaintext")
			},
		},
		{
			name: "openapi v2",
			explain: func(out *bytes.Buffer) error {
				resources, err := kubectlopenapi.NewOpenAPIParser(dc).Parse()
				if err != nil {
					return err
				}
				gvk := schema.GroupVersionKind{Version: "v1", Kind: "Service"}
				s := resources.LookupResource(gvk)
				if s == nil {
					t.Fatal("v2 document has no Service")
				}
				return kubectlexplain.PrintModelDescription(fields, out, s, gvk, false, 0)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := tt.explain(&out); err != nil {
				t.Fatalf("explain: %v", err)
			}
			for _, want := range []string{"KIND:", "Service", "port", "integer", "The port that will be exposed by this service."} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("output lacks %q:\n%s", want, out.String())
				}
			}
		})
	}
}

// TestBuild_FieldValidationSupport checks that kubectl's query parameter verifier (which decides
// whether --validate is done by the server) finds fieldValidation and dryRun for every kind.
func TestBuild_FieldValidationSupport(t *testing.T) {
	dc := newAPIServer(t)
	for _, param := range []cliresource.VerifiableQueryParam{cliresource.QueryParamFieldValidation, "dryRun"} {
		v := cliresource.NewQueryParamVerifierV3(nil, dc.OpenAPIV3(), param)
		for _, info := range resource.All {
			t.Run(string(param)+"/"+info.Kind, func(t *testing.T) {
				if err := v.HasSupport(info.GroupVersionKind()); err != nil {
					t.Errorf("HasSupport(%s): %v", info.GroupVersionKind(), err)
				}
			})
		}
	}
}

// TestSchemas_ServerSideApply checks that Schemas builds a server-side apply type converter
// that understands every served kind.
func TestSchemas_ServerSideApply(t *testing.T) {
	schemas, err := Schemas()
	if err != nil {
		t.Fatalf("Schemas: %v", err)
	}
	tc, err := managedfields.NewTypeConverter(schemas, false)
	if err != nil {
		t.Fatalf("NewTypeConverter: %v", err)
	}
	for _, info := range resource.All {
		t.Run(info.GroupResource().String(), func(t *testing.T) {
			obj := info.New()
			obj.GetObjectKind().SetGroupVersionKind(info.GroupVersionKind())
			if _, err := tc.ObjectToTyped(obj); err != nil {
				t.Errorf("ObjectToTyped(%s): %v", info.Kind, err)
			}
		})
	}

	t.Run("ports merge by port and protocol", func(t *testing.T) {
		svc := func(ports ...corev1.ServicePort) *corev1.Service {
			return &corev1.Service{
				TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
				ObjectMeta: metav1.ObjectMeta{Name: "web"},
				Spec:       corev1.ServiceSpec{Ports: ports},
			}
		}
		live, err := tc.ObjectToTyped(svc(
			corev1.ServicePort{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(8080)},
			corev1.ServicePort{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP},
		))
		if err != nil {
			t.Fatal(err)
		}
		applied, err := tc.ObjectToTyped(svc(corev1.ServicePort{Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(9090)}))
		if err != nil {
			t.Fatal(err)
		}
		merged, err := live.Merge(applied)
		if err != nil {
			t.Fatalf("Merge: %v", err)
		}
		u := merged.AsValue().Unstructured()
		ports := u.(map[string]interface{})["spec"].(map[string]interface{})["ports"].([]interface{})
		if len(ports) != 2 {
			t.Fatalf("merged ports = %v, want 2 entries keyed by port/protocol", ports)
		}
		for _, p := range ports {
			m := p.(map[string]interface{})
			if m["port"] == int64(80) && m["targetPort"] != int64(9090) {
				t.Errorf("port 80 targetPort = %v, want 9090", m["targetPort"])
			}
		}
	})
}
