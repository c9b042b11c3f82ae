package dns

import (
	"testing"

	mdns "github.com/miekg/dns"
)

// BenchmarkServeDNS measures the handler alone (no sockets) for a ClusterIP name, a
// headless name and a NXDOMAIN.
func BenchmarkServeDNS(b *testing.B) {
	s := newTestServer(b, Config{}, nil, fixture()...)
	for _, c := range []struct {
		name  string
		qname string
	}{
		{"clusterip", "kubia.default.svc.cluster.local."},
		{"headless", "headless.default.svc.cluster.local."},
		{"nxdomain", "nosuch.default.svc.cluster.local."},
	} {
		b.Run(c.name, func(b *testing.B) {
			req := new(mdns.Msg)
			req.SetQuestion(c.qname, mdns.TypeA)
			w := &discard{}
			b.ReportAllocs()
			for b.Loop() {
				s.ServeDNS(w, req)
			}
		})
	}
}

type discard struct{ recorder }

func (*discard) WriteMsg(m *mdns.Msg) error { _, err := m.Pack(); return err }
