package service

// Type transitions, following k8s.io/kubernetes v1.37.2
// pkg/registry/core/service/strategy.go (dropTypeDependentFields and its helpers).

import (
	"reflect"
	"slices"

	corev1 "k8s.io/api/core/v1"
)

// DropTypeDependentFields wipes, on update, the fields a type change made meaningless, but
// only those the user left untouched (SVC-U-04): clusterIP(s), ipFamilies and ipFamilyPolicy
// when becoming ExternalName; nodePorts when leaving NodePort/LoadBalancer without adding new
// values; healthCheckNodePort when LB+Local ends; allocateLoadBalancerNodePorts and
// loadBalancerClass when leaving LoadBalancer; externalTrafficPolicy when no longer
// externally accessible; status.loadBalancer whenever the type is not LoadBalancer. Values the
// user changed stay, so validation reports them. selector is never wiped.
func DropTypeDependentFields(svc, old *corev1.Service) {
	if old == nil {
		return
	}
	if NeedsClusterIP(old) && !NeedsClusterIP(svc) {
		if old.Spec.ClusterIP == svc.Spec.ClusterIP && slices.Equal(old.Spec.ClusterIPs, svc.Spec.ClusterIPs) {
			svc.Spec.ClusterIP = ""
			svc.Spec.ClusterIPs = nil
		}
		if reflect.DeepEqual(old.Spec.IPFamilies, svc.Spec.IPFamilies) {
			svc.Spec.IPFamilies = nil
		}
		if policyOf(old) == policyOf(svc) {
			svc.Spec.IPFamilyPolicy = nil
		}
	}
	if hasNodePortType(old) && !hasNodePortType(svc) && nodePortSet(old).IsSuperset(nodePortSet(svc)) {
		for i := range svc.Spec.Ports {
			svc.Spec.Ports[i].NodePort = 0
		}
	}
	if NeedsHealthCheck(old) && !NeedsHealthCheck(svc) && old.Spec.HealthCheckNodePort == svc.Spec.HealthCheckNodePort {
		svc.Spec.HealthCheckNodePort = 0
	}
	if old.Spec.Type == corev1.ServiceTypeLoadBalancer && svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		if svc.Spec.AllocateLoadBalancerNodePorts != nil && old.Spec.AllocateLoadBalancerNodePorts != nil &&
			*old.Spec.AllocateLoadBalancerNodePorts == *svc.Spec.AllocateLoadBalancerNodePorts {
			svc.Spec.AllocateLoadBalancerNodePorts = nil
		}
		if sameLoadBalancerClass(old, svc) {
			svc.Spec.LoadBalancerClass = nil
		}
	}
	if ExternallyAccessible(old) && !ExternallyAccessible(svc) && old.Spec.ExternalTrafficPolicy == svc.Spec.ExternalTrafficPolicy {
		svc.Spec.ExternalTrafficPolicy = ""
	}
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		svc.Status.LoadBalancer = corev1.LoadBalancerStatus{}
	}
}

// hasNodePortType is the strategy's needsNodePort: NodePort or LoadBalancer regardless of
// allocateLoadBalancerNodePorts (unlike NeedsNodePorts, which the storage layer uses).
func hasNodePortType(svc *corev1.Service) bool {
	return svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer
}
