package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"kubesvc/internal/registry/all"
	"kubesvc/internal/resource"
	"kubesvc/internal/storage"
	"kubesvc/internal/storage/storagetest"
)

// newTestServer returns an API server on a real embedded etcd, called in-process (no sockets),
// with the default namespace created.
func newTestServer(tb testing.TB) *Server {
	tb.Helper()
	store := storage.New(storage.Config{Client: storagetest.StartEtcd(tb)})
	tb.Cleanup(store.Close)
	s := New(Config{
		Store:        store,
		Kinds:        all.Kinds(all.Config{}),
		Authenticate: func(*http.Request) (User, bool) { return User{Name: "test", Groups: []string{"system:masters"}}, true },
	})
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
	if code, body := do(s, http.MethodPost, "/api/v1/namespaces", mimeJSON, mustJSON(tb, ns)); code != http.StatusCreated {
		tb.Fatalf("create namespace: %d %s", code, body)
	}
	return s
}

func mustJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func do(s *Server, method, path, contentType string, body []byte) (int, string) {
	r := httptest.NewRequest(method, path, bytes.NewReader(body)).WithContext(context.Background())
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w.Code, w.Body.String()
}

// collectionPath returns the create URL of a resource in namespace default.
func collectionPath(info *resource.Info) string {
	prefix := "/api/v1"
	if info.Group != "" {
		prefix = "/apis/" + info.Group + "/" + info.Version
	}
	if info.Namespaced {
		return prefix + "/namespaces/default/" + info.Resource
	}
	return prefix + "/" + info.Resource
}

var contentTypes = []string{mimeJSON, mimeYAML, mimeProtobuf, "application/json;charset=utf-8", "text/plain"}

// FuzzCreate: decode → default → validate → store for every kind never panics and never
// answers 5xx; whatever is created can be read back.
func FuzzCreate(f *testing.F) {
	for i, info := range resource.All {
		obj := info.New()
		obj.GetObjectKind().SetGroupVersionKind(info.GroupVersionKind())
		obj.(metav1.Object).SetName(fmt.Sprintf("seed-%d", i))
		data, _ := json.Marshal(obj)
		f.Add(uint8(i), uint8(0), data)
		var pb bytes.Buffer
		if err := protoSerializer.Encode(obj, &pb); err == nil {
			f.Add(uint8(i), uint8(2), pb.Bytes())
		}
	}
	f.Add(uint8(9), uint8(1), []byte("apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 80}], selector: {app: web}}\n"))
	f.Add(uint8(9), uint8(0), []byte(`{"apiVersion":"v1","kind":"Service","metadata":{"generateName":"x-"},"spec":{"type":"NodePort","ports":[{"port":80,"nodePort":1}]}}`))
	f.Add(uint8(5), uint8(0), []byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"i","ports":[{"containerPort":99999}]}]}}`))
	f.Add(uint8(0), uint8(0), []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"data":{"a":1}}`))
	f.Add(uint8(3), uint8(2), []byte("k8s\x00\x0a\x02v1"))
	f.Add(uint8(1), uint8(0), []byte(`{`))

	s := newTestServer(f)
	f.Fuzz(func(t *testing.T, idx, ct uint8, body []byte) {
		info := resource.All[int(idx)%len(resource.All)]
		contentType := contentTypes[int(ct)%len(contentTypes)]
		code, resp := do(s, http.MethodPost, collectionPath(info)+"?fieldValidation=Strict", contentType, body)
		if code >= 500 {
			t.Fatalf("POST %s (%s): %d %s", info.Resource, contentType, code, resp)
		}
		if !strings.HasPrefix(resp, "{") && !strings.HasPrefix(resp, "k8s") {
			t.Fatalf("response is not a Kubernetes object: %q", resp)
		}
		if code != http.StatusCreated {
			var st metav1.Status
			if err := json.Unmarshal([]byte(resp), &st); err != nil || st.Kind != "Status" || int(st.Code) != code {
				t.Fatalf("error response is not a Status with the HTTP code %d: %s", code, resp)
			}
			return
		}
		created := info.New()
		if _, _, err := jsonSerializer.Decode([]byte(resp), nil, created); err != nil {
			t.Fatalf("decode created object: %v", err)
		}
		name := created.(metav1.Object).GetName()
		getCode, got := do(s, http.MethodGet, collectionPath(info)+"/"+name, "", nil)
		if getCode != http.StatusOK {
			t.Fatalf("GET after create: %d %s", getCode, got)
		}
		// Clean up so names can be reused; a deletion may legitimately leave a finalizing object.
		do(s, http.MethodDelete, collectionPath(info)+"/"+name+"?gracePeriodSeconds=0", "", nil)
	})
}

// FuzzPatch: random patches of every type against a stored Service never cause a 5xx.
func FuzzPatch(f *testing.F) {
	f.Add(uint8(0), []byte(`{"metadata":{"labels":{"a":"b"}}}`))
	f.Add(uint8(1), []byte(`[{"op":"replace","path":"/spec/ports/0/port","value":0}]`))
	f.Add(uint8(2), []byte(`{"spec":{"$setElementOrder/ports":[{"port":81}],"ports":[{"port":81},{"$patch":"delete","port":80}]}}`))
	f.Add(uint8(2), []byte(`{"spec":{"type":"ExternalName"}}`))
	f.Add(uint8(1), []byte(`[{"op":"remove","path":"/metadata"}]`))
	types := []string{"application/merge-patch+json", "application/json-patch+json", "application/strategic-merge-patch+json", "application/apply-patch+yaml"}
	s := newTestServer(f)
	svc := &corev1.Service{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"}, ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{ClusterIP: "None", ClusterIPs: []string{"None"}, Ports: []corev1.ServicePort{{Port: 80}}, Selector: map[string]string{"app": "web"}}}
	if code, body := do(s, http.MethodPost, "/api/v1/namespaces/default/services", mimeJSON, mustJSON(f, svc)); code != http.StatusCreated {
		f.Fatalf("create service: %d %s", code, body)
	}
	f.Fuzz(func(t *testing.T, pt uint8, patch []byte) {
		code, resp := do(s, http.MethodPatch, "/api/v1/namespaces/default/services/web?dryRun=All", types[int(pt)%len(types)], patch)
		if code >= 500 {
			t.Fatalf("PATCH: %d %s", code, resp)
		}
	})
}

var _ runtime.Object = (*corev1.Service)(nil)
