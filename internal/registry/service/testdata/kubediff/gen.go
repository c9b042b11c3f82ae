package kubediff

import (
	"math/rand"
	"os"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func pick[T any](r *rand.Rand, xs ...T) T { return xs[r.Intn(len(xs))] }
func ptr[T any](v T) *T                   { return &v }

func genService(r *rand.Rand) *corev1.Service {
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{
		Name: pick(r, "web", "1abc", "Web", "a-b", "x", "web-"), Namespace: "default", ResourceVersion: "1",
	}}
	if r.Intn(4) == 0 {
		s.Annotations = map[string]string{}
		if r.Intn(2) == 0 {
			s.Annotations[corev1.AnnotationTopologyMode] = pick(r, "Auto", "auto")
		}
		if r.Intn(2) == 0 {
			s.Annotations[corev1.DeprecatedAnnotationTopologyAwareHints] = pick(r, "Auto", "auto")
		}
		if r.Intn(2) == 0 {
			s.Annotations[corev1.AnnotationLoadBalancerSourceRangesKey] = pick(r, "10.0.0.0/8", " 10.0.0.0/8 , 1.2.3.4/32", "bad", "", "010.0.0.0/8")
		}
	}
	s.Spec.Type = pick(r, corev1.ServiceType(""), corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeExternalName, "Bogus")
	nports := pick(r, 0, 1, 1, 2, 2, 3)
	for i := 0; i < nports; i++ {
		p := corev1.ServicePort{
			Name:     pick(r, "", "http", "http", "Http", "dns", "a_b", "p"+string(rune('a'+i))),
			Protocol: pick(r, corev1.Protocol(""), corev1.ProtocolTCP, corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP, "ICMP"),
			Port:     pick(r, int32(80), 80, 53, 443, 0, 70000, -1),
		}
		switch r.Intn(6) {
		case 0:
			p.TargetPort = intstr.FromInt32(pick(r, int32(8080), 0, 70000))
		case 1:
			p.TargetPort = intstr.FromString(pick(r, "http", "", "-bad", "toolongportname1", "8080"))
		}
		if r.Intn(3) == 0 {
			p.NodePort = pick(r, int32(30001), 30001, 30002, 70000)
		}
		if r.Intn(5) == 0 {
			p.AppProtocol = ptr(pick(r, "http", "kubernetes.io/h2c", "bad proto", ""))
		}
		s.Spec.Ports = append(s.Spec.Ports, p)
	}
	if r.Intn(3) > 0 {
		s.Spec.Selector = map[string]string{pick(r, "app", "bad key!", "a/b/c"): pick(r, "web", "bad value!")}
	}
	switch r.Intn(8) {
	case 0:
		s.Spec.ClusterIP = "None"
	case 1:
		s.Spec.ClusterIP = pick(r, "10.96.0.10", "fd00::10", "bad", "010.96.0.1", "")
	case 2:
		s.Spec.ClusterIP = pick(r, "10.96.0.10", "None", "")
		s.Spec.ClusterIPs = pick(r, []string{"10.96.0.10"}, []string{"10.96.0.10", "fd00::10"}, []string{"None"}, []string{"None", "10.1.1.1"},
			[]string{"10.96.0.10", "10.96.0.11"}, []string{"a", "b", "c"}, []string{"fd00::10", "10.96.0.10"})
	}
	if r.Intn(4) == 0 {
		s.Spec.IPFamilies = pick(r, []corev1.IPFamily{"IPv4"}, []corev1.IPFamily{"IPv6"}, []corev1.IPFamily{"IPv4", "IPv6"}, []corev1.IPFamily{"IPv4", "IPv4"}, []corev1.IPFamily{"IPv5"})
	}
	if r.Intn(4) == 0 {
		s.Spec.IPFamilyPolicy = ptr(pick(r, corev1.IPFamilyPolicySingleStack, corev1.IPFamilyPolicyPreferDualStack, corev1.IPFamilyPolicyRequireDualStack, "Bad"))
	}
	s.Spec.SessionAffinity = pick(r, corev1.ServiceAffinity(""), "None", "ClientIP", "Sticky")
	if r.Intn(3) == 0 {
		switch r.Intn(4) {
		case 0:
			s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{}
		case 1:
			s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{}}
		default:
			s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr(pick(r, int32(0), 100, 86400, 86401, -5))}}
		}
	}
	if r.Intn(4) == 0 {
		s.Spec.ExternalIPs = pick(r, []string{"1.2.3.4"}, []string{"127.0.0.1", "0.0.0.0"}, []string{"169.254.1.1", "224.0.0.1", "fe80::1"}, []string{"bad"}, []string{"01.2.3.4"})
	}
	if r.Intn(4) == 0 {
		s.Spec.ExternalTrafficPolicy = pick(r, corev1.ServiceExternalTrafficPolicy("Local"), "Cluster", "Bad")
	}
	if r.Intn(4) == 0 {
		s.Spec.InternalTrafficPolicy = ptr(pick(r, corev1.ServiceInternalTrafficPolicy("Local"), "Cluster", "Bad"))
	}
	if r.Intn(4) == 0 {
		s.Spec.HealthCheckNodePort = pick(r, int32(30100), 70000, -1)
	}
	if r.Intn(5) == 0 {
		s.Spec.LoadBalancerSourceRanges = pick(r, []string{"10.0.0.0/8"}, []string{" 10.0.0.0/8 "}, []string{"bad"}, []string{"10.0.0.1/8"})
	}
	if r.Intn(5) == 0 {
		s.Spec.AllocateLoadBalancerNodePorts = ptr(r.Intn(2) == 0)
	}
	if r.Intn(5) == 0 {
		s.Spec.LoadBalancerClass = ptr(pick(r, "example.com/lb", "bad class!", ""))
	}
	if r.Intn(4) == 0 {
		s.Spec.ExternalName = pick(r, "example.com", "example.com.", "bad_name", "", ".", "1.2.3.4")
	}
	if r.Intn(5) == 0 {
		s.Spec.TrafficDistribution = ptr(pick(r, "PreferClose", "PreferSameZone", "PreferSameNode", "Bad"))
	}
	if r.Intn(5) == 0 {
		s.Spec.LoadBalancerIP = pick(r, "1.2.3.4", "01.2.3.4")
	}
	if r.Intn(5) == 0 {
		ing := corev1.LoadBalancerIngress{IP: pick(r, "", "1.2.3.4", "bad", "01.2.3.4"), Hostname: pick(r, "", "lb.example.com", "1.2.3.4", "Bad_")}
		if r.Intn(2) == 0 {
			ing.IPMode = ptr(pick(r, corev1.LoadBalancerIPModeVIP, corev1.LoadBalancerIPModeProxy, "Bad"))
		}
		s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{ing}
	}
	return s
}

func seedFromEnv(def int64) int64 {
	if s := os.Getenv("KUBEDIFF_SEED"); s != "" {
		if v, err := strconv.ParseInt(s, 10, 64); err == nil {
			return v
		}
	}
	return def
}
