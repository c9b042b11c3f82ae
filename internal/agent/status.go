package agent

import (
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"kubesvc/internal/runtime"
)

// status computes the pod status as the kubelet reports it (generateAPIPodStatus): phase,
// conditions, container statuses sorted by name, IPs and start time.
func (w *podWorker) status(pod *corev1.Pod) corev1.PodStatus {
	old := pod.Status
	st := corev1.PodStatus{
		Phase:                 old.Phase,
		QOSClass:              old.QOSClass,
		NominatedNodeName:     old.NominatedNodeName,
		StartTime:             w.startTime,
		HostIP:                w.a.nodeIP.String(),
		HostIPs:               w.a.hostIPs(),
		Resize:                old.Resize,
		ResourceClaimStatuses: old.ResourceClaimStatuses,
	}
	if pod.Generation > 0 {
		st.ObservedGeneration = pod.Generation
	}
	if ips := w.podIPs(); len(ips) > 0 {
		st.PodIP = ips[0]
		for _, ip := range ips {
			st.PodIPs = append(st.PodIPs, corev1.PodIP{IP: ip})
		}
	}
	initDone := w.initDone(pod)
	for i := range pod.Spec.InitContainers {
		st.InitContainerStatuses = append(st.InitContainerStatuses, w.containerStatus(pod, &pod.Spec.InitContainers[i], true, true, old.InitContainerStatuses))
	}
	for i := range pod.Spec.Containers {
		st.ContainerStatuses = append(st.ContainerStatuses, w.containerStatus(pod, &pod.Spec.Containers[i], false, initDone, old.ContainerStatuses))
	}
	sort.Slice(st.ContainerStatuses, func(i, j int) bool { return st.ContainerStatuses[i].Name < st.ContainerStatuses[j].Name })
	if !isTerminal(old.Phase) {
		st.Phase = podPhase(pod, &st, initDone)
	}
	if w.sandboxErr != "" && st.Phase == "" {
		st.Phase = corev1.PodPending
	}
	st.Conditions = w.conditions(pod, st)
	return st
}

// podPhase is the kubelet's getPhase.
func podPhase(pod *corev1.Pod, st *corev1.PodStatus, initDone bool) corev1.PodPhase {
	if !initDone {
		for _, ics := range st.InitContainerStatuses {
			if t := ics.State.Terminated; t != nil && t.ExitCode != 0 && restartPolicy(pod) == corev1.RestartPolicyNever {
				return corev1.PodFailed
			}
		}
		return corev1.PodPending
	}
	var waiting, running, stopped, succeeded, unknown int
	for _, cs := range st.ContainerStatuses {
		switch {
		case cs.State.Running != nil:
			running++
		case cs.State.Terminated != nil:
			stopped++
			if cs.State.Terminated.ExitCode == 0 {
				succeeded++
			}
		case cs.State.Waiting != nil:
			if cs.LastTerminationState.Terminated != nil {
				stopped++
			} else {
				waiting++
			}
		default:
			unknown++
		}
	}
	switch {
	case waiting > 0:
		return corev1.PodPending
	case running > 0 && unknown == 0:
		return corev1.PodRunning
	case running == 0 && stopped > 0 && unknown == 0:
		if restartPolicy(pod) == corev1.RestartPolicyAlways {
			return corev1.PodRunning
		}
		if stopped == succeeded {
			return corev1.PodSucceeded
		}
		if restartPolicy(pod) == corev1.RestartPolicyNever {
			return corev1.PodFailed
		}
		return corev1.PodRunning
	}
	return corev1.PodPending
}

// containerStatus reports one container (convertToAPIContainerStatuses).
func (w *podWorker) containerStatus(pod *corev1.Pod, spec *corev1.Container, isInit, initDone bool, old []corev1.ContainerStatus) corev1.ContainerStatus {
	cs := corev1.ContainerStatus{Name: spec.Name, Image: spec.Image, Started: ptr.To(false)}
	c := w.ctrs[spec.Name]
	var latest *runtime.Container
	if c != nil {
		latest = c.latest()
	}
	waiting := func(reason, msg string) {
		cs.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}}
	}
	if latest == nil {
		switch {
		case c != nil && c.waitReason != "":
			waiting(c.waitReason, c.waitMessage)
		case !isInit && !initDone:
			waiting("PodInitializing", "")
		default:
			waiting("ContainerCreating", "")
		}
		for _, o := range old {
			if o.Name == spec.Name {
				cs.Image, cs.ImageID = o.Image, o.ImageID
			}
		}
		return cs
	}
	cs.Image, cs.ImageID = latest.Image, latest.ImageID
	cs.ContainerID = "kubesvc://" + latest.ID
	cs.RestartCount = int32(latest.Attempt)
	st := w.a.rt.State(latest)
	if prev := c.previous(); prev != nil {
		if ex := exitOf(w.a.rt.State(prev)); ex != nil {
			cs.LastTerminationState = corev1.ContainerState{Terminated: terminated(ex, prev)}
		}
	}
	switch ex := exitOf(st); {
	case st.Running:
		cs.State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(st.Started.StartedAt)}}
		w.mu.Lock()
		cs.Ready, cs.Started = c.ready, ptr.To(c.started)
		w.mu.Unlock()
	case ex == nil:
		waiting("ContainerCreating", "")
	case c.waitReason != "" && !isTerminal(pod.Status.Phase) && pod.DeletionTimestamp == nil && w.willRestart(pod, spec, ex):
		// Exited and waiting for its restart (back-off): the exit becomes lastState.
		waiting(c.waitReason, c.waitMessage)
		cs.LastTerminationState = corev1.ContainerState{Terminated: terminated(ex, latest)}
	default:
		cs.State = corev1.ContainerState{Terminated: terminated(ex, latest)}
	}
	return cs
}

// willRestart reports whether an exited container will run again.
func (w *podWorker) willRestart(pod *corev1.Pod, spec *corev1.Container, ex *exitInfo) bool {
	if isSidecar(spec) {
		return true
	}
	return shouldRestart(restartPolicy(pod), ex.code)
}

func terminated(ex *exitInfo, rc *runtime.Container) *corev1.ContainerStateTerminated {
	return &corev1.ContainerStateTerminated{
		ExitCode: ex.code, Signal: ex.signal, Reason: ex.reason, Message: ex.message,
		StartedAt: metav1.NewTime(ex.started), FinishedAt: metav1.NewTime(ex.finished),
		ContainerID: "kubesvc://" + rc.ID,
	}
}

// conditions are the kubelet's pod conditions in its order, keeping conditions it does not
// own (PodScheduled, DisruptionTarget, readiness gates) and unchanged transition times.
func (w *podWorker) conditions(pod *corev1.Pod, st corev1.PodStatus) []corev1.PodCondition {
	gen := pod.Generation
	cond := func(t corev1.PodConditionType, ok bool, reason, msg string) corev1.PodCondition {
		c := corev1.PodCondition{Type: t, Status: corev1.ConditionFalse, Reason: reason, Message: msg, ObservedGeneration: gen}
		if ok {
			c = corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, ObservedGeneration: gen}
		}
		return c
	}
	var notInit, notReady []string
	for _, ics := range st.InitContainerStatuses {
		if t := ics.State.Terminated; (t == nil || t.ExitCode != 0) && ics.State.Running == nil {
			notInit = append(notInit, ics.Name)
		}
	}
	for _, cs := range st.ContainerStatuses {
		if !cs.Ready {
			notReady = append(notReady, cs.Name)
		}
	}
	terminal := isTerminal(st.Phase)
	sandboxReady := w.sandbox != nil && !terminal && !w.terminated
	conds := []corev1.PodCondition{cond(corev1.PodReadyToStartContainers, sandboxReady, "", "")}
	if len(notInit) > 0 && !w.initDone(pod) {
		conds = append(conds, cond(corev1.PodInitialized, false, "ContainersNotInitialized", fmt.Sprintf("containers with incomplete status: [%s]", strings.Join(notInit, " "))))
	} else {
		conds = append(conds, cond(corev1.PodInitialized, true, "", ""))
	}
	var ready, containersReady corev1.PodCondition
	switch {
	case terminal:
		ready = cond(corev1.PodReady, false, "PodCompleted", "")
		containersReady = cond(corev1.ContainersReady, false, "PodCompleted", "")
	case len(notReady) > 0:
		msg := fmt.Sprintf("containers with unready status: [%s]", strings.Join(notReady, " "))
		ready = cond(corev1.PodReady, false, "ContainersNotReady", msg)
		containersReady = cond(corev1.ContainersReady, false, "ContainersNotReady", msg)
	default:
		ready = cond(corev1.PodReady, true, "", "")
		containersReady = cond(corev1.ContainersReady, true, "", "")
		if missing := unreadyGates(pod); len(missing) > 0 {
			ready = cond(corev1.PodReady, false, "ReadinessGatesNotReady", fmt.Sprintf("corresponding condition of pod readiness gate %q does not exist.", missing[0]))
		}
	}
	conds = append(conds, ready, containersReady)
	owned := map[corev1.PodConditionType]bool{corev1.PodReadyToStartContainers: true, corev1.PodInitialized: true, corev1.PodReady: true, corev1.ContainersReady: true}
	for _, o := range pod.Status.Conditions {
		if !owned[o.Type] {
			conds = append(conds, o)
		}
	}
	now := metav1.NewTime(time.Now())
	for i := range conds {
		if !owned[conds[i].Type] {
			continue
		}
		conds[i].LastTransitionTime = now
		for _, o := range pod.Status.Conditions {
			if o.Type == conds[i].Type && o.Status == conds[i].Status {
				conds[i].LastTransitionTime = o.LastTransitionTime
			}
		}
	}
	return conds
}

// unreadyGates returns readiness gates whose condition is not True.
func unreadyGates(pod *corev1.Pod) []string {
	var out []string
	for _, g := range pod.Spec.ReadinessGates {
		ok := false
		for _, c := range pod.Status.Conditions {
			ok = ok || c.Type == g.ConditionType && c.Status == corev1.ConditionTrue
		}
		if !ok {
			out = append(out, string(g.ConditionType))
		}
	}
	return out
}

// normalizeStatus truncates times to seconds, the API's precision, so a status compares equal
// to itself after a round trip.
func normalizeStatus(st *corev1.PodStatus) {
	tr := func(t *metav1.Time) {
		if t != nil && !t.IsZero() {
			*t = metav1.NewTime(t.Truncate(time.Second).Local())
		}
	}
	if st.StartTime != nil {
		tr(st.StartTime)
	}
	for i := range st.Conditions {
		tr(&st.Conditions[i].LastTransitionTime)
		tr(&st.Conditions[i].LastProbeTime)
	}
	for _, list := range [][]corev1.ContainerStatus{st.InitContainerStatuses, st.ContainerStatuses} {
		for i := range list {
			for _, s := range []*corev1.ContainerState{&list[i].State, &list[i].LastTerminationState} {
				if s.Running != nil {
					tr(&s.Running.StartedAt)
				}
				if s.Terminated != nil {
					tr(&s.Terminated.StartedAt)
					tr(&s.Terminated.FinishedAt)
				}
			}
		}
	}
}

// statusEqual compares statuses semantically (times at second precision).
func statusEqual(a, b *corev1.PodStatus) bool {
	x, y := a.DeepCopy(), b.DeepCopy()
	normalizeStatus(x)
	normalizeStatus(y)
	return apiequality.Semantic.DeepEqual(x, y)
}

// hostIPs is status.hostIPs: the node's addresses, the primary first.
func (a *Agent) hostIPs() []corev1.HostIP {
	out := make([]corev1.HostIP, len(a.nodeIPs))
	for i, ip := range a.nodeIPs {
		out[i] = corev1.HostIP{IP: ip.String()}
	}
	return out
}
