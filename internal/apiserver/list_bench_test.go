package apiserver

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"kubesvc/internal/resource"
)

// The list benchmarks serve 10,000 Services (4 namespaces, the shape of bench/apiserver's)
// through the whole handler, cluster-wide, as client-go (protobuf), kubectl -o json (JSON)
// and kubectl get (limit=500 pages as Table) ask for them.

const (
	listBenchServices   = 10000
	listBenchNamespaces = 4
	tableAcceptHeader   = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
)

var svcInfo = resource.Lookup(corev1.SchemeGroupVersion.WithResource("services"))

// fillServices creates n Services in namespaces bench-0..bench-(listBenchNamespaces-1): one
// through the handler (defaulting, managedFields), the others as copies of it written straight
// to storage, 16 at a time.
func fillServices(tb testing.TB, s *Server, n int) {
	tb.Helper()
	for i := 0; i < listBenchNamespaces; i++ {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bench-%d", i)}}
		if code, body := do(s, http.MethodPost, "/api/v1/namespaces", mimeJSON, mustJSON(tb, ns)); code != http.StatusCreated {
			tb.Fatalf("create namespace: %d %s", code, body)
		}
	}
	proto := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Name: "svc-proto", Labels: map[string]string{"app": "bench"}},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "svc-proto"},
			Ports:    []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}
	code, body := do(s, http.MethodPost, "/api/v1/namespaces/bench-0/services?fieldManager=kubesvc-bench", mimeJSON, mustJSON(tb, proto))
	if code != http.StatusCreated {
		tb.Fatalf("create service: %d %s", code, body)
	}
	var created corev1.Service
	if _, _, err := jsonSerializer.Decode([]byte(body), nil, &created); err != nil {
		tb.Fatal(err)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n-1 {
					return
				}
				svc := created.DeepCopy()
				svc.Namespace = fmt.Sprintf("bench-%d", i%listBenchNamespaces)
				svc.Name = fmt.Sprintf("svc-%05d", i)
				svc.UID = ""
				svc.ResourceVersion = ""
				svc.Spec.Selector = map[string]string{"app": svc.Name}
				ip := fmt.Sprintf("10.96.%d.%d", 1+i/250, 1+i%250)
				svc.Spec.ClusterIP, svc.Spec.ClusterIPs = ip, []string{ip}
				if _, err := s.store.Create(context.Background(), svcInfo, s.store.Key(svcInfo, svc.Namespace, svc.Name), svc, nil, false); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatal(err)
	}
}

// bodyWriter is an http.ResponseWriter that keeps the last response in a reused buffer.
type bodyWriter struct {
	h    http.Header
	code int
	buf  bytes.Buffer
}

func (w *bodyWriter) Header() http.Header {
	if w.h == nil {
		w.h = http.Header{}
	}
	return w.h
}
func (w *bodyWriter) WriteHeader(code int)        { w.code = code }
func (w *bodyWriter) Write(p []byte) (int, error) { return w.buf.Write(p) }

func (w *bodyWriter) reset() {
	w.buf.Reset()
	clear(w.h)
	w.code = http.StatusOK
}

// get serves GET path with the Accept header into w.
func (w *bodyWriter) get(s *Server, path, accept string) {
	w.reset()
	r := httptest.NewRequest(http.MethodGet, path, nil)
	if accept != "" {
		r.Header.Set("Accept", accept)
	}
	s.ServeHTTP(w, r)
}

// listMetaOf returns the ListMeta at the start of a list or Table response, without decoding
// the items: in protobuf the list's field 1, in JSON the "metadata" member.
func listMetaOf(tb testing.TB, body []byte) metav1.ListMeta {
	tb.Helper()
	var lm metav1.ListMeta
	if bytes.HasPrefix(body, []byte("k8s\x00")) {
		num, v := nextField(tb, unknownRaw(tb, body[4:]))
		if num != 1 {
			tb.Fatalf("list does not start with ListMeta")
		}
		if err := lm.Unmarshal(v); err != nil {
			tb.Fatal(err)
		}
		return lm
	}
	// JSON: kind, apiVersion, then metadata; decode a prefix that ends after metadata.
	i := bytes.Index(body, []byte(`"metadata":`))
	if i < 0 {
		tb.Fatalf("no metadata in %.200s", body)
	}
	dec := json.NewDecoder(bytes.NewReader(body[i+len(`"metadata":`):]))
	if err := dec.Decode(&lm); err != nil {
		tb.Fatal(err)
	}
	return lm
}

// nextField reads one length-delimited protobuf field at the start of b: its number and value.
func nextField(tb testing.TB, b []byte) (int, []byte) {
	tb.Helper()
	tag, n := binary.Uvarint(b)
	if n <= 0 || tag&7 != 2 {
		tb.Fatalf("not a length-delimited field")
	}
	l, m := binary.Uvarint(b[n:])
	if m <= 0 || uint64(len(b)-n-m) < l {
		tb.Fatalf("bad field length")
	}
	return int(tag >> 3), b[n+m : n+m+int(l)]
}

// unknownRaw returns the raw field (2) of a protobuf runtime.Unknown envelope; field 1
// (TypeMeta) comes first and is skipped.
func unknownRaw(tb testing.TB, b []byte) []byte {
	tb.Helper()
	for len(b) > 0 {
		num, v := nextField(tb, b)
		if num == 2 {
			return v
		}
		b = b[cap(b)-cap(v)+len(v):]
	}
	tb.Fatal("Unknown envelope without raw")
	return nil
}

// listAll lists every Service with pages of limit (0: unpaginated) and returns the pages.
func listAll(tb testing.TB, s *Server, w *bodyWriter, limit int, accept string) int {
	pages := 0
	cont := ""
	for {
		q := url.Values{}
		if limit > 0 {
			q.Set("limit", fmt.Sprint(limit))
		}
		if cont != "" {
			q.Set("continue", cont)
		}
		w.get(s, "/api/v1/services?"+q.Encode(), accept)
		if w.code != http.StatusOK {
			tb.Fatalf("list: %d %.300s", w.code, w.buf.Bytes())
		}
		pages++
		if limit == 0 {
			return pages
		}
		if cont = listMetaOf(tb, w.buf.Bytes()).Continue; cont == "" {
			return pages
		}
	}
}

// BenchmarkList_Services10k lists 10,000 Services through the handler.
func BenchmarkList_Services10k(b *testing.B) {
	s := newTestServer(b)
	fillServices(b, s, listBenchServices)
	w := &bodyWriter{}
	listAll(b, s, w, 0, mimeProtobuf) // the cache is warm
	for _, bc := range []struct {
		name   string
		limit  int
		accept string
	}{
		{name: "protobuf", accept: mimeProtobuf},
		{name: "json", accept: mimeJSON},
		{name: "table", accept: tableAcceptHeader},
		{name: "protobuf-pages500", limit: 500, accept: mimeProtobuf},
		{name: "table-pages500", limit: 500, accept: tableAcceptHeader},
	} {
		b.Run(bc.name, func(b *testing.B) {
			measure(b, func(int) { listAll(b, s, w, bc.limit, bc.accept) })
			b.ReportMetric(float64(w.buf.Len()), "last-page-bytes")
		})
	}
}
