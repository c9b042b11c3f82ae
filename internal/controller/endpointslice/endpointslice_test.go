package endpointslice_test

import (
	"context"
	"errors"
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

	"kubesvc/internal/controller/endpointslice"
	"kubesvc/internal/controller/endpointtest"
	"kubesvc/internal/servertest"
)

const waitTimeout = 30 * time.Second

// start starts a test server running only the garbage collector (no node lifecycle
// controller to mark lease-less nodes and their pods not ready), two Ready nodes
// (node-a in zone-a, node-b in zone-b) and the controller under test with cfg.
func start(t *testing.T, cfg endpointslice.Config) kubernetes.Interface {
	t.Helper()
	s := servertest.StartTestServer(t, servertest.WithControllers("garbagecollector"))
	cs, err := kubernetes.NewForConfig(s.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, n := range []struct{ name, zone string }{{"node-a", "zone-a"}, {"node-b", "zone-b"}} {
		if err := endpointtest.CreateNode(ctx, cs, n.name, n.zone); err != nil {
			t.Fatal(err)
		}
	}
	cfg.Client = cs
	c, err := endpointslice.New(cfg)
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

func mustPod(t *testing.T, cs kubernetes.Interface, ns, name string, st endpointtest.PodState) *corev1.Pod {
	t.Helper()
	p, err := endpointtest.CreatePod(context.Background(), cs, ns, name, st)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// waitEndpoints waits until the slices of svc list exactly want (endpointtest.SliceEndpoints
// lines) and returns the slices.
func waitEndpoints(t *testing.T, cs kubernetes.Interface, ns, svc string, want []string) []discovery.EndpointSlice {
	t.Helper()
	slices.Sort(want)
	var got []discovery.EndpointSlice
	servertest.WaitFor(t, waitTimeout, fmt.Sprintf("endpoints of %s/%s", ns, svc), func() error {
		var err error
		got, err = endpointtest.Slices(context.Background(), cs, ns, svc)
		if err != nil {
			return err
		}
		if d := cmp.Diff(want, endpointtest.SliceEndpoints(got)); d != "" {
			return fmt.Errorf("(-want +got):\n%s", d)
		}
		return nil
	})
	return got
}

var web = map[string]string{"app": "web"}

func httpPort(n int32) []corev1.ContainerPort {
	return []corev1.ContainerPort{{Name: "http", ContainerPort: n, Protocol: corev1.ProtocolTCP}}
}

// TestController_Rules runs one scenario per spec rule, each in its own namespace of one
// server.
func TestController_Rules(t *testing.T) {
	cs := start(t, endpointslice.Config{})
	tests := []struct {
		name string
		run  func(t *testing.T, ns string)
	}{
		{name: "EP-S-01 selector match, selectorless and ExternalName services get nothing", run: func(t *testing.T, ns string) {
			mustService(t, cs, ns, endpointtest.Service("web", web, endpointtest.Port("http", 80, corev1.ProtocolTCP, 8080)))
			mustService(t, cs, ns, endpointtest.Service("manual", nil, endpointtest.Port("http", 80, corev1.ProtocolTCP, 8080)))
			ext := endpointtest.Service("ext", web)
			ext.Spec.Type, ext.Spec.ExternalName = corev1.ServiceTypeExternalName, "example.com"
			mustService(t, cs, ns, ext)
			mustPod(t, cs, ns, "web-0", endpointtest.PodState{Labels: web, Node: "node-a", IPs: []string{"10.1.0.1"}, Ready: true})
			mustPod(t, cs, ns, "other", endpointtest.PodState{Labels: map[string]string{"app": "other"}, Node: "node-a", IPs: []string{"10.1.0.2"}, Ready: true})
			waitEndpoints(t, cs, ns, "web", []string{
				"[http/TCP:8080] 10.1.0.1 ready=true serving=true terminating=false node=node-a zone=zone-a host= ref=Pod/web-0",
			})
			for _, svc := range []string{"manual", "ext"} {
				if got, err := endpointtest.Slices(context.Background(), cs, ns, svc); err != nil || len(got) != 0 {
					t.Errorf("service %s: got %d slices (err %v), want none", svc, len(got), err)
				}
			}
		}},
		{name: "EP-S-02 EP-S-03 EP-ES-03 conditions: unready, terminal, no IP, terminating", run: func(t *testing.T, ns string) {
			mustService(t, cs, ns, endpointtest.Service("web", web, endpointtest.Port("", 80, corev1.ProtocolTCP, 8080)))
			mustPod(t, cs, ns, "ready", endpointtest.PodState{Labels: web, Node: "node-a", IPs: []string{"10.2.0.1"}, Ready: true})
			mustPod(t, cs, ns, "unready", endpointtest.PodState{Labels: web, Node: "node-b", IPs: []string{"10.2.0.2"}})
			mustPod(t, cs, ns, "done", endpointtest.PodState{Labels: web, Node: "node-a", IPs: []string{"10.2.0.3"}, Phase: corev1.PodSucceeded})
			mustPod(t, cs, ns, "noip", endpointtest.PodState{Labels: web, Node: "node-a", Ready: true})
			mustPod(t, cs, ns, "leaving", endpointtest.PodState{Labels: web, Node: "node-b", IPs: []string{"10.2.0.5"}, Ready: true})
			// No node agent: a graceful delete leaves the pod terminating.
			if err := cs.CoreV1().Pods(ns).Delete(context.Background(), "leaving", metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			waitEndpoints(t, cs, ns, "web", []string{
				"[/TCP:8080] 10.2.0.1 ready=true serving=true terminating=false node=node-a zone=zone-a host= ref=Pod/ready",
				"[/TCP:8080] 10.2.0.2 ready=false serving=false terminating=false node=node-b zone=zone-b host= ref=Pod/unready",
				"[/TCP:8080] 10.2.0.5 ready=false serving=true terminating=true node=node-b zone=zone-b host= ref=Pod/leaving",
			})
			// A Ready change moves the endpoint.
			if err := endpointtest.SetReady(context.Background(), cs, ns, "ready", false, time.Time{}); err != nil {
				t.Fatal(err)
			}
			waitEndpoints(t, cs, ns, "web", []string{
				"[/TCP:8080] 10.2.0.1 ready=false serving=false terminating=false node=node-a zone=zone-a host= ref=Pod/ready",
				"[/TCP:8080] 10.2.0.2 ready=false serving=false terminating=false node=node-b zone=zone-b host= ref=Pod/unready",
				"[/TCP:8080] 10.2.0.5 ready=false serving=true terminating=true node=node-b zone=zone-b host= ref=Pod/leaving",
			})
		}},
		{name: "EP-ES-03 publishNotReadyAddresses makes every endpoint ready", run: func(t *testing.T, ns string) {
			svc := endpointtest.Service("web", web, endpointtest.Port("", 80, corev1.ProtocolTCP, 8080))
			svc.Spec.PublishNotReadyAddresses = true
			mustService(t, cs, ns, svc)
			mustPod(t, cs, ns, "unready", endpointtest.PodState{Labels: web, Node: "node-a", IPs: []string{"10.3.0.1"}})
			mustPod(t, cs, ns, "leaving", endpointtest.PodState{Labels: web, Node: "node-a", IPs: []string{"10.3.0.2"}, Ready: true})
			if err := cs.CoreV1().Pods(ns).Delete(context.Background(), "leaving", metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			waitEndpoints(t, cs, ns, "web", []string{
				"[/TCP:8080] 10.3.0.1 ready=true serving=false terminating=false node=node-a zone=zone-a host= ref=Pod/unready",
				"[/TCP:8080] 10.3.0.2 ready=true serving=true terminating=true node=node-a zone=zone-a host= ref=Pod/leaving",
			})
		}},
		{name: "EP-S-04 hostname only when the subdomain is the service name", run: func(t *testing.T, ns string) {
			svc := endpointtest.Service("web", web, endpointtest.Port("", 80, corev1.ProtocolTCP, 8080))
			svc.Spec.ClusterIP = corev1.ClusterIPNone
			mustService(t, cs, ns, svc)
			mustPod(t, cs, ns, "a", endpointtest.PodState{Labels: web, Node: "node-a", IPs: []string{"10.4.0.1"}, Ready: true, Hostname: "web-a", Subdomain: "web"})
			mustPod(t, cs, ns, "b", endpointtest.PodState{Labels: web, Node: "node-a", IPs: []string{"10.4.0.2"}, Ready: true, Hostname: "web-b", Subdomain: "other"})
			got := waitEndpoints(t, cs, ns, "web", []string{
				"[/TCP:8080] 10.4.0.1 ready=true serving=true terminating=false node=node-a zone=zone-a host=web-a ref=Pod/a",
				"[/TCP:8080] 10.4.0.2 ready=true serving=true terminating=false node=node-a zone=zone-a host= ref=Pod/b",
			})
			// EP-ES-01: headless label on slices of a headless Service.
			if _, ok := got[0].Labels[corev1.IsHeadlessService]; !ok {
				t.Errorf("slice labels %v lack %s", got[0].Labels, corev1.IsHeadlessService)
			}
		}},
		{name: "EP-S-05 EP-ES-04 named targetPort resolved per pod and protocol, port-group slices", run: func(t *testing.T, ns string) {
			mustService(t, cs, ns, endpointtest.Service("web", web,
				endpointtest.Port("http", 80, corev1.ProtocolTCP, "http"),
				endpointtest.Port("dns", 53, corev1.ProtocolUDP, "dns")))
			mustPod(t, cs, ns, "p8080", endpointtest.PodState{Labels: web, Node: "node-a", IPs: []string{"10.5.0.1"}, Ready: true, Ports: httpPort(8080)})
			mustPod(t, cs, ns, "p9090", endpointtest.PodState{Labels: web, Node: "node-a", IPs: []string{"10.5.0.2"}, Ready: true, Ports: httpPort(9090)})
			// The name must match with the service port's protocol: "dns" over TCP does not
			// serve the UDP port.
			mustPod(t, cs, ns, "both", endpointtest.PodState{Labels: web, Node: "node-b", IPs: []string{"10.5.0.3"}, Ready: true, Ports: []corev1.ContainerPort{
				{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP},
				{Name: "dns", ContainerPort: 1053, Protocol: corev1.ProtocolUDP},
			}})
			mustPod(t, cs, ns, "tcpdns", endpointtest.PodState{Labels: web, Node: "node-b", IPs: []string{"10.5.0.6"}, Ready: true, Ports: []corev1.ContainerPort{
				{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP},
				{Name: "dns", ContainerPort: 5353, Protocol: corev1.ProtocolTCP},
			}})
			// A sidecar (restartable init container) may provide the named port.
			mustPod(t, cs, ns, "sidecar", endpointtest.PodState{Labels: web, Node: "node-b", IPs: []string{"10.5.0.4"}, Ready: true, SidecarPorts: httpPort(7070)})
			// No matching name at all: the pod is in a slice without ports.
			mustPod(t, cs, ns, "none", endpointtest.PodState{Labels: web, Node: "node-b", IPs: []string{"10.5.0.5"}, Ready: true})
			got := waitEndpoints(t, cs, ns, "web", []string{
				"[http/TCP:8080] 10.5.0.1 ready=true serving=true terminating=false node=node-a zone=zone-a host= ref=Pod/p8080",
				"[http/TCP:9090] 10.5.0.2 ready=true serving=true terminating=false node=node-a zone=zone-a host= ref=Pod/p9090",
				"[dns/UDP:1053,http/TCP:8080] 10.5.0.3 ready=true serving=true terminating=false node=node-b zone=zone-b host= ref=Pod/both",
				"[http/TCP:7070] 10.5.0.4 ready=true serving=true terminating=false node=node-b zone=zone-b host= ref=Pod/sidecar",
				"[] 10.5.0.5 ready=true serving=true terminating=false node=node-b zone=zone-b host= ref=Pod/none",
				"[http/TCP:8080] 10.5.0.6 ready=true serving=true terminating=false node=node-b zone=zone-b host= ref=Pod/tcpdns",
			})
			if len(got) != 5 {
				t.Errorf("got %d slices, want one per port group (5)", len(got))
			}
		}},
		{name: "EP-ES-03 pod on a missing node is skipped until the node exists", run: func(t *testing.T, ns string) {
			mustService(t, cs, ns, endpointtest.Service("web", web, endpointtest.Port("", 80, corev1.ProtocolTCP, 8080)))
			node := "late-" + ns
			mustPod(t, cs, ns, "a", endpointtest.PodState{Labels: web, Node: "node-a", IPs: []string{"10.6.0.1"}, Ready: true})
			mustPod(t, cs, ns, "b", endpointtest.PodState{Labels: web, Node: node, IPs: []string{"10.6.0.2"}, Ready: true})
			waitEndpoints(t, cs, ns, "web", []string{
				"[/TCP:8080] 10.6.0.1 ready=true serving=true terminating=false node=node-a zone=zone-a host= ref=Pod/a",
			})
			if err := endpointtest.CreateNode(context.Background(), cs, node, "zone-c"); err != nil {
				t.Fatal(err)
			}
			// The Service is retried with backoff (1s, 2s, …).
			waitEndpoints(t, cs, ns, "web", []string{
				"[/TCP:8080] 10.6.0.1 ready=true serving=true terminating=false node=node-a zone=zone-a host= ref=Pod/a",
				"[/TCP:8080] 10.6.0.2 ready=true serving=true terminating=false node=" + node + " zone=zone-c host= ref=Pod/b",
			})
		}},
		{name: "EP-ES-07 placeholder slice without pods, replaced by the first endpoint", run: func(t *testing.T, ns string) {
			mustService(t, cs, ns, endpointtest.Service("web", web, endpointtest.Port("", 80, corev1.ProtocolTCP, 8080)))
			var got []discovery.EndpointSlice
			servertest.WaitFor(t, waitTimeout, "placeholder slice", func() error {
				var err error
				got, err = endpointtest.Slices(context.Background(), cs, ns, "web")
				if err != nil {
					return err
				}
				if len(got) != 1 || len(got[0].Endpoints) != 0 || len(got[0].Ports) != 0 {
					return fmt.Errorf("want one empty slice, got %+v", got)
				}
				return nil
			})
			placeholder := got[0].Name
			mustPod(t, cs, ns, "a", endpointtest.PodState{Labels: web, Node: "node-a", IPs: []string{"10.7.0.1"}, Ready: true})
			got = waitEndpoints(t, cs, ns, "web", []string{
				"[/TCP:8080] 10.7.0.1 ready=true serving=true terminating=false node=node-a zone=zone-a host= ref=Pod/a",
			})
			// EP-ES-06 step 4: the placeholder's delete and the new slice's create become an update.
			if len(got) != 1 || got[0].Name != placeholder {
				t.Errorf("got slices %v, want the placeholder %s reused", sliceNames(got), placeholder)
			}
		}},
		{name: "EP-ES-01 labels, owner reference, generateName, trigger time", run: func(t *testing.T, ns string) {
			svc := endpointtest.Service("web", web, endpointtest.Port("", 80, corev1.ProtocolTCP, 8080))
			svc.Labels = map[string]string{"team": "a", discovery.LabelManagedBy: "someone"}
			svc = mustService(t, cs, ns, svc)
			readySince := time.Now().Add(-time.Hour).Truncate(time.Second).UTC()
			mustPod(t, cs, ns, "a", endpointtest.PodState{Labels: web, Node: "node-a", IPs: []string{"10.8.0.1"}, Ready: true, ReadySince: readySince})
			got := waitEndpoints(t, cs, ns, "web", []string{
				"[/TCP:8080] 10.8.0.1 ready=true serving=true terminating=false node=node-a zone=zone-a host= ref=Pod/a",
			})
			s := got[0]
			wantLabels := map[string]string{"team": "a", discovery.LabelServiceName: "web", discovery.LabelManagedBy: endpointslice.ControllerName}
			if d := cmp.Diff(wantLabels, s.Labels); d != "" {
				t.Errorf("labels (-want +got):\n%s", d)
			}
			if !strings.HasPrefix(s.Name, "web-") || s.GenerateName != "web-" {
				t.Errorf("name %q generateName %q, want generated from web-", s.Name, s.GenerateName)
			}
			wantOwner := []metav1.OwnerReference{{APIVersion: "v1", Kind: "Service", Name: "web", UID: svc.UID, Controller: new(true), BlockOwnerDeletion: new(true)}}
			if d := cmp.Diff(wantOwner, s.OwnerReferences); d != "" {
				t.Errorf("owner references (-want +got):\n%s", d)
			}
			// EP-S-06: the first sync records the Service's creation; later syncs the pod's
			// Ready transition.
			if err := endpointtest.SetReady(context.Background(), cs, ns, "a", false, readySince.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			got = waitEndpoints(t, cs, ns, "web", []string{
				"[/TCP:8080] 10.8.0.1 ready=false serving=false terminating=false node=node-a zone=zone-a host= ref=Pod/a",
			})
			want := readySince.Add(time.Minute).Format(time.RFC3339Nano)
			if tt := got[0].Annotations[corev1.EndpointsLastChangeTriggerTime]; tt != want {
				t.Errorf("%s = %q, want %q", corev1.EndpointsLastChangeTriggerTime, tt, want)
			}
		}},
		{name: "EP-ES-08 foreign slices untouched, slices of an earlier Service deleted", run: func(t *testing.T, ns string) {
			ctx := context.Background()
			port := int32(80)
			mk := func(name, managedBy, ownerUID string) *discovery.EndpointSlice {
				s := &discovery.EndpointSlice{
					ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
						discovery.LabelServiceName: "web", discovery.LabelManagedBy: managedBy,
					}},
					AddressType: discovery.AddressTypeIPv4,
					Endpoints:   []discovery.Endpoint{{Addresses: []string{"192.0.2.1"}}},
					Ports:       []discovery.EndpointPort{{Port: &port}},
				}
				if ownerUID != "" {
					s.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Service", Name: "web", UID: "0000-gone", Controller: new(true)}}
				}
				return s
			}
			for _, s := range []*discovery.EndpointSlice{mk("foreign", "hand-made", ""), mk("stale", endpointslice.ControllerName, "gone")} {
				if _, err := cs.DiscoveryV1().EndpointSlices(ns).Create(ctx, s, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			mustService(t, cs, ns, endpointtest.Service("web", web, endpointtest.Port("", 80, corev1.ProtocolTCP, 8080)))
			mustPod(t, cs, ns, "a", endpointtest.PodState{Labels: web, Node: "node-a", IPs: []string{"10.9.0.1"}, Ready: true})
			got := waitEndpoints(t, cs, ns, "web", []string{
				"[/TCP:8080] 10.9.0.1 ready=true serving=true terminating=false node=node-a zone=zone-a host= ref=Pod/a",
				"[/TCP:80] 192.0.2.1 ready=nil serving=nil terminating=nil node= zone= host= ref=",
			})
			if names := sliceNames(got); !slices.Contains(names, "foreign") || slices.Contains(names, "stale") {
				t.Errorf("slices %v: want foreign kept and stale gone", names)
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

func sliceNames(list []discovery.EndpointSlice) []string {
	var out []string
	for _, s := range list {
		out = append(out, s.Name)
	}
	return out
}

// sliceSizes returns the endpoint counts of the slices of svc, sorted descending.
func sliceSizes(ctx context.Context, cs kubernetes.Interface, ns, svc string) ([]int, int, error) {
	list, err := endpointtest.Slices(ctx, cs, ns, svc)
	if err != nil {
		return nil, 0, err
	}
	var sizes []int
	ready := 0
	for _, s := range list {
		sizes = append(sizes, len(s.Endpoints))
		for _, e := range s.Endpoints {
			if e.Conditions.Ready != nil && *e.Conditions.Ready {
				ready++
			}
		}
	}
	slices.Sort(sizes)
	slices.Reverse(sizes)
	return sizes, ready, nil
}

// TestController_1000Pods is EP-ES-05 at scale: 1000 Ready pods behind one Service fill ten
// slices of 100; a pod going away shrinks one slice without repacking the others (EP-ES-06).
//
// The pods exist before the Service, so however the controller's syncs split them (its pod
// informer may lag the creates), what is not yet in a slice always fits the room left in the
// one partly filled slice: the packing is exact. Pods arriving while slices are being created
// may legitimately leave holes (upstream never repacks), which is why they are not used here.
func TestController_1000Pods(t *testing.T) {
	cs := start(t, endpointslice.Config{})
	ctx := context.Background()
	const ns = "big"
	mustNS(t, cs, ns)
	err := endpointtest.CreatePods(ctx, cs, ns, "web", 1000, 8, func(i int) endpointtest.PodState {
		return endpointtest.PodState{Labels: web, Node: "node-a", IPs: []string{fmt.Sprintf("10.20.%d.%d", i/250, i%250+1)}, Ready: true}
	})
	if err != nil {
		t.Fatal(err)
	}
	mustService(t, cs, ns, endpointtest.Service("web", web, endpointtest.Port("", 80, corev1.ProtocolTCP, 8080)))
	want := slices.Repeat([]int{100}, 10)
	waitSizes := func(want []int, wantReady int) {
		t.Helper()
		servertest.WaitFor(t, 2*waitTimeout, "slice sizes", func() error {
			sizes, ready, err := sliceSizes(ctx, cs, ns, "web")
			if err != nil {
				return err
			}
			if !slices.Equal(sizes, want) || ready != wantReady {
				return fmt.Errorf("slice sizes %v with %d ready, want %v with %d", sizes, ready, want, wantReady)
			}
			return nil
		})
	}
	waitSizes(want, 1000)
	before, err := endpointtest.Slices(ctx, cs, ns, "web")
	if err != nil {
		t.Fatal(err)
	}
	if err := cs.CoreV1().Pods(ns).Delete(ctx, "web-7", metav1.DeleteOptions{GracePeriodSeconds: new(int64(0))}); err != nil {
		t.Fatal(err)
	}
	waitSizes(append(slices.Repeat([]int{100}, 9), 99), 999)
	after, err := endpointtest.Slices(ctx, cs, ns, "web")
	if err != nil {
		t.Fatal(err)
	}
	rv := map[string]string{}
	for _, s := range before {
		rv[s.Name] = s.ResourceVersion
	}
	changed := 0
	for _, s := range after {
		old, ok := rv[s.Name]
		if !ok {
			t.Errorf("slice %s is new after one pod went away", s.Name)
		}
		if old != s.ResourceVersion {
			changed++
		}
	}
	if changed != 1 {
		t.Errorf("%d slices were rewritten after one pod went away, want 1 (no repacking)", changed)
	}
}

// TestController_MaxEndpointsPerSlice is EP-ES-05/EP-ES-06 with --max-endpoints-per-slice=10:
// 25 pods need three slices; 5 more fill the partly-filled slice first.
func TestController_MaxEndpointsPerSlice(t *testing.T) {
	cs := start(t, endpointslice.Config{MaxEndpointsPerSlice: 10})
	ctx := context.Background()
	const ns = "small"
	mustNS(t, cs, ns)
	state := func(i int) endpointtest.PodState {
		return endpointtest.PodState{Labels: web, Node: "node-b", IPs: []string{fmt.Sprintf("10.30.0.%d", i+1)}, Ready: true}
	}
	// The first 25 pods exist before the Service (see TestController_1000Pods: pods arriving
	// between syncs may leave holes, which upstream never repacks); the 5 later ones always
	// fit the room of the one partly filled slice, however the syncs split them.
	if err := endpointtest.CreatePods(ctx, cs, ns, "a", 25, 4, state); err != nil {
		t.Fatal(err)
	}
	mustService(t, cs, ns, endpointtest.Service("web", web, endpointtest.Port("", 80, corev1.ProtocolTCP, 8080)))
	wait := func(want []int) {
		t.Helper()
		servertest.WaitFor(t, waitTimeout, "slice sizes", func() error {
			sizes, _, err := sliceSizes(ctx, cs, ns, "web")
			if err != nil {
				return err
			}
			if !slices.Equal(sizes, want) {
				return fmt.Errorf("slice sizes %v, want %v", sizes, want)
			}
			return nil
		})
	}
	wait([]int{10, 10, 5})
	if err := endpointtest.CreatePods(ctx, cs, ns, "b", 5, 4, func(i int) endpointtest.PodState { return state(100 + i) }); err != nil {
		t.Fatal(err)
	}
	wait([]int{10, 10, 10})
}

func TestConfig_Validate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     endpointslice.Config
		wantErr string
	}{
		{name: "defaults", cfg: endpointslice.Config{}},
		{name: "max 1000", cfg: endpointslice.Config{MaxEndpointsPerSlice: 1000}},
		{name: "over 1000", cfg: endpointslice.Config{MaxEndpointsPerSlice: 1001}, wantErr: "--max-endpoints-per-slice"},
		{name: "negative batch", cfg: endpointslice.Config{EndpointUpdatesBatchPeriod: -time.Second}, wantErr: "--endpointslice-updates-batch-period"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Validate() = %v, want error containing %q", err, tc.wantErr)
			}
		})
	}
	if _, err := endpointslice.New(endpointslice.Config{}); err == nil {
		t.Error("New without a Client: no error")
	}
}

// TestController_BatchesBursts is EP-S-06 batching: with a 3s batch period, 20 pods turning
// Ready within the period become one slice write.
func TestController_BatchesBursts(t *testing.T) {
	cs := start(t, endpointslice.Config{EndpointUpdatesBatchPeriod: 3 * time.Second})
	ctx := context.Background()
	const ns = "burst"
	mustNS(t, cs, ns)
	mustService(t, cs, ns, endpointtest.Service("web", web, endpointtest.Port("", 80, corev1.ProtocolTCP, 8080)))
	if err := endpointtest.CreatePods(ctx, cs, ns, "web", 20, 4, func(i int) endpointtest.PodState {
		return endpointtest.PodState{Labels: web, Node: "node-a", IPs: []string{fmt.Sprintf("10.40.0.%d", i+1)}}
	}); err != nil {
		t.Fatal(err)
	}
	servertest.WaitFor(t, waitTimeout, "20 unready endpoints", func() error {
		sizes, _, err := sliceSizes(ctx, cs, ns, "web")
		if err != nil || !slices.Equal(sizes, []int{20}) {
			return fmt.Errorf("slice sizes %v (err %v), want [20]", sizes, err)
		}
		return nil
	})
	list, err := cs.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := cs.DiscoveryV1().EndpointSlices(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	start := time.Now()
	for i := range 20 {
		if err := endpointtest.SetReady(ctx, cs, ns, fmt.Sprintf("web-%d", i), true, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Skipf("20 status writes took %v, longer than the batch period allows to judge", took)
	}
	writes := 0
	deadline := time.After(waitTimeout)
	for {
		select {
		case ev := <-w.ResultChan():
			s, ok := ev.Object.(*discovery.EndpointSlice)
			if !ok {
				t.Fatalf("watch: %v", ev.Object)
			}
			writes++
			ready := 0
			for _, e := range s.Endpoints {
				if e.Conditions.Ready != nil && *e.Conditions.Ready {
					ready++
				}
			}
			if ready == 20 {
				if writes != 1 {
					t.Errorf("%d slice writes for a burst of 20 changes, want 1", writes)
				}
				return
			}
		case <-deadline:
			t.Fatal(errors.New("slice never showed 20 ready endpoints"))
		}
	}
}
