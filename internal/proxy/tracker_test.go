package proxy

import (
	"maps"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/utils/ptr"
)

func service(name string, mutate ...func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: "10.96.0.10", ClusterIPs: []string{"10.96.0.10"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}},
	}
	for _, m := range mutate {
		m(s)
	}
	return s
}

func slice(svc, name string, port int32, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "ns", Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(port), Protocol: ptr.To(corev1.ProtocolTCP)}},
		Endpoints:   eps,
	}
}

func sliceEP(ip, node string, ready *bool) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{Addresses: []string{ip}, NodeName: ptr.To(node), Conditions: discoveryv1.EndpointConditions{Ready: ready}}
}

var webHTTP = ServicePortName{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "web"}, Port: "http", Protocol: corev1.ProtocolTCP}

// TestServicePorts checks the projection of Services (PX-01..PX-04, PX-A-01).
func TestServicePorts(t *testing.T) {
	fam := Families{IPv4: true}
	cases := []struct {
		name  string
		svc   *corev1.Service
		check func(t *testing.T, ps []ServicePort)
	}{
		{name: "PX-01 headless is not proxied", svc: service("h", func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "None", []string{"None"} }),
			check: func(t *testing.T, ps []ServicePort) {
				if len(ps) != 0 {
					t.Fatalf("got %d ports", len(ps))
				}
			}},
		{name: "PX-01 ExternalName is not proxied", svc: service("e", func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeExternalName }),
			check: func(t *testing.T, ps []ServicePort) {
				if len(ps) != 0 {
					t.Fatalf("got %d ports", len(ps))
				}
			}},
		{name: "PX-02 other family's addresses are left out", svc: service("d", func(s *corev1.Service) {
			s.Spec.ClusterIPs = []string{"10.96.0.10", "fd00::10"}
			s.Spec.ExternalIPs = []string{"203.0.113.5", "2001:db8::5"}
		}), check: func(t *testing.T, ps []ServicePort) {
			if len(ps[0].ClusterIPs) != 1 || len(ps[0].ExternalIPs) != 1 {
				t.Fatalf("clusterIPs %v externalIPs %v", ps[0].ClusterIPs, ps[0].ExternalIPs)
			}
		}},
		{name: "PX-03 LB ingress IPs only in VIP mode", svc: service("lb", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeLoadBalancer
			s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "203.0.113.1"}, {IP: "203.0.113.2", IPMode: ptr.To(corev1.LoadBalancerIPModeProxy)},
				{IP: "203.0.113.3", IPMode: ptr.To(corev1.LoadBalancerIPModeVIP)}, {Hostname: "lb.example"}}
		}), check: func(t *testing.T, ps []ServicePort) {
			want := []netip.Addr{netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("203.0.113.3")}
			if len(ps[0].LoadBalancerIPs) != 2 || ps[0].LoadBalancerIPs[0] != want[0] || ps[0].LoadBalancerIPs[1] != want[1] {
				t.Fatalf("LB IPs %v", ps[0].LoadBalancerIPs)
			}
		}},
		{name: "PX-A-01 ClientIP affinity defaults to 10800 s", svc: service("a", func(s *corev1.Service) { s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP }),
			check: func(t *testing.T, ps []ServicePort) {
				if ps[0].AffinityTimeout != 3*time.Hour {
					t.Fatalf("timeout %s", ps[0].AffinityTimeout)
				}
			}},
		{name: "PX-T-03 eTP Local only when externally accessible; health check port for LB", svc: service("l", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeLoadBalancer
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
			s.Spec.HealthCheckNodePort = 31000
			s.Spec.Ports[0].NodePort = 30080
		}), check: func(t *testing.T, ps []ServicePort) {
			if !ps[0].ExternalPolicyLocal || ps[0].HealthCheckNodePort != 31000 || ps[0].NodePort != 30080 {
				t.Fatalf("%+v", ps[0])
			}
		}},
		{name: "PX-04 name and protocol", svc: service("n"), check: func(t *testing.T, ps []ServicePort) {
			if got := ps[0].Name.String(); got != "ns/n:http" || ps[0].Protocol != corev1.ProtocolTCP {
				t.Fatalf("name %q", got)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { tc.check(t, ServicePorts(tc.svc, fam)) })
	}
}

// TestTracker_Changes: Update reports exactly the service ports whose state changed
// (NFT-S-02) and merges slices (EP-C-01..03).
func TestTracker_Changes(t *testing.T) {
	tr := NewTracker("node1", Families{IPv4: true})
	key := types.NamespacedName{Namespace: "ns", Name: "web"}
	tr.OnService(key, service("web"))
	tr.OnService(types.NamespacedName{Namespace: "ns", Name: "other"}, service("other", func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.96.0.11", nil }))
	tr.OnEndpointSlice(slice("web", "web-1", 8080, sliceEP("10.244.0.2", "node1", nil), sliceEP("10.244.1.2", "node2", ptr.To(false))), false)
	state, changed, _ := tr.Update()
	if changed.Len() != 2 || len(state) != 2 {
		t.Fatalf("first update: changed %v, %d states", changed.UnsortedList(), len(state))
	}
	st := state[webHTTP]
	if len(st.Endpoints) != 2 || !st.Endpoints[0].Ready || !st.Endpoints[0].Local || st.Endpoints[1].Ready || st.Endpoints[0].Port != 8080 {
		t.Fatalf("EP-C-03 endpoints %+v", st.Endpoints)
	}
	if _, changed, _ = tr.Update(); changed.Len() != 0 {
		t.Fatalf("no event: changed %v", changed.UnsortedList())
	}
	// EP-C-01: the same endpoint in a second slice, ready there: one endpoint, ready.
	tr.OnEndpointSlice(slice("web", "web-2", 8080, sliceEP("10.244.1.2", "node2", ptr.To(true))), false)
	state, changed, _ = tr.Update()
	if !changed.Has(webHTTP) || changed.Len() != 1 {
		t.Fatalf("changed %v", changed.UnsortedList())
	}
	if eps := state[webHTTP].Endpoints; len(eps) != 2 || !eps[1].Ready {
		t.Fatalf("EP-C-01 merged endpoints %+v", eps)
	}
	// A slice update that changes nothing the proxy uses is no change.
	s := slice("web", "web-2", 8080, sliceEP("10.244.1.2", "node2", ptr.To(true)))
	s.Annotations = map[string]string{"x": "y"}
	tr.OnEndpointSlice(s, false)
	if _, changed, _ = tr.Update(); changed.Len() != 0 {
		t.Fatalf("irrelevant update changed %v", changed.UnsortedList())
	}
	// Deleting the Service removes its port.
	tr.OnService(key, nil)
	state, changed, _ = tr.Update()
	if !changed.Has(webHTTP) || state[webHTTP] != nil {
		t.Fatalf("delete: changed %v", changed.UnsortedList())
	}
}

// TestTracker_TriggerTime: the EndpointSlice's last-change-trigger-time is reported once,
// for network_programming_duration_seconds.
func TestTracker_TriggerTime(t *testing.T) {
	tr := NewTracker("node1", Families{IPv4: true})
	tr.OnService(types.NamespacedName{Namespace: "ns", Name: "web"}, service("web"))
	s := slice("web", "web-1", 8080, sliceEP("10.244.0.2", "node1", nil))
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s.Annotations = map[string]string{corev1.EndpointsLastChangeTriggerTime: at.Format(time.RFC3339Nano)}
	tr.OnEndpointSlice(s, false)
	if _, _, trig := tr.Update(); len(trig) != 1 || !trig[0].Equal(at) {
		t.Fatalf("triggers %v", trig)
	}
	if _, _, trig := tr.Update(); len(trig) != 0 {
		t.Fatalf("triggers again %v", trig)
	}
}

// Update is Apply with the state copied, so that a test may keep it across later Applies.
func (t *Tracker) Update() (state map[ServicePortName]*ServiceState, changed sets.Set[ServicePortName], triggers []time.Time) {
	live, changed, _, triggers := t.Apply()
	return maps.Clone(live), changed, triggers
}
