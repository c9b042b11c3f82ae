package service

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestValidateServiceCreate(t *testing.T) {
	tests := []struct {
		name string
		svc  *corev1.Service
		want []string
	}{
		{name: "valid ClusterIP service", svc: stored()},
		{name: "spec names are DNS-1123 labels: 1abc is accepted (RelaxedServiceNameValidation GA)",
			svc: stored(func(s *corev1.Service) { s.Name = "1abc" })},
		{name: "SVC-V-01 name must be a DNS-1123 label", svc: stored(func(s *corev1.Service) { s.Name = "Web" }),
			want: []string{`metadata.name: Invalid value: "Web": ` + msgDNSLabel}},
		{name: "SVC-V-02 ports required", svc: stored(func(s *corev1.Service) { s.Spec.Ports = nil }),
			want: []string{"spec.ports: Required value"}},
		{name: "SVC-V-02 headless needs no ports", svc: stored(func(s *corev1.Service) {
			s.Spec.Ports, s.Spec.ClusterIP, s.Spec.ClusterIPs = nil, "None", []string{"None"}
		})},
		{name: "SVC-V-02 ExternalName needs no ports", svc: svc(func(s *corev1.Service) {
			s.Spec.Type, s.Spec.Ports, s.Spec.ExternalName = "ExternalName", nil, "example.com"
		})},
		{name: "SVC-V-03 names required with more than one port and unique", svc: stored(func(s *corev1.Service) {
			s.Spec.Ports = []corev1.ServicePort{{Name: "a", Port: 80}, {Port: 81}, {Name: "a", Port: 82}, {Name: "A_", Port: 83}}
		}), want: []string{
			"spec.ports[1].name: Required value",
			`spec.ports[2].name: Duplicate value: "a"`,
			`spec.ports[3].name: Invalid value: "A_": ` + msgDNSLabel,
		}},
		{name: "SVC-V-04 port range, protocol, targetPort and appProtocol", svc: stored(func(s *corev1.Service) {
			s.Spec.Ports = []corev1.ServicePort{{Port: 70000, Protocol: "ICMP", TargetPort: intstr.FromString("-http"), AppProtocol: ptrTo("bad proto")}}
		}), want: []string{
			"spec.ports[0].port: Invalid value: 70000: " + msgPortRange,
			`spec.ports[0].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"`,
			`spec.ports[0].targetPort: Invalid value: "-http": must not begin or end with a hyphen`,
			`spec.ports[0].appProtocol: Invalid value: "bad proto": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')`,
		}},
		{name: "SVC-V-04 targetPort number out of range", svc: stored(func(s *corev1.Service) {
			s.Spec.Ports[0].TargetPort = intstr.FromInt32(70000)
		}), want: []string{"spec.ports[0].targetPort: Invalid value: 70000: " + msgPortRange}},
		{name: "SVC-V-05 duplicate protocol/port, same port on TCP and UDP is fine", svc: stored(func(s *corev1.Service) {
			s.Spec.Ports = []corev1.ServicePort{{Name: "a", Port: 53, Protocol: "UDP"}, {Name: "b", Port: 53, Protocol: "TCP"}, {Name: "c", Port: 53, Protocol: "UDP"}}
		}), want: []string{
			`spec.ports[2]: Duplicate value: {"Name":"","Protocol":"UDP","AppProtocol":null,"Port":53,"TargetPort":0,"NodePort":0}`,
		}},
		{name: "SVC-V-05 duplicate protocol/nodePort, TCP and UDP may share", svc: stored(func(s *corev1.Service) {
			s.Spec.Type, s.Spec.ExternalTrafficPolicy = "NodePort", "Cluster"
			s.Spec.Ports = []corev1.ServicePort{{Name: "a", Port: 53, Protocol: "UDP", NodePort: 30053}, {Name: "b", Port: 53, Protocol: "TCP", NodePort: 30053},
				{Name: "c", Port: 54, Protocol: "TCP", NodePort: 30053}}
		}), want: []string{"spec.ports[2].nodePort: Duplicate value: 30053"}},
		{name: "SVC-V-06 nodePort forbidden for ClusterIP", svc: stored(func(s *corev1.Service) { s.Spec.Ports[0].NodePort = 30080 }),
			want: []string{"spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"}},
		{name: "SVC-V-07 headless LoadBalancer; port 10250 is accepted", svc: svc(func(s *corev1.Service) {
			s.Spec.Type, s.Spec.ClusterIP, s.Spec.ClusterIPs = "LoadBalancer", "None", []string{"None"}
			s.Spec.Ports[0].Port, s.Spec.Ports[0].NodePort = 10250, 30080
			s.Spec.IPFamilyPolicy = ptrTo(corev1.IPFamilyPolicySingleStack)
		}), want: []string{`spec.clusterIPs[0]: Invalid value: "None": may not be set to 'None' for LoadBalancer services`}},
		{name: "SVC-V-08 headless NodePort", svc: svc(func(s *corev1.Service) {
			s.Spec.Type, s.Spec.ClusterIP, s.Spec.ClusterIPs = "NodePort", "None", []string{"None"}
		}), want: []string{`spec.clusterIPs[0]: Invalid value: "None": may not be set to 'None' for NodePort services`}},
		{name: "SVC-V-09 ExternalName: no clusterIPs/families/policy, externalName required", svc: svc(func(s *corev1.Service) {
			s.Spec.Type = "ExternalName"
			s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.96.0.10", []string{"10.96.0.10"}
			s.Spec.IPFamilies, s.Spec.IPFamilyPolicy = []corev1.IPFamily{"IPv4"}, ptrTo(corev1.IPFamilyPolicySingleStack)
		}), want: []string{
			"spec.clusterIPs: Forbidden: may not be set for ExternalName services",
			"spec.ipFamilies: Forbidden: may not be set for ExternalName services",
			"spec.ipFamilyPolicy: Forbidden: may not be set for ExternalName services",
			"spec.externalName: Required value",
		}},
		{name: "SVC-V-09 externalName with one trailing dot and all-digit labels is valid", svc: svc(func(s *corev1.Service) {
			s.Spec.Type, s.Spec.ExternalName = "ExternalName", "1.2.3.4."
		})},
		{name: "SVC-V-09 externalName must be a DNS subdomain", svc: svc(func(s *corev1.Service) {
			s.Spec.Type, s.Spec.ExternalName = "ExternalName", "bad_name"
		}), want: []string{`spec.externalName: Invalid value: "bad_name": ` + msgDNSSubdomain}},
		{name: "SVC-V-10 selector labels validated", svc: stored(func(s *corev1.Service) { s.Spec.Selector = map[string]string{"app": "bad value!"} }),
			want: []string{`spec.selector: Invalid value: "bad value!": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')`}},
		{name: "SVC-V-11 unsupported sessionAffinity", svc: stored(func(s *corev1.Service) { s.Spec.SessionAffinity = "Sticky" }),
			want: []string{`spec.sessionAffinity: Unsupported value: "Sticky": supported values: "ClientIP", "None"`}},
		{name: "SVC-V-11 ClientIP timeout bounds", svc: stored(func(s *corev1.Service) {
			s.Spec.SessionAffinity = "ClientIP"
			s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptrTo[int32](86401)}}
		}), want: []string{"spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: 86401: must be greater than 0 and less than 86400"}},
		{name: "SVC-V-11 ClientIP needs a config (not defaulted here)", svc: func() *corev1.Service {
			s := stored()
			s.Spec.SessionAffinity = "ClientIP"
			return s
		}(), want: []string{"spec.sessionAffinityConfig: Required value: when session affinity type is ClientIP"}},
		{name: "SVC-V-11 None with a config (not defaulted here)", svc: func() *corev1.Service {
			s := stored()
			s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{}
			return s
		}(), want: []string{"spec.sessionAffinityConfig: Forbidden: must not be set when session affinity is None"}},
		{name: "SVC-V-12 clusterIPs[0] must match clusterIP", svc: stored(func(s *corev1.Service) {
			s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.96.0.10", []string{"10.96.0.11"}
		}), want: []string{`spec.clusterIPs: Invalid value: ["10.96.0.11"]: first value must match ` + "`clusterIP`"}},
		{name: "SVC-V-12 clusterIPs without clusterIP", svc: func() *corev1.Service {
			s := stored()
			s.Spec.ClusterIP = ""
			return s
		}(), want: []string{`spec.clusterIPs: Invalid value: ["10.96.0.10"]: must be empty when ` + "`clusterIP`" + ` is not specified`}},
		{name: "SVC-V-12 None only first and alone", svc: stored(func(s *corev1.Service) {
			s.Spec.ClusterIP, s.Spec.ClusterIPs = "None", []string{"None", "10.96.0.1"}
		}), want: []string{`spec.clusterIPs: Invalid value: ["None","10.96.0.1"]: 'None' must be the first and only value`}},
		{name: "SVC-V-12 invalid IPs, leading zeros rejected (StrictIPCIDRValidation)", svc: stored(func(s *corev1.Service) {
			s.Spec.ClusterIP, s.Spec.ClusterIPs = "010.96.0.1", []string{"010.96.0.1", "bad"}
			s.Spec.IPFamilies = nil
		}), want: []string{
			`spec.clusterIPs[0]: Invalid value: "010.96.0.1": must not have leading 0s`,
			`spec.clusterIPs[1]: Invalid value: "bad": ` + msgBadIP,
		}},
		{name: "SVC-V-12 at most two, one per family", svc: stored(func(s *corev1.Service) {
			s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.96.0.1", []string{"10.96.0.1", "10.96.0.2"}
			s.Spec.IPFamilies = nil
		}), want: []string{`spec.clusterIPs: Invalid value: ["10.96.0.1","10.96.0.2"]: may specify no more than one IP for each IP family`}},
		{name: "SVC-V-12 families: supported, unique, matching the IPs; policy supported", svc: stored(func(s *corev1.Service) {
			s.Spec.IPFamilies = []corev1.IPFamily{"IPv6", "IPv6", "IPv5"}
			s.Spec.IPFamilyPolicy = ptrTo(corev1.IPFamilyPolicy("Bad"))
		}), want: []string{
			`spec.ipFamilies[1]: Duplicate value: "IPv6"`,
			`spec.ipFamilies[2]: Unsupported value: "IPv5": supported values: "IPv4", "IPv6"`,
			`spec.ipFamilyPolicy: Unsupported value: "Bad": supported values: "PreferDualStack", "RequireDualStack", "SingleStack"`,
			"spec.clusterIPs[0]: Invalid value: \"10.96.0.10\": expected an IPv6 value as indicated by `ipFamilies[0]`",
		}},
		{name: "SVC-V-13 externalIPs must be valid and non-special", svc: stored(func(s *corev1.Service) {
			s.Spec.ExternalIPs = []string{"1.2.3.4", "0.0.0.0", "127.0.0.1", "169.254.1.1", "224.0.0.1", "bad"}
		}), want: []string{
			`spec.externalIPs[1]: Invalid value: "0.0.0.0": may not be unspecified (0.0.0.0)`,
			`spec.externalIPs[2]: Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)`,
			`spec.externalIPs[3]: Invalid value: "169.254.1.1": may not be in the link-local range (169.254.0.0/16, fe80::/10)`,
			`spec.externalIPs[4]: Invalid value: "224.0.0.1": may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)`,
			`spec.externalIPs[5]: Invalid value: "bad": ` + msgBadIP,
		}},
		{name: "SVC-V-14 unsupported type", svc: stored(func(s *corev1.Service) { s.Spec.Type = "Bogus" }), want: []string{
			`spec.type: Unsupported value: "Bogus": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"`,
		}},
		{name: "SVC-V-14 type required", svc: func() *corev1.Service { s := stored(); s.Spec.Type = ""; return s }(), want: []string{
			"spec.type: Required value",
		}},
		{name: "SVC-V-15 source ranges only for LoadBalancer; field path spelled LoadBalancerSourceRanges", svc: stored(func(s *corev1.Service) {
			s.Spec.LoadBalancerSourceRanges = []string{" 10.0.0.0/8 ", "10.0.0.1/8", "bad"}
		}), want: []string{
			"spec.LoadBalancerSourceRanges: Forbidden: may only be used when `type` is 'LoadBalancer'",
			`spec.LoadBalancerSourceRanges[1]: Invalid value: "10.0.0.1/8": must not have bits set beyond the prefix length`,
			`spec.LoadBalancerSourceRanges[2]: Invalid value: "bad": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)`,
		}},
		{name: "SVC-V-15 legacy annotation validated", svc: stored(func(s *corev1.Service) {
			s.Spec.Type = "LoadBalancer"
			s.Annotations = map[string]string{corev1.AnnotationLoadBalancerSourceRangesKey: "10.0.0.0/8, bad"}
		}), want: []string{
			`metadata.annotations[service.beta.kubernetes.io/load-balancer-source-ranges]: Invalid value: "bad": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)`,
		}},
		{name: "SVC-V-16 allocateLoadBalancerNodePorts only for LoadBalancer", svc: stored(func(s *corev1.Service) {
			s.Spec.AllocateLoadBalancerNodePorts = ptrTo(true)
		}), want: []string{"spec.allocateLoadBalancerNodePorts: Forbidden: may only be used when `type` is 'LoadBalancer'"}},
		{name: "SVC-V-16 allocateLoadBalancerNodePorts required for LoadBalancer (path without spec.)", svc: func() *corev1.Service {
			s := stored(func(s *corev1.Service) { s.Spec.Type = "LoadBalancer" })
			s.Spec.AllocateLoadBalancerNodePorts = nil
			return s
		}(), want: []string{"allocateLoadBalancerNodePorts: Required value"}},
		{name: "SVC-V-17 loadBalancerClass only for LoadBalancer, qualified name", svc: stored(func(s *corev1.Service) {
			s.Spec.LoadBalancerClass = ptrTo("example.com/lb")
		}), want: []string{"spec.loadBalancerClass: Forbidden: may only be used when `type` is 'LoadBalancer'"}},
		{name: "SVC-V-17 loadBalancerClass format", svc: stored(func(s *corev1.Service) {
			s.Spec.Type, s.Spec.LoadBalancerClass = "LoadBalancer", ptrTo("a/b/c")
		}), want: []string{`spec.loadBalancerClass: Invalid value: "a/b/c": a valid label key must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')`}},
		{name: "SVC-V-18 externalTrafficPolicy only for externally accessible services", svc: stored(func(s *corev1.Service) {
			s.Spec.ExternalTrafficPolicy = "Local"
		}), want: []string{`spec.externalTrafficPolicy: Invalid value: "Local": may only be set for externally-accessible services`}},
		{name: "SVC-V-18 unsupported externalTrafficPolicy", svc: stored(func(s *corev1.Service) {
			s.Spec.Type, s.Spec.ExternalTrafficPolicy = "NodePort", "Bad"
		}), want: []string{`spec.externalTrafficPolicy: Unsupported value: "Bad": supported values: "Cluster", "Local"`}},
		{name: "SVC-V-19 healthCheckNodePort only for LB+Local", svc: stored(func(s *corev1.Service) { s.Spec.HealthCheckNodePort = 30100 }),
			want: []string{"spec.healthCheckNodePort: Invalid value: 30100: may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"}},
		{name: "SVC-V-19 healthCheckNodePort required for LB+Local", svc: stored(func(s *corev1.Service) {
			s.Spec.Type, s.Spec.ExternalTrafficPolicy = "LoadBalancer", "Local"
		}), want: []string{"spec.healthCheckNodePort: Required value"}},
		{name: "SVC-V-20 internalTrafficPolicy unsupported", svc: stored(func(s *corev1.Service) {
			s.Spec.InternalTrafficPolicy = ptrTo(corev1.ServiceInternalTrafficPolicy("Bad"))
		}), want: []string{`spec.internalTrafficPolicy: Unsupported value: "Bad": supported values: "Cluster", "Local"`}},
		{name: "SVC-V-20 internalTrafficPolicy required (not defaulted here)", svc: func() *corev1.Service {
			s := stored()
			s.Spec.InternalTrafficPolicy = nil
			return s
		}(), want: []string{"spec.internalTrafficPolicy: Required value"}},
		{name: "SVC-V-20 internalTrafficPolicy tolerated on ExternalName", svc: svc(func(s *corev1.Service) {
			s.Spec.Type, s.Spec.ExternalName = "ExternalName", "example.com"
			s.Spec.InternalTrafficPolicy = ptrTo(corev1.ServiceInternalTrafficPolicyLocal)
		})},
		{name: "SVC-V-21 trafficDistribution values (PreferSameNode accepted)", svc: stored(func(s *corev1.Service) {
			s.Spec.TrafficDistribution = ptrTo("Nearest")
		}), want: []string{`spec.trafficDistribution: Unsupported value: "Nearest": supported values: "PreferClose", "PreferSameZone", "PreferSameNode"`}},
		{name: "SVC-V-21 PreferSameNode valid", svc: stored(func(s *corev1.Service) { s.Spec.TrafficDistribution = ptrTo("PreferSameNode") })},
		{name: "SVC-V-22 topology annotations must agree", svc: stored(func(s *corev1.Service) {
			s.Annotations = map[string]string{corev1.AnnotationTopologyMode: "Auto", corev1.DeprecatedAnnotationTopologyAwareHints: "auto"}
		}), want: []string{`metadata.annotations[service.kubernetes.io/topology-mode]: Invalid value: "Auto": must match annotations[service.kubernetes.io/topology-aware-hints] when both are specified`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkErrs(t, singleStack.Validate(context.Background(), tc.svc), tc.want)
		})
	}
}

func TestValidateServiceUpdate(t *testing.T) {
	dual := func(s *corev1.Service) {
		s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.96.0.10", []string{"10.96.0.10", "fd00::10"}
		s.Spec.IPFamilies = []corev1.IPFamily{"IPv4", "IPv6"}
		s.Spec.IPFamilyPolicy = ptrTo(corev1.IPFamilyPolicyRequireDualStack)
	}
	lbLocal := func(s *corev1.Service) {
		s.Spec.Type, s.Spec.ExternalTrafficPolicy, s.Spec.HealthCheckNodePort = "LoadBalancer", "Local", 30200
		s.Spec.Ports[0].NodePort = 30080
	}
	tests := []struct {
		name     string
		old, new *corev1.Service
		want     []string
	}{
		{name: "no change", old: stored(), new: stored()},
		{name: "SVC-U-03 primary clusterIP may not change", old: stored(), new: stored(func(s *corev1.Service) {
			s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.96.0.11", []string{"10.96.0.11"}
		}), want: []string{`spec.clusterIPs[0]: Invalid value: ["10.96.0.11"]: may not change once set`}},
		{name: "SVC-U-03 None to an IP is a change", old: stored(func(s *corev1.Service) {
			s.Spec.ClusterIP, s.Spec.ClusterIPs = "None", []string{"None"}
		}), new: stored(), want: []string{`spec.clusterIPs[0]: Invalid value: ["10.96.0.10"]: may not change once set`}},
		{name: "SVC-U-03 primary clusterIP can not be unset", old: stored(), new: func() *corev1.Service {
			s := stored()
			s.Spec.ClusterIP, s.Spec.ClusterIPs = "", nil
			return s
		}(), want: []string{"spec.clusterIPs[0]: Invalid value: null: primary clusterIP can not be unset"}},
		{name: "SVC-U-03 releasing the secondary IP requires SingleStack", old: stored(dual), new: stored(dual, func(s *corev1.Service) {
			s.Spec.ClusterIPs = []string{"10.96.0.10"}
			s.Spec.IPFamilies = []corev1.IPFamily{"IPv4"}
		}), want: []string{
			`spec.ipFamilyPolicy: Invalid value: "RequireDualStack": must be set to 'SingleStack' when releasing the secondary clusterIP`,
			`spec.ipFamilyPolicy: Invalid value: "RequireDualStack": must be set to 'SingleStack' when releasing the secondary ipFamily`,
		}},
		{name: "SVC-U-03 downgrade with SingleStack is fine", old: stored(dual), new: stored(dual, func(s *corev1.Service) {
			s.Spec.ClusterIPs = []string{"10.96.0.10"}
			s.Spec.IPFamilies = []corev1.IPFamily{"IPv4"}
			s.Spec.IPFamilyPolicy = ptrTo(corev1.IPFamilyPolicySingleStack)
		})},
		{name: "SVC-U-03 upgrade keeps the primary", old: stored(), new: stored(dual)},
		{name: "SVC-U-03 primary family may not change", old: stored(), new: stored(func(s *corev1.Service) {
			s.Spec.IPFamilies = []corev1.IPFamily{"IPv6"}
		}), want: []string{
			`spec.ipFamilies[0]: Invalid value: ["IPv6"]: may not change once set`,
			"spec.clusterIPs[0]: Invalid value: \"10.96.0.10\": expected an IPv6 value as indicated by `ipFamilies[0]`",
		}},
		{name: "SVC-U-03 headless may change families", old: stored(func(s *corev1.Service) {
			s.Spec.ClusterIP, s.Spec.ClusterIPs = "None", []string{"None"}
		}), new: stored(func(s *corev1.Service) {
			s.Spec.ClusterIP, s.Spec.ClusterIPs = "None", []string{"None"}
			s.Spec.IPFamilies = []corev1.IPFamily{"IPv6"}
		})},
		{name: "SVC-U-03 switching to ExternalName skips the clusterIP rules", old: stored(), new: svc(func(s *corev1.Service) {
			s.Spec.Type, s.Spec.ExternalName = "ExternalName", "example.com"
		})},
		{name: "SVC-V-19 healthCheckNodePort immutable while LB+Local", old: stored(lbLocal), new: stored(lbLocal, func(s *corev1.Service) {
			s.Spec.HealthCheckNodePort = 30201
		}), want: []string{"spec.healthCheckNodePort: Forbidden: field is immutable"}},
		{name: "SVC-V-17 loadBalancerClass immutable while LoadBalancer", old: stored(func(s *corev1.Service) {
			s.Spec.Type, s.Spec.LoadBalancerClass = "LoadBalancer", ptrTo("example.com/a")
		}), new: stored(func(s *corev1.Service) {
			s.Spec.Type, s.Spec.LoadBalancerClass = "LoadBalancer", ptrTo("example.com/b")
		}), want: []string{`spec.loadBalancerClass: Invalid value: "example.com/b": may not change once set`}},
		{name: "SVC-V-13 stored non-strict externalIPs are tolerated, new ones are not", old: stored(func(s *corev1.Service) {
			s.Spec.ExternalIPs = []string{"01.2.3.4"}
		}), new: stored(func(s *corev1.Service) { s.Spec.ExternalIPs = []string{"01.2.3.4", "02.2.3.4"} }),
			want: []string{`spec.externalIPs[1]: Invalid value: "02.2.3.4": must not have leading 0s`}},
		{name: "metadata: name immutable", old: stored(), new: stored(func(s *corev1.Service) { s.Name = "other" }),
			want: []string{`metadata.name: Invalid value: "other": field is immutable`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkErrs(t, singleStack.ValidateUpdate(context.Background(), tc.new, tc.old), tc.want)
		})
	}
}

func TestValidateServiceStatusUpdate(t *testing.T) {
	vip, bad := corev1.LoadBalancerIPModeVIP, corev1.LoadBalancerIPMode("Bad")
	lb := func(s *corev1.Service) { s.Spec.Type = "LoadBalancer" }
	tests := []struct {
		name    string
		svc     *corev1.Service
		ingress []corev1.LoadBalancerIngress
		want    []string
	}{
		{name: "SVC-V-23 valid ingress", svc: stored(lb), ingress: []corev1.LoadBalancerIngress{{IP: "1.2.3.4", IPMode: &vip}, {Hostname: "lb.example.com"}}},
		{name: "SVC-V-23 ingress only for LoadBalancer", svc: stored(), ingress: []corev1.LoadBalancerIngress{{IP: "1.2.3.4", IPMode: &vip}},
			want: []string{"status.loadBalancer.ingress: Forbidden: may only be used when `spec.type` is 'LoadBalancer'"}},
		{name: "SVC-V-23 ip, ipMode and hostname rules", svc: stored(lb), ingress: []corev1.LoadBalancerIngress{
			{IP: "bad"}, {Hostname: "1.2.3.4", IPMode: &vip}, {IP: "1.2.3.4", IPMode: &bad}, {Hostname: "Bad_"}},
			want: []string{
				`status.loadBalancer.ingress[0].ip: Invalid value: "bad": ` + msgBadIP,
				"status.loadBalancer.ingress[0].ipMode: Required value: must be specified when `ip` is set",
				"status.loadBalancer.ingress[1].ipMode: Forbidden: may not be specified when `ip` is not set",
				`status.loadBalancer.ingress[1].hostname: Invalid value: "1.2.3.4": must be a DNS name, not an IP address`,
				`status.loadBalancer.ingress[2].ipMode: Unsupported value: "Bad": supported values: "Proxy", "VIP"`,
				`status.loadBalancer.ingress[3].hostname: Invalid value: "Bad_": ` + msgDNSSubdomain,
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			old := tc.svc.DeepCopy()
			nw := tc.svc.DeepCopy()
			nw.Status.LoadBalancer.Ingress = tc.ingress
			nw.Spec.Type = "ClusterIP" // a status write cannot change the spec
			StatusStrategy{}.PrepareForUpdate(context.Background(), nw, old)
			if nw.Spec.Type != old.Spec.Type {
				t.Fatalf("status update changed spec.type to %q", nw.Spec.Type)
			}
			checkErrs(t, StatusStrategy{}.ValidateUpdate(context.Background(), nw, old), tc.want)
		})
	}
}

func TestWarnings(t *testing.T) {
	tests := []struct {
		name string
		svc  *corev1.Service
		want string
	}{
		{name: "none", svc: stored()},
		{name: "externalIPs deprecated, non-canonical IP", svc: stored(func(s *corev1.Service) { s.Spec.ExternalIPs = []string{"::ffff:1.2.3.4"} }),
			want: `spec.externalIPs[0]: non-standard IP address "::ffff:1.2.3.4" is invalid: use "1.2.3.4"|spec.externalIPs is deprecated and may no longer be implemented in some clusters`},
		{name: "headless ignores affinity", svc: stored(func(s *corev1.Service) {
			s.Spec.ClusterIP, s.Spec.ClusterIPs, s.Spec.SessionAffinity = "None", []string{"None"}, "ClientIP"
		}), want: "spec.SessionAffinity is ignored for headless services"},
		{name: "externalName ignored on ClusterIP; PreferClose deprecated", svc: stored(func(s *corev1.Service) {
			s.Spec.ExternalName, s.Spec.TrafficDistribution = "example.com", ptrTo("PreferClose")
		}), want: `spec.externalName is ignored when spec.type is not "ExternalName"|spec.trafficDistribution: "PreferClose" is deprecated; use "PreferSameZone"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := strings.Join(singleStack.WarningsOnCreate(context.Background(), tc.svc), "|")
			if got != tc.want {
				t.Errorf("warnings = %q, want %q", got, tc.want)
			}
		})
	}
}
