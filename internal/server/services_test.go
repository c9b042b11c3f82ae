package server_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"kubesvc/internal/server"
	"kubesvc/internal/servertest"
)

func portOf(t *testing.T, s *server.Server) int32 {
	t.Helper()
	_, p, _ := strings.Cut(strings.TrimPrefix(s.URL, "https://"), ":")
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("port of %s: %v", s.URL, err)
	}
	return int32(n)
}

// allocationKeys returns the allocation keys in the server's etcd, e.g.
// "ipaddresses/10.96.0.1" → "default/kubernetes/<uid>".
func allocationKeys(t *testing.T, s *server.Server) map[string]string {
	t.Helper()
	resp, err := server.EtcdClient(s).Get(t.Context(), "/registry/kubesvc/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, kv := range resp.Kvs {
		k := strings.TrimPrefix(string(kv.Key), "/registry/kubesvc/")
		if strings.HasPrefix(k, "ipaddresses/") || strings.HasPrefix(k, "nodeports/") {
			out[k] = string(kv.Value)
		}
	}
	return out
}

func TestServer_BuiltinServices(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	port := portOf(t, e.s)
	kube, err := e.cs.CoreV1().Services("default").Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dns, err := e.cs.CoreV1().Services("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	keys := allocationKeys(t, e.s)
	tests := []struct {
		name string
		ok   bool
		got  any
	}{
		{name: "kubernetes has the first IP of the service CIDR", ok: kube.Spec.ClusterIP == "10.96.0.1", got: kube.Spec.ClusterIP},
		{name: "kubernetes serves https 443 → the API port", ok: len(kube.Spec.Ports) == 1 && kube.Spec.Ports[0].Name == "https" &&
			kube.Spec.Ports[0].Port == 443 && kube.Spec.Ports[0].TargetPort.IntVal == port && kube.Spec.Ports[0].Protocol == corev1.ProtocolTCP, got: kube.Spec.Ports},
		{name: "kubernetes holds its IP key", ok: keys["ipaddresses/10.96.0.1"] == "default/kubernetes/"+string(kube.UID), got: keys},
		{name: "kube-dns is at --cluster-dns", ok: dns.Spec.ClusterIP == "10.96.0.10" && dns.Spec.Selector == nil, got: dns.Spec},
		{name: "kube-dns has internalTrafficPolicy Local", ok: dns.Spec.InternalTrafficPolicy != nil && *dns.Spec.InternalTrafficPolicy == corev1.ServiceInternalTrafficPolicyLocal, got: dns.Spec.InternalTrafficPolicy},
		{name: "kube-dns ports dns 53/UDP, dns-tcp 53/TCP, metrics 9153/TCP", ok: fmt.Sprint(portsOf(dns)) == "[dns/UDP/53 dns-tcp/TCP/53 metrics/TCP/9153]", got: portsOf(dns)},
		{name: "kube-dns holds its IP key", ok: keys["ipaddresses/10.96.0.10"] == "kube-system/kube-dns/"+string(dns.UID), got: keys},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.ok {
				t.Errorf("got %+v", tc.got)
			}
		})
	}
	t.Run("kubernetes Endpoints and EndpointSlice point at the API server", func(t *testing.T) {
		ep, err := e.cs.CoreV1().Endpoints("default").Get(ctx, "kubernetes", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(ep.Subsets) != 1 || len(ep.Subsets[0].Addresses) != 1 || ep.Subsets[0].Addresses[0].IP != "127.0.0.1" ||
			len(ep.Subsets[0].Ports) != 1 || ep.Subsets[0].Ports[0] != (corev1.EndpointPort{Name: "https", Port: port, Protocol: corev1.ProtocolTCP}) ||
			ep.Labels[discoveryv1.LabelSkipMirror] != "true" {
			t.Errorf("endpoints %+v labels %v, want 127.0.0.1:%d https/TCP with skip-mirror", ep.Subsets, ep.Labels, port)
		}
		sl, err := e.cs.DiscoveryV1().EndpointSlices("default").Get(ctx, "kubernetes", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if sl.Labels[discoveryv1.LabelServiceName] != "kubernetes" || sl.AddressType != discoveryv1.AddressTypeIPv4 || len(sl.Endpoints) != 1 ||
			sl.Endpoints[0].Addresses[0] != "127.0.0.1" || *sl.Ports[0].Port != port {
			t.Errorf("endpointslice %+v", sl)
		}
	})
}

func portsOf(s *corev1.Service) []string {
	var out []string
	for _, p := range s.Spec.Ports {
		out = append(out, fmt.Sprintf("%s/%s/%d", p.Name, p.Protocol, p.Port))
	}
	return out
}

// TestServer_ServicesTwoServersOneEtcd creates 200 NodePort Services in parallel, spread over
// two servers sharing one etcd: no cluster IP or node port is handed out twice (SVC-IP-05,
// SVC-NP-05), and the kubernetes endpoints list both servers.
func TestServer_ServicesTwoServersOneEtcd(t *testing.T) {
	s1 := servertest.StartTestServer(t)
	cfg := servertest.Config(t)
	cfg.DatastoreEndpoints = []string{server.EtcdURL(s1)}
	s2 := servertest.Start(t, cfg)
	var css []kubernetes.Interface
	for _, s := range []*server.Server{s1, s2} {
		css = append(css, envFor(t, s).cs)
	}
	ns := (&env{cs: css[0]}).namespace(t, "race")
	const n = 200
	start := time.Now()
	var wg sync.WaitGroup
	results := make([]*corev1.Service, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("s%03d", i)},
				Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Ports: []corev1.ServicePort{{Name: "a", Port: 80}, {Name: "b", Port: 81}}}}
			results[i], errs[i] = css[i%2].CoreV1().Services(ns).Create(context.Background(), svc, metav1.CreateOptions{})
		}()
	}
	wg.Wait()
	t.Logf("%d creates over two servers in %v", n, time.Since(start))
	ips, ports := map[string]string{}, map[int32]string{}
	for i, s := range results {
		if errs[i] != nil {
			t.Errorf("create s%03d: %v", i, errs[i])
			continue
		}
		if prev, dup := ips[s.Spec.ClusterIP]; dup {
			t.Errorf("%s and %s both got %s", prev, s.Name, s.Spec.ClusterIP)
		}
		ips[s.Spec.ClusterIP] = s.Name
		for _, p := range s.Spec.Ports {
			if prev, dup := ports[p.NodePort]; dup {
				t.Errorf("%s and %s both got nodePort %d", prev, s.Name, p.NodePort)
			}
			ports[p.NodePort] = s.Name
		}
	}
	// 200 × (1 IP + 2 node ports), plus kubernetes and kube-dns.
	if got := len(allocationKeys(t, s1)); got != 3*n+2 {
		t.Errorf("%d allocation keys, want %d", got, 3*n+2)
	}
	t.Run("kubernetes endpoints list both servers", func(t *testing.T) {
		servertest.WaitFor(t, 30*time.Second, "both servers in the kubernetes endpoints", func() error {
			ep, err := css[0].CoreV1().Endpoints("default").Get(t.Context(), "kubernetes", metav1.GetOptions{})
			if err != nil {
				return err
			}
			var got []int32
			for _, ss := range ep.Subsets {
				got = append(got, ss.Ports[0].Port)
			}
			for _, want := range []int32{portOf(t, s1), portOf(t, s2)} {
				found := false
				for _, g := range got {
					found = found || g == want
				}
				if !found {
					return fmt.Errorf("ports %v, want %d and %d", got, portOf(t, s1), portOf(t, s2))
				}
			}
			return nil
		})
	})
}

// TestServer_ServicesNothingLeaks: allocations commit in the Service's own etcd transaction,
// so a write that fails after allocating (name taken, invalid object, a crash before the
// commit) leaves no key; a key left by anything else (an older kubesvc, a manual edit) is
// removed by the repair pass at start.
func TestServer_ServicesNothingLeaks(t *testing.T) {
	dir := t.TempDir()
	s1 := servertest.StartTestServer(t, servertest.WithDataDir(dir))
	e := envFor(t, s1)
	ctx := t.Context()
	ns := e.namespace(t, "leaks")
	svcs := e.cs.CoreV1().Services(ns)
	if _, err := svcs.Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "a"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Ports: []corev1.ServicePort{{Port: 80}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	before := allocationKeys(t, s1)
	failing := []struct {
		name string
		svc  *corev1.Service
		want func(error) bool
	}{
		{name: "SVC-IP-05 name already exists after allocating", svc: &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "a"},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, ClusterIP: "10.96.0.77", Ports: []corev1.ServicePort{{Port: 80, NodePort: 30077}}}}, want: apierrors.IsAlreadyExists},
		{name: "SVC-IP-05 validation fails after allocating", svc: &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "b"},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, ClusterIP: "10.96.0.78", Ports: []corev1.ServicePort{{Port: 80, NodePort: 30078}, {Port: 81}}}}, want: apierrors.IsInvalid},
	}
	for _, tc := range failing {
		t.Run(tc.name, func(t *testing.T) {
			_, err := svcs.Create(ctx, tc.svc, metav1.CreateOptions{})
			if !tc.want(err) {
				t.Fatalf("create: %v", err)
			}
			if after := allocationKeys(t, s1); len(after) != len(before) {
				t.Errorf("allocation keys %d → %d: %v", len(before), len(after), after)
			}
		})
	}
	t.Run("SVC-IP-05 repair at start frees an orphan key", func(t *testing.T) {
		c := server.EtcdClient(s1)
		for _, k := range []string{"ipaddresses/10.96.0.99", "nodeports/30099"} {
			if _, err := c.Put(ctx, "/registry/kubesvc/"+k, "leaks/crashed/uid"); err != nil {
				t.Fatal(err)
			}
		}
		servertest.Close(s1)
		s2 := servertest.StartTestServer(t, servertest.WithDataDir(dir))
		after := allocationKeys(t, s2)
		if _, ok := after["ipaddresses/10.96.0.99"]; ok {
			t.Errorf("orphan IP key survived the restart")
		}
		if _, ok := after["nodeports/30099"]; ok {
			t.Errorf("orphan node port key survived the restart")
		}
		if len(after) != len(before) {
			t.Errorf("allocation keys after restart: %d, want %d", len(after), len(before))
		}
		// The freed values can be requested again.
		if _, err := envFor(t, s2).cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "c"},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, ClusterIP: "10.96.0.99", Ports: []corev1.ServicePort{{Port: 80, NodePort: 30099}}}}, metav1.CreateOptions{}); err != nil {
			t.Errorf("create with the freed values: %v", err)
		}
	})
}

// TestServer_ServicesExhaustion: a /29 has 6 addresses, two of them taken by kubernetes and
// kube-dns; the fifth Service gets kube's 500, and creating works again after a delete.
func TestServer_ServicesExhaustion(t *testing.T) {
	cfg := servertest.Config(t)
	cfg.ServiceCIDR, cfg.ClusterDNS = "10.96.0.0/29", "10.96.0.2"
	e := envFor(t, servertest.Start(t, cfg))
	ctx := t.Context()
	svcs := e.cs.CoreV1().Services(e.namespace(t, "full"))
	mk := func(name string) error {
		_, err := svcs.Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}, metav1.CreateOptions{})
		return err
	}
	for i := range 4 {
		if err := mk(fmt.Sprintf("s%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	err := mk("over")
	var se *apierrors.StatusError
	if !errors.As(err, &se) || se.ErrStatus.Code != 500 || se.ErrStatus.Reason != metav1.StatusReasonInternalError ||
		!strings.Contains(se.ErrStatus.Message, "failed to allocate a serviceIP") || !strings.Contains(se.ErrStatus.Message, "range is full") {
		t.Fatalf("create in a full range: %v, want kube's 500 InternalError (failed to allocate a serviceIP: range is full)", err)
	}
	if err := svcs.Delete(ctx, "s2", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	servertest.WaitFor(t, 10*time.Second, "a create after a delete", func() error { return mk("over") })
	got, err := svcs.Get(ctx, "over", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ip := netip.MustParseAddr(got.Spec.ClusterIP); !netip.MustParsePrefix("10.96.0.0/29").Contains(ip) {
		t.Errorf("clusterIP %s outside the /29", ip)
	}
}
