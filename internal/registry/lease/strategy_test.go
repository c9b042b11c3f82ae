package lease

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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

func ptr[T any](v T) *T { return &v }

func TestStrategy(t *testing.T) {
	tests := []struct {
		name string
		spec coordinationv1.LeaseSpec
		want []fieldErr
	}{
		{name: "valid", spec: coordinationv1.LeaseSpec{HolderIdentity: ptr("a"), LeaseDurationSeconds: ptr(int32(15))}},
		{
			name: "duration must be positive",
			spec: coordinationv1.LeaseSpec{LeaseDurationSeconds: ptr(int32(0))},
			want: []fieldErr{{field.ErrorTypeInvalid, "spec.leaseDurationSeconds", "must be greater than 0"}},
		},
		{
			name: "transitions non-negative",
			spec: coordinationv1.LeaseSpec{LeaseTransitions: ptr(int32(-1))},
			want: []fieldErr{{field.ErrorTypeInvalid, "spec.leaseTransitions", "must be greater than or equal to 0"}},
		},
		{
			name: "disabled-feature fields dropped on create",
			spec: coordinationv1.LeaseSpec{PreferredHolder: ptr("b"), Strategy: ptr(coordinationv1.CoordinatedLeaseStrategy("bogus"))},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "kube-scheduler", Namespace: "kube-system"}, Spec: tc.spec}
			Strategy{}.Default(l)
			Strategy{}.PrepareForCreate(context.Background(), l)
			if diff := cmp.Diff(tc.want, summarize(Strategy{}.Validate(context.Background(), l))); diff != "" {
				t.Errorf("Validate (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidateLeaseSpec(t *testing.T) {
	spec := coordinationv1.LeaseSpec{PreferredHolder: ptr("b")}
	want := []fieldErr{{field.ErrorTypeForbidden, "spec.preferredHolder", "may only be specified if `strategy` is defined"}}
	if diff := cmp.Diff(want, summarize(ValidateLeaseSpec(&spec, field.NewPath("spec")))); diff != "" {
		t.Errorf("ValidateLeaseSpec (-want +got):\n%s", diff)
	}
}
