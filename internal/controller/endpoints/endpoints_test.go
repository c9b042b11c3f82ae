package endpoints_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"kubesvc/internal/controller/endpoints"
	"kubesvc/internal/controller/endpointtest"
	"kubesvc/internal/servertest"
)

const waitTimeout = 30 * time.Second

// start starts a test server running only the garbage collector and node-a; before runs
// against it, then the controller under test starts.
func start(t *testing.T, before func(cs kubernetes.Interface)) kubernetes.Interface {
	t.Helper()
	s := servertest.StartTestServer(t, servertest.WithControllers("garbagecollector"))
	cs, err := kubernetes.NewForConfig(s.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := endpointtest.CreateNode(ctx, cs, "node-a", "zone-a"); err != nil {
		t.Fatal(err)
	}
	if before != nil {
		before(cs)
	}
	c, err := endpoints.New(endpoints.Config{Client: cs})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(runCtx, 5)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return cs
}

func mustNS(t *testing.T, cs kubernetes.Interface, ns string) {
	t.Helper()
	if err := endpointtest.CreateNamespace(context.Background(), cs, ns, false); err != nil {
		t.Fatal(err)
	}
}

func mustService(t *testing.T, cs kubernetes.Interface, ns string, svc *corev1.Service) *corev1.Service {
	t.Helper()
	out, err := cs.CoreV1().Services(ns).Create(context.Background(), svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create service %s/%s: %v", ns, svc.Name, err)
	}
	return out
}

func mustPod(t *testing.T, cs kubernetes.Interface, ns, name string, st endpointtest.PodState) {
	t.Helper()
	if _, err := endpointtest.CreatePod(context.Background(), cs, ns, name, st); err != nil {
		t.Fatal(err)
	}
}

// waitSubsets waits until the Endpoints ns/name lists exactly want
// (endpointtest.SubsetStrings lines) and returns it.
func waitSubsets(t *testing.T, cs kubernetes.Interface, ns, name string, want []string) *corev1.Endpoints {
	t.Helper()
	slices.Sort(want)
	var ep *corev1.Endpoints
	servertest.WaitFor(t, waitTimeout, fmt.Sprintf("endpoints %s/%s", ns, name), func() error {
		var err error
		ep, err = cs.CoreV1().Endpoints(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if got := endpointtest.SubsetStrings(ep.Subsets); !slices.Equal(got, want) {
			return fmt.Errorf("got\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
		}
		return nil
	})
	return ep
}

var web = map[string]string{"app": "web"}

func httpPort(n int32) []corev1.ContainerPort {
	return []corev1.ContainerPort{{Name: "http", ContainerPort: n, Protocol: corev1.ProtocolTCP}}
}

// TestController_Rules runs one scenario per spec rule, each in its own namespace of one
// server.
func TestController_Rules(t *testing.T) {
	cs := start(t, nil)
	ctx := context.Background()
	tests := []struct {
		name string
		run  func(t *testing.T, ns string)
	}{
		{name: "EP-E-01 one object per service, service labels plus managed-by, empty subsets without pods", run: func(t *testing.T, ns string) {
			svc := endpointtest.Service("web", web, endpointtest.Port("", 80, corev1.ProtocolTCP, 8080))
			svc.Labels = map[string]string{"team": "a"}
			mustService(t, cs, ns, svc)
			ep := waitSubsets(t, cs, ns, "web", nil)
			want := map[string]string{"team": "a", endpoints.LabelManagedBy: endpoints.ControllerName}
			if d := cmp.Diff(want, ep.Labels); d != "" {
				t.Errorf("labels (-want +got):\n%s", d)
			}
			// Service label changes follow.
			svc, err := cs.CoreV1().Services(ns).Get(ctx, "web", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			svc.Labels = map[string]string{"team": "b"}
			if _, err := cs.CoreV1().Services(ns).Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			servertest.WaitFor(t, waitTimeout, "labels follow the service", func() error {
				ep, err := cs.CoreV1().Endpoints(ns).Get(ctx, "web", metav1.GetOptions{})
				if err != nil {
					return err
				}
				if ep.Labels["team"] != "b" {
					return fmt.Errorf("labels %v", ep.Labels)
				}
				return nil
			})
		}},
		{name: "EP-E-03 EP-E-04 EP-S-02 ready, not ready, terminating and terminal pods", run: func(t *testing.T, ns string) {
			mustService(t, cs, ns, endpointtest.Service("web", web, endpointtest.Port("http", 80, corev1.ProtocolTCP, 8080)))
			mustPod(t, cs, ns, "ready", endpointtest.PodState{Labels: web, Node: "node-a", IPs: []string{"10.1.0.1"}, Ready: true})
			mustPod(t, cs, ns, "unready", endpointtest.PodState{Labels: web, Node: "node-a", IPs: []string{"10.1.0.2"}})
			mustPod(t, cs, ns, "failed", endpointtest.PodState{Labels: web, Node: "node-a", IPs: []string{"10.1.0.3"}, Phase: corev1.PodFailed})
			mustPod(t, cs, ns, "leaving", endpointtest.PodState{Labels: web, Node: "node-a", IPs: []string{"10.1.0.4"}, Ready: true})
			if err := cs.CoreV1().Pods(ns).Delete(ctx, "leaving", metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			ep := waitSubsets(t, cs, ns, "web", []string{
				"[http/TCP:8080] ready 10.1.0.1 node=node-a host= ref=Pod/ready",
				"[http/TCP:8080] notready 10.1.0.2 node=node-a host= ref=Pod/unready",
			})
			if _, ok := ep.Labels[corev1.IsHeadlessService]; ok {
				t.Errorf("labels %v: a ClusterIP service is not headless", ep.Labels)
			}
		}},
		{name: "EP-E-04 publishNotReadyAddresses lists unready and terminating pods as ready", run: func(t *testing.T, ns string) {
			svc := endpointtest.Service("web", web, endpointtest.Port("http", 80, corev1.ProtocolTCP, 8080))
			svc.Spec.PublishNotReadyAddresses = true
			mustService(t, cs, ns, svc)
			mustPod(t, cs, ns, "unready", endpointtest.PodState{Labels: web, Node: "node-a", IPs: []string{"10.2.0.1"}})
			mustPod(t, cs, ns, "leaving", endpointtest.PodState{Labels: web, Node: "node-a", IPs: []string{"10.2.0.2"}, Ready: true})
			if err := cs.CoreV1().Pods(ns).Delete(ctx, "leaving", metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			waitSubsets(t, cs, ns, "web", []string{
				"[http/TCP:8080] ready 10.2.0.1 node=node-a host= ref=Pod/unready",
				"[http/TCP:8080] ready 10.2.0.2 node=node-a host= ref=Pod/leaving",
			})
		}},
		{name: "EP-E-06 EP-S-05 one named port on different numbers: one subset per distinct address set", run: func(t *testing.T, ns string) {
			mustService(t, cs, ns, endpointtest.Service("web", web,
				endpointtest.Port("http", 80, corev1.ProtocolTCP, "http"),
				endpointtest.Port("admin", 81, corev1.ProtocolTCP, 9999)))
			mustPod(t, cs, ns, "a", endpointtest.PodState{Labels: web, Node: "node-a", IPs: []string{"10.3.0.1"}, Ready: true, Ports: httpPort(8080)})
			mustPod(t, cs, ns, "b", endpointtest.PodState{Labels: web, Node: "node-a", IPs: []string{"10.3.0.2"}, Ready: true, Ports: httpPort(8080)})
			mustPod(t, cs, ns, "c", endpointtest.PodState{Labels: web, Node: "node-a", IPs: []string{"10.3.0.3"}, Ports: httpPort(9090)})
			mustPod(t, cs, ns, "noname", endpointtest.PodState{Labels: web, Node: "node-a", IPs: []string{"10.3.0.4"}, Ready: true})
			ep := waitSubsets(t, cs, ns, "web", []string{
				// Subsets group addresses by port: admin serves all four, http:8080 two.
				"[admin/TCP:9999] notready 10.3.0.3 node=node-a host= ref=Pod/c",
				"[admin/TCP:9999] ready 10.3.0.1 node=node-a host= ref=Pod/a",
				"[admin/TCP:9999] ready 10.3.0.2 node=node-a host= ref=Pod/b",
				"[admin/TCP:9999] ready 10.3.0.4 node=node-a host= ref=Pod/noname",
				"[http/TCP:8080] ready 10.3.0.1 node=node-a host= ref=Pod/a",
				"[http/TCP:8080] ready 10.3.0.2 node=node-a host= ref=Pod/b",
				"[http/TCP:9090] notready 10.3.0.3 node=node-a host= ref=Pod/c",
			})
			if len(ep.Subsets) != 3 {
				t.Errorf("%d subsets, want 3 (admin, http:8080, http:9090)", len(ep.Subsets))
			}
		}},
		{name: "EP-E-05 EP-S-04 headless without ports, hostname, headless label", run: func(t *testing.T, ns string) {
			svc := endpointtest.Service("web", web)
			svc.Spec.ClusterIP = corev1.ClusterIPNone
			mustService(t, cs, ns, svc)
			mustPod(t, cs, ns, "a", endpointtest.PodState{Labels: web, Node: "node-a", IPs: []string{"10.4.0.1"}, Ready: true, Hostname: "web-a", Subdomain: "web"})
			mustPod(t, cs, ns, "b", endpointtest.PodState{Labels: web, Node: "node-a", IPs: []string{"10.4.0.2"}, Hostname: "web-b", Subdomain: "other"})
			ep := waitSubsets(t, cs, ns, "web", []string{
				"[] ready 10.4.0.1 node=node-a host=web-a ref=Pod/a",
				"[] notready 10.4.0.2 node=node-a host= ref=Pod/b",
			})
			if v, ok := ep.Labels[corev1.IsHeadlessService]; !ok || v != "" {
				t.Errorf("labels %v, want %s=\"\"", ep.Labels, corev1.IsHeadlessService)
			}
		}},
		{name: "EP-E-02 only the address of the service's first family", run: func(t *testing.T, ns string) {
			mustService(t, cs, ns, endpointtest.Service("web", web, endpointtest.Port("", 80, corev1.ProtocolTCP, 8080)))
			mustPod(t, cs, ns, "dual", endpointtest.PodState{Labels: web, Node: "node-a", IPs: []string{"fd00::5", "10.5.0.1"}, Ready: true})
			mustPod(t, cs, ns, "v6", endpointtest.PodState{Labels: web, Node: "node-a", IPs: []string{"fd00::6"}, Ready: true})
			waitSubsets(t, cs, ns, "web", []string{
				"[/TCP:8080] ready 10.5.0.1 node=node-a host= ref=Pod/dual",
			})
		}},
		{name: "EP-E-08 no write when nothing the controller owns changed", run: func(t *testing.T, ns string) {
			mustService(t, cs, ns, endpointtest.Service("web", web, endpointtest.Port("", 80, corev1.ProtocolTCP, 8080)))
			mustService(t, cs, ns, endpointtest.Service("probe", map[string]string{"app": "probe"}, endpointtest.Port("", 80, corev1.ProtocolTCP, 8080)))
			mustPod(t, cs, ns, "a", endpointtest.PodState{Labels: web, Node: "node-a", IPs: []string{"10.6.0.1"}, Ready: true})
			before := waitSubsets(t, cs, ns, "web", []string{"[/TCP:8080] ready 10.6.0.1 node=node-a host= ref=Pod/a"})
			svc, err := cs.CoreV1().Services(ns).Get(ctx, "web", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			svc.Annotations = map[string]string{"note": "resync me"}
			if _, err := cs.CoreV1().Services(ns).Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			// A later change of another Service shows the controller has caught up.
			mustPod(t, cs, ns, "p", endpointtest.PodState{Labels: map[string]string{"app": "probe"}, Node: "node-a", IPs: []string{"10.6.0.2"}, Ready: true})
			waitSubsets(t, cs, ns, "probe", []string{"[/TCP:8080] ready 10.6.0.2 node=node-a host= ref=Pod/p"})
			after, err := cs.CoreV1().Endpoints(ns).Get(ctx, "web", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if after.ResourceVersion != before.ResourceVersion {
				t.Errorf("endpoints rewritten (resourceVersion %s → %s) for a no-op service change", before.ResourceVersion, after.ResourceVersion)
			}
		}},
		{name: "EP-E-09 EP-S-01 deleting the service deletes its endpoints; selectorless and ExternalName get none", run: func(t *testing.T, ns string) {
			mustService(t, cs, ns, endpointtest.Service("web", web, endpointtest.Port("", 80, corev1.ProtocolTCP, 8080)))
			mustService(t, cs, ns, endpointtest.Service("manual", nil, endpointtest.Port("", 80, corev1.ProtocolTCP, 8080)))
			ext := endpointtest.Service("ext", web)
			ext.Spec.Type, ext.Spec.ExternalName = corev1.ServiceTypeExternalName, "example.com"
			mustService(t, cs, ns, ext)
			waitSubsets(t, cs, ns, "web", nil)
			if err := cs.CoreV1().Services(ns).Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			servertest.WaitFor(t, waitTimeout, "endpoints deleted with the service", func() error {
				_, err := cs.CoreV1().Endpoints(ns).Get(ctx, "web", metav1.GetOptions{})
				if apierrors.IsNotFound(err) {
					return nil
				}
				return fmt.Errorf("endpoints still there (err %v)", err)
			})
			for _, name := range []string{"manual", "ext"} {
				if _, err := cs.CoreV1().Endpoints(ns).Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
					t.Errorf("endpoints %s: err %v, want NotFound", name, err)
				}
			}
		}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ns := fmt.Sprintf("rule-%d", i)
			mustNS(t, cs, ns)
			tc.run(t, ns)
		})
	}
}

// TestController_OrphanCleanup is EP-E-09: Endpoints left without a Service while the
// controller was down are deleted when it starts, except leader-election records.
func TestController_OrphanCleanup(t *testing.T) {
	ctx := context.Background()
	mk := func(name string, annotations map[string]string) *corev1.Endpoints {
		return &corev1.Endpoints{
			ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations},
			Subsets:    []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{{IP: "192.0.2.1"}}, Ports: []corev1.EndpointPort{{Port: 80}}}},
		}
	}
	cs := start(t, func(cs kubernetes.Interface) {
		for _, ep := range []*corev1.Endpoints{
			mk("orphan", nil),
			mk("leader", map[string]string{resourcelock.LeaderElectionRecordAnnotationKey: "{}"}),
		} {
			if _, err := cs.CoreV1().Endpoints("default").Create(ctx, ep, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	})
	servertest.WaitFor(t, waitTimeout, "orphan deleted", func() error {
		_, err := cs.CoreV1().Endpoints("default").Get(ctx, "orphan", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("orphan still there (err %v)", err)
	})
	if _, err := cs.CoreV1().Endpoints("default").Get(ctx, "leader", metav1.GetOptions{}); err != nil {
		t.Errorf("leader-election record: %v", err)
	}
}

// TestController_Capacity is EP-E-07 with 1000 Ready and 10 not-Ready pods behind one
// Service: 1000 addresses, the not-ready ones dropped, the object annotated; the annotation
// goes when the count falls back to 1000.
func TestController_Capacity(t *testing.T) {
	cs := start(t, nil)
	ctx := context.Background()
	const ns = "big"
	mustNS(t, cs, ns)
	mustService(t, cs, ns, endpointtest.Service("web", web, endpointtest.Port("", 80, corev1.ProtocolTCP, 8080)))
	err := endpointtest.CreatePods(ctx, cs, ns, "web", 1010, 8, func(i int) endpointtest.PodState {
		return endpointtest.PodState{Labels: web, Node: "node-a", IPs: []string{fmt.Sprintf("10.20.%d.%d", i/250, i%250+1)}, Ready: i < 1000}
	})
	if err != nil {
		t.Fatal(err)
	}
	wait := func(wantReady, wantNotReady int, wantAnnotation bool) {
		t.Helper()
		servertest.WaitFor(t, 2*waitTimeout, "endpoints capacity", func() error {
			ep, err := cs.CoreV1().Endpoints(ns).Get(ctx, "web", metav1.GetOptions{})
			if err != nil {
				return err
			}
			ready, notReady := 0, 0
			for _, s := range ep.Subsets {
				ready += len(s.Addresses)
				notReady += len(s.NotReadyAddresses)
			}
			_, annotated := ep.Annotations[corev1.EndpointsOverCapacity]
			if ready != wantReady || notReady != wantNotReady || annotated != wantAnnotation {
				return fmt.Errorf("%d ready, %d not ready, annotations %v; want %d, %d, over-capacity %v",
					ready, notReady, ep.Annotations, wantReady, wantNotReady, wantAnnotation)
			}
			if wantAnnotation && ep.Annotations[corev1.EndpointsOverCapacity] != "truncated" {
				return fmt.Errorf("over-capacity annotation %q", ep.Annotations[corev1.EndpointsOverCapacity])
			}
			return nil
		})
	}
	wait(1000, 0, true)
	zero := int64(0)
	for i := 1000; i < 1010; i++ {
		if err := cs.CoreV1().Pods(ns).Delete(ctx, fmt.Sprintf("web-%d", i), metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
			t.Fatal(err)
		}
	}
	wait(1000, 0, false)
}
