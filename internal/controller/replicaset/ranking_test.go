package replicaset

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

var now = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

type podOpt func(*corev1.Pod)

func onNode(n string) podOpt { return func(p *corev1.Pod) { p.Spec.NodeName = n } }
func phase(ph corev1.PodPhase) podOpt {
	return func(p *corev1.Pod) { p.Status.Phase = ph }
}
func readySince(d time.Duration) podOpt {
	return func(p *corev1.Pod) {
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(now.Add(-d))}}
	}
}
func created(d time.Duration) podOpt {
	return func(p *corev1.Pod) { p.CreationTimestamp = metav1.NewTime(now.Add(-d)) }
}
func cost(c string) podOpt {
	return func(p *corev1.Pod) { p.Annotations = map[string]string{PodDeletionCostAnnotation: c} }
}
func restarts(n int32) podOpt {
	return func(p *corev1.Pod) {
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", RestartCount: n}}
	}
}

func mkPod(name string, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID(name), CreationTimestamp: metav1.NewTime(now.Add(-time.Hour))}}
	p.Spec.NodeName = "n1"
	p.Status.Phase = corev1.PodRunning
	for _, o := range opts {
		o(p)
	}
	return p
}

func TestPodsToDelete_Order(t *testing.T) {
	for _, tc := range []struct {
		name    string
		pods    []*corev1.Pod
		related []*corev1.Pod
		diff    int
		want    []string
	}{
		{
			name: "unscheduled before scheduled",
			pods: []*corev1.Pod{mkPod("a", readySince(time.Hour)), mkPod("b", onNode(""), phase(corev1.PodPending))},
			diff: 1, want: []string{"b"},
		},
		{
			name: "pending before running",
			pods: []*corev1.Pod{mkPod("a"), mkPod("b", phase(corev1.PodPending))},
			diff: 1, want: []string{"b"},
		},
		{
			name: "not ready before ready",
			pods: []*corev1.Pod{mkPod("a", readySince(time.Hour)), mkPod("b"), mkPod("c", readySince(time.Hour))},
			diff: 1, want: []string{"b"},
		},
		{
			name: "lower deletion cost first",
			pods: []*corev1.Pod{mkPod("a", cost("10")), mkPod("b", cost("-5")), mkPod("c")},
			diff: 2, want: []string{"b", "c"},
		},
		{
			name:    "doubled up before alone",
			pods:    []*corev1.Pod{mkPod("a", onNode("n1")), mkPod("b", onNode("n2"))},
			related: []*corev1.Pod{mkPod("a", onNode("n1")), mkPod("b", onNode("n2")), mkPod("x", onNode("n2"))},
			diff:    1, want: []string{"b"},
		},
		{
			name: "recently ready before long ready",
			pods: []*corev1.Pod{mkPod("a", readySince(10*time.Hour)), mkPod("b", readySince(time.Minute))},
			diff: 1, want: []string{"b"},
		},
		{
			name: "more restarts first",
			pods: []*corev1.Pod{mkPod("a", restarts(1)), mkPod("b", restarts(7))},
			diff: 1, want: []string{"b"},
		},
		{
			name: "newer before older",
			pods: []*corev1.Pod{mkPod("a", created(48*time.Hour)), mkPod("b", created(time.Minute))},
			diff: 1, want: []string{"b"},
		},
		{
			name: "all when diff covers every pod",
			pods: []*corev1.Pod{mkPod("a"), mkPod("b")},
			diff: 2, want: []string{"a", "b"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, p := range podsToDelete(tc.pods, tc.related, tc.diff, now) {
				got = append(got, p.Name)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("podsToDelete (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSlowStartBatch_StopsAfterFailingBatch(t *testing.T) {
	for _, tc := range []struct {
		name      string
		count     int
		failAfter int32 // calls after this many fail
		wantOK    int
		wantCalls int32
	}{
		{name: "all succeed", count: 10, failAfter: 100, wantOK: 10, wantCalls: 10},
		{name: "first call fails", count: 10, failAfter: 0, wantOK: 0, wantCalls: 1},
		// batches 1, 2, 4: the third batch has one failure, the fourth never runs.
		{name: "fails in third batch", count: 10, failAfter: 6, wantOK: 6, wantCalls: 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			ok, err := slowStartBatch(tc.count, 1, func() error {
				if calls.Add(1) > tc.failAfter {
					return errors.New("quota")
				}
				return nil
			})
			if ok != tc.wantOK || calls.Load() != tc.wantCalls {
				t.Errorf("successes %d calls %d, want %d and %d", ok, calls.Load(), tc.wantOK, tc.wantCalls)
			}
			if (err != nil) != (tc.wantOK < tc.count) {
				t.Errorf("err = %v", err)
			}
		})
	}
}

func TestCalculateStatus_ReplicaFailure(t *testing.T) {
	rs := replicaSetWith(3)
	st := calculateStatus(rs, []*corev1.Pod{mkPod("a", readySince(time.Hour))}, nil, errors.New("pods is forbidden: exceeded quota"), now, true)
	if len(st.Conditions) != 1 || st.Conditions[0].Reason != "FailedCreate" || st.Conditions[0].Message != "pods is forbidden: exceeded quota" {
		t.Fatalf("conditions %+v", st.Conditions)
	}
	if st.Replicas != 1 || st.ReadyReplicas != 1 || st.AvailableReplicas != 1 || *st.TerminatingReplicas != 0 {
		t.Fatalf("status %+v", st)
	}
	rs.Status = st
	if st := calculateStatus(rs, nil, nil, nil, now, false); len(st.Conditions) != 0 || st.TerminatingReplicas != nil {
		t.Fatalf("condition not cleared or terminatingReplicas set: %+v", st)
	}
}

func replicaSetWith(replicas int32) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{Spec: appsv1.ReplicaSetSpec{Replicas: &replicas}}
}
