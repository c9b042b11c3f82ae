package dns

import (
	"net"
	"testing"

	"github.com/google/go-cmp/cmp"
	mdns "github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
)

// serve sends req through s.ServeDNS over proto and returns the reply.
func serve(s *Server, req *mdns.Msg, proto string) *mdns.Msg {
	w := &recorder{}
	if proto == "tcp" {
		w.local = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
	}
	s.ServeDNS(w, req)
	return w.msg
}

// replyText is a reply in comparable text: header flags, rcode and every section.
func replyText(m *mdns.Msg) []string {
	if m == nil {
		return []string{"(no reply)"}
	}
	h := m.MsgHdr
	out := []string{mdns.RcodeToString[m.Rcode],
		"flags qr=" + flag01(h.Response) + " aa=" + flag01(h.Authoritative) + " tc=" + flag01(h.Truncated) + " rd=" + flag01(h.RecursionDesired) +
			" ra=" + flag01(h.RecursionAvailable) + " cd=" + flag01(h.CheckingDisabled)}
	for _, q := range m.Question {
		out = append(out, "Q "+q.String())
	}
	for _, sec := range []struct {
		name string
		rrs  []mdns.RR
	}{{"AN", m.Answer}, {"NS", m.Ns}, {"AR", m.Extra}} {
		for _, l := range zoneText(sec.rrs) {
			out = append(out, sec.name+" "+l)
		}
	}
	if o := m.IsEdns0(); o != nil {
		out = append(out, "OPT "+o.String())
	}
	return out
}

func flag01(v bool) string {
	if v {
		return "1"
	}
	return "0"
}

// TestZoneCache_SameAsUncached asks every question of the record grammar, in every request
// variant that changes a reply (case, RD, CD, EDNS0 size and DO, UDP or TCP), twice of a
// server with the zone cache and once of one without: the kept replies must be the computed
// ones, IDs included (spec §4.2/§4.3 answers do not change by being kept).
func TestZoneCache_SameAsUncached(t *testing.T) {
	upstream := map[string][]string{"www.example.com. A": {"www.example.com. 300 IN A 93.184.216.34"}}
	cached := newTestServer(t, Config{}, upstream, fixture()...)
	plain := newTestServer(t, Config{CacheSize: -1}, upstream, fixture()...)
	if cached.zc == nil || plain.zc != nil {
		t.Fatal("zone cache: want it on by default and off with CacheSize < 0")
	}
	questions := []struct {
		name  string
		qtype uint16
	}{
		{"kubia.default.svc.cluster.local.", mdns.TypeA},
		{"KUBIA.Default.svc.cluster.local.", mdns.TypeA},
		{"kubia.default.svc.cluster.local.", mdns.TypeAAAA},
		{"_http._tcp.kubia.default.svc.cluster.local.", mdns.TypeSRV},
		{"kubia.default.svc.cluster.local.", mdns.TypeSRV},
		{"headless.default.svc.cluster.local.", mdns.TypeA},
		{"web-0.headless.default.svc.cluster.local.", mdns.TypeAAAA},
		{"ext-in.default.svc.cluster.local.", mdns.TypeA},
		{"10.0.96.10.in-addr.arpa.", mdns.TypePTR},
		{"dns-version.cluster.local.", mdns.TypeTXT},
		{"cluster.local.", mdns.TypeSOA},
		{"cluster.local.", mdns.TypeNS},
		{"nosuch.default.svc.cluster.local.", mdns.TypeA},
		{"kubia.nosuch.svc.cluster.local.", mdns.TypeMX},
		{"10-244-1-5.default.pod.cluster.local.", mdns.TypeA},
		{"cluster.local.", mdns.TypeAXFR},
	}
	type variant struct {
		name   string
		proto  string
		edns   uint16
		do, rd bool
		cd     bool
	}
	variants := []variant{
		{name: "udp", proto: "udp"},
		{name: "udp rd", proto: "udp", rd: true},
		{name: "udp cd", proto: "udp", cd: true},
		{name: "udp edns 512 do", proto: "udp", edns: 512, do: true},
		{name: "udp edns 4096", proto: "udp", edns: 4096},
		{name: "tcp", proto: "tcp"},
	}
	for _, q := range questions {
		for _, v := range variants {
			t.Run(mdns.TypeToString[q.qtype]+" "+q.name+" "+v.name, func(t *testing.T) {
				mk := func(id uint16) *mdns.Msg {
					req := new(mdns.Msg)
					req.SetQuestion(q.name, q.qtype)
					req.Id, req.RecursionDesired, req.CheckingDisabled = id, v.rd, v.cd
					if v.edns > 0 {
						req.SetEdns0(v.edns, v.do)
					}
					return req
				}
				want := serve(plain, mk(7), v.proto)
				first := serve(cached, mk(7), v.proto)
				second := serve(cached, mk(4242), v.proto)
				if diff := cmp.Diff(replyText(want), replyText(first)); diff != "" {
					t.Errorf("first reply (-uncached +cached):\n%s", diff)
				}
				if second == nil || second.Id != 4242 {
					t.Fatalf("kept reply has ID %v, want the request's 4242", second)
				}
				if diff := cmp.Diff(replyText(want), replyText(second)); diff != "" {
					t.Errorf("kept reply (-uncached +cached):\n%s", diff)
				}
			})
		}
	}
}

// TestZoneCache_FollowsTheStore checks that kept replies end with the store's generation: a
// changed, added or deleted Service answers anew at once (DNS-02, DNS-C-02), and replies that
// needed the upstream (an ExternalName outside the zone, DNS-06) are never kept.
func TestZoneCache_FollowsTheStore(t *testing.T) {
	upstream := map[string][]string{"www.example.com. A": {"www.example.com. 300 IN A 93.184.216.34"}}
	s := newTestServer(t, Config{}, upstream, fixture()...)
	answer := func(name string, qtype uint16) []string {
		t.Helper()
		m := ask(s, name, qtype)
		return append([]string{mdns.RcodeToString[m.Rcode]}, zoneText(m.Answer)...)
	}
	const kubia = "kubia.default.svc.cluster.local."
	if diff := cmp.Diff([]string{"NOERROR", "kubia.default.svc.cluster.local. 30 IN A 10.96.0.10"}, answer(kubia, mdns.TypeA)); diff != "" {
		t.Fatal(diff)
	}
	answer(kubia, mdns.TypeA) // kept
	if _, ok := s.zc.get(zoneKey{name: kubia, qtype: mdns.TypeA, flags: zoneRD | zoneEDNS, udpSize: 4096}, s.st.generation()); !ok {
		t.Fatal("the reply was not kept")
	}

	old := s.st.services[svcKey("kubia", "default")]
	moved := svc("default", "kubia", func(x *corev1.Service) {
		x.Spec.ClusterIP, x.Spec.ClusterIPs = "10.96.0.99", []string{"10.96.0.99"}
		x.Spec.Ports = []corev1.ServicePort{svcPort("http", corev1.ProtocolTCP, 80)}
	})
	cur := newService(moved)
	s.st.setService(old, cur)
	if diff := cmp.Diff([]string{"NOERROR", "kubia.default.svc.cluster.local. 30 IN A 10.96.0.99"}, answer(kubia, mdns.TypeA)); diff != "" {
		t.Errorf("after the Service changed (-want +got):\n%s", diff)
	}
	s.st.setService(cur, nil)
	if got := answer(kubia, mdns.TypeA); got[0] != "NXDOMAIN" {
		t.Errorf("after the Service was deleted: %v", got)
	}
	late := newService(svc("default", "late", func(x *corev1.Service) { x.Spec.ClusterIP = "10.96.0.98" }))
	if got := answer("late.default.svc.cluster.local.", mdns.TypeA); got[0] != "NXDOMAIN" {
		t.Fatalf("before the Service exists: %v", got)
	}
	s.st.setService(nil, late)
	if diff := cmp.Diff([]string{"NOERROR", "late.default.svc.cluster.local. 30 IN A 10.96.0.98"}, answer("late.default.svc.cluster.local.", mdns.TypeA)); diff != "" {
		t.Errorf("after the Service was created (-want +got):\n%s", diff)
	}

	const ext = "ext.default.svc.cluster.local."
	if got := answer(ext, mdns.TypeA); len(got) != 3 || got[2] != "www.example.com. 300 IN A 93.184.216.34" {
		t.Fatalf("ExternalName: %v", got)
	}
	upstream["www.example.com. A"] = []string{"www.example.com. 300 IN A 93.184.216.35"}
	if got := answer(ext, mdns.TypeA); len(got) != 3 || got[2] != "www.example.com. 300 IN A 93.184.216.35" {
		t.Errorf("ExternalName after the upstream changed: %v (a reply that used the upstream was kept)", got)
	}
}

// TestZoneCache_NotBeforeSync checks that the SERVFAIL answered before the caches synced
// (DNS-C-04) is not kept for later.
func TestZoneCache_NotBeforeSync(t *testing.T) {
	s := newTestServer(t, Config{}, nil, fixture()...)
	synced := false
	s.b.synced = func() bool { return synced }
	if m := ask(s, "nosuch.default.svc.cluster.local.", mdns.TypeA); m.Rcode != mdns.RcodeServerFailure {
		t.Fatalf("before sync: %s, want SERVFAIL", mdns.RcodeToString[m.Rcode])
	}
	synced = true
	if m := ask(s, "nosuch.default.svc.cluster.local.", mdns.TypeA); m.Rcode != mdns.RcodeNameError {
		t.Fatalf("after sync: %s, want NXDOMAIN", mdns.RcodeToString[m.Rcode])
	}
}

// FuzzZoneCache feeds random packets to a server with the zone cache (each twice, the second
// time with another ID) and to one without: the kept reply must equal the computed one.
func FuzzZoneCache(f *testing.F) {
	for _, q := range []struct {
		name  string
		qtype uint16
	}{
		{"kubia.default.svc.cluster.local.", mdns.TypeA},
		{"_http._tcp.kubia.default.svc.cluster.local.", mdns.TypeSRV},
		{"headless.default.svc.cluster.local.", mdns.TypeA},
		{"ext-in.default.svc.cluster.local.", mdns.TypeA},
		{"nosuch.default.svc.cluster.local.", mdns.TypeTXT},
		{"10.0.96.10.in-addr.arpa.", mdns.TypePTR},
	} {
		m := new(mdns.Msg)
		m.SetQuestion(q.name, q.qtype)
		m.SetEdns0(1232, true)
		pkt, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(pkt, false)
		f.Add(pkt, true)
	}
	upstream := map[string][]string{"www.example.com. A": {"www.example.com. 300 IN A 93.184.216.34"}}
	cached := newTestServer(f, Config{}, upstream, fixture()...)
	plain := newTestServer(f, Config{CacheSize: -1}, upstream, fixture()...)
	f.Fuzz(func(t *testing.T, pkt []byte, tcp bool) {
		req := new(mdns.Msg)
		if err := req.Unpack(pkt); err != nil {
			return
		}
		proto := "udp"
		if tcp {
			proto = "tcp"
		}
		want := serve(plain, req.Copy(), proto)
		_ = serve(cached, req.Copy(), proto)
		again := req.Copy()
		again.Id = req.Id ^ 0x5a5a
		got := serve(cached, again, proto)
		if want == nil || got == nil {
			if (want == nil) != (got == nil) {
				t.Fatalf("computed reply %v, kept reply %v", want, got)
			}
			return
		}
		if got.Id != again.Id {
			t.Fatalf("kept reply has ID %d, want %d", got.Id, again.Id)
		}
		if diff := cmp.Diff(replyText(want), replyText(got)); diff != "" {
			t.Fatalf("kept reply differs (-computed +kept):\n%s", diff)
		}
	})
}
