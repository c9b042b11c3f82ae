package userspace

import (
	"errors"
	"net"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"

	"kubesvc/internal/proxy"
)

// Dual-stack cases. The single-family cases of proxier_test.go run for IPv4 and for IPv6
// (families); these need both at once, on a dual-stack world (newDualWorld): pods
// 198.51.100.11.. and fd00:10:244::11.., node 198.51.100.1/fd00:10:244::1 (pod side) and
// 203.0.113.1/2001:db8:1::1 (LAN), LAN client 203.0.113.2 and 2001:db8:1::2.

// TestProxier_DualStack: a dual-stack Service (clusterIPs of both families, endpoints of both
// EndpointSlices in one ServiceState) answers on both cluster IPs and on the NodePort of
// every node address, each family proxying to its own endpoints only (PX-02); an IPv6 cluster
// IP without IPv6 endpoints is refused although IPv4 endpoints exist (PX-02, PX-T-01); a
// single-stack IPv6 Service's NodePort answers on IPv6 node addresses only.
func TestProxier_DualStack(t *testing.T) {
	w := newDualWorld(t)
	var eps []proxy.Endpoint
	for _, ip := range []string{pods[0], pods[1], pods6[0], pods6[1]} {
		w.endpoint(w.podNS, ip, 8080, corev1.ProtocolTCP)
		eps = append(eps, ep(ip, 8080, true))
	}
	both := svc{name: "both", clusterIP: "10.96.0.40", clusterIP6: "fd00:10:96::40", port: 80, nodePort: 30040, endpoints: eps}
	onlyV4 := svc{name: "onlyv4", clusterIP: "10.96.0.41", clusterIP6: "fd00:10:96::41", port: 80, nodePort: 30041, endpoints: eps[:1]}
	v6only := svc{name: "v6only", clusterIP: "fd00:10:96::42", port: 80, nodePort: 30042, endpoints: eps[2:3]}
	w.sync(snapshot6(both, onlyV4, v6only), true)
	families := []struct {
		name, peer string
		targets    []string
		eps        []string
	}{
		{name: "IPv4", peer: nodePodIP, targets: []string{"10.96.0.40:80", nodeLANIP + ":30040", nodePodIP + ":30040"},
			eps: []string{at(pods[0], 8080), at(pods[1], 8080)}},
		{name: "IPv6", peer: nodePodIP6, targets: []string{"[fd00:10:96::40]:80", at(nodeLANIP6, 30040), at(nodePodIP6, 30040)},
			eps: []string{at(pods6[0], 8080), at(pods6[1], 8080)}},
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
		if got := hits(t, w.clientNS, "10.96.0.41:80", 3); got[at(pods[0], 8080)] != 3 {
			t.Fatalf("IPv4 side: %v", got)
		}
		requireRefused(t, w.clientNS, "[fd00:10:96::41]:80")
		requireRefused(t, w.clientNS, at(nodeLANIP6, 30041))
	})
	t.Run("PX-02 a single-stack IPv6 Service's NodePort is not served on IPv4 addresses", func(t *testing.T) {
		if got := hits(t, w.clientNS, at(nodeLANIP6, 30042), 3); got[at(pods6[0], 8080)] != 3 {
			t.Fatalf("IPv6 NodePort: %v", got)
		}
		requireRefused(t, w.clientNS, at(nodeLANIP, 30042))
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
	s := families[1].web(ep(pods6[0], 8080, true))
	s.externalIPs = []string{"2001:db8:1::100", "2001:db8:2::100"}
	w.sync(snapshot6(s), true)
	if got := hits(t, w.clientNS, "[2001:db8:2::100]:80", 1); got[at(pods6[0], 8080)] != 1 {
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
