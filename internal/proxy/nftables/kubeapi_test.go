package nftables_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"kubesvc/internal/agent"
	"kubesvc/internal/peertest"
	"kubesvc/internal/runtime/netns"
	"kubesvc/internal/runtime/netns/netnstest"
	"kubesvc/internal/runtime/podnet"
)

// TestKubeAPIServer_ServicesOnly runs the node's service part (`kubesvc agent --kubeconfig`,
// agent.StartServices) against the real kube-apiserver v1.37.2 (issue 6 item 5), dual-stack
// (PX-02): kube-apiserver with an IPv4 and an IPv6 service range, the agent with
// `--node-ip 198.51.100.11,2001:db8:1::11`. The test process's namespace is the node, with pods
// on kubesvc0 (both families) and a client host on a LAN veth; a RequireDualStack NodePort
// Service with hand-made EndpointSlices of both families is reached through each of its
// ClusterIPs from a pod (PX-E-05) and through its NodePort on each node address from the
// client host (PX-T-05).
func TestKubeAPIServer_ServicesOnly(t *testing.T) {
	peertest.SkipIfMissing(t, peertest.EtcdBinary, peertest.KubeAPIServerBinary)
	netnstest.RequireIsolated(t)
	const serviceCIDRs = "10.96.0.0/12,fd00:10:96::/112"
	api, err := peertest.StartKubeAPIServerOnEtcd(t, peertest.APIServerConfig{ServiceCIDR: serviceCIDRs})
	if err != nil {
		t.Fatal(err)
	}
	client, err := kubernetes.NewForConfig(api.Config)
	if err != nil {
		t.Fatal(err)
	}

	// The node: this namespace. Pod "web" on the bridge, pod "client", LAN host "lan".
	bridge, err := podnet.EnsureBridge("kubesvc0", netip.MustParsePrefix("10.244.0.0/24"), netip.MustParseAddr("10.244.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = podnet.RemovePod("kubesvc0") })
	// IPv6 addresses without duplicate address detection: usable at once.
	addr6 := func(name string, ip netip.Addr, bits int) error {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return err
		}
		return netlink.AddrAdd(l, &netlink.Addr{IPNet: &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(bits, 128)}, Flags: unix.IFA_F_NODAD})
	}
	gw6 := netip.MustParseAddr("fd00:10:244::1")
	if err := addr6("kubesvc0", gw6, 64); err != nil {
		t.Fatal(err)
	}
	web, client1 := netnstest.New(t), netnstest.New(t)
	webIP, webIP6 := netip.MustParseAddr("10.244.0.2"), netip.MustParseAddr("fd00:10:244::2")
	for i, p := range []struct {
		ns      string
		ip, ip6 netip.Addr
	}{{web, webIP, webIP6}, {client1, netip.MustParseAddr("10.244.0.3"), netip.MustParseAddr("fd00:10:244::3")}} {
		if err := bridge.AddPod(p.ns, fmt.Sprintf("vethk%d", i), p.ip); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = podnet.RemovePod(fmt.Sprintf("vethk%d", i)) })
		if err := netns.Do(p.ns, func() error {
			if err := addr6(podnet.PodInterface, p.ip6, 64); err != nil {
				return err
			}
			l, err := netlink.LinkByName(podnet.PodInterface)
			if err != nil {
				return err
			}
			return netlink.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Gw: gw6.AsSlice()})
		}); err != nil {
			t.Fatal(err)
		}
	}
	lan := netnstest.New(t)
	nodeIP, lanIP := netip.MustParseAddr("198.51.100.11"), netip.MustParseAddr("198.51.100.2")
	nodeIP6, lanIP6 := netip.MustParseAddr("2001:db8:1::11"), netip.MustParseAddr("2001:db8:1::2")
	fd, err := unix.Open(lan, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "lank0"}, PeerName: "eth0", PeerNamespace: netlink.NsFd(fd)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = podnet.RemovePod("lank0") })
	up := func(name string, ip netip.Addr) error {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return err
		}
		if err := netlink.AddrAdd(l, &netlink.Addr{IPNet: &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(24, 32)}}); err != nil {
			return err
		}
		return netlink.LinkSetUp(l)
	}
	if err := up("lank0", nodeIP); err != nil {
		t.Fatal(err)
	}
	if err := addr6("lank0", nodeIP6, 64); err != nil {
		t.Fatal(err)
	}
	if err := netns.Do(lan, func() error {
		if err := up("eth0", lanIP); err != nil {
			return err
		}
		return addr6("eth0", lanIP6, 64)
	}); err != nil {
		t.Fatal(err)
	}
	l, err := netns.Listen(web, "tcp", ":8080")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "web %s\n", c.RemoteAddr().(*net.TCPAddr).IP)
			c.Close()
		}
	}()

	ctx := context.Background()
	svc, err := client.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Ports: []corev1.ServicePort{{Name: "http", Port: 80}},
			IPFamilyPolicy: ptr.To(corev1.IPFamilyPolicyRequireDualStack)},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(svc.Spec.ClusterIPs) != 2 {
		t.Fatalf("clusterIPs %v: want one per family from a dual-stack kube-apiserver", svc.Spec.ClusterIPs)
	}
	for fam, ip := range map[discoveryv1.AddressType]netip.Addr{discoveryv1.AddressTypeIPv4: webIP, discoveryv1.AddressTypeIPv6: webIP6} {
		if _, err := client.DiscoveryV1().EndpointSlices("default").Create(ctx, &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: "web-" + strings.ToLower(string(fam)), Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
			AddressType: fam,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(int32(8080)), Protocol: ptr.To(corev1.ProtocolTCP)}},
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{ip.String()}, NodeName: ptr.To("node1")}},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	cfg := agent.NewConfig()
	cfg.NodeName, cfg.NodeIP = "node1", nodeIP.String()+","+nodeIP6.String()
	cfg.Proxy = agent.NewProxyConfig()
	cfg.Proxy.Mode, cfg.Proxy.Kubeconfig = agent.ProxyModeNFTables, api.Kubeconfig
	cfg.Proxy.ClusterCIDR, cfg.Proxy.ServiceCIDR = "10.244.0.0/16,fd00:10:244::/56", serviceCIDRs
	cfg.Proxy.HealthzBindAddress, cfg.Proxy.MetricsBindAddress = "", ""
	cfg.Proxy.MinSyncPeriod = 50 * time.Millisecond
	cfg.DNS.Disable = true // the services-only DNS: internal/agent TestServices_KubeAPIServerDNS
	s, err := agent.StartServices(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		if err := agent.CleanupProxy(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	select {
	case <-s.Ready():
	case <-time.After(60 * time.Second):
		t.Fatal("proxy did not sync")
	}

	dial := func(ns, addr string) (string, error) {
		var last error
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			c, err := netns.DialTimeout(ns, "tcp", addr, 5*time.Second)
			if err != nil {
				last = err
				continue
			}
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			line, err := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if err != nil {
				last = err
				continue
			}
			return strings.TrimSpace(line), nil
		}
		return "", last
	}
	for _, cip := range svc.Spec.ClusterIPs {
		want := "web 10.244.0.3"
		if netip.MustParseAddr(cip).Is6() {
			want = "web fd00:10:244::3"
		}
		t.Run("PX-E-05 ClusterIP "+cip+" from a pod", func(t *testing.T) {
			got, err := dial(client1, net.JoinHostPort(cip, "80"))
			if err != nil || got != want {
				t.Fatalf("got %q, %v; want %q (web seeing the client pod's address of the family)", got, err, want)
			}
		})
	}
	for _, pair := range [][2]netip.Addr{{nodeIP, lanIP}, {nodeIP6, lanIP6}} {
		t.Run("PX-T-05 NodePort on "+pair[0].String()+" from the LAN", func(t *testing.T) {
			got, err := dial(lan, net.JoinHostPort(pair[0].String(), fmt.Sprint(svc.Spec.Ports[0].NodePort)))
			if err != nil || !strings.HasPrefix(got, "web ") || got == "web "+pair[1].String() {
				t.Fatalf("got %q, %v; want web seeing a masqueraded address", got, err)
			}
		})
	}
}
