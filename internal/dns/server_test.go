package dns

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
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

	"kubesvc/internal/servertest"
)

// testUpstream is a DNS server on 127.0.0.1 (UDP and TCP, one port) standing in for the
// node's resolvers: names under example.com. have an A record (TTL 300), nx.example.com.
// does not exist (SOA TTL 60), and it counts the questions it gets.
type testUpstream struct {
	addr    string
	queries atomic.Int64
}

func startTestUpstream(t *testing.T) *testUpstream {
	t.Helper()
	u := &testUpstream{}
	handler := mdns.HandlerFunc(func(w mdns.ResponseWriter, r *mdns.Msg) {
		u.queries.Add(1)
		m := new(mdns.Msg)
		m.SetReply(r)
		q := r.Question[0]
		switch name := strings.ToLower(q.Name); {
		case name == "nx.example.com.":
			m.Rcode = mdns.RcodeNameError
			m.Ns = []mdns.RR{&mdns.SOA{Hdr: hdr("example.com.", mdns.TypeSOA, 60), Ns: "ns.example.com.",
				Mbox: "hostmaster.example.com.", Serial: 1, Refresh: 1, Retry: 1, Expire: 1, Minttl: 60}}
		case q.Qtype == mdns.TypeA:
			m.Answer = []mdns.RR{&mdns.A{Hdr: hdr(q.Name, mdns.TypeA, 300), A: net.ParseIP("93.184.216.34")}}
		}
		_ = w.WriteMsg(m)
	})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	for _, srv := range []*mdns.Server{{PacketConn: pc, Handler: handler}, {Listener: ln, Handler: handler}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { _ = srv.ActivateAndServe() }()
		<-started
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	u.addr = pc.LocalAddr().String()
	return u
}

// dig asks addr one question over proto; edns 0 means no OPT record.
func dig(t *testing.T, addr, proto, name string, qtype uint16, edns uint16) *mdns.Msg {
	t.Helper()
	req := new(mdns.Msg)
	req.SetQuestion(name, qtype)
	if edns > 0 {
		req.SetEdns0(edns, false)
	}
	c := &mdns.Client{Net: proto, Timeout: 2 * time.Second, UDPSize: max(edns, 512)}
	m, _, err := c.Exchange(req, addr)
	if err != nil {
		t.Fatalf("%s %s over %s: %v", name, mdns.TypeToString[qtype], proto, err)
	}
	return m
}

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
	up := startTestUpstream(t)
	reg := prometheus.NewRegistry()
	s, err := New(Config{Listen: []string{"127.0.0.1:0"}, Upstreams: []string{up.addr}, Client: cs, Metrics: reg})
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
		m := dig(t, addr, "udp", "web.default.svc.cluster.local.", mdns.TypeA, 0)
		if len(m.Answer) != 1 {
			return fmt.Errorf("rcode %s, %d answers", mdns.RcodeToString[m.Rcode], len(m.Answer))
		}
		return nil
	})
	t.Logf("resolved %v after the create", time.Since(created).Round(time.Millisecond))
	if got := zoneText(dig(t, addr, "tcp", "_http._tcp.web.default.svc.cluster.local.", mdns.TypeSRV, 0).Answer); !cmp.Equal(got,
		[]string{"_http._tcp.web.default.svc.cluster.local. 30 IN SRV 0 100 80 web.default.svc.cluster.local."}) {
		t.Errorf("SRV over TCP: %v", got)
	}
	rev, _ := mdns.ReverseAddr(web.Spec.ClusterIP)
	if got := zoneText(dig(t, addr, "udp", rev, mdns.TypePTR, 0).Answer); len(got) != 1 || !strings.HasSuffix(got[0], "PTR web.default.svc.cluster.local.") {
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
		if m := dig(t, addr, "tcp", "db.default.svc.cluster.local.", mdns.TypeA, 0); len(m.Answer) != 60 {
			return fmt.Errorf("%d answers over TCP", len(m.Answer))
		}
		return nil
	})
	if m := dig(t, addr, "udp", "db.default.svc.cluster.local.", mdns.TypeA, 0); !m.Truncated || len(m.Answer) == 0 || len(m.Answer) == 60 {
		t.Errorf("UDP without EDNS0: TC=%v, %d answers; want a truncated part of the answer", m.Truncated, len(m.Answer))
	}
	m := dig(t, addr, "udp", "db.default.svc.cluster.local.", mdns.TypeA, 4096)
	if m.Truncated || len(m.Answer) != 60 || m.IsEdns0() == nil || m.IsEdns0().UDPSize() != 4096 {
		t.Errorf("UDP with EDNS0 4096: TC=%v, %d answers, OPT %v", m.Truncated, len(m.Answer), m.IsEdns0())
	}
	if m := dig(t, addr, "udp", "db-7.db.default.svc.cluster.local.", mdns.TypeA, 0); len(m.Answer) != 1 {
		t.Errorf("db-7.db: %v", m.Answer)
	}

	// Deleting the Service makes its name NXDOMAIN (DNS-C-02).
	if err := cs.CoreV1().Services("default").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	servertest.WaitFor(t, time.Second, "web.default is gone", func() error {
		if m := dig(t, addr, "udp", "web.default.svc.cluster.local.", mdns.TypeA, 0); m.Rcode != mdns.RcodeNameError {
			return fmt.Errorf("rcode %s", mdns.RcodeToString[m.Rcode])
		}
		return nil
	})

	// Other names go to the upstream, once: the second question is a cache hit.
	for range 2 {
		if m := dig(t, addr, "udp", "www.example.com.", mdns.TypeA, 0); len(m.Answer) != 1 {
			t.Fatalf("www.example.com: %v", m)
		}
	}
	if n := up.queries.Load(); n != 1 {
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
		if got := metricValue(t, reg, c.name, labels); got < c.min {
			t.Errorf("%s%v = %v, want ≥ %v", c.name, c.labels, got, c.min)
		}
	}
}

// metricValue sums the counters (or histogram sample counts) of the series of name whose
// labels include want.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if have[k] != v {
					continue series
				}
			}
			sum += m.GetCounter().GetValue() + float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum
}

// TestForwarder_Cache checks the cache of upstream replies: positive and negative entries,
// TTLs counted down from the record TTLs, the DO bit in the key, and that truncated or failed
// replies are not cached.
func TestForwarder_Cache(t *testing.T) {
	up := startTestUpstream(t)
	s, err := New(Config{Listen: []string{"127.0.0.1:0"}, Upstreams: []string{up.addr}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1700000000, 0)
	s.fwd.cache.now = func() time.Time { return now }
	ask := func(name string, qtype uint16, do bool) *mdns.Msg {
		req := new(mdns.Msg)
		req.SetQuestion(name, qtype)
		if do {
			req.SetEdns0(1232, true)
		}
		w := &recorder{}
		s.ServeDNS(w, req)
		return w.msg
	}
	cases := []struct {
		name      string
		advance   time.Duration
		qname     string
		do        bool
		wantTTL   uint32
		wantRcode int
		upstream  int64 // questions the upstream has had after this step
	}{
		{name: "miss goes upstream", qname: "a.example.com.", wantTTL: 300, upstream: 1},
		{name: "hit counts the TTL down", advance: 100 * time.Second, qname: "a.example.com.", wantTTL: 200, upstream: 1},
		{name: "a hit keeps the question's spelling", qname: "A.Example.COM.", wantTTL: 200, upstream: 1},
		{name: "DO bit is part of the key", qname: "a.example.com.", do: true, wantTTL: 300, upstream: 2},
		{name: "expired entry goes upstream again", advance: 201 * time.Second, qname: "a.example.com.", wantTTL: 300, upstream: 3},
		{name: "NXDOMAIN is cached with the SOA TTL", qname: "nx.example.com.", wantTTL: 60, wantRcode: mdns.RcodeNameError, upstream: 4},
		{name: "negative hit", advance: 30 * time.Second, qname: "nx.example.com.", wantTTL: 30, wantRcode: mdns.RcodeNameError, upstream: 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			now = now.Add(c.advance)
			m := ask(c.qname, mdns.TypeA, c.do)
			if m.Rcode != c.wantRcode {
				t.Fatalf("rcode %s, want %s", mdns.RcodeToString[m.Rcode], mdns.RcodeToString[c.wantRcode])
			}
			rrs := append(append([]mdns.RR{}, m.Answer...), m.Ns...)
			if len(rrs) == 0 || rrs[0].Header().Ttl != c.wantTTL {
				t.Errorf("records %v, want TTL %d", rrs, c.wantTTL)
			}
			if len(m.Answer) > 0 && m.Answer[0].Header().Name != c.qname {
				t.Errorf("owner %q, want the question's %q", m.Answer[0].Header().Name, c.qname)
			}
			if got := up.queries.Load(); got != c.upstream {
				t.Errorf("upstream questions %d, want %d", got, c.upstream)
			}
		})
	}
}

// TestForwarder_NoUpstream: without a reachable upstream, other names get SERVFAIL.
func TestForwarder_NoUpstream(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0") // bound, never answers
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	s, err := New(Config{Listen: []string{"127.0.0.1:0"}, Upstreams: []string{pc.LocalAddr().String()}, UpstreamTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if m := ask(s, "www.example.com.", mdns.TypeA); m.Rcode != mdns.RcodeServerFailure {
		t.Errorf("rcode %s, want SERVFAIL", mdns.RcodeToString[m.Rcode])
	}
}

func TestServeDNS_Protocol(t *testing.T) {
	s := newTestServer(t, Config{}, nil, fixture()...)
	cases := []struct {
		name  string
		mut   func(*mdns.Msg)
		rcode int
		opt   bool
	}{
		{name: "EDNS0 version 1 is BADVERS", mut: func(m *mdns.Msg) { m.SetEdns0(4096, false); m.IsEdns0().SetVersion(1) }, rcode: mdns.RcodeBadVers, opt: true},
		{name: "class CHAOS is refused", mut: func(m *mdns.Msg) { m.Question[0].Qclass = mdns.ClassCHAOS }, rcode: mdns.RcodeRefused},
		{name: "opcode UPDATE is not implemented", mut: func(m *mdns.Msg) { m.Opcode = mdns.OpcodeUpdate }, rcode: mdns.RcodeNotImplemented},
		{name: "no question is SERVFAIL", mut: func(m *mdns.Msg) { m.Question = nil }, rcode: mdns.RcodeServerFailure},
		{name: "OPT in the reply iff in the request", mut: func(m *mdns.Msg) { m.SetEdns0(1232, true) }, opt: true},
		{name: "no OPT without EDNS0", mut: func(*mdns.Msg) {}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := new(mdns.Msg)
			req.SetQuestion("kubia.default.svc.cluster.local.", mdns.TypeA)
			c.mut(req)
			w := &recorder{}
			s.ServeDNS(w, req)
			if w.msg == nil {
				t.Fatal("no reply")
			}
			if w.msg.Rcode != c.rcode {
				t.Errorf("rcode %s, want %s", mdns.RcodeToString[w.msg.Rcode], mdns.RcodeToString[c.rcode])
			}
			if (w.msg.IsEdns0() != nil) != c.opt {
				t.Errorf("OPT record %v, want present=%v", w.msg.IsEdns0(), c.opt)
			}
		})
	}
}

func TestServer_NS(t *testing.T) {
	objs := append(fixture(), ns("kube-system"),
		svc("kube-system", "kube-dns", func(s *corev1.Service) {
			s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.96.0.53", []string{"10.96.0.53"}
			s.Spec.Ports = []corev1.ServicePort{svcPort("dns", corev1.ProtocolUDP, 53)}
		}),
		slice("kube-system", "kube-dns-node1", "kube-dns", discoveryv1.AddressTypeIPv4,
			[]discoveryv1.EndpointPort{epPort("dns", corev1.ProtocolUDP, 53)}, ep("10.244.1.1", "", "")))
	cases := []struct {
		name   string
		listen string
		answer []string
		extra  []string
	}{
		{name: "the kube-dns Service whose endpoint is this server", listen: "10.244.1.1:53",
			answer: []string{"cluster.local. 30 IN NS kube-dns.kube-system.svc.cluster.local."},
			extra:  []string{"kube-dns.kube-system.svc.cluster.local. 30 IN A 10.96.0.53"}},
		{name: "the listen address when no Service points at it", listen: "10.244.2.1:53",
			answer: []string{"cluster.local. 30 IN NS ns.dns.cluster.local."},
			extra:  []string{"ns.dns.cluster.local. 30 IN A 10.244.2.1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newTestServer(t, Config{Listen: []string{c.listen}}, nil, objs...)
			m := ask(s, "cluster.local.", mdns.TypeNS)
			if diff := cmp.Diff(c.answer, zoneText(m.Answer)); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(c.extra, zoneText(m.Extra)); diff != "" {
				t.Errorf("additional (-want +got):\n%s", diff)
			}
		})
	}
}

func TestConfig_Validate(t *testing.T) {
	cases := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{name: "defaults with a listen address", cfg: Config{Listen: []string{"127.0.0.1:53"}}},
		{name: "no listen address", cfg: Config{}, wantErr: "listen: at least one address"},
		{name: "listen is not ip:port", cfg: Config{Listen: []string{"localhost:53"}}, wantErr: "is not ip:port"},
		{name: "upstream is a name", cfg: Config{Listen: []string{"127.0.0.1:53"}, Upstreams: []string{"dns.google:53"}}, wantErr: "not an IP address"},
		{name: "bare upstream IP", cfg: Config{Listen: []string{"127.0.0.1:53"}, Upstreams: []string{"10.0.0.2", "[fd00::2]:5353"}}},
		{name: "bad pod mode", cfg: Config{Listen: []string{"127.0.0.1:53"}, PodMode: "on"}, wantErr: "podMode"},
		{name: "ttl too large", cfg: Config{Listen: []string{"127.0.0.1:53"}, TTL: 7200}, wantErr: "ttl 7200"},
		{name: "bad zone", cfg: Config{Listen: []string{"127.0.0.1:53"}, Zone: "a..b"}, wantErr: "zone"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(c.cfg)
			if c.wantErr == "" && err != nil || c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
				t.Errorf("New: %v, want error containing %q", err, c.wantErr)
			}
		})
	}
}

func TestUpstreamsFromResolvConf(t *testing.T) {
	p := filepath.Join(t.TempDir(), "resolv.conf")
	conf := "# generated\nsearch example.com\nnameserver 10.0.0.2\nnameserver fd00::2\noptions ndots:2\n"
	if err := os.WriteFile(p, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := UpstreamsFromResolvConf(p)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"10.0.0.2:53", "[fd00::2]:53"}, got); diff != "" {
		t.Errorf("upstreams (-want +got):\n%s", diff)
	}
	if _, err := UpstreamsFromResolvConf(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing file: no error")
	}
}
