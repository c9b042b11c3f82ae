package openapi

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	openapiv2 "github.com/google/gnostic-models/openapiv2"
	openapiv3 "github.com/google/gnostic-models/openapiv3"
	"google.golang.org/protobuf/proto"
	"k8s.io/kube-openapi/pkg/handler3"

	"kubesvc/internal/resource"
)

// newTestServer serves the OpenAPI handler on 127.0.0.1.
func newTestServer(t *testing.T) (*httptest.Server, *Handler) {
	t.Helper()
	hh, err := NewHandler()
	if err != nil {
		t.Fatalf("NewHandler: %v", err)
	}
	h := hh.(*Handler)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, h
}

// noRedirect is a client that returns redirects instead of following them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func do(t *testing.T, method, u string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := noRedirect.Do(req)
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

func v3Discovery(t *testing.T, srv *httptest.Server) handler3.OpenAPIV3Discovery {
	t.Helper()
	resp, body := do(t, http.MethodGet, srv.URL+V3Path, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", V3Path, resp.StatusCode, body)
	}
	var d handler3.OpenAPIV3Discovery
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatalf("decoding discovery: %v", err)
	}
	return d
}

func TestHandler_LazyBuild(t *testing.T) {
	_, h := newTestServer(t)
	for p, d := range h.v3 {
		if d.json != nil {
			t.Errorf("document %q built by NewHandler", p)
		}
	}
	if h.v2.json != nil {
		t.Error("v2 document built by NewHandler")
	}
}

func TestHandler_V3Discovery(t *testing.T) {
	srv, _ := newTestServer(t)
	d := v3Discovery(t, srv)
	var got []string
	for p := range d.Paths {
		got = append(got, p)
	}
	sort.Strings(got)
	want := []string{
		"api", "api/v1", "apis", "apis/apps", "apis/apps/v1", "apis/coordination.k8s.io",
		"apis/coordination.k8s.io/v1", "apis/discovery.k8s.io", "apis/discovery.k8s.io/v1",
		"apis/networking.k8s.io", "apis/networking.k8s.io/v1", "version",
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("paths = %v, want %v", got, want)
	}
	for p, gv := range d.Paths {
		u, err := url.Parse(gv.ServerRelativeURL)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if u.Path != V3Path+"/"+p || len(u.Query().Get("hash")) != 128 {
			t.Errorf("%s: serverRelativeURL %q, want %s/%s?hash=<sha512>", p, gv.ServerRelativeURL, V3Path, p)
		}
	}
}

func TestHandler_V3DocumentCaching(t *testing.T) {
	srv, _ := newTestServer(t)
	d := v3Discovery(t, srv)
	current := d.Paths["apis/apps/v1"].ServerRelativeURL
	hash := strings.TrimPrefix(current, V3Path+"/apis/apps/v1?hash=")

	tests := []struct {
		name         string
		path         string
		header       http.Header
		wantCode     int
		wantType     string
		wantCache    string
		wantLocation string
	}{
		{name: "current hash", path: current, wantCode: 200, wantType: "application/json", wantCache: "public, immutable"},
		{name: "no hash", path: V3Path + "/apis/apps/v1", wantCode: 200, wantType: "application/json"},
		{name: "stale hash redirects", path: V3Path + "/apis/apps/v1?hash=0123", wantCode: 301, wantLocation: current},
		{name: "if-none-match", path: current, header: http.Header{"If-None-Match": {strconv.Quote(hash)}}, wantCode: 304, wantCache: "public, immutable"},
		{name: "protobuf", path: current, header: http.Header{"Accept": {"application/com.github.proto-openapi.spec.v3.v1.0+protobuf"}},
			wantCode: 200, wantType: "application/com.github.proto-openapi.spec.v3.v1.0+protobuf", wantCache: "public, immutable"},
		{name: "deprecated protobuf type", path: current, header: http.Header{"Accept": {"application/com.github.proto-openapi.spec.v3@v1.0+protobuf"}},
			wantCode: 200, wantType: "application/com.github.proto-openapi.spec.v3.v1.0+protobuf", wantCache: "public, immutable"},
		{name: "json preferred by q", path: current, header: http.Header{"Accept": {"application/com.github.proto-openapi.spec.v3.v1.0+protobuf;q=0.5, application/json"}},
			wantCode: 200, wantType: "application/json", wantCache: "public, immutable"},
		{name: "not acceptable", path: current, header: http.Header{"Accept": {"text/html"}}, wantCode: 406},
		{name: "unknown document", path: V3Path + "/apis/batch/v1", wantCode: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, http.MethodGet, srv.URL+tt.path, tt.header)
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tt.wantCode)
			}
			if tt.wantType != "" && resp.Header.Get("Content-Type") != tt.wantType {
				t.Errorf("Content-Type = %q, want %q", resp.Header.Get("Content-Type"), tt.wantType)
			}
			if got := resp.Header.Get("Cache-Control"); got != tt.wantCache {
				t.Errorf("Cache-Control = %q, want %q", got, tt.wantCache)
			}
			if tt.wantLocation != "" && resp.Header.Get("Location") != tt.wantLocation {
				t.Errorf("Location = %q, want %q", resp.Header.Get("Location"), tt.wantLocation)
			}
			if resp.StatusCode == 200 {
				if got := resp.Header.Get("Etag"); got != strconv.Quote(hash) {
					t.Errorf("Etag = %q, want the discovery hash", got)
				}
				if tt.wantType == "application/json" && !json.Valid(body) {
					t.Error("body is not JSON")
				}
				if strings.Contains(tt.wantType, "protobuf") {
					var doc openapiv3.Document
					if err := proto.Unmarshal(body, &doc); err != nil {
						t.Fatalf("decoding protobuf: %v", err)
					}
					if doc.GetComponents().GetSchemas() == nil || doc.GetPaths() == nil {
						t.Error("protobuf document lacks schemas or paths")
					}
				}
			}
		})
	}
}

// TestHandler_Handler3Parity checks the hash scheme against kube-openapi's handler3 serving the same
// document: same bytes, same discovery URL.
func TestHandler_Handler3Parity(t *testing.T) {
	srv, _ := newTestServer(t)
	ours := v3Discovery(t, srv)

	const p = "apis/networking.k8s.io/v1"
	c, err := newCatalog(resource.All)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := c.buildV3(p)
	if err != nil {
		t.Fatal(err)
	}
	ref := handler3.NewOpenAPIService()
	ref.UpdateGroupVersion(p, doc)
	mux := prefixMux{http.NewServeMux()}
	if err := ref.RegisterOpenAPIV3VersionedService(V3Path, mux); err != nil {
		t.Fatal(err)
	}
	refSrv := httptest.NewServer(mux)
	defer refSrv.Close()
	refDisc := v3Discovery(t, refSrv)

	if got, want := ours.Paths[p].ServerRelativeURL, refDisc.Paths[p].ServerRelativeURL; got != want {
		t.Errorf("serverRelativeURL = %q, handler3 gives %q", got, want)
	}
	_, ourBody := do(t, http.MethodGet, srv.URL+ours.Paths[p].ServerRelativeURL, nil)
	refResp, refBody := do(t, http.MethodGet, refSrv.URL+refDisc.Paths[p].ServerRelativeURL, nil)
	if string(ourBody) != string(refBody) {
		t.Error("document bytes differ from handler3's")
	}
	if refResp.Header.Get("Cache-Control") != "public, immutable" {
		t.Errorf("handler3 Cache-Control = %q", refResp.Header.Get("Cache-Control"))
	}
}

// prefixMux adapts http.ServeMux to kube-openapi's PathHandlerByGroupVersion.
type prefixMux struct{ *http.ServeMux }

func (m prefixMux) HandlePrefix(prefix string, h http.Handler) { m.Handle(prefix, h) }

func TestHandler_V2(t *testing.T) {
	srv, _ := newTestServer(t)
	tests := []struct {
		name     string
		accept   string
		wantCode int
		wantType string
	}{
		{name: "json", accept: "application/json", wantCode: 200, wantType: "application/json"},
		{name: "default", wantCode: 200, wantType: "application/json"},
		{name: "protobuf", accept: "application/com.github.proto-openapi.spec.v2@v1.0+protobuf", wantCode: 200, wantType: "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"},
		{name: "not acceptable", accept: "text/plain", wantCode: 406},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.accept != "" {
				h.Set("Accept", tt.accept)
			}
			resp, body := do(t, http.MethodGet, srv.URL+V2Path, h)
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tt.wantCode)
			}
			if resp.StatusCode != 200 {
				return
			}
			if resp.Header.Get("Content-Type") != tt.wantType || resp.Header.Get("Etag") == "" {
				t.Errorf("Content-Type %q Etag %q", resp.Header.Get("Content-Type"), resp.Header.Get("Etag"))
			}
			var doc *openapiv2.Document
			if strings.Contains(tt.wantType, "protobuf") {
				doc = &openapiv2.Document{}
				if err := proto.Unmarshal(body, doc); err != nil {
					t.Fatalf("decoding protobuf: %v", err)
				}
			} else {
				var err error
				if doc, err = openapiv2.ParseDocument(body); err != nil {
					t.Fatalf("parsing JSON: %v", err)
				}
			}
			if doc.GetSwagger() != "2.0" || len(doc.GetDefinitions().GetAdditionalProperties()) == 0 {
				t.Errorf("swagger %q with %d definitions", doc.GetSwagger(), len(doc.GetDefinitions().GetAdditionalProperties()))
			}
			if doc.GetSecurityDefinitions() == nil {
				t.Error("no securityDefinitions")
			}
		})
	}
}

func TestHandler_Methods(t *testing.T) {
	srv, _ := newTestServer(t)
	tests := []struct {
		name     string
		method   string
		path     string
		wantCode int
	}{
		{name: "head v3", method: http.MethodHead, path: V3Path + "/version", wantCode: 200},
		{name: "post v2", method: http.MethodPost, path: V2Path, wantCode: 405},
		{name: "unknown path", method: http.MethodGet, path: "/openapi/v4", wantCode: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, _ := do(t, tt.method, srv.URL+tt.path, nil)
			if resp.StatusCode != tt.wantCode {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.wantCode)
			}
		})
	}
}

// TestHandler_ConcurrentFirstRequests checks that concurrent first requests share one build per
// document and all see the same bytes.
func TestHandler_ConcurrentFirstRequests(t *testing.T) {
	srv, _ := newTestServer(t)
	paths := []string{V3Path, V3Path + "/api/v1", V3Path + "/api/v1", V3Path + "/apis/apps/v1", V2Path, V2Path}
	type result struct {
		path string
		code int
		etag string
	}
	results := make(chan result, len(paths))
	var wg sync.WaitGroup
	for _, p := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(srv.URL + p)
			if err != nil {
				results <- result{path: p}
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			results <- result{path: p, code: resp.StatusCode, etag: resp.Header.Get("Etag")}
		}()
	}
	wg.Wait()
	close(results)
	etags := map[string]string{}
	for r := range results {
		if r.code != http.StatusOK || r.etag == "" {
			t.Errorf("%s: status %d, etag %q", r.path, r.code, r.etag)
			continue
		}
		if prev, ok := etags[r.path]; ok && prev != r.etag {
			t.Errorf("%s: etags differ between requests: %s vs %s", r.path, prev, r.etag)
		}
		etags[r.path] = r.etag
	}
}
