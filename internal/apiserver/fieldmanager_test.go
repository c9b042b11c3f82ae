package apiserver

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"kubesvc/internal/registry/all"
	"kubesvc/internal/resource"
)

// decodeDeployment decodes deploymentJSON as a request body would be.
func decodeDeployment(tb testing.TB, label string) *appsv1.Deployment {
	tb.Helper()
	obj, _, err := jsonSerializer.Decode(deploymentJSON("d", label), nil, &appsv1.Deployment{})
	if err != nil {
		tb.Fatal(err)
	}
	d := obj.(*appsv1.Deployment)
	d.Namespace, d.UID = "default", "uid-1"
	return d
}

// BenchmarkFieldManager_Deployment measures recording an Update of a Deployment in
// managedFields, CPU only: on create (live is empty) and on update (one label changed).
func BenchmarkFieldManager_Deployment(b *testing.B) {
	s := New(Config{Kinds: all.Kinds(all.Config{})})
	info := resource.Lookup(appsv1.SchemeGroupVersion.WithResource("deployments"))
	k := s.kind(info)
	live := decodeDeployment(b, "a")
	k.Strategy.Default(live)
	live = s.recordUpdate(info, "", info.New(), live, fieldOwner{manager: "creator"}).(*appsv1.Deployment)
	inputs := func(n int, label string) []*appsv1.Deployment {
		objs := make([]*appsv1.Deployment, n)
		for i := range objs {
			objs[i] = decodeDeployment(b, label)
			k.Strategy.Default(objs[i])
		}
		return objs
	}
	b.Run("create", func(b *testing.B) {
		objs := inputs(b.N, "a")
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			s.recordUpdate(info, "", info.New(), objs[i], fieldOwner{manager: "bench"})
		}
	})
	b.Run("update", func(b *testing.B) {
		objs := inputs(b.N, "b")
		curs := make([]runtime.Object, b.N)
		for i := range curs {
			curs[i] = live.DeepCopy()
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			s.recordUpdate(info, "", curs[i], objs[i], fieldOwner{manager: "bench"})
			keepManagedFieldsTimes(objs[i], curs[i])
		}
	})
}

func TestManagerOrUserAgent(t *testing.T) {
	for _, tc := range []struct {
		name, manager, userAgent, want string
	}{
		{name: "fieldManager wins", manager: "m", userAgent: "kubectl/v1.37.2", want: "m"},
		{name: "user agent up to the first slash", userAgent: "kubectl/v1.37.2 (linux/amd64) kubernetes/abc", want: "kubectl"},
		{name: "user agent without slash", userAgent: "curl", want: "curl"},
		{name: "no user agent", want: ""},
		{name: "unprintable characters dropped", userAgent: "a\tb\x00c/1", want: "abc"},
		{name: "at most 128 bytes, whole runes", userAgent: strings.Repeat("é", 70), want: strings.Repeat("é", 64)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := managerOrUserAgent(tc.manager, tc.userAgent); got != tc.want {
				t.Errorf("managerOrUserAgent(%q, %q) = %q, want %q", tc.manager, tc.userAgent, got, tc.want)
			}
		})
	}
}

func TestWriteOwner_ValidatesOptions(t *testing.T) {
	for _, tc := range []struct {
		name, optionsKind, query string
		pt                       types.PatchType
		wantErr                  string // "" means valid
		wantManager              string
		wantForce                bool
	}{
		{name: "create with manager", optionsKind: "CreateOptions", query: "fieldManager=m", wantManager: "m"},
		{name: "create defaults to the user agent", optionsKind: "CreateOptions", wantManager: "tester"},
		{name: "create ignores force", optionsKind: "CreateOptions", query: "force=true", wantManager: "tester"},
		{name: "manager too long", optionsKind: "UpdateOptions", query: "fieldManager=" + strings.Repeat("x", 129),
			wantErr: `UpdateOptions.meta.k8s.io "" is invalid: fieldManager: Too long: may not be more than 128 bytes`},
		{name: "manager unprintable", optionsKind: "CreateOptions", query: "fieldManager=a%01",
			wantErr: `CreateOptions.meta.k8s.io "" is invalid: fieldManager: Invalid value: "a\x01": invalid character U+0001 (at position 1)`},
		{name: "apply needs a manager", optionsKind: "PatchOptions", pt: types.ApplyYAMLPatchType,
			wantErr: `PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch`},
		{name: "apply with force", optionsKind: "PatchOptions", pt: types.ApplyYAMLPatchType, query: "fieldManager=m&force=true", wantManager: "m", wantForce: true},
		{name: "force only for apply", optionsKind: "PatchOptions", pt: types.MergePatchType, query: "force=false",
			wantErr: `PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: may not be specified for non-apply patch`},
		{name: "any force but false and 0 is true", optionsKind: "PatchOptions", pt: types.ApplyYAMLPatchType, query: "fieldManager=m&force=maybe", wantManager: "m", wantForce: true},
		{name: "force=0", optionsKind: "PatchOptions", pt: types.ApplyYAMLPatchType, query: "fieldManager=m&force=0", wantManager: "m"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPatch, "/api/v1/namespaces/default/configmaps/c?"+tc.query, nil)
			r.Header.Set("User-Agent", "tester/1.0")
			own, force, err := writeOwner(r, tc.optionsKind, tc.pt)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error %v, want %s", err, tc.wantErr)
				}
				return
			}
			if err != nil || own.manager != tc.wantManager || force != tc.wantForce || own.done {
				t.Fatalf("writeOwner = %+v, %v, %v; want manager %q force %v", own, force, err, tc.wantManager, tc.wantForce)
			}
		})
	}
}

// TestUpdate_NoOpKeepsManagedFieldsAndResourceVersion: writing back what is stored, by
// PUT or by an empty patch, changes nothing (no new resourceVersion, no new timestamps).
func TestUpdate_NoOpKeepsManagedFieldsAndResourceVersion(t *testing.T) {
	s := newTestServer(t)
	const path = "/apis/apps/v1/namespaces/default/deployments"
	code, body := do(s, http.MethodPost, path+"?fieldManager=creator", mimeJSON, deploymentJSON("d", "a"))
	if code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, body)
	}
	created := decodeDeploymentBody(t, body)
	if len(created.ManagedFields) != 1 || created.ManagedFields[0].Manager != "creator" || created.ManagedFields[0].Operation != metav1.ManagedFieldsOperationUpdate {
		t.Fatalf("managedFields after create: %+v", created.ManagedFields)
	}
	for _, tc := range []struct {
		name, method, contentType string
		body                      []byte
	}{
		{name: "PUT of the stored object", method: http.MethodPut, contentType: mimeJSON, body: []byte(body)},
		{name: "PUT without managedFields", method: http.MethodPut, contentType: mimeJSON, body: deploymentJSON("d", "a")},
		{name: "empty merge patch", method: http.MethodPatch, contentType: string(types.MergePatchType), body: []byte(`{}`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := do(s, tc.method, path+"/d?fieldManager=other", tc.contentType, tc.body)
			if code != http.StatusOK {
				t.Fatalf("%s: %d %s", tc.method, code, out)
			}
			got := decodeDeploymentBody(t, out)
			if got.ResourceVersion != created.ResourceVersion || !apiequality.Semantic.DeepEqual(got.ManagedFields, created.ManagedFields) {
				t.Errorf("no-op write changed the object: resourceVersion %s → %s, managedFields %+v → %+v", created.ResourceVersion, got.ResourceVersion, created.ManagedFields, got.ManagedFields)
			}
		})
	}
}

func decodeDeploymentBody(tb testing.TB, body string) *appsv1.Deployment {
	tb.Helper()
	d := &appsv1.Deployment{}
	if err := json.Unmarshal([]byte(body), d); err != nil {
		tb.Fatalf("decode %s: %v", body, err)
	}
	return d
}
