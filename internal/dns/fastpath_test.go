package dns

import (
	"net"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	mdns "github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
)

// rawQueries are packets of the kinds rawZoneKey must accept (ok) or leave to miekg.
func rawQueries(t testing.TB) []struct {
	name string
	pkt  []byte
	ok   bool
} {
	pack := func(mut func(m *mdns.Msg)) []byte {
		m := new(mdns.Msg)
		m.SetQuestion("kubia.default.svc.cluster.local.", mdns.TypeA)
		mut(m)
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	opt := func(m *mdns.Msg) *mdns.OPT {
		o := &mdns.OPT{Hdr: mdns.RR_Header{Name: ".", Rrtype: mdns.TypeOPT}}
		o.SetUDPSize(1232)
		m.Extra = append(m.Extra, o)
		return o
	}
	return []struct {
		name string
		pkt  []byte
		ok   bool
	}{
		{"plain A", pack(func(*mdns.Msg) {}), true},
		{"mixed case, underscores", pack(func(m *mdns.Msg) { m.Question[0].Name = "_HTTP._tcp.Kubia.default.svc.cluster.local." }), true},
		{"RD clear, CD set", pack(func(m *mdns.Msg) { m.RecursionDesired, m.CheckingDisabled = false, true }), true},
		{"EDNS0", pack(func(m *mdns.Msg) { opt(m) }), true},
		{"EDNS0 with DO", pack(func(m *mdns.Msg) { opt(m).SetDo() }), true},
		{"EDNS0 version 1", pack(func(m *mdns.Msg) { opt(m).SetVersion(1) }), false},
		{"EDNS0 with an option", pack(func(m *mdns.Msg) {
			opt(m).Option = []mdns.EDNS0{&mdns.EDNS0_COOKIE{Code: mdns.EDNS0COOKIE, Cookie: "0102030405060708"}}
		}), false},
		{"a response", pack(func(m *mdns.Msg) { m.Response = true }), false},
		{"opcode NOTIFY", pack(func(m *mdns.Msg) { m.Opcode = mdns.OpcodeNotify }), false},
		{"class CH", pack(func(m *mdns.Msg) { m.Question[0].Qclass = mdns.ClassCHAOS }), false},
		{"escaped label", pack(func(m *mdns.Msg) { m.Question[0].Name = `a\.b.default.svc.cluster.local.` }), false},
		{"root name", pack(func(m *mdns.Msg) { m.Question[0].Name = "." }), false},
		{"two questions", pack(func(m *mdns.Msg) { m.Question = append(m.Question, m.Question[0]) }), false},
		{"an answer record", pack(func(m *mdns.Msg) {
			m.Answer = []mdns.RR{&mdns.A{Hdr: mdns.RR_Header{Name: ".", Rrtype: mdns.TypeA, Class: mdns.ClassINET}, A: net.IPv4(1, 2, 3, 4)}}
		}), false},
		{"trailing bytes", append(pack(func(*mdns.Msg) {}), 0), false},
		{"truncated", pack(func(*mdns.Msg) {})[:20], false},
	}
}

// TestRawZoneKey checks the read loop's parser against miekg's: for the plain queries it
// accepts, its key is the one zoneKeyOf gives for the unpacked message.
func TestRawZoneKey(t *testing.T) {
	for _, tc := range rawQueries(t) {
		t.Run(tc.name, func(t *testing.T) {
			_, got, ok := rawZoneKey(tc.pkt, nil)
			if ok != tc.ok {
				t.Fatalf("ok %v, want %v", ok, tc.ok)
			}
			if !ok {
				return
			}
			m := new(mdns.Msg)
			if err := m.Unpack(tc.pkt); err != nil {
				t.Fatal(err)
			}
			want, wok := zoneKeyOf(m, "udp")
			if !wok || got != want {
				t.Fatalf("key %+v, zoneKeyOf %+v (ok %v)", got, want, wok)
			}
		})
	}
}

// FuzzRawZoneKey: whatever the packet, rawZoneKey does not panic, and a packet it accepts
// unpacks with miekg to a message with the same key.
func FuzzRawZoneKey(f *testing.F) {
	for _, tc := range rawQueries(f) {
		f.Add(tc.pkt)
	}
	f.Fuzz(func(t *testing.T, pkt []byte) {
		_, got, ok := rawZoneKey(pkt, nil)
		if !ok {
			return
		}
		m := new(mdns.Msg)
		if err := m.Unpack(pkt); err != nil {
			t.Fatalf("accepted a packet miekg cannot unpack: %v", err)
		}
		if want, wok := zoneKeyOf(m, "udp"); !wok || got != want {
			t.Fatalf("key %+v, zoneKeyOf %+v (ok %v)", got, want, wok)
		}
	})
}

// TestServer_UDPFastPath asks a listening server over UDP: the second ask of a question is
// answered by the read loop from the zone cache, with the same reply and the request's ID,
// and counted as a cache hit; after a store change the new answer comes at once (DNS-02).
func TestServer_UDPFastPath(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := newTestServer(t, Config{Metrics: reg}, nil, fixture()...)
	if err := s.listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	addr := s.Addrs()[0]
	ask := func(id uint16, name string, edns uint16) *mdns.Msg {
		t.Helper()
		req := new(mdns.Msg)
		req.SetQuestion(name, mdns.TypeA)
		req.Id = id
		if edns > 0 {
			req.SetEdns0(edns, true)
		}
		c := &mdns.Client{Net: "udp", Timeout: 5 * time.Second, UDPSize: max(edns, 512)}
		m, _, err := c.Exchange(req, addr)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	const kubia = "kubia.default.svc.cluster.local."
	for _, edns := range []uint16{0, 1232} {
		first := ask(1, kubia, edns)
		before := s.fastHits.Load()
		second := ask(2, kubia, edns)
		// The read loop counts a hit after its write: the reply may reach us first.
		if !eventually(func() bool { return s.fastHits.Load() == before+1 }) {
			t.Fatalf("edns %d: the second question was not answered by the read loop", edns)
		}
		if second.Id != 2 {
			t.Fatalf("edns %d: reply ID %d, want 2", edns, second.Id)
		}
		if diff := cmp.Diff(replyText(first), replyText(second)); diff != "" {
			t.Errorf("edns %d: kept reply (-computed +kept):\n%s", edns, diff)
		}
	}
	if !eventually(func() bool {
		return metricValue(t, reg, "coredns_dns_responses_total", map[string]string{"plugin": "cache", "rcode": "NOERROR"}) == 2
	}) {
		t.Errorf("coredns_dns_responses_total{plugin=cache} = %v, want 2",
			metricValue(t, reg, "coredns_dns_responses_total", map[string]string{"plugin": "cache", "rcode": "NOERROR"}))
	}
	if got := metricValue(t, reg, "coredns_cache_hits_total", map[string]string{"type": "success"}); got != 2 {
		t.Errorf("coredns_cache_hits_total{type=success} = %v, want 2", got)
	}
	old := s.st.services[svcKey("kubia", "default")]
	s.st.setService(old, newService(svc("default", "kubia", func(x *corev1.Service) { x.Spec.ClusterIP = "10.96.0.77" })))
	if got := zoneText(ask(3, kubia, 0).Answer); !cmp.Equal(got, []string{"kubia.default.svc.cluster.local. 30 IN A 10.96.0.77"}) {
		t.Errorf("after the Service changed: %v", got)
	}
}

// eventually reports whether cond holds within a second (counters a server updates just
// after its reply was sent).
func eventually(cond func() bool) bool {
	for deadline := time.Now().Add(time.Second); ; time.Sleep(5 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}
