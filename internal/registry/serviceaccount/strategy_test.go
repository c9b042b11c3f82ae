package serviceaccount

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestStrategy(t *testing.T) {
	tests := []struct {
		name    string
		sa      corev1.ServiceAccount
		want    []corev1.ObjectReference
		wantErr bool
	}{
		{
			name: "secret references reduced to names",
			sa: corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "builder", Namespace: "ci"},
				Secrets: []corev1.ObjectReference{{Name: "tok", Namespace: "ci", Kind: "Secret", UID: "u"}}},
			want: []corev1.ObjectReference{{Name: "tok"}},
		},
		{
			name:    "invalid name",
			sa:      corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "Builder", Namespace: "ci"}},
			wantErr: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sa := tc.sa.DeepCopy()
			Strategy{}.Default(sa)
			Strategy{}.PrepareForCreate(context.Background(), sa)
			if diff := cmp.Diff(tc.want, sa.Secrets); diff != "" {
				t.Errorf("secrets (-want +got):\n%s", diff)
			}
			if errs := (Strategy{}).Validate(context.Background(), sa); (len(errs) > 0) != tc.wantErr {
				t.Errorf("Validate = %v, wantErr %v", errs, tc.wantErr)
			}
		})
	}
}
