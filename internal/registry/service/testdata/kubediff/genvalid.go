package kubediff

import (
	"math/rand"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func genValidService(r *rand.Rand) *corev1.Service {
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "svc", Namespace: "default", ResourceVersion: "1"}}
	s.Spec.Type = pick(r, corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeExternalName)
	n := 1 + r.Intn(3)
	for i := 0; i < n; i++ {
		p := corev1.ServicePort{Name: []string{"a", "b", "c"}[i], Port: pick(r, int32(80), 53, 443, 8080), Protocol: pick(r, corev1.ProtocolTCP, corev1.ProtocolUDP)}
		if s.Spec.Type != corev1.ServiceTypeClusterIP && r.Intn(3) == 0 {
			p.NodePort = pick(r, int32(30002), 30003, 30010, 30001, 40000)
		}
		s.Spec.Ports = append(s.Spec.Ports, p)
	}
	if r.Intn(2) == 0 {
		s.Spec.Selector = map[string]string{"app": "x"}
	}
	if s.Spec.Type == corev1.ServiceTypeExternalName {
		s.Spec.ExternalName = "example.com"
	} else {
		switch r.Intn(6) {
		case 0:
			s.Spec.ClusterIP = pick(r, "10.96.0.7", "fd00::7", "10.96.0.10", "10.1.0.1")
		case 1:
			if s.Spec.Type == corev1.ServiceTypeClusterIP {
				s.Spec.ClusterIP = "None"
			}
		case 2:
			s.Spec.ClusterIP = "10.96.0.6"
			s.Spec.ClusterIPs = pick(r, []string{"10.96.0.6"}, []string{"10.96.0.6", "fd00::6"})
		}
		if r.Intn(3) == 0 {
			s.Spec.IPFamilies = pick(r, []corev1.IPFamily{"IPv4"}, []corev1.IPFamily{"IPv6"}, []corev1.IPFamily{"IPv4", "IPv6"}, []corev1.IPFamily{"IPv6", "IPv4"})
		}
		if r.Intn(3) == 0 {
			s.Spec.IPFamilyPolicy = ptr(pick(r, corev1.IPFamilyPolicySingleStack, corev1.IPFamilyPolicyPreferDualStack, corev1.IPFamilyPolicyRequireDualStack))
		}
	}
	if s.Spec.Type == corev1.ServiceTypeLoadBalancer || s.Spec.Type == corev1.ServiceTypeNodePort {
		if r.Intn(2) == 0 {
			s.Spec.ExternalTrafficPolicy = "Local"
			if r.Intn(3) == 0 {
				s.Spec.HealthCheckNodePort = pick(r, int32(30014), 30001)
			}
		}
	}
	if s.Spec.Type == corev1.ServiceTypeLoadBalancer && r.Intn(3) == 0 {
		s.Spec.AllocateLoadBalancerNodePorts = ptr(false)
	}
	return s
}
