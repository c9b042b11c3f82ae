package scheduler

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	v1helper "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"k8s.io/klog/v2"
)

// Filter failure reasons, kube-scheduler's plugin messages.
const (
	ReasonUnschedulable = "node(s) were unschedulable"
	ReasonTaints        = "node(s) had untolerated taint(s)"
	ReasonNodeAffinity  = "node(s) didn't match Pod's node affinity/selector"
	ReasonNodePorts     = "node(s) didn't have free ports for the requested pod ports"
	ReasonTooManyPods   = "Too many pods"

	// ErrNoNodes is the message when the cluster has no nodes at all.
	ErrNoNodes = "no nodes available to schedule pods"
)

// nodeState is what the filters know about one node.
type nodeState struct {
	node *corev1.Node
	// pods assigned to the node (and assumed bound), not terminal.
	pods []*corev1.Pod
}

// failure is why a node does not fit; resolvable failures (ports, resources) could be
// fixed by preemption, the others could not.
type failure struct {
	reasons    []string
	resolvable bool
}

// filter runs kube-scheduler's default filters in its order (NodeUnschedulable,
// TaintToleration, NodeAffinity, NodePorts, NodeResourcesFit) and returns the first
// failure, or nil when pod fits.
func filter(pod *corev1.Pod, ns *nodeState) *failure {
	node := ns.node
	if node.Spec.Unschedulable && !tolerates(pod, &corev1.Taint{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule}) {
		return &failure{reasons: []string{ReasonUnschedulable}}
	}
	if _, untolerated := v1helper.FindMatchingUntoleratedTaint(klog.Background(), effectiveTaints(node), pod.Spec.Tolerations, func(t *corev1.Taint) bool {
		return t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute
	}, false); untolerated {
		return &failure{reasons: []string{ReasonTaints}}
	}
	if ok, err := nodeaffinity.GetRequiredNodeAffinity(pod).Match(node); err != nil || !ok {
		return &failure{reasons: []string{ReasonNodeAffinity}}
	}
	if portsConflict(pod, ns.pods) {
		return &failure{reasons: []string{ReasonNodePorts}, resolvable: true}
	}
	if r := insufficient(pod, ns); len(r) > 0 {
		return &failure{reasons: r, resolvable: true}
	}
	return nil
}

func tolerates(pod *corev1.Pod, t *corev1.Taint) bool {
	return v1helper.TolerationsTolerateTaint(klog.Background(), pod.Spec.Tolerations, t, false)
}

// effectiveTaints adds the taint the node lifecycle controller puts on a node that is not
// Ready (not-ready when Ready is False, unreachable when Unknown or missing), so a pod
// never lands on a node that is not Ready unless it tolerates that.
func effectiveTaints(node *corev1.Node) []corev1.Taint {
	status := corev1.ConditionUnknown
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			status = c.Status
		}
	}
	key := ""
	switch status {
	case corev1.ConditionTrue:
		return node.Spec.Taints
	case corev1.ConditionFalse:
		key = corev1.TaintNodeNotReady
	default:
		key = corev1.TaintNodeUnreachable
	}
	for _, t := range node.Spec.Taints {
		if t.Key == key && t.Effect == corev1.TaintEffectNoSchedule {
			return node.Spec.Taints
		}
	}
	return append(append([]corev1.Taint(nil), node.Spec.Taints...), corev1.Taint{Key: key, Effect: corev1.TaintEffectNoSchedule})
}

type hostPort struct {
	ip       string
	protocol corev1.Protocol
	port     int32
}

func hostPorts(pod *corev1.Pod) []hostPort {
	var out []hostPort
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.HostPort <= 0 {
				continue
			}
			hp := hostPort{ip: p.HostIP, protocol: p.Protocol, port: p.HostPort}
			if hp.ip == "" {
				hp.ip = "0.0.0.0"
			}
			if hp.protocol == "" {
				hp.protocol = corev1.ProtocolTCP
			}
			out = append(out, hp)
		}
	}
	return out
}

// portsConflict: a host port of pod is taken on the node (0.0.0.0 conflicts with any IP).
func portsConflict(pod *corev1.Pod, onNode []*corev1.Pod) bool {
	want := hostPorts(pod)
	if len(want) == 0 {
		return false
	}
	for _, other := range onNode {
		for _, a := range hostPorts(other) {
			for _, b := range want {
				if a.port == b.port && a.protocol == b.protocol && (a.ip == b.ip || a.ip == "0.0.0.0" || b.ip == "0.0.0.0") {
					return true
				}
			}
		}
	}
	return false
}

// requests sums the container requests of pod, at least its largest init container's
// (simplified NodeResourcesFit: no overhead, no sidecar accounting).
func requests(pod *corev1.Pod) corev1.ResourceList {
	sum := corev1.ResourceList{}
	for _, c := range pod.Spec.Containers {
		for k, v := range c.Resources.Requests {
			q := sum[k]
			q.Add(v)
			sum[k] = q
		}
	}
	for _, c := range pod.Spec.InitContainers {
		for k, v := range c.Resources.Requests {
			if q := sum[k]; v.Cmp(q) > 0 {
				sum[k] = v.DeepCopy()
			}
		}
	}
	return sum
}

// insufficient returns the "Insufficient <resource>" / "Too many pods" reasons of a node
// whose status.allocatable lists the resource; resources it does not list are not checked.
func insufficient(pod *corev1.Pod, ns *nodeState) []string {
	alloc := ns.node.Status.Allocatable
	if len(alloc) == 0 {
		return nil
	}
	var out []string
	if limit, ok := alloc[corev1.ResourcePods]; ok && int64(len(ns.pods)+1) > limit.Value() {
		out = append(out, ReasonTooManyPods)
	}
	want := requests(pod)
	used := corev1.ResourceList{}
	for _, p := range ns.pods {
		for k, v := range requests(p) {
			q := used[k]
			q.Add(v)
			used[k] = q
		}
	}
	names := make([]string, 0, len(want))
	for k := range want {
		names = append(names, string(k))
	}
	sort.Strings(names)
	for _, k := range names {
		name := corev1.ResourceName(k)
		limit, ok := alloc[name]
		if !ok || name == corev1.ResourcePods {
			continue
		}
		total := used[name].DeepCopy()
		total.Add(want[name])
		if total.Cmp(limit) > 0 {
			out = append(out, "Insufficient "+k)
		}
	}
	return out
}

// fitError is kube-scheduler's FitError message: "0/N nodes are available: <count> <reason>,
// ... ." plus the preemption summary ("preemption: 0/N nodes are available: ..."), reasons
// sorted. kubesvc never preempts: nodes failing for a resolvable reason report "No
// preemption victims found for incoming pod", the others "Preemption is not helpful for
// scheduling".
func fitError(numNodes int, failures map[string]*failure) string {
	reasons := map[string]int{}
	preempt := map[string]int{}
	for _, f := range failures {
		for _, r := range f.reasons {
			reasons[r]++
		}
		if f.resolvable {
			preempt["No preemption victims found for incoming pod"]++
		} else {
			preempt["Preemption is not helpful for scheduling"]++
		}
	}
	histogram := func(m map[string]int) string {
		var out []string
		for r, n := range m {
			out = append(out, fmt.Sprintf("%d %s", n, r))
		}
		sort.Strings(out)
		return strings.Join(out, ", ")
	}
	msg := fmt.Sprintf("0/%d nodes are available: %s.", numNodes, histogram(reasons))
	return msg + fmt.Sprintf(" preemption: 0/%d nodes are available: %s.", numNodes, histogram(preempt))
}
