package service

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

type famResult struct {
	Policy     string
	Families   []corev1.IPFamily
	ClusterIPs []string
}

func resultOf(s *corev1.Service) famResult {
	r := famResult{Families: s.Spec.IPFamilies, ClusterIPs: s.Spec.ClusterIPs}
	if s.Spec.IPFamilyPolicy != nil {
		r.Policy = string(*s.Spec.IPFamilyPolicy)
	}
	return r
}

func statusCauses(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	se, ok := err.(*apierrors.StatusError)
	if !ok {
		t.Fatalf("error %v is a %T, want *StatusError", err, err)
	}
	var out []string
	if se.ErrStatus.Details == nil {
		return []string{se.ErrStatus.Message}
	}
	for _, c := range se.ErrStatus.Details.Causes {
		out = append(out, c.Field+": "+c.Message)
	}
	return out
}

func TestResolveIPFamilies(t *testing.T) {
	v4, v6 := corev1.IPv4Protocol, corev1.IPv6Protocol
	policy := func(p corev1.IPFamilyPolicy) func(*corev1.Service) {
		return func(s *corev1.Service) { s.Spec.IPFamilyPolicy = &p }
	}
	families := func(f ...corev1.IPFamily) func(*corev1.Service) {
		return func(s *corev1.Service) { s.Spec.IPFamilies = f }
	}
	ips := func(ips ...string) func(*corev1.Service) {
		return func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = ips[0], ips }
	}
	headless := ips("None")
	noSelector := func(s *corev1.Service) { s.Spec.Selector = nil }
	tests := []struct {
		name      string
		strategy  *Strategy
		svc, old  *corev1.Service
		want      famResult
		wantCause []string
	}{
		{name: "SVC-F-01 ExternalName untouched", strategy: singleStack, svc: svc(func(s *corev1.Service) {
			s.Spec.Type, s.Spec.ExternalName = "ExternalName", "example.com"
		})},
		{name: "SVC-F-02/07 default SingleStack with the primary family (IPv4)", strategy: singleStack, svc: svc(),
			want: famResult{Policy: "SingleStack", Families: []corev1.IPFamily{v4}}},
		{name: "SVC-F-07 primary family of an IPv6 cluster", strategy: v6Stack, svc: svc(),
			want: famResult{Policy: "SingleStack", Families: []corev1.IPFamily{v6}}},
		{name: "SVC-F-07 PreferDualStack on dual-stack cluster gets both families", strategy: dualStack, svc: svc(policy("PreferDualStack")),
			want: famResult{Policy: "PreferDualStack", Families: []corev1.IPFamily{v4, v6}}},
		{name: "SVC-F-07 PreferDualStack on single-stack cluster stays single", strategy: singleStack, svc: svc(policy("PreferDualStack")),
			want: famResult{Policy: "PreferDualStack", Families: []corev1.IPFamily{v4}}},
		{name: "SVC-F-07 secondary-first families on dual-stack", strategy: dualStack, svc: svc(policy("RequireDualStack"), families(v6)),
			want: famResult{Policy: "RequireDualStack", Families: []corev1.IPFamily{v6, v4}}},
		{name: "SVC-F-06 RequireDualStack on a single-stack cluster", strategy: singleStack, svc: svc(policy("RequireDualStack")),
			wantCause: []string{`spec.ipFamilyPolicy: Invalid value: "RequireDualStack": this cluster is not configured for dual-stack services`}},
		{name: "SVC-F-06 requested family not configured", strategy: singleStack, svc: svc(families(v6)),
			wantCause: []string{`spec.ipFamilies[0]: Invalid value: "IPv6": not configured on this cluster`}},
		{name: "SVC-F-04 family inferred from clusterIP", strategy: dualStack, svc: svc(ips("fd00::10")),
			want: famResult{Policy: "SingleStack", Families: []corev1.IPFamily{v6}, ClusterIPs: []string{"fd00::10"}}},
		{name: "SVC-F-04 clusterIP of an unconfigured family", strategy: singleStack, svc: svc(ips("fd00::10")),
			wantCause: []string{`spec.clusterIPs[0]: Invalid value: ["fd00::10"]: IPv6 is not configured on this cluster`}},
		{name: "SVC-F-03 SingleStack with two IPs and two families", strategy: dualStack, svc: svc(policy("SingleStack"), ips("10.96.0.10", "fd00::10"), families(v4, v6)),
			wantCause: []string{
				`spec.ipFamilyPolicy: Invalid value: "SingleStack": must be 'RequireDualStack' or 'PreferDualStack' when multiple cluster IPs are specified`,
				`spec.ipFamilyPolicy: Invalid value: "SingleStack": must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families are specified`,
			}},
		{name: "SVC-V-12 pre-check: invalid clusterIPs fail before resolution", strategy: singleStack, svc: svc(ips("bad")),
			wantCause: []string{`spec.clusterIPs[0]: Invalid value: "bad": ` + msgBadIP}},
		{name: "SVC-F-05 headless selectorless defaults to RequireDualStack with both families, even single-stack", strategy: singleStack,
			svc: svc(headless, noSelector), want: famResult{Policy: "RequireDualStack", Families: []corev1.IPFamily{v4, v6}, ClusterIPs: []string{"None"}}},
		{name: "SVC-F-05 headless selectorless SingleStack keeps one family", strategy: singleStack,
			svc: svc(headless, noSelector, policy("SingleStack")), want: famResult{Policy: "SingleStack", Families: []corev1.IPFamily{v4}, ClusterIPs: []string{"None"}}},
		{name: "SVC-F-05 headless with selector is SingleStack", strategy: singleStack, svc: svc(headless),
			want: famResult{Policy: "SingleStack", Families: []corev1.IPFamily{v4}, ClusterIPs: []string{"None"}}},
		{name: "SVC-F-02 update keeps the old policy", strategy: dualStack,
			old: stored(policy("PreferDualStack")), svc: svc(ips("10.96.0.10"), families(v4)),
			want: famResult{Policy: "PreferDualStack", Families: []corev1.IPFamily{v4, v6}, ClusterIPs: []string{"10.96.0.10"}}},
		{name: "SVC-F-08 PreferDualStack is not upgraded when nothing changed", strategy: dualStack,
			old: stored(policy("PreferDualStack")), svc: stored(policy("PreferDualStack")),
			want: famResult{Policy: "PreferDualStack", Families: []corev1.IPFamily{v4}, ClusterIPs: []string{"10.96.0.10"}}},
		{name: "SVC-F-03 SingleStack on unchanged dual lists downgrades silently", strategy: dualStack,
			old:  stored(policy("RequireDualStack"), ips("10.96.0.10", "fd00::10"), families(v4, v6)),
			svc:  stored(policy("SingleStack"), ips("10.96.0.10", "fd00::10"), families(v4, v6)),
			want: famResult{Policy: "SingleStack", Families: []corev1.IPFamily{v4}, ClusterIPs: []string{"10.96.0.10"}}},
		{name: "SVC-U-03 reducing lists without SingleStack", strategy: dualStack,
			old: stored(policy("RequireDualStack"), ips("10.96.0.10", "fd00::10"), families(v4, v6)),
			svc: stored(policy("RequireDualStack"), ips("10.96.0.10"), families(v4)),
			wantCause: []string{
				`spec.ipFamilyPolicy: Invalid value: "RequireDualStack": must be 'SingleStack' to release the secondary cluster IP`,
				`spec.ipFamilyPolicy: Invalid value: "RequireDualStack": must be 'SingleStack' to release the secondary IP family`,
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.svc.DeepCopy()
			err := tc.strategy.ResolveIPFamilies(s, tc.old)
			if diff := cmp.Diff(tc.wantCause, statusCauses(t, err)); diff != "" {
				t.Fatalf("causes (-want +got):\n%s", diff)
			}
			if err != nil {
				if !apierrors.IsInvalid(err) {
					t.Errorf("error %v is not 422 Invalid", err)
				}
				return
			}
			if diff := cmp.Diff(tc.want, resultOf(s)); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNormalizeClusterIPs(t *testing.T) {
	tests := []struct {
		name           string
		old            *corev1.Service
		clusterIP      string
		clusterIPs     []string
		wantClusterIPs []string
	}{
		{name: "SVC-U-02 create: lone clusterIP becomes clusterIPs", clusterIP: "10.96.0.10", wantClusterIPs: []string{"10.96.0.10"}},
		{name: "SVC-U-02 create: nothing given stays empty"},
		{name: "SVC-U-02 update: omitted clusterIPs kept", old: stored(), clusterIP: "10.96.0.10", wantClusterIPs: []string{"10.96.0.10"}},
		{name: "SVC-U-02 update: cleared clusterIP with unchanged clusterIPs clears them", old: stored(), clusterIP: "",
			clusterIPs: []string{"10.96.0.10"}},
		{name: "SVC-U-02 update: changed clusterIP with unchanged clusterIPs follows", old: stored(), clusterIP: "10.96.0.11",
			clusterIPs: []string{"10.96.0.10"}, wantClusterIPs: []string{"10.96.0.11"}},
		{name: "SVC-U-02 update: both changed are left for validation", old: stored(), clusterIP: "10.96.0.11",
			clusterIPs: []string{"10.96.0.12"}, wantClusterIPs: []string{"10.96.0.12"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := svc(func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = tc.clusterIP, tc.clusterIPs })
			NormalizeClusterIPs(s, tc.old)
			if diff := cmp.Diff(tc.wantClusterIPs, s.Spec.ClusterIPs); diff != "" {
				t.Errorf("clusterIPs (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPatchAllocatedValues(t *testing.T) {
	np := func(s *corev1.Service) {
		s.Spec.Type = "NodePort"
		s.Spec.Ports = []corev1.ServicePort{{Name: "a", Port: 80, NodePort: 30080}, {Name: "b", Port: 81, NodePort: 30081}}
	}
	lbLocal := func(s *corev1.Service) {
		s.Spec.Type, s.Spec.ExternalTrafficPolicy, s.Spec.HealthCheckNodePort = "LoadBalancer", "Local", 30200
	}
	tests := []struct {
		name      string
		old       *corev1.Service
		new       *corev1.Service
		wantIP    string
		wantPorts []int32
		wantHC    int32
	}{
		{name: "SVC-U-01 re-applied manifest gets clusterIP back", old: stored(), new: svc(), wantIP: "10.96.0.10", wantPorts: []int32{0}},
		{name: "SVC-U-01 nodePorts copied by port name", old: stored(np), new: svc(np, func(s *corev1.Service) {
			s.Spec.Ports = []corev1.ServicePort{{Name: "b", Port: 81}, {Name: "a", Port: 80}}
		}), wantIP: "10.96.0.10", wantPorts: []int32{30081, 30080}},
		{name: "SVC-U-01 nodePort not copied when another port uses it in old and new", old: stored(np), new: svc(np, func(s *corev1.Service) {
			s.Spec.Ports = []corev1.ServicePort{{Name: "a", Port: 80}, {Name: "c", Port: 82, NodePort: 30080}}
		}), wantIP: "10.96.0.10", wantPorts: []int32{0, 30080}},
		{name: "SVC-U-01 no nodePorts copied when becoming ClusterIP", old: stored(np), new: svc(), wantIP: "10.96.0.10", wantPorts: []int32{0}},
		{name: "SVC-U-01 healthCheckNodePort copied while LB+Local", old: stored(lbLocal), new: svc(lbLocal, func(s *corev1.Service) { s.Spec.HealthCheckNodePort = 0 }),
			wantIP: "10.96.0.10", wantPorts: []int32{0}, wantHC: 30200},
		{name: "SVC-U-01 nothing copied into ExternalName", old: stored(), new: svc(func(s *corev1.Service) {
			s.Spec.Type, s.Spec.ExternalName = "ExternalName", "example.com"
		}), wantPorts: []int32{0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			PatchAllocatedValues(tc.new, tc.old)
			var ports []int32
			for _, p := range tc.new.Spec.Ports {
				ports = append(ports, p.NodePort)
			}
			got := struct {
				IP    string
				Ports []int32
				HC    int32
			}{tc.new.Spec.ClusterIP, ports, tc.new.Spec.HealthCheckNodePort}
			want := struct {
				IP    string
				Ports []int32
				HC    int32
			}{tc.wantIP, tc.wantPorts, tc.wantHC}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestDropTypeDependentFields(t *testing.T) {
	vip := corev1.LoadBalancerIPModeVIP
	lb := func(s *corev1.Service) {
		s.Spec.Type, s.Spec.ExternalTrafficPolicy, s.Spec.HealthCheckNodePort = "LoadBalancer", "Local", 30200
		s.Spec.LoadBalancerClass = ptrTo("example.com/lb")
		s.Spec.Ports[0].NodePort = 30080
		s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "1.2.3.4", IPMode: &vip}}
	}
	toClusterIP := func(s *corev1.Service) { s.Spec.Type = "ClusterIP" }
	toExternalName := func(s *corev1.Service) { s.Spec.Type, s.Spec.ExternalName = "ExternalName", "example.com" }
	tests := []struct {
		name  string
		old   *corev1.Service
		new   func(old *corev1.Service) *corev1.Service
		check func(t *testing.T, s *corev1.Service)
	}{
		{name: "SVC-U-04 LoadBalancer to ClusterIP wipes untouched LB fields and status", old: stored(lb),
			new: func(old *corev1.Service) *corev1.Service { s := old.DeepCopy(); toClusterIP(s); return s },
			check: func(t *testing.T, s *corev1.Service) {
				if s.Spec.Ports[0].NodePort != 0 || s.Spec.HealthCheckNodePort != 0 || s.Spec.AllocateLoadBalancerNodePorts != nil ||
					s.Spec.LoadBalancerClass != nil || s.Spec.ExternalTrafficPolicy != "" || len(s.Status.LoadBalancer.Ingress) != 0 {
					t.Errorf("fields not wiped: %+v %+v", s.Spec, s.Status)
				}
				if s.Spec.ClusterIP != "10.96.0.10" || s.Spec.Selector == nil {
					t.Errorf("clusterIP or selector wiped: %+v", s.Spec)
				}
			}},
		{name: "SVC-U-04 new nodePort values are kept (validation rejects them)", old: stored(lb),
			new: func(old *corev1.Service) *corev1.Service {
				s := old.DeepCopy()
				toClusterIP(s)
				s.Spec.Ports[0].NodePort = 30099
				return s
			},
			check: func(t *testing.T, s *corev1.Service) {
				if s.Spec.Ports[0].NodePort != 30099 {
					t.Errorf("nodePort = %d, want 30099 kept", s.Spec.Ports[0].NodePort)
				}
			}},
		{name: "SVC-U-04 to ExternalName wipes untouched clusterIPs, families and policy", old: stored(),
			new: func(old *corev1.Service) *corev1.Service { s := old.DeepCopy(); toExternalName(s); return s },
			check: func(t *testing.T, s *corev1.Service) {
				if s.Spec.ClusterIP != "" || s.Spec.ClusterIPs != nil || s.Spec.IPFamilies != nil || s.Spec.IPFamilyPolicy != nil {
					t.Errorf("clusterIP fields not wiped: %+v", s.Spec)
				}
			}},
		{name: "SVC-U-04 to ExternalName keeps a changed clusterIP (validation rejects it)", old: stored(),
			new: func(old *corev1.Service) *corev1.Service {
				s := old.DeepCopy()
				toExternalName(s)
				s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.96.0.11", []string{"10.96.0.11"}
				return s
			},
			check: func(t *testing.T, s *corev1.Service) {
				if s.Spec.ClusterIP != "10.96.0.11" || s.Spec.IPFamilies != nil {
					t.Errorf("got %+v", s.Spec)
				}
			}},
		{name: "SVC-U-04 Local ETP kept while still externally accessible", old: stored(lb),
			new: func(old *corev1.Service) *corev1.Service { s := old.DeepCopy(); s.Spec.Type = "NodePort"; return s },
			check: func(t *testing.T, s *corev1.Service) {
				if s.Spec.ExternalTrafficPolicy != "Local" || s.Spec.HealthCheckNodePort != 0 || s.Spec.Ports[0].NodePort != 30080 {
					t.Errorf("got %+v", s.Spec)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.new(tc.old)
			singleStack.PrepareForUpdate(t.Context(), s, tc.old)
			tc.check(t, s)
		})
	}
}

func TestDefaultOnRead(t *testing.T) {
	tests := []struct {
		name     string
		strategy *Strategy
		in       *corev1.Service
		want     famResult
		wantITP  bool
	}{
		{name: "pre-dual-stack object gets clusterIPs, families and policy", strategy: singleStack, in: func() *corev1.Service {
			s := svc()
			s.Spec.ClusterIP = "10.96.0.10"
			return s
		}(), want: famResult{Policy: "SingleStack", Families: []corev1.IPFamily{"IPv4"}, ClusterIPs: []string{"10.96.0.10"}}, wantITP: true},
		{name: "headless selectorless reads as RequireDualStack", strategy: v6Stack, in: func() *corev1.Service {
			s := svc()
			s.Spec.ClusterIP, s.Spec.Selector = "None", nil
			return s
		}(), want: famResult{Policy: "RequireDualStack", Families: []corev1.IPFamily{"IPv6", "IPv4"}, ClusterIPs: []string{"None"}}, wantITP: true},
		{name: "ExternalName hides internalTrafficPolicy", strategy: singleStack, in: func() *corev1.Service {
			s := stored()
			s.Spec.Type, s.Spec.ClusterIP, s.Spec.ClusterIPs, s.Spec.IPFamilies, s.Spec.IPFamilyPolicy = "ExternalName", "", nil, nil, nil
			return s
		}()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.strategy.DefaultOnRead(tc.in)
			if diff := cmp.Diff(tc.want, resultOf(tc.in)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if (tc.in.Spec.InternalTrafficPolicy != nil) != tc.wantITP {
				t.Errorf("internalTrafficPolicy = %v, want set=%v", tc.in.Spec.InternalTrafficPolicy, tc.wantITP)
			}
		})
	}
}
