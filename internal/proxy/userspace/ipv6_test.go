package userspace

import (
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"

	"kubesvc/internal/proxy"
)

// The IPv6 half of proxier_test.go's cases, on a dual-stack world (newDualWorld): pods
// fd00:10:244::11.., node fd00:10:244::1 (pod side) and 2001:db8:1::1 (LAN), LAN client
// 2001:db8:1::2, Services fd00:10:96::/112, externalIPs/LB IPs 2001:db8:2::/64. The proxy
// dials IPv6 endpoints from the node, so endpoints see nodePodIP6 (the userspace mode keeps no
// client address, see README.md).

// bracket is ip:port with IPv6 brackets.
func bracket(ip string, port int) string {
	return netip.AddrPortFrom(netip.MustParseAddr(ip), uint16(port)).String()
}

// web6 is web for IPv6: a single-stack IPv6 Service with a NodePort, an externalIP and an LB IP.
func web6(eps ...proxy.Endpoint) svc {
	return svc{name: "web", clusterIP6: "fd00:10:96::10", port: 80, nodePort: 30080,
		externalIPs: []string{"2001:db8:2::100"}, lbIPs: []string{"2001:db8:2::200"}, endpoints: eps}
}

// TestProxier_IPv6Destinations is TestProxier_Destinations for a single-stack IPv6 Service on
// a dual-stack node (PX-02): from the node, a pod or the LAN client to the IPv6 ClusterIP, the
// NodePort on both IPv6 node addresses, the externalIP and the LB IP (§5.2), every endpoint
// answers (PX-E-05); the IPv6-only Service's NodePort is not served on IPv4 node addresses.
func TestProxier_IPv6Destinations(t *testing.T) {
	w := newDualWorld(t)
	var eps []proxy.Endpoint
	for _, ip := range pods6[:3] {
		w.endpoint(w.podNS, ip, 8080, corev1.ProtocolTCP)
		eps = append(eps, ep(ip, 8080, true))
	}
	w.sync(snapshot6(web6(eps...)), true)
	cases := []struct{ name, ns, from, target string }{
		{name: "node to IPv6 ClusterIP (§5.2, PX-E-05)", target: "[fd00:10:96::10]:80"},
		{name: "pod to IPv6 ClusterIP (§5.2)", ns: "pod", from: pods6[4], target: "[fd00:10:96::10]:80"},
		{name: "LAN client to NodePort on the node's IPv6 LAN address (§5.2)", ns: "client", target: bracket(nodeLANIP6, 30080)},
		{name: "pod to NodePort on the node's IPv6 pod-network address (§5.2)", ns: "pod", from: pods6[4], target: bracket(nodePodIP6, 30080)},
		{name: "LAN client to IPv6 externalIP (§5.2)", ns: "client", target: "[2001:db8:2::100]:80"},
		{name: "LAN client to IPv6 LoadBalancer IP (§5.2, PX-03)", ns: "client", target: "[2001:db8:2::200]:80"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ns := map[string]string{"": "", "pod": w.podNS, "client": w.clientNS}[tc.ns]
			got := map[string]int{}
			for range 40 { // 3·(2/3)^40 < 1e-6 that an endpoint gets none
				h, c := connect(t, ns, tc.from, tc.target)
				c.Close()
				got[h.endpoint]++
				if h.peer != nodePodIP6 {
					t.Fatalf("endpoint saw source %s, want the node's %s", h.peer, nodePodIP6)
				}
			}
			for _, e := range eps {
				if k := netip.AddrPortFrom(e.IP, 8080).String(); got[k] == 0 {
					t.Errorf("endpoint %s got no connection of 40 (PX-E-05): %v", k, got)
				}
			}
		})
	}
	t.Run("PX-02 IPv6-only NodePort is not served on the node's IPv4 addresses", func(t *testing.T) {
		requireRefused(t, w.clientNS, nodeLANIP+":30080")
	})
	t.Run("NodePort is not served on ::1 (§5.2)", func(t *testing.T) {
		requireRefused(t, "", "[::1]:30080")
	})
	t.Run("IPv6 ClusterIP on an undefined port is refused (§5.2)", func(t *testing.T) {
		requireRefused(t, "", "[fd00:10:96::10]:81")
	})
}

// TestProxier_IPv6NoEndpointsRefused: an IPv6 Service port without endpoints is refused at
// once on its ClusterIP, NodePort and externalIP (PX-T-01), TCP and UDP (ICMPv6 port
// unreachable), and answers once a Sync gives it an endpoint.
func TestProxier_IPv6NoEndpointsRefused(t *testing.T) {
	w := newDualWorld(t)
	w.endpoint(w.podNS, pods6[0], 8080, corev1.ProtocolTCP)
	dns := svc{name: "dns", proto: corev1.ProtocolUDP, clusterIP6: "fd00:10:96::53", port: 53}
	w.sync(snapshot6(web6(), dns), true)
	for _, target := range []string{"[fd00:10:96::10]:80", bracket(nodeLANIP6, 30080), "[2001:db8:2::100]:80"} {
		requireRefused(t, "", target)
	}
	requireRefused(t, w.clientNS, bracket(nodeLANIP6, 30080))
	u := udpClient(t, w.podNS, "[fd00:10:96::53]:53")
	defer u.Close()
	_ = u.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := u.Write([]byte("q")); err != nil {
		t.Fatal(err)
	}
	if _, err := u.Read(make([]byte, 10)); !errors.Is(err, unix.ECONNREFUSED) {
		t.Fatalf("UDP read: %v, want connection refused (ICMPv6 port unreachable)", err)
	}

	w.sync(snapshot6(web6(ep(pods6[0], 8080, true)), dns), false, "web")
	h, c := connect(t, w.clientNS, "", bracket(nodeLANIP6, 30080))
	c.Close()
	if h.endpoint != bracket(pods6[0], 8080) {
		t.Fatalf("answered by %s", h.endpoint)
	}
}

// TestProxier_IPv6SessionAffinity: ClientIP affinity keys on the client's IPv6 address
// (PX-A-01/02): a pod's connections stick to one endpoint, across the ClusterIP and the
// NodePort of the same service port.
func TestProxier_IPv6SessionAffinity(t *testing.T) {
	w := newDualWorld(t)
	var eps []proxy.Endpoint
	for _, ip := range pods6[:3] {
		w.endpoint(w.podNS, ip, 8080, corev1.ProtocolTCP)
		eps = append(eps, ep(ip, 8080, false))
	}
	s := web6(eps...)
	s.affinity = time.Hour
	w.sync(snapshot6(s), true)
	hit := func(target string) string {
		h, c := connect(t, w.podNS, pods6[4], target)
		c.Close()
		return h.endpoint
	}
	sticky := hit("[fd00:10:96::10]:80")
	for i := range 20 {
		target := "[fd00:10:96::10]:80"
		if i%2 == 1 {
			target = bracket(nodePodIP6, 30080)
		}
		if got := hit(target); got != sticky {
			t.Fatalf("connection %d via %s went to %s, want sticky %s", i, target, got, sticky)
		}
	}
	// A second client address has a record of its own: its connections stick too.
	seen := map[string]int{}
	for range 30 {
		h, c := connect(t, w.podNS, pods6[5], "[fd00:10:96::10]:80")
		c.Close()
		seen[h.endpoint]++
	}
	if len(seen) != 1 {
		t.Fatalf("a second client's connections went to %v, want one sticky endpoint", seen)
	}
}

// TestProxier_IPv6ExternalTrafficPolicyLocal: IPv6 external traffic goes only to local
// endpoints (PX-T-03; the client address is not kept in this mode) and is dropped without one;
// the node itself short-circuits to all endpoints (PX-T-04).
func TestProxier_IPv6ExternalTrafficPolicyLocal(t *testing.T) {
	w := newDualWorld(t)
	w.endpoint(w.podNS, pods6[0], 8080, corev1.ProtocolTCP)
	w.endpoint(w.podNS, pods6[1], 8080, corev1.ProtocolTCP)
	s := web6(ep(pods6[0], 8080, true), ep(pods6[1], 8080, false))
	s.externalLocal = true
	w.sync(snapshot6(s), true)
	for _, target := range []string{bracket(nodeLANIP6, 30080), "[2001:db8:2::100]:80", "[2001:db8:2::200]:80"} {
		if got := hits(t, w.clientNS, target, 20); len(got) != 1 || got[bracket(pods6[0], 8080)] != 20 {
			t.Fatalf("LAN client to %s: %v, want only the local endpoint", target, got)
		}
	}
	s = web6(ep(pods6[1], 8080, false))
	s.externalLocal = true
	w.sync(snapshot6(s), false, "web")
	requireDropped(t, w.clientNS, bracket(nodeLANIP6, 30080))
	if got := hits(t, "", bracket(nodeLANIP6, 30080), 5); got[bracket(pods6[1], 8080)] != 5 {
		t.Fatalf("node to its own NodePort (short-circuit): %v", got)
	}
}

// TestProxier_IPv6Hairpin: a pod reaching its own IPv6 Service can be sent to itself
// (PX-M-03a); it sees the node's address.
func TestProxier_IPv6Hairpin(t *testing.T) {
	w := newDualWorld(t)
	w.endpoint(w.podNS, pods6[0], 8080, corev1.ProtocolTCP)
	w.sync(snapshot6(web6(ep(pods6[0], 8080, true))), true)
	h, c := connect(t, w.podNS, pods6[0], "[fd00:10:96::10]:80")
	c.Close()
	if h.endpoint != bracket(pods6[0], 8080) || h.peer != nodePodIP6 {
		t.Fatalf("hairpin: %+v", h)
	}
}

// TestProxier_IPv6UDP: IPv6 datagrams reach every endpoint; a LAN flow to the IPv6 NodePort
// moves to another endpoint on its next datagram when its endpoint leaves (the goal of
// PX-C-01, without conntrack).
func TestProxier_IPv6UDP(t *testing.T) {
	w := newDualWorld(t)
	var eps []proxy.Endpoint
	for _, ip := range pods6[:3] {
		w.endpoint(w.podNS, ip, 5353, corev1.ProtocolUDP)
		eps = append(eps, ep(ip, 5353, false))
	}
	s := svc{name: "dns", proto: corev1.ProtocolUDP, clusterIP6: "fd00:10:96::53", port: 53, nodePort: 30053, endpoints: eps}
	w.sync(snapshot6(s), true)
	seen := map[string]int{}
	for range 40 {
		c := udpClient(t, "", "[fd00:10:96::53]:53")
		seen[udpAskFrom(t, c, "q", nodePodIP6)]++
		c.Close()
	}
	if len(seen) != 3 {
		t.Fatalf("flows reached %v, want all 3 endpoints", seen)
	}
	c := udpClient(t, w.clientNS, bracket(nodeLANIP6, 30053))
	defer c.Close()
	first := udpAskFrom(t, c, "a", nodePodIP6)
	var rest []proxy.Endpoint
	for _, e := range eps {
		if netip.AddrPortFrom(e.IP, uint16(e.Port)).String() != first {
			rest = append(rest, e)
		}
	}
	s.endpoints = rest
	w.sync(snapshot6(s), false, "dns")
	if got := udpAskFrom(t, c, "b", nodePodIP6); got == first {
		t.Fatalf("flow still on %s after it left the Service", first)
	}
}

// TestProxier_DualStack: a dual-stack Service (clusterIPs of both families, endpoints of both
// EndpointSlices in one ServiceState) answers on both cluster IPs and on the NodePort of
// every node address, each family proxying to its own endpoints only (PX-02); an IPv6 cluster
// IP without IPv6 endpoints is refused although IPv4 endpoints exist (PX-02, PX-T-01).
func TestProxier_DualStack(t *testing.T) {
	w := newDualWorld(t)
	var eps []proxy.Endpoint
	for _, ip := range []string{pods[0], pods[1], pods6[0], pods6[1]} {
		w.endpoint(w.podNS, ip, 8080, corev1.ProtocolTCP)
		eps = append(eps, ep(ip, 8080, true))
	}
	both := svc{name: "both", clusterIP: "10.96.0.40", clusterIP6: "fd00:10:96::40", port: 80, nodePort: 30040, endpoints: eps}
	onlyV4 := svc{name: "onlyv4", clusterIP: "10.96.0.41", clusterIP6: "fd00:10:96::41", port: 80, nodePort: 30041, endpoints: eps[:1]}
	w.sync(snapshot6(both, onlyV4), true)
	families := []struct {
		name, peer string
		targets    []string
		eps        []string
	}{
		{name: "IPv4", peer: nodePodIP, targets: []string{"10.96.0.40:80", nodeLANIP + ":30040", nodePodIP + ":30040"},
			eps: []string{bracket(pods[0], 8080), bracket(pods[1], 8080)}},
		{name: "IPv6", peer: nodePodIP6, targets: []string{"[fd00:10:96::40]:80", bracket(nodeLANIP6, 30040), bracket(nodePodIP6, 30040)},
			eps: []string{bracket(pods6[0], 8080), bracket(pods6[1], 8080)}},
	}
	for _, fam := range families {
		for _, target := range fam.targets {
			t.Run("PX-02 "+fam.name+" "+target, func(t *testing.T) {
				got := map[string]int{}
				for range 30 {
					h, c := connect(t, w.clientNS, "", target)
					c.Close()
					if h.peer != fam.peer {
						t.Fatalf("endpoint %s saw %s, want %s", h.endpoint, h.peer, fam.peer)
					}
					got[h.endpoint]++
				}
				if len(got) != 2 || got[fam.eps[0]] == 0 || got[fam.eps[1]] == 0 {
					t.Fatalf("reached %v, want both %s endpoints %v", got, fam.name, fam.eps)
				}
			})
		}
	}
	t.Run("PX-02 PX-T-01 IPv6 cluster IP and NodePort without IPv6 endpoints are refused", func(t *testing.T) {
		if got := hits(t, w.clientNS, "10.96.0.41:80", 3); got[bracket(pods[0], 8080)] != 3 {
			t.Fatalf("IPv4 side: %v", got)
		}
		requireRefused(t, w.clientNS, "[fd00:10:96::41]:80")
		requireRefused(t, w.clientNS, bracket(nodeLANIP6, 30041))
	})
}

// TestProxier_DualStackCleanup: Cleanup from a fresh Proxier (`kubesvc agent --cleanup`)
// removes the VIP device with its IPv4 and IPv6 addresses; neither cluster IP is local any more.
func TestProxier_DualStackCleanup(t *testing.T) {
	w := newDualWorld(t)
	w.endpoint(w.podNS, pods[0], 8080, corev1.ProtocolTCP)
	w.endpoint(w.podNS, pods6[0], 8080, corev1.ProtocolTCP)
	w.sync(snapshot6(svc{name: "both", clusterIP: "10.96.0.50", clusterIP6: "fd00:10:96::50", port: 80,
		endpoints: []proxy.Endpoint{ep(pods[0], 8080, true), ep(pods6[0], 8080, true)}}), true)
	if got := deviceAddrs(t); len(got) != 2 {
		t.Fatalf("device addresses %v, want the two cluster IPs", got)
	}
	for _, target := range []string{"10.96.0.50:80", "[fd00:10:96::50]:80"} {
		_, c := connect(t, "", "", target)
		c.Close()
	}
	if err := w.p.Close(); err != nil {
		t.Fatal(err)
	}
	w.p = w.newProxier()
	if err := w.p.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if _, err := netlink.LinkByName(testDevice); err == nil {
		t.Fatal("Cleanup left the VIP device")
	}
	for _, ip := range []string{"10.96.0.50", "fd00:10:96::50"} {
		routes, err := netlink.RouteGet(net.ParseIP(ip))
		if err == nil && len(routes) > 0 && routes[0].Type == unix.RTN_LOCAL {
			t.Fatalf("%s is still a local address after Cleanup", ip)
		}
	}
}

// TestProxier_IPv6VIPNotOnLink: unlike an IPv4 VIP, which every node answers ARP for on every
// interface (README.md, "ARP for VIPs"), an IPv6 VIP on the device gets no neighbour
// advertisement on the LAN: the kernel answers solicitations only for addresses of the
// receiving interface (no proxy_ndp). An externalIP inside the LAN's IPv6 prefix is therefore
// unreachable on-link; it works when the LAN routes it to the node (2001:db8:2::/64 here).
func TestProxier_IPv6VIPNotOnLink(t *testing.T) {
	w := newDualWorld(t)
	w.endpoint(w.podNS, pods6[0], 8080, corev1.ProtocolTCP)
	s := web6(ep(pods6[0], 8080, true))
	s.externalIPs = []string{"2001:db8:1::100", "2001:db8:2::100"}
	w.sync(snapshot6(s), true)
	if got := hits(t, w.clientNS, "[2001:db8:2::100]:80", 1); got[bracket(pods6[0], 8080)] != 1 {
		t.Fatalf("routed externalIP: %v", got)
	}
	c, err := dial(t, w.clientNS, "", "[2001:db8:1::100]:80")
	if err == nil {
		c.Close()
		t.Fatal("an IPv6 VIP on the LAN prefix answered on-link: the kernel answered NDP for it")
	}
	if !errors.Is(err, unix.EHOSTUNREACH) {
		t.Fatalf("on-link IPv6 VIP: %v, want no route to host (neighbour discovery failed)", err)
	}
}
