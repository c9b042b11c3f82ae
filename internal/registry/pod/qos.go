package pod

// QoS class computation ported from k8s.io/kubernetes pkg/apis/core/helper/qos/qos.go
// (ComputePodQOS, requirementsQOS, resourceQOS).

import (
	corev1 "k8s.io/api/core/v1"
)

var qosComputeResources = []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory}

// QOSClass returns the pod's QoS class: Guaranteed when every container has equal, non-zero
// cpu and memory requests and limits, BestEffort when none has any, Burstable otherwise.
// Pod-level resources (spec.resources), when they set cpu or memory, decide alone.
func QOSClass(p *corev1.Pod) corev1.PodQOSClass {
	if r := p.Spec.Resources; r != nil && hasQoSResource(r) {
		return requirementsQOS(r)
	}
	var podQOS corev1.PodQOSClass
	all := make([]corev1.Container, 0, len(p.Spec.InitContainers)+len(p.Spec.Containers))
	all = append(append(all, p.Spec.InitContainers...), p.Spec.Containers...)
	for i := range all {
		c := requirementsQOS(&all[i].Resources)
		switch {
		case c == corev1.PodQOSBurstable:
			return c
		case podQOS == "":
			podQOS = c
		case podQOS != c:
			return corev1.PodQOSBurstable
		}
	}
	if podQOS == "" {
		podQOS = corev1.PodQOSBestEffort
	}
	return podQOS
}

func hasQoSResource(r *corev1.ResourceRequirements) bool {
	for _, name := range qosComputeResources {
		if _, ok := r.Requests[name]; ok {
			return true
		}
		if _, ok := r.Limits[name]; ok {
			return true
		}
	}
	return false
}

func requirementsQOS(r *corev1.ResourceRequirements) corev1.PodQOSClass {
	if len(r.Requests) == 0 && len(r.Limits) == 0 {
		return corev1.PodQOSBestEffort
	}
	var qos corev1.PodQOSClass
	for _, name := range qosComputeResources {
		req, lim := r.Requests[name], r.Limits[name]
		var c corev1.PodQOSClass
		switch {
		case !req.Equal(lim):
			return corev1.PodQOSBurstable
		case req.IsZero():
			c = corev1.PodQOSBestEffort
		default:
			c = corev1.PodQOSGuaranteed
		}
		if qos == "" {
			qos = c
		} else if qos != c {
			return corev1.PodQOSBurstable
		}
	}
	return qos
}
