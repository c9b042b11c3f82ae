package discovery

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"kubesvc/internal/resource"
)

// requestLog records the paths a test server was asked for.
type requestLog struct {
	mu    sync.Mutex
	paths []string
}

func (l *requestLog) add(p string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.paths = append(l.paths, p)
}

func (l *requestLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string{}, l.paths...)
}

// newServer serves the discovery handler on 127.0.0.1 the way the REST router will: only the
// paths it Handles, 404 elsewhere.
func newServer(t *testing.T) (*httptest.Server, *requestLog) {
	t.Helper()
	h := NewHandler(Config{ServerAddress: "10.0.0.1:6443"}).(*Handler)
	log := &requestLog{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.add(r.URL.Path)
		if !h.Handles(r.URL.Path) {
			http.NotFound(w, r)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, log
}

func newClient(t *testing.T, srv *httptest.Server, legacy bool) *discovery.DiscoveryClient {
	t.Helper()
	dc, err := discovery.NewDiscoveryClientForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatalf("discovery client: %v", err)
	}
	dc.UseLegacyDiscovery = legacy
	return dc
}

// checkResources verifies that every catalog resource and subresource is in lists with the
// catalog's names, scope, kind, verbs, short names and categories.
func checkResources(t *testing.T, lists []*metav1.APIResourceList) {
	t.Helper()
	byGV := map[string]map[string]metav1.APIResource{}
	for _, l := range lists {
		m := map[string]metav1.APIResource{}
		for _, r := range l.APIResources {
			m[r.Name] = r
		}
		byGV[l.GroupVersion] = m
	}
	for _, info := range resource.All {
		gv := info.GroupVersion().String()
		got, ok := byGV[gv][info.Resource]
		if !ok {
			t.Errorf("%s %s: missing from discovery", gv, info.Resource)
			continue
		}
		if got.Kind != info.Kind || got.Namespaced != info.Namespaced || got.SingularName != info.Singular {
			t.Errorf("%s %s: kind/namespaced/singular = %s/%v/%s, want %s/%v/%s", gv, info.Resource,
				got.Kind, got.Namespaced, got.SingularName, info.Kind, info.Namespaced, info.Singular)
		}
		if !sameSet(got.Verbs, info.Verbs) {
			t.Errorf("%s %s: verbs = %v, want %v", gv, info.Resource, got.Verbs, info.Verbs)
		}
		if !slices.Equal(got.ShortNames, info.ShortNames) {
			t.Errorf("%s %s: shortNames = %v, want %v", gv, info.Resource, got.ShortNames, info.ShortNames)
		}
		if !slices.Equal(got.Categories, info.Categories) {
			t.Errorf("%s %s: categories = %v, want %v", gv, info.Resource, got.Categories, info.Categories)
		}
		for _, sub := range info.Subresources {
			name := info.Resource + "/" + sub.Name
			got, ok := byGV[gv][name]
			if !ok {
				t.Errorf("%s %s: missing from discovery", gv, name)
				continue
			}
			if got.Kind != sub.Kind.Kind || !sameSet(got.Verbs, sub.Verbs) {
				t.Errorf("%s %s: kind/verbs = %s/%v, want %s/%v", gv, name, got.Kind, got.Verbs, sub.Kind.Kind, sub.Verbs)
			}
		}
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	sort.Strings(a)
	sort.Strings(b)
	return slices.Equal(a, b)
}

func TestHandler_ClientGoDiscovery(t *testing.T) {
	tests := []struct {
		name   string
		legacy bool
		// wantPaths are exactly the paths the client must request.
		wantPaths []string
	}{
		{
			name:      "aggregated",
			legacy:    false,
			wantPaths: []string{"/api", "/apis"},
		},
		{
			name:   "legacy",
			legacy: true,
			wantPaths: []string{"/api", "/apis", "/api/v1", "/apis/apps/v1", "/apis/coordination.k8s.io/v1",
				"/apis/discovery.k8s.io/v1", "/apis/networking.k8s.io/v1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, log := newServer(t)
			dc := newClient(t, srv, tt.legacy)
			groups, lists, err := dc.ServerGroupsAndResources()
			if err != nil {
				t.Fatalf("ServerGroupsAndResources: %v", err)
			}
			var names []string
			for _, g := range groups {
				names = append(names, g.Name)
			}
			wantGroups := []string{"", "apps", "networking.k8s.io", "coordination.k8s.io", "discovery.k8s.io"}
			if !slices.Equal(names, wantGroups) {
				t.Errorf("groups = %q, want %q (kube's priority order)", names, wantGroups)
			}
			checkResources(t, lists)
			if got := log.get(); !sameSet(got, tt.wantPaths) {
				t.Errorf("requested %v, want %v", got, tt.wantPaths)
			}
		})
	}
}

func TestHandler_RESTMapperShortcutsAndCategories(t *testing.T) {
	srv, _ := newServer(t)
	dc := newClient(t, srv, false)
	cached := memory.NewMemCacheClient(dc)
	mapper := restmapper.NewShortcutExpander(restmapper.NewDeferredDiscoveryRESTMapper(cached), cached, nil)

	tests := []struct {
		name  string
		input string
		want  schema.GroupVersionResource
	}{
		{name: "svc", input: "svc", want: schema.GroupVersionResource{Version: "v1", Resource: "services"}},
		{name: "po", input: "po", want: schema.GroupVersionResource{Version: "v1", Resource: "pods"}},
		{name: "deploy", input: "deploy", want: schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}},
		{name: "ing", input: "ing", want: schema.GroupVersionResource{Group: "networking.k8s.io", Version: "v1", Resource: "ingresses"}},
		{name: "singular", input: "service", want: schema.GroupVersionResource{Version: "v1", Resource: "services"}},
		{name: "group qualified", input: "endpointslices.discovery.k8s.io", want: schema.GroupVersionResource{Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gr := schema.ParseGroupResource(tt.input)
			got, err := mapper.ResourceFor(gr.WithVersion(""))
			if err != nil {
				t.Fatalf("ResourceFor(%q): %v", tt.input, err)
			}
			if got != tt.want {
				t.Errorf("ResourceFor(%q) = %v, want %v", tt.input, got, tt.want)
			}
		})
	}

	t.Run("kind mapping", func(t *testing.T) {
		m, err := mapper.RESTMapping(schema.GroupKind{Group: "apps", Kind: "Deployment"}, "v1")
		if err != nil {
			t.Fatalf("RESTMapping: %v", err)
		}
		if m.Resource.Resource != "deployments" || m.Scope.Name() != "namespace" {
			t.Errorf("mapping = %v scope %s", m.Resource, m.Scope.Name())
		}
	})

	t.Run("category all", func(t *testing.T) {
		got, ok := restmapper.NewDiscoveryCategoryExpander(cached).Expand("all")
		if !ok {
			t.Fatal("category all not found")
		}
		var names []string
		for _, gr := range got {
			names = append(names, gr.String())
		}
		want := []string{"deployments.apps", "pods", "replicasets.apps", "replicationcontrollers", "services"}
		if !sameSet(names, want) {
			t.Errorf("all = %v, want %v", names, want)
		}
	})
}

func get(t *testing.T, srv *httptest.Server, method, path string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func TestHandler_Negotiation(t *testing.T) {
	const aggV2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
	tests := []struct {
		name        string
		path        string
		accept      string
		wantCode    int
		wantType    string
		wantKindIn  string // substring of the body
		wantNoField string // substring that must not be in the body
	}{
		{name: "api legacy default", path: "/api", wantCode: 200, wantType: "application/json", wantKindIn: `"kind":"APIVersions"`, wantNoField: `"apiVersion"`},
		{name: "api trailing slash", path: "/api/", wantCode: 200, wantType: "application/json", wantKindIn: `"serverAddressByClientCIDRs":[{"clientCIDR":"0.0.0.0/0","serverAddress":"10.0.0.1:6443"}]`},
		{name: "api aggregated", path: "/api", accept: aggV2 + ",application/json", wantCode: 200, wantType: aggV2, wantKindIn: `"kind":"APIGroupDiscoveryList","apiVersion":"apidiscovery.k8s.io/v2"`},
		{name: "apis aggregated nopeer", path: "/apis", accept: "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList;profile=nopeer," + aggV2 + ",application/json", wantCode: 200, wantType: aggV2, wantKindIn: `"name":"apps"`},
		{name: "apis aggregated v2beta1 (kubectl 1.27)", path: "/apis", accept: "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json", wantCode: 200, wantType: "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList", wantKindIn: `"apiVersion":"apidiscovery.k8s.io/v2beta1"`},
		{name: "apis legacy", path: "/apis", accept: "application/json, */*", wantCode: 200, wantType: "application/json", wantKindIn: `"kind":"APIGroupList","apiVersion":"v1"`},
		{name: "unknown aggregated version falls back", path: "/apis", accept: "application/json;g=apidiscovery.k8s.io;v=v3;as=APIGroupDiscoveryList,application/json", wantCode: 200, wantType: "application/json", wantKindIn: `"kind":"APIGroupList"`},
		{name: "group version legacy only", path: "/apis/apps/v1", accept: aggV2 + ",application/json", wantCode: 200, wantType: "application/json", wantKindIn: `"groupVersion":"apps/v1"`},
		{name: "core version", path: "/api/v1", wantCode: 200, wantType: "application/json", wantKindIn: `{"kind":"APIResourceList","groupVersion":"v1"`},
		{name: "group", path: "/apis/networking.k8s.io", wantCode: 200, wantType: "application/json", wantKindIn: `"preferredVersion":{"groupVersion":"networking.k8s.io/v1","version":"v1"}`},
		{name: "yaml", path: "/apis/apps/v1", accept: "application/yaml", wantCode: 200, wantType: "application/yaml", wantKindIn: "groupVersion: apps/v1"},
		{name: "wildcard", path: "/api/v1", accept: "*/*", wantCode: 200, wantType: "application/json", wantKindIn: `"name":"services"`},
		{name: "table not acceptable", path: "/api/v1", accept: "application/json;as=Table;v=v1;g=meta.k8s.io", wantCode: 406, wantType: "application/json", wantKindIn: `"reason":"NotAcceptable"`},
		{name: "aggregated only on group version", path: "/api/v1", accept: aggV2, wantCode: 406, wantType: "application/json"},
		{name: "unsupported type", path: "/api", accept: "text/html", wantCode: 406, wantType: "application/json"},
	}
	srv, _ := newServer(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.accept != "" {
				h.Set("Accept", tt.accept)
			}
			resp, body := get(t, srv, http.MethodGet, tt.path, h)
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("status = %d, want %d: %s", resp.StatusCode, tt.wantCode, body)
			}
			if got := resp.Header.Get("Content-Type"); got != tt.wantType {
				t.Errorf("Content-Type = %q, want %q", got, tt.wantType)
			}
			if tt.wantKindIn != "" && !bytes.Contains(body, []byte(tt.wantKindIn)) {
				t.Errorf("body lacks %s: %.300s", tt.wantKindIn, body)
			}
			if tt.wantNoField != "" && bytes.Contains(body, []byte(tt.wantNoField)) {
				t.Errorf("body has %s: %.300s", tt.wantNoField, body)
			}
		})
	}
}

func TestHandler_AggregatedETag(t *testing.T) {
	srv, _ := newServer(t)
	h := http.Header{"Accept": {"application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"}}
	resp, _ := get(t, srv, http.MethodGet, "/apis", h)
	etag := resp.Header.Get("ETag")
	if len(etag) != 130 || !strings.HasPrefix(etag, `"`) {
		t.Fatalf("ETag = %q, want a quoted SHA-512 hex", etag)
	}
	if resp.Header.Get("Vary") != "Accept" || resp.Header.Get("Cache-Control") != "public" {
		t.Errorf("Vary/Cache-Control = %q/%q", resp.Header.Get("Vary"), resp.Header.Get("Cache-Control"))
	}

	tests := []struct {
		name     string
		path     string
		match    string
		wantCode int
	}{
		{name: "matching etag", path: "/apis", match: etag, wantCode: http.StatusNotModified},
		{name: "stale etag", path: "/apis", match: `"0000"`, wantCode: http.StatusOK},
		{name: "other document", path: "/api", match: etag, wantCode: http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := h.Clone()
			h.Set("If-None-Match", tt.match)
			resp, _ := get(t, srv, http.MethodGet, tt.path, h)
			if resp.StatusCode != tt.wantCode {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.wantCode)
			}
		})
	}
}

func TestHandler_Protobuf(t *testing.T) {
	srv, _ := newServer(t)
	tests := []struct {
		name     string
		path     string
		accept   string
		wantType string
		into     runtime.Object
		check    func(t *testing.T, obj runtime.Object)
	}{
		{
			name:     "aggregated",
			path:     "/apis",
			accept:   "application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
			wantType: "application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
			into:     &apidiscoveryv2.APIGroupDiscoveryList{},
			check: func(t *testing.T, obj runtime.Object) {
				l := obj.(*apidiscoveryv2.APIGroupDiscoveryList)
				if len(l.Items) == 0 || l.Items[0].Name != "apps" {
					t.Errorf("items = %+v", l.Items)
				}
			},
		},
		{
			name:     "legacy resource list",
			path:     "/api/v1",
			accept:   "application/vnd.kubernetes.protobuf",
			wantType: "application/vnd.kubernetes.protobuf",
			into:     &metav1.APIResourceList{},
			check: func(t *testing.T, obj runtime.Object) {
				l := obj.(*metav1.APIResourceList)
				if l.GroupVersion != "v1" || len(l.APIResources) == 0 {
					t.Errorf("list = %+v", l)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := get(t, srv, http.MethodGet, tt.path, http.Header{"Accept": {tt.accept}})
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != tt.wantType {
				t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			s := runtime.NewScheme()
			obj, _, err := protobuf.NewSerializer(s, s).Decode(body, nil, tt.into)
			if err != nil {
				t.Fatalf("decoding protobuf: %v", err)
			}
			tt.check(t, obj)
		})
	}
}

// TestHandler_GoldenEntries compares entries with kube-apiserver v1.37's golden discovery
// (api/discovery/api__v1.json, apis__apps__v1.json, aggregated_v2.json).
func TestHandler_GoldenEntries(t *testing.T) {
	srv, _ := newServer(t)
	tests := []struct {
		name   string
		path   string
		accept string
		want   string
	}{
		{
			name: "services",
			path: "/api/v1",
			want: `{"name":"services","singularName":"service","namespaced":true,"kind":"Service","verbs":["create","delete","deletecollection","get","list","patch","update","watch"],"shortNames":["svc"],"categories":["all"],"storageVersionHash":"0/CO1lhkEBI="}`,
		},
		{
			name: "pods/log",
			path: "/api/v1",
			want: `{"name":"pods/log","singularName":"","namespaced":true,"kind":"Pod","verbs":["get"]}`,
		},
		{
			name: "namespaces/finalize",
			path: "/api/v1",
			want: `{"name":"namespaces/finalize","singularName":"","namespaced":false,"kind":"Namespace","verbs":["update"]}`,
		},
		{
			name: "deployments/scale",
			path: "/apis/apps/v1",
			want: `{"name":"deployments/scale","singularName":"","namespaced":true,"group":"autoscaling","version":"v1","kind":"Scale","verbs":["get","patch","update"]}`,
		},
		{
			name:   "aggregated deployments",
			path:   "/apis",
			accept: "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
			want: `{"resource":"deployments","responseKind":{"group":"","version":"","kind":"Deployment"},"scope":"Namespaced","singularResource":"deployment","verbs":["create","delete","deletecollection","get","list","patch","update","watch"],"shortNames":["deploy"],"categories":["all"],` +
				`"subresources":[{"subresource":"scale","responseKind":{"group":"autoscaling","version":"v1","kind":"Scale"},"verbs":["get","patch","update"]},{"subresource":"status","responseKind":{"group":"","version":"","kind":"Deployment"},"verbs":["get","patch","update"]}]}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.accept != "" {
				h.Set("Accept", tt.accept)
			}
			_, body := get(t, srv, http.MethodGet, tt.path, h)
			if !bytes.Contains(body, []byte(tt.want)) {
				t.Errorf("%s lacks\n%s\nbody: %.2000s", tt.path, tt.want, body)
			}
		})
	}
}

func TestHandler_ResourceListOrder(t *testing.T) {
	srv, _ := newServer(t)
	_, body := get(t, srv, http.MethodGet, "/api/v1", nil)
	var l metav1.APIResourceList
	if err := json.Unmarshal(body, &l); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range l.APIResources {
		names = append(names, r.Name)
	}
	if !sort.StringsAreSorted(names) {
		t.Errorf("resources not sorted by name: %v", names)
	}
}

func TestHandler_Handles(t *testing.T) {
	h := NewHandler(Config{}).(*Handler)
	tests := []struct {
		name string
		path string
		want bool
	}{
		{name: "api", path: "/api", want: true},
		{name: "apis slash", path: "/apis/", want: true},
		{name: "core version", path: "/api/v1", want: true},
		{name: "group", path: "/apis/apps", want: true},
		{name: "group version slash", path: "/apis/apps/v1/", want: true},
		{name: "resource", path: "/api/v1/services", want: false},
		{name: "namespaced resource", path: "/api/v1/namespaces/default/pods", want: false},
		{name: "unknown group", path: "/apis/batch", want: false},
		{name: "unknown version", path: "/apis/apps/v1beta1", want: false},
		{name: "autoscaling is only referenced", path: "/apis/autoscaling/v1", want: false},
		{name: "other", path: "/version", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := h.Handles(tt.path); got != tt.want {
				t.Errorf("Handles(%q) = %v, want %v", tt.path, got, tt.want)
			}
		})
	}
}

func TestHandler_Methods(t *testing.T) {
	srv, _ := newServer(t)
	tests := []struct {
		name     string
		method   string
		wantCode int
		wantBody bool
	}{
		{name: "get", method: http.MethodGet, wantCode: 200, wantBody: true},
		{name: "head", method: http.MethodHead, wantCode: 200},
		{name: "post", method: http.MethodPost, wantCode: 405, wantBody: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := get(t, srv, tt.method, "/apis", nil)
			if resp.StatusCode != tt.wantCode || (len(body) > 0) != tt.wantBody {
				t.Errorf("status %d, body %d bytes", resp.StatusCode, len(body))
			}
		})
	}
}
