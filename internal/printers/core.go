package printers

// Printers for core/v1 and coordination/v1 kinds other than pods, ported from
// kubernetes/kubernetes v1.37.2 pkg/printers/internalversion/printers.go (printService,
// getServiceExternalIP, loadBalancerStatusStringer, makePortString, printEndpoints,
// formatEndpoints, printNode, findNodeRoles, getNodeInternalIP/getNodeExternalIP, printEvent,
// formatEventSource, printNamespace, printConfigMap, printSecret, printServiceAccount,
// printLease), always with GenerateOptions{Wide: true} as the server uses.
//
// kube-apiserver only prints objects that went through v1 defaulting (pkg/apis/core/v1/defaults.go
// runs on every decode, from a request body or from storage). Where a printed field has a
// default, the printers here apply it, so an object stored without it prints as kube would
// print it: service type ClusterIP, service port protocol TCP, secret type Opaque, namespace
// phase Active.

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/sets"
)

const (
	// loadBalancerWidth is where non-wide output clips load-balancer addresses. The server never
	// clips (it prints with Wide=true); the constant is kept for loadBalancerStatusStringer.
	loadBalancerWidth = 16

	// labelNodeRolePrefix is the label prefix for node roles: node-role.kubernetes.io/<role>.
	labelNodeRolePrefix = "node-role.kubernetes.io/"
	// nodeLabelRole is the older single-role label: kubernetes.io/role=<role>.
	nodeLabelRole = "kubernetes.io/role"
)

// serverWide is the GenerateOptions.Wide kube-apiserver passes for every Table request
// (pkg/printers/storage/storage.go, TableConvertor.ConvertToTable). kubectl hides the
// priority-1 columns itself unless -o wide.
const serverWide = true

func serviceCells(svc *corev1.Service, now time.Time) []any {
	internalIP := "<none>"
	switch {
	case len(svc.Spec.ClusterIPs) > 0:
		internalIP = svc.Spec.ClusterIPs[0]
	case svc.Spec.ClusterIP != "":
		// kube's service storage (pkg/registry/core/service/storage, normalizeClusterIPs) fills
		// clusterIPs from clusterIP on create, so upstream never sees this case; printing
		// clusterIP gives the cell kube would print for the same request.
		internalIP = svc.Spec.ClusterIP
	}
	ports := makePortString(svc.Spec.Ports)
	if ports == "" {
		ports = "<none>"
	}
	svcType := svc.Spec.Type
	if svcType == "" {
		svcType = corev1.ServiceTypeClusterIP
	}
	return []any{
		svc.Name,
		string(svcType),
		internalIP,
		serviceExternalIP(svc, svcType, serverWide),
		ports,
		age(svc.CreationTimestamp, now),
		labels.FormatLabels(svc.Spec.Selector),
	}
}

// serviceExternalIP is upstream's getServiceExternalIP.
func serviceExternalIP(svc *corev1.Service, svcType corev1.ServiceType, wide bool) string {
	switch svcType {
	case corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort:
		if len(svc.Spec.ExternalIPs) > 0 {
			return strings.Join(svc.Spec.ExternalIPs, ",")
		}
		return "<none>"
	case corev1.ServiceTypeLoadBalancer:
		lbIPs := loadBalancerStatusString(serviceLBAddresses(svc.Status.LoadBalancer.Ingress), wide)
		if len(svc.Spec.ExternalIPs) > 0 {
			var results []string
			if len(lbIPs) > 0 {
				results = append(results, strings.Split(lbIPs, ",")...)
			}
			results = append(results, svc.Spec.ExternalIPs...)
			return strings.Join(results, ",")
		}
		if len(lbIPs) > 0 {
			return lbIPs
		}
		return "<pending>"
	case corev1.ServiceTypeExternalName:
		return svc.Spec.ExternalName
	}
	return "<unknown>"
}

// serviceLBAddresses returns, per ingress point, its IP or (when no IP is set) its hostname.
func serviceLBAddresses(ingress []corev1.LoadBalancerIngress) []string {
	addrs := make([]string, 0, len(ingress))
	for i := range ingress {
		if ingress[i].IP != "" {
			addrs = append(addrs, ingress[i].IP)
		} else if ingress[i].Hostname != "" {
			addrs = append(addrs, ingress[i].Hostname)
		}
	}
	return addrs
}

// loadBalancerStatusString is upstream's loadBalancerStatusStringer and
// ingressLoadBalancerStatusStringer: the distinct addresses, sorted, comma-joined, clipped to
// loadBalancerWidth bytes unless wide.
func loadBalancerStatusString(addrs []string, wide bool) string {
	r := strings.Join(sets.List(sets.New(addrs...)), ",")
	if !wide && len(r) > loadBalancerWidth {
		r = r[0:(loadBalancerWidth-3)] + "..."
	}
	return r
}

func makePortString(ports []corev1.ServicePort) string {
	pieces := make([]string, len(ports))
	for ix := range ports {
		port := &ports[ix]
		protocol := port.Protocol
		if protocol == "" {
			protocol = corev1.ProtocolTCP
		}
		pieces[ix] = fmt.Sprintf("%d/%s", port.Port, protocol)
		if port.NodePort > 0 {
			pieces[ix] = fmt.Sprintf("%d:%d/%s", port.Port, port.NodePort, protocol)
		}
	}
	return strings.Join(pieces, ",")
}

func endpointsCells(ep *corev1.Endpoints, now time.Time) []any {
	return []any{ep.Name, formatEndpoints(ep), age(ep.CreationTimestamp, now)}
}

// formatEndpoints is upstream's formatEndpoints with ports=nil (all ports): up to three
// ip:port pairs (bare IPs for subsets without ports), then " + N more...".
func formatEndpoints(endpoints *corev1.Endpoints) string {
	if len(endpoints.Subsets) == 0 {
		return "<none>"
	}
	var list []string
	const maxShown = 3
	more := false
	count := 0
	for i := range endpoints.Subsets {
		ss := &endpoints.Subsets[i]
		if len(ss.Ports) == 0 {
			// Headless services may have no ports.
			count += len(ss.Addresses)
			for i := range ss.Addresses {
				if len(list) == maxShown {
					more = true
					break
				}
				list = append(list, ss.Addresses[i].IP)
			}
			continue
		}
		for i := range ss.Ports {
			port := &ss.Ports[i]
			count += len(ss.Addresses)
			for i := range ss.Addresses {
				if len(list) == maxShown {
					more = true
					break
				}
				list = append(list, net.JoinHostPort(ss.Addresses[i].IP, strconv.Itoa(int(port.Port))))
			}
		}
	}
	ret := strings.Join(list, ",")
	if more {
		return fmt.Sprintf("%s + %d more...", ret, count-maxShown)
	}
	return ret
}

func nodeCells(node *corev1.Node, now time.Time) []any {
	conditionMap := make(map[corev1.NodeConditionType]*corev1.NodeCondition)
	for i := range node.Status.Conditions {
		cond := node.Status.Conditions[i]
		conditionMap[cond.Type] = &cond
	}
	var status []string
	for _, validCondition := range []corev1.NodeConditionType{corev1.NodeReady} {
		if condition, ok := conditionMap[validCondition]; ok {
			if condition.Status == corev1.ConditionTrue {
				status = append(status, string(condition.Type))
			} else {
				status = append(status, "Not"+string(condition.Type))
			}
		}
	}
	if len(status) == 0 {
		status = append(status, "Unknown")
	}
	if node.Spec.Unschedulable {
		status = append(status, "SchedulingDisabled")
	}

	roles := strings.Join(findNodeRoles(node), ",")
	if roles == "" {
		roles = "<none>"
	}

	info := node.Status.NodeInfo
	kernelVersion := orUnknown(info.KernelVersion)
	if info.Architecture != "" {
		kernelVersion += " (" + info.Architecture + ")"
	}
	return []any{
		node.Name,
		strings.Join(status, ","),
		roles,
		age(node.CreationTimestamp, now),
		info.KubeletVersion,
		nodeAddress(node, corev1.NodeInternalIP),
		nodeAddress(node, corev1.NodeExternalIP),
		orUnknown(info.OSImage),
		kernelVersion,
		orUnknown(info.ContainerRuntimeVersion),
	}
}

// nodeAddress returns the node's first address of type t, or "<none>".
func nodeAddress(node *corev1.Node, t corev1.NodeAddressType) string {
	for _, address := range node.Status.Addresses {
		if address.Type == t {
			return address.Address
		}
	}
	return "<none>"
}

// findNodeRoles returns the sorted, distinct roles named by node-role.kubernetes.io/<role>
// labels and by a non-empty kubernetes.io/role label.
func findNodeRoles(node *corev1.Node) []string {
	roles := sets.New[string]()
	for k, v := range node.Labels {
		switch {
		case strings.HasPrefix(k, labelNodeRolePrefix):
			if role := strings.TrimPrefix(k, labelNodeRolePrefix); role != "" {
				roles.Insert(role)
			}
		case k == nodeLabelRole && v != "":
			roles.Insert(v)
		}
	}
	return sets.List(roles)
}

func orUnknown(s string) string {
	if s == "" {
		return "<unknown>"
	}
	return s
}

func eventCells(ev *corev1.Event, now time.Time) []any {
	firstTimestamp := age(ev.FirstTimestamp, now)
	if ev.FirstTimestamp.IsZero() {
		firstTimestamp = microAge(ev.EventTime, now)
	}

	lastTimestamp := age(ev.LastTimestamp, now)
	if ev.LastTimestamp.IsZero() {
		lastTimestamp = firstTimestamp
	}

	count := ev.Count
	if ev.Series != nil {
		lastTimestamp = microAge(ev.Series.LastObservedTime, now)
		count = ev.Series.Count
	} else if count == 0 {
		// Singleton events of the events.k8s.io API have no count.
		count = 1
	}

	target := strings.ToLower(ev.InvolvedObject.Kind)
	if ev.InvolvedObject.Name != "" {
		target = fmt.Sprintf("%s/%s", strings.ToLower(ev.InvolvedObject.Kind), ev.InvolvedObject.Name)
	}

	return []any{
		lastTimestamp,
		ev.Type,
		ev.Reason,
		target,
		ev.InvolvedObject.FieldPath,
		formatEventSource(ev.Source, ev.ReportingController, ev.ReportingInstance),
		strings.TrimSpace(ev.Message),
		firstTimestamp,
		int64(count),
		ev.Name,
	}
}

// formatEventSource prints "component, host", using reportingController and reportingInstance
// when the legacy source fields are empty, and dropping an empty host.
func formatEventSource(es corev1.EventSource, reportingController, reportingInstance string) string {
	component := firstNonEmpty(es.Component, reportingController)
	instance := firstNonEmpty(es.Host, reportingInstance)
	if instance == "" {
		return component
	}
	return component + ", " + instance
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

func namespaceCells(ns *corev1.Namespace, now time.Time) []any {
	phase := ns.Status.Phase
	if phase == "" {
		phase = corev1.NamespaceActive
	}
	return []any{ns.Name, string(phase), age(ns.CreationTimestamp, now)}
}

func configMapCells(cm *corev1.ConfigMap, now time.Time) []any {
	return []any{cm.Name, int64(len(cm.Data) + len(cm.BinaryData)), age(cm.CreationTimestamp, now)}
}

func secretCells(s *corev1.Secret, now time.Time) []any {
	// Upstream counts the internal object's data, into which the v1→internal conversion
	// (Convert_v1_Secret_To_core_Secret) has merged stringData.
	keys := len(s.Data)
	for k := range s.StringData {
		if _, dup := s.Data[k]; !dup {
			keys++
		}
	}
	secretType := s.Type
	if secretType == "" {
		secretType = corev1.SecretTypeOpaque
	}
	return []any{s.Name, string(secretType), int64(keys), age(s.CreationTimestamp, now)}
}

func serviceAccountCells(sa *corev1.ServiceAccount, now time.Time) []any {
	return []any{sa.Name, age(sa.CreationTimestamp, now)}
}

func leaseCells(l *coordinationv1.Lease, now time.Time) []any {
	var holder string
	if l.Spec.HolderIdentity != nil {
		holder = *l.Spec.HolderIdentity
	}
	return []any{l.Name, holder, age(l.CreationTimestamp, now)}
}
