package replicaset_test

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"
	testingclock "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"kubesvc/internal/controller/replicaset"
	"kubesvc/internal/servertest"
)

const waitTimeout = 30 * time.Second

// workloadControllers are the server's controllers a workload test replaces with its own.
var workloadControllers = servertest.WithControllers("*", "-replicaset", "-replicationcontroller", "-deployment", "-scheduler", "-nodelifecycle")

// start starts a test server and one controller of each kind (ReplicaSet, RC) against it.
func start(t *testing.T, clk clock.WithTicker) kubernetes.Interface {
	t.Helper()
	s := servertest.StartTestServer(t, workloadControllers)
	cs, err := kubernetes.NewForConfig(s.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []replicaset.Kind{replicaset.KindReplicaSet, replicaset.KindReplicationController} {
		c, err := replicaset.New(replicaset.Config{Client: cs, Kind: kind, Clock: clk})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			c.Run(ctx, 2)
		}()
		t.Cleanup(func() {
			cancel()
			<-done
		})
	}
	return cs
}

func template(labels map[string]string) *corev1.PodTemplateSpec {
	return &corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "kubia", Image: "luksa/kubia", Ports: []corev1.ContainerPort{{ContainerPort: 8080}}}}},
	}
}

// kubiaRC is the book's kubia ReplicationController.
func kubiaRC(replicas int32) *corev1.ReplicationController {
	return &corev1.ReplicationController{
		ObjectMeta: metav1.ObjectMeta{Name: "kubia"},
		Spec: corev1.ReplicationControllerSpec{
			Replicas: ptr.To(replicas),
			Selector: map[string]string{"app": "kubia"},
			Template: template(map[string]string{"app": "kubia"}),
		},
	}
}

func replicaSet(name string, replicas int32, labels map[string]string) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: *template(labels),
		},
	}
}

// activePods lists the pods selected by sel that are not being deleted, sorted by name.
func activePods(t *testing.T, cs kubernetes.Interface, ns, sel string) []corev1.Pod {
	t.Helper()
	l, err := cs.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		t.Fatal(err)
	}
	var out []corev1.Pod
	for _, p := range l.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func waitPods(t *testing.T, cs kubernetes.Interface, ns, sel string, n int) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	servertest.WaitFor(t, waitTimeout, fmt.Sprintf("%d pods %s", n, sel), func() error {
		pods = activePods(t, cs, ns, sel)
		if len(pods) != n {
			return fmt.Errorf("%d pods", len(pods))
		}
		return nil
	})
	return pods
}

// setReady writes the pod's Ready condition as a kubelet would (phase Running).
func setReady(t *testing.T, cs kubernetes.Interface, p *corev1.Pod, ready bool, at time.Time) {
	t.Helper()
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	ctx := context.Background()
	for {
		cur, err := cs.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cur.Status.Phase = corev1.PodRunning
		cur.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: status, LastTransitionTime: metav1.NewTime(at)}}
		_, err = cs.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		if !apierrors.IsConflict(err) {
			if err != nil {
				t.Fatalf("set pod %s ready: %v", p.Name, err)
			}
			return
		}
	}
}

func scaleRC(t *testing.T, cs kubernetes.Interface, ns, name string, n int32) {
	t.Helper()
	_, err := cs.CoreV1().ReplicationControllers(ns).UpdateScale(context.Background(), name,
		&autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: autoscalingv1.ScaleSpec{Replicas: n}}, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("scale %s to %d: %v", name, n, err)
	}
}

var generatedName = regexp.MustCompile(`^kubia-[bcdfghjklmnpqrstvwxz2456789]{5}$`)

// TestController_KubiaRC is the book's flow: an RC keeps 3 pods through `kubectl delete po
// --all`, scaling up and down; pods carry generated names and a controller reference.
func TestController_KubiaRC(t *testing.T) {
	cs := start(t, nil)
	ctx := context.Background()
	rc, err := cs.CoreV1().ReplicationControllers("default").Create(ctx, kubiaRC(3), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pods := waitPods(t, cs, "default", "app=kubia", 3)
	for _, p := range pods {
		if !generatedName.MatchString(p.Name) || p.GenerateName != "kubia-" {
			t.Errorf("pod name %q (generateName %q), want kubia-xxxxx", p.Name, p.GenerateName)
		}
		want := []metav1.OwnerReference{{APIVersion: "v1", Kind: "ReplicationController", Name: "kubia", UID: rc.UID,
			Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}}
		if diff := cmp.Diff(want, p.OwnerReferences); diff != "" {
			t.Errorf("pod %s ownerReferences (-want +got):\n%s", p.Name, diff)
		}
	}

	// kubectl delete po --all
	for _, p := range pods {
		if err := cs.CoreV1().Pods("default").Delete(ctx, p.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	again := waitPods(t, cs, "default", "app=kubia", 3)
	for _, p := range again {
		if slices.ContainsFunc(pods, func(o corev1.Pod) bool { return o.UID == p.UID }) {
			t.Errorf("pod %s survived the deletion", p.Name)
		}
	}

	scaleRC(t, cs, "default", "kubia", 5)
	waitPods(t, cs, "default", "app=kubia", 5)
	scaleRC(t, cs, "default", "kubia", 2)
	waitPods(t, cs, "default", "app=kubia", 2)
	waitStatus(t, cs, "kubia", corev1.ReplicationControllerStatus{Replicas: 2, FullyLabeledReplicas: 2, ObservedGeneration: 3})
}

func waitStatus(t *testing.T, cs kubernetes.Interface, name string, want corev1.ReplicationControllerStatus) {
	t.Helper()
	servertest.WaitFor(t, waitTimeout, "rc status", func() error {
		rc, err := cs.CoreV1().ReplicationControllers("default").Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if diff := cmp.Diff(want, rc.Status); diff != "" {
			return fmt.Errorf("status (-want +got):\n%s", diff)
		}
		return nil
	})
}

// TestController_ScaleDownOrder checks that scale-down deletes not-ready pods before ready
// ones, and that the status counts ready and available pods.
func TestController_ScaleDownOrder(t *testing.T) {
	cs := start(t, nil)
	ctx := context.Background()
	if _, err := cs.AppsV1().ReplicaSets("default").Create(ctx, replicaSet("web", 4, map[string]string{"app": "web"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pods := waitPods(t, cs, "default", "app=web", 4)
	ready := map[types.UID]bool{}
	for _, p := range pods[:2] {
		setReady(t, cs, &p, true, time.Now())
		ready[p.UID] = true
	}
	servertest.WaitFor(t, waitTimeout, "readyReplicas 2", func() error {
		rs, err := cs.AppsV1().ReplicaSets("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if rs.Status.ReadyReplicas != 2 || rs.Status.AvailableReplicas != 2 {
			return fmt.Errorf("status %+v", rs.Status)
		}
		return nil
	})
	rs, err := cs.AppsV1().ReplicaSets("default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rs.Spec.Replicas = ptr.To(int32(2))
	if _, err := cs.AppsV1().ReplicaSets("default").Update(ctx, rs, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range waitPods(t, cs, "default", "app=web", 2) {
		if !ready[p.UID] {
			t.Errorf("kept pod %s is not one of the ready pods", p.Name)
		}
	}
	servertest.WaitFor(t, waitTimeout, "status after scale-down", func() error {
		rs, err := cs.AppsV1().ReplicaSets("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		want := appsv1.ReplicaSetStatus{Replicas: 2, FullyLabeledReplicas: 2, ReadyReplicas: 2, AvailableReplicas: 2,
			TerminatingReplicas: ptr.To(int32(0)), ObservedGeneration: rs.Generation}
		if diff := cmp.Diff(want, rs.Status); diff != "" {
			return fmt.Errorf("status (-want +got):\n%s", diff)
		}
		return nil
	})
}

// TestController_AdoptAndRelease: a matching orphan is adopted (so one pod fewer is
// created), a pod whose labels stop matching is released and replaced, and a pod matching
// the selector but not the whole template is not fully labeled.
func TestController_AdoptAndRelease(t *testing.T) {
	cs := start(t, nil)
	ctx := context.Background()
	orphan := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "orphan", Labels: map[string]string{"app": "db"}},
		Spec:       template(nil).Spec,
	}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, orphan, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rs := replicaSet("db", 2, map[string]string{"app": "db"})
	rs.Spec.Template.Labels = map[string]string{"app": "db", "tier": "backend"}
	created, err := cs.AppsV1().ReplicaSets("default").Create(ctx, rs, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pods := waitPods(t, cs, "default", "app=db", 2)
	servertest.WaitFor(t, waitTimeout, "orphan adopted", func() error {
		p, err := cs.CoreV1().Pods("default").Get(ctx, "orphan", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if ref := metav1.GetControllerOf(p); ref == nil || ref.UID != created.UID || !ptr.Deref(ref.BlockOwnerDeletion, false) {
			return fmt.Errorf("ownerReferences %v", p.OwnerReferences)
		}
		return nil
	})
	servertest.WaitFor(t, waitTimeout, "fullyLabeledReplicas 1", func() error {
		got, err := cs.AppsV1().ReplicaSets("default").Get(ctx, "db", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if got.Status.Replicas != 2 || got.Status.FullyLabeledReplicas != 1 {
			return fmt.Errorf("status %+v", got.Status)
		}
		return nil
	})

	// Relabel the non-orphan pod out of the selector: it is released and replaced.
	var other corev1.Pod
	for _, p := range pods {
		if p.Name != "orphan" {
			other = p
		}
	}
	patch := []byte(`{"metadata":{"labels":{"app":"debug"}}}`)
	if _, err := cs.CoreV1().Pods("default").Patch(ctx, other.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	servertest.WaitFor(t, waitTimeout, "relabelled pod released", func() error {
		p, err := cs.CoreV1().Pods("default").Get(ctx, other.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if len(p.OwnerReferences) != 0 {
			return fmt.Errorf("ownerReferences %v", p.OwnerReferences)
		}
		return nil
	})
	waitPods(t, cs, "default", "app=db", 2)
}

// TestController_MinReadySeconds: Ready pods count as available only minReadySeconds after
// they became Ready; the controller re-checks when the (fake) clock gets there.
func TestController_MinReadySeconds(t *testing.T) {
	clk := testingclock.NewFakeClock(time.Now())
	cs := start(t, clk)
	ctx := context.Background()
	rs := replicaSet("slow", 2, map[string]string{"app": "slow"})
	rs.Spec.MinReadySeconds = 30
	if _, err := cs.AppsV1().ReplicaSets("default").Create(ctx, rs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range waitPods(t, cs, "default", "app=slow", 2) {
		setReady(t, cs, &p, true, clk.Now())
	}
	status := func(ready, available int32) func() error {
		return func() error {
			got, err := cs.AppsV1().ReplicaSets("default").Get(ctx, "slow", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if got.Status.ReadyReplicas != ready || got.Status.AvailableReplicas != available {
				return fmt.Errorf("ready %d available %d", got.Status.ReadyReplicas, got.Status.AvailableReplicas)
			}
			return nil
		}
	}
	servertest.WaitFor(t, waitTimeout, "ready but not available", status(2, 0))
	servertest.WaitFor(t, waitTimeout, "available after minReadySeconds", func() error {
		clk.Step(time.Second) // the controller's AddAfter timers fire on the fake clock
		return status(2, 2)()
	})
}
