package proxytest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"kubesvc/internal/servertest"
)

// changeWithin bounds how long a proxy takes to serve an API change (a sync every second at
// most, PX-S-01; generous for loaded CI).
const changeWithin = 15 * time.Second

// lifecycle creates a Service, gives it an endpoint, changes its port and deletes it; after
// each change the proxies must serve the new state (incremental syncs, spec §6.4).
func lifecycle(t *testing.T, e *Env) {
	ctx := context.Background()
	c := e.World.Client.CoreV1()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "life"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Selector: map[string]string{"life": "y"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt(httpPort), Protocol: corev1.ProtocolTCP}}},
	}
	created, err := c.Services(Namespace).Create(ctx, svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.setService(created)
	until := func(what string, f From, to To, cond func(answer) error) {
		t.Helper()
		servertest.WaitFor(t, changeWithin, what, func() error {
			a, err := e.probe(f, to, dropWait)
			if err != nil {
				return err
			}
			return cond(a)
		})
	}
	isRefused := func(a answer) error {
		if a.fail != refused {
			return fmt.Errorf("%v, want refused", a)
		}
		return nil
	}
	reaches := func(pods ...string) func(answer) error {
		return func(a answer) error {
			if a.fail != ok || !slices.Contains(pods, a.pod) {
				return fmt.Errorf("%v, want one of %v", a, pods)
			}
			return nil
		}
	}
	fails := func(a answer) error {
		if a.fail == ok {
			return fmt.Errorf("%v, want no answer", a)
		}
		return nil
	}
	// 1. New Service without endpoints: rejected (PX-T-01).
	until("new Service without endpoints refused", PodOn(1), ClusterIP("life", "http"), isRefused)
	// 2. An endpoint joins.
	patch := []byte(`{"metadata":{"labels":{"life":"y"}}}`)
	if _, err := c.Pods(Namespace).Patch(ctx, "p2", types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	until("the endpoint reached through the ClusterIP", PodOn(1), ClusterIP("life", "http"), reaches("p2"))
	until("the endpoint reached through the NodePort", Client, NodePort("life", "http", 1), reaches("p2"))
	// 3. The port changes: the old one is an undefined port of the ClusterIP (rejected, §5.2).
	latest, err := c.Services(Namespace).Get(ctx, "life", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	oldNodePort := latest.Spec.Ports[0].NodePort
	latest.Spec.Ports[0].Port = 90
	updated, err := c.Services(Namespace).Update(ctx, latest, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.setService(updated)
	until("the new port reaches the endpoint", PodOn(1), ClusterIP("life", "http"), reaches("p2"))
	until("the old port refused", PodOn(1), ClusterIPPort("life", 80), isRefused)
	if updated.Spec.Ports[0].NodePort != oldNodePort {
		t.Fatalf("the NodePort changed from %d to %d on a port update", oldNodePort, updated.Spec.Ports[0].NodePort)
	}
	// 4. Deleted: neither the ClusterIP nor the NodePort answers any more.
	if err := c.Services(Namespace).Delete(ctx, "life", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	until("the deleted Service's ClusterIP no longer answers", PodOn(1), ClusterIP("life", "http"), fails)
	until("the deleted Service's NodePort no longer answers", Client, NodePort("life", "http", 1), fails)
}

// setService records a Service the case created or changed.
func (e *Env) setService(s *corev1.Service) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.Services[s.Name] = s
}
