package namespace

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

type fieldErr struct {
	Type   field.ErrorType
	Field  string
	Detail string
}

func summarize(errs field.ErrorList) []fieldErr {
	var out []fieldErr
	for _, e := range errs {
		out = append(out, fieldErr{Type: e.Type, Field: e.Field, Detail: e.Detail})
	}
	return out
}

func TestCreate(t *testing.T) {
	tests := []struct {
		name string
		in   corev1.Namespace
		want corev1.Namespace
		errs []fieldErr
	}{
		{
			name: "defaults and finalizer",
			in:   corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating}},
			want: corev1.Namespace{
				ObjectMeta: metav1.ObjectMeta{Name: "team-a", Labels: map[string]string{"kubernetes.io/metadata.name": "team-a"}},
				Spec:       corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{"kubernetes"}},
				Status:     corev1.NamespaceStatus{Phase: corev1.NamespaceActive},
			},
		},
		{
			name: "own finalizer kept, kubernetes appended",
			in:   corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "b"}, Spec: corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{"example.com/x"}}},
			want: corev1.Namespace{
				ObjectMeta: metav1.ObjectMeta{Name: "b", Labels: map[string]string{"kubernetes.io/metadata.name": "b"}},
				Spec:       corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{"example.com/x", "kubernetes"}},
				Status:     corev1.NamespaceStatus{Phase: corev1.NamespaceActive},
			},
		},
		{
			name: "name must be a DNS label",
			in:   corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "a.b"}},
			want: corev1.Namespace{
				ObjectMeta: metav1.ObjectMeta{Name: "a.b", Labels: map[string]string{"kubernetes.io/metadata.name": "a.b"}},
				Spec:       corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{"kubernetes"}},
				Status:     corev1.NamespaceStatus{Phase: corev1.NamespaceActive},
			},
			errs: []fieldErr{{field.ErrorTypeInvalid, "metadata.name", "must not contain dots"}},
		},
		{
			name: "bad finalizer",
			in:   corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "c"}, Spec: corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{"mine"}}},
			want: corev1.Namespace{
				ObjectMeta: metav1.ObjectMeta{Name: "c", Labels: map[string]string{"kubernetes.io/metadata.name": "c"}},
				Spec:       corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{"mine", "kubernetes"}},
				Status:     corev1.NamespaceStatus{Phase: corev1.NamespaceActive},
			},
			errs: []fieldErr{{field.ErrorTypeInvalid, "spec.finalizers", "name is neither a standard finalizer name nor is it fully qualified"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ns := tc.in.DeepCopy()
			Strategy{}.Default(ns)
			Strategy{}.PrepareForCreate(context.Background(), ns)
			if diff := cmp.Diff(&tc.want, ns); diff != "" {
				t.Errorf("prepared namespace (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.errs, summarize(Strategy{}.Validate(context.Background(), ns))); diff != "" {
				t.Errorf("Validate (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUpdateAndStatus(t *testing.T) {
	old := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "a", ResourceVersion: "1"}}
	Strategy{}.Default(old)
	Strategy{}.PrepareForCreate(context.Background(), old)

	ns := old.DeepCopy()
	ns.Spec.Finalizers = nil
	ns.Status.Phase = corev1.NamespaceTerminating
	Strategy{}.PrepareForUpdate(context.Background(), ns, old)
	if diff := cmp.Diff(old, ns); diff != "" {
		t.Errorf("main-resource update changed finalizers/status (-old +new):\n%s", diff)
	}

	tests := []struct {
		name    string
		deleted bool
		phase   corev1.NamespacePhase
		want    []fieldErr
	}{
		{name: "active", phase: corev1.NamespaceActive},
		{name: "terminating without deletion", phase: corev1.NamespaceTerminating,
			want: []fieldErr{{field.ErrorTypeInvalid, "status.Phase", "may only be 'Active' if `deletionTimestamp` is empty"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := old.DeepCopy()
			st.Status.Phase = tc.phase
			st.Spec.Finalizers = nil
			StatusStrategy{}.PrepareForUpdate(context.Background(), st, old)
			if len(st.Spec.Finalizers) != 1 {
				t.Errorf("/status changed spec: %v", st.Spec)
			}
			if diff := cmp.Diff(tc.want, summarize(StatusStrategy{}.ValidateUpdate(context.Background(), st, old))); diff != "" {
				t.Errorf("status ValidateUpdate (-want +got):\n%s", diff)
			}
		})
	}

	fin := old.DeepCopy()
	fin.Spec.Finalizers = nil
	FinalizeStrategy{}.PrepareForUpdate(context.Background(), fin, old)
	if len(fin.Spec.Finalizers) != 0 || len(FinalizeStrategy{}.ValidateUpdate(context.Background(), fin, old)) != 0 {
		t.Errorf("/finalize did not clear finalizers: %v", fin.Spec.Finalizers)
	}
	if diff := cmp.Diff(fields.Set{"metadata.name": "a", "status.phase": "Active"}, Fields(old)); diff != "" {
		t.Errorf("Fields (-want +got):\n%s", diff)
	}
}
