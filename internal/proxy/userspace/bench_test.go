package userspace

import (
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"kubesvc/internal/proxy"
	"kubesvc/internal/runtime/netns/netnstest"
)

// Benchmarks of the data path, through the proxy and direct, on loopback in the test's
// private network namespace (run under `unshare --net`, like the tests):
//
//	go test -c -o /tmp/us.test ./internal/proxy/userspace
//	unshare --net -- bash -c 'ip link set lo up; /tmp/us.test -test.run XXX -test.bench . -test.benchtime 2s'
//
// bench/userspace compares the same paths against HAProxy.

// benchWorld starts a Proxier with two ClusterIP service ports on 10.96.0.100, each with
// one endpoint on 127.0.0.1: port 80 → an echo server, port 81 → a server that answers one
// byte and closes first (so TIME_WAIT stays on server ports and connection benchmarks do not
// run out of ephemeral ports). It returns the proxied and direct address of each.
func benchWorld(b *testing.B) (echoVia, echoDirect, crrVia, crrDirect string) {
	b.Helper()
	netnstest.RequireIsolated(b)
	serve := func(handle func(net.Conn)) netip.AddrPort {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go handle(c)
			}
		}()
		return ln.Addr().(*net.TCPAddr).AddrPort()
	}
	echo := serve(func(c net.Conn) { defer c.Close(); _, _ = io.Copy(c, c) })
	crr := serve(func(c net.Conn) {
		defer c.Close()
		buf := make([]byte, 1)
		if _, err := io.ReadFull(c, buf); err == nil {
			_, _ = c.Write(buf)
		}
	})
	p, err := newProxier(Config{Device: testDevice})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Cleanup() })
	snap := &proxy.Snapshot{Services: map[proxy.ServicePortName]*proxy.ServiceState{}}
	for name, s := range map[string]struct {
		port int32
		ep   netip.AddrPort
	}{"echo": {80, echo}, "crr": {81, crr}} {
		st := &proxy.ServiceState{ServicePort: proxy.ServicePort{
			Name: svc{name: name}.portName(), ClusterIPs: []netip.Addr{netip.MustParseAddr("10.96.0.100")}, Port: s.port, Protocol: corev1.ProtocolTCP,
		}, Endpoints: []proxy.Endpoint{{IP: s.ep.Addr(), Port: int32(s.ep.Port()), Ready: true, Serving: true}}}
		proxy.Categorize(st)
		snap.Services[st.Name] = st
	}
	if err := p.Sync(b.Context(), snap, nil, true); err != nil {
		b.Fatal(err)
	}
	return "10.96.0.100:80", echo.String(), "10.96.0.100:81", crr.String()
}

// BenchmarkStream: one connection, 64 KiB writes, echoed back (so bytes cross the proxy
// twice per direction pair); MB/s counts bytes sent.
func BenchmarkStream(b *testing.B) {
	via, direct, _, _ := benchWorld(b)
	for _, tc := range []struct{ name, addr string }{{"direct", direct}, {"proxy", via}} {
		b.Run(tc.name, func(b *testing.B) {
			c, err := net.Dial("tcp", tc.addr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			done := make(chan error, 1)
			go func() {
				_, err := io.CopyN(io.Discard, c, int64(b.N)*64<<10)
				done <- err
			}()
			buf := make([]byte, 64<<10)
			b.SetBytes(int64(len(buf)))
			b.ResetTimer()
			for range b.N {
				if _, err := c.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkConnect: connect, 1-byte request and response, the server closes, then the client
// (TCP_CRR), 4 × GOMAXPROCS clients; reports connections per second.
func BenchmarkConnect(b *testing.B) {
	_, _, via, direct := benchWorld(b)
	for _, tc := range []struct{ name, addr string }{{"direct", direct}, {"proxy", via}} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetParallelism(4) // 4 × GOMAXPROCS clients
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				buf := make([]byte, 1)
				for pb.Next() {
					c, err := net.Dial("tcp", tc.addr)
					if err != nil {
						b.Error(err)
						return
					}
					if _, err := c.Write(buf); err != nil {
						b.Error(err)
					}
					if _, err := io.ReadFull(c, buf); err != nil {
						b.Error(err)
					}
					_, _ = io.Copy(io.Discard, c) // until the server's FIN
					c.Close()
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "conns/s")
		})
	}
}

// BenchmarkRequestResponse: 1-byte request and response on an open connection (TCP_RR).
func BenchmarkRequestResponse(b *testing.B) {
	via, direct, _, _ := benchWorld(b)
	for _, tc := range []struct{ name, addr string }{{"direct", direct}, {"proxy", via}} {
		b.Run(tc.name, func(b *testing.B) {
			c, err := net.Dial("tcp", tc.addr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			buf := make([]byte, 1)
			b.ResetTimer()
			for range b.N {
				if _, err := c.Write(buf); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
