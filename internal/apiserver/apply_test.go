package apiserver

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestApply_Requests runs a sequence of server-side apply requests against an in-process
// server; each step checks the status code and substrings of the answer. (test/svcdiff
// compares the same behaviours with kube-apiserver byte for byte.)
func TestApply_Requests(t *testing.T) {
	s := newTestServer(t)
	const (
		cm     = "/api/v1/namespaces/default/configmaps/c"
		deploy = "/apis/apps/v1/namespaces/default/deployments/d"
		apply  = "application/apply-patch+yaml"
	)
	cmBody := func(v string) string {
		return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  k: " + v + "\n"
	}
	for _, tc := range []struct {
		name, method, path, contentType, body string
		wantCode                              int
		want                                  []string
	}{
		{name: "dry-run create", method: http.MethodPatch, path: cm + "?fieldManager=a&dryRun=All", contentType: apply, body: cmBody("v1"),
			wantCode: http.StatusCreated, want: []string{`"manager":"a","operation":"Apply"`}},
		{name: "dry run stored nothing", method: http.MethodGet, path: cm, wantCode: http.StatusNotFound},
		{name: "create on apply", method: http.MethodPatch, path: cm + "?fieldManager=a", contentType: apply, body: cmBody("v1"),
			wantCode: http.StatusCreated, want: []string{`"manager":"a","operation":"Apply","apiVersion":"v1"`, `"fieldsV1":{"f:data":{"f:k":{}}}`, `"data":{"k":"v1"}`}},
		{name: "re-apply", method: http.MethodPatch, path: cm + "?fieldManager=a", contentType: apply, body: cmBody("v1"),
			wantCode: http.StatusOK, want: []string{`"data":{"k":"v1"}`}},
		{name: "conflict", method: http.MethodPatch, path: cm + "?fieldManager=b", contentType: apply, body: cmBody("v2"),
			wantCode: http.StatusConflict, want: []string{`"message":"Apply failed with 1 conflict: conflict with \"a\": .data.k"`, `"reason":"FieldManagerConflict"`, `"field":".data.k"`}},
		{name: "force", method: http.MethodPatch, path: cm + "?fieldManager=b&force=true", contentType: apply, body: cmBody("v2"),
			wantCode: http.StatusOK, want: []string{`"data":{"k":"v2"}`, `"manager":"b","operation":"Apply"`}},
		{name: "update by merge patch", method: http.MethodPatch, path: cm + "?fieldManager=m", contentType: "application/merge-patch+json", body: `{"data":{"x":"1"}}`,
			wantCode: http.StatusOK, want: []string{`"manager":"m","operation":"Update"`}},
		{name: "fieldManager is required", method: http.MethodPatch, path: cm, contentType: apply, body: cmBody("v3"),
			wantCode: http.StatusUnprocessableEntity, want: []string{`fieldManager: Required value: is required for apply patch`}},
		{name: "apply-patch+cbor is not served", method: http.MethodPatch, path: cm + "?fieldManager=a", contentType: "application/apply-patch+cbor", body: "\xa0",
			wantCode: http.StatusUnsupportedMediaType, want: []string{`"message":"415: Unsupported Media Type"`}},
		{name: "wrong kind", method: http.MethodPatch, path: cm + "?fieldManager=a", contentType: apply, body: "apiVersion: v1\nkind: Secret\nmetadata: {name: c}\n",
			wantCode: http.StatusBadRequest, want: []string{`invalid object type: /v1, Kind=Secret`}},
		{name: "missing namespace", method: http.MethodPatch, path: "/api/v1/namespaces/nowhere/configmaps/c?fieldManager=a", contentType: apply, body: cmBody("v1"),
			wantCode: http.StatusNotFound, want: []string{`namespaces \"nowhere\" not found`}},
		{name: "status of a missing object", method: http.MethodPatch, path: deploy + "/status?fieldManager=a", contentType: apply, body: "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n",
			wantCode: http.StatusNotFound, want: []string{`deployments.apps \"d\" not found`}},
		{name: "create a deployment", method: http.MethodPatch, path: deploy + "?fieldManager=a", contentType: apply, body: string(deploymentJSON("d", "a")),
			wantCode: http.StatusCreated, want: []string{`"f:replicas":{}`}},
		{name: "apply status", method: http.MethodPatch, path: deploy + "/status?fieldManager=ctl", contentType: apply, body: `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"status":{"observedGeneration":1}}`,
			wantCode: http.StatusOK, want: []string{`"manager":"ctl","operation":"Apply","apiVersion":"apps/v1"`, `"subresource":"status"`, `"observedGeneration":1`}},
		{name: "apply scale", method: http.MethodPatch, path: deploy + "/scale?fieldManager=hpa", contentType: apply, body: `{"apiVersion":"autoscaling/v1","kind":"Scale","metadata":{"name":"d"},"spec":{"replicas":5}}`,
			wantCode: http.StatusConflict, want: []string{`Apply failed with 1 conflict: conflict with \"a\": .spec.replicas`}},
		{name: "apply scale with force", method: http.MethodPatch, path: deploy + "/scale?fieldManager=hpa&force=true", contentType: apply, body: `{"apiVersion":"autoscaling/v1","kind":"Scale","metadata":{"name":"d"},"spec":{"replicas":5}}`,
			wantCode: http.StatusOK, want: []string{`"replicas":5`}},
		// Like kube-apiserver, entries written through /scale carry no time.
		{name: "scale recorded on the deployment", method: http.MethodGet, path: deploy,
			wantCode: http.StatusOK, want: []string{`{"manager":"hpa","operation":"Apply","apiVersion":"apps/v1","fieldsType":"FieldsV1","fieldsV1":{"f:spec":{"f:replicas":{}}},"subresource":"scale"}`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := do(s, tc.method, tc.path, tc.contentType, []byte(tc.body))
			if code != tc.wantCode {
				t.Fatalf("%s %s: %d %s, want %d", tc.method, tc.path, code, body, tc.wantCode)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("answer does not contain %s:\n%s", w, body)
				}
			}
		})
	}
}

// FuzzApply: random apply bodies against a stored and a missing ConfigMap and Service never
// panic, and answer 5xx only as kube-apiserver does, for a body that does not fit the schema
// ("failed to create typed patch object ...", reason unknown).
func FuzzApply(f *testing.F) {
	for _, seed := range []string{
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\n",
		`{"apiVersion":"v1","kind":"Service","metadata":{"name":"web"},"spec":{"ports":[{"port":80},{"port":80}]}}`,
		`{"apiVersion":"v1","kind":"Service","metadata":{"name":"web"},"spec":{"ports":[{"name":"x"}],"type":"NodePort"}}`,
		`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","managedFields":[{}]}}`,
		`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","labels":{"a":1}},"data":[]}`,
		"a: [b",
		"null",
		"",
	} {
		f.Add(uint8(0), []byte(seed))
		f.Add(uint8(1), []byte(seed))
	}
	s := newTestServer(f)
	if code, body := do(s, http.MethodPost, "/api/v1/namespaces/default/configmaps", mimeJSON, []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"a":"b"}}`)); code != http.StatusCreated {
		f.Fatalf("create configmap: %d %s", code, body)
	}
	if code, body := do(s, http.MethodPost, "/api/v1/namespaces/default/services", mimeJSON, []byte(`{"apiVersion":"v1","kind":"Service","metadata":{"name":"web"},"spec":{"clusterIP":"None","clusterIPs":["None"],"ports":[{"port":80}]}}`)); code != http.StatusCreated {
		f.Fatalf("create service: %d %s", code, body)
	}
	paths := []string{"/api/v1/namespaces/default/configmaps/c", "/api/v1/namespaces/default/services/web", "/api/v1/namespaces/default/configmaps/missing", "/api/v1/namespaces/default/services/web/status"}
	f.Fuzz(func(t *testing.T, p uint8, body []byte) {
		path := paths[int(p)%len(paths)]
		code, resp := do(s, http.MethodPatch, path+"?fieldManager=fuzz&dryRun=All", "application/apply-patch+yaml", body)
		if code < 500 {
			return
		}
		var st metav1.Status
		if err := json.Unmarshal([]byte(resp), &st); err != nil || st.Reason != "" || !strings.HasPrefix(st.Message, "failed to create typed patch object") {
			t.Fatalf("PATCH %s: %d %s", path, code, resp)
		}
	})
}
