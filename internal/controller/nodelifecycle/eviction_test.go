package nodelifecycle

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	testingclock "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
)

func TestEvictionTime(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	added := metav1.NewTime(now.Add(-time.Minute))
	unreachable := corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute, TimeAdded: &added}
	custom := corev1.Taint{Key: "example.com/maintenance", Effect: corev1.TaintEffectNoExecute, TimeAdded: &added}
	tol := func(key string, secs *int64) corev1.Toleration {
		return corev1.Toleration{Key: key, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: secs}
	}
	for _, tc := range []struct {
		name        string
		taints      []corev1.Taint
		tolerations []corev1.Toleration
		deleting    bool
		want        time.Time // zero: never
	}{
		{name: "no NoExecute taint", taints: []corev1.Taint{{Key: "x", Effect: corev1.TaintEffectNoSchedule}}},
		{name: "default toleration: pod eviction timeout after the taint", taints: []corev1.Taint{unreachable}, want: added.Add(5 * time.Minute)},
		{name: "own tolerationSeconds", taints: []corev1.Taint{unreachable}, tolerations: []corev1.Toleration{tol(corev1.TaintNodeUnreachable, ptr.To(int64(30)))}, want: added.Add(30 * time.Second)},
		{name: "tolerated forever", taints: []corev1.Taint{unreachable}, tolerations: []corev1.Toleration{tol(corev1.TaintNodeUnreachable, nil)}},
		{name: "wildcard toleration replaces the default", taints: []corev1.Taint{unreachable}, tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}}},
		{name: "untolerated taint: now", taints: []corev1.Taint{unreachable, custom}, want: now},
		{name: "shortest toleration wins", taints: []corev1.Taint{unreachable, custom},
			tolerations: []corev1.Toleration{tol("example.com/maintenance", ptr.To(int64(10)))}, want: added.Add(10 * time.Second)},
		{name: "pod already being deleted", taints: []corev1.Taint{unreachable}, deleting: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(Config{Client: fake.NewClientset(), Clock: testingclock.NewFakeClock(now)})
			if err != nil {
				t.Fatal(err)
			}
			node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Spec: corev1.NodeSpec{Taints: tc.taints}}
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: corev1.PodSpec{NodeName: "n1", Tolerations: tc.tolerations}}
			if tc.deleting {
				pod.DeletionTimestamp = &added
			}
			got, ok := c.evictionTime(node, pod)
			if ok != !tc.want.IsZero() || !got.Equal(tc.want) {
				t.Errorf("evictionTime = %v, %v; want %v", got, ok, tc.want)
			}
		})
	}
}

func TestMarkUnknown(t *testing.T) {
	now := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	node := &corev1.Node{Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{
		{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady"},
		{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse},
	}}}
	markUnknown(node, now)
	got := map[corev1.NodeConditionType]string{}
	for _, c := range node.Status.Conditions {
		got[c.Type] = string(c.Status) + "/" + c.Reason + "/" + c.Message
	}
	want := map[corev1.NodeConditionType]string{
		corev1.NodeReady:          "Unknown/NodeStatusUnknown/Kubelet stopped posting node status.",
		corev1.NodeMemoryPressure: "Unknown/NodeStatusUnknown/Kubelet stopped posting node status.",
		corev1.NodeDiskPressure:   "Unknown/NodeStatusNeverUpdated/Kubelet never posted node status.",
		corev1.NodePIDPressure:    "Unknown/NodeStatusNeverUpdated/Kubelet never posted node status.",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q", k, got[k], v)
		}
	}
}
