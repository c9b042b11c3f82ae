package dns

import (
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
