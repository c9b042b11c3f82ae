package namespace_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	testingclock "k8s.io/utils/clock/testing"

	"kubesvc/internal/controller/namespace"
	"kubesvc/internal/servertest"
)

const waitTimeout = 30 * time.Second

// startController starts a test server and a namespace controller against it.
func startController(t *testing.T, cfg namespace.Config) (kubernetes.Interface, metadata.Interface) {
	t.Helper()
	s := servertest.StartTestServer(t, servertest.WithControllers("*", "-namespace"))
	cs, err := kubernetes.NewForConfig(s.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	md, err := metadata.NewForConfig(s.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Client, cfg.Metadata = cs, md
	c, err := namespace.New(cfg)
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
	return cs, md
}

func createNamespace(t *testing.T, cs kubernetes.Interface, name string, extraFinalizers ...corev1.FinalizerName) {
	t.Helper()
	ctx := context.Background()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	if len(extraFinalizers) == 0 {
		return
	}
	ns, err := cs.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ns.Spec.Finalizers = append(ns.Spec.Finalizers, extraFinalizers...)
	if _, err := cs.CoreV1().Namespaces().Finalize(ctx, ns, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("add namespace finalizers: %v", err)
	}
}

// deleteNamespace deletes ns as `kubectl delete ns` does (background propagation).
func deleteNamespace(t *testing.T, cs kubernetes.Interface, name string) {
	t.Helper()
	bg := metav1.DeletePropagationBackground
	if err := cs.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil {
		t.Fatalf("delete namespace %s: %v", name, err)
	}
}

func namespaceGone(cs kubernetes.Interface, name string) func() error {
	return func() error {
		ns, err := cs.CoreV1().Namespaces().Get(context.Background(), name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		return fmt.Errorf("namespace %s still exists: phase %s, spec.finalizers %v, conditions %v", name, ns.Status.Phase, ns.Spec.Finalizers, ns.Status.Conditions)
	}
}

func pod(name, node string, grace int64) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			NodeName:                      node,
			TerminationGracePeriodSeconds: &grace,
			Containers:                    []corev1.Container{{Name: "c", Image: "busybox"}},
		},
	}
}

// TestController_DeleteNamespace is `kubectl delete ns x`: services, configmaps, secrets and
// pods (one unbound, one bound to a node with no agent) go, then the namespace.
func TestController_DeleteNamespace(t *testing.T) {
	cs, md := startController(t, namespace.Config{ForceDeletePodsAfter: -1})
	ctx := context.Background()
	const ns = "x"
	createNamespace(t, cs, ns)
	mustCreate := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("create %s: %v", what, err)
		}
	}
	_, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}, Selector: map[string]string{"app": "web"}},
	}, metav1.CreateOptions{})
	mustCreate("service", err)
	_, err = cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg"}}, metav1.CreateOptions{})
	mustCreate("configmap", err)
	_, err = cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s"}}, metav1.CreateOptions{})
	mustCreate("secret", err)
	_, err = cs.CoreV1().Pods(ns).Create(ctx, pod("unbound", "", 30), metav1.CreateOptions{})
	mustCreate("unbound pod", err)
	_, err = cs.CoreV1().Pods(ns).Create(ctx, pod("bound", "node-1", 1), metav1.CreateOptions{})
	mustCreate("bound pod", err)

	deleteNamespace(t, cs, ns)
	servertest.WaitFor(t, waitTimeout, "namespace deleted", namespaceGone(cs, ns))

	for _, tc := range []struct {
		name string
		gvr  schema.GroupVersionResource
	}{
		{name: "services", gvr: corev1.SchemeGroupVersion.WithResource("services")},
		{name: "configmaps", gvr: corev1.SchemeGroupVersion.WithResource("configmaps")},
		{name: "secrets", gvr: corev1.SchemeGroupVersion.WithResource("secrets")},
		{name: "pods", gvr: corev1.SchemeGroupVersion.WithResource("pods")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := md.Resource(tc.gvr).Namespace(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(l.Items) != 0 {
				t.Errorf("%d %s left in deleted namespace %s", len(l.Items), tc.name, ns)
			}
		})
	}
}

// TestController_TerminatingNamespace: creates in a terminating namespace are refused, the
// controller removes only its own finalizer and reports why the namespace stays.
func TestController_TerminatingNamespace(t *testing.T) {
	cs, _ := startController(t, namespace.Config{})
	ctx := context.Background()
	const ns = "held"
	createNamespace(t, cs, ns, "example.com/hold")
	if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "pinned", Finalizers: []string{"example.com/pin"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	deleteNamespace(t, cs, ns)

	_, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "late"}}, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) || !apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
		t.Fatalf("create in terminating namespace: got %v, want 403 with cause %s", err, corev1.NamespaceTerminatingCause)
	}

	servertest.WaitFor(t, waitTimeout, "finalizers-remaining condition", func() error {
		return hasCondition(cs, ns, corev1.NamespaceFinalizersRemaining, corev1.ConditionTrue,
			"Some finalizers are remaining: example.com/pin in 1 resource instances")
	})
	if err := hasCondition(cs, ns, corev1.NamespaceContentRemaining, corev1.ConditionTrue,
		"Some resources are remaining: configmaps. has 1 resource instances"); err != nil {
		t.Error(err)
	}
	cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "pinned", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Finalizers = nil
	if _, err := cs.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("release configmap: %v", err)
	}

	servertest.WaitFor(t, waitTimeout, "kubernetes finalizer removed", func() error {
		got, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if slices.Contains(got.Spec.Finalizers, corev1.FinalizerKubernetes) {
			return fmt.Errorf("spec.finalizers %v", got.Spec.Finalizers)
		}
		if !slices.Contains(got.Spec.Finalizers, "example.com/hold") {
			t.Fatalf("controller removed a finalizer it does not own: %v", got.Spec.Finalizers)
		}
		return nil
	})
	if err := hasCondition(cs, ns, corev1.NamespaceContentRemaining, corev1.ConditionFalse, "All content successfully removed"); err != nil {
		t.Error(err)
	}

	got, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got.Spec.Finalizers = nil
	if _, err := cs.CoreV1().Namespaces().Finalize(ctx, got, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("finalize: %v", err)
	}
	servertest.WaitFor(t, waitTimeout, "namespace deleted", namespaceGone(cs, ns))
}

// TestController_PodsOfLiveNodes: past the force-deletion deadline (a fake clock an hour
// ahead), a pod whose node does not exist is force-deleted, while one on a Ready node is left
// to that node's agent, which finishes it here by hand.
func TestController_PodsOfLiveNodes(t *testing.T) {
	cs, _ := startController(t, namespace.Config{Clock: testingclock.NewFakePassiveClock(time.Now().Add(time.Hour))})
	ctx := context.Background()
	node, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "live"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	if _, err := cs.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("mark node ready: %v", err)
	}
	const ns = "agents"
	createNamespace(t, cs, ns)
	for _, p := range []*corev1.Pod{pod("on-live", "live", 30), pod("on-missing", "missing", 30)} {
		if _, err := cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	deleteNamespace(t, cs, ns)
	servertest.WaitFor(t, waitTimeout, "pod of missing node force-deleted, pod of live node kept", func() error {
		if _, err := cs.CoreV1().Pods(ns).Get(ctx, "on-missing", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("pod on-missing: %v", err)
		}
		return hasCondition(cs, ns, corev1.NamespaceContentRemaining, corev1.ConditionTrue, "Some resources are remaining: pods. has 1 resource instances")
	})
	live, err := cs.CoreV1().Pods(ns).Get(ctx, "on-live", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("pod of live node: %v", err)
	}
	if live.DeletionTimestamp == nil {
		t.Fatal("pod of live node not deleted gracefully")
	}
	zero := int64(0)
	if err := cs.CoreV1().Pods(ns).Delete(ctx, "on-live", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatalf("agent's final delete: %v", err)
	}
	servertest.WaitFor(t, waitTimeout, "namespace deleted", namespaceGone(cs, ns))
}

func hasCondition(cs kubernetes.Interface, ns string, typ corev1.NamespaceConditionType, status corev1.ConditionStatus, msg string) error {
	got, err := cs.CoreV1().Namespaces().Get(context.Background(), ns, metav1.GetOptions{})
	if err != nil {
		return err
	}
	for _, c := range got.Status.Conditions {
		if c.Type == typ {
			if c.Status != status || c.Message != msg {
				return fmt.Errorf("condition %s: status %s message %q, want %s %q", typ, c.Status, c.Message, status, msg)
			}
			return nil
		}
	}
	return errors.New("no condition " + string(typ))
}
