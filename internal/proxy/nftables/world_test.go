package nftables

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"

	"kubesvc/internal/proxy"
	"kubesvc/internal/runtime/netns"
	"kubesvc/internal/runtime/netns/netnstest"
	"kubesvc/internal/runtime/podnet"
)

func TestMain(m *testing.M) {
	if code, child := netnstest.PrivateNamespaces(); !child {
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// world is one node: a network namespace with the pod bridge kubesvc0 (10.244.0.1/24), pods
// on it, and a client host on a LAN veth (node 198.51.100.11, client 198.51.100.2). Pods
// serve TCP and UDP on 8080, answering "<pod name> <client address>".
//
// A dual-stack world (newDualWorld) adds IPv6 everywhere: fd00:10:244::1/64 on the bridge, a
// second address fd00:10:244::<2+i>/64 in each pod (ips6), 2001:db8:1::11/64 on the node's
// LAN veth and 2001:db8:1::2/64 on the client's, and a Proxier programming ip and ip6.
type world struct {
	t      *testing.T
	node   string
	client string // LAN client host namespace
	pods   map[string]string
	ips    map[string]netip.Addr
	ips6   map[string]netip.Addr // dual-stack worlds only
	dual   bool
	dp     *Proxier
	bridge *podnet.Bridge
}

var (
	nodeIP    = netip.MustParseAddr("198.51.100.11")
	clientIP  = netip.MustParseAddr("198.51.100.2")
	podCIDR   = netip.MustParsePrefix("10.244.0.0/24")
	clusterNW = netip.MustParsePrefix("10.244.0.0/16")

	// IPv6 of dual-stack worlds: documentation range on the LAN, ULA for pods and services.
	nodeIP6    = netip.MustParseAddr("2001:db8:1::11")
	clientIP6  = netip.MustParseAddr("2001:db8:1::2")
	podCIDR6   = netip.MustParsePrefix("fd00:10:244::/64")
	gateway6   = netip.MustParseAddr("fd00:10:244::1")
	clusterNW6 = netip.MustParsePrefix("fd00:10:244::/56")
	svcNet6    = netip.MustParsePrefix("fd00:10:96::/112")
)

func newWorld(t *testing.T, pods ...string) *world { return buildWorld(t, false, pods...) }

// newDualWorld is a dual-stack world (see world).
func newDualWorld(t *testing.T, pods ...string) *world { return buildWorld(t, true, pods...) }

func buildWorld(t *testing.T, dual bool, pods ...string) *world {
	t.Helper()
	w := &world{t: t, node: netnstest.New(t), client: netnstest.New(t), pods: map[string]string{}, ips: map[string]netip.Addr{},
		ips6: map[string]netip.Addr{}, dual: dual}
	if dual {
		// Before any link exists, so every interface is created without DAD (a tentative
		// address cannot be bound or used as a source for about a second: flaky tests).
		must(t, ipv6Sysctls(w.node, true))
		must(t, ipv6Sysctls(w.client, false))
	}
	must(t, netns.Do(w.node, func() error {
		var err error
		if w.bridge, err = podnet.EnsureBridge("kubesvc0", podCIDR, netip.MustParseAddr("10.244.0.1")); err != nil {
			return err
		}
		return os.WriteFile("/proc/sys/net/bridge/bridge-nf-call-iptables", []byte("1"), 0o644)
	}))
	// LAN: a veth pair node:lan0 198.51.100.11 <-> client:eth0 198.51.100.2.
	must(t, netns.Do(w.node, func() error {
		cfd, err := unix.Open(w.client, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(cfd)
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "lan0"}, PeerName: "eth0", PeerNamespace: netlink.NsFd(cfd)}); err != nil {
			return err
		}
		if err := addrUp("lan0", nodeIP); err != nil {
			return err
		}
		// The node needs a route to the service range, or a rejected cluster IP is "network
		// unreachable" before the filter hooks; real nodes have a default route.
		lan, err := netlink.LinkByName("lan0")
		if err != nil {
			return err
		}
		_, svcNet, _ := net.ParseCIDR("10.96.0.0/12")
		if err := netlink.RouteAdd(&netlink.Route{LinkIndex: lan.Attrs().Index, Dst: svcNet}); err != nil {
			return err
		}
		if !dual {
			return nil
		}
		br, err := netlink.LinkByName("kubesvc0")
		if err != nil {
			return err
		}
		if err := netlink.AddrAdd(br, addr6(gateway6, podCIDR6.Bits())); err != nil {
			return err
		}
		if err := netlink.AddrAdd(lan, addr6(nodeIP6, 64)); err != nil {
			return err
		}
		return netlink.RouteAdd(&netlink.Route{LinkIndex: lan.Attrs().Index, Dst: prefixNet(svcNet6)})
	}))
	must(t, netns.Do(w.client, func() error {
		if err := addrUp("eth0", clientIP); err != nil {
			return err
		}
		// The LAN host routes the service range to the node (off-cluster traffic to a
		// cluster IP, PX-M-03b).
		eth, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		for _, dst := range []string{"10.96.0.0/12", "203.0.113.0/24"} { // services, LB IPs
			if err := netlink.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Dst: prefixNet(netip.MustParsePrefix(dst)), Gw: nodeIP.AsSlice()}); err != nil {
				return err
			}
		}
		if !dual {
			return nil
		}
		if err := netlink.AddrAdd(eth, addr6(clientIP6, 64)); err != nil {
			return err
		}
		for _, dst := range []netip.Prefix{svcNet6, netip.MustParsePrefix("2001:db8:2::/64")} { // services, LB IPs
			if err := netlink.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Dst: prefixNet(dst), Gw: nodeIP6.AsSlice()}); err != nil {
				return err
			}
		}
		return nil
	}))
	for i, name := range pods {
		ns := netnstest.New(t)
		ip := netip.AddrFrom4([4]byte{10, 244, 0, byte(2 + i)})
		if dual {
			must(t, ipv6Sysctls(ns, false))
		}
		must(t, netns.Do(w.node, func() error { return w.bridge.AddPod(ns, fmt.Sprintf("veth%d", i), ip) }))
		w.pods[name], w.ips[name] = ns, ip
		if dual {
			// The pod runtime (podnet) is IPv4-only: the test gives each pod its IPv6 address.
			ip6 := netip.AddrFrom16([16]byte{0: 0xfd, 3: 0x10, 4: 0x02, 5: 0x44, 15: byte(2 + i)})
			must(t, netns.Do(ns, func() error {
				eth, err := netlink.LinkByName(podnet.PodInterface)
				if err != nil {
					return err
				}
				if err := netlink.AddrAdd(eth, addr6(ip6, podCIDR6.Bits())); err != nil {
					return err
				}
				return netlink.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Dst: prefixNet(netip.MustParsePrefix("::/0")), Gw: gateway6.AsSlice()})
			}))
			w.ips6[name] = ip6
		}
		w.serve(name)
	}
	var err error
	w.dp, err = New(Config{NetNS: w.node, IPv4: true, IPv6: dual})
	must(t, err)
	t.Cleanup(func() {
		if t.Failed() && os.Getenv("NFT_DUMP") != "" {
			var out []byte
			_ = netns.Do(w.node, func() error {
				out, _ = exec.Command("sh", "-c", "ip -br addr; nft list ruleset").CombinedOutput()
				return nil
			})
			t.Logf("ruleset:\n%s", out)
		}
	})
	t.Cleanup(func() {
		if err := w.dp.Cleanup(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		_ = w.dp.Close()
	})
	return w
}

func addrUp(ifname string, ip netip.Addr) error {
	l, err := netlink.LinkByName(ifname)
	if err != nil {
		return err
	}
	if err := netlink.AddrAdd(l, &netlink.Addr{IPNet: &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(24, 32)}}); err != nil {
		return err
	}
	return netlink.LinkSetUp(l)
}

// addr6 is ip/bits without duplicate address detection.
func addr6(ip netip.Addr, bits int) *netlink.Addr {
	return &netlink.Addr{IPNet: &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(bits, 128)}, Flags: unix.IFA_F_NODAD}
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// ipv6Sysctls turns duplicate address detection off in the namespace ns for interfaces made
// from now on, and on a node enables IPv6 forwarding and bridge netfilter for IPv6 (the
// agent's prepareNodeForNFTables sets the IPv4 ones).
func ipv6Sysctls(ns string, node bool) error {
	kv := [][2]string{{"net/ipv6/conf/all/accept_dad", "0"}, {"net/ipv6/conf/default/accept_dad", "0"}}
	if node {
		kv = append(kv, [2]string{"net/ipv6/conf/all/forwarding", "1"}, [2]string{"net/bridge/bridge-nf-call-ip6tables", "1"})
	}
	for _, e := range kv {
		if err := netns.WriteSysctl(ns, e[0], e[1]); err != nil {
			return err
		}
	}
	return nil
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// serve runs the pod's TCP and UDP servers on 8080 until the test ends.
func (w *world) serve(name string) {
	l, err := netns.Listen(w.pods[name], "tcp", ":8080")
	must(w.t, err)
	w.t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "%s %s\n", name, c.RemoteAddr().(*net.TCPAddr).IP)
			c.Close()
		}
	}()
	var pc net.PacketConn
	must(w.t, netns.Do(w.pods[name], func() error {
		var err error
		pc, err = net.ListenPacket("udp", ":8080")
		return err
	}))
	w.t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo([]byte(fmt.Sprintf("%s %s\n", name, from.(*net.UDPAddr).IP)), from)
		}
	}()
}

// dial connects from the namespace ns to addr over TCP and returns the answer's pod name and
// the client address the pod saw.
func dial(ns, addr string, timeout time.Duration) (pod, seen string, err error) {
	c, err := netns.DialTimeout(ns, "tcp", addr, timeout)
	if err != nil {
		return "", "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", "", err
	}
	f := strings.Fields(line)
	return f[0], f[1], nil
}

func dialUDP(ns, addr string, timeout time.Duration) (string, error) {
	c, err := netns.DialTimeout(ns, "udp", addr, timeout)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte("hi")); err != nil {
		return "", err
	}
	buf := make([]byte, 512)
	n, err := c.Read(buf)
	if err != nil {
		return "", err
	}
	return strings.Fields(string(buf[:n]))[0], nil
}

// svc is a ServiceState builder for tests.
func svc(name string, ip string, port int32, eps ...proxy.Endpoint) *proxy.ServiceState {
	st := &proxy.ServiceState{ServicePort: proxy.ServicePort{
		Name:       proxy.ServicePortName{NamespacedName: types.NamespacedName{Namespace: "default", Name: name}, Protocol: corev1.ProtocolTCP},
		ClusterIPs: []netip.Addr{netip.MustParseAddr(ip)}, Port: port, Protocol: corev1.ProtocolTCP,
	}, Endpoints: eps}
	return st
}

func (w *world) ep(pod string, local bool) proxy.Endpoint {
	node := "node1"
	if !local {
		node = "node2"
	}
	return proxy.Endpoint{IP: w.ips[pod], Port: 8080, Ready: true, Serving: true, NodeName: node, Local: local}
}

// ep6 is the pod's IPv6 endpoint (dual-stack worlds).
func (w *world) ep6(pod string, local bool) proxy.Endpoint {
	e := w.ep(pod, local)
	e.IP = w.ips6[pod]
	return e
}

// dualSvc is a Service with a cluster IP of each family listed.
func dualSvc(name string, clusterIPs []string, port int32, eps ...proxy.Endpoint) *proxy.ServiceState {
	st := svc(name, clusterIPs[0], port, eps...)
	st.ClusterIPs = nil
	for _, ip := range clusterIPs {
		st.ClusterIPs = append(st.ClusterIPs, netip.MustParseAddr(ip))
	}
	return st
}

// family is one IP family of the behaviour cases (PX-02: each is a proxier of its own). The
// IPv4 cases run on an IPv4-only node as they always did, the IPv6 ones on a dual-stack node
// with single-stack IPv6 Services.
type family struct {
	name             string
	dual             bool
	svcPrefix        string // cluster IPs are svcPrefix + a number
	nodeIP, clientIP netip.Addr
	bridgeIP         netip.Addr // the node's address on the pod bridge: masqueraded sources
	remoteEP         netip.Addr // an endpoint on another node
	lbIP             netip.Addr // a LoadBalancer IP off the LAN prefix, routed by the LAN client to the node
	// refuseWithin bounds a TCP refusal (PX-T-01). Over IPv6 the refusal comes with the SYN's
	// first retransmission, 1 s after connect: the ICMPv6 error for the first SYN reaches the
	// client's socket while connect(2) still holds its lock (the veths deliver it in the same
	// softirq) and tcp_v6_err only records it as a soft error (TcpExt LockDroppedIcmps).
	// IPv4 is refused at once here. A dropped SYN would time out after dialTimeout instead.
	refuseWithin time.Duration
}

var families = []family{
	{name: "IPv4", svcPrefix: "10.96.0.", nodeIP: nodeIP, clientIP: clientIP, bridgeIP: netip.MustParseAddr("10.244.0.1"),
		remoteEP: netip.MustParseAddr("10.244.1.9"), lbIP: netip.MustParseAddr("203.0.113.200"), refuseWithin: 2 * time.Second},
	{name: "IPv6 (PX-02)", dual: true, svcPrefix: "fd00:10:96::", nodeIP: nodeIP6, clientIP: clientIP6, bridgeIP: gateway6,
		remoteEP: netip.MustParseAddr("fd00:10:244:1::9"), lbIP: netip.MustParseAddr("2001:db8:2::200"), refuseWithin: 3 * time.Second},
}

// world makes the world the family's cases run in.
func (f family) world(t *testing.T, pods ...string) *world { return buildWorld(t, f.dual, pods...) }

// vip is cluster IP number n of the family ("10.96.0.<n>", "fd00:10:96::<n>").
func (f family) vip(n int) string { return f.svcPrefix + itoa(n) }

// at is "vip:port" of cluster IP number n, with IPv6 brackets.
func (f family) at(n, port int) string { return hostPort(netip.MustParseAddr(f.vip(n)), port) }

// node is "nodeIP:port" of the node's LAN address.
func (f family) node(port int) string { return hostPort(f.nodeIP, port) }

// ip is the pod's address of the family.
func (f family) ip(w *world, pod string) netip.Addr {
	if f.dual {
		return w.ips6[pod]
	}
	return w.ips[pod]
}

// ep is the pod's endpoint of the family.
func (f family) ep(w *world, pod string, local bool) proxy.Endpoint {
	e := w.ep(pod, local)
	e.IP = f.ip(w, pod)
	return e
}

// snapshot is the node's snapshot: snapshot6 on a dual-stack node.
func (f family) snapshot(sts ...*proxy.ServiceState) *proxy.Snapshot {
	if f.dual {
		return snapshot6(sts...)
	}
	return snapshot(sts...)
}

func hostPort(ip netip.Addr, port int) string { return netip.AddrPortFrom(ip, uint16(port)).String() }

// snapshot6 is snapshot on a dual-stack node: node IPs and cluster CIDRs of both families.
func snapshot6(sts ...*proxy.ServiceState) *proxy.Snapshot {
	s := snapshot(sts...)
	s.NodeIPs = append(s.NodeIPs, nodeIP6)
	s.ClusterCIDRs = append(s.ClusterCIDRs, clusterNW6)
	return s
}

func snapshot(sts ...*proxy.ServiceState) *proxy.Snapshot {
	s := &proxy.Snapshot{Services: map[proxy.ServicePortName]*proxy.ServiceState{}, NodeName: "node1",
		NodeIPs: []netip.Addr{nodeIP}, ClusterCIDRs: []netip.Prefix{clusterNW}}
	for _, st := range sts {
		proxy.Categorize(st)
		s.Services[st.Name] = st
	}
	return s
}

func (w *world) sync(snap *proxy.Snapshot, full bool, changed ...proxy.ServicePortName) {
	w.t.Helper()
	must(w.t, w.dp.Sync(context.Background(), snap, sets.New(changed...), full))
}

func isRefused(err error) bool { return errors.Is(err, unix.ECONNREFUSED) }
