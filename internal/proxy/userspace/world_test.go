package userspace

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"

	"kubesvc/internal/proxy"
	"kubesvc/internal/runtime/netns"
	"kubesvc/internal/runtime/netns/netnstest"
)

// The test world. The test process's own (private, isolated) network namespace is the node;
// the proxier runs in it. Two more namespaces hang off it by veth pairs:
//
//	pods   198.51.100.11–.16/24 on eth0, gateway 198.51.100.1 (the node's "pod network" address);
//	       routes to the ClusterIP range and the LAN go through the node.
//	client 203.0.113.2/24 on eth0, the node is 203.0.113.1: a host on the LAN.
//
// Endpoints are servers of the test inside the pods namespace, one per pod address.
const (
	nodePodIP  = "198.51.100.1"
	nodeLANIP  = "203.0.113.1"
	clientIP   = "203.0.113.2"
	podCIDR    = "198.51.100.0/24"
	clusterNet = "10.96.0.0/16"
	testDevice = "kubesvc-vipt"
)

var pods = []string{"198.51.100.11", "198.51.100.12", "198.51.100.13", "198.51.100.14", "198.51.100.15", "198.51.100.16"}

// IPv6 of a dual-stack world (newDualWorld): the pods namespace also has pods6 on its eth0
// (fd00:10:244::/64, the node fd00:10:244::1), the client 2001:db8:1::2/64 (the node
// 2001:db8:1::1); Services use fd00:10:96::/112, externalIPs and LB IPs 2001:db8:2::/64 (off
// the LAN prefix and routed to the node: the kernel answers neighbour solicitations only for
// addresses of the receiving interface, so a VIP on the device is not reachable on-link over
// IPv6 as an IPv4 one is by ARP).
const (
	nodePodIP6  = "fd00:10:244::1"
	nodeLANIP6  = "2001:db8:1::1"
	clientIP6   = "2001:db8:1::2"
	podCIDR6    = "fd00:10:244::/64"
	clusterNet6 = "fd00:10:96::/112"
	extNet6     = "2001:db8:2::/64"
)

var pods6 = []string{"fd00:10:244::11", "fd00:10:244::12", "fd00:10:244::13", "fd00:10:244::14", "fd00:10:244::15", "fd00:10:244::16"}

// ioTimeout bounds every network wait of the tests (CI runs loaded).
const ioTimeout = 10 * time.Second

type world struct {
	t        *testing.T
	p        *Proxier
	podNS    string
	clientNS string
	servers  map[string]*echoServer // "ip:port/proto" → server
}

// newWorld builds the namespaces and a Proxier using testDevice; everything is removed when
// the test ends.
func newWorld(t *testing.T) *world { return buildWorld(t, false) }

// newDualWorld is newWorld with IPv6 added to both veths (see pods6).
func newDualWorld(t *testing.T) *world { return buildWorld(t, true) }

func buildWorld(t *testing.T, dual bool) *world {
	t.Helper()
	netnstest.RequireIsolated(t)
	w := &world{t: t, podNS: netnstest.New(t), clientNS: netnstest.New(t), servers: map[string]*echoServer{}}
	if dual {
		// Before the links exist: no duplicate address detection (a tentative address cannot
		// be bound for about a second). The node is the test process's own (private)
		// namespace: its values are restored when the test ends.
		for _, ns := range []string{"", w.podNS, w.clientNS} {
			for _, key := range []string{"net/ipv6/conf/all/accept_dad", "net/ipv6/conf/default/accept_dad"} {
				if ns == "" {
					old, err := os.ReadFile(filepath.Join("/proc/sys", key))
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { _ = netns.WriteSysctl("", key, strings.TrimSpace(string(old))) })
				}
				if err := netns.WriteSysctl(ns, key, "0"); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	w.veth("us-pod0", nodePodIP+"/24", w.podNS, append([]string{}, pods...), "10.96.0.0/16", "203.0.113.0/24")
	w.veth("us-cli0", nodeLANIP+"/24", w.clientNS, []string{clientIP}, "198.51.100.0/24", "10.96.0.0/16")
	if dual {
		w.addIPv6("us-pod0", nodePodIP6, w.podNS, pods6, clusterNet6, "2001:db8:1::/64", extNet6)
		w.addIPv6("us-cli0", nodeLANIP6, w.clientNS, []string{clientIP6}, podCIDR6, clusterNet6, extNet6)
	}
	w.p = w.newProxier()
	t.Cleanup(func() {
		if err := w.p.Cleanup(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return w
}

func (w *world) newProxier() *Proxier {
	w.t.Helper()
	p, err := newProxier(Config{Device: testDevice, DialTimeout: 2 * time.Second, UDPIdleTimeout: 5 * time.Second, DropTimeout: 3 * time.Second})
	if err != nil {
		w.t.Fatal(err)
	}
	return p
}

// veth links the node to ns: hostAddr on the node's end, peerAddrs (/24) on eth0 inside ns,
// and routes in ns to each of via the node.
func (w *world) veth(name, hostAddr, ns string, peerAddrs []string, via ...string) {
	t := w.t
	t.Helper()
	f, err := os.Open(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "p", PeerNamespace: netlink.NsFd(int(f.Fd()))}); err != nil {
		t.Fatalf("add veth %s: %v", name, err)
	}
	t.Cleanup(func() {
		if l, err := netlink.LinkByName(name); err == nil {
			_ = netlink.LinkDel(l)
		}
	})
	host, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	mustAddr(t, netlink.AddrAdd(host, mustParseAddr(t, hostAddr)))
	mustAddr(t, netlink.LinkSetUp(host))
	h, err := netlink.NewHandleAt(vnetns.NsHandle(int(f.Fd())))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	peer, err := h.LinkByName(name + "p")
	if err != nil {
		t.Fatal(err)
	}
	mustAddr(t, h.LinkSetName(peer, "eth0"))
	for _, a := range peerAddrs {
		mustAddr(t, h.AddrAdd(peer, mustParseAddr(t, a+"/24")))
	}
	mustAddr(t, h.LinkSetUp(peer))
	gw := net.ParseIP(strings.Split(hostAddr, "/")[0])
	for _, dst := range via {
		_, n, _ := net.ParseCIDR(dst)
		mustAddr(t, h.RouteAdd(&netlink.Route{LinkIndex: peer.Attrs().Index, Dst: n, Gw: gw}))
	}
}

// addIPv6 adds hostAddr/64 to the node's end of the veth name and peerAddrs/64 to eth0 in ns,
// without DAD, and routes in ns to each of via the node.
func (w *world) addIPv6(name, hostAddr, ns string, peerAddrs []string, via ...string) {
	t := w.t
	t.Helper()
	nodad := func(a string) *netlink.Addr {
		addr := mustParseAddr(t, a+"/64")
		addr.Flags = unix.IFA_F_NODAD
		return addr
	}
	host, err := netlink.LinkByName(name)
	mustAddr(t, err)
	mustAddr(t, netlink.AddrAdd(host, nodad(hostAddr)))
	mustAddr(t, netns.Do(ns, func() error {
		eth, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		for _, a := range peerAddrs {
			if err := netlink.AddrAdd(eth, nodad(a)); err != nil {
				return err
			}
		}
		for _, dst := range via {
			_, n, _ := net.ParseCIDR(dst)
			if err := netlink.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Dst: n, Gw: net.ParseIP(hostAddr)}); err != nil {
				return fmt.Errorf("route %s via %s: %w", dst, hostAddr, err)
			}
		}
		return nil
	}))
}

func mustAddr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mustParseAddr(t *testing.T, s string) *netlink.Addr {
	t.Helper()
	a, err := netlink.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// echoServer is an endpoint: TCP connections get one line "hello <its ip:port> <peer ip>",
// then everything sent is echoed until EOF, then the server closes. UDP datagrams are answered
// with "<its ip:port> <peer ip> <payload>".
type echoServer struct {
	addr  netip.AddrPort
	ln    net.Listener
	pc    net.PacketConn
	mu    sync.Mutex
	conns int
	open  map[net.Conn]bool
	wg    sync.WaitGroup
}

// endpoint starts an endpoint server on ip:port in the pods namespace (or in the node's when
// ns is "").
func (w *world) endpoint(ns, ip string, port int, proto corev1.Protocol) *echoServer {
	t := w.t
	t.Helper()
	s := &echoServer{addr: netip.AddrPortFrom(netip.MustParseAddr(ip), uint16(port))}
	listen := func() (err error) {
		if proto == corev1.ProtocolUDP {
			s.pc, err = net.ListenPacket("udp", s.addr.String())
		} else {
			s.ln, err = net.Listen("tcp", s.addr.String())
		}
		return err
	}
	var err error
	if ns == "" {
		err = listen()
	} else {
		err = netns.Do(ns, listen)
	}
	if err != nil {
		t.Fatalf("endpoint %s: %v", s.addr, err)
	}
	s.wg.Add(1)
	if s.pc != nil {
		go s.serveUDP()
	} else {
		go s.serveTCP()
	}
	t.Cleanup(s.close)
	w.servers[s.addr.String()+"/"+string(proto)] = s
	return s
}

func (s *echoServer) close() {
	if s.ln != nil {
		s.ln.Close()
	}
	if s.pc != nil {
		s.pc.Close()
	}
	s.mu.Lock()
	for c := range s.open {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *echoServer) accepted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

func (s *echoServer) serveTCP() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns++
		if s.open == nil {
			s.open = map[net.Conn]bool{}
		}
		s.open[c] = true
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.open, c)
				s.mu.Unlock()
				c.Close()
			}()
			peer := c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
			fmt.Fprintf(c, "hello %s %s\n", s.addr, peer)
			_, _ = io.Copy(c, c)
		}()
	}
}

func (s *echoServer) serveUDP() {
	defer s.wg.Done()
	buf := make([]byte, 2048)
	for {
		n, peer, err := s.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		pa := peer.(*net.UDPAddr).AddrPort().Addr().Unmap()
		_, _ = s.pc.WriteTo(fmt.Appendf(nil, "%s %s %s", s.addr, pa, buf[:n]), peer)
	}
}

// dial connects from ns ("" = the node; a path = that namespace; with from set, bound to that
// source address) to target.
func dial(t *testing.T, ns, from, target string) (net.Conn, error) {
	t.Helper()
	d := net.Dialer{Timeout: ioTimeout}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	var c net.Conn
	do := func() (err error) {
		c, err = d.Dial("tcp", target)
		return err
	}
	var err error
	if ns == "" {
		err = do()
	} else {
		err = netns.Do(ns, do)
	}
	return c, err
}

// hello is one proxied connection's greeting: which endpoint answered and the source address
// it saw.
type hello struct{ endpoint, peer string }

// connect dials target from ns and reads the endpoint's greeting; it fails the test on error.
func connect(t *testing.T, ns, from, target string) (hello, net.Conn) {
	t.Helper()
	c, err := dial(t, ns, from, target)
	if err != nil {
		t.Fatalf("connect to %s: %v", target, err)
	}
	h, err := readHello(c)
	if err != nil {
		c.Close()
		t.Fatalf("greeting through %s: %v", target, err)
	}
	return h, c
}

func readHello(c net.Conn) (hello, error) {
	_ = c.SetReadDeadline(time.Now().Add(ioTimeout))
	line, err := bufio.NewReader(io.LimitReader(c, 100)).ReadString('\n')
	if err != nil {
		return hello{}, err
	}
	_ = c.SetReadDeadline(time.Time{})
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != "hello" {
		return hello{}, fmt.Errorf("bad greeting %q", line)
	}
	return hello{endpoint: f[1], peer: f[2]}, nil
}

// hits connects n times and counts the endpoints that answered.
func hits(t *testing.T, ns, target string, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		h, c := connect(t, ns, "", target)
		c.Close()
		got[h.endpoint]++
	}
	return got
}

// requireRefused asserts that connecting to target is refused at once (PX-T-01).
func requireRefused(t *testing.T, ns, target string) {
	t.Helper()
	start := time.Now()
	c, err := dial(t, ns, "", target)
	if err == nil {
		c.Close()
		t.Fatalf("connect to %s succeeded, want connection refused", target)
	}
	if !errors.Is(err, unix.ECONNREFUSED) {
		t.Fatalf("connect to %s: %v, want connection refused", target, err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("connect to %s refused after %v, want at once", target, d)
	}
}

// svc describes one service port for snapshot.
type svc struct {
	name                         string
	proto                        corev1.Protocol
	clusterIP                    string
	clusterIP6                   string // a dual-stack Service's second cluster IP, or an IPv6-only one's
	port                         int32
	nodePort                     int32
	externalIPs, lbIPs           []string
	sourceRanges                 []string
	affinity                     time.Duration
	externalLocal, internalLocal bool
	endpoints                    []proxy.Endpoint
}

// ep is a ready endpoint on pod ip (local to the node when local is set).
func ep(ip string, port int32, local bool) proxy.Endpoint {
	node := "node2"
	if local {
		node = "node1"
	}
	return proxy.Endpoint{IP: netip.MustParseAddr(ip), Port: port, Ready: true, Serving: true, NodeName: node, Local: local}
}

func (s svc) portName() proxy.ServicePortName {
	proto := s.proto
	if proto == "" {
		proto = corev1.ProtocolTCP
	}
	return proxy.ServicePortName{NamespacedName: types.NamespacedName{Namespace: "default", Name: s.name}, Protocol: proto}
}

func (s svc) state() *proxy.ServiceState {
	st := &proxy.ServiceState{ServicePort: proxy.ServicePort{
		Name:                s.portName(),
		Port:                s.port,
		Protocol:            s.portName().Protocol,
		NodePort:            s.nodePort,
		AffinityTimeout:     s.affinity,
		ExternalPolicyLocal: s.externalLocal,
		InternalPolicyLocal: s.internalLocal,
	}, Endpoints: s.endpoints}
	for _, ip := range []string{s.clusterIP, s.clusterIP6} {
		if ip != "" {
			st.ClusterIPs = append(st.ClusterIPs, netip.MustParseAddr(ip))
		}
	}
	for _, ip := range s.externalIPs {
		st.ExternalIPs = append(st.ExternalIPs, netip.MustParseAddr(ip))
	}
	for _, r := range s.sourceRanges {
		st.LoadBalancerSourceRanges = append(st.LoadBalancerSourceRanges, netip.MustParsePrefix(r))
	}
	for _, ip := range s.lbIPs {
		st.LoadBalancerIPs = append(st.LoadBalancerIPs, netip.MustParseAddr(ip))
	}
	proxy.Categorize(st)
	return st
}

func snapshot(svcs ...svc) *proxy.Snapshot {
	snap := &proxy.Snapshot{
		Services:     map[proxy.ServicePortName]*proxy.ServiceState{},
		NodeName:     "node1",
		NodeIPs:      []netip.Addr{netip.MustParseAddr(nodePodIP), netip.MustParseAddr(nodeLANIP)},
		ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix(podCIDR)},
	}
	for _, s := range svcs {
		snap.Services[s.portName()] = s.state()
	}
	return snap
}

// family is one IP family of the behaviour cases (PX-02: each is a proxier of its own). The
// IPv4 cases run in an IPv4 world as they always did, the IPv6 ones in a dual-stack world
// with single-stack IPv6 Services. Endpoints always see the node's address on the pod side
// (nodePod), the userspace mode keeps no client address.
type family struct {
	name                       string
	dual                       bool
	pods                       []string
	nodePod, nodeLAN, loopback string
	svcPrefix                  string // cluster IPs are svcPrefix + a number
	extIP, lbIP                string // an externalIP and an LB IP the LAN client routes to the node
	clientRange, otherRange    string // a source range holding the LAN client, and one that does not
}

var families = []family{
	{name: "IPv4", pods: pods, nodePod: nodePodIP, nodeLAN: nodeLANIP, loopback: "127.0.0.1", svcPrefix: "10.96.0.",
		extIP: "203.0.113.100", lbIP: "203.0.113.200", clientRange: "203.0.113.0/30", otherRange: "198.51.100.0/24"},
	{name: "IPv6 (PX-02)", dual: true, pods: pods6, nodePod: nodePodIP6, nodeLAN: nodeLANIP6, loopback: "::1", svcPrefix: "fd00:10:96::",
		extIP: "2001:db8:2::100", lbIP: "2001:db8:2::200", clientRange: "2001:db8:1::/126", otherRange: podCIDR6},
}

// world makes the world the family's cases run in.
func (f family) world(t *testing.T) *world { return buildWorld(t, f.dual) }

// vip is cluster IP number n of the family ("10.96.0.<n>", "fd00:10:96::<n>").
func (f family) vip(n int) string { return f.svcPrefix + strconv.Itoa(n) }

// snapshot is the node's snapshot: snapshot6 on a dual-stack node.
func (f family) snapshot(svcs ...svc) *proxy.Snapshot {
	if f.dual {
		return snapshot6(svcs...)
	}
	return snapshot(svcs...)
}

// web is the family's web Service: ClusterIP vip(10), NodePort 30080, an externalIP and an LB
// IP, port 80.
func (f family) web(eps ...proxy.Endpoint) svc {
	return svc{name: "web", clusterIP: f.vip(10), port: 80, nodePort: 30080,
		externalIPs: []string{f.extIP}, lbIPs: []string{f.lbIP}, endpoints: eps}
}

// at is ip:port, with IPv6 brackets.
func at(ip string, port int) string {
	return netip.AddrPortFrom(netip.MustParseAddr(ip), uint16(port)).String()
}

// snapshot6 is snapshot on a dual-stack node: both families' node addresses and pod CIDRs.
func snapshot6(svcs ...svc) *proxy.Snapshot {
	snap := snapshot(svcs...)
	snap.NodeIPs = append(snap.NodeIPs, netip.MustParseAddr(nodePodIP6), netip.MustParseAddr(nodeLANIP6))
	snap.ClusterCIDRs = append(snap.ClusterCIDRs, netip.MustParsePrefix(podCIDR6))
	return snap
}

// sync applies snap: fully, or only for the named services.
func (w *world) sync(snap *proxy.Snapshot, full bool, changed ...string) {
	w.t.Helper()
	ch := sets.New[proxy.ServicePortName]()
	for _, n := range changed {
		for name := range snap.Services {
			if name.Name == n {
				ch.Insert(name)
			}
		}
		ch.Insert(svc{name: n}.portName(), svc{name: n, proto: corev1.ProtocolUDP}.portName())
	}
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	if err := w.p.Sync(ctx, snap, ch, full); err != nil {
		w.t.Fatalf("sync: %v", err)
	}
}
