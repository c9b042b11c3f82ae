package replicaset

import (
	"math"
	"sort"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PodDeletionCostAnnotation ranks pods of one ReplicaSet for scale-down: lower cost goes
// first (the PodDeletionCost feature, on by default in kube).
const PodDeletionCostAnnotation = "controller.kubernetes.io/pod-deletion-cost"

// isPodActive: neither terminal nor being deleted (upstream controller.IsPodActive).
func isPodActive(p *corev1.Pod) bool {
	return p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed && p.DeletionTimestamp == nil
}

// isPodTerminating: being deleted and not terminal (upstream controller.IsPodTerminating).
func isPodTerminating(p *corev1.Pod) bool {
	return p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed && p.DeletionTimestamp != nil
}

func podReadyCondition(p *corev1.Pod) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.PodReady {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

// IsPodReady reports whether the pod's Ready condition is True.
func IsPodReady(p *corev1.Pod) bool {
	c := podReadyCondition(p)
	return c != nil && c.Status == corev1.ConditionTrue
}

// IsPodAvailable reports whether the pod has been Ready for minReadySeconds at now
// (upstream podutil.IsPodAvailable).
func IsPodAvailable(p *corev1.Pod, minReadySeconds int32, now time.Time) bool {
	c := podReadyCondition(p)
	if c == nil || c.Status != corev1.ConditionTrue {
		return false
	}
	if minReadySeconds == 0 {
		return true
	}
	return !c.LastTransitionTime.IsZero() &&
		c.LastTransitionTime.Add(time.Duration(minReadySeconds)*time.Second).Compare(now) <= 0
}

// nextAvailabilityCheck returns how long until the first Ready-but-not-available pod becomes
// available, or 0 when there is none.
func nextAvailabilityCheck(pods []*corev1.Pod, minReadySeconds int32, now time.Time) time.Duration {
	var next time.Duration
	for _, p := range pods {
		c := podReadyCondition(p)
		if c == nil || c.Status != corev1.ConditionTrue || IsPodAvailable(p, minReadySeconds, now) {
			continue
		}
		d := time.Duration(minReadySeconds) * time.Second
		if !c.LastTransitionTime.IsZero() {
			d = c.LastTransitionTime.Add(d).Sub(now)
		}
		if d > 0 && (next == 0 || d < next) {
			next = d
		}
	}
	return next
}

var podPhaseOrdinal = map[corev1.PodPhase]int{corev1.PodPending: 0, corev1.PodUnknown: 1, corev1.PodRunning: 2}

// rankedPods sorts pods so that the ones to delete first come first (upstream
// controller.ActivePodsWithRanks). rank[i] is the number of related active pods on pod i's
// node.
type rankedPods struct {
	pods []*corev1.Pod
	rank []int
	now  time.Time
}

func (s rankedPods) Len() int { return len(s.pods) }
func (s rankedPods) Swap(i, j int) {
	s.pods[i], s.pods[j] = s.pods[j], s.pods[i]
	s.rank[i], s.rank[j] = s.rank[j], s.rank[i]
}

// Less orders: unassigned < assigned; Pending < Unknown < Running; not ready < ready;
// lower deletion cost; more colocated pods; more recently ready (log2 buckets); more
// restarts; newer (log2 buckets); UID.
func (s rankedPods) Less(i, j int) bool {
	pi, pj := s.pods[i], s.pods[j]
	if pi.Spec.NodeName != pj.Spec.NodeName && (pi.Spec.NodeName == "" || pj.Spec.NodeName == "") {
		return pi.Spec.NodeName == ""
	}
	if oi, oj := podPhaseOrdinal[pi.Status.Phase], podPhaseOrdinal[pj.Status.Phase]; oi != oj {
		return oi < oj
	}
	if IsPodReady(pi) != IsPodReady(pj) {
		return !IsPodReady(pi)
	}
	if ci, cj := deletionCost(pi), deletionCost(pj); ci != cj {
		return ci < cj
	}
	if s.rank[i] != s.rank[j] {
		return s.rank[i] > s.rank[j]
	}
	if IsPodReady(pi) && IsPodReady(pj) {
		ti, tj := podReadyCondition(pi).LastTransitionTime, podReadyCondition(pj).LastTransitionTime
		if !ti.Equal(&tj) {
			return s.newerFirst(pi, pj, ti, tj)
		}
	}
	if ri, rj := maxRestarts(pi), maxRestarts(pj); ri != rj {
		return ri > rj
	}
	if !pi.CreationTimestamp.Equal(&pj.CreationTimestamp) {
		return s.newerFirst(pi, pj, pi.CreationTimestamp, pj.CreationTimestamp)
	}
	return false
}

// newerFirst compares two timestamps in log2 buckets of their age; zero times come first.
func (s rankedPods) newerFirst(pi, pj *corev1.Pod, ti, tj metav1.Time) bool {
	if s.now.IsZero() || ti.IsZero() || tj.IsZero() {
		if ti.IsZero() || tj.IsZero() {
			return ti.IsZero()
		}
		return ti.After(tj.Time)
	}
	if d := logRank(s.now.Sub(ti.Time)) - logRank(s.now.Sub(tj.Time)); d != 0 {
		return d < 0
	}
	return pi.UID < pj.UID
}

func logRank(d time.Duration) int64 {
	if d <= 0 {
		return -1
	}
	return int64(math.Log2(float64(d)))
}

func deletionCost(p *corev1.Pod) int32 {
	v, ok := p.Annotations[PodDeletionCostAnnotation]
	if !ok {
		return 0
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil {
		return 0
	}
	return int32(n)
}

// maxRestarts is the highest restart count of the pod's containers (init containers
// excluded, as upstream's regular-container comparison).
func maxRestarts(p *corev1.Pod) int32 {
	var m int32
	for _, c := range p.Status.ContainerStatuses {
		m = max(m, c.RestartCount)
	}
	return m
}

// podsToDelete picks the diff pods of active to delete first; related are all pods of the
// ReplicaSets sharing active's owner (for colocation ranks).
func podsToDelete(active, related []*corev1.Pod, diff int, now time.Time) []*corev1.Pod {
	if diff >= len(active) {
		return active
	}
	onNode := map[string]int{}
	for _, p := range related {
		if isPodActive(p) {
			onNode[p.Spec.NodeName]++
		}
	}
	sorted := rankedPods{pods: append([]*corev1.Pod(nil), active...), rank: make([]int, len(active)), now: now}
	for i, p := range sorted.pods {
		sorted.rank[i] = onNode[p.Spec.NodeName]
	}
	sort.Sort(sorted)
	return sorted.pods[:diff]
}
