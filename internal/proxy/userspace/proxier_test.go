package userspace

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"

	"kubesvc/internal/proxy"
	"kubesvc/internal/runtime/netns"
)

// web is a ClusterIP Service with a NodePort, an externalIP and an LB IP on port 80 → 8080.
func web(eps ...proxy.Endpoint) svc { return families[0].web(eps...) }

// TestProxier_Destinations is the behaviour table of the userspace mode for TCP, for each
// family (PX-02): from the node, a pod or a LAN client to each kind of service address (spec
// §5.2), which endpoints answer and the source address they see (always the node's: the
// userspace proxy cannot keep the client's, see README.md).
func TestProxier_Destinations(t *testing.T) {
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) { testDestinations(t, f) })
	}
}

func testDestinations(t *testing.T, f family) {
	w := f.world(t)
	for _, ip := range f.pods[:3] {
		w.endpoint(w.podNS, ip, 8080, corev1.ProtocolTCP)
	}
	all := []proxy.Endpoint{ep(f.pods[0], 8080, true), ep(f.pods[1], 8080, false), ep(f.pods[2], 8080, false)}
	w.sync(f.snapshot(f.web(all...)), true)

	everyone := []string{at(f.pods[0], 8080), at(f.pods[1], 8080), at(f.pods[2], 8080)}
	cases := []struct {
		name, ns, from, target string
	}{
		{name: "node to ClusterIP (§5.2, PX-E-05)", target: at(f.vip(10), 80)},
		{name: "pod to ClusterIP (§5.2)", ns: "pod", from: f.pods[4], target: at(f.vip(10), 80)},
		{name: "LAN client to NodePort on the LAN address (§5.2)", ns: "client", target: at(f.nodeLAN, 30080)},
		{name: "node to NodePort on the pod-network address (§5.2)", target: at(f.nodePod, 30080)},
		{name: "LAN client to externalIP (§5.2)", ns: "client", target: at(f.extIP, 80)},
		{name: "LAN client to LoadBalancer IP (§5.2, PX-03)", ns: "client", target: at(f.lbIP, 80)},
		{name: "pod to NodePort (§5.2)", ns: "pod", from: f.pods[4], target: at(f.nodePod, 30080)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ns := map[string]string{"": "", "pod": w.podNS, "client": w.clientNS}[tc.ns]
			got := map[string]int{}
			// 40 connections: the chance that one of 3 endpoints gets none is 3·(2/3)^40 < 1e-6.
			for range 40 {
				h, c := connect(t, ns, tc.from, tc.target)
				c.Close()
				got[h.endpoint]++
				if h.peer != f.nodePod {
					t.Fatalf("endpoint saw source %s, want %s", h.peer, f.nodePod)
				}
			}
			for _, e := range everyone {
				if got[e] == 0 {
					t.Errorf("endpoint %s got no connection of 40 (PX-E-05 random choice): %v", e, got)
				}
			}
		})
	}
	t.Run("NodePort is not served on loopback (§5.2)", func(t *testing.T) {
		requireRefused(t, "", at(f.loopback, 30080))
	})
	t.Run("ClusterIP on an undefined port is refused (§5.2)", func(t *testing.T) {
		requireRefused(t, "", at(f.vip(10), 81))
	})
}

// TestProxier_NoEndpointsRefused: a Service port without endpoints is rejected at once on
// every address (PX-T-01), TCP and UDP (ICMP or ICMPv6 port unreachable, which a connected
// socket reports as ECONNREFUSED), for each family (PX-02); it starts answering as soon as a
// Sync gives it one.
func TestProxier_NoEndpointsRefused(t *testing.T) {
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) { testNoEndpointsRefused(t, f) })
	}
}

func testNoEndpointsRefused(t *testing.T, f family) {
	w := f.world(t)
	w.endpoint(w.podNS, f.pods[0], 8080, corev1.ProtocolTCP)
	dns := svc{name: "dns", proto: corev1.ProtocolUDP, clusterIP: f.vip(53), port: 53}
	w.sync(f.snapshot(f.web(), dns), true)
	for _, target := range []string{at(f.vip(10), 80), at(f.nodeLAN, 30080), at(f.extIP, 80)} {
		requireRefused(t, "", target)
	}
	requireRefused(t, w.clientNS, at(f.nodeLAN, 30080))
	t.Run("UDP", func(t *testing.T) {
		c := udpClient(t, w.podNS, at(f.vip(53), 53))
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(ioTimeout))
		if _, err := c.Write([]byte("q")); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Read(make([]byte, 10)); !errors.Is(err, unix.ECONNREFUSED) {
			t.Fatalf("read: %v, want connection refused", err)
		}
	})

	w.sync(f.snapshot(f.web(ep(f.pods[0], 8080, true)), dns), false, "web")
	if h, c := connect(t, w.clientNS, "", at(f.nodeLAN, 30080)); h.endpoint != at(f.pods[0], 8080) {
		t.Errorf("answered by %s", h.endpoint)
	} else {
		c.Close()
	}
	// Only a not-ready endpoint left: no endpoints again.
	notReady := ep(f.pods[0], 8080, true)
	notReady.Ready, notReady.Serving = false, false
	w.sync(f.snapshot(f.web(notReady), dns), false, "web")
	requireRefused(t, "", at(f.vip(10), 80))
}

// TestProxier_NamedTargetPort: endpoints of one service port may listen on different ports
// (a named targetPort resolving differently per pod, spec §2.6); each is dialled on its own.
func TestProxier_NamedTargetPort(t *testing.T) {
	w := newWorld(t)
	w.endpoint(w.podNS, pods[0], 8080, corev1.ProtocolTCP)
	w.endpoint(w.podNS, pods[1], 9090, corev1.ProtocolTCP)
	w.sync(snapshot(web(ep(pods[0], 8080, false), ep(pods[1], 9090, false))), true)
	got := hits(t, "", "10.96.0.10:80", 40)
	if got[pods[0]+":8080"] == 0 || got[pods[1]+":9090"] == 0 || len(got) != 2 {
		t.Fatalf("answers %v, want both endpoints", got)
	}
}

// TestProxier_SessionAffinity: with ClientIP affinity every connection of a client goes to
// the same endpoint while the timeout has not passed since its last connection (PX-A-01/02),
// across the Service's addresses; after the timeout the choice is random again; an endpoint
// that went away is not stuck to (PX-A-04). For each family (PX-02).
func TestProxier_SessionAffinity(t *testing.T) {
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) { testSessionAffinity(t, f) })
	}
}

func testSessionAffinity(t *testing.T, f family) {
	w := f.world(t)
	var clock atomic.Int64 // fake clock: seconds
	clock.Store(1_000_000)
	w.p.now = func() time.Time { return time.Unix(clock.Load(), 0) }
	var eps []proxy.Endpoint
	for _, ip := range f.pods[:3] {
		w.endpoint(w.podNS, ip, 8080, corev1.ProtocolTCP)
		eps = append(eps, ep(ip, 8080, false))
	}
	s := f.web(eps...)
	s.affinity = 10 * time.Second
	w.sync(f.snapshot(s), true)
	vip := at(f.vip(10), 80)

	// A pod is the client: its source address is the same whatever Service address it uses.
	podHit := func(target string) string {
		h, c := connect(t, w.podNS, f.pods[4], target)
		c.Close()
		return h.endpoint
	}
	sticky := podHit(vip)
	for i := range 20 {
		clock.Add(9) // sliding window: each connection refreshes it
		target := vip
		if i%2 == 1 {
			target = at(f.nodePod, 30080) // one record per service port, whatever the address
		}
		if got := podHit(target); got != sticky {
			t.Fatalf("connection %d via %s went to %s, want sticky %s", i, target, got, sticky)
		}
	}
	// Expired before each connection: random choices again, so not all on one endpoint.
	seen := map[string]int{}
	for range 30 {
		clock.Add(11)
		for e := range hits(t, "", vip, 1) {
			seen[e]++
		}
	}
	if len(seen) < 2 {
		t.Fatalf("after expiry every connection still went to %v", seen)
	}
	// The sticky endpoint goes away: the client moves and sticks to another.
	for e := range hits(t, "", vip, 1) {
		sticky = e
	}
	var rest []proxy.Endpoint
	for _, e := range eps {
		if netip.AddrPortFrom(e.IP, uint16(e.Port)).String() != sticky {
			rest = append(rest, e)
		}
	}
	s.endpoints = rest
	w.sync(f.snapshot(s), false, "web")
	got := hits(t, "", vip, 10)
	if len(got) != 1 || got[sticky] != 0 {
		t.Fatalf("after %s went away: %v, want one other endpoint for all", sticky, got)
	}
}

// TestProxier_ExternalTrafficPolicyLocal: external traffic goes only to local endpoints
// (PX-T-03); with none it is dropped (held without data, not refused); traffic from the node
// or a pod to an external address short-circuits to all endpoints (PX-T-04). For each family
// (PX-02).
func TestProxier_ExternalTrafficPolicyLocal(t *testing.T) {
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) { testExternalTrafficPolicyLocal(t, f) })
	}
}

func testExternalTrafficPolicyLocal(t *testing.T, f family) {
	w := f.world(t)
	w.endpoint(w.podNS, f.pods[0], 8080, corev1.ProtocolTCP)
	w.endpoint(w.podNS, f.pods[1], 8080, corev1.ProtocolTCP)
	s := f.web(ep(f.pods[0], 8080, true), ep(f.pods[1], 8080, false))
	s.externalLocal = true
	w.sync(f.snapshot(s), true)
	for _, target := range []string{at(f.nodeLAN, 30080), at(f.extIP, 80), at(f.lbIP, 80)} {
		if got := hits(t, w.clientNS, target, 20); len(got) != 1 || got[at(f.pods[0], 8080)] != 20 {
			t.Fatalf("LAN client to %s: %v, want only the local endpoint", target, got)
		}
	}
	if got := hits(t, "", at(f.vip(10), 80), 40); len(got) != 2 {
		t.Fatalf("ClusterIP ignores externalTrafficPolicy: got %v", got)
	}

	s = f.web(ep(f.pods[1], 8080, false)) // no local endpoint
	s.externalLocal = true
	w.sync(f.snapshot(s), false, "web")
	requireDropped(t, w.clientNS, at(f.nodeLAN, 30080))
	// Short-circuit: the node itself and a pod still reach the remote endpoint.
	if got := hits(t, "", at(f.nodeLAN, 30080), 5); got[at(f.pods[1], 8080)] != 5 {
		t.Fatalf("node to NodePort: %v", got)
	}
	h, c := connect(t, w.podNS, f.pods[4], at(f.extIP, 80))
	c.Close()
	if h.endpoint != at(f.pods[1], 8080) {
		t.Fatalf("pod to externalIP: %s", h.endpoint)
	}
}

// TestProxier_LoadBalancerSourceRanges: traffic to an LB IP from outside the ranges is
// dropped; the ranges apply to LB IPs only, not to the NodePort (PX-F-01). For each family
// (PX-02: each uses the ranges of its family).
func TestProxier_LoadBalancerSourceRanges(t *testing.T) {
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) { testLoadBalancerSourceRanges(t, f) })
	}
}

func testLoadBalancerSourceRanges(t *testing.T, f family) {
	w := f.world(t)
	w.endpoint(w.podNS, f.pods[0], 8080, corev1.ProtocolTCP)
	s := f.web(ep(f.pods[0], 8080, true))
	s.sourceRanges = []string{f.clientRange} // the LAN client is inside
	w.sync(f.snapshot(s), true)
	if got := hits(t, w.clientNS, at(f.lbIP, 80), 3); got[at(f.pods[0], 8080)] != 3 {
		t.Fatalf("allowed client: %v", got)
	}
	s.sourceRanges = []string{f.otherRange}
	w.sync(f.snapshot(s), false, "web")
	requireDropped(t, w.clientNS, at(f.lbIP, 80))
	if got := hits(t, w.clientNS, at(f.nodeLAN, 30080), 3); got[at(f.pods[0], 8080)] != 3 {
		t.Fatalf("NodePort must ignore loadBalancerSourceRanges: %v", got)
	}
}

// requireDropped asserts that a connection to target is neither refused nor answered.
func requireDropped(t *testing.T, ns, target string) {
	t.Helper()
	c, err := dial(t, ns, "", target)
	if err != nil {
		t.Fatalf("dropped connection to %s must not be refused: %v", target, err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	if n, err := c.Read(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("dropped connection to %s read %d bytes, %v; want no data", target, n, err)
	}
}

// TestProxier_InternalTrafficPolicyLocal: ClusterIP traffic goes only to local endpoints; with
// none (but endpoints elsewhere) it is dropped, not refused (PX-T-02).
func TestProxier_InternalTrafficPolicyLocal(t *testing.T) {
	w := newWorld(t)
	w.endpoint(w.podNS, pods[0], 8080, corev1.ProtocolTCP)
	w.endpoint(w.podNS, pods[1], 8080, corev1.ProtocolTCP)
	s := svc{name: "itp", clusterIP: "10.96.0.11", port: 80, internalLocal: true,
		endpoints: []proxy.Endpoint{ep(pods[0], 8080, true), ep(pods[1], 8080, false)}}
	w.sync(snapshot(s), true)
	if got := hits(t, "", "10.96.0.11:80", 20); got[pods[0]+":8080"] != 20 {
		t.Fatalf("got %v, want only the local endpoint", got)
	}
	s.endpoints = s.endpoints[1:]
	w.sync(snapshot(s), false, "itp")
	c, err := dial(t, "", "", "10.96.0.11:80")
	if err != nil {
		t.Fatalf("dropped connection must not be refused: %v", err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := c.Read(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read: %v, want no data (dropped)", err)
	}
}

// TestProxier_TerminatingFallback: serving-terminating endpoints are used only while no
// endpoint is ready (PX-E-01).
func TestProxier_TerminatingFallback(t *testing.T) {
	w := newWorld(t)
	w.endpoint(w.podNS, pods[0], 8080, corev1.ProtocolTCP)
	w.endpoint(w.podNS, pods[1], 8080, corev1.ProtocolTCP)
	term := ep(pods[0], 8080, false)
	term.Ready, term.Terminating = false, true
	w.sync(snapshot(web(term, ep(pods[1], 8080, false))), true)
	if got := hits(t, "", "10.96.0.10:80", 20); got[pods[1]+":8080"] != 20 {
		t.Fatalf("with a ready endpoint: %v, want only it", got)
	}
	w.sync(snapshot(web(term)), false, "web")
	if got := hits(t, "", "10.96.0.10:80", 5); got[pods[0]+":8080"] != 5 {
		t.Fatalf("only terminating: %v, want the terminating endpoint", got)
	}
}

// TestProxier_Hairpin: a pod reaching its own Service can be sent to itself (PX-M-03a), for
// each family (PX-02).
func TestProxier_Hairpin(t *testing.T) {
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) {
			w := f.world(t)
			w.endpoint(w.podNS, f.pods[0], 8080, corev1.ProtocolTCP)
			w.sync(f.snapshot(f.web(ep(f.pods[0], 8080, true))), true)
			h, c := connect(t, w.podNS, f.pods[0], at(f.vip(10), 80))
			c.Close()
			if h.endpoint != at(f.pods[0], 8080) || h.peer != f.nodePod {
				t.Fatalf("hairpin: %+v", h)
			}
		})
	}
}

// TestProxier_DialFailureTriesAnotherEndpoint: an endpoint that refuses costs the client
// nothing: the proxy dials another one.
func TestProxier_DialFailureTriesAnotherEndpoint(t *testing.T) {
	w := newWorld(t)
	w.endpoint(w.podNS, pods[1], 8080, corev1.ProtocolTCP)
	w.sync(snapshot(web(ep(pods[0], 8080, false), ep(pods[1], 8080, false))), true) // nothing on pods[0]
	if got := hits(t, "", "10.96.0.10:80", 20); got[pods[1]+":8080"] != 20 {
		t.Fatalf("got %v", got)
	}
}

// TestProxier_HalfClose: a client's half-close reaches the endpoint as EOF while the other
// direction stays open.
func TestProxier_HalfClose(t *testing.T) {
	w := newWorld(t)
	w.endpoint(w.podNS, pods[0], 8080, corev1.ProtocolTCP)
	w.sync(snapshot(web(ep(pods[0], 8080, false))), true)
	_, c := connect(t, "", "", "10.96.0.10:80")
	defer c.Close()
	payload := strings.Repeat("x", 1<<20)
	go func() {
		_, _ = io.WriteString(c, payload)
		_ = c.(*net.TCPConn).CloseWrite()
	}()
	_ = c.SetReadDeadline(time.Now().Add(ioTimeout))
	b, err := io.ReadAll(c) // the echo server answers everything, then closes on our EOF
	if err != nil || string(b) != payload {
		t.Fatalf("echo after half-close: %d bytes, %v", len(b), err)
	}
}

// TestProxier_IncrementalSync: a Sync that touches one service port leaves the listeners and
// established connections of the others alone, and an endpoint leaving a Service does not cut
// established TCP connections to it (PX-C-01: TCP flows are never flushed).
func TestProxier_IncrementalSync(t *testing.T) {
	w := newWorld(t)
	w.endpoint(w.podNS, pods[0], 8080, corev1.ProtocolTCP)
	w.endpoint(w.podNS, pods[1], 8080, corev1.ProtocolTCP)
	a := web(ep(pods[0], 8080, false))
	b := svc{name: "other", clusterIP: "10.96.0.20", port: 80, endpoints: []proxy.Endpoint{ep(pods[1], 8080, false)}}
	w.sync(snapshot(a, b), true)
	_, ca := connect(t, "", "", "10.96.0.10:80")
	defer ca.Close()
	lnBefore := w.p.listeners[listenerKey{netip.MustParseAddrPort("10.96.0.10:80"), corev1.ProtocolTCP}]

	b.endpoints = []proxy.Endpoint{ep(pods[0], 8080, false)}
	w.sync(snapshot(a, b), false, "other")
	if w.p.listeners[listenerKey{netip.MustParseAddrPort("10.96.0.10:80"), corev1.ProtocolTCP}] != lnBefore {
		t.Fatal("an untouched service port's listener was replaced")
	}
	if got := hits(t, "", "10.96.0.20:80", 3); got[pods[0]+":8080"] != 3 {
		t.Fatalf("changed service: %v", got)
	}
	echo(t, ca, "still there")

	// Remove web's endpoint and then the whole Service: the established connection lives on
	// (its VIP stays on the device until the connection ends).
	a.endpoints = nil
	w.sync(snapshot(a, b), false, "web")
	requireRefused(t, "", "10.96.0.10:80")
	w.sync(snapshot(b), false, "web")
	echo(t, ca, "after removal")
	vip := netip.MustParseAddr("10.96.0.10")
	if !w.p.dev.addrs[vip] {
		t.Fatal("VIP removed under an established connection")
	}
	ca.Close()
	deadline := time.Now().Add(ioTimeout)
	for w.p.dev.addrs[vip] {
		if time.Now().After(deadline) {
			t.Fatal("VIP of a deleted Service still on the device after its last connection ended")
		}
		time.Sleep(20 * time.Millisecond)
		w.sync(snapshot(b), false) // the runner's periodic sync
	}
}

// TestProxier_SyncUnderTraffic: Syncs that swap a busy Service's endpoints (incremental and
// full) while clients connect never fail a connection: listeners stay, only the endpoint list
// pointer changes under the data path (run with -race).
func TestProxier_SyncUnderTraffic(t *testing.T) {
	w := newWorld(t)
	var eps []proxy.Endpoint
	for _, ip := range pods[:3] {
		w.endpoint(w.podNS, ip, 8080, corev1.ProtocolTCP)
		eps = append(eps, ep(ip, 8080, false))
	}
	w.sync(snapshot(web(eps...)), true)
	stop := make(chan struct{})
	errc := make(chan error, 4)
	var conns atomic.Int64
	for range 4 {
		go func() {
			for {
				select {
				case <-stop:
					errc <- nil
					return
				default:
				}
				c, err := dial(t, "", "", "10.96.0.10:80")
				if err == nil {
					_, err = readHello(c)
					c.Close()
				}
				if err != nil {
					errc <- err
					return
				}
				conns.Add(1)
			}
		}()
	}
	subsets := [][]proxy.Endpoint{{eps[0], eps[1]}, {eps[1], eps[2]}, {eps[0], eps[2]}, eps}
	start := time.Now()
	syncs := 0
	for ; syncs < 40 || conns.Load() < 200; syncs++ {
		if time.Since(start) > 3*ioTimeout {
			break
		}
		w.sync(snapshot(web(subsets[syncs%len(subsets)]...)), syncs%10 == 9, "web")
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	for range 4 {
		if err := <-errc; err != nil {
			t.Fatalf("a connection failed during syncs: %v", err)
		}
	}
	if conns.Load() < 50 {
		t.Fatalf("only %d connections during %d syncs", conns.Load(), syncs)
	}
	t.Logf("%d connections across %d syncs", conns.Load(), syncs)
}

func echo(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != msg {
		t.Fatalf("echo %q: %q, %v", msg, buf, err)
	}
}

// TestProxier_UDP: datagrams reach every endpoint over many client flows; replies come from
// the service address; a flow whose endpoint leaves the Service moves to another endpoint
// on its next datagram (within 1 s of the Sync; the goal of PX-C-01). For each family (PX-02).
func TestProxier_UDP(t *testing.T) {
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) { testUDP(t, f) })
	}
}

func testUDP(t *testing.T, f family) {
	w := f.world(t)
	var eps []proxy.Endpoint
	for _, ip := range f.pods[:3] {
		w.endpoint(w.podNS, ip, 5353, corev1.ProtocolUDP)
		eps = append(eps, ep(ip, 5353, false))
	}
	s := svc{name: "dns", proto: corev1.ProtocolUDP, clusterIP: f.vip(53), port: 53, nodePort: 30053, endpoints: eps}
	w.sync(f.snapshot(s), true)

	seen := map[string]int{}
	for range 40 { // 40 flows (new client ports)
		c := udpClient(t, "", at(f.vip(53), 53))
		seen[udpAskFrom(t, c, "q", f.nodePod)]++
		c.Close()
	}
	if len(seen) != 3 {
		t.Fatalf("flows reached %v, want all 3 endpoints", seen)
	}
	// One flow, from the LAN to the NodePort.
	c := udpClient(t, w.clientNS, at(f.nodeLAN, 30053))
	defer c.Close()
	first := udpAskFrom(t, c, "a", f.nodePod)
	for range 5 {
		if got := udpAskFrom(t, c, "b", f.nodePod); got != first {
			t.Fatalf("flow moved from %s to %s without cause", first, got)
		}
	}
	var rest []proxy.Endpoint
	for _, e := range eps {
		if netip.AddrPortFrom(e.IP, uint16(e.Port)).String() != first {
			rest = append(rest, e)
		}
	}
	s.endpoints = rest
	w.sync(f.snapshot(s), false, "dns")
	synced := time.Now()
	if got := udpAskFrom(t, c, "c", f.nodePod); got == first {
		t.Fatalf("flow still on %s after it left the Service", first)
	}
	if d := time.Since(synced); d > time.Second {
		t.Fatalf("flow moved after %v, want within 1 s", d)
	}
}

// TestProxier_UDPSessionIdle: a UDP session ends (socket and goroutine) after UDPIdleTimeout
// without datagrams; the flow's next datagram starts a new one.
func TestProxier_UDPSessionIdle(t *testing.T) {
	w := newWorld(t)
	w.p.cfg.UDPIdleTimeout = 2 * time.Second
	w.endpoint(w.podNS, pods[0], 5353, corev1.ProtocolUDP)
	w.sync(snapshot(svc{name: "dns", proto: corev1.ProtocolUDP, clusterIP: "10.96.0.53", port: 53, endpoints: []proxy.Endpoint{ep(pods[0], 5353, false)}}), true)
	l := w.p.listeners[listenerKey{netip.MustParseAddrPort("10.96.0.53:53"), corev1.ProtocolUDP}].(*udpListener)
	sessions := func() int {
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.sessions)
	}
	c := udpClient(t, "", "10.96.0.53:53")
	defer c.Close()
	udpAsk(t, c, "a")
	if n := sessions(); n != 1 {
		t.Fatalf("%d sessions, want 1", n)
	}
	deadline := time.Now().Add(ioTimeout)
	for sessions() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("idle UDP session never ended")
		}
		time.Sleep(50 * time.Millisecond)
	}
	udpAsk(t, c, "b")
}

// TestProxier_UDPSessionLimit: beyond MaxUDPSessions, datagrams of new flows are dropped
// while existing flows keep working.
func TestProxier_UDPSessionLimit(t *testing.T) {
	w := newWorld(t)
	w.p.cfg.MaxUDPSessions = 1
	w.endpoint(w.podNS, pods[0], 5353, corev1.ProtocolUDP)
	w.sync(snapshot(svc{name: "dns", proto: corev1.ProtocolUDP, clusterIP: "10.96.0.53", port: 53, endpoints: []proxy.Endpoint{ep(pods[0], 5353, false)}}), true)
	first := udpClient(t, "", "10.96.0.53:53")
	defer first.Close()
	udpAsk(t, first, "a")
	second := udpClient(t, "", "10.96.0.53:53")
	defer second.Close()
	_ = second.SetDeadline(time.Now().Add(time.Second))
	if _, err := second.Write([]byte("b")); err != nil {
		t.Fatal(err)
	}
	if n, err := second.Read(make([]byte, 100)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a flow beyond the limit got %d bytes, %v; want no answer", n, err)
	}
	udpAsk(t, first, "c")
}

// udpClient is a connected UDP socket in ns ("" = the node).
func udpClient(t *testing.T, ns, target string) *net.UDPConn {
	t.Helper()
	var c net.Conn
	var err error
	if ns == "" {
		c, err = net.Dial("udp", target)
	} else {
		err = netns.Do(ns, func() (err error) { c, err = net.Dial("udp", target); return err })
	}
	if err != nil {
		t.Fatal(err)
	}
	return c.(*net.UDPConn)
}

// udpAsk sends msg and returns the endpoint that answered, checking the reply's content.
func udpAsk(t *testing.T, c *net.UDPConn, msg string) string {
	t.Helper()
	return udpAskFrom(t, c, msg, nodePodIP)
}

// udpAskFrom is udpAsk where the endpoint must have seen the datagram from peer.
func udpAskFrom(t *testing.T, c *net.UDPConn, msg, peer string) string {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 200)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("udp answer to %q: %v", msg, err)
	}
	f := strings.Fields(string(buf[:n]))
	if len(f) != 3 || f[2] != msg || f[1] != peer {
		t.Fatalf("bad udp answer %q", buf[:n])
	}
	return f[0]
}

// TestProxier_IPv6: a dual-stack Service's IPv6 ClusterIP is served like the IPv4 one (PX-02).
func TestProxier_IPv6(t *testing.T) {
	w := newWorld(t)
	w.endpoint("", "::1", 8080, corev1.ProtocolTCP)
	s := svc{name: "v6", clusterIP: "fd00:96::10", port: 80,
		endpoints: []proxy.Endpoint{{IP: netip.MustParseAddr("::1"), Port: 8080, Ready: true, Serving: true}}}
	w.sync(snapshot(s), true)
	h, c := connect(t, "", "", "[fd00:96::10]:80")
	c.Close()
	if h.endpoint != "[::1]:8080" {
		t.Fatalf("answered by %s", h.endpoint)
	}
}

// TestProxier_CloseAndCleanup: Close ends every goroutine and connection but keeps the VIP
// device (an agent restart keeps the addresses; a new Proxier adopts them and removes the
// stale ones on its first full Sync); Cleanup deletes the device.
func TestProxier_CloseAndCleanup(t *testing.T) {
	w := newWorld(t)
	w.endpoint(w.podNS, pods[0], 8080, corev1.ProtocolTCP)
	w.endpoint(w.podNS, pods[0], 5353, corev1.ProtocolUDP)
	base := runtime.NumGoroutine()
	tcp := web(ep(pods[0], 8080, false))
	udp := svc{name: "dns", proto: corev1.ProtocolUDP, clusterIP: "10.96.0.53", port: 53, endpoints: []proxy.Endpoint{ep(pods[0], 5353, false)}}
	w.sync(snapshot(tcp, udp), true)
	_, c := connect(t, "", "", "10.96.0.10:80")
	defer c.Close()
	u := udpClient(t, "", "10.96.0.53:53")
	defer u.Close()
	udpAsk(t, u, "x")
	if err := w.p.Close(); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(ioTimeout))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("proxied connection survived Close")
	}
	waitGoroutines(t, base)
	if _, err := netlink.LinkByName(testDevice); err != nil {
		t.Fatalf("Close removed the VIP device: %v", err)
	}

	// Restart: a new Proxier adopts the device; web is gone from its first snapshot.
	w.p = w.newProxier()
	w.sync(snapshot(udp), true)
	if got := deviceAddrs(t); len(got) != 1 || got[0] != "10.96.0.53" {
		t.Fatalf("device addresses after restart: %v, want only 10.96.0.53", got)
	}
	if err := w.p.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if _, err := netlink.LinkByName(testDevice); err == nil {
		t.Fatal("Cleanup left the VIP device")
	}
	if err := w.p.Cleanup(); err != nil {
		t.Fatalf("second Cleanup: %v", err)
	}
	waitGoroutines(t, base)
}

func deviceAddrs(t *testing.T) []string {
	t.Helper()
	l, err := netlink.LinkByName(testDevice)
	if err != nil {
		t.Fatal(err)
	}
	list, err := netlink.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range list {
		if !a.IP.IsLinkLocalUnicast() {
			out = append(out, a.IP.String())
		}
	}
	return out
}

// waitGoroutines waits until at most n goroutines run (the race detector and the runtime
// need a moment to retire exited ones).
func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(ioTimeout)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, want ≤ %d:\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
