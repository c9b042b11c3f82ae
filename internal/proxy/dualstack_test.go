package proxy

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"
)

// dualStackLB is a dual-stack LoadBalancer Service (clusterIPs, externalIPs, LB ingress and
// source ranges of both families) with a NodePort, as the registry stores one (SVC-D, §1.5).
func dualStackLB() *corev1.Service {
	return service("web", func(s *corev1.Service) {
		s.Spec.Type = corev1.ServiceTypeLoadBalancer
		s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.96.0.10", []string{"10.96.0.10", "fd00:10:96::10"}
		s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
		s.Spec.IPFamilyPolicy = ptr.To(corev1.IPFamilyPolicyRequireDualStack)
		s.Spec.ExternalIPs = []string{"203.0.113.5", "2001:db8::5"}
		s.Spec.LoadBalancerSourceRanges = []string{"198.51.100.0/24", "2001:db8:1::/64"}
		s.Spec.Ports[0].NodePort = 30080
		s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "203.0.113.200"}, {IP: "2001:db8::200"}}
	})
}

// dualStackSlices are the Service's two EndpointSlices, one per address type (EP-S: the
// endpointslice controller makes one per family): IPv4 endpoints ready on node1 and node2;
// the IPv6 ones on node1 (ready unless v6Terminating) and node2 (serving and terminating).
func dualStackSlices(v6Terminating bool) []*discoveryv1.EndpointSlice {
	v4 := slice("web", "web-v4", 8080, sliceEP("10.244.0.2", "node1", nil), sliceEP("10.244.1.2", "node2", nil))
	term := discoveryv1.EndpointConditions{Ready: ptr.To(false), Serving: ptr.To(true), Terminating: ptr.To(true)}
	local := sliceEP("fd00:10:244::2", "node1", nil)
	if v6Terminating {
		local.Conditions = term
	}
	remote := sliceEP("fd00:10:244:1::2", "node2", nil)
	remote.Conditions = term
	v6 := slice("web", "web-v6", 8080, local, remote)
	v6.AddressType = discoveryv1.AddressTypeIPv6
	return []*discoveryv1.EndpointSlice{v4, v6}
}

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, 0, len(ss))
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func epIPs(eps []Endpoint) []netip.Addr {
	out := make([]netip.Addr, 0, len(eps))
	for _, e := range eps {
		out = append(out, e.IP)
	}
	return out
}

func trackDualStack(t *testing.T, fam Families, v6Terminating bool, svcs ...*corev1.Service) map[ServicePortName]*ServiceState {
	t.Helper()
	tr := NewTracker("node1", fam)
	for _, s := range svcs {
		tr.OnService(types.NamespacedName{Namespace: s.Namespace, Name: s.Name}, s)
	}
	for _, es := range dualStackSlices(v6Terminating) {
		tr.OnEndpointSlice(es, false)
	}
	state, _, _ := tr.Update()
	return state
}

// TestTracker_DualStackPerFamily (PX-02): on a dual-stack node, a dual-stack Service's
// ServiceState carries both families' addresses and the endpoints of both EndpointSlices, and
// each family's view (ForFamily) holds exactly that family's cluster IP, externalIP, LB IP,
// source range and endpoints, categorized among that family's endpoints alone (PX-E-01..03).
func TestTracker_DualStackPerFamily(t *testing.T) {
	st := trackDualStack(t, Families{IPv4: true, IPv6: true}, false, dualStackLB())[webHTTP]
	if st == nil {
		t.Fatal("no ServiceState for the dual-stack Service")
	}
	if want := addrs("10.96.0.10", "fd00:10:96::10"); !slices.Equal(st.ClusterIPs, want) {
		t.Fatalf("clusterIPs %v, want %v", st.ClusterIPs, want)
	}
	if got, want := epIPs(st.Endpoints), addrs("10.244.0.2", "10.244.1.2", "fd00:10:244::2", "fd00:10:244:1::2"); !slices.Equal(got, want) {
		t.Fatalf("endpoints %v, want %v (both slices)", got, want)
	}
	cases := []struct {
		name                                  string
		ipv6                                  bool
		clusterIP, externalIP, lbIP           string
		sourceRange                           string
		endpoints, clusterPolicy, localPolicy []string
	}{
		{name: "IPv4 family", clusterIP: "10.96.0.10", externalIP: "203.0.113.5", lbIP: "203.0.113.200", sourceRange: "198.51.100.0/24",
			endpoints: []string{"10.244.0.2", "10.244.1.2"}, clusterPolicy: []string{"10.244.0.2", "10.244.1.2"}},
		{name: "IPv6 family", ipv6: true, clusterIP: "fd00:10:96::10", externalIP: "2001:db8::5", lbIP: "2001:db8::200", sourceRange: "2001:db8:1::/64",
			endpoints: []string{"fd00:10:244::2", "fd00:10:244:1::2"}, clusterPolicy: []string{"fd00:10:244::2"}},
	}
	for _, tc := range cases {
		t.Run("PX-02 "+tc.name, func(t *testing.T) {
			f := st.ForFamily(tc.ipv6)
			if f == nil {
				t.Fatal("ForFamily: nil")
			}
			if !slices.Equal(f.ClusterIPs, addrs(tc.clusterIP)) || !slices.Equal(f.ExternalIPs, addrs(tc.externalIP)) ||
				!slices.Equal(f.LoadBalancerIPs, addrs(tc.lbIP)) ||
				!slices.Equal(f.LoadBalancerSourceRanges, []netip.Prefix{netip.MustParsePrefix(tc.sourceRange)}) {
				t.Fatalf("addresses %v %v %v %v", f.ClusterIPs, f.ExternalIPs, f.LoadBalancerIPs, f.LoadBalancerSourceRanges)
			}
			if got := epIPs(f.Endpoints); !slices.Equal(got, addrs(tc.endpoints...)) {
				t.Fatalf("endpoints %v, want %v", got, tc.endpoints)
			}
			if got := epIPs(f.ClusterPolicyEndpoints); !slices.Equal(got, addrs(tc.clusterPolicy...)) {
				t.Fatalf("PX-E-01 cluster endpoints %v, want %v", got, tc.clusterPolicy)
			}
			if f.Name != webHTTP || f.Port != 80 || f.NodePort != 30080 || !f.HasEndpoints {
				t.Fatalf("port %+v", f.ServicePort)
			}
		})
	}
	t.Run("PX-E-01 per family: terminating IPv6 endpoints are used while IPv4 ones are ready", func(t *testing.T) {
		st := trackDualStack(t, Families{IPv4: true, IPv6: true}, true, dualStackLB())[webHTTP]
		for _, e := range st.ClusterPolicyEndpoints {
			if e.IP.Is6() {
				t.Fatalf("merged categorization is expected to hold only the ready (IPv4) endpoints, got %v", epIPs(st.ClusterPolicyEndpoints))
			}
		}
		f := st.ForFamily(true)
		if got, want := epIPs(f.ClusterPolicyEndpoints), addrs("fd00:10:244::2", "fd00:10:244:1::2"); !slices.Equal(got, want) || !f.HasEndpoints {
			t.Fatalf("IPv6 cluster endpoints %v (HasEndpoints %t), want the serving-terminating %v", got, f.HasEndpoints, want)
		}
	})
	t.Run("PX-E-03 per family: IPv6 cluster IP without IPv6 endpoints has none", func(t *testing.T) {
		tr := NewTracker("node1", Families{IPv4: true, IPv6: true})
		tr.OnService(types.NamespacedName{Namespace: "ns", Name: "web"}, dualStackLB())
		tr.OnEndpointSlice(dualStackSlices(false)[0], false)
		state, _, _ := tr.Update()
		st := state[webHTTP]
		if !st.HasEndpoints {
			t.Fatal("the IPv4 endpoints are not counted")
		}
		if f := st.ForFamily(true); f == nil || f.HasEndpoints || len(f.ClusterEndpoints) != 0 || len(f.ExternalEndpoints) != 0 {
			t.Fatalf("IPv6 view %+v, want no endpoints (rejected, PX-T-01)", f)
		}
	})
	t.Run("single-family state is returned as is", func(t *testing.T) {
		v4 := trackDualStack(t, Families{IPv4: true}, false, dualStackLB())[webHTTP]
		if v4.ForFamily(false) != v4 {
			t.Fatal("ForFamily copied a single-family state")
		}
		if v4.ForFamily(true) != nil {
			t.Fatal("ForFamily(IPv6) of a state without an IPv6 cluster IP is not nil")
		}
	})
}

// TestTracker_SingleFamilyNode (PX-02): a node serving one family ignores the other family's
// parts: its addresses, its EndpointSlice (an event on it is no change), and Services that have
// no cluster IP of the node's family.
func TestTracker_SingleFamilyNode(t *testing.T) {
	v6only := service("v6", func(s *corev1.Service) {
		s.Spec.ClusterIP, s.Spec.ClusterIPs = "fd00:10:96::11", []string{"fd00:10:96::11"}
		s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv6Protocol}
	})
	v4only := service("v4", func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.96.0.11", []string{"10.96.0.11"} })
	v6Name := ServicePortName{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "v6"}, Port: "http", Protocol: corev1.ProtocolTCP}
	v4Name := ServicePortName{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "v4"}, Port: "http", Protocol: corev1.ProtocolTCP}
	cases := []struct {
		name             string
		fam              Families
		clusterIP, extIP string
		lbIP, srcRange   string
		endpoints        []string
		served, ignored  ServicePortName
	}{
		{name: "IPv4-only node", fam: Families{IPv4: true}, clusterIP: "10.96.0.10", extIP: "203.0.113.5", lbIP: "203.0.113.200", srcRange: "198.51.100.0/24",
			endpoints: []string{"10.244.0.2", "10.244.1.2"}, served: v4Name, ignored: v6Name},
		{name: "IPv6-only node", fam: Families{IPv6: true}, clusterIP: "fd00:10:96::10", extIP: "2001:db8::5", lbIP: "2001:db8::200", srcRange: "2001:db8:1::/64",
			endpoints: []string{"fd00:10:244::2", "fd00:10:244:1::2"}, served: v6Name, ignored: v4Name},
	}
	for _, tc := range cases {
		t.Run("PX-02 "+tc.name, func(t *testing.T) {
			state := trackDualStack(t, tc.fam, false, dualStackLB(), v6only, v4only)
			st := state[webHTTP]
			if st == nil {
				t.Fatal("the dual-stack Service is not served")
			}
			if !slices.Equal(st.ClusterIPs, addrs(tc.clusterIP)) || !slices.Equal(st.ExternalIPs, addrs(tc.extIP)) ||
				!slices.Equal(st.LoadBalancerIPs, addrs(tc.lbIP)) || !slices.Equal(st.LoadBalancerSourceRanges, []netip.Prefix{netip.MustParsePrefix(tc.srcRange)}) {
				t.Fatalf("addresses %v %v %v %v", st.ClusterIPs, st.ExternalIPs, st.LoadBalancerIPs, st.LoadBalancerSourceRanges)
			}
			if got := epIPs(st.Endpoints); !slices.Equal(got, addrs(tc.endpoints...)) {
				t.Fatalf("endpoints %v, want %v", got, tc.endpoints)
			}
			if state[tc.served] == nil || state[tc.ignored] != nil {
				t.Fatalf("served %v: %v; ignored %v: %v", tc.served, state[tc.served], tc.ignored, state[tc.ignored])
			}
		})
	}
	t.Run("PX-02 the other family's slice changing is no change", func(t *testing.T) {
		tr := NewTracker("node1", Families{IPv4: true})
		tr.OnService(types.NamespacedName{Namespace: "ns", Name: "web"}, dualStackLB())
		for _, es := range dualStackSlices(false) {
			tr.OnEndpointSlice(es, false)
		}
		tr.Update()
		v6 := dualStackSlices(true)[1]
		tr.OnEndpointSlice(v6, false)
		if _, changed, _ := tr.Update(); changed.Len() != 0 {
			t.Fatalf("an IPv6 slice update changed %v on an IPv4-only node", changed.UnsortedList())
		}
		tr.OnEndpointSlice(v6, true)
		if _, changed, _ := tr.Update(); changed.Len() != 0 {
			t.Fatalf("an IPv6 slice deletion changed %v on an IPv4-only node", changed.UnsortedList())
		}
	})
}

// TestProxier_NodeIPFamilies (PX-02): the generic proxier serves the families of its NodeIPs:
// with an IPv4 node IP the dataplane gets only IPv4 parts; with IPv4 and IPv6 node IPs, both,
// and a single-stack IPv6 Service too.
func TestProxier_NodeIPFamilies(t *testing.T) {
	v6only := service("v6", func(s *corev1.Service) {
		s.Spec.ClusterIP, s.Spec.ClusterIPs = "fd00:10:96::11", []string{"fd00:10:96::11"}
	})
	v6Name := ServicePortName{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "v6"}, Port: "http", Protocol: corev1.ProtocolTCP}
	cases := []struct {
		name      string
		nodeIPs   []netip.Addr
		clusterIP []netip.Addr
		endpoints int
		v6Served  bool
	}{
		{name: "IPv4 node IP", nodeIPs: addrs("198.51.100.11"), clusterIP: addrs("10.96.0.10"), endpoints: 2},
		{name: "IPv4 and IPv6 node IPs", nodeIPs: addrs("198.51.100.11", "2001:db8:1::11"), clusterIP: addrs("10.96.0.10", "fd00:10:96::10"), endpoints: 4, v6Served: true},
	}
	for _, tc := range cases {
		t.Run("PX-02 "+tc.name, func(t *testing.T) {
			es := dualStackSlices(false)
			client := fake.NewClientset(dualStackLB(), v6only, es[0], es[1])
			_, dp := startFake(t, Config{Client: client, NodeName: "node1", NodeIPs: tc.nodeIPs, MinSyncPeriod: 10 * time.Millisecond, SyncPeriod: time.Minute})
			snap := dp.last().snap
			st := snap.Services[webHTTP]
			if st == nil || !slices.Equal(st.ClusterIPs, tc.clusterIP) || len(st.Endpoints) != tc.endpoints {
				t.Fatalf("dual-stack Service: %s", describe(st))
			}
			if (snap.Services[v6Name] != nil) != tc.v6Served {
				t.Fatalf("single-stack IPv6 Service served: %t, want %t", snap.Services[v6Name] != nil, tc.v6Served)
			}
		})
	}
}

func describe(st *ServiceState) string {
	if st == nil {
		return "not served"
	}
	return fmt.Sprintf("clusterIPs %v endpoints %v", st.ClusterIPs, epIPs(st.Endpoints))
}

// FuzzForFamily: for fuzzed dual-stack Services and slices of both address types, each
// family's view (PX-02) is nil exactly when the Service has no cluster IP of the family, holds
// only the family's addresses, ranges and endpoints (all of them, in order), is categorized
// among them (every list drawn from its endpoints; HasEndpoints iff one of them is ready or
// serving-terminating, PX-E-03), and is its own view.
func FuzzForFamily(f *testing.F) {
	f.Add("10.96.0.10,fd00:10:96::10", "10.244.0.2,fd00:10:244::2,10.244.1.2", "node1,node2", uint8(0b0110_1101), "Local", "Cluster", "203.0.113.5,2001:db8::5")
	f.Add("fd00:10:96::10", "fd00:10:244::2", "node1", uint8(0b100), "Cluster", "Local", "2001:db8::/64")
	f.Add("10.96.0.10", "::ffff:10.0.0.1,10.0.0.1", "node2", uint8(0xff), "", "", "10.0.0.0/8,::/0")
	f.Fuzz(func(t *testing.T, clusterIPs, addrs, nodes string, conds uint8, etp, itp, ext string) {
		svc := dualStackLB()
		svc.Spec.ClusterIPs = strings.Split(clusterIPs, ",")
		svc.Spec.ClusterIP = svc.Spec.ClusterIPs[0]
		svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicy(etp)
		p := corev1.ServiceInternalTrafficPolicy(itp)
		svc.Spec.InternalTrafficPolicy = &p
		svc.Spec.ExternalIPs = strings.Split(ext, ",")
		svc.Spec.LoadBalancerSourceRanges = strings.Split(ext, ",")
		eps := fuzzEndpoints(addrs, nodes, conds)
		tr := NewTracker("node1", Families{IPv4: true, IPv6: true})
		tr.OnService(types.NamespacedName{Namespace: "ns", Name: "web"}, svc)
		for _, at := range []discoveryv1.AddressType{discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6} {
			s := slice("web", "web-"+string(at), 8080, eps...)
			s.AddressType = at
			tr.OnEndpointSlice(s, false)
		}
		state, _, _ := tr.Update()
		for _, st := range state {
			for _, v6 := range []bool{false, true} {
				checkFamilyView(t, st, v6)
			}
		}
	})
}

func checkFamilyView(t *testing.T, st *ServiceState, v6 bool) {
	t.Helper()
	is := func(a netip.Addr) bool { return a.Is6() == v6 }
	var want []Endpoint
	for _, e := range st.Endpoints {
		if is(e.IP) {
			want = append(want, e)
		}
	}
	has := slices.ContainsFunc(st.ClusterIPs, is)
	f := st.ForFamily(v6)
	if (f != nil) != has {
		t.Fatalf("ForFamily(v6=%t) nil=%t for clusterIPs %v", v6, f == nil, st.ClusterIPs)
	}
	if f == nil {
		return
	}
	for _, list := range [][]netip.Addr{f.ClusterIPs, f.ExternalIPs, f.LoadBalancerIPs} {
		if slices.ContainsFunc(list, func(a netip.Addr) bool { return !is(a) }) {
			t.Fatalf("addresses of the other family in %v", list)
		}
	}
	for _, r := range f.LoadBalancerSourceRanges {
		if !is(r.Addr()) {
			t.Fatalf("source range %v of the other family", r)
		}
	}
	if !slices.Equal(f.Endpoints, want) {
		t.Fatalf("endpoints %v, want the family's %v", f.Endpoints, want)
	}
	in := map[Endpoint]bool{}
	any := false
	for _, e := range f.Endpoints {
		in[e] = true
		any = any || e.Ready || (e.Serving && e.Terminating)
	}
	for _, l := range [][]Endpoint{f.ClusterPolicyEndpoints, f.LocalEndpoints, f.ClusterEndpoints, f.ExternalEndpoints, f.AllLocallyReachable} {
		for _, e := range l {
			if !in[e] {
				t.Fatalf("categorized endpoint %v not among the family's endpoints", e)
			}
		}
	}
	if f.HasEndpoints != any {
		t.Fatalf("HasEndpoints %t, ready or serving-terminating endpoints of the family %t", f.HasEndpoints, any)
	}
	if f.ForFamily(v6) != f {
		t.Fatal("a family's view is not its own view")
	}
}
