package registry

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// wantErr is the part of a field.Error a test pins down.
type wantErr struct {
	Type   field.ErrorType
	Field  string
	Detail string
}

func summarize(errs field.ErrorList) []wantErr {
	var out []wantErr
	for _, e := range errs {
		out = append(out, wantErr{Type: e.Type, Field: e.Field, Detail: e.Detail})
	}
	return out
}

func equalErrs(got, want []wantErr) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

func TestValidateObjectMeta(t *testing.T) {
	tests := []struct {
		name       string
		meta       metav1.ObjectMeta
		namespaced bool
		nameFn     ValidateNameFunc
		want       []wantErr
	}{
		{
			name:       "valid",
			meta:       metav1.ObjectMeta{Name: "a.b", Namespace: "default", Finalizers: []string{"kubernetes", "example.com/x"}},
			namespaced: true,
			nameFn:     NameIsDNSSubdomain,
		},
		{
			name:       "name required",
			meta:       metav1.ObjectMeta{Namespace: "default"},
			namespaced: true,
			nameFn:     NameIsDNSSubdomain,
			want:       []wantErr{{field.ErrorTypeRequired, "metadata.name", "name or generateName is required"}},
		},
		{
			name:   "label name rejects dots",
			meta:   metav1.ObjectMeta{Name: "a.b"},
			nameFn: NameIsDNSLabel,
			want:   []wantErr{{field.ErrorTypeInvalid, "metadata.name", "must not contain dots"}},
		},
		{
			name:       "namespace required",
			meta:       metav1.ObjectMeta{Name: "x"},
			namespaced: true,
			nameFn:     NameIsDNSSubdomain,
			want:       []wantErr{{field.ErrorTypeRequired, "metadata.namespace", ""}},
		},
		{
			name:   "namespace forbidden on cluster-scoped",
			meta:   metav1.ObjectMeta{Name: "x", Namespace: "default"},
			nameFn: NameIsDNSSubdomain,
			want:   []wantErr{{field.ErrorTypeForbidden, "metadata.namespace", "not allowed on this type"}},
		},
		{
			name:   "unqualified non-standard finalizer",
			meta:   metav1.ObjectMeta{Name: "x", Finalizers: []string{"orphan", "mine"}},
			nameFn: NameIsDNSSubdomain,
			want:   []wantErr{{field.ErrorTypeInvalid, "metadata.finalizers[1]", "name is neither a standard finalizer name nor is it fully qualified"}},
		},
		{
			name:       "path segment names allow anything but / and %",
			meta:       metav1.ObjectMeta{Name: "Web.1_x", Namespace: "default"},
			namespaced: true,
			nameFn:     NameIsPathSegment,
		},
		{
			name:       "path segment rejects slash",
			meta:       metav1.ObjectMeta{Name: "a/b", Namespace: "default"},
			namespaced: true,
			nameFn:     NameIsPathSegment,
			want:       []wantErr{{field.ErrorTypeInvalid, "metadata.name", "may not contain '/'"}},
		},
		{
			name:   "generateName with trailing dash is fine",
			meta:   metav1.ObjectMeta{Name: "web-abcde", GenerateName: "web-"},
			nameFn: NameIsDNSLabel,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := summarize(ValidateObjectMeta(&tc.meta, tc.namespaced, tc.nameFn, field.NewPath("metadata")))
			if !equalErrs(got, tc.want) {
				t.Errorf("errors:\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestValidateObjectMetaUpdate(t *testing.T) {
	old := metav1.ObjectMeta{Name: "x", Namespace: "ns", UID: "u1", ResourceVersion: "5", Generation: 2}
	tests := []struct {
		name   string
		mutate func(m *metav1.ObjectMeta)
		want   []wantErr
	}{
		{name: "unchanged", mutate: func(*metav1.ObjectMeta) {}},
		{
			name:   "name immutable",
			mutate: func(m *metav1.ObjectMeta) { m.Name = "y" },
			want:   []wantErr{{field.ErrorTypeInvalid, "metadata.name", "field is immutable"}},
		},
		{
			name:   "resourceVersion required",
			mutate: func(m *metav1.ObjectMeta) { m.ResourceVersion = "" },
			want:   []wantErr{{field.ErrorTypeInvalid, "metadata.resourceVersion", "must be specified for an update"}},
		},
		{
			name:   "generation not decremented",
			mutate: func(m *metav1.ObjectMeta) { m.Generation = 1 },
			want:   []wantErr{{field.ErrorTypeInvalid, "metadata.generation", "must not be decremented"}},
		},
		{
			name:   "finalizer name checked",
			mutate: func(m *metav1.ObjectMeta) { m.Finalizers = []string{"bad"} },
			want:   []wantErr{{field.ErrorTypeInvalid, "metadata.finalizers[0]", "name is neither a standard finalizer name nor is it fully qualified"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := *old.DeepCopy()
			tc.mutate(&m)
			got := summarize(ValidateObjectMetaUpdate(&m, &old, field.NewPath("metadata")))
			if !equalErrs(got, tc.want) {
				t.Errorf("errors:\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}
