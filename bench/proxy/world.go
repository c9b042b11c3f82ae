package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"kubesvc/internal/runtime/netns"
)

// The world's addresses (RFC 5737 test networks only). The bench process's own network
// namespace is the node.
var (
	// podLAN is the node's bridge network: the bridge has .1, pod i has .(10+i). Fake endpoints
	// (never connected to) use .100–.249.
	podLAN     = netip.MustParsePrefix("198.51.100.0/24")
	bridgeIP   = netip.MustParseAddr("198.51.100.1")
	firstPodIP = netip.MustParseAddr("198.51.100.10")
	// nodeLAN links the node to the sink: the node's InternalIP is .1, the sink .2.
	nodeIP = netip.MustParseAddr("203.0.113.1")
	sinkIP = netip.MustParseAddr("203.0.113.2")
)

const (
	bridgeName = "kubesvc0"
	sinkLink   = "sink0"
	podPort    = 8080
)

// world is the node's network: a bridge with one network namespace per pod (each with a TCP
// listener on podPort that accepts and closes), and a "sink" namespace that the Service CIDR
// is routed to. The sink owns the whole CIDR as local addresses, so a connect to a ClusterIP
// the proxy has not programmed yet is refused at once (RST) instead of timing out: probes can
// poll every millisecond without piling up half-open connections or SYN_SENT conntrack
// entries. Nothing has a route off the machine.
type world struct {
	dir       string // namespace files
	pods      []netip.Addr
	listeners []net.Listener
	nsFiles   []string
	links     []string
	wg        sync.WaitGroup
}

// requireIsolated refuses to run in a namespace with a default route (the host's): the bench
// creates links and nft tables and must only ever do so in a namespace made for it.
func requireIsolated() error {
	routes, err := netlink.RouteList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("list routes: %w", err)
	}
	for _, r := range routes {
		if r.Dst == nil || r.Dst.IP.IsUnspecified() && isZeroMask(r.Dst.Mask) {
			return errors.New("this network namespace has a default route: run bench/run-proxy.sh (it runs the bench under unshare --net)")
		}
	}
	links, err := netlink.LinkList()
	if err != nil {
		return fmt.Errorf("list links: %w", err)
	}
	for _, l := range links {
		if l.Attrs().Name != "lo" {
			return fmt.Errorf("this network namespace already has link %q: run the bench in a fresh one (bench/run-proxy.sh)", l.Attrs().Name)
		}
	}
	return nil
}

func isZeroMask(m net.IPMask) bool {
	ones, _ := m.Size()
	return ones == 0
}

// newWorld builds the node network with npods pods and routes serviceCIDR to the sink.
func newWorld(dir string, npods int, serviceCIDR netip.Prefix) (w *world, err error) {
	if err := requireIsolated(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	w = &world{dir: dir}
	defer func() {
		if err != nil {
			w.close()
		}
	}()
	// What kubesvc's agent sets in its node namespace (internal/agent/proxy.go), set here for
	// both proxies so neither runs on a node the other prepared. Per network namespace.
	for key, value := range map[string]string{
		"net/ipv4/ip_forward":                  "1",
		"net/bridge/bridge-nf-call-iptables":   "1",
		"net/netfilter/nf_conntrack_tcp_loose": "1",
	} {
		if err := netns.WriteSysctl("", key, value); err != nil {
			return nil, fmt.Errorf("sysctl %s: %w", key, err)
		}
	}
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: bridgeName}}
	if err := netlink.LinkAdd(br); err != nil {
		return nil, fmt.Errorf("add bridge: %w", err)
	}
	w.links = append(w.links, bridgeName)
	if err := addAddrUp(br, bridgeIP, podLAN.Bits()); err != nil {
		return nil, err
	}
	ip := firstPodIP
	for i := 0; i < npods; i++ {
		if err := w.addPod(i, ip, br); err != nil {
			return nil, fmt.Errorf("pod %d: %w", i, err)
		}
		ip = ip.Next()
	}
	if err := w.addSink(serviceCIDR); err != nil {
		return nil, fmt.Errorf("sink: %w", err)
	}
	return w, nil
}

func addAddrUp(l netlink.Link, ip netip.Addr, bits int) error {
	if err := netlink.AddrAdd(l, &netlink.Addr{IPNet: ipNet(ip, bits)}); err != nil {
		return fmt.Errorf("address %s on %s: %w", ip, l.Attrs().Name, err)
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return fmt.Errorf("set %s up: %w", l.Attrs().Name, err)
	}
	return nil
}

func ipNet(ip netip.Addr, bits int) *net.IPNet {
	return &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(bits, ip.BitLen())}
}

// addNS creates a namespace file named name and a veth whose end "eth0" is in it with
// ip/bits, and whose node end is hostName (attached to master when not nil).
func (w *world) addNS(name, hostName string, ip netip.Addr, bits int, master netlink.Link) (string, error) {
	path := filepath.Join(w.dir, name)
	if err := netns.New(path); err != nil {
		return "", err
	}
	w.nsFiles = append(w.nsFiles, path)
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: hostName}, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(f.Fd()))}
	if master != nil {
		veth.MasterIndex = master.Attrs().Index
	}
	if err := netlink.LinkAdd(veth); err != nil {
		return "", fmt.Errorf("add veth %s: %w", hostName, err)
	}
	w.links = append(w.links, hostName)
	host, err := netlink.LinkByName(hostName)
	if err != nil {
		return "", err
	}
	if err := netlink.LinkSetUp(host); err != nil {
		return "", err
	}
	err = netns.Do(path, func() error {
		eth, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		return addAddrUp(eth, ip, bits)
	})
	return path, err
}

// addPod makes pod i: a namespace with ip on the bridge and a listener on podPort.
func (w *world) addPod(i int, ip netip.Addr, br netlink.Link) error {
	path, err := w.addNS("pod"+strconv.Itoa(i), "vpod"+strconv.Itoa(i), ip, podLAN.Bits(), br)
	if err != nil {
		return err
	}
	l, err := netns.Listen(path, "tcp4", netip.AddrPortFrom(ip, podPort).String())
	if err != nil {
		return err
	}
	w.listeners = append(w.listeners, l)
	w.pods = append(w.pods, ip)
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return nil
}

// addSink makes the sink namespace, owner of every address in cidr, and routes cidr to it.
func (w *world) addSink(cidr netip.Prefix) error {
	path, err := w.addNS("sink", sinkLink, sinkIP, 24, nil)
	if err != nil {
		return err
	}
	host, err := netlink.LinkByName(sinkLink)
	if err != nil {
		return err
	}
	if err := netlink.AddrAdd(host, &netlink.Addr{IPNet: ipNet(nodeIP, 24)}); err != nil {
		return fmt.Errorf("node address: %w", err)
	}
	if err := netns.Do(path, func() error {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		return netlink.RouteAdd(&netlink.Route{
			LinkIndex: lo.Attrs().Index, Dst: ipNet(cidr.Addr(), cidr.Bits()),
			Type: unix.RTN_LOCAL, Table: unix.RT_TABLE_LOCAL, Scope: netlink.SCOPE_HOST,
		})
	}); err != nil {
		return fmt.Errorf("local route for %s in the sink: %w", cidr, err)
	}
	if err := netlink.RouteAdd(&netlink.Route{
		LinkIndex: host.Attrs().Index, Dst: ipNet(cidr.Addr(), cidr.Bits()), Gw: sinkIP.AsSlice(),
	}); err != nil {
		return fmt.Errorf("route %s via the sink: %w", cidr, err)
	}
	return nil
}

// close removes listeners, links and namespace files (the namespaces end with them).
func (w *world) close() {
	for _, l := range w.listeners {
		l.Close()
	}
	w.wg.Wait()
	for i := len(w.links) - 1; i >= 0; i-- {
		if l, err := netlink.LinkByName(w.links[i]); err == nil {
			_ = netlink.LinkDel(l)
		}
	}
	for _, p := range w.nsFiles {
		_ = netns.Delete(p)
	}
}
