package dns_test

// Tests of the server against a real API server. They live in package dns_test because
// servertest imports the server, which imports the node agent, which imports this package.

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	mdns "github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"kubesvc/internal/dns"
	"kubesvc/internal/servertest"
)

// TestServer_Integration runs the server against a real API server: objects created with
// client-go, questions over UDP and TCP on 127.0.0.1.
func TestServer_Integration(t *testing.T) {
	api := servertest.StartTestServer(t)
	cs, err := kubernetes.NewForConfig(api.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	up := dns.StartTestUpstream(t)
	reg := prometheus.NewRegistry()
	s, err := dns.New(dns.Config{Listen: []string{"127.0.0.1:0"}, Upstreams: []string{up.Addr()}, Client: cs, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	select {
	case <-s.Ready():
	default:
		t.Fatal("Start returned before the caches synced")
	}
	addr := s.Addrs()[0]

	tcp := corev1.ProtocolTCP
	web := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Protocol: tcp, Port: 80, TargetPort: intstr.FromInt32(8080)}}}}
	web, err = cs.CoreV1().Services("default").Create(ctx, web, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	created := time.Now()
	// DNS-02: a Service created after start resolves within 1 s.
	servertest.WaitFor(t, time.Second, "web.default resolves", func() error {
		m := dns.Dig(t, addr, "udp", "web.default.svc.cluster.local.", mdns.TypeA, 0)
		if len(m.Answer) != 1 {
			return fmt.Errorf("rcode %s, %d answers", mdns.RcodeToString[m.Rcode], len(m.Answer))
		}
		return nil
	})
	t.Logf("resolved %v after the create", time.Since(created).Round(time.Millisecond))
	if got := dns.ZoneText(dns.Dig(t, addr, "tcp", "_http._tcp.web.default.svc.cluster.local.", mdns.TypeSRV, 0).Answer); !cmp.Equal(got,
		[]string{"_http._tcp.web.default.svc.cluster.local. 30 IN SRV 0 100 80 web.default.svc.cluster.local."}) {
		t.Errorf("SRV over TCP: %v", got)
	}
	rev, _ := mdns.ReverseAddr(web.Spec.ClusterIP)
	if got := dns.ZoneText(dns.Dig(t, addr, "udp", rev, mdns.TypePTR, 0).Answer); len(got) != 1 || !strings.HasSuffix(got[0], "PTR web.default.svc.cluster.local.") {
		t.Errorf("PTR of %s: %v", web.Spec.ClusterIP, got)
	}

	// DNS-03: a headless Service with 60 ready endpoints: too big for 512 bytes, so UDP
	// without EDNS0 truncates and TCP (or EDNS0) carries the whole answer.
	hl := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "db"},
		Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{{Name: "pg", Protocol: tcp, Port: 5432}}}}
	if _, err := cs.CoreV1().Services("default").Create(ctx, hl, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	es := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "db-1",
		Labels: map[string]string{discoveryv1.LabelServiceName: "db"}}, AddressType: discoveryv1.AddressTypeIPv4}
	for i := range 60 {
		h := fmt.Sprintf("db-%d", i)
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{fmt.Sprintf("10.244.7.%d", i+1)}, Hostname: &h})
	}
	if _, err := cs.DiscoveryV1().EndpointSlices("default").Create(ctx, es, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	servertest.WaitFor(t, time.Second, "db.default resolves", func() error {
		if m := dns.Dig(t, addr, "tcp", "db.default.svc.cluster.local.", mdns.TypeA, 0); len(m.Answer) != 60 {
			return fmt.Errorf("%d answers over TCP", len(m.Answer))
		}
		return nil
	})
	if m := dns.Dig(t, addr, "udp", "db.default.svc.cluster.local.", mdns.TypeA, 0); !m.Truncated || len(m.Answer) == 0 || len(m.Answer) == 60 {
		t.Errorf("UDP without EDNS0: TC=%v, %d answers; want a truncated part of the answer", m.Truncated, len(m.Answer))
	}
	m := dns.Dig(t, addr, "udp", "db.default.svc.cluster.local.", mdns.TypeA, 4096)
	if m.Truncated || len(m.Answer) != 60 || m.IsEdns0() == nil || m.IsEdns0().UDPSize() != 4096 {
		t.Errorf("UDP with EDNS0 4096: TC=%v, %d answers, OPT %v", m.Truncated, len(m.Answer), m.IsEdns0())
	}
	if m := dns.Dig(t, addr, "udp", "db-7.db.default.svc.cluster.local.", mdns.TypeA, 0); len(m.Answer) != 1 {
		t.Errorf("db-7.db: %v", m.Answer)
	}

	// Deleting the Service makes its name NXDOMAIN (DNS-C-02).
	if err := cs.CoreV1().Services("default").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	servertest.WaitFor(t, time.Second, "web.default is gone", func() error {
		if m := dns.Dig(t, addr, "udp", "web.default.svc.cluster.local.", mdns.TypeA, 0); m.Rcode != mdns.RcodeNameError {
			return fmt.Errorf("rcode %s", mdns.RcodeToString[m.Rcode])
		}
		return nil
	})

	// Other names go to the upstream, once: the second question is a cache hit.
	for range 2 {
		if m := dns.Dig(t, addr, "udp", "www.example.com.", mdns.TypeA, 0); len(m.Answer) != 1 {
			t.Fatalf("www.example.com: %v", m)
		}
	}
	if n := up.Queries(); n != 1 {
		t.Errorf("upstream got %d questions, want 1", n)
	}
	server := map[string]string{"server": "dns://127.0.0.1:0"}
	for _, c := range []struct {
		name   string
		labels map[string]string
		min    float64
	}{
		{"coredns_cache_hits_total", map[string]string{"type": "success"}, 1},
		{"coredns_cache_misses_total", nil, 1},
		{"coredns_dns_responses_total", map[string]string{"rcode": "NXDOMAIN", "plugin": "kubernetes"}, 1},
		{"coredns_dns_requests_total", map[string]string{"proto": "tcp", "type": "SRV", "zone": ".", "family": "1"}, 1},
		{"coredns_dns_request_duration_seconds", nil, 10},
	} {
		labels := map[string]string{}
		for k, v := range server {
			labels[k] = v
		}
		for k, v := range c.labels {
			labels[k] = v
		}
		// A request's duration is observed after its answer was written: the last one may
		// land just after the client got it.
		servertest.WaitFor(t, 5*time.Second, c.name, func() error {
			if got := dns.MetricValue(t, reg, c.name, labels); got < c.min {
				return fmt.Errorf("%s%v = %v, want ≥ %v", c.name, c.labels, got, c.min)
			}
			return nil
		})
	}
}
