package service

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// create runs a service create in kube-apiserver's order (see Strategy) and returns the
// stored object or the error the client would see.
func create(s *Strategy, in *corev1.Service, a Allocator) (*corev1.Service, error) {
	obj := in.DeepCopy()
	s.Default(obj)
	if err := s.BeginCreate(obj, a); err != nil {
		return nil, err
	}
	s.PrepareForCreate(context.Background(), obj)
	if el := s.Validate(context.Background(), obj); len(el) > 0 {
		return nil, apierrors.NewInvalid(serviceKind, obj.Name, el)
	}
	return obj, nil
}

// update runs a service update in kube-apiserver's order and returns the stored object and
// what the write frees.
func update(s *Strategy, in, old *corev1.Service, a Allocator) (*corev1.Service, Release, error) {
	obj, oldObj := in.DeepCopy(), old.DeepCopy()
	s.Default(obj)
	rel, err := s.BeginUpdate(obj, oldObj, a)
	if err != nil {
		return nil, Release{}, err
	}
	s.PrepareForUpdate(context.Background(), obj, oldObj)
	if el := s.ValidateUpdate(context.Background(), obj, oldObj); len(el) > 0 {
		return nil, Release{}, apierrors.NewInvalid(serviceKind, obj.Name, el)
	}
	return obj, rel, nil
}

type allocResult struct {
	ClusterIPs []string
	Families   []corev1.IPFamily
	NodePorts  []int32
	HC         int32
}

func allocOf(s *corev1.Service) allocResult {
	r := allocResult{ClusterIPs: s.Spec.ClusterIPs, Families: s.Spec.IPFamilies, HC: s.Spec.HealthCheckNodePort}
	for _, p := range s.Spec.Ports {
		r.NodePorts = append(r.NodePorts, p.NodePort)
	}
	return r
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestBeginCreate(t *testing.T) {
	nodePort := func(s *corev1.Service) { s.Spec.Type = "NodePort" }
	dns := func(s *corev1.Service) {
		s.Spec.Ports = []corev1.ServicePort{{Name: "dns", Port: 53, Protocol: "UDP"}, {Name: "dns-tcp", Port: 53, Protocol: "TCP"}, {Name: "m", Port: 9153}}
	}
	tests := []struct {
		name     string
		strategy *Strategy
		svc      *corev1.Service
		used     []string
		full     bool
		want     allocResult
		wantErr  string
		internal bool
	}{
		{name: "SVC-F-09 one clusterIP from the primary family", strategy: singleStack, svc: svc(),
			want: allocResult{ClusterIPs: []string{"10.96.0.100"}, Families: []corev1.IPFamily{"IPv4"}, NodePorts: []int32{0}}},
		{name: "SVC-F-09 PreferDualStack on dual-stack gets one IP per family", strategy: dualStack,
			svc:  svc(func(s *corev1.Service) { s.Spec.IPFamilyPolicy = ptrTo(corev1.IPFamilyPolicyPreferDualStack) }),
			want: allocResult{ClusterIPs: []string{"10.96.0.100", "fd00::100"}, Families: []corev1.IPFamily{"IPv4", "IPv6"}, NodePorts: []int32{0}}},
		{name: "SVC-IP-04 requested clusterIP reserved", strategy: singleStack, svc: svc(func(s *corev1.Service) { s.Spec.ClusterIP = "10.96.0.5" }),
			want: allocResult{ClusterIPs: []string{"10.96.0.5"}, Families: []corev1.IPFamily{"IPv4"}, NodePorts: []int32{0}}},
		{name: "SVC-IP-04 requested clusterIP already allocated", strategy: singleStack, used: []string{"10.96.0.5"},
			svc:     svc(func(s *corev1.Service) { s.Spec.ClusterIP = "10.96.0.5" }),
			wantErr: `Service "web" is invalid: spec.clusterIPs: Invalid value: ["10.96.0.5"]: failed to allocate IP 10.96.0.5: provided IP is already allocated`},
		{name: "SVC-IP-04 requested clusterIP out of range", strategy: singleStack,
			svc:     svc(func(s *corev1.Service) { s.Spec.ClusterIP = "10.0.0.5" }),
			wantErr: `Service "web" is invalid: spec.clusterIPs: Invalid value: ["10.0.0.5"]: failed to allocate IP 10.0.0.5: the provided IP (10.0.0.5) is not in the valid range. The range of valid IPs is 10.96.0.0/12`},
		{name: "SVC-IP-03 exhausted range is a 500", strategy: singleStack, svc: svc(), full: true, internal: true,
			wantErr: `Internal error occurred: failed to allocate a serviceIP for Service "web": range is full`},
		{name: "SVC-F-06 resolution errors come before allocation and validation", strategy: singleStack,
			svc: svc(func(s *corev1.Service) {
				s.Spec.ClusterIP, s.Name = "fd00::1", "Bad_Name"
			}),
			wantErr: `Service "Bad_Name" is invalid: spec.clusterIPs[0]: Invalid value: ["fd00::1"]: IPv6 is not configured on this cluster`},
		{name: "headless gets no clusterIP", strategy: singleStack, svc: svc(func(s *corev1.Service) { s.Spec.ClusterIP = "None" }),
			want: allocResult{ClusterIPs: []string{"None"}, Families: []corev1.IPFamily{"IPv4"}, NodePorts: []int32{0}}},
		{name: "ExternalName allocates nothing", strategy: singleStack, svc: svc(func(s *corev1.Service) {
			s.Spec.Type, s.Spec.ExternalName = "ExternalName", "example.com"
		}), want: allocResult{NodePorts: []int32{0}}},
		{name: "SVC-NP-03 NodePort gets node ports", strategy: singleStack, svc: svc(nodePort),
			want: allocResult{ClusterIPs: []string{"10.96.0.100"}, Families: []corev1.IPFamily{"IPv4"}, NodePorts: []int32{30100}}},
		{name: "SVC-NP-04 same port number on TCP and UDP shares one node port", strategy: singleStack, svc: svc(nodePort, dns),
			want: allocResult{ClusterIPs: []string{"10.96.0.100"}, Families: []corev1.IPFamily{"IPv4"}, NodePorts: []int32{30100, 30100, 30101}}},
		{name: "SVC-NP-04 a node port requested on either sharing port is reused", strategy: singleStack,
			svc:  svc(nodePort, dns, func(s *corev1.Service) { s.Spec.Ports[1].NodePort = 30053 }),
			want: allocResult{ClusterIPs: []string{"10.96.0.100"}, Families: []corev1.IPFamily{"IPv4"}, NodePorts: []int32{30053, 30053, 30100}}},
		{name: "SVC-NP-03 allocateLoadBalancerNodePorts=false reserves only requested ports", strategy: singleStack,
			svc: svc(dns, func(s *corev1.Service) {
				s.Spec.Type, s.Spec.AllocateLoadBalancerNodePorts = "LoadBalancer", ptrTo(false)
				s.Spec.Ports[2].NodePort = 30153
			}),
			want: allocResult{ClusterIPs: []string{"10.96.0.100"}, Families: []corev1.IPFamily{"IPv4"}, NodePorts: []int32{0, 0, 30153}}},
		{name: "SVC-NP-05 requested node port out of range", strategy: singleStack, svc: svc(nodePort, func(s *corev1.Service) { s.Spec.Ports[0].NodePort = 40000 }),
			wantErr: `Service "web" is invalid: spec.ports[0].nodePort: Invalid value: 40000: provided port is not in the valid range. The range of valid ports is 30000-32767`},
		{name: "SVC-NP-05 requested node port taken", strategy: singleStack, used: []string{"30080"}, svc: svc(nodePort, func(s *corev1.Service) { s.Spec.Ports[0].NodePort = 30080 }),
			wantErr: `Service "web" is invalid: spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated`},
		{name: "SVC-NP-05 node port range full is a 500", strategy: singleStack, svc: svc(nodePort, func(s *corev1.Service) { s.Spec.ClusterIP = "10.96.0.5" }), full: true,
			internal: true, wantErr: `Internal error occurred: failed to allocate a nodePort: range is full`},
		{name: "SVC-NP-06 LB+Local gets a healthCheckNodePort, even without node ports", strategy: singleStack, svc: svc(func(s *corev1.Service) {
			s.Spec.Type, s.Spec.ExternalTrafficPolicy, s.Spec.AllocateLoadBalancerNodePorts = "LoadBalancer", "Local", ptrTo(false)
		}), want: allocResult{ClusterIPs: []string{"10.96.0.100"}, Families: []corev1.IPFamily{"IPv4"}, NodePorts: []int32{0}, HC: 30100}},
		{name: "SVC-NP-06 requested healthCheckNodePort taken is a 500", strategy: singleStack, used: []string{"30200"}, svc: svc(func(s *corev1.Service) {
			s.Spec.Type, s.Spec.ExternalTrafficPolicy, s.Spec.HealthCheckNodePort = "LoadBalancer", "Local", 30200
		}), internal: true, wantErr: `Internal error occurred: failed to allocate requested HealthCheck NodePort 30200: provided port is already allocated`},
		{name: "validation runs after allocation", strategy: singleStack, svc: svc(func(s *corev1.Service) { s.Spec.Ports[0].NodePort = 30080 }),
			wantErr: "Service \"web\" is invalid: spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := newFakeAllocator(tc.used...)
			a.full = tc.full
			got, err := create(tc.strategy, tc.svc, a)
			if errText(err) != tc.wantErr {
				t.Fatalf("error = %q, want %q", errText(err), tc.wantErr)
			}
			if err != nil {
				if apierrors.IsInternalError(err) != tc.internal {
					t.Errorf("internal = %v, want %v (%v)", apierrors.IsInternalError(err), tc.internal, err)
				}
				return
			}
			if diff := cmp.Diff(tc.want, allocOf(got)); diff != "" {
				t.Errorf("allocation (-want +got):\n%s", diff)
			}
			if len(got.Spec.ClusterIPs) > 0 && got.Spec.ClusterIP != got.Spec.ClusterIPs[0] {
				t.Errorf("clusterIP %q != clusterIPs[0] %q", got.Spec.ClusterIP, got.Spec.ClusterIPs[0])
			}
		})
	}
}

func TestBeginUpdate(t *testing.T) {
	np := func(s *corev1.Service) {
		s.Spec.Type = "NodePort"
		s.Spec.Ports = []corev1.ServicePort{{Name: "a", Port: 80, NodePort: 30080}, {Name: "b", Port: 81, NodePort: 30081}}
	}
	lbLocal := func(s *corev1.Service) {
		s.Spec.Type, s.Spec.ExternalTrafficPolicy, s.Spec.HealthCheckNodePort = "LoadBalancer", "Local", 30200
		s.Spec.Ports[0].NodePort = 30080
	}
	dual := func(s *corev1.Service) {
		s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.96.0.10", []string{"10.96.0.10", "fd00::10"}
		s.Spec.IPFamilies = []corev1.IPFamily{"IPv4", "IPv6"}
		s.Spec.IPFamilyPolicy = ptrTo(corev1.IPFamilyPolicyRequireDualStack)
	}
	tests := []struct {
		name     string
		strategy *Strategy
		old, new *corev1.Service
		want     allocResult
		release  Release
		allocs   string
		wantErr  string
	}{
		{name: "SVC-U-01 re-applying the original manifest allocates and frees nothing", strategy: singleStack,
			old: stored(np), new: svc(np, func(s *corev1.Service) {
				s.Spec.Ports[0].NodePort, s.Spec.Ports[1].NodePort = 0, 0
			}),
			want: allocResult{ClusterIPs: []string{"10.96.0.10"}, Families: []corev1.IPFamily{"IPv4"}, NodePorts: []int32{30080, 30081}}},
		{name: "SVC-U-05 ClusterIP to ExternalName frees the cluster IP", strategy: singleStack,
			old: stored(), new: func() *corev1.Service {
				s := stored()
				s.Spec.Type, s.Spec.ExternalName = "ExternalName", "example.com"
				return s
			}(),
			want:    allocResult{NodePorts: []int32{0}},
			release: Release{ClusterIPs: map[corev1.IPFamily]string{"IPv4": "10.96.0.10"}}},
		{name: "SVC-U-05 ExternalName to ClusterIP allocates fresh IPs", strategy: singleStack,
			old: svc(func(s *corev1.Service) { s.Spec.Type, s.Spec.ExternalName = "ExternalName", "example.com" }),
			new: svc(), allocs: "ip 10.96.0.100",
			want: allocResult{ClusterIPs: []string{"10.96.0.100"}, Families: []corev1.IPFamily{"IPv4"}, NodePorts: []int32{0}}},
		{name: "SVC-U-05 NodePort to ClusterIP frees all node ports", strategy: singleStack,
			old: stored(np), new: func() *corev1.Service {
				s := stored(np)
				s.Spec.Type, s.Spec.ExternalTrafficPolicy = "ClusterIP", ""
				return s
			}(),
			want:    allocResult{ClusterIPs: []string{"10.96.0.10"}, Families: []corev1.IPFamily{"IPv4"}, NodePorts: []int32{0, 0}},
			release: Release{NodePorts: []int{30080, 30081}}},
		{name: "SVC-U-05 a removed port frees its node port, an added one is allocated", strategy: singleStack,
			old: stored(np), new: stored(np, func(s *corev1.Service) {
				s.Spec.Ports = []corev1.ServicePort{s.Spec.Ports[0], {Name: "c", Port: 82}}
			}), allocs: "port 30100",
			want:    allocResult{ClusterIPs: []string{"10.96.0.10"}, Families: []corev1.IPFamily{"IPv4"}, NodePorts: []int32{30080, 30100}},
			release: Release{NodePorts: []int{30081}}},
		{name: "SVC-NP-06 becoming LB+Local allocates a healthCheckNodePort", strategy: singleStack,
			old: stored(np), new: stored(np, func(s *corev1.Service) { s.Spec.Type, s.Spec.ExternalTrafficPolicy = "LoadBalancer", "Local" }),
			allocs: "port 30100",
			want:   allocResult{ClusterIPs: []string{"10.96.0.10"}, Families: []corev1.IPFamily{"IPv4"}, NodePorts: []int32{30080, 30081}, HC: 30100}},
		{name: "SVC-NP-06 leaving Local frees the healthCheckNodePort", strategy: singleStack,
			old: stored(lbLocal), new: stored(lbLocal, func(s *corev1.Service) { s.Spec.ExternalTrafficPolicy = "Cluster" }),
			want:    allocResult{ClusterIPs: []string{"10.96.0.10"}, Families: []corev1.IPFamily{"IPv4"}, NodePorts: []int32{30080}},
			release: Release{NodePorts: []int{30200}}},
		{name: "SVC-F-07 upgrade to dual-stack allocates the secondary IP", strategy: dualStack,
			old: stored(), new: stored(func(s *corev1.Service) {
				s.Spec.IPFamilyPolicy = ptrTo(corev1.IPFamilyPolicyRequireDualStack)
				s.Spec.IPFamilies = nil
			}), allocs: "ip fd00::100",
			want: allocResult{ClusterIPs: []string{"10.96.0.10", "fd00::100"}, Families: []corev1.IPFamily{"IPv4", "IPv6"}, NodePorts: []int32{0}}},
		{name: "SVC-F-03 downgrade with SingleStack frees the secondary IP", strategy: dualStack,
			old: stored(dual), new: stored(dual, func(s *corev1.Service) { s.Spec.IPFamilyPolicy = ptrTo(corev1.IPFamilyPolicySingleStack) }),
			want:    allocResult{ClusterIPs: []string{"10.96.0.10"}, Families: []corev1.IPFamily{"IPv4"}, NodePorts: []int32{0}},
			release: Release{ClusterIPs: map[corev1.IPFamily]string{"IPv6": "fd00::10"}}},
		{name: "SVC-U-03 changing the clusterIP fails in validation after resolution", strategy: singleStack,
			old: stored(), new: stored(func(s *corev1.Service) { s.Spec.ClusterIP = "10.96.0.11" }),
			wantErr: `Service "web" is invalid: spec.clusterIPs[0]: Invalid value: ["10.96.0.11"]: may not change once set`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := newFakeAllocator()
			got, rel, err := update(tc.strategy, tc.new, tc.old, a)
			if errText(err) != tc.wantErr {
				t.Fatalf("error = %q, want %q", errText(err), tc.wantErr)
			}
			if err != nil {
				return
			}
			if diff := cmp.Diff(tc.want, allocOf(got)); diff != "" {
				t.Errorf("object (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.release, rel, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("release (-want +got):\n%s", diff)
			}
			if a.allocations() != tc.allocs {
				t.Errorf("allocations = %q, want %q", a.allocations(), tc.allocs)
			}
		})
	}
}

func TestReleasedOnDelete(t *testing.T) {
	tests := []struct {
		name string
		svc  *corev1.Service
		want Release
	}{
		{name: "SVC-U-06 ClusterIP frees its IP", svc: stored(), want: Release{ClusterIPs: map[corev1.IPFamily]string{"IPv4": "10.96.0.10"}}},
		{name: "SVC-U-06 LB+Local frees IP, node ports and healthCheckNodePort", svc: stored(func(s *corev1.Service) {
			s.Spec.Type, s.Spec.ExternalTrafficPolicy, s.Spec.HealthCheckNodePort = "LoadBalancer", "Local", 30200
			s.Spec.Ports[0].NodePort = 30080
		}), want: Release{ClusterIPs: map[corev1.IPFamily]string{"IPv4": "10.96.0.10"}, NodePorts: []int{30080, 30200}}},
		{name: "SVC-U-06 headless frees nothing", svc: stored(func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "None", []string{"None"} }),
			want: Release{}},
		{name: "SVC-U-06 ExternalName frees nothing", svc: svc(func(s *corev1.Service) { s.Spec.Type, s.Spec.ExternalName = "ExternalName", "example.com" }),
			want: Release{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, singleStack.ReleasedOnDelete(tc.svc), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestNeeds(t *testing.T) {
	tests := []struct {
		name                string
		svc                 *corev1.Service
		clusterIP, np, hcnp bool
	}{
		{name: "ClusterIP", svc: svc(), clusterIP: true},
		{name: "NodePort", svc: svc(func(s *corev1.Service) { s.Spec.Type = "NodePort" }), clusterIP: true, np: true},
		{name: "LoadBalancer Local", svc: svc(func(s *corev1.Service) { s.Spec.Type, s.Spec.ExternalTrafficPolicy = "LoadBalancer", "Local" }), clusterIP: true, np: true, hcnp: true},
		{name: "SVC-NP-03 LoadBalancer without node ports", svc: svc(func(s *corev1.Service) {
			s.Spec.Type, s.Spec.AllocateLoadBalancerNodePorts = "LoadBalancer", ptrTo(false)
		}), clusterIP: true},
		{name: "ExternalName", svc: svc(func(s *corev1.Service) { s.Spec.Type = "ExternalName" })},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if NeedsClusterIP(tc.svc) != tc.clusterIP || NeedsNodePorts(tc.svc) != tc.np || NeedsHealthCheckNodePort(tc.svc) != tc.hcnp {
				t.Errorf("got %v %v %v", NeedsClusterIP(tc.svc), NeedsNodePorts(tc.svc), NeedsHealthCheckNodePort(tc.svc))
			}
		})
	}
}

func TestErrRangeFullWrapped(t *testing.T) {
	if !errors.Is(ErrRangeFull, ErrRangeFull) || ErrRangeFull.Error() != "range is full" {
		t.Fatal("ErrRangeFull must read like kube's ipallocator.ErrFull")
	}
}
