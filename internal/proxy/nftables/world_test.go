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
type world struct {
	t      *testing.T
	node   string
	client string // LAN client host namespace
	pods   map[string]string
	ips    map[string]netip.Addr
	dp     *Proxier
	bridge *podnet.Bridge
}

var (
	nodeIP    = netip.MustParseAddr("198.51.100.11")
	clientIP  = netip.MustParseAddr("198.51.100.2")
	podCIDR   = netip.MustParsePrefix("10.244.0.0/24")
	clusterNW = netip.MustParsePrefix("10.244.0.0/16")
)

func newWorld(t *testing.T, pods ...string) *world {
	t.Helper()
	w := &world{t: t, node: netnstest.New(t), client: netnstest.New(t), pods: map[string]string{}, ips: map[string]netip.Addr{}}
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
		return netlink.RouteAdd(&netlink.Route{LinkIndex: lan.Attrs().Index, Dst: svcNet})
	}))
	must(t, netns.Do(w.client, func() error { return addrUp("eth0", clientIP) }))
	for i, name := range pods {
		ns := netnstest.New(t)
		ip := netip.AddrFrom4([4]byte{10, 244, 0, byte(2 + i)})
		must(t, netns.Do(w.node, func() error { return w.bridge.AddPod(ns, fmt.Sprintf("veth%d", i), ip) }))
		w.pods[name], w.ips[name] = ns, ip
		w.serve(name)
	}
	var err error
	w.dp, err = New(Config{NetNS: w.node})
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
