package service

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestSetDefaults(t *testing.T) {
	cluster, local := corev1.ServiceInternalTrafficPolicyCluster, corev1.ServiceInternalTrafficPolicyLocal
	vip := corev1.LoadBalancerIPModeVIP
	tests := []struct {
		name string
		in   corev1.ServiceSpec
		st   corev1.ServiceStatus
		want corev1.ServiceSpec
		wst  corev1.ServiceStatus
	}{
		{
			name: "SVC-D-1 sessionAffinity defaults to None, SVC-D-3 type ClusterIP, SVC-D-6 ITP Cluster",
			in:   corev1.ServiceSpec{},
			want: corev1.ServiceSpec{SessionAffinity: "None", Type: "ClusterIP", InternalTrafficPolicy: &cluster},
		},
		{
			name: "SVC-D-1 None drops sessionAffinityConfig",
			in:   corev1.ServiceSpec{Type: "ClusterIP", SessionAffinityConfig: &corev1.SessionAffinityConfig{}},
			want: corev1.ServiceSpec{SessionAffinity: "None", Type: "ClusterIP", InternalTrafficPolicy: &cluster},
		},
		{
			name: "SVC-D-2 ClientIP without timeout gets 10800",
			in: corev1.ServiceSpec{Type: "ClusterIP", SessionAffinity: "ClientIP",
				SessionAffinityConfig: &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{}}},
			want: corev1.ServiceSpec{Type: "ClusterIP", SessionAffinity: "ClientIP", InternalTrafficPolicy: &cluster,
				SessionAffinityConfig: &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptrTo[int32](10800)}}},
		},
		{
			name: "SVC-D-2 ClientIP keeps a given timeout",
			in: corev1.ServiceSpec{Type: "ClusterIP", SessionAffinity: "ClientIP",
				SessionAffinityConfig: &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptrTo[int32](5)}}},
			want: corev1.ServiceSpec{Type: "ClusterIP", SessionAffinity: "ClientIP", InternalTrafficPolicy: &cluster,
				SessionAffinityConfig: &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptrTo[int32](5)}}},
		},
		{
			name: "SVC-D-4 protocol TCP and targetPort = port (zero int and empty string)",
			in: corev1.ServiceSpec{Type: "ClusterIP", Ports: []corev1.ServicePort{
				{Port: 80}, {Port: 81, Protocol: "UDP", TargetPort: intstr.FromString("")}, {Port: 82, TargetPort: intstr.FromString("http")}}},
			want: corev1.ServiceSpec{Type: "ClusterIP", SessionAffinity: "None", InternalTrafficPolicy: &cluster, Ports: []corev1.ServicePort{
				{Port: 80, Protocol: "TCP", TargetPort: intstr.FromInt32(80)},
				{Port: 81, Protocol: "UDP", TargetPort: intstr.FromInt32(81)},
				{Port: 82, Protocol: "TCP", TargetPort: intstr.FromString("http")}}},
		},
		{
			name: "SVC-D-5 NodePort gets externalTrafficPolicy Cluster",
			in:   corev1.ServiceSpec{Type: "NodePort"},
			want: corev1.ServiceSpec{Type: "NodePort", SessionAffinity: "None", ExternalTrafficPolicy: "Cluster", InternalTrafficPolicy: &cluster},
		},
		{
			name: "SVC-D-5 ClusterIP with externalIPs is externally accessible",
			in:   corev1.ServiceSpec{Type: "ClusterIP", ExternalIPs: []string{"1.2.3.4"}},
			want: corev1.ServiceSpec{Type: "ClusterIP", SessionAffinity: "None", ExternalIPs: []string{"1.2.3.4"}, ExternalTrafficPolicy: "Cluster", InternalTrafficPolicy: &cluster},
		},
		{
			name: "SVC-D-6 ExternalName gets no internalTrafficPolicy, SVC-D-5 no ETP",
			in:   corev1.ServiceSpec{Type: "ExternalName", ExternalName: "example.com"},
			want: corev1.ServiceSpec{Type: "ExternalName", ExternalName: "example.com", SessionAffinity: "None"},
		},
		{
			name: "SVC-D-6 a given internalTrafficPolicy is kept",
			in:   corev1.ServiceSpec{Type: "ClusterIP", InternalTrafficPolicy: &local},
			want: corev1.ServiceSpec{Type: "ClusterIP", SessionAffinity: "None", InternalTrafficPolicy: &local},
		},
		{
			name: "SVC-D-7 LoadBalancer gets allocateLoadBalancerNodePorts true, SVC-D-8 ingress ipMode VIP",
			in:   corev1.ServiceSpec{Type: "LoadBalancer"},
			st:   corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "1.2.3.4"}, {Hostname: "lb.example.com"}}}},
			want: corev1.ServiceSpec{Type: "LoadBalancer", SessionAffinity: "None", ExternalTrafficPolicy: "Cluster",
				InternalTrafficPolicy: &cluster, AllocateLoadBalancerNodePorts: ptrTo(true)},
			wst: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "1.2.3.4", IPMode: &vip}, {Hostname: "lb.example.com"}}}},
		},
		{
			name: "SVC-D-8 ipMode is not defaulted for non-LoadBalancer services",
			in:   corev1.ServiceSpec{Type: "ClusterIP"},
			st:   corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "1.2.3.4"}}}},
			want: corev1.ServiceSpec{Type: "ClusterIP", SessionAffinity: "None", InternalTrafficPolicy: &cluster},
			wst:  corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "1.2.3.4"}}}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &corev1.Service{Spec: tc.in, Status: tc.st}
			NewStrategy(Config{}).Default(s)
			if diff := cmp.Diff(tc.want, s.Spec); diff != "" {
				t.Errorf("spec (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wst, s.Status); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
		})
	}
}
