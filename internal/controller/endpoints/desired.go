package endpoints

import (
	"maps"
	"math"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/conversion"
	esreconciler "k8s.io/endpointslice"
	esutil "k8s.io/endpointslice/util"
	"k8s.io/klog/v2"
	netutils "k8s.io/utils/net"

	"kubesvc/internal/controller/subsets"
)

// desiredSubsets returns the canonical subsets for service and its selected pods, and the
// number of ready and not-ready (pod, port) entries (EP-S-02…05, EP-E-02…06).
func desiredSubsets(logger klog.Logger, service *corev1.Service, pods []*corev1.Pod) ([]corev1.EndpointSubset, int, int) {
	out := []corev1.EndpointSubset{}
	var ready, notReady int
	tolerateUnready := service.Spec.PublishNotReadyAddresses
	for _, pod := range pods {
		if !esutil.ShouldPodBeInEndpoints(pod, tolerateUnready) {
			continue
		}
		addr, ok := podAddress(service, pod)
		if !ok {
			// No pod IP of the Service's family (e.g. single-stack pods behind a dual-stack
			// Service during an upgrade).
			logger.V(2).Info("No pod IP of the service's family", "service", klog.KObj(service), "pod", klog.KObj(pod))
			continue
		}
		if esutil.ShouldSetHostname(pod, service) {
			addr.Hostname = pod.Spec.Hostname
		}
		if len(service.Spec.Ports) == 0 {
			// EP-E-05: a headless Service may have no ports.
			if service.Spec.ClusterIP == corev1.ClusterIPNone {
				var r, n int
				out, r, n = addSubset(out, pod, addr, nil, tolerateUnready)
				ready, notReady = r, n
			}
			continue
		}
		for i := range service.Spec.Ports {
			sp := &service.Spec.Ports[i]
			num, err := esreconciler.FindPort(pod, sp)
			if err != nil {
				// EP-S-05: this port is skipped for this pod only.
				logger.V(4).Info("Failed to find port for service", "service", klog.KObj(service), "pod", klog.KObj(pod), "err", err)
				continue
			}
			epp := &corev1.EndpointPort{Name: sp.Name, Port: int32(num), Protocol: sp.Protocol, AppProtocol: sp.AppProtocol}
			var r, n int
			out, r, n = addSubset(out, pod, addr, epp, tolerateUnready)
			ready += r
			notReady += n
		}
	}
	return subsets.Repack(out), ready, notReady
}

// podAddress returns the address of pod for service: the pod IP of the Service's first
// family (EP-E-02, EP-E-03).
func podAddress(svc *corev1.Service, pod *corev1.Pod) (corev1.EndpointAddress, bool) {
	family := corev1.IPv4Protocol
	switch {
	case len(svc.Spec.IPFamilies) > 0:
		family = svc.Spec.IPFamilies[0]
	case svc.Spec.ClusterIP != "" && svc.Spec.ClusterIP != corev1.ClusterIPNone:
		if netutils.IsIPv6String(svc.Spec.ClusterIP) {
			family = corev1.IPv6Protocol
		}
	case netutils.IsIPv6String(pod.Status.PodIP):
		family = corev1.IPv6Protocol
	}
	wantIPv6 := family == corev1.IPv6Protocol
	for _, podIP := range pod.Status.PodIPs {
		// Parsed and printed again: the pod's value may be in an irregular form.
		ip := netutils.ParseIPSloppy(podIP.IP)
		if ip != nil && wantIPv6 == netutils.IsIPv6(ip) {
			return corev1.EndpointAddress{
				IP:       ip.String(),
				NodeName: &pod.Spec.NodeName,
				TargetRef: &corev1.ObjectReference{
					Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID,
				},
			}, true
		}
	}
	return corev1.EndpointAddress{}, false
}

// addSubset appends a one-address subset: ready if the pod is Ready or unready addresses
// are published, otherwise not ready (EP-E-04).
func addSubset(out []corev1.EndpointSubset, pod *corev1.Pod, addr corev1.EndpointAddress, port *corev1.EndpointPort, tolerateUnready bool) ([]corev1.EndpointSubset, int, int) {
	ports := []corev1.EndpointPort{}
	if port != nil {
		ports = append(ports, *port)
	}
	if tolerateUnready || esutil.IsPodReady(pod) {
		return append(out, corev1.EndpointSubset{Addresses: []corev1.EndpointAddress{addr}, Ports: ports}), 1, 0
	}
	return append(out, corev1.EndpointSubset{NotReadyAddresses: []corev1.EndpointAddress{addr}, Ports: ports}), 0, 1
}

// upToDate reports whether current already has the desired subsets (ignoring target
// resourceVersions), the Service's labels and a correct capacity annotation (EP-E-08).
func upToDate(current *corev1.Endpoints, service *corev1.Service, desired []corev1.EndpointSubset) bool {
	// A second comparison after repacking tolerates a different hash order written by
	// another version (kubernetes/kubernetes#129652).
	subsetsEqual := semanticIgnoreResourceVersion.DeepEqual(current.Subsets, desired) ||
		semanticIgnoreResourceVersion.DeepEqual(subsets.Repack(current.Subsets), desired)
	return subsetsEqual && labelsCorrect(current.Labels, service.Labels) &&
		capacityAnnotationCorrect(current.Annotations, current.Subsets)
}

// buildEndpoints returns the Endpoints to write: current with the desired subsets, the
// Service's labels plus the headless and managed-by labels, the trigger-time annotation
// and, when truncated, the over-capacity annotation (EP-E-01, EP-E-07, EP-S-06).
func buildEndpoints(current *corev1.Endpoints, service *corev1.Service, desired []corev1.EndpointSubset, triggerTime time.Time) *corev1.Endpoints {
	ep := current.DeepCopy()
	ep.Subsets = desired
	ep.Labels = maps.Clone(service.Labels)
	if ep.Labels == nil {
		ep.Labels = map[string]string{}
	}
	if ep.Annotations == nil {
		ep.Annotations = map[string]string{}
	}
	if !triggerTime.IsZero() {
		ep.Annotations[corev1.EndpointsLastChangeTriggerTime] = triggerTime.UTC().Format(time.RFC3339Nano)
	} else {
		delete(ep.Annotations, corev1.EndpointsLastChangeTriggerTime)
	}
	if truncate(ep) {
		ep.Annotations[corev1.EndpointsOverCapacity] = truncated
	} else {
		delete(ep.Annotations, corev1.EndpointsOverCapacity)
	}
	if service.Spec.ClusterIP == corev1.ClusterIPNone || service.Spec.ClusterIP == "" {
		ep.Labels[corev1.IsHeadlessService] = ""
	} else {
		delete(ep.Labels, corev1.IsHeadlessService)
	}
	ep.Labels[LabelManagedBy] = ControllerName
	return ep
}

// capacityAnnotationCorrect is false when subsets exceed MaxCapacity (they must be
// truncated) or when the over-capacity annotation is set on subsets within capacity.
func capacityAnnotationCorrect(annotations map[string]string, subs []corev1.EndpointSubset) bool {
	n := 0
	for _, s := range subs {
		n += len(s.Addresses) + len(s.NotReadyAddresses)
	}
	if n > MaxCapacity {
		return false
	}
	_, ok := annotations[corev1.EndpointsOverCapacity]
	return !ok
}

// truncate cuts ep down to MaxCapacity addresses, dropping not-ready ones first and giving
// each subset a share proportional to its size (rounded up; later subsets may get fewer).
// It reports whether it truncated (EP-E-07).
func truncate(ep *corev1.Endpoints) bool {
	totalReady, totalNotReady := 0, 0
	for _, s := range ep.Subsets {
		totalReady += len(s.Addresses)
		totalNotReady += len(s.NotReadyAddresses)
	}
	if totalReady+totalNotReady <= MaxCapacity {
		return false
	}
	truncateReady := totalReady > MaxCapacity
	limit, total := MaxCapacity-totalReady, totalNotReady
	if truncateReady {
		limit, total = MaxCapacity, totalReady
	}
	left := limit
	for i := range ep.Subsets {
		s := &ep.Subsets[i]
		n := len(s.NotReadyAddresses)
		if truncateReady {
			n = len(s.Addresses)
		}
		share := min(int(math.Ceil(float64(n)/float64(total)*float64(limit))), left)
		if truncateReady {
			s.Addresses = s.Addresses[:min(len(s.Addresses), share)]
			s.NotReadyAddresses = []corev1.EndpointAddress{}
			left -= len(s.Addresses)
		} else {
			s.NotReadyAddresses = s.NotReadyAddresses[:min(len(s.NotReadyAddresses), share)]
			left -= len(s.NotReadyAddresses)
		}
	}
	return true
}

// semanticIgnoreResourceVersion is deep equality that ignores ObjectReference
// resourceVersions (a pod's metadata-only change must not rewrite its Endpoints).
var semanticIgnoreResourceVersion = conversion.EqualitiesOrDie(
	func(a, b corev1.ObjectReference) bool {
		a.ResourceVersion, b.ResourceVersion = "", ""
		return a == b
	},
)

// labelsCorrect reports whether epLabels are the Service's labels plus the managed-by label
// and, optionally, the headless label.
func labelsCorrect(epLabels, svcLabels map[string]string) bool {
	if epLabels[LabelManagedBy] != ControllerName {
		return false
	}
	skipped := 0
	for k, v := range epLabels {
		if k == corev1.IsHeadlessService || k == LabelManagedBy {
			skipped++
		} else if sv, ok := svcLabels[k]; !ok || sv != v {
			return false
		}
	}
	return len(svcLabels) == len(epLabels)-skipped
}
