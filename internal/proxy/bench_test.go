package proxy

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"
)

// nopDataplane accepts every sync and keeps nothing: what is left of a sync is the generic
// part (tracker update, snapshot, health checks, conntrack filter, metrics).
type nopDataplane struct{}

func (nopDataplane) Name() string { return "nop" }
func (nopDataplane) Sync(context.Context, *Snapshot, sets.Set[ServicePortName], bool) error {
	return nil
}
func (nopDataplane) Cleanup() error { return nil }
func (nopDataplane) Close() error   { return nil }

// benchObjects returns Service i (ClusterIP, one TCP port) and its EndpointSlice of eps ready
// endpoints.
func benchObjects(i, eps int) (*corev1.Service, *discoveryv1.EndpointSlice) {
	name := fmt.Sprintf("s%d", i)
	ns := fmt.Sprintf("ns%d", i%10)
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeClusterIP, ClusterIP: netip.AddrFrom4([4]byte{10, 96 + byte(i>>16), byte(i >> 8), byte(i)}).String(),
			Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt(8080), Protocol: corev1.ProtocolTCP}},
		},
	}
	svc.Spec.ClusterIPs = []string{svc.Spec.ClusterIP}
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name + "-x", Labels: map[string]string{discoveryv1.LabelServiceName: name}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To(""), Port: ptr.To[int32](8080), Protocol: ptr.To(corev1.ProtocolTCP)}},
	}
	for j := 0; j < eps; j++ {
		k := i*eps + j
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{netip.AddrFrom4([4]byte{10, 244 + byte(k>>16), byte(k >> 8), byte(k)}).String()},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
			NodeName:   ptr.To("node2"),
		})
	}
	return svc, es
}

// BenchmarkSync_AddOne is the generic side of programming one more Service with n present
// (issue 6 goal (a): ≤ 10 ms at 10k, the dataplane included; the nftables part is
// internal/proxy/nftables BenchmarkSyncAddOne). Each iteration adds a Service with its slice
// and syncs, then removes both and syncs.
func BenchmarkSync_AddOne(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			p, err := New(Config{Client: fake.NewClientset(), Dataplane: nopDataplane{}, NodeName: "node1",
				NodeIPs: []netip.Addr{netip.MustParseAddr("198.51.100.11")}, ConntrackCleanup: true})
			if err != nil {
				b.Fatal(err)
			}
			for i := 0; i < n; i++ {
				svc, es := benchObjects(i, 10)
				p.onService(svc, false)
				p.onSlice(es, false)
			}
			if err := p.sync(); err != nil {
				b.Fatal(err)
			}
			svc, es := benchObjects(n, 10)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				p.onService(svc, false)
				p.onSlice(es, false)
				if err := p.sync(); err != nil {
					b.Fatal(err)
				}
				p.onService(svc, true)
				p.onSlice(es, true)
				if err := p.sync(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(2*b.N)/1e6, "ms/sync")
		})
	}
}
