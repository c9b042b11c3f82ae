package proxy

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// FuzzTracker decodes API objects built from fuzzed fields (addresses, ports, conditions,
// policies) into ServiceStates: never a panic; endpoints sorted by IP then port and unique
// (EP-C-01); every categorized list drawn from the endpoints; HasEndpoints iff some endpoint
// is ready or serving-terminating whenever Cluster policy is used (PX-E-03).
func FuzzTracker(f *testing.F) {
	f.Add("10.96.0.10", "10.244.0.2,10.244.0.3", "node1,node2", int32(8080), uint8(0b0101), "Local", "Cluster", "203.0.113.1")
	f.Add("None", "10.244.0.2", "node1", int32(80), uint8(0), "", "", "")
	f.Add("fd00::1", "fd00::2,10.0.0.1, 10.0.0.1", "node1", int32(0), uint8(0xff), "Cluster", "Local", "::1")
	f.Add("10.96.0.1", "999.1.1.1,10.0.0.1,10.0.0.1", ",", int32(-1), uint8(0b1010), "x", "y", "10.0.0.0/8")
	f.Fuzz(func(t *testing.T, clusterIP, addrs, nodes string, port int32, conds uint8, etp, itp, extIP string) {
		svc := service("web", func(s *corev1.Service) {
			s.Spec.ClusterIP, s.Spec.ClusterIPs = clusterIP, []string{clusterIP}
			s.Spec.Type = corev1.ServiceTypeLoadBalancer
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicy(etp)
			p := corev1.ServiceInternalTrafficPolicy(itp)
			s.Spec.InternalTrafficPolicy = &p
			s.Spec.ExternalIPs = []string{extIP}
			s.Spec.Ports[0].NodePort = port
			s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: extIP}}
			s.Spec.LoadBalancerSourceRanges = []string{extIP}
		})
		eps := fuzzEndpoints(addrs, nodes, conds)
		tr := NewTracker("node1", Families{IPv4: true, IPv6: true})
		tr.OnService(types.NamespacedName{Namespace: "ns", Name: "web"}, svc)
		for _, at := range []discoveryv1.AddressType{discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6} {
			s := slice("web", "web-"+string(at), port, eps...)
			s.AddressType = at
			tr.OnEndpointSlice(s, false)
		}
		state, _, _ := tr.Update()
		for _, st := range state {
			in := map[Endpoint]bool{}
			for i, e := range st.Endpoints {
				if i > 0 && !endpointLess(&st.Endpoints[i-1], &e) {
					t.Fatalf("endpoints not sorted and unique: %v", st.Endpoints)
				}
				in[e] = true
			}
			any := false
			for _, e := range st.Endpoints {
				any = any || e.Ready || (e.Serving && e.Terminating)
			}
			for _, l := range [][]Endpoint{st.ClusterPolicyEndpoints, st.LocalEndpoints, st.ClusterEndpoints, st.ExternalEndpoints, st.AllLocallyReachable} {
				for _, e := range l {
					if !in[e] {
						t.Fatalf("categorized endpoint %v not among the endpoints", e)
					}
				}
			}
			if st.UsesClusterEndpoints() && st.HasEndpoints != any {
				t.Fatalf("HasEndpoints %t, ready or serving-terminating endpoints %t", st.HasEndpoints, any)
			}
		}
	})
}

// fuzzEndpoints makes an endpoint per comma-separated address, on the nodes in turn, with
// ready/serving/terminating taken from the bits of conds.
func fuzzEndpoints(addrs, nodes string, conds uint8) []discoveryv1.Endpoint {
	var eps []discoveryv1.Endpoint
	nodeList := strings.Split(nodes, ",")
	for i, a := range strings.Split(addrs, ",") {
		bit := func(n int) *bool { return ptr.To(conds&(1<<((i*3+n)%8)) != 0) }
		eps = append(eps, discoveryv1.Endpoint{Addresses: []string{a}, NodeName: ptr.To(nodeList[i%len(nodeList)]),
			Conditions: discoveryv1.EndpointConditions{Ready: bit(0), Serving: bit(1), Terminating: bit(2)}})
	}
	return eps
}
