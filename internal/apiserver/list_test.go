package apiserver

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/kubernetes/scheme"

	"kubesvc/internal/storage"
)

// Lists are encoded item by item (listenc.go). These tests hold the wire form to what a
// normal encode of the typed list gives (KUBECTL-COMPAT.md §4.1 list shape, §2.2 Table
// shape, §6 protobuf): byte for byte, and decodable by client-go's codecs.

// referenceList encodes what the buffered path encoded before lists were streamed: the
// objects of the store at exactly the response's resourceVersion, copied into the typed list
// (meta.SetList) or Table (toTable), encoded whole.
func referenceList(t *testing.T, s *Server, r *http.Request, nsPath string, lm metav1.ListMeta, limit int64, cont string, accept string) []byte {
	t.Helper()
	res, err := s.store.List(context.Background(), svcInfo, s.store.ListPrefix(svcInfo, nsPath), storage.ListOptions{
		ResourceVersion: lm.ResourceVersion, Exact: cont == "", Limit: limit, Continue: cont,
	})
	if err != nil {
		t.Fatalf("reference list: %v", err)
	}
	n, _ := negotiate(accept)
	var obj runtime.Object
	switch n.output {
	case outputTable:
		tbl, err := s.toTable(r, svcInfo, res.Items, lm, true)
		if err != nil {
			t.Fatal(err)
		}
		obj = tbl
	case outputPartialMetadata:
		pl := &metav1.PartialObjectMetadataList{ListMeta: lm}
		pl.APIVersion, pl.Kind = metav1.SchemeGroupVersion.String(), "PartialObjectMetadataList"
		for _, it := range res.Items {
			pm := partialMetadata(svcInfo, it)
			pl.Items = append(pl.Items, *pm.DeepCopy())
		}
		obj = pl
	default:
		list := &corev1.ServiceList{ListMeta: lm}
		if err := meta.SetList(list, res.Items); err != nil {
			t.Fatal(err)
		}
		list.APIVersion, list.Kind = "v1", "ServiceList"
		obj = list
	}
	var buf bytes.Buffer
	enc := runtime.Encoder(jsonSerializer)
	switch {
	case n.mediaType == mimeProtobuf && n.output != outputTable:
		enc = protoSerializer
	case n.mediaType == mimeYAML:
		enc = yamlSerializer
	}
	if err := enc.Encode(obj, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// serve sends GET path with accept and returns the recorded response.
func serve(s *Server, path, accept string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	if accept != "" {
		r.Header.Set("Accept", accept)
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w
}

// TestList_StreamedBytesEqualTypedListEncoding (KUBECTL-COMPAT.md §4.1, §2.2): lists of every
// output kind and media type, small (one buffered write with Content-Length) and large
// (streamed), whole and in pages, are byte-identical to the typed list's encoding and decode
// with client-go's codecs.
func TestList_StreamedBytesEqualTypedListEncoding(t *testing.T) {
	s := newTestServer(t)
	fillServices(t, s, 600) // > 64 KiB in every format: the streamed path
	// One clock for the response and its reference: the Table's Age column.
	now := time.Now().Add(time.Hour)
	s.now = func() time.Time { return now }
	// Characters encoding/json escapes, in an annotation of one Service.
	odd := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "odd", Annotations: map[string]string{"note": "<a&b> \u2028 é \"q\""}},
		Spec:       corev1.ServiceSpec{ClusterIP: "None", ClusterIPs: []string{"None"}, Ports: []corev1.ServicePort{{Port: 80}}},
	}
	if code, body := do(s, http.MethodPost, "/api/v1/namespaces/default/services", mimeJSON, mustJSON(t, odd)); code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, body)
	}
	accepts := []struct{ name, accept string }{
		{name: "json", accept: mimeJSON},
		{name: "no accept header", accept: ""},
		{name: "protobuf", accept: mimeProtobuf + ", application/json"},
		{name: "yaml", accept: mimeYAML},
		{name: "table", accept: tableAcceptHeader},
		{name: "table protobuf accept", accept: "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io"},
		{name: "metadata json", accept: "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io"},
		{name: "metadata protobuf", accept: "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io"},
	}
	lists := []struct {
		name  string
		ns    string
		query url.Values
	}{
		{name: "all namespaces", query: url.Values{}},
		{name: "one small namespace", ns: "default", query: url.Values{}},
		{name: "empty namespace", ns: "empty", query: url.Values{}},
		{name: "page of 250", query: url.Values{"limit": {"250"}}},
		{name: "table without objects", query: url.Values{"includeObject": {"None"}}},
		{name: "table with objects", ns: "default", query: url.Values{"includeObject": {"Object"}}},
	}
	for _, l := range lists {
		for _, a := range accepts {
			t.Run(l.name+"/"+a.name, func(t *testing.T) {
				path := "/api/v1/services"
				if l.ns != "" {
					path = "/api/v1/namespaces/" + l.ns + "/services"
				}
				if len(l.query) > 0 {
					path += "?" + l.query.Encode()
				}
				w := serve(s, path, a.accept)
				if w.Code != http.StatusOK {
					t.Fatalf("list: %d %.300s", w.Code, w.Body.String())
				}
				body := w.Body.Bytes()
				var lm metav1.ListMeta
				if a.name != "yaml" {
					lm = listMetaOf(t, body)
				} else {
					var l corev1.ServiceList
					if _, _, err := yamlSerializer.Decode(body, nil, &l); err != nil {
						t.Fatal(err)
					}
					lm = l.ListMeta
				}
				if cl := w.Header().Get("Content-Length"); cl != "" && cl != strconv.Itoa(len(body)) {
					t.Errorf("Content-Length %s for %d bytes", cl, len(body))
				}
				limit, _ := strconv.ParseInt(l.query.Get("limit"), 10, 64)
				r := httptest.NewRequest(http.MethodGet, path, nil)
				want := referenceList(t, s, r, l.ns, lm, limit, "", a.accept)
				if !bytes.Equal(body, want) {
					i := 0
					for i < len(body) && i < len(want) && body[i] == want[i] {
						i++
					}
					t.Fatalf("streamed list differs from the typed list's encoding at byte %d of %d/%d:\n got %q\nwant %q",
						i, len(body), len(want), window(body, i), window(want, i))
				}
				checkDecodes(t, body, w.Header().Get("Content-Type"), a.accept)
			})
		}
	}
}

func window(b []byte, i int) []byte {
	lo, hi := max(0, i-40), min(len(b), i+40)
	return b[lo:hi]
}

// checkDecodes decodes a list body with client-go's codecs, as a client would.
func checkDecodes(t *testing.T, body []byte, contentType, accept string) {
	t.Helper()
	n, _ := negotiate(accept)
	var into runtime.Object
	switch n.output {
	case outputTable:
		into = &metav1.Table{}
	case outputPartialMetadata:
		into = &metav1.PartialObjectMetadataList{}
	default:
		into = &corev1.ServiceList{}
	}
	codecs := serializer.NewCodecFactory(scheme.Scheme)
	info, ok := runtime.SerializerInfoForMediaType(codecs.SupportedMediaTypes(), contentType)
	if !ok {
		t.Fatalf("client-go has no serializer for %q", contentType)
	}
	if n.output == outputPartialMetadata || n.output == outputTable {
		// meta.k8s.io kinds are not in client-go's scheme: decode as the client's metadata
		// and table clients do, straight into the type.
		if _, _, err := info.Serializer.Decode(body, nil, into); err != nil && !runtime.IsNotRegisteredError(err) {
			t.Fatalf("decode %s: %v", contentType, err)
		}
		return
	}
	obj, _, err := info.Serializer.Decode(body, nil, into)
	if err != nil {
		t.Fatalf("decode %s: %v", contentType, err)
	}
	if l, ok := obj.(*corev1.ServiceList); !ok || l.ResourceVersion == "" {
		t.Fatalf("decoded %T without a resourceVersion", obj)
	}
}

// TestList_PagesFromTheSnapshot (KUBECTL-COMPAT.md §4.1: limit/continue): kubectl's 500-item
// pages of a list that changes meanwhile give exactly the objects of the first page's
// resourceVersion, each once, with the remaining count going down.
func TestList_PagesFromTheSnapshot(t *testing.T) {
	s := newTestServer(t)
	fillServices(t, s, 1200)
	w := serve(s, "/api/v1/services?limit=500", mimeProtobuf)
	if w.Code != http.StatusOK {
		t.Fatalf("first page: %d", w.Code)
	}
	var l corev1.ServiceList
	if _, _, err := protoSerializer.Decode(w.Body.Bytes(), nil, &l); err != nil {
		t.Fatal(err)
	}
	rv := l.ResourceVersion
	seen := map[string]bool{}
	for _, it := range l.Items {
		seen[it.Namespace+"/"+it.Name] = true
	}
	// Changes after the first page: none may show up in later pages.
	if code, body := do(s, http.MethodDelete, "/api/v1/namespaces/bench-2/services/svc-01198", "", nil); code != http.StatusOK {
		t.Fatalf("delete: %d %s", code, body)
	}
	extra := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "zz-late"}, Spec: corev1.ServiceSpec{ClusterIP: "None", ClusterIPs: []string{"None"}, Ports: []corev1.ServicePort{{Port: 80}}}}
	if code, body := do(s, http.MethodPost, "/api/v1/namespaces/bench-3/services", mimeJSON, mustJSON(t, extra)); code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, body)
	}
	pages := 1
	for l.Continue != "" {
		if l.RemainingItemCount == nil || *l.RemainingItemCount != int64(1200-len(seen)) {
			t.Fatalf("page %d: remainingItemCount %v, want %d", pages, l.RemainingItemCount, 1200-len(seen))
		}
		w := serve(s, "/api/v1/services?limit=500&continue="+url.QueryEscape(l.Continue), mimeProtobuf)
		if w.Code != http.StatusOK {
			t.Fatalf("page %d: %d %s", pages+1, w.Code, w.Body.String())
		}
		l = corev1.ServiceList{}
		if _, _, err := protoSerializer.Decode(w.Body.Bytes(), nil, &l); err != nil {
			t.Fatal(err)
		}
		pages++
		if l.ResourceVersion != rv {
			t.Fatalf("page %d at resourceVersion %s, first page at %s", pages, l.ResourceVersion, rv)
		}
		for _, it := range l.Items {
			k := it.Namespace + "/" + it.Name
			if seen[k] {
				t.Fatalf("%s listed twice", k)
			}
			seen[k] = true
		}
	}
	if pages != 3 || len(seen) != 1200 || !seen["bench-2/svc-01198"] || seen["bench-3/zz-late"] {
		t.Fatalf("%d pages, %d Services (deleted one listed: %v, late one listed: %v); want 3 pages of the 1200 at the first page's resourceVersion",
			pages, len(seen), seen["bench-2/svc-01198"], seen["bench-3/zz-late"])
	}
}
