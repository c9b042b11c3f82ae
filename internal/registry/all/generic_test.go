package all

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestGeneric(t *testing.T) {
	tests := []struct {
		name       string
		namespaced bool
		meta       metav1.ObjectMeta
		wantErrs   int
	}{
		{name: "namespaced ok", namespaced: true, meta: metav1.ObjectMeta{Name: "a", Namespace: "default"}},
		{name: "namespace missing", namespaced: true, meta: metav1.ObjectMeta{Name: "a"}, wantErrs: 1},
		{name: "cluster ok", meta: metav1.ObjectMeta{Name: "a.b"}},
		{name: "bad name", meta: metav1.ObjectMeta{Name: "A"}, wantErrs: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			obj := &corev1.ConfigMap{ObjectMeta: tc.meta}
			if errs := (Generic{Namespaced: tc.namespaced}).Validate(context.Background(), obj); len(errs) != tc.wantErrs {
				t.Errorf("Validate = %v, want %d errors", errs, tc.wantErrs)
			}
		})
	}

	old := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "default", Generation: 3, ResourceVersion: "1"}}
	obj := old.DeepCopy()
	obj.Generation = 1
	g := Generic{Namespaced: true}
	g.PrepareForUpdate(context.Background(), obj, old)
	if obj.Generation != 3 {
		t.Errorf("generation = %d, want 3", obj.Generation)
	}
	obj.Name = "b"
	if errs := g.ValidateUpdate(context.Background(), obj, old); len(errs) != 1 {
		t.Errorf("ValidateUpdate = %v, want the name-immutable error", errs)
	}
}
