package deployment_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/polymorphichelpers"
	"k8s.io/utils/clock"
	testingclock "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"kubesvc/internal/controller/deployment"
	"kubesvc/internal/controller/replicaset"
	"kubesvc/internal/servertest"
)

const waitTimeout = 30 * time.Second

// start starts a test server, a ReplicaSet controller and a Deployment controller (with clk).
func start(t *testing.T, clk clock.WithTicker) kubernetes.Interface {
	t.Helper()
	s := servertest.StartTestServer(t, servertest.WithControllers("*", "-replicaset", "-replicationcontroller", "-deployment", "-scheduler", "-nodelifecycle"))
	cs, err := kubernetes.NewForConfig(s.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	rsc, err := replicaset.New(replicaset.Config{Client: cs})
	if err != nil {
		t.Fatal(err)
	}
	dc, err := deployment.New(deployment.Config{Client: cs, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	for _, run := range []func(context.Context, int){rsc.Run, dc.Run} {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			run(ctx, 2)
		}()
		t.Cleanup(func() {
			cancel()
			<-done
		})
	}
	return cs
}

func newDeployment(name string, replicas int32, image string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}},
			},
		},
	}
}

type cluster struct {
	t  *testing.T
	cs kubernetes.Interface
}

func (c cluster) deployment(name string) *appsv1.Deployment {
	c.t.Helper()
	d, err := c.cs.AppsV1().Deployments("default").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		c.t.Fatal(err)
	}
	return d
}

// replicaSets returns d's ReplicaSets by name.
func (c cluster) replicaSets(d string) map[string]*appsv1.ReplicaSet {
	c.t.Helper()
	l, err := c.cs.AppsV1().ReplicaSets("default").List(context.Background(), metav1.ListOptions{LabelSelector: "app=" + d})
	if err != nil {
		c.t.Fatal(err)
	}
	out := map[string]*appsv1.ReplicaSet{}
	for i := range l.Items {
		out[l.Items[i].Name] = &l.Items[i]
	}
	return out
}

func (c cluster) pods(sel string) []corev1.Pod {
	c.t.Helper()
	l, err := c.cs.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		c.t.Fatal(err)
	}
	var out []corev1.Pod
	for _, p := range l.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out
}

// readyAll marks every not-ready pod of sel Ready (a kubelet whose probes pass) and
// returns how many it changed.
func (c cluster) readyAll(sel string) int {
	c.t.Helper()
	n := 0
	for _, p := range c.pods(sel) {
		if isReady(&p) {
			continue
		}
		p.Status.Phase = corev1.PodRunning
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}}
		_, err := c.cs.CoreV1().Pods("default").UpdateStatus(context.Background(), &p, metav1.UpdateOptions{})
		switch {
		case err == nil:
			n++
		case !apierrors.IsNotFound(err) && !apierrors.IsConflict(err):
			c.t.Fatalf("set %s ready: %v", p.Name, err)
		}
	}
	return n
}

func isReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// rolloutStatus is what `kubectl rollout status` prints for d.
func (c cluster) rolloutStatus(name string) (string, bool) {
	c.t.Helper()
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(c.deployment(name))
	if err != nil {
		c.t.Fatal(err)
	}
	v, err := polymorphichelpers.StatusViewerFor(appsv1.SchemeGroupVersion.WithKind("Deployment").GroupKind())
	if err != nil {
		c.t.Fatal(err)
	}
	msg, done, err := v.Status(&unstructured.Unstructured{Object: u}, 0)
	if err != nil {
		c.t.Fatalf("rollout status: %v", err)
	}
	return msg, done
}

// waitRolledOut keeps marking pods Ready until `kubectl rollout status` reports success.
func (c cluster) waitRolledOut(name string) {
	c.t.Helper()
	servertest.WaitFor(c.t, waitTimeout, "rollout of "+name, func() error {
		c.readyAll("app=" + name)
		if msg, done := c.rolloutStatus(name); !done {
			return fmt.Errorf("%s", strings.TrimSpace(msg))
		}
		return nil
	})
}

func (c cluster) setImage(name, image string) {
	c.t.Helper()
	patch := fmt.Sprintf(`{"spec":{"template":{"spec":{"containers":[{"name":"app","image":%q}]}}}}`, image)
	if _, err := c.cs.AppsV1().Deployments("default").Patch(context.Background(), name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		c.t.Fatal(err)
	}
}

// rsWithImage returns the ReplicaSet of d whose template runs image.
func (c cluster) rsWithImage(d, image string) *appsv1.ReplicaSet {
	c.t.Helper()
	for _, rs := range c.replicaSets(d) {
		if rs.Spec.Template.Spec.Containers[0].Image == image {
			return rs
		}
	}
	c.t.Fatalf("no replica set of %s runs %s", d, image)
	return nil
}

// TestController_RollingUpdate rolls kubia from v1 to v2 with maxSurge 1 and
// maxUnavailable 1, checking the bounds at every step, the pod-template-hash and revision
// annotations; then `kubectl rollout undo` (client-side, from the old ReplicaSet) and
// `kubectl rollout restart`.
func TestController_RollingUpdate(t *testing.T) {
	c := cluster{t: t, cs: start(t, nil)}
	ctx := context.Background()
	d := newDeployment("kubia", 4, "luksa/kubia:v1")
	d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{
		MaxSurge: ptr.To(intstr.FromInt32(1)), MaxUnavailable: ptr.To(intstr.FromInt32(1))}}
	if _, err := c.cs.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c.waitRolledOut("kubia")
	v1 := c.rsWithImage("kubia", "luksa/kubia:v1")
	hash := v1.Labels[appsv1.DefaultDeploymentUniqueLabelKey]
	if v1.Name != "kubia-"+hash || hash != deployment.ComputeHash(&c.deployment("kubia").Spec.Template, nil) {
		t.Errorf("replica set %s with pod-template-hash %q, want kubia-<hash of the template>", v1.Name, hash)
	}
	if got := v1.Annotations[deployment.RevisionAnnotation]; got != "1" {
		t.Errorf("revision of %s = %q, want 1", v1.Name, got)
	}
	for _, p := range c.pods("app=kubia") {
		if p.Labels[appsv1.DefaultDeploymentUniqueLabelKey] != hash {
			t.Errorf("pod %s labels %v, want pod-template-hash %s", p.Name, p.Labels, hash)
		}
	}

	c.setImage("kubia", "luksa/kubia:v2")
	c.rollWithinBounds("kubia", 4, 1, 1)
	v2 := c.rsWithImage("kubia", "luksa/kubia:v2")
	if got := v2.Annotations[deployment.RevisionAnnotation]; got != "2" {
		t.Errorf("revision of %s = %q, want 2", v2.Name, got)
	}
	if got := c.deployment("kubia").Annotations[deployment.RevisionAnnotation]; got != "2" {
		t.Errorf("deployment revision %q, want 2", got)
	}
	if *c.rsWithImage("kubia", "luksa/kubia:v1").Spec.Replicas != 0 {
		t.Errorf("old replica set not scaled down")
	}

	// kubectl rollout undo: patches the template of revision 1 back into the deployment.
	rb, err := polymorphichelpers.RollbackerFor(appsv1.SchemeGroupVersion.WithKind("Deployment").GroupKind(), c.cs)
	if err != nil {
		t.Fatal(err)
	}
	if msg, err := rb.Rollback(c.deployment("kubia"), nil, 0, cmdutil.DryRunNone); err != nil || msg != "rolled back" {
		t.Fatalf("rollout undo: %q, %v", msg, err)
	}
	c.rollWithinBounds("kubia", 4, 1, 1)
	v1 = c.rsWithImage("kubia", "luksa/kubia:v1")
	if v1.Annotations[deployment.RevisionAnnotation] != "3" || v1.Annotations[deployment.RevisionHistoryAnnotation] != "1" {
		t.Errorf("after undo %s annotations %v, want revision 3 and revision-history 1", v1.Name, v1.Annotations)
	}
	if len(c.replicaSets("kubia")) != 2 {
		t.Errorf("undo created a replica set: %v", c.replicaSets("kubia"))
	}

	// kubectl rollout restart: a template annotation, hence a new ReplicaSet.
	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":%q}}}}}`, time.Now().Format(time.RFC3339))
	if _, err := c.cs.AppsV1().Deployments("default").Patch(ctx, "kubia", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	c.rollWithinBounds("kubia", 4, 1, 1)
	if n := len(c.replicaSets("kubia")); n != 3 {
		t.Errorf("after restart %d replica sets, want 3", n)
	}
}

// rollWithinBounds drives a rollout to completion by marking new pods Ready one poll at a
// time, checking at every poll that the ReplicaSets never ask for more than
// replicas+maxSurge pods and that at least replicas-maxUnavailable pods stay Ready.
func (c cluster) rollWithinBounds(name string, replicas, surge, unavailable int32) {
	c.t.Helper()
	servertest.WaitFor(c.t, waitTimeout, "rollout of "+name+" within bounds", func() error {
		var total int32
		for _, rs := range c.replicaSets(name) {
			total += *rs.Spec.Replicas
		}
		if total > replicas+surge {
			c.t.Fatalf("replica sets ask for %d pods, more than %d+%d", total, replicas, surge)
		}
		ready := int32(0)
		for _, p := range c.pods("app=" + name) {
			if isReady(&p) {
				ready++
			}
		}
		if ready < replicas-unavailable {
			c.t.Fatalf("%d ready pods, fewer than %d-%d", ready, replicas, unavailable)
		}
		if c.readyAll("app="+name) > 0 {
			return fmt.Errorf("pods were made ready")
		}
		if msg, done := c.rolloutStatus(name); !done {
			return fmt.Errorf("%s", strings.TrimSpace(msg))
		}
		return nil
	})
}

// TestController_Recreate: the old pods are all gone before any new pod is created.
func TestController_Recreate(t *testing.T) {
	c := cluster{t: t, cs: start(t, nil)}
	d := newDeployment("db", 3, "postgres:16")
	d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	if _, err := c.cs.AppsV1().Deployments("default").Create(context.Background(), d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c.waitRolledOut("db")
	c.setImage("db", "postgres:17")
	servertest.WaitFor(t, waitTimeout, "recreate rollout", func() error {
		images := map[string]int{}
		for _, p := range c.pods("app=db") {
			images[p.Spec.Containers[0].Image]++
		}
		if images["postgres:16"] > 0 && images["postgres:17"] > 0 {
			t.Fatalf("old and new pods at once: %v", images)
		}
		c.readyAll("app=db")
		if msg, done := c.rolloutStatus("db"); !done {
			return fmt.Errorf("%s", strings.TrimSpace(msg))
		}
		return nil
	})
}

// TestController_RevisionHistoryLimit: only revisionHistoryLimit old ReplicaSets remain.
func TestController_RevisionHistoryLimit(t *testing.T) {
	c := cluster{t: t, cs: start(t, nil)}
	d := newDeployment("web", 1, "nginx:1")
	d.Spec.RevisionHistoryLimit = ptr.To(int32(1))
	if _, err := c.cs.AppsV1().Deployments("default").Create(context.Background(), d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c.waitRolledOut("web")
	for _, image := range []string{"nginx:2", "nginx:3", "nginx:4"} {
		c.setImage("web", image)
		c.waitRolledOut("web")
	}
	servertest.WaitFor(t, waitTimeout, "old replica sets cleaned up", func() error {
		rss := c.replicaSets("web")
		if len(rss) != 2 {
			return fmt.Errorf("%d replica sets", len(rss))
		}
		c.rsWithImage("web", "nginx:3")
		c.rsWithImage("web", "nginx:4")
		return nil
	})
}

// TestController_ProgressDeadline: pods that never become Ready make the Progressing
// condition False with ProgressDeadlineExceeded once progressDeadlineSeconds pass on the
// (fake) clock.
func TestController_ProgressDeadline(t *testing.T) {
	clk := testingclock.NewFakeClock(time.Now())
	c := cluster{t: t, cs: start(t, clk)}
	d := newDeployment("stuck", 2, "broken:latest")
	d.Spec.ProgressDeadlineSeconds = ptr.To(int32(60))
	if _, err := c.cs.AppsV1().Deployments("default").Create(context.Background(), d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	servertest.WaitFor(t, waitTimeout, "progressing", func() error {
		cond := progressing(c.deployment("stuck"))
		if cond == nil || cond.Status != corev1.ConditionTrue {
			return fmt.Errorf("progressing condition %+v", cond)
		}
		return nil
	})
	servertest.WaitFor(t, waitTimeout, "deadline exceeded", func() error {
		clk.Step(5 * time.Second)
		cond := progressing(c.deployment("stuck"))
		if cond == nil || cond.Reason != deployment.TimedOutReason || cond.Status != corev1.ConditionFalse {
			return fmt.Errorf("progressing condition %+v", cond)
		}
		if want := `ReplicaSet "` + c.rsWithImage("stuck", "broken:latest").Name + `" has timed out progressing.`; cond.Message != want {
			t.Errorf("message %q, want %q", cond.Message, want)
		}
		return nil
	})
	if _, _, err := rolloutStatusErr(c, "stuck"); err == nil || !strings.Contains(err.Error(), "exceeded its progress deadline") {
		t.Errorf("rollout status error %v, want exceeded its progress deadline", err)
	}
}

func progressing(d *appsv1.Deployment) *appsv1.DeploymentCondition {
	for i := range d.Status.Conditions {
		if d.Status.Conditions[i].Type == appsv1.DeploymentProgressing {
			return &d.Status.Conditions[i]
		}
	}
	return nil
}

func rolloutStatusErr(c cluster, name string) (string, bool, error) {
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(c.deployment(name))
	if err != nil {
		return "", false, err
	}
	return (&polymorphichelpers.DeploymentStatusViewer{}).Status(&unstructured.Unstructured{Object: u}, 0)
}
