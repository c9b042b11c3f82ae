package dns

import (
	"net"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkServeDNS measures the handler alone (no sockets, metrics on) for a ClusterIP
// name, a headless name and a NXDOMAIN, with the zone cache (every question after the first
// is a kept reply) and without it (every reply computed).
func BenchmarkServeDNS(b *testing.B) {
	for _, mode := range []struct {
		name string
		size int
	}{{"zonecache", 0}, {"computed", -1}} {
		s := newTestServer(b, Config{CacheSize: mode.size, Metrics: prometheus.NewRegistry()}, nil, fixture()...)
		for _, c := range []struct {
			name  string
			qname string
		}{
			{"clusterip", "kubia.default.svc.cluster.local."},
			{"headless", "headless.default.svc.cluster.local."},
			{"nxdomain", "nosuch.default.svc.cluster.local."},
		} {
			b.Run(mode.name+"/"+c.name, func(b *testing.B) {
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
}

// discard is a ResponseWriter that drops replies (packing what it gets as a message, as
// the miekg server's WriteMsg would).
type discard struct{ recorder }

func (*discard) WriteMsg(m *mdns.Msg) error  { _, err := m.Pack(); return err }
func (*discard) Write(b []byte) (int, error) { return len(b), nil }

// BenchmarkServer_UDP measures whole queries over UDP on loopback: a real server with
// metrics on (as in the agent), clients in parallel goroutines each waiting for its answer.
// Run it in a private network namespace (it opens sockets).
func BenchmarkServer_UDP(b *testing.B) {
	for _, mode := range []struct {
		name string
		size int
	}{{"zonecache", 0}, {"computed", -1}} {
		s := newTestServer(b, Config{CacheSize: mode.size, Metrics: prometheus.NewRegistry()}, nil, fixture()...)
		if err := s.listen(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(s.Close)
		b.Run(mode.name, func(b *testing.B) { benchUDP(b, s.Addrs()[0]) })
	}
}

func benchUDP(b *testing.B, addr string) {
	for _, c := range []struct {
		name  string
		qname string
		qtype uint16
	}{
		{"clusterip", "kubia.default.svc.cluster.local.", mdns.TypeA},
		{"headless", "headless.default.svc.cluster.local.", mdns.TypeA},
		{"srv", "_http._tcp.kubia.default.svc.cluster.local.", mdns.TypeSRV},
	} {
		b.Run(c.name, func(b *testing.B) {
			req := new(mdns.Msg)
			req.SetQuestion(c.qname, c.qtype)
			wire, err := req.Pack()
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				conn, err := net.Dial("udp", addr)
				if err != nil {
					b.Error(err)
					return
				}
				defer conn.Close()
				buf := make([]byte, 1232)
				for pb.Next() {
					if _, err := conn.Write(wire); err != nil {
						b.Error(err)
						return
					}
					_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
					n, err := conn.Read(buf)
					if err != nil {
						b.Error(err)
						return
					}
					if n < 12 || buf[3]&0x0f != 0 {
						b.Errorf("reply of %d bytes, rcode %d", n, buf[3]&0x0f)
						return
					}
				}
			})
		})
	}
}

// BenchmarkQueryPath measures the user-space work of one UDP query without the socket calls,
// for a ClusterIP A question asked again and again: "readloop" is what the UDP read loop does
// for a kept reply (parse the raw packet, look it up, copy it, metrics); "miekg-zonecache" and
// "miekg-computed" are what the miekg path costs (unpack, ServeDNS, pack or copy), with and
// without the zone cache. The miekg path's goroutine per packet is not included.
func BenchmarkQueryPath(b *testing.B) {
	req := new(mdns.Msg)
	req.SetQuestion("kubia.default.svc.cluster.local.", mdns.TypeA)
	pkt, err := req.Pack()
	if err != nil {
		b.Fatal(err)
	}
	cached := newTestServer(b, Config{Metrics: prometheus.NewRegistry()}, nil, fixture()...)
	computed := newTestServer(b, Config{CacheSize: -1, Metrics: prometheus.NewRegistry()}, nil, fixture()...)
	cached.ServeDNS(&discard{}, req) // keep the reply
	b.Run("readloop", func(b *testing.B) {
		r := cached.decorateUDP(nil).(*fastReader)
		b.ReportAllocs()
		for b.Loop() {
			start := time.Now()
			var k zoneKey
			var ok bool
			r.name, k, ok = rawZoneKey(pkt, r.name[:0])
			if !ok {
				b.Fatal("not a plain query")
			}
			e, ok := r.s.zc.get(k, r.s.st.generation())
			if !ok {
				b.Fatal("no kept reply")
			}
			r.reply = append(r.reply[:0], e.wire...)
			r.reply[0], r.reply[1] = pkt[0], pkt[1]
			r.s.metrics.cacheHit(e.kind())
			r.s.metrics.record(k.qtype, false, len(pkt), e.rcode, "udp", false, "cache", len(e.wire), start)
		}
	})
	for _, c := range []struct {
		name string
		s    *Server
	}{{"miekg-zonecache", cached}, {"miekg-computed", computed}} {
		b.Run(c.name, func(b *testing.B) {
			w := &discard{}
			b.ReportAllocs()
			for b.Loop() {
				m := new(mdns.Msg)
				if err := m.Unpack(pkt); err != nil {
					b.Fatal(err)
				}
				c.s.ServeDNS(w, m)
			}
		})
	}
}
