package endpointslicemirroring_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"kubesvc/internal/controller/endpointslicemirroring"
	"kubesvc/internal/controller/endpointtest"
	"kubesvc/internal/servertest"
)

const waitTimeout = 30 * time.Second

// start starts a test server running only the garbage collector (in particular not the
// Endpoints controller, which would delete Endpoints whose Service the test removes) and the
// controller under test with cfg.
func start(t *testing.T, cfg endpointslicemirroring.Config) kubernetes.Interface {
	t.Helper()
	s := servertest.StartTestServer(t, servertest.WithControllers("garbagecollector"))
	cs, err := kubernetes.NewForConfig(s.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Client = cs
	c, err := endpointslicemirroring.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(ctx, 5)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return cs
}

func mustCreate(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("create %s: %v", what, err)
	}
}

// mirrored returns the slices of svc managed by the mirroring controller.
func mirrored(ctx context.Context, cs kubernetes.Interface, ns, svc string) ([]discovery.EndpointSlice, error) {
	all, err := endpointtest.Slices(ctx, cs, ns, svc)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(s discovery.EndpointSlice) bool {
		return s.Labels[discovery.LabelManagedBy] != endpointslicemirroring.ControllerName
	}), nil
}

// waitMirrored waits until the mirrored slices of svc hold exactly want
// (endpointtest.SliceEndpoints lines) and returns them.
func waitMirrored(t *testing.T, cs kubernetes.Interface, ns, svc string, want []string) []discovery.EndpointSlice {
	t.Helper()
	slices.Sort(want)
	var got []discovery.EndpointSlice
	servertest.WaitFor(t, waitTimeout, fmt.Sprintf("mirrored slices of %s/%s", ns, svc), func() error {
		var err error
		got, err = mirrored(context.Background(), cs, ns, svc)
		if err != nil {
			return err
		}
		if lines := endpointtest.SliceEndpoints(got); !slices.Equal(lines, want) {
			return fmt.Errorf("got\n\t%s\nwant\n\t%s", strings.Join(lines, "\n\t"), strings.Join(want, "\n\t"))
		}
		return nil
	})
	return got
}

func endpoints(name string, subsets ...corev1.EndpointSubset) *corev1.Endpoints {
	return &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: name}, Subsets: subsets}
}

func addrs(ips ...string) []corev1.EndpointAddress {
	var out []corev1.EndpointAddress
	for _, ip := range ips {
		out = append(out, corev1.EndpointAddress{IP: ip})
	}
	return out
}

func tcp(name string, port int32) corev1.EndpointPort {
	return corev1.EndpointPort{Name: name, Port: port, Protocol: corev1.ProtocolTCP}
}

// TestController_Rules runs one scenario per spec rule, each in its own namespace of one
// server.
func TestController_Rules(t *testing.T) {
	cs := start(t, endpointslicemirroring.Config{})
	ctx := context.Background()
	selectorless := func(t *testing.T, ns, name string) *corev1.Service {
		t.Helper()
		svc, err := cs.CoreV1().Services(ns).Create(ctx, endpointtest.Service(name, nil, endpointtest.Port("", 80, corev1.ProtocolTCP, 80)), metav1.CreateOptions{})
		mustCreate(t, "service "+name, err)
		return svc
	}
	createEP := func(t *testing.T, ns string, ep *corev1.Endpoints) *corev1.Endpoints {
		t.Helper()
		out, err := cs.CoreV1().Endpoints(ns).Create(ctx, ep, metav1.CreateOptions{})
		mustCreate(t, "endpoints "+ep.Name, err)
		return out
	}
	tests := []struct {
		name string
		run  func(t *testing.T, ns string)
	}{
		{name: "EP-M-01 EP-M-02 the book's external-service", run: func(t *testing.T, ns string) {
			selectorless(t, ns, "external-service")
			ep := endpoints("external-service", corev1.EndpointSubset{Addresses: addrs("11.11.11.11", "22.22.22.22"), Ports: []corev1.EndpointPort{tcp("", 80)}})
			ep.Labels = map[string]string{"team": "a"}
			ep.Annotations = map[string]string{"note": "x", corev1.LastAppliedConfigAnnotation: "{}", corev1.EndpointsLastChangeTriggerTime: "2026-01-01T00:00:00Z"}
			ep = createEP(t, ns, ep)
			got := waitMirrored(t, cs, ns, "external-service", []string{
				"[/TCP:80] 11.11.11.11 ready=true serving=nil terminating=nil node= zone= host= ref=",
				"[/TCP:80] 22.22.22.22 ready=true serving=nil terminating=nil node= zone= host= ref=",
			})
			s := got[0]
			if len(got) != 1 || s.AddressType != discovery.AddressTypeIPv4 || s.GenerateName != "external-service-" {
				t.Errorf("got %d slices, first %s %q, want one IPv4 slice generated from external-service-", len(got), s.AddressType, s.GenerateName)
			}
			wantLabels := map[string]string{"team": "a", discovery.LabelServiceName: "external-service", discovery.LabelManagedBy: endpointslicemirroring.ControllerName}
			if d := cmp.Diff(wantLabels, s.Labels); d != "" {
				t.Errorf("labels (-want +got):\n%s", d)
			}
			if d := cmp.Diff(map[string]string{"note": "x"}, s.Annotations); d != "" {
				t.Errorf("annotations (-want +got):\n%s", d)
			}
			wantOwner := []metav1.OwnerReference{{APIVersion: "v1", Kind: "Endpoints", Name: "external-service", UID: ep.UID, Controller: new(true), BlockOwnerDeletion: new(true)}}
			if d := cmp.Diff(wantOwner, s.OwnerReferences); d != "" {
				t.Errorf("owner references (-want +got):\n%s", d)
			}
			// Changes follow; deleting the Endpoints deletes the slices.
			ep.Subsets[0].Addresses = addrs("11.11.11.11")
			ep.Subsets[0].NotReadyAddresses = addrs("33.33.33.33")
			if _, err := cs.CoreV1().Endpoints(ns).Update(ctx, ep, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			waitMirrored(t, cs, ns, "external-service", []string{
				"[/TCP:80] 11.11.11.11 ready=true serving=nil terminating=nil node= zone= host= ref=",
				"[/TCP:80] 33.33.33.33 ready=false serving=nil terminating=nil node= zone= host= ref=",
			})
			if err := cs.CoreV1().Endpoints(ns).Delete(ctx, "external-service", metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			waitMirrored(t, cs, ns, "external-service", nil)
		}},
		{name: "EP-M-01 skip-mirror, leader election, missing service and selector are not mirrored", run: func(t *testing.T, ns string) {
			for _, name := range []string{"skip", "leader", "sel"} {
				if name == "sel" {
					_, err := cs.CoreV1().Services(ns).Create(ctx, endpointtest.Service(name, map[string]string{"app": "x"}, endpointtest.Port("", 80, corev1.ProtocolTCP, 80)), metav1.CreateOptions{})
					mustCreate(t, "service", err)
				} else {
					selectorless(t, ns, name)
				}
			}
			sub := corev1.EndpointSubset{Addresses: addrs("10.0.0.1"), Ports: []corev1.EndpointPort{tcp("", 80)}}
			skip := endpoints("skip", sub)
			skip.Labels = map[string]string{discovery.LabelSkipMirror: "true"}
			leader := endpoints("leader", sub)
			leader.Annotations = map[string]string{resourcelock.LeaderElectionRecordAnnotationKey: "{}"}
			for _, ep := range []*corev1.Endpoints{skip, leader, endpoints("sel", sub), endpoints("nosvc", sub)} {
				createEP(t, ns, ep)
			}
			// A mirrored control object shows the controller has processed the others.
			selectorless(t, ns, "control")
			createEP(t, ns, endpoints("control", sub))
			waitMirrored(t, cs, ns, "control", []string{"[/TCP:80] 10.0.0.1 ready=true serving=nil terminating=nil node= zone= host= ref="})
			for _, name := range []string{"skip", "leader", "sel", "nosvc"} {
				if got, err := mirrored(ctx, cs, ns, name); err != nil || len(got) != 0 {
					t.Errorf("%s: %d mirrored slices (err %v), want none", name, len(got), err)
				}
			}
		}},
		{name: "EP-M-01 a service gaining a selector loses its mirrored slices", run: func(t *testing.T, ns string) {
			svc := selectorless(t, ns, "web")
			createEP(t, ns, endpoints("web", corev1.EndpointSubset{Addresses: addrs("10.0.0.1"), Ports: []corev1.EndpointPort{tcp("", 80)}}))
			waitMirrored(t, cs, ns, "web", []string{"[/TCP:80] 10.0.0.1 ready=true serving=nil terminating=nil node= zone= host= ref="})
			svc.Spec.Selector = map[string]string{"app": "web"}
			if _, err := cs.CoreV1().Services(ns).Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			waitMirrored(t, cs, ns, "web", nil)
		}},
		{name: "EP-M-03 one slice per port set and address family, target and node copied", run: func(t *testing.T, ns string) {
			selectorless(t, ns, "multi")
			node := "node-1"
			ep := endpoints("multi",
				corev1.EndpointSubset{Addresses: []corev1.EndpointAddress{
					{IP: "10.0.0.1", Hostname: "h1", NodeName: &node, TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: "p1"}},
					{IP: "fd00::1"},
				}, Ports: []corev1.EndpointPort{tcp("http", 80), tcp("https", 443)}},
				corev1.EndpointSubset{Addresses: addrs("10.0.0.2"), Ports: []corev1.EndpointPort{tcp("http", 8080)}},
			)
			createEP(t, ns, ep)
			got := waitMirrored(t, cs, ns, "multi", []string{
				"[http/TCP:80,https/TCP:443] 10.0.0.1 ready=true serving=nil terminating=nil node=node-1 zone= host=h1 ref=Pod/p1",
				"[http/TCP:80,https/TCP:443] fd00::1 ready=true serving=nil terminating=nil node= zone= host= ref=",
				"[http/TCP:8080] 10.0.0.2 ready=true serving=nil terminating=nil node= zone= host= ref=",
			})
			if len(got) != 3 {
				t.Errorf("%d slices, want 3", len(got))
			}
		}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ns := fmt.Sprintf("rule-%d", i)
			if err := endpointtest.CreateNamespace(ctx, cs, ns, false); err != nil {
				t.Fatal(err)
			}
			tc.run(t, ns)
		})
	}
}

// TestController_MaxEndpointsPerSubset is EP-M-03's limit: with
// --mirroring-max-endpoints-per-subset=2 only two addresses of a subset are mirrored.
func TestController_MaxEndpointsPerSubset(t *testing.T) {
	cs := start(t, endpointslicemirroring.Config{MaxEndpointsPerSubset: 2})
	ctx := context.Background()
	_, err := cs.CoreV1().Services("default").Create(ctx, endpointtest.Service("ext", nil, endpointtest.Port("", 80, corev1.ProtocolTCP, 80)), metav1.CreateOptions{})
	mustCreate(t, "service", err)
	_, err = cs.CoreV1().Endpoints("default").Create(ctx, endpoints("ext", corev1.EndpointSubset{
		Addresses: addrs("10.0.0.1", "10.0.0.2", "10.0.0.3"), Ports: []corev1.EndpointPort{tcp("", 80)},
	}), metav1.CreateOptions{})
	mustCreate(t, "endpoints", err)
	servertest.WaitFor(t, waitTimeout, "two mirrored endpoints", func() error {
		got, err := mirrored(ctx, cs, "default", "ext")
		if err != nil {
			return err
		}
		if len(got) != 1 || len(got[0].Endpoints) != 2 {
			return fmt.Errorf("got %v", endpointtest.SliceEndpoints(got))
		}
		return nil
	})
}
