package nodelifecycle_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	testingclock "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"kubesvc/internal/controller/nodelifecycle"
	"kubesvc/internal/controller/replicaset"
	"kubesvc/internal/controller/scheduler"
	"kubesvc/internal/servertest"
)

const waitTimeout = 30 * time.Second

type env struct {
	t   *testing.T
	cs  kubernetes.Interface
	clk *testingclock.FakeClock
}

// start starts a test server and, on a fake clock, the node lifecycle controller (40 s
// grace, 5 m eviction timeout); with workloads also a ReplicaSet controller and the
// scheduler.
func start(t *testing.T, workloads bool) *env {
	t.Helper()
	s := servertest.StartTestServer(t, servertest.WithControllers("*", "-replicaset", "-replicationcontroller", "-deployment", "-scheduler", "-nodelifecycle"))
	cs, err := kubernetes.NewForConfig(s.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, cs: cs, clk: testingclock.NewFakeClock(time.Now().Truncate(time.Second))}
	nlc, err := nodelifecycle.New(nodelifecycle.Config{Client: cs, Clock: e.clk,
		NodeMonitorGracePeriod: 40 * time.Second, PodEvictionTimeout: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	runs := []func(context.Context, int){nlc.Run}
	if workloads {
		rsc, err := replicaset.New(replicaset.Config{Client: cs})
		if err != nil {
			t.Fatal(err)
		}
		sched, err := scheduler.New(scheduler.Config{Client: cs})
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, rsc.Run, sched.Run)
	}
	for _, run := range runs {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			run(ctx, 1)
		}()
		t.Cleanup(func() {
			cancel()
			<-done
		})
	}
	return e
}

// createNode registers a Ready node with its lease, as the node agent does.
func (e *env) createNode(name string) {
	e.t.Helper()
	ctx := context.Background()
	n, err := e.cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	now := metav1.NewTime(e.clk.Now())
	n.Status.Conditions = []corev1.NodeCondition{
		{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "kubelet is posting ready status", LastHeartbeatTime: now, LastTransitionTime: now},
		{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientMemory", LastHeartbeatTime: now, LastTransitionTime: now},
	}
	if _, err := e.cs.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: corev1.NamespaceNodeLease},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(name), LeaseDurationSeconds: ptr.To(int32(40)),
			RenewTime: &metav1.MicroTime{Time: e.clk.Now()}},
	}
	if _, err := e.cs.CoordinationV1().Leases(corev1.NamespaceNodeLease).Create(ctx, lease, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) renewLease(name string) {
	e.t.Helper()
	ctx := context.Background()
	l, err := e.cs.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	l.Spec.RenewTime = &metav1.MicroTime{Time: e.clk.Now()}
	if _, err := e.cs.CoordinationV1().Leases(corev1.NamespaceNodeLease).Update(ctx, l, metav1.UpdateOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

// setReady posts the node's Ready condition as the kubelet does.
func (e *env) setReady(name string, status corev1.ConditionStatus) {
	e.t.Helper()
	ctx := context.Background()
	for {
		n := e.node(name)
		now := metav1.NewTime(e.clk.Now())
		for i := range n.Status.Conditions {
			if c := &n.Status.Conditions[i]; c.Type == corev1.NodeReady {
				c.Status, c.Reason, c.LastHeartbeatTime, c.LastTransitionTime = status, "Kubelet", now, now
			}
		}
		_, err := e.cs.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{})
		if err == nil {
			return
		}
		if !apierrors.IsConflict(err) {
			e.t.Fatal(err)
		}
	}
}

func (e *env) node(name string) *corev1.Node {
	e.t.Helper()
	n, err := e.cs.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func ready(n *corev1.Node) corev1.NodeCondition {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c
		}
	}
	return corev1.NodeCondition{}
}

func hasTaint(n *corev1.Node, key string, effect corev1.TaintEffect) bool {
	for _, t := range n.Spec.Taints {
		if t.Key == key && t.Effect == effect {
			return true
		}
	}
	return false
}

// createPod creates a Running, Ready pod bound to node.
func (e *env) createPod(name, node string, tolerations ...corev1.Toleration) {
	e.t.Helper()
	ctx := context.Background()
	p, err := e.cs.CoreV1().Pods("default").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{NodeName: node, Tolerations: tolerations,
			Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	p.Status.Phase = corev1.PodRunning
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(e.clk.Now())}}
	if _, err := e.cs.CoreV1().Pods("default").UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) pod(name string) *corev1.Pod {
	e.t.Helper()
	p, err := e.cs.CoreV1().Pods("default").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

func podReady(p *corev1.Pod) corev1.ConditionStatus {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status
		}
	}
	return ""
}

// stepUntil advances the fake clock by step at every poll until cond holds.
func (e *env) stepUntil(what string, step time.Duration, cond func() error) {
	e.t.Helper()
	servertest.WaitFor(e.t, waitTimeout, what, func() error {
		if err := cond(); err != nil {
			e.clk.Step(step)
			return err
		}
		return nil
	})
}

func toleration(key string, seconds *int64) corev1.Toleration {
	return corev1.Toleration{Key: key, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: seconds}
}

// TestController_UnreachableNode: a node whose lease is not renewed for 40 s becomes
// Ready=Unknown and tainted, its pods become not Ready, and they are evicted after their
// tolerationSeconds (default: the 5 m pod eviction timeout); a node back clears its taints.
func TestController_UnreachableNode(t *testing.T) {
	e := start(t, false)
	e.createNode("n1")
	e.createPod("default-toleration", "n1")
	e.createPod("tolerates-60s", "n1", toleration(corev1.TaintNodeUnreachable, ptr.To(int64(60))))
	e.createPod("tolerates-forever", "n1", toleration(corev1.TaintNodeUnreachable, nil))

	// Renewals keep the node Ready well past the grace period.
	for range 12 {
		e.renewLease("n1")
		e.clk.Step(5 * time.Second)
		if c := ready(e.node("n1")); c.Status != corev1.ConditionTrue {
			t.Fatalf("node with a renewed lease: Ready %+v", c)
		}
	}
	e.renewLease("n1")
	lastRenewal := e.clk.Now()

	e.stepUntil("node Ready=Unknown", 5*time.Second, func() error {
		c := ready(e.node("n1"))
		if c.Status != corev1.ConditionUnknown {
			return fmt.Errorf("Ready %s", c.Status)
		}
		if c.Reason != nodelifecycle.ReasonNodeStatusUnknown || c.Message != "Kubelet stopped posting node status." {
			t.Errorf("Ready condition %+v", c)
		}
		if since := c.LastTransitionTime.Sub(lastRenewal); since <= 40*time.Second {
			t.Errorf("Ready=Unknown %v after the last renewal, want more than the 40s grace period", since)
		}
		return nil
	})
	servertest.WaitFor(t, waitTimeout, "unreachable taints and pods not ready", func() error {
		n := e.node("n1")
		if !hasTaint(n, corev1.TaintNodeUnreachable, corev1.TaintEffectNoSchedule) || !hasTaint(n, corev1.TaintNodeUnreachable, corev1.TaintEffectNoExecute) {
			return fmt.Errorf("taints %v", n.Spec.Taints)
		}
		for _, name := range []string{"default-toleration", "tolerates-60s", "tolerates-forever"} {
			if s := podReady(e.pod(name)); s != corev1.ConditionFalse {
				return fmt.Errorf("pod %s Ready %s", name, s)
			}
		}
		return nil
	})
	var tainted time.Time
	for _, tt := range e.node("n1").Spec.Taints {
		if tt.Effect == corev1.TaintEffectNoExecute {
			tainted = tt.TimeAdded.Time
		}
	}

	evicted := func(name string) func() error {
		return func() error {
			p := e.pod(name)
			if p.DeletionTimestamp == nil {
				return fmt.Errorf("pod %s not deleted", name)
			}
			return nil
		}
	}
	e.stepUntil("tolerates-60s evicted", 10*time.Second, evicted("tolerates-60s"))
	if e.clk.Since(tainted) < 60*time.Second {
		t.Errorf("tolerates-60s evicted %v after the taint", e.clk.Since(tainted))
	}
	if p := e.pod("default-toleration"); p.DeletionTimestamp != nil {
		t.Errorf("default-toleration evicted after %v", e.clk.Since(tainted))
	}
	e.stepUntil("default-toleration evicted", 30*time.Second, evicted("default-toleration"))
	if e.clk.Since(tainted) < 5*time.Minute {
		t.Errorf("default-toleration evicted %v after the taint, want 5m", e.clk.Since(tainted))
	}
	var disrupted bool
	for _, c := range e.pod("default-toleration").Status.Conditions {
		disrupted = disrupted || (c.Type == corev1.DisruptionTarget && c.Reason == "DeletionByTaintManager")
	}
	if !disrupted {
		t.Errorf("evicted pod has no DisruptionTarget condition: %v", e.pod("default-toleration").Status.Conditions)
	}
	e.clk.Step(time.Hour)
	if p := e.pod("tolerates-forever"); p.DeletionTimestamp != nil {
		t.Errorf("pod tolerating forever was evicted")
	}

	// The node comes back.
	e.renewLease("n1")
	e.setReady("n1", corev1.ConditionTrue)
	e.stepUntil("taints removed", time.Second, func() error {
		if n := e.node("n1"); len(n.Spec.Taints) != 0 {
			return fmt.Errorf("taints %v", n.Spec.Taints)
		}
		return nil
	})
}

// TestController_NotReadyNode: a node posting Ready=False gets the not-ready taints at
// once; cordoning adds the unschedulable taint.
func TestController_NotReadyNode(t *testing.T) {
	e := start(t, false)
	e.createNode("n1")
	e.createPod("web", "n1")
	e.setReady("n1", corev1.ConditionFalse)
	e.stepUntil("not-ready taints, pod not ready", time.Second, func() error {
		n := e.node("n1")
		if !hasTaint(n, corev1.TaintNodeNotReady, corev1.TaintEffectNoSchedule) || !hasTaint(n, corev1.TaintNodeNotReady, corev1.TaintEffectNoExecute) {
			return fmt.Errorf("taints %v", n.Spec.Taints)
		}
		if s := podReady(e.pod("web")); s != corev1.ConditionFalse {
			return fmt.Errorf("pod Ready %s", s)
		}
		return nil
	})
	n := e.node("n1")
	n.Spec.Unschedulable = true
	if _, err := e.cs.CoreV1().Nodes().Update(context.Background(), n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	servertest.WaitFor(t, waitTimeout, "unschedulable taint", func() error {
		if n := e.node("n1"); !hasTaint(n, corev1.TaintNodeUnschedulable, corev1.TaintEffectNoSchedule) {
			return fmt.Errorf("taints %v", n.Spec.Taints)
		}
		return nil
	})
}

// TestController_PodsMoveToAnotherNode: the pods of a ReplicaSet on a node that dies are
// evicted after the pod eviction timeout and recreated on the other node.
func TestController_PodsMoveToAnotherNode(t *testing.T) {
	e := start(t, true)
	e.createNode("n1")
	ctx := context.Background()
	labels := map[string]string{"app": "kubia"}
	_, err := e.cs.AppsV1().ReplicaSets("default").Create(ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "kubia"},
		Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To(int32(2)), Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "kubia", Image: "luksa/kubia"}}}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	onNode := func(node string, n int) func() error {
		return func() error {
			l, err := e.cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=kubia"})
			if err != nil {
				return err
			}
			got := 0
			for _, p := range l.Items {
				if p.DeletionTimestamp == nil && p.Spec.NodeName == node {
					got++
				}
			}
			if got != n {
				return fmt.Errorf("%d live pods on %s", got, node)
			}
			return nil
		}
	}
	servertest.WaitFor(t, waitTimeout, "2 pods on n1", onNode("n1", 2))
	e.createNode("n2")
	e.stepUntil("pods recreated on n2", 20*time.Second, func() error {
		e.renewLease("n2")
		return onNode("n2", 2)()
	})
}
