package dns

import (
	"net"
	"testing"

	mdns "github.com/miekg/dns"
)

// FuzzServeDNS feeds random packets to the query path: whatever comes in, ServeDNS does not
// panic, and it sends either nothing or a well-formed reply to the question asked. Packets
// that the miekg server would reject before the handler (not a query, not exactly one
// question) are still handed to the handler, which must cope too. Seeds are the questions
// of the record-grammar table.
func FuzzServeDNS(f *testing.F) {
	seeds := []struct {
		name  string
		qtype uint16
	}{
		{"kubia.default.svc.cluster.local.", mdns.TypeA},
		{"_http._tcp.kubia.default.svc.cluster.local.", mdns.TypeSRV},
		{"headless.default.svc.cluster.local.", mdns.TypeAAAA},
		{"web-0.headless.default.svc.cluster.local.", mdns.TypeA},
		{"ext.default.svc.cluster.local.", mdns.TypeA},
		{"ext-in.default.svc.cluster.local.", mdns.TypeCNAME},
		{"10-244-1-5.default.pod.cluster.local.", mdns.TypeA},
		{"10.0.96.10.in-addr.arpa.", mdns.TypePTR},
		{"1.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.", mdns.TypePTR},
		{"dns-version.cluster.local.", mdns.TypeTXT},
		{"cluster.local.", mdns.TypeSOA},
		{"cluster.local.", mdns.TypeNS},
		{"a.b.c.kubia.default.svc.cluster.local.", mdns.TypeANY},
		{"--ffff-102-304.default.pod.cluster.local.", mdns.TypeA},
	}
	for _, s := range seeds {
		for _, edns := range []bool{false, true} {
			m := new(mdns.Msg)
			m.SetQuestion(s.name, s.qtype)
			if edns {
				m.SetEdns0(512, true)
			}
			b, err := m.Pack()
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b, false)
			f.Add(b, true)
		}
	}
	upstream := map[string][]string{"www.example.com. A": {"www.example.com. 300 IN A 93.184.216.34"}}
	s := newTestServer(f, Config{Listen: []string{"10.0.0.53:53"}}, upstream, fixture()...)
	f.Fuzz(func(t *testing.T, pkt []byte, tcp bool) {
		req := new(mdns.Msg)
		if err := req.Unpack(pkt); err != nil {
			return // the miekg server drops what does not parse
		}
		w := &recorder{}
		if tcp {
			w.local = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
		}
		s.ServeDNS(w, req)
		if w.msg == nil {
			return // no reply is allowed
		}
		if !w.msg.Response || w.msg.Id != req.Id {
			t.Fatalf("reply is not a response to the request: %v", w.msg)
		}
		if len(req.Question) == 1 && (len(w.msg.Question) != 1 || w.msg.Question[0] != req.Question[0]) {
			t.Fatalf("reply question %v, want %v", w.msg.Question, req.Question)
		}
		if !tcp && w.msg.Len() > 512 && req.IsEdns0() == nil {
			t.Fatalf("UDP reply of %d bytes to a client without EDNS0", w.msg.Len())
		}
	})
}
