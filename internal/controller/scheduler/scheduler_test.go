package scheduler_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"kubesvc/internal/controller/scheduler"
	"kubesvc/internal/servertest"
)

const waitTimeout = 30 * time.Second

// start starts a test server and a scheduler against it.
func start(t *testing.T) kubernetes.Interface {
	t.Helper()
	s := servertest.StartTestServer(t, servertest.WithControllers("*", "-replicaset", "-replicationcontroller", "-deployment", "-scheduler", "-nodelifecycle"))
	cs, err := kubernetes.NewForConfig(s.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	c, err := scheduler.New(scheduler.Config{Client: cs})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(ctx, 1)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return cs
}

type nodeOpt func(*corev1.Node)

func labels(kv ...string) nodeOpt {
	return func(n *corev1.Node) {
		for i := 0; i+1 < len(kv); i += 2 {
			n.Labels[kv[i]] = kv[i+1]
		}
	}
}
func taint(key string, effect corev1.TaintEffect) nodeOpt {
	return func(n *corev1.Node) { n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: key, Effect: effect}) }
}
func cordoned(n *corev1.Node) { n.Spec.Unschedulable = true }
func notReady(n *corev1.Node) { n.Status.Conditions[0].Status = corev1.ConditionFalse }
func pods(max string) nodeOpt {
	return func(n *corev1.Node) {
		n.Status.Allocatable = corev1.ResourceList{corev1.ResourcePods: resource.MustParse(max)}
	}
}

// createNode creates a Ready node (the test plays the node agent).
func createNode(t *testing.T, cs kubernetes.Interface, name string, opts ...nodeOpt) {
	t.Helper()
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{corev1.LabelHostname: name}},
		Status:     corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady"}}},
	}
	for _, o := range opts {
		o(n)
	}
	ctx := context.Background()
	created, err := cs.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	created.Status = n.Status
	if _, err := cs.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

type podOpt func(*corev1.Pod)

func nodeSelector(k, v string) podOpt {
	return func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{k: v} }
}
func tolerate(key string) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.Tolerations = append(p.Spec.Tolerations, corev1.Toleration{Key: key, Operator: corev1.TolerationOpExists})
	}
}
func hostPort(port int32) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: port, HostPort: port}}
	}
}

func createPod(t *testing.T, cs kubernetes.Interface, name string, opts ...podOpt) {
	t.Helper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
	for _, o := range opts {
		o(p)
	}
	if _, err := cs.CoreV1().Pods("default").Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func getPod(t *testing.T, cs kubernetes.Interface, name string) *corev1.Pod {
	t.Helper()
	p, err := cs.CoreV1().Pods("default").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func podScheduled(p *corev1.Pod) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.PodScheduled {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

// waitScheduled waits until the pod is bound and returns its node.
func waitScheduled(t *testing.T, cs kubernetes.Interface, name string) string {
	t.Helper()
	var node string
	servertest.WaitFor(t, waitTimeout, name+" scheduled", func() error {
		p := getPod(t, cs, name)
		if p.Spec.NodeName == "" {
			return fmt.Errorf("unassigned, conditions %v", p.Status.Conditions)
		}
		if c := podScheduled(p); c == nil || c.Status != corev1.ConditionTrue {
			return fmt.Errorf("PodScheduled condition %+v", c)
		}
		node = p.Spec.NodeName
		return nil
	})
	return node
}

// waitUnschedulable waits for PodScheduled=False/Unschedulable with message want ("" for
// any message); the pod must stay unassigned meanwhile.
func waitUnschedulable(t *testing.T, cs kubernetes.Interface, name, want string) {
	t.Helper()
	servertest.WaitFor(t, waitTimeout, name+" unschedulable", func() error {
		p := getPod(t, cs, name)
		if p.Spec.NodeName != "" || p.Status.Phase != corev1.PodPending {
			t.Fatalf("unschedulable pod on node %q, phase %s", p.Spec.NodeName, p.Status.Phase)
		}
		c := podScheduled(p)
		if c == nil || c.Status != corev1.ConditionFalse || c.Reason != corev1.PodReasonUnschedulable {
			return fmt.Errorf("PodScheduled condition %+v", c)
		}
		if want != "" && c.Message != want {
			return fmt.Errorf("message %q, want %q", c.Message, want)
		}
		return nil
	})
}

func TestController_Filters(t *testing.T) {
	const notHelpful = " preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
	for _, tc := range []struct {
		name     string
		nodes    map[string][]nodeOpt
		existing map[string][]podOpt // pods created (and scheduled) first
		pod      []podOpt
		wantNode string
		wantMsg  string
	}{
		{
			name:     "nodeSelector picks the labelled node",
			nodes:    map[string][]nodeOpt{"a": nil, "b": {labels("disk", "ssd")}},
			pod:      []podOpt{nodeSelector("disk", "ssd")},
			wantNode: "b",
		},
		{
			name:    "selector and cordon",
			nodes:   map[string][]nodeOpt{"a": {cordoned}, "b": nil},
			pod:     []podOpt{nodeSelector("disk", "ssd")},
			wantMsg: "0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) were unschedulable." + notHelpful,
		},
		{
			name:    "NoSchedule taint and a node that is not Ready",
			nodes:   map[string][]nodeOpt{"a": {taint("dedicated", corev1.TaintEffectNoSchedule)}, "b": {notReady}},
			wantMsg: "0/2 nodes are available: 2 node(s) had untolerated taint(s)." + notHelpful,
		},
		{
			name:     "toleration allows the tainted node",
			nodes:    map[string][]nodeOpt{"a": {taint("dedicated", corev1.TaintEffectNoSchedule)}, "b": {notReady}},
			pod:      []podOpt{tolerate("dedicated")},
			wantNode: "a",
		},
		{
			name:     "PreferNoSchedule does not filter",
			nodes:    map[string][]nodeOpt{"a": {taint("soft", corev1.TaintEffectPreferNoSchedule)}, "b": {cordoned}},
			wantNode: "a",
		},
		{
			name:     "host port taken on one node",
			nodes:    map[string][]nodeOpt{"a": nil, "b": nil},
			existing: map[string][]podOpt{"first": {hostPort(8080)}, "second": {hostPort(8080)}},
			pod:      []podOpt{hostPort(8080)},
			wantMsg: "0/2 nodes are available: 2 node(s) didn't have free ports for the requested pod ports." +
				" preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod.",
		},
		{
			name:     "allocatable pods",
			nodes:    map[string][]nodeOpt{"a": {pods("1")}, "b": {cordoned}},
			existing: map[string][]podOpt{"first": nil},
			wantMsg: "0/2 nodes are available: 1 Too many pods, 1 node(s) were unschedulable." +
				" preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, 1 Preemption is not helpful for scheduling.",
		},
		{
			name:    "no nodes",
			wantMsg: "no nodes available to schedule pods",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := start(t)
			for name, opts := range tc.nodes {
				createNode(t, cs, name, opts...)
			}
			for name, opts := range tc.existing {
				createPod(t, cs, name, opts...)
				waitScheduled(t, cs, name)
			}
			createPod(t, cs, "pod", tc.pod...)
			if tc.wantNode != "" {
				if got := waitScheduled(t, cs, "pod"); got != tc.wantNode {
					t.Errorf("scheduled to %q, want %q", got, tc.wantNode)
				}
				return
			}
			waitUnschedulable(t, cs, "pod", tc.wantMsg)
		})
	}
}

// TestController_SpreadsByPodCount: pods go to the node with the fewest pods.
func TestController_SpreadsByPodCount(t *testing.T) {
	cs := start(t)
	for _, n := range []string{"n1", "n2", "n3"} {
		createNode(t, cs, n)
	}
	count := map[string]int{}
	for i := range 6 {
		name := fmt.Sprintf("p%d", i)
		createPod(t, cs, name)
		count[waitScheduled(t, cs, name)]++
	}
	if diff := cmp.Diff(map[string]int{"n1": 2, "n2": 2, "n3": 2}, count); diff != "" {
		t.Errorf("pods per node (-want +got):\n%s", diff)
	}
}

// TestController_RetryWhenNodeChanges: an unschedulable pod is placed as soon as a node
// becomes Ready or is uncordoned.
func TestController_RetryWhenNodeChanges(t *testing.T) {
	cs := start(t)
	createNode(t, cs, "n1", notReady)
	createPod(t, cs, "web")
	waitUnschedulable(t, cs, "web", "")
	ctx := context.Background()
	n, err := cs.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n.Status.Conditions[0].Status = corev1.ConditionTrue
	if _, err := cs.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := waitScheduled(t, cs, "web"); got != "n1" {
		t.Errorf("scheduled to %q", got)
	}
}

// TestBinding_Conflicts covers pods/binding itself: a bound pod cannot be bound again.
func TestBinding_Conflicts(t *testing.T) {
	s := servertest.StartTestServer(t, servertest.WithControllers("-scheduler"))
	cs, err := kubernetes.NewForConfig(s.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	createPod(t, cs, "p")
	ctx := context.Background()
	bind := func(node string) error {
		return cs.CoreV1().Pods("default").Bind(ctx, &corev1.Binding{
			ObjectMeta: metav1.ObjectMeta{Name: "p", Annotations: map[string]string{"example.com/by": "test"}},
			Target:     corev1.ObjectReference{Kind: "Node", Name: node},
		}, metav1.CreateOptions{})
	}
	if err := bind("n1"); err != nil {
		t.Fatalf("bind: %v", err)
	}
	p := getPod(t, cs, "p")
	if p.Spec.NodeName != "n1" || p.Annotations["example.com/by"] != "test" || podScheduled(p) == nil || podScheduled(p).Status != corev1.ConditionTrue {
		t.Errorf("bound pod: node %q annotations %v conditions %v", p.Spec.NodeName, p.Annotations, p.Status.Conditions)
	}
	err = bind("n2")
	if !apierrors.IsConflict(err) || err.Error() != `Operation cannot be fulfilled on pods/binding "p": pod p is already assigned to node "n1"` {
		t.Errorf("second bind: %v, want the kube Conflict", err)
	}
	if err := cs.CoreV1().Pods("default").Bind(ctx, &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "p"}}, metav1.CreateOptions{}); !apierrors.IsInvalid(err) {
		t.Errorf("binding without target: %v, want Invalid", err)
	}
}
