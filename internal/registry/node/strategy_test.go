package node

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
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

func TestDefault(t *testing.T) {
	tests := []struct {
		name string
		in   corev1.Node
		want corev1.Node
	}{
		{
			name: "allocatable from capacity",
			in:   corev1.Node{Status: corev1.NodeStatus{Capacity: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4")}}},
			want: corev1.Node{Status: corev1.NodeStatus{
				Capacity:    corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4")},
				Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4")},
			}},
		},
		{
			name: "podCIDRs from podCIDR",
			in:   corev1.Node{Spec: corev1.NodeSpec{PodCIDR: "10.244.1.0/24"}},
			want: corev1.Node{Spec: corev1.NodeSpec{PodCIDR: "10.244.1.0/24", PodCIDRs: []string{"10.244.1.0/24"}}},
		},
		{
			name: "podCIDR from podCIDRs",
			in:   corev1.Node{Spec: corev1.NodeSpec{PodCIDRs: []string{"10.244.1.0/24", "fd00:1::/64"}}},
			want: corev1.Node{Spec: corev1.NodeSpec{PodCIDR: "10.244.1.0/24", PodCIDRs: []string{"10.244.1.0/24", "fd00:1::/64"}}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := tc.in.DeepCopy()
			Strategy{}.Default(n)
			if diff := cmp.Diff(&tc.want, n); diff != "" {
				t.Errorf("Default (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(n *corev1.Node)
		want   []fieldErr
	}{
		{name: "valid", mutate: func(*corev1.Node) {}},
		{
			name:   "taint effect",
			mutate: func(n *corev1.Node) { n.Spec.Taints = []corev1.Taint{{Key: "dedicated", Value: "db", Effect: "Never"}} },
			want:   []fieldErr{{field.ErrorTypeNotSupported, "metadata.taints[0].effect", `supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"`}},
		},
		{
			name: "duplicate taint",
			mutate: func(n *corev1.Node) {
				n.Spec.Taints = []corev1.Taint{{Key: "k", Effect: corev1.TaintEffectNoSchedule}, {Key: "k", Value: "v", Effect: corev1.TaintEffectNoSchedule}}
			},
			want: []fieldErr{{field.ErrorTypeDuplicate, "metadata.taints[1]", "taints must be unique by key and effect pair"}},
		},
		{
			name:   "namespace not allowed",
			mutate: func(n *corev1.Node) { n.Namespace = "default" },
			want:   []fieldErr{{field.ErrorTypeForbidden, "metadata.namespace", "not allowed on this type"}},
		},
		{
			name:   "two IPv4 pod CIDRs",
			mutate: func(n *corev1.Node) { n.Spec.PodCIDRs = []string{"10.0.0.0/24", "10.0.1.0/24"} },
			want:   []fieldErr{{field.ErrorTypeInvalid, "spec.podCIDRs", "may specify no more than one CIDR for each IP family"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"}}
			tc.mutate(n)
			if diff := cmp.Diff(tc.want, summarize(Strategy{}.Validate(context.Background(), n))); diff != "" {
				t.Errorf("Validate (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUpdate(t *testing.T) {
	old := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1", ResourceVersion: "2"},
		Spec:   corev1.NodeSpec{PodCIDR: "10.244.0.0/24", PodCIDRs: []string{"10.244.0.0/24"}, ProviderID: "kind://x"},
		Status: corev1.NodeStatus{Phase: corev1.NodeRunning}}
	tests := []struct {
		name   string
		mutate func(n *corev1.Node)
		want   []fieldErr
	}{
		{name: "cordon", mutate: func(n *corev1.Node) { n.Spec.Unschedulable = true }},
		{
			name:   "podCIDR immutable",
			mutate: func(n *corev1.Node) { n.Spec.PodCIDR, n.Spec.PodCIDRs = "10.244.9.0/24", []string{"10.244.9.0/24"} },
			want:   []fieldErr{{field.ErrorTypeForbidden, "spec.podCIDRs", `node updates may not change podCIDR except from "" to valid`}},
		},
		{
			name:   "providerID immutable",
			mutate: func(n *corev1.Node) { n.Spec.ProviderID = "kind://y" },
			want:   []fieldErr{{field.ErrorTypeInvalid, "spec.providerID", "field cannot be modified once set"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := old.DeepCopy()
			tc.mutate(n)
			n.Status.Phase = corev1.NodeTerminated
			Strategy{}.Default(n)
			Strategy{}.PrepareForUpdate(context.Background(), n, old)
			if n.Status.Phase != corev1.NodeRunning {
				t.Errorf("main-resource update changed status")
			}
			if diff := cmp.Diff(tc.want, summarize(Strategy{}.ValidateUpdate(context.Background(), n, old))); diff != "" {
				t.Errorf("ValidateUpdate (-want +got):\n%s", diff)
			}
		})
	}

	st := old.DeepCopy()
	st.Spec.Unschedulable = true
	st.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.1"}, {Type: corev1.NodeInternalIP, Address: "10.0.0.1"}}
	StatusStrategy{}.PrepareForUpdate(context.Background(), st, old)
	if st.Spec.Unschedulable {
		t.Errorf("/status changed spec")
	}
	want := []fieldErr{{field.ErrorTypeDuplicate, "status.addresses[1]", ""}}
	if diff := cmp.Diff(want, summarize(StatusStrategy{}.ValidateUpdate(context.Background(), st, old))); diff != "" {
		t.Errorf("status ValidateUpdate (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(fields.Set{"metadata.name": "node-1", "spec.unschedulable": "false"}, Fields(old)); diff != "" {
		t.Errorf("Fields (-want +got):\n%s", diff)
	}
}
